# tests/bundle.sh - report bundles (sourced by tests/vm-suite.sh): a trial
# launched from a package with a booted checkpoint crashes; its report is
# bundled against the package (only what is not in it), shown, and rebuilt
# byte for byte, and the rebuilt report replays the crash. (Bundles
# without a master, and damaged and foreign ones: tests/upload.sh, which
# needs no VM.)
BP=$T/bundle
mkdir -p "$BP"
export TRIALVM_TRUST_DIR=$BP/trust TRIALVM_CACHE=$BP/cache XDG_DATA_HOME=$BP/data
vendor_key "$BP"
"$TRIALVM" image build --name cr --version 1 --vendor-key "$BP/v.pem" --app "$APPS/counter" --checkpoint-at $'count 3\n' --mem 32M \
	-o "$BP/cr.tvp" -- 60 2000 20 crash >"$BP/build.log" 2>&1 || fail bundle-make "image build: $(tail -1 "$BP/build.log")"
vmrun bundle-crash 120 launch "$BP/cr.tvp" --on-crash exit --snapshot-every 0.3 -q
R=$(find "$BP/data/trialvm/reports/cr" -mindepth 2 -maxdepth 2 -type d ! -name snapshots 2>/dev/null | head -1)
S=$(dirname "${R:-x}")/snapshots
# Every file the rebuilt report must hold: the report's and those of its snapshots.
bundle_files() { (cd "$R" && ls) ; (cd "$S" && for f in $(jq -r '.snapshots | .[].file' "$R/report.json"); do basename "$f"; done); }
same_files() { # DIR: each file of the report and its snapshots is in DIR, the same bytes
	local f bad=""
	for f in $(cd "$R" && ls); do cmp -s "$R/$f" "$1/$f" || bad="$bad $f"; done
	for f in $(jq -r '.snapshots | .[].file' "$R/report.json"); do
		cmp -s "$f" "$1/snapshots/$(basename "$f")" || bad="$bad snapshots/$(basename "$f")"
	done
	echo "$bad"
}
if expect_rc bundle-crash 123 && [ -n "$R" ] && [ "$(jq -r '.snapshots.before_crash.file' "$R/report.json")" != null ]; then
	pass bundle-crash
	vmrun bundle-make 120 report bundle "$R" --master "$BP/cr.tvp" --comment $'it crashed when I clicked\e[2J' -o "$BP/b1"
	id=$(sha256sum <"$BP/b1/manifest.json" | cut -c1-64)
	bad=""
	for c in "$BP"/b1/chunks/*; do [ "$(sha256sum <"$c" | cut -c1-64)" = "$(basename "$c")" ] || bad="$bad $(basename "$c")"; done
	listed=$(jq -r '.chunks | keys[]' "$BP/b1/manifest.json" | sort | tr '\n' ' ')
	if expect_rc bundle-make 0 && expect_grep bundle-make out "^bundle $id: $BP/b1\$"; then
		if [ -n "$bad" ]; then
			fail bundle-make "chunks not named by their sha256:$bad"
		elif [ "$listed" != "$(ls "$BP/b1/chunks" | sort | tr '\n' ' ')" ]; then
			fail bundle-make "the manifest's chunks are not the directory's"
		elif [ "$(jq -r '.master.package.sha256' "$BP/b1/manifest.json")" != "$(sha256sum <"$BP/cr.tvp" | cut -c1-64)" ]; then
			fail bundle-make "the manifest does not name the package by its sha256"
		else
			pass bundle-make
		fi
	fi
	b=$(du -sb "$BP/b1" | cut -f1)
	vmrun bundle-show 30 report show "$BP/b1"
	expect_rc bundle-show 0 && expect_grep bundle-show out "^report bundle $id\$" 'comment +it crashed when I clicked\\x1b\[2J$' \
		'^  core.elf +[0-9]+ bytes' '^  snapshots/snap-[0-9]+\.tvs +[0-9]+ bytes  snapshot$' 'chunks: all [0-9]+ present and intact' &&
		pass bundle-show
	vmrun bundle-rebuild 300 report rebuild "$BP/b1" --master "$BP/cr.tvp" -o "$BP/rb"
	if expect_rc bundle-rebuild 0 && expect_grep bundle-rebuild out 'every file matches its sha256' "replay the crash: trialvm replay $BP/rb"; then
		bad=$(same_files "$BP/rb")
		if [ -n "$bad" ]; then
			fail bundle-rebuild "differ from the tester's:$bad"
		elif ! readelf -n "$BP/rb/core.elf" 2>/dev/null | grep -q NT_PRSTATUS; then
			fail bundle-rebuild "readelf finds no NT_PRSTATUS in the rebuilt core.elf"
		else
			pass bundle-rebuild
		fi
		# The rebuilt report replays the crash with the package's parts.
		vmrun bundle-replay 120 replay "$BP/rb" --trialos "$BP/rb/master/kernel" --app "$BP/rb/master/app"
		expect_rc bundle-replay 123 && expect_grep bundle-replay err 'replay: [0-9]+ exits matched' && pass bundle-replay
	fi
	# A disk the trial wrote: the crash snapshot's disk clusters go through
	# the pages too (the package's disk is their master), and come back.
	head -c 8M /dev/zero >"$BP/disk.img"
	"$TRIALVM" image build --name dsk --version 1 --vendor-key "$BP/v.pem" --app "$APPS/disk-test" --disk "$BP/disk.img" \
		--mem 32M -o "$BP/dsk.tvp" -- crash >>"$BP/build.log" 2>&1
	vmrun bundle-disk-crash 120 launch "$BP/dsk.tvp" --on-crash exit -q
	DR=$(find "$BP/data/trialvm/reports/dsk" -mindepth 2 -maxdepth 2 -type d ! -name snapshots 2>/dev/null | head -1)
	if expect_rc bundle-disk-crash 123 && [ -n "$DR" ]; then
		cs=$(jq -r .snapshots.crash.file "$DR/report.json")
		rm -rf "$BP/bd" "$BP/rbd"
		if ! "$TRIALVM" snapshot inspect "$cs" 2>/dev/null | grep -q 'section disk'; then
			fail bundle-disk "the crash snapshot $cs holds no disk section"
		elif ! "$TRIALVM" report bundle "$DR" --master "$BP/dsk.tvp" -o "$BP/bd" >"$BP/bd.log" 2>&1 ||
			! "$TRIALVM" report rebuild "$BP/bd" --master "$BP/dsk.tvp" -o "$BP/rbd" >>"$BP/bd.log" 2>&1; then
			fail bundle-disk "$(tail -1 "$BP/bd.log")"
		elif ! cmp -s "$cs" "$BP/rbd/snapshots/$(basename "$cs")"; then
			fail bundle-disk "the crash snapshot came back different"
		else
			pass bundle-disk
		fi
	fi
else
	[ "$RC" -eq 123 ] && fail bundle-crash "no report with snapshots: '$R'"
fi
unset TRIALVM_TRUST_DIR TRIALVM_CACHE XDG_DATA_HOME
