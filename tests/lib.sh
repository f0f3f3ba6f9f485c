# tests/lib.sh: sourced by tests/test_*.sh. ok/no count checks, skip counts one that could not run here (never a
# pass); finish prints "N passed, N failed" (", N skipped" after it when something was skipped) and sets the exit.
# Use:  source tests/lib.sh;  check "what" command...;  check_fails 2 "pattern" "what" command...;  sub_checker LOG cmd...;
#       skip "why";  finish
set -u
cd "$(git rev-parse --show-toplevel 2>/dev/null || dirname "$0"/..)"
PASS=0 FAIL=0 SKIP=0
TMP=$(mktemp -d /tmp/l3t.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
PY=${PY:-/usr/bin/python3}   # Debian's python3, where python3-torch lives (the GPU machine sets its own)
ok() { PASS=$((PASS + 1)); }
no() { FAIL=$((FAIL + 1)); echo "FAIL: $*" >&2; }
# skip WHY: a check that cannot run on this machine (no GPU): "skipped: WHY", counted apart
skip() { SKIP=$((SKIP + 1)); echo "skipped: $*"; }
# check WHAT CMD...: passes when CMD exits 0
check() { local what="$1"; shift; if "$@" >"$TMP/out" 2>&1; then ok; else no "$what"; sed 's/^/    /' "$TMP/out" | tail -n 20 >&2; fi; }
# check_fails CODE PATTERN WHAT CMD...: passes when CMD exits CODE and its stderr matches PATTERN (grep -E)
check_fails() {
    local code="$1" pat="$2" what="$3"; shift 3
    "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
    if [ "$rc" -eq "$code" ] && grep -qE -- "$pat" "$TMP/err" && [ "$(wc -l <"$TMP/err")" -le 2 ]; then ok
    else no "$what (exit $rc, want $code; stderr: $(head -c 300 "$TMP/err"))"; fi
}
finish() {
    if [ "$SKIP" -gt 0 ]; then echo "$PASS passed, $FAIL failed, $SKIP skipped"; else echo "$PASS passed, $FAIL failed"; fi
    [ "$FAIL" -eq 0 ]
}
# sub_checker LOG CMD...: a checker that ends with "N passed, N failed"; its counts are added to ours
sub_checker() {
    local log="$1"; shift
    "$@" >"$log" 2>&1; local rc=$?
    local line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ -z "$line" ]; then no "$* printed no count (exit $rc)"; tail -n 20 "$log" >&2; return; fi
    local p=${line%% passed*} f=${line#*passed, }; f=${f%% failed*}
    PASS=$((PASS + p)); FAIL=$((FAIL + f))
    [ "$f" -gt 0 ] && grep -E '^FAIL' "$log" | head -n 30 | sed 's/^/    /' >&2
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then no "$* exited $rc with no failure counted"; fi
    if [ "$rc" -eq 0 ] && [ "$f" -ne 0 ]; then no "$* counted failures but exited 0"; fi
}
