#!/usr/bin/env bash
# tests/check-layers.sh [ROOT] - the layers depend one way:
#   vmm <- devices <- reporter <- images <- monitor   (the command line is in monitor/)
# A source file may include headers of its own layer and of the layers below
# it (and guests/include, the guest ABI, from anywhere); nothing else. Prints
# one line per offending #include ("FILE:LINE: LAYER includes HEADER of a
# higher layer") and exits 1 if there is any.
set -u
cd "${1:-$(dirname "$0")/..}" || exit 2
rank() {
	case $1 in
	guests) echo 0 ;; vmm) echo 1 ;; devices) echo 2 ;; reporter) echo 3 ;; images) echo 4 ;; monitor) echo 5 ;;
	*) echo 9 ;;
	esac
}
bad=0
for f in vmm/*.[ch] devices/*.[ch] reporter/*.[ch] images/*.[ch] monitor/*.[ch]; do
	[ -f "$f" ] || continue
	dir=${f%%/*}
	own=$(rank "$dir")
	while IFS=: read -r line inc; do
		hdr=$(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' <<<"$inc")
		[ -n "$hdr" ] || continue
		case $hdr in
		../*/*) target=${hdr#../}; target=${target%%/*} ;;
		*/*) target=unknown ;;
		*) target=$dir ;;
		esac
		r=$(rank "$target")
		if [ "$r" -gt "$own" ]; then
			echo "$f:$line: $dir includes \"$hdr\", which is in a higher layer ($target)"
			bad=1
		fi
	done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f")
done
exit $bad
