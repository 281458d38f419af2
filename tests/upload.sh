# tests/upload.sh - the spool and the upload protocol (sourced by
# tests/run.sh; no VM: a report is bundled against a package and sent to
# the loopback stand-in server, tests/tools/feedback-standin.py): every
# report arrives exactly once and byte for byte (rebuilt from what the
# server stored), across a server killed mid-chunk, a client killed
# mid-chunk, a duplicate send, a damaged chunk, a busy server, an expired
# token, a server that is not there, TLS, and a full spool disk.
UP=$T/upload
mkdir -p "$UP/report"
export TRIALVM_TRUST_DIR=$UP/trust XDG_DATA_HOME=$UP/data
SPOOL=$UP/data/trialvm/spool
vendor_key "$UP"
# A report as trialvm run writes one (a crash of no VM: its files are what
# a bundle keeps): 6 MiB that compress badly, so the bundle has several chunks.
head -c $((6 << 20)) /dev/urandom >"$UP/report/core.elf"
printf 'the console\n' >"$UP/report/console.log"
cat >"$UP/report/report.json" <<'JSON'
{"schema": "trialvm-report", "version": 1, "id": "20261208T000000.000Z-1-1", "time": "2026-12-08T00:00:00.000Z",
 "cause": {"kind": "app-fault", "summary": "the application app died of signal 11"},
 "files": {"console.log": {"size": 12}, "core.elf": {"size": 6291456}}}
JSON
sv_pid=""
# sv NAME [ARGS...]: a stand-in server (data in $UP/NAME), its URL in $URL.
sv() {
	local name=$1
	shift
	rm -f "$UP/$name.port"
	python3 tests/tools/feedback-standin.py --data "$UP/$name" --port-file "$UP/$name.port" --log "$UP/$name.log" "$@" \
		2>>"$UP/$name.err" &
	sv_pid=$!
	for _ in $(seq 100); do [ -s "$UP/$name.port" ] && break; sleep 0.05; done
	URL=http://127.0.0.1:$(cat "$UP/$name.port" 2>/dev/null)
}
sv_stop() { [ -n "$sv_pid" ] && kill "$sv_pid" 2>/dev/null && wait "$sv_pid" 2>/dev/null; sv_pid=""; }
# pkg NAME URL [TOKEN]: a package whose reports go to URL.
pkg() {
	"$TRIALVM" image build --name "$1" --version 1 --vendor-key "$UP/v.pem" --app "$APPS/hello" --feedback "$2" \
		${3:+--feedback-token "$3"} -o "$UP/$1.tvp" >/dev/null 2>"$UP/$1.build" ||
		echo "image build $1: $(cat "$UP/$1.build")" >&2
}
# arrived NAME SERVER: the report is on the server once, complete, and
# rebuilds from what the server stored into the very files sent.
arrived() {
	local name=$1 srv=$UP/$2 id
	id=$(ls "$srv/reports" 2>/dev/null | head -1)
	if [ "$(wc -l <"$srv/created.log" 2>/dev/null)" != 1 ] || [ ! -e "$srv/reports/$id/complete" ]; then
		fail "$name" "the server holds $(wc -l <"$srv/created.log" 2>/dev/null) reports, complete: $(ls "$srv/reports/$id" 2>&1 | tr '\n' ' ')"
		return 1
	fi
	rm -rf "$UP/$name.rb"
	if ! "$TRIALVM" report rebuild "$srv/reports/$id" --master "$UP/$3.tvp" -o "$UP/$name.rb" >/dev/null 2>"$UP/$name.rberr"; then
		fail "$name" "the stored report does not rebuild: $(tail -1 "$UP/$name.rberr")"
		return 1
	fi
	for f in report.json console.log core.elf; do
		cmp -s "$UP/report/$f" "$UP/$name.rb/$f" || { fail "$name" "$f arrived changed"; return 1; }
	done
	if [ -n "$(ls "$SPOOL" 2>/dev/null | grep -v '^\.new$')" ]; then
		fail "$name" "the spool still holds $(ls "$SPOOL" | tr '\n' ' ')"
		return 1
	fi
	return 0
}

# A plain send: saved, sent, confirmed, gone from the spool.
sv s1
pkg p1 "$URL"
vmrun upload-send 60 report send "$UP/report" --master "$UP/p1.tvp" --comment 'my words'
expect_rc upload-send 0 && expect_grep upload-send err 'report: saved to the spool as [0-9a-f]{64}' 'the server confirmed it' &&
	arrived upload-send s1 p1 && [ "$(jq -r .comment "$UP"/s1/reports/*/manifest.json)" = 'my words' ] && pass upload-send
sv_stop

# The same report twice (a reply lost after the server stored it): one report.
sv s2
pkg p2 "$URL"
"$TRIALVM" report send "$UP/report" --master "$UP/p2.tvp" --tries 1 >/dev/null 2>&1
id=$(ls "$UP/s2/reports" | head -1)
sv_stop
# The spool entry again (the server's copy is the same bundle), as if the
# confirmation had been lost.
sv s2
cp -r "$UP/s2/reports/$id" "$SPOOL/$id.tvb" 2>/dev/null
jq -n --arg u "$URL" '{url: $u, token: "", trial: "p2 1", report: "x", created: "now", attempts: 0, last_error: null}' \
	>"$SPOOL/$id.tvb/upload.json"
vmrun upload-duplicate 60 spool send
expect_rc upload-duplicate 0 && expect_grep upload-duplicate err "sent report $id" && arrived upload-duplicate s2 p2 &&
	pass upload-duplicate
sv_stop

# The server killed in the middle of the second chunk (and started again
# on the same port): the client backs off, resumes, and the report
# arrives once.
sv s3 --die-mid-chunk 2
port=${URL##*:}
pkg p3 "$URL"
( while [ ! -e "$UP/s3.stop" ]; do
	wait "$sv_pid" 2>/dev/null
	python3 tests/tools/feedback-standin.py --data "$UP/s3" --listen "127.0.0.1:$port" --log "$UP/s3.log" 2>>"$UP/s3.err" &
	sv_pid=$!
	wait "$sv_pid"
done ) &
loop=$!
vmrun upload-server-killed 90 report send "$UP/report" --master "$UP/p3.tvp" --tries 6
touch "$UP/s3.stop"
expect_rc upload-server-killed 0 && expect_grep upload-server-killed err 'upload: .*trying again in' &&
	arrived upload-server-killed s3 p3 && pass upload-server-killed
pkill -f "feedback-standin.py --data $UP/s3" 2>/dev/null
wait "$loop" 2>/dev/null
sv_pid=""

# The client killed (kill -9) in the middle of a chunk: the next send
# resumes, sending only the chunks the server lacks.
sv s4 --slow 2000000
pkg p4 "$URL"
"$TRIALVM" report send "$UP/report" --master "$UP/p4.tvp" --tries 1 >"$UP/k.out" 2>"$UP/k.err" &
cpid=$!
for _ in $(seq 300); do grep -q 'PUT /api/v1/reports/[0-9a-f]*/chunks/[0-9a-f]* 201' "$UP/s4.log" 2>/dev/null && break; sleep 0.05; done
kill -9 "$cpid" 2>/dev/null
wait "$cpid" 2>/dev/null
first=$(grep -o 'chunks/[0-9a-f]* 201' "$UP/s4.log" | head -1 | cut -d' ' -f1)
vmrun upload-client-killed 90 spool send
if expect_rc upload-client-killed 0 && arrived upload-client-killed s4 p4; then
	[ -n "$first" ] && [ "$(grep -c "$first" "$UP/s4.log")" = 1 ] && pass upload-client-killed ||
		fail upload-client-killed "the chunk the server had ($first) was sent again: $(grep -c "${first:-x}" "$UP/s4.log")"
fi
sv_stop

# A chunk damaged on the way: refused (422) and sent again.
sv s5 --corrupt-chunk 1
pkg p5 "$URL"
vmrun upload-corrupt 60 report send "$UP/report" --master "$UP/p5.tvp"
expect_rc upload-corrupt 0 && arrived upload-corrupt s5 p5 && grep -q 'chunks/.* 422$' "$UP/s5.log" && pass upload-corrupt ||
	{ [ "$RC" -eq 0 ] && ! grep -q ' 422$' "$UP/s5.log" && fail upload-corrupt "the server saw no damaged chunk"; }
sv_stop

# A busy server (429, Retry-After: 1): the client waits as asked.
sv s6 --busy 2
pkg p6 "$URL"
vmrun upload-busy 60 report send "$UP/report" --master "$UP/p6.tvp"
if expect_rc upload-busy 0 && arrived upload-busy s6 p6; then
	gap=$(awk '$4 == 429 { t = $1 } $4 != 429 && t && !g { g = $1 - t } END { print (g >= 0.95) ? "ok" : g }' "$UP/s6.log")
	[ "$gap" = ok ] && pass upload-busy || fail upload-busy "the next request came $gap s after the last 429"
fi
sv_stop

# An expired token: refused, not tried again; the report stays in the
# spool, which says why.
sv s7 --token new-token
pkg p7 "$URL" old-token
vmrun upload-token 60 report send "$UP/report" --master "$UP/p7.tvp"
token_rc=$RC
vmrun upload-token-list 10 spool list
if RC=$token_rc expect_rc upload-token 125 && expect_grep upload-token err "refused the package's token \(401" 'it stays in the spool' &&
	expect_grep upload-token-list out 'last error +.*refused the package.s token' '^  tries +1$' '^  trial +p7 1$'; then
	[ "$(grep -c ' 401$' "$UP/s7.log")" = 1 ] && pass upload-token || fail upload-token "tried $(grep -c ' 401$' "$UP/s7.log") times"
fi
vmrun upload-drop 10 spool drop "$(ls "$SPOOL" | grep tvb | head -1 | cut -c1-12)"
expect_rc upload-drop 0 && [ -z "$(ls "$SPOOL" | grep tvb)" ] && pass upload-drop
sv_stop

# No server: tried with backoff, kept.
pkg p8 "http://127.0.0.1:9"
vmrun upload-noserver 60 report send "$UP/report" --master "$UP/p8.tvp" --tries 2
expect_rc upload-noserver 125 && expect_grep upload-noserver err 'cannot reach the feedback server at http://127.0.0.1:9' \
	'trying again in' && [ "$(ls "$SPOOL" | grep -c tvb)" = 1 ] && pass upload-noserver
"$TRIALVM" spool drop "$(ls "$SPOOL" | grep tvb | head -1 | cut -c1-12)" >/dev/null 2>&1

# TLS: a certificate nobody vouches for is refused; with TRIALVM_CA_FILE
# vouching for it, the report goes.
openssl req -x509 -newkey ed25519 -nodes -keyout "$UP/tls.key" -out "$UP/tls.crt" -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 2>/dev/null
sv s9 --tls-cert "$UP/tls.crt" --tls-key "$UP/tls.key"
pkg p9 "https://127.0.0.1:${URL##*:}"
vmrun upload-tls-untrusted 60 report send "$UP/report" --master "$UP/p9.tvp" --tries 1
expect_rc upload-tls-untrusted 125 && expect_grep upload-tls-untrusted err 'certificate' && pass upload-tls-untrusted
TRIALVM_CA_FILE=$UP/tls.crt vmrun upload-tls 60 spool send
expect_rc upload-tls 0 && arrived upload-tls s9 p9 && pass upload-tls
sv_stop

# A spool on a full disk: the report is not saved (and says so), and
# nothing half-written is left.
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
	mkdir -p "$UP/full"
	pkg p10 "http://127.0.0.1:9"
	unshare -m sh -c "mount -t tmpfs -o size=1m tmpfs '$UP/full' && '$TRIALVM' report send '$UP/report' --master '$UP/p10.tvp' \
		--spool '$UP/full/spool' --tries 1; echo rc=\$? >&2; find '$UP/full' -type f >&2" \
		>"$T/upload-full.out" 2>"$T/upload-full.err"
	if grep -q '^rc=125$' "$T/upload-full.err" && expect_grep upload-full err 'No space left on device'; then
		[ -z "$(grep "^$UP/full" "$T/upload-full.err")" ] && pass upload-full ||
			fail upload-full "left behind: $(grep "^$UP/full" "$T/upload-full.err" | head -3 | tr '\n' ' ')"
	else
		fail upload-full "$(tail -3 "$T/upload-full.err" | tr '\n' '|')"
	fi
else
	skip upload-full "a full disk is made with a tmpfs mount in a mount namespace, which needs root and unshare -m"
fi
# Bundles read back: without a master every page is stored, and it still
# rebuilds; another package as the master, a damaged or missing chunk, an
# existing output and a manifest naming a path outside are refused, and
# nothing is left behind.
"$TRIALVM" image build --name other --version 1 --vendor-key "$UP/v.pem" --app "$APPS/echo-args" -o "$UP/other.tvp" \
	>/dev/null 2>&1
vmrun bundle-master 60 report bundle "$UP/report" --master "$UP/p1.tvp" -o "$UP/b1"
vmrun bundle-nomaster 60 report bundle "$UP/report" -o "$UP/b2"
vmrun bundle-nomaster-rebuild 60 report rebuild "$UP/b2" --master "$UP/other.tvp" -o "$UP/rb2"
if expect_rc bundle-master 0 && expect_rc bundle-nomaster 0 && expect_rc bundle-nomaster-rebuild 0; then
	bad=""
	for f in report.json console.log core.elf; do cmp -s "$UP/report/$f" "$UP/rb2/$f" || bad="$bad $f"; done
	[ -z "$bad" ] && [ "$(jq -r .master "$UP/b2/manifest.json")" = null ] && pass bundle-nomaster ||
		fail bundle-nomaster "rebuilt differently:$bad"
fi
vmrun bundle-wrong-master 60 report rebuild "$UP/b1" --master "$UP/other.tvp" -o "$UP/rb3"
expect_rc bundle-wrong-master 125 && expect_grep bundle-wrong-master err 'not the master .* was made against' &&
	[ ! -e "$UP/rb3" ] && pass bundle-wrong-master
cp -r "$UP/b1" "$UP/b4"
c=$(ls -S "$UP/b4/chunks" | head -1)
chmod u+w "$UP/b4/chunks/$c"
printf 'X' | dd of="$UP/b4/chunks/$c" bs=1 seek=20 conv=notrunc 2>/dev/null
vmrun bundle-damaged 60 report rebuild "$UP/b4" --master "$UP/p1.tvp" -o "$UP/rb4"
expect_rc bundle-damaged 125 && expect_grep bundle-damaged err "chunk $c is damaged" &&
	[ -z "$(ls -d "$UP"/rb4* 2>/dev/null)" ] && pass bundle-damaged
rm -f "$UP/b4/chunks/$c"
vmrun bundle-missing 60 report show "$UP/b4"
expect_rc bundle-missing 125 && expect_grep bundle-missing err "b4/chunks/$c" && pass bundle-missing
mkdir -p "$UP/rb5"
vmrun bundle-exists 60 report rebuild "$UP/b1" --master "$UP/p1.tvp" -o "$UP/rb5"
expect_rc bundle-exists 125 && expect_grep bundle-exists err '-o .*/rb5 exists' && pass bundle-exists
cp -r "$UP/b1" "$UP/b6"
jq '.files[0].name = "../../escape"' "$UP/b1/manifest.json" >"$UP/b6/manifest.json"
vmrun bundle-traversal 60 report rebuild "$UP/b6" --master "$UP/p1.tvp" -o "$UP/rb6"
expect_rc bundle-traversal 125 && expect_grep bundle-traversal err 'not a report bundle this trialvm reads: file 0 has no plain name' &&
	[ ! -e "$UP/escape" ] && [ ! -e "$UP/rb6" ] && pass bundle-traversal
vmrun bundle-usage 10 report rebuild "$UP/b1" -o "$UP/x"
expect_rc bundle-usage 126 && expect_grep bundle-usage err 'rebuild needs --master' && pass bundle-usage
vmrun upload-usage 10 spool frob
expect_rc upload-usage 126 && expect_grep upload-usage err "unknown command 'frob'" && pass upload-usage
unset TRIALVM_TRUST_DIR XDG_DATA_HOME
