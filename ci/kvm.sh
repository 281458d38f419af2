# ci/kvm.sh - where the VM parts of make test/test-slow/demo/bench run
# (sourced by tests/run.sh and ci/with-kvm).
#
# kvm_mode BUILD sets KVM_MODE and KVM_WHY:
#   direct    this machine's /dev/kvm boots trialvm's smallest guest
#   emulated  it does not (KVM_WHY says why); ci/kvm-host runs the VM parts
#   none      neither works (KVM_WHY says why)
# TRIALVM_KVM=emulated forces the emulated host (to try it on a KVM machine);
# TRIALVM_KVM=direct forbids it. Inside the emulated host
# (TRIALVM_KVM_HOST=emulated) the mode is always direct.

kvm_mode() {
	local build=$1 err rc
	KVM_MODE=direct KVM_WHY=""
	[ "${TRIALVM_KVM_HOST:-}" = emulated ] && return 0
	if [ "${TRIALVM_KVM:-}" = emulated ]; then
		KVM_WHY="TRIALVM_KVM=emulated"
	else
		err=$("$build/trialvm" run --kernel "$build/tests/guests/tiny-hello.elf" 2>&1 >/dev/null </dev/null)
		rc=$?
		[ $rc -eq 7 ] && return 0
		KVM_WHY=$(printf '%s\n' "$err" | grep -m1 . || echo "trialvm's smallest guest exited with status $rc")
		if [ "${TRIALVM_KVM:-}" = direct ]; then
			KVM_MODE=none KVM_WHY="$KVM_WHY; TRIALVM_KVM=direct forbids the emulated KVM host"
			return 0
		fi
	fi
	KVM_MODE=emulated
	local missing=""
	for tool in qemu-system-x86_64 cpio /bin/busybox; do
		command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
	done
	if [ -n "$missing" ]; then
		KVM_MODE=none KVM_WHY="$KVM_WHY; the emulated KVM host needs$missing (ci/deps.sh installs them)"
	fi
}
