# tests/tools/lib.sh — shared by the vlunctl tests (sourced, not run).
#
# vc RC ARGS...    run vlunctl ARGS, require exit status RC; stdout in $T/out,
#                  stderr in $T/err. A failing command must say why in exactly
#                  one line "vlunctl: ..." (library warnings aside).
# out_has RE / out_lacks RE / err_has RE     grep -E on the last output
# json PYEXPR      evaluate a Python expression over d = json of $T/out
# finish           prints the tally and exits (0 all passed, 1 otherwise)
set -u

: "${VLUN_BUILD_ROOT:?VLUN_BUILD_ROOT must point at the build directory}"
VLUNCTL=$VLUN_BUILD_ROOT/tools/vlunctl
HELPER=$VLUN_BUILD_ROOT/tests/tools/vlunctl_test_helper
[ -x "$VLUNCTL" ] || { echo "no vlunctl at $VLUNCTL" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 missing: skipping" >&2; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/vlunctl-test.XXXXXX")
bg_pids=()
cleanup() {
	local p
	for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

npass=0 nfail=0 last=""
ok() { npass=$((npass + 1)); }
bad() {
	nfail=$((nfail + 1))
	echo "FAIL: $*" >&2
	echo "  command: $last" >&2
	sed 's/^/  stdout: /' "$T/out" | head -20 >&2
	sed 's/^/  stderr: /' "$T/err" | head -20 >&2
}

vc() {
	local want=$1 rc
	shift
	last="vlunctl $*"
	"$VLUNCTL" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" != "$want" ]; then bad "exit status $rc, expected $want"; return 0; fi
	ok
	if [ "$want" != 0 ] && [ "${VC_MULTILINE:-0}" = 0 ]; then
		local lines
		lines=$(grep -vc '^vlunctl: warning: ' "$T/err")
		if [ "$lines" != 1 ] || ! grep -v '^vlunctl: warning: ' "$T/err" | grep -q '^vlunctl: .*: .*\. '; then
			bad "error output is not one line 'vlunctl: <what>: <why>. <what to do>'"
		else ok; fi
	fi
	return 0
}
out_has() { if grep -Eq -- "$1" "$T/out"; then ok; else bad "stdout lacks /$1/"; fi; }
out_lacks() { if grep -Eq -- "$1" "$T/out"; then bad "stdout has /$1/"; else ok; fi; }
err_has() { if grep -Eq -- "$1" "$T/err"; then ok; else bad "stderr lacks /$1/"; fi; }
out_empty() { if [ -s "$T/out" ]; then bad "stdout not empty"; else ok; fi; }
json() {
	local why
	if why=$(python3 - "$T/out" "$1" 2>&1 <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except ValueError as e:
    raise SystemExit("stdout is not JSON: %s" % e)
try:
    ok = eval(sys.argv[2])
except Exception as e:
    raise SystemExit("%s: %s" % (type(e).__name__, e))
if not ok:
    raise SystemExit("false")
PY
	); then ok; else bad "json: $1 ($why)"; fi
}
finish() {
	echo "$npass checks passed, $nfail failed"
	[ "$nfail" = 0 ]
	exit $?
}

# mkmembers DIR N SIZE: N sparse member files DIR/m0.. of SIZE
mkmembers() {
	mkdir -p "$1"
	local i
	for ((i = 0; i < $2; i++)); do truncate -s "$3" "$1/m$i"; done
}
