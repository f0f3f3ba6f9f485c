# tests/gpu/lib.sh: sourced by tests/gpu/run.sh and run_tp.sh (with STAGES, LOGS set): the stage picker, the notes
# that go into the summary, and one check with its log.
PASS=0 FAIL=0
NOTES=()
stage() { [[ " $STAGES " == *" $1 "* ]]; }
note() { NOTES+=("$*"); echo "  $*"; }
# run NAME CMD...: one check; its output goes to $LOGS/NAME.log; the last lines are shown on failure
run() {
    local name="$1"; shift
    local t0=$(date +%s.%N)
    "$@" >"$LOGS/$name.log" 2>&1
    local rc=$? dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
    if [ $rc -eq 0 ]; then PASS=$((PASS + 1)); note "ok    $name (${dt}s)"
    else FAIL=$((FAIL + 1)); note "FAIL  $name (exit $rc, ${dt}s)"; tail -n 25 "$LOGS/$name.log" | sed 's/^/        /'; fi
    return $rc
}
