# tests/package.sh - signed trial packages (sourced by tests/run.sh; no VM):
# what image build writes is checked with outside tools (tar lists it,
# openssl verifies the Ed25519 signature and computes the key's
# fingerprint, sha256sum each part), and image verify refuses each kind of
# bad package with its own reason: untrusted, tampered part, tampered
# manifest, unsigned, expired, another key, another format version (signed
# by openssl), truncated, a FIFO, odd entries.
PK=$T/pkg
mkdir -p "$PK"
export TRIALVM_TRUST_DIR=$PK/trust
ossl() { openssl "$@" 2>>"$PK/openssl.err"; }
ossl genpkey -algorithm ed25519 -out "$PK/v.pem" && ossl pkey -in "$PK/v.pem" -pubout -out "$PK/v.pub" &&
	ossl genpkey -algorithm ed25519 -out "$PK/w.pem" && ossl pkey -in "$PK/w.pem" -pubout -out "$PK/w.pub"
fpr_of() { openssl pkey -pubin -in "$1" -outform DER 2>/dev/null | tail -c 32 | sha256sum | cut -c1-64; }
vfpr=$(fpr_of "$PK/v.pub")
wfpr=$(fpr_of "$PK/w.pub")
# pkgpy SCRIPT: python over the package files (tarfile), for hostile copies.
pkgpy() { python3 - "$@" 2>>"$PK/py.err"; }

TRIALOS_ELF=$PWD/$BUILD/guests/trialos.elf
vmrun pkg-build 30 image build --name demo --version 1.0 --vendor-key "$PK/v.pem" --app "$APPS/hello" \
	--kernel "$TRIALOS_ELF" --expires 2099-12-31 --feedback https://feedback.example/api -o "$PK/p.tvp" -- one two
if expect_rc pkg-build 0 && expect_grep pkg-build out "package $PK/p.tvp: demo 1.0, 2 parts, [0-9]+ bytes, signed by vendor key $vfpr, expires 2099-12-31T23:59:59Z"; then
	tar -tf "$PK/p.tvp" >"$PK/list" 2>&1
	tar -xOf "$PK/p.tvp" manifest.json >"$PK/m.json"
	tar -xOf "$PK/p.tvp" manifest.sig >"$PK/m.sig"
	mkdir -p "$PK/x"
	tar -xf "$PK/p.tvp" -C "$PK/x"
	if [ "$(tr '\n' ' ' <"$PK/list")" != "manifest.json manifest.sig parts/kernel parts/app " ]; then
		fail pkg-build "tar lists: $(tr '\n' ' ' <"$PK/list")"
	elif ! openssl pkeyutl -verify -pubin -inkey "$PK/v.pub" -rawin -in "$PK/m.json" -sigfile "$PK/m.sig" >/dev/null 2>&1; then
		fail pkg-build "openssl does not verify the manifest's signature with the vendor's public key"
	elif [ "$(jq -r .vendor_key.fingerprint "$PK/m.json")" != "$vfpr" ] || [ "$(jq -r .version "$PK/m.json")" != 1 ]; then
		fail pkg-build "the manifest's key fingerprint or version: $(jq -c .vendor_key "$PK/m.json")"
	elif [ "$(jq -r .parts.app.sha256 "$PK/m.json")" != "$(sha256sum <"$APPS/hello" | cut -c1-64)" ] ||
		[ "$(jq -r .parts.kernel.sha256 "$PK/m.json")" != "$(sha256sum <"$PK/x/parts/kernel" | cut -c1-64)" ] ||
		! cmp -s "$PK/x/parts/kernel" "$TRIALOS_ELF" || ! cmp -s "$PK/x/parts/app" "$APPS/hello"; then
		fail pkg-build "a part or its sha256 in the manifest differs from the file built from"
	elif [ "$(jq -c '[.boot.kind, .boot.app, .boot.args, .expires, .feedback]' "$PK/m.json")" != \
		'["trialos","hello",["one","two"],"2099-12-31T23:59:59Z","https://feedback.example/api"]' ]; then
		fail pkg-build "the manifest's boot and package fields: $(jq -c '[.boot, .expires, .feedback]' "$PK/m.json")"
	else
		pass pkg-build
	fi
fi

# Not trusted yet: refused, naming the key and what to do.
vmrun pkg-untrusted 10 image verify "$PK/p.tvp"
expect_rc pkg-untrusted 125 && expect_grep pkg-untrusted err "signed by key $vfpr, which you have not trusted.*trialvm trust add" &&
	pass pkg-untrusted
# --key: the vendor's public key given; --extract writes the parts.
mkdir -p "$PK/ex"
vmrun pkg-key 10 image verify "$PK/p.tvp" --key "$PK/v.pub" --extract "$PK/ex"
expect_rc pkg-key 0 && expect_grep pkg-key out 'trusted: --key' 'part +kernel .* ok' 'part +app .* ok' 'expires +2099-12-31' &&
	cmp -s "$PK/ex/app" "$APPS/hello" && cmp -s "$PK/ex/kernel" "$TRIALOS_ELF" && pass pkg-key
vmrun pkg-wrong-key 10 image verify "$PK/p.tvp" --key "$PK/w.pub"
expect_rc pkg-wrong-key 125 && expect_grep pkg-wrong-key err "signed by key $vfpr, and --key .* is key $wfpr" && pass pkg-wrong-key

# The trust store: add the public key, list it, verify; remove it; trust
# on first use from the package itself, only with --yes off a terminal.
vmrun pkg-trust 10 trust add "$PK/v.pub"
if expect_rc pkg-trust 0 && expect_grep pkg-trust out "trusted vendor key $vfpr"; then
	vmrun pkg-trust-list 10 trust list
	vmrun pkg-trusted 10 image verify "$PK/p.tvp"
	if expect_rc pkg-trusted 0 && expect_grep pkg-trust-list out "^$vfpr\$" && expect_grep pkg-trusted out 'trusted: trust store'; then
		vmrun pkg-trust-rm 10 trust remove "$vfpr"
		expect_rc pkg-trust-rm 0 && vmrun pkg-trust-gone 10 image verify "$PK/p.tvp" &&
			expect_rc pkg-trust-gone 125 && vmrun pkg-tofu-noyes 10 trust add "$PK/p.tvp" &&
			expect_rc pkg-tofu-noyes 126 && expect_grep pkg-tofu-noyes err "$vfpr" 'not on a terminal' &&
			vmrun pkg-tofu 10 trust add "$PK/p.tvp" --yes && expect_rc pkg-tofu 0 &&
			vmrun pkg-tofu-ok 10 image verify "$PK/p.tvp" && expect_rc pkg-tofu-ok 0 && pass pkg-trust
	fi
fi

# refused NAME FILE REGEX: image verify FILE fails (125) saying REGEX.
refused() {
	vmrun "$1" 10 image verify "$2"
	expect_rc "$1" 125 && expect_grep "$1" err "$3" && pass "$1"
}
# A byte of a part flipped (where tarfile says its data is).
pkgpy "$PK/p.tvp" "$PK/t-part.tvp" <<'PY'
import sys, tarfile, shutil
shutil.copy(sys.argv[1], sys.argv[2])
with tarfile.open(sys.argv[1]) as t:
    off = t.getmember('parts/app').offset_data + 100
with open(sys.argv[2], 'r+b') as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 1]))
PY
refused pkg-tampered-part "$PK/t-part.tvp" 'part app does not match its sha256 in the signed manifest'
mkdir -p "$PK/ex2"
vmrun pkg-tampered-extract 10 image verify "$PK/t-part.tvp" --extract "$PK/ex2"
expect_rc pkg-tampered-extract 125 && [ -z "$(ls -A "$PK/ex2")" ] && pass pkg-tampered-extract ||
	{ [ "$RC" = 125 ] && fail pkg-tampered-extract "left in the extract directory: $(ls -A "$PK/ex2")"; }

# rebuild OUT [SKIP=name] [EDIT=python-expr on the manifest dict] [ADD=name:data]
# [SIGN=pem]: a copy of p.tvp rewritten by tarfile.
rebuild() {
	pkgpy "$PK/p.tvp" "$@" <<'PY'
import sys, tarfile, io, json, subprocess
src, out = sys.argv[1], sys.argv[2]
opts = dict(a.split('=', 1) for a in sys.argv[3:])
with tarfile.open(src) as t:
    members = [(m, t.extractfile(m).read()) for m in t.getmembers()]
res = []
for m, data in members:
    if m.name == opts.get('SKIP'):
        continue
    if m.name == 'manifest.json' and 'EDIT' in opts:
        d = json.loads(data); exec(opts['EDIT']); data = json.dumps(d, indent=2).encode()
        man = data
    if m.name == 'manifest.sig' and 'SIGN' in opts:
        open(out + '.m', 'wb').write(man)
        subprocess.run(['openssl', 'pkeyutl', '-sign', '-inkey', opts['SIGN'], '-rawin', '-in', out + '.m',
                        '-out', out + '.s'], check=True)
        data = open(out + '.s', 'rb').read()
    res.append((m, data))
if 'ADD' in opts:
    name, body = opts['ADD'].split(':', 1)
    m = tarfile.TarInfo(name); m.size = len(body)
    if name.endswith('@link'):
        m = tarfile.TarInfo(name[:-5]); m.type = tarfile.SYMTYPE; m.linkname = '/etc/passwd'; body = ''
    res.append((m, body.encode()))
with tarfile.open(out, 'w', format=tarfile.PAX_FORMAT) as t:
    for m, data in res:
        m.size = len(data)
        t.addfile(m, io.BytesIO(data) if m.isfile() else None)
PY
}
rebuild "$PK/t-man.tvp" "EDIT=d['name']='evil'"
refused pkg-tampered-manifest "$PK/t-man.tvp" 'the manifest.s signature does not verify with the vendor key it names'
rebuild "$PK/t-unsigned.tvp" SKIP=manifest.sig
refused pkg-unsigned "$PK/t-unsigned.tvp" 'is not signed \(no manifest.sig'
rebuild "$PK/t-v2.tvp" "EDIT=d['version']=2" "SIGN=$PK/v.pem"
refused pkg-version "$PK/t-v2.tvp" 'package format version 2; this trialvm reads version 1: update trialvm'
rebuild "$PK/t-extra.tvp" "ADD=parts/../../etc/evil:x"
refused pkg-traversal "$PK/t-extra.tvp" 'entry "parts/../../etc/evil" is not in the signed manifest'
rebuild "$PK/t-link.tvp" "ADD=parts/app2@link:"
refused pkg-symlink "$PK/t-link.tvp" 'entry "parts/app2" is not a plain file'
rebuild "$PK/t-nopart.tvp" SKIP=parts/app
refused pkg-missing-part "$PK/t-nopart.tvp" 'lacks part app that its manifest lists'
# The vendor's other key, not trusted.
vmrun pkg-build-w 30 image build --name demo --version 1.1 --vendor-key "$PK/w.pem" --app "$APPS/hello" \
	--kernel "$TRIALOS_ELF" -o "$PK/w.tvp"
expect_rc pkg-build-w 0 && refused pkg-other-key "$PK/w.tvp" "signed by key $wfpr, which you have not trusted"
# Expired (a build with a past date warns).
vmrun pkg-build-old 30 image build --name demo --version 0.9 --vendor-key "$PK/v.pem" --app "$APPS/hello" \
	--kernel "$TRIALOS_ELF" --expires 2020-01-01 -o "$PK/old.tvp"
expect_rc pkg-build-old 0 && expect_grep pkg-build-old err 'expires 2020-01-01T23:59:59Z is past' &&
	refused pkg-expired "$PK/old.tvp" 'expired on 2020-01-01T23:59:59Z \(demo 0.9\): ask the vendor for a newer version'
# Truncated: in a part, and right after the manifest.
size=$(stat -c %s "$PK/p.tvp")
head -c $((size / 2)) "$PK/p.tvp" >"$PK/t-half.tvp"
refused pkg-truncated "$PK/t-half.tvp" 'truncated|cut short'
head -c 1000 "$PK/p.tvp" >"$PK/t-head.tvp"
refused pkg-truncated-head "$PK/t-head.tvp" 'truncated|cut short'
printf 'not a package at all\n' >"$PK/junk.tvp"
refused pkg-junk "$PK/junk.tvp" 'not a trial package'
mkfifo "$PK/fifo.tvp"
refused pkg-fifo "$PK/fifo.tvp" 'fifo.tvp'

# A Linux master image (a hand-made one: three parts and its manifest).
mkdir -p "$PK/img"
head -c 5000 /dev/urandom >"$PK/img/vmlinuz"
head -c 3000 /dev/urandom >"$PK/img/initrd.cpio"
head -c 70000 /dev/urandom >"$PK/img/rootfs.ext4"
part() { printf '{"file": "%s", "size": %s, "sha256": "%s"}' "$1" "$(stat -c %s "$PK/img/$1")" "$(sha256sum <"$PK/img/$1" | cut -c1-64)"; }
cat >"$PK/img/manifest.json" <<EOF
{"format": "trialvm-image", "version": 1, "cmdline": "console=ttyS0", "app": "/usr/bin/crash-test",
 "memory": 536870912, "cpus": 2, "parts": {"kernel": $(part vmlinuz), "initrd": $(part initrd.cpio), "rootfs": $(part rootfs.ext4)}}
EOF
vmrun pkg-image 30 image build --name linuxdemo --version 2 --vendor-key "$PK/v.pem" --image "$PK/img" -o "$PK/img.tvp"
if expect_rc pkg-image 0; then
	vmrun pkg-image-verify 10 image verify "$PK/img.tvp"
	tar -xOf "$PK/img.tvp" manifest.json >"$PK/img-m.json"
	expect_rc pkg-image-verify 0 && expect_grep pkg-image-verify out 'boots +linux-image /usr/bin/crash-test, 512 MiB, 2 vCPUs' \
		'part +rootfs +70000 bytes' && [ "$(jq -r '.devices[0].part + " " + .boot.cmdline' "$PK/img-m.json")" = "rootfs console=ttyS0" ] &&
		[ "$(tar -xOf "$PK/img.tvp" parts/rootfs | sha256sum)" = "$(sha256sum <"$PK/img/rootfs.ext4")" ] && pass pkg-image
fi

# Usage: what is missing, a bad date, a key of another kind.
vmrun pkg-usage 10 image build --name x --version 1 --app "$APPS/hello" -o "$PK/u.tvp"
expect_rc pkg-usage 126 && expect_grep pkg-usage err 'give --name, --version, --vendor-key and -o' && pass pkg-usage
vmrun pkg-bad-date 10 image build --name x --version 1 --vendor-key "$PK/v.pem" --app "$APPS/hello" --expires 2027-02-30 -o "$PK/u.tvp"
expect_rc pkg-bad-date 126 && expect_grep pkg-bad-date err '--expires 2027-02-30: give YYYY-MM-DD' && pass pkg-bad-date
ossl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 -out "$PK/rsa.pem"
vmrun pkg-rsa 10 image build --name x --version 1 --vendor-key "$PK/rsa.pem" --app "$APPS/hello" --kernel "$TRIALOS_ELF" -o "$PK/u.tvp"
expect_rc pkg-rsa 125 && expect_grep pkg-rsa err 'is a RSA key; trial packages are signed with Ed25519' && [ ! -e "$PK/u.tvp" ] && pass pkg-rsa
unset TRIALVM_TRUST_DIR
