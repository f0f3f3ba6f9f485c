# tests/lib.sh: sourced by tests/test_*.sh. ok/no count checks; finish prints "N passed, N failed" and sets the exit.
# Use:  source tests/lib.sh;  check "what" command...;  check_fails 2 "what" command...;  finish
set -u
cd "$(git rev-parse --show-toplevel 2>/dev/null || dirname "$0"/..)"
PASS=0 FAIL=0
TMP=$(mktemp -d /tmp/l3t.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
PY=${PY:-/usr/bin/python3}   # Debian's python3, where python3-torch lives (the GPU machine sets its own)
ok() { PASS=$((PASS + 1)); }
no() { FAIL=$((FAIL + 1)); echo "FAIL: $*" >&2; }
# check WHAT CMD...: passes when CMD exits 0
check() { local what="$1"; shift; if "$@" >"$TMP/out" 2>&1; then ok; else no "$what"; sed 's/^/    /' "$TMP/out" | tail -n 20 >&2; fi; }
# check_fails CODE PATTERN WHAT CMD...: passes when CMD exits CODE and its stderr matches PATTERN (grep -E)
check_fails() {
    local code="$1" pat="$2" what="$3"; shift 3
    "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
    if [ "$rc" -eq "$code" ] && grep -qE -- "$pat" "$TMP/err" && [ "$(wc -l <"$TMP/err")" -le 2 ]; then ok
    else no "$what (exit $rc, want $code; stderr: $(head -c 300 "$TMP/err"))"; fi
}
finish() { echo "$PASS passed, $FAIL failed"; [ "$FAIL" -eq 0 ]; }
