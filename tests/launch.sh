# tests/launch.sh - trialvm launch PKG (sourced by tests/vm-suite.sh): a
# signed package runs as it says, from the package cache; the cache is
# checked at each launch; a refused package runs nothing; disks get a fresh
# overlay per session; a crash writes its report and a fresh VM starts.
LP=$T/launch
mkdir -p "$LP"
export TRIALVM_TRUST_DIR=$LP/trust TRIALVM_CACHE=$LP/cache XDG_DATA_HOME=$LP/data
vendor_key "$LP"
lbuild() { # lbuild NAME OUT ARGS...: image build of a trialos program
	local name=$1 out=$2
	shift 2
	"$TRIALVM" image build --name "$name" --version 1.0 --vendor-key "$LP/v.pem" --kernel "$TRIALVM_TRIALOS" --mem 32M \
		-o "$out" "$@" >"$LP/$name.build" 2>&1 || fail "launch-$name" "image build: $(tail -2 "$LP/$name.build")"
}

lbuild echo "$LP/echo.tvp" --app "$APPS/echo-args" -- one two
vmrun launch-run 60 launch "$LP/echo.tvp"
cache=$(sed -n 's/.*its parts checked into \(.*\)$/\1/p' "$T/launch-run.err")
if expect_rc launch-run 0 && expect_grep launch-run err 'launch: echo 1.0, signed by vendor key [0-9a-f]{64} \(trusted: trust store\)'; then
	if [ "$(tr '\n' ' ' <"$T/launch-run.out")" != "one two " ]; then
		fail launch-run "the program printed: $(tr '\n' '|' <"$T/launch-run.out")"
	elif [ -z "$cache" ] || [ "$(dirname "$cache")" != "$LP/cache/packages" ] ||
		[ "$(basename "$cache")" != "$(sha256sum <"$LP/echo.tvp" | cut -c1-64)" ] || ! cmp -s "$cache/app" "$APPS/echo-args"; then
		fail launch-run "the cache is not $LP/cache/packages/SHA256 with the parts: '$cache'"
	else
		pass launch-run
	fi
fi
# Again: from the cache; arguments after -- replace the package's.
vmrun launch-cached 60 launch "$LP/echo.tvp" -- three
expect_rc launch-cached 0 && expect_grep launch-cached err "its parts checked, from $cache" &&
	[ "$(tr '\n' ' ' <"$T/launch-cached.out")" = "three " ] && pass launch-cached
# A cached part changed: extracted again from the (checked) package.
if [ -n "$cache" ] && chmod u+w "$cache/app" && printf 'x' >>"$cache/app"; then
	vmrun launch-cache-changed 60 launch "$LP/echo.tvp"
	expect_rc launch-cache-changed 0 && expect_grep launch-cache-changed err 'cached parts in .* were changed; extracting them again' &&
		cmp -s "$cache/app" "$APPS/echo-args" && pass launch-cache-changed
fi
# Refused before anything runs: a flipped byte, an untrusted key, expired.
cp "$LP/echo.tvp" "$LP/bad.tvp"
python3 - "$LP/bad.tvp" <<'PY'
import sys, tarfile
off = tarfile.open(sys.argv[1]).getmember('parts/app').offset_data + 64
with open(sys.argv[1], 'r+b') as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x55]))
PY
vmrun launch-tampered 60 launch "$LP/bad.tvp"
expect_rc launch-tampered 125 && expect_grep launch-tampered err 'error: launch: .*part app does not match its sha256' &&
	[ ! -s "$T/launch-tampered.out" ] && [ -z "$(ls "$LP/cache/packages" | grep -v "^$(basename "$cache")\$")" ] &&
	pass launch-tampered
lbuild old "$LP/old.tvp" --app "$APPS/hello" --expires 2021-03-04
vmrun launch-expired 60 launch "$LP/old.tvp"
expect_rc launch-expired 125 && expect_grep launch-expired err 'expired on 2021-03-04T23:59:59Z' && [ ! -s "$T/launch-expired.out" ] &&
	pass launch-expired
TRIALVM_TRUST_DIR=$LP/other-trust vmrun launch-untrusted 60 launch "$LP/echo.tvp"
expect_rc launch-untrusted 125 && expect_grep launch-untrusted err 'which you have not trusted' && [ ! -s "$T/launch-untrusted.out" ] &&
	pass launch-untrusted
# Trust on first use: on a terminal, the key's fingerprint is shown and
# the tester's yes trusts it.
fpr=$(openssl pkey -pubin -in "$LP/v.pub" -outform DER | tail -c 32 | sha256sum | cut -c1-64)
TRIALVM_TRUST_DIR=$LP/tofu timeout -k 5 60 python3 tests/tools/answer.py 'Trust this key [y/N]?' y \
	-- "$TRIALVM" launch "$LP/echo.tvp" >"$T/launch-tofu.out" 2>&1
RC=$?
expect_rc launch-tofu 0 && expect_grep launch-tofu out "^  $fpr" 'launch: trusted vendor key' '^one' &&
	[ -f "$LP/tofu/$fpr.pub" ] && pass launch-tofu
# A disk part: each session writes to a fresh overlay; the package's disk
# (in the cache) never changes.
head -c 8M /dev/zero >"$LP/disk.img"
lbuild disk "$LP/disk.tvp" --app "$APPS/disk-test" --disk "$LP/disk.img"
vmrun launch-disk 60 launch "$LP/disk.tvp"
if expect_rc launch-disk 0 && expect_grep launch-disk out '^disk-test: ok$'; then
	dcache=$(sed -n 's/.*its parts checked into \(.*\)$/\1/p' "$T/launch-disk.err")
	vmrun launch-disk2 60 launch "$LP/disk.tvp" -- check
	expect_rc launch-disk2 3 && [ -n "$dcache" ] && cmp -s "$dcache/disk0" "$LP/disk.img" && pass launch-disk ||
		fail launch-disk "second session: status $RC (3: a fresh overlay), cached disk unchanged: $(cmp "$dcache/disk0" "$LP/disk.img" 2>&1)"
fi
# A crash: its report (in the data directory by default) with the
# session's snapshots and event log, then a fresh VM; a session without a
# report leaves nothing behind.
lbuild crashy "$LP/crashy.tvp" --app "$APPS/null-deref"
vmrun launch-crash 60 launch "$LP/crashy.tvp" --max-restarts 1
reps=$(find "$LP/data/trialvm/reports/crashy" -mindepth 2 -maxdepth 2 -type d ! -name snapshots 2>/dev/null)
n=$(printf '%s\n' "$reps" | grep -c .)
if expect_rc launch-crash 123 && [ "$n" -eq 2 ] && [ "$(grep -c 'starting a fresh VM' "$T/launch-crash.err")" -eq 1 ]; then
	bad=""
	for r in $reps; do
		log=$(jq -r '.snapshots.event_log.file // empty' "$r/report.json")
		[ -n "$log" ] && [ -s "$log" ] && [ "$(dirname "$log")" = "$(dirname "$r")/snapshots" ] || bad="$bad $r:no-event-log($log)"
	done
	[ -z "$bad" ] && pass launch-crash || fail launch-crash "$bad"
else
	[ "$RC" -eq 123 ] && fail launch-crash "reports: $n in $LP/data/trialvm/reports/crashy, restarts: $(grep -c 'fresh VM' "$T/launch-crash.err")"
fi
if [ -n "$(ls -A "$LP/data/trialvm/reports/echo" 2>/dev/null)" ]; then
	fail launch-clean "sessions without a report were left: $(ls "$LP/data/trialvm/reports/echo")"
else
	pass launch-clean
fi
vmrun launch-decides 10 launch "$LP/echo.tvp" --mem 1G
expect_rc launch-decides 126 && expect_grep launch-decides err '^trialvm: launch: --mem: the package decides that' &&
	[ ! -s "$T/launch-decides.out" ] && pass launch-decides
# A booted checkpoint in the package (image build --checkpoint-at): every
# launch starts from it, so the program goes on after the line it was
# taken at, and together they print what one uninterrupted run prints.
"$TRIALVM" run --app "$APPS/counter" -q --console-log "$T/ckpt-straight.log" -- 8 2000 0 >/dev/null 2>&1
lbuild ckpt "$LP/ckpt.tvp" --app "$APPS/counter" --checkpoint-at $'count 3\n' -- 8 2000 0
vmrun launch-checkpoint 60 launch "$LP/ckpt.tvp"
if expect_rc launch-checkpoint 0 && expect_grep launch-checkpoint err 'trialvm: checkpoint written|launch: ckpt 1.0'; then
	"$TRIALVM" image verify "$LP/ckpt.tvp" --extract "$(mkdir -p "$LP/ckx" && echo "$LP/ckx")" >/dev/null 2>&1
	if ! grep -q 'booting the trial for its checkpoint' "$LP/ckpt.build"; then
		fail launch-checkpoint "image build did not boot the trial: $(tail -2 "$LP/ckpt.build" | tr '\n' '|')"
	elif [ "$(head -1 "$T/launch-checkpoint.out")" != "count 4" ] ||
		! cat <(head -3 "$T/ckpt-straight.log") "$T/launch-checkpoint.out" | cmp -s - "$T/ckpt-straight.log"; then
		fail launch-checkpoint "launch printed '$(head -c 200 "$T/launch-checkpoint.out" | tr '\n' '|')', not the run's rest after count 3"
	elif ! "$TRIALVM" snapshot inspect "$LP/ckx/checkpoint" >/dev/null 2>&1; then
		fail launch-checkpoint "the package's checkpoint part is not a snapshot"
	else
		pass launch-checkpoint
	fi
fi
vmrun launch-checkpoint-args 10 launch "$LP/ckpt.tvp" -- 9
expect_rc launch-checkpoint-args 126 && expect_grep launch-checkpoint-args err 'booted checkpoint.*leave out the arguments' &&
	pass launch-checkpoint-args
# After a crash, with the tester's consent: the report is bundled against
# the package into the spool and sent to the package's feedback server
# (the stand-in, tests/tools/feedback-standin.py), which then holds it
# once, complete, rebuilding into the very files of the report.
rm -f "$LP/fb.port"
python3 tests/tools/feedback-standin.py --data "$LP/fb" --port-file "$LP/fb.port" --token tok &
fb_pid=$!
for _ in $(seq 200); do [ -s "$LP/fb.port" ] && break; sleep 0.05; done
FB=http://127.0.0.1:$(cat "$LP/fb.port" 2>/dev/null)
lbuild fbk "$LP/fbk.tvp" --app "$APPS/null-deref" --feedback "$FB" --feedback-token tok
vmrun launch-feedback 120 launch "$LP/fbk.tvp" --on-crash exit --consent yes --comment 'clicked save'
rep=$(find "$LP/data/trialvm/reports/fbk" -mindepth 2 -maxdepth 2 -type d ! -name snapshots 2>/dev/null | head -1)
id=$(ls "$LP/fb/reports" 2>/dev/null | head -1)
if expect_rc launch-feedback 123 && expect_grep launch-feedback err 'launch: report saved to the spool as [0-9a-f]{64}' 	'sent; the vendor.s server confirmed it'; then
	rm -rf "$LP/fb-rb"
	"$TRIALVM" report rebuild "$LP/fb/reports/$id" --master "$LP/fbk.tvp" -o "$LP/fb-rb" >"$LP/fb-rb.log" 2>&1
	bad=""
	for f in $(cd "$rep" && ls); do cmp -s "$rep/$f" "$LP/fb-rb/$f" || bad="$bad $f"; done
	if [ ! -e "$LP/fb/reports/$id/complete" ] || [ "$(wc -l <"$LP/fb/created.log")" != 1 ]; then
		fail launch-feedback "the server has no complete report: $(ls "$LP/fb/reports/$id" 2>&1 | tr '\n' ' ')"
	elif [ -n "$bad" ] || [ "$(jq -r .comment "$LP/fb/reports/$id/manifest.json")" != 'clicked save' ]; then
		fail launch-feedback "what arrived differs:$bad $(tail -1 "$LP/fb-rb.log")"
	elif [ -n "$(ls "$LP/data/trialvm/spool" | grep tvb)" ]; then
		fail launch-feedback "the spool still holds it"
	else
		pass launch-feedback
	fi
fi
# On a terminal: the tester is shown the report, says yes and comments.
timeout -k 5 120 python3 tests/tools/answer.py 'Send this report to the vendor? [y/N]' y 'Enter for none): ' 'typed at the prompt' \
	-- "$TRIALVM" launch "$LP/fbk.tvp" --on-crash exit -q >"$T/launch-consent-tty.out" 2>&1
RC=$?
id2=$(jq -r 'select(.comment == "typed at the prompt") | .comment' "$LP"/fb/reports/*/manifest.json 2>/dev/null)
if expect_rc launch-consent-tty 123 && expect_grep launch-consent-tty out 'The trial crashed: the application' '  core.elf +[0-9]+ bytes' \
	"to $FB" 'sent; the vendor.s server confirmed it'; then
	[ -n "$id2" ] && [ "$(wc -l <"$LP/fb/created.log")" = 2 ] && pass launch-consent-tty ||
		fail launch-consent-tty "the server has $(wc -l <"$LP/fb/created.log") reports, none with the comment"
fi
# No consent: nothing goes; off a terminal nobody is asked.
vmrun launch-consent-no 120 launch "$LP/fbk.tvp" --on-crash exit --consent no
expect_rc launch-consent-no 123 && expect_grep launch-consent-no err 'not sent \(--consent no\)' &&
	[ "$(wc -l <"$LP/fb/created.log")" = 2 ] && pass launch-consent-no
vmrun launch-consent-ask 120 launch "$LP/fbk.tvp" --on-crash exit
expect_rc launch-consent-ask 123 && expect_grep launch-consent-ask err 'nobody was asked \(not on a terminal\)' &&
	[ "$(wc -l <"$LP/fb/created.log")" = 2 ] && pass launch-consent-ask
# The server away: the report stays in the spool, and the next launch sends it.
kill "$fb_pid"; wait "$fb_pid" 2>/dev/null
vmrun launch-spooled 120 launch "$LP/fbk.tvp" --on-crash exit --consent yes
n=$(ls "$LP/data/trialvm/spool" | grep -c tvb)
if expect_rc launch-spooled 123 && expect_grep launch-spooled err 'not sent now .*cannot reach' && [ "$n" = 1 ]; then
	python3 tests/tools/feedback-standin.py --data "$LP/fb" --listen "127.0.0.1:${FB##*:}" --token tok --port-file "$LP/fb2.port" &
	fb_pid=$!
	for _ in $(seq 200); do [ -s "$LP/fb2.port" ] && break; sleep 0.05; done
	vmrun launch-resend 60 launch "$LP/echo.tvp"
	expect_rc launch-resend 0 && expect_grep launch-resend err 'sending the 1 report left in the spool' &&
		[ "$(wc -l <"$LP/fb/created.log")" = 3 ] && [ -z "$(ls "$LP/data/trialvm/spool" | grep tvb)" ] && pass launch-resend ||
		fail launch-resend "the server has $(wc -l <"$LP/fb/created.log") reports; spool: $(ls "$LP/data/trialvm/spool")"
else
	[ "$RC" -eq 123 ] && fail launch-spooled "spool: $n entries"
fi
kill "$fb_pid" 2>/dev/null; wait "$fb_pid" 2>/dev/null
# By URL: downloaded into the download cache (the first transfer is cut
# after 100000 bytes and resumed there), checked, run; the next launch of
# the URL uses the copy; a URL that is not there is refused.
rm -f "$LP/rs.port"
python3 tests/tools/range-server.py "$LP/echo.tvp" "$LP/rs.port" --drop-after 100000 &
rs_pid=$!
for _ in $(seq 200); do [ -s "$LP/rs.port" ] && break; sleep 0.05; done
RS=http://127.0.0.1:$(cat "$LP/rs.port" 2>/dev/null)
vmrun launch-url 60 launch "$RS/echo.tvp"
sha=$(sha256sum <"$LP/echo.tvp" | cut -c1-64)
expect_rc launch-url 0 && expect_grep launch-url err 'resuming the download of .* at byte 100000' "downloaded [0-9]+ bytes, sha256 $sha" &&
	cmp -s "$LP/cache/downloads/$sha.tvp" "$LP/echo.tvp" && [ "$(tr '\n' ' ' <"$T/launch-url.out")" = "one two " ] && pass launch-url
vmrun launch-url-again 60 launch "$RS/echo.tvp" -- again
expect_rc launch-url-again 0 && expect_grep launch-url-again err 'as downloaded before' && ! grep -q 'downloading' "$T/launch-url-again.err" &&
	pass launch-url-again
vmrun launch-url-missing 60 launch "$RS/missing"
expect_rc launch-url-missing 125 && expect_grep launch-url-missing err 'error: launch: downloading .*/missing: .*404' &&
	pass launch-url-missing
kill "$rs_pid" 2>/dev/null; wait "$rs_pid" 2>/dev/null
vmrun launch-usage 10 launch
expect_rc launch-usage 126 && expect_grep launch-usage err 'Usage: trialvm launch' && pass launch-usage
unset TRIALVM_TRUST_DIR TRIALVM_CACHE XDG_DATA_HOME
