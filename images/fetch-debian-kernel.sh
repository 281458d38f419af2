#!/bin/sh
# images/fetch-debian-kernel.sh [--flavor FLAVOR] [--modules] [--headers] [--dbg] OUTDIR
#
# Fetch one of Debian's kernels (the metapackage linux-image-FLAVOR, default
# cloud-amd64, and the versioned linux-image-*-FLAVOR package it depends on)
# with apt-get download, unpack it with dpkg-deb -x (nothing is installed on
# this system), and copy
#   boot/vmlinuz-*            -> OUTDIR/vmlinuz
#   boot/System.map-*         -> OUTDIR/System.map
#   the package's version     -> OUTDIR/release  (e.g. 6.1.0-57-amd64)
#   lib/modules/RELEASE/      -> OUTDIR/modules/ (with --modules)
#   with --headers: linux-headers-RELEASE, its -common and linux-kbuild
#   packages of the same version, unpacked into OUTDIR/headers/, where
#   OUTDIR/headers/build is the directory to build out-of-tree modules
#   against (make -C OUTDIR/headers/build M=DIR modules, with gcc-12)
#   with --dbg: the kernel's vmlinux with its debug information, from
#   linux-image-RELEASE-dbg (an 860 MB download; only that file is kept)
#                             -> OUTDIR/vmlinux-dbg  (for `crash`)
# Idempotent: does nothing when OUTDIR/vmlinuz (and, with --modules,
# OUTDIR/modules; with --headers, OUTDIR/headers/build; with --dbg,
# OUTDIR/vmlinux-dbg) already exists. Runs `apt-get update` only when the first
# download attempt fails. Used for the tests' Linux guest (cloud-amd64) and
# for the emulated KVM host of ci/kvm-host (amd64, with its modules).
set -eu

flavor=cloud-amd64
modules=0
headers=0
dbg=0
while [ $# -gt 0 ]; do
	case $1 in
	--flavor) [ $# -ge 2 ] || { echo "$0: --flavor needs a value" >&2; exit 2; }; flavor=$2; shift 2 ;;
	--modules) modules=1; shift ;;
	--headers) headers=1; shift ;;
	--dbg) dbg=1; shift ;;
	--) shift; break ;;
	-*) echo "$0: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
if [ $# -ne 1 ]; then
	echo "usage: $0 [--flavor FLAVOR] [--modules] [--headers] [--dbg] OUTDIR" >&2
	exit 2
fi
out=$1
meta=linux-image-$flavor

have_kernel() { [ -s "$out/vmlinuz" ] && [ -s "$out/release" ] && { [ $modules -eq 0 ] || [ -d "$out/modules" ]; }; }
have_headers() { [ $headers -eq 0 ] || [ -e "$out/headers/build/Makefile" ]; }
have_dbg() { [ $dbg -eq 0 ] || [ -s "$out/vmlinux-dbg" ]; }
if have_kernel && have_headers && have_dbg; then
	echo "fetch-debian-kernel: $out/vmlinuz already exists, nothing to do"
	exit 0
fi

for tool in apt-get apt-cache dpkg-deb; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "fetch-debian-kernel: '$tool' not found; this script needs a Debian/Ubuntu host with apt and dpkg" >&2
		exit 1
	fi
done

mkdir -p "$out"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tvm-kernel.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# The headers for out-of-tree modules of RELEASE (the kernel's own
# version): the packages' files under $out/headers, the amd64 headers'
# one-line Makefile pointed at the unpacked -common tree (it names
# /usr/src/...). Needs apt lists that know the packages.
fetch_headers() {
	release=$(cat "$out/release")
	hdr=linux-headers-$release
	kbuild=$(apt-cache depends "$hdr" 2>/dev/null | sed -n 's/^[[:space:]]*Depends:[[:space:]]*\(linux-kbuild-[0-9.]*\)[[:space:]]*$/\1/p' | head -n 1)
	common=$(apt-cache depends "$hdr" 2>/dev/null | sed -n 's/^[[:space:]]*Depends:[[:space:]]*\(linux-headers-[^[:space:]]*-common\)[[:space:]]*$/\1/p' | head -n 1)
	if [ -z "$kbuild" ] || [ -z "$common" ]; then
		apt-get update >"$tmp/update.log" 2>&1 || true
		kbuild=$(apt-cache depends "$hdr" 2>/dev/null | sed -n 's/^[[:space:]]*Depends:[[:space:]]*\(linux-kbuild-[0-9.]*\)[[:space:]]*$/\1/p' | head -n 1)
		common=$(apt-cache depends "$hdr" 2>/dev/null | sed -n 's/^[[:space:]]*Depends:[[:space:]]*\(linux-headers-[^[:space:]]*-common\)[[:space:]]*$/\1/p' | head -n 1)
	fi
	if [ -z "$kbuild" ] || [ -z "$common" ]; then
		echo "fetch-debian-kernel: cannot resolve $hdr and what it depends on (apt lists without it, or offline)" >&2
		exit 1
	fi
	mkdir "$tmp/h"
	if ! (cd "$tmp/h" && apt-get download "$hdr" "$common" "$kbuild") >"$tmp/apt-h.log" 2>&1; then
		echo "fetch-debian-kernel: 'apt-get download $hdr $common $kbuild' failed:" >&2
		tail -n 5 "$tmp/apt-h.log" >&2
		exit 1
	fi
	rm -rf "$out/headers.tmp" "$out/headers"
	mkdir "$out/headers.tmp"
	for d in "$tmp"/h/*.deb; do dpkg-deb -x "$d" "$out/headers.tmp"; done
	src=$out/headers.tmp/usr/src
	if [ ! -f "$src/$hdr/Makefile" ] || [ ! -f "$src/$common/Makefile" ]; then
		echo "fetch-debian-kernel: $hdr unpacked without its Makefiles" >&2
		exit 1
	fi
	# absolute, as Debian's own one-line Makefile is; then the whole tree
	# appears at once
	printf 'include %s/headers/usr/src/%s/Makefile\n' "$(cd "$out" && pwd)" "$common" >"$src/$hdr/Makefile"
	ln -s "usr/src/$hdr" "$out/headers.tmp/build"
	mv "$out/headers.tmp" "$out/headers"
	echo "fetch-debian-kernel: $hdr -> $out/headers/build"
}
# The -dbg package's vmlinux only, streamed out of the package.
fetch_dbg() {
	release=$(cat "$out/release")
	mkdir "$tmp/d"
	if ! (cd "$tmp/d" && apt-get download "linux-image-$release-dbg") >"$tmp/apt-d.log" 2>&1; then
		echo "fetch-debian-kernel: 'apt-get download linux-image-$release-dbg' failed:" >&2
		tail -n 5 "$tmp/apt-d.log" >&2
		exit 1
	fi
	mkdir "$tmp/d/x"
	dpkg-deb --fsys-tarfile "$tmp"/d/*.deb | tar -x -C "$tmp/d/x" "./usr/lib/debug/boot/vmlinux-$release"
	if [ ! -s "$tmp/d/x/usr/lib/debug/boot/vmlinux-$release" ]; then
		echo "fetch-debian-kernel: linux-image-$release-dbg holds no usr/lib/debug/boot/vmlinux-$release" >&2
		exit 1
	fi
	mv "$tmp/d/x/usr/lib/debug/boot/vmlinux-$release" "$out/vmlinux-dbg.tmp"
	mv "$out/vmlinux-dbg.tmp" "$out/vmlinux-dbg"
	echo "fetch-debian-kernel: linux-image-$release-dbg -> $out/vmlinux-dbg"
}
if have_kernel; then
	have_headers || fetch_headers
	have_dbg || fetch_dbg
	exit 0
fi

# The versioned package the metapackage depends on, e.g.
# linux-image-6.1.0-26-cloud-amd64 (apt-cache works from the local lists).
resolve_versioned() {
	apt-cache depends "$meta" 2>/dev/null |
		sed -n "s/^[[:space:]]*Depends:[[:space:]]*\\(linux-image-[0-9][^[:space:]]*-$flavor\\)[[:space:]]*\$/\\1/p" |
		head -n 1
}

download() {
	(cd "$tmp" && rm -f ./*.deb && apt-get download "$meta" "$1") >"$tmp/apt.log" 2>&1
}

pkg=$(resolve_versioned || true)
if [ -z "$pkg" ] || ! download "$pkg"; then
	echo "fetch-debian-kernel: first download attempt failed; running apt-get update" >&2
	if ! apt-get update >"$tmp/update.log" 2>&1; then
		echo "fetch-debian-kernel: 'apt-get update' failed (offline, or no permission to update the package lists?):" >&2
		tail -n 5 "$tmp/update.log" >&2
		echo "fetch-debian-kernel: connect to a Debian mirror (or run as root) and retry" >&2
		exit 1
	fi
	pkg=$(resolve_versioned || true)
	if [ -z "$pkg" ]; then
		echo "fetch-debian-kernel: cannot resolve the kernel package that $meta depends on (is this Debian with 'main' enabled?)" >&2
		exit 1
	fi
	if ! download "$pkg"; then
		echo "fetch-debian-kernel: 'apt-get download $meta $pkg' failed (offline or mirror unreachable?):" >&2
		tail -n 5 "$tmp/apt.log" >&2
		exit 1
	fi
fi

first() { [ -e "$1" ] && printf '%s\n' "$1"; }
deb=$(first "$tmp"/"$pkg"_*.deb || true)
if [ -z "$deb" ]; then
	echo "fetch-debian-kernel: apt-get download produced no $pkg .deb in $tmp" >&2
	exit 1
fi
mkdir "$tmp/x"
dpkg-deb -x "$deb" "$tmp/x"

vmlinuz=$(first "$tmp"/x/boot/vmlinuz-* || true)
sysmap=$(first "$tmp"/x/boot/System.map-* || true)
if [ -z "$vmlinuz" ]; then
	echo "fetch-debian-kernel: $deb contains no boot/vmlinuz-*" >&2
	exit 1
fi
release=${vmlinuz##*/vmlinuz-}
if [ -n "$sysmap" ]; then
	cp "$sysmap" "$out/System.map.tmp" && mv "$out/System.map.tmp" "$out/System.map"
	# Debian ships a one-line placeholder; the real map is in the -dbg package.
	if [ "$(wc -l <"$out/System.map")" -le 1 ]; then
		echo "fetch-debian-kernel: note: Debian's System.map is a placeholder (the real one is in $pkg-dbg)" >&2
	fi
else
	echo "fetch-debian-kernel: warning: $deb contains no boot/System.map-*" >&2
fi
if [ $modules -eq 1 ]; then
	if [ ! -d "$tmp/x/lib/modules/$release" ]; then
		echo "fetch-debian-kernel: $deb contains no lib/modules/$release" >&2
		exit 1
	fi
	rm -rf "$out/modules.tmp" "$out/modules"
	mv "$tmp/x/lib/modules/$release" "$out/modules.tmp"
	mv "$out/modules.tmp" "$out/modules"
fi
printf '%s\n' "$release" >"$out/release.tmp" && mv "$out/release.tmp" "$out/release"
# vmlinuz last, atomically: its presence marks a complete fetch.
cp "$vmlinuz" "$out/vmlinuz.tmp" && mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "fetch-debian-kernel: $pkg -> $out/vmlinuz ($(wc -c <"$out/vmlinuz") bytes)"
have_headers || fetch_headers
have_dbg || fetch_dbg
