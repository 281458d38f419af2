# tests/trialos.sh - trialos and its applications (sourced by tests/run.sh).
if [ ! -f "$TRIALVM_TRIALOS" ]; then
	fail trialos-built "$TRIALVM_TRIALOS was not built"
	return 0
fi

# hello: exact output and status, musl and glibc.
printf 'Hello, world!\n' >"$T/hello.want"
vmrun app-hello 30 run --app "$APPS/hello"
expect_rc app-hello 0 && expect_out app-hello "$T/hello.want" && pass app-hello
vmrun app-hello-glibc 30 run --app "$APPS/hello-glibc"
expect_rc app-hello-glibc 0 && expect_out app-hello-glibc "$T/hello.want" && pass app-hello-glibc
# The same app through --kernel/--initrd/--cmdline.
vmrun app-hello-kernel 30 run --kernel "$TRIALVM_TRIALOS" --initrd "$APPS/hello" --cmdline '-- hello'
expect_rc app-hello-kernel 0 && expect_out app-hello-kernel "$T/hello.want" && pass app-hello-kernel

# Arguments, with spaces, quotes and backslashes, survive the command line.
printf 'one\ntwo words\nquote " and \\ backslash\n' >"$T/args.want"
vmrun app-args 30 run --app "$APPS/echo-args" -- one 'two words' 'quote " and \ backslash'
expect_rc app-args 0 && expect_out app-args "$T/args.want" && pass app-args

# Files from a cpio archive: as a second module and appended to the app.
mkdir -p "$T/root/etc"
printf 'file contents\nsecond line\n' >"$T/root/etc/motd"
head -c 100000 /dev/urandom >"$T/root/blob"
(cd "$T/root" && find . | cpio -o -H newc --quiet >"$T/files.cpio")
vmrun app-cpio 30 run --app "$APPS/echo-args" --cpio "$T/files.cpio" -- /etc/motd
printf '/etc/motd\nfile contents\nsecond line\n' >"$T/cpio.want"
expect_rc app-cpio 0 && expect_out app-cpio "$T/cpio.want" && pass app-cpio
cat "$APPS/echo-args" "$T/files.cpio" >"$T/echo-appended"
vmrun app-cpio-appended 30 run --kernel "$TRIALVM_TRIALOS" --initrd "$T/echo-appended" --cmdline '-- echo-args etc/motd'
printf 'etc/motd\nfile contents\nsecond line\n' >"$T/cpio2.want"
expect_rc app-cpio-appended 0 && expect_out app-cpio-appended "$T/cpio2.want" && pass app-cpio-appended

# clock_gettime and getrandom come from trialvm (the app checks plausibility).
vmrun app-clock-rand 30 run --app "$APPS/clock-rand"
expect_rc app-clock-rand 0 && pass app-clock-rand

# Crashes: the "guest crashed" status, the signal, the function.
vmrun app-null-deref 30 run --app "$APPS/null-deref"
expect_rc app-null-deref 123 && expect_grep app-null-deref err 'SIGSEGV' 'SEGV_MAPERR' 'at address 0x0 ' \
	'RIP 0x[0-9a-f]+ in crash_here\+' 'called from .* in main\+' && pass app-null-deref
vmrun app-null-deref-glibc 30 run --app "$APPS/null-deref-glibc"
expect_rc app-null-deref-glibc 123 && expect_grep app-null-deref-glibc err 'SIGSEGV' 'in crash_here\+' && pass app-null-deref-glibc
vmrun app-div-zero 30 run --app "$APPS/div-zero"
expect_rc app-div-zero 123 && expect_grep app-div-zero err 'SIGFPE' 'FPE_INTDIV' 'in divide_it\+' '=> +[0-9a-f]+ .* i?div .*divide_it\+0x' && pass app-div-zero
vmrun app-abort 30 run --app "$APPS/abort"
expect_rc app-abort 123 && expect_grep app-abort err 'SIGABRT' && pass app-abort
# The RIP named in the diagnosis is inside crash_here according to nm.
rip=$(grep -Eo 'RIP 0x[0-9a-f]+' "$T/app-null-deref.err" | head -1 | cut -c7-)
range=$(nm -S "$APPS/null-deref" | awk '$4 == "crash_here" { print $1, $2 }')
if [ -n "$rip" ] && [ -n "$range" ]; then
	set -- $range
	if [ $((0x$rip >= 0x$1 && 0x$rip < 0x$1 + 0x$2)) -eq 1 ]; then pass app-fault-rip-in-function
	else fail app-fault-rip-in-function "RIP $rip not in crash_here [$1 +$2]"; fi
else
	fail app-fault-rip-in-function "no RIP ($rip) or no crash_here in nm ($range)"
fi

# Bad applications are refused before boot with a clear message.
vmrun app-missing 10 run --app "$T/nope"
expect_rc app-missing 126 && expect_grep app-missing err 'nope' && pass app-missing
printf '#!/bin/sh\necho hi\n' >"$T/script"
vmrun app-not-elf 10 run --app "$T/script"
expect_rc app-not-elf 126 && expect_grep app-not-elf err 'not an ELF' && pass app-not-elf
if [ -x /bin/true ] && readelf -l /bin/true 2>/dev/null | grep -q INTERP; then
	vmrun app-dynamic 10 run --app /bin/true
	expect_rc app-dynamic 126 && expect_grep app-dynamic err 'dynamically linked' && pass app-dynamic
fi

# Debian's busybox-static, unmodified.
BUSYBOX=/bin/busybox
if [ -x "$BUSYBOX" ] && ! readelf -l "$BUSYBOX" | grep -q INTERP; then
	vmrun busybox-echo 60 run --app "$BUSYBOX" -- echo hello from busybox
	printf 'hello from busybox\n' >"$T/bb.want"
	expect_rc busybox-echo 0 && expect_out busybox-echo "$T/bb.want" && pass busybox-echo
	vmrun busybox-sha256 60 run --app "$BUSYBOX" --cpio "$T/files.cpio" -- sha256sum /blob
	want=$(sha256sum "$T/root/blob" | cut -d' ' -f1)
	expect_rc busybox-sha256 0 && expect_grep busybox-sha256 out "^$want  /blob\$" && pass busybox-sha256
	vmrun busybox-sh 60 run --app "$BUSYBOX" -- sh -c 'echo a; echo b'
	printf 'a\nb\n' >"$T/sh.want"
	expect_rc busybox-sh 0 && expect_out busybox-sh "$T/sh.want" && pass busybox-sh
	vmrun busybox-false 60 run --app "$BUSYBOX" -- sh -c 'exit 42'
	expect_rc busybox-false 42 && pass busybox-exit-status
else
	skip busybox "no static /bin/busybox (install busybox-static)"
fi

# System-call coverage, checked by the app itself (memory, files, mmap, dirs),
# with musl and glibc; and a static-pie program loaded at a bias.
for app in sys-test sys-test-glibc; do
	vmrun app-$app 60 run --app "$APPS/$app" --cpio "$T/files.cpio"
	expect_rc app-$app 0 && pass app-$app
done
vmrun app-static-pie 30 run --app "$APPS/hello-static-pie"
expect_rc app-static-pie 0 && expect_out app-static-pie "$T/hello.want" && pass app-static-pie
