#!/usr/bin/env bash
# tests/run.sh: runs every test of `make test` and ends with one line "N passed, N failed".
#
# A test is a unit-test binary (build/tests/test_*, and the same under build/asan/ with the sanitizers) or a script
# tests/test_*.sh. Each prints its own "N passed, N failed" as its last such line; those counts are added up.
# A test that exits non-zero without a failure counted is counted as one failure; so is one that prints no count.
set -u
cd "$(dirname "$0")/.."
export LC_ALL=C.UTF-8
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
LOG_DIR=build/test-logs
mkdir -p "$LOG_DIR"
total_pass=0 total_fail=0
only="${1:-}"

run_one() {  # name, command...
    local name="$1"; shift
    local log="$LOG_DIR/$(echo "$name" | tr '/ ' '__').log"
    local t0=$(date +%s.%N)
    "$@" >"$log" 2>&1
    local rc=$?
    local secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
    local line=$(grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 | sed -E 's/^[A-Za-z]+: //')
    local p=0 f=0
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
        f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    if [ -z "$line" ] && [ "$rc" -eq 0 ]; then f=1; echo "  (no 'N passed, N failed' line from $name)" >>"$log"; fi
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
    if [ "$f" -eq 0 ]; then printf '  ok    %-44s %5d passed  %6ss\n' "$name" "$p" "$secs"
    else
        printf '  FAIL  %-44s %5d passed, %d failed (exit %d)  log: %s\n' "$name" "$p" "$f" "$rc" "$log"
        grep -E '^(FAIL|error|fatal|ERROR|AddressSanitizer|runtime error)|FAIL' "$log" | head -n 15 | sed 's/^/        /'
    fi
}

echo "== unit tests =="
for t in build/tests/test_*; do
    [ -x "$t" ] || continue
    [ -n "$only" ] && [[ "$t" != *"$only"* ]] && continue
    run_one "$(basename "$t")" "$t"
done
echo "== unit tests under AddressSanitizer + UBSan =="
for t in build/asan/tests/test_*; do
    [ -x "$t" ] || continue
    [ -n "$only" ] && [[ "$t" != *"$only"* ]] && continue
    run_one "asan/$(basename "$t")" "$t"
done
echo "== end-to-end and interoperability =="
for t in tests/test_*.sh; do
    [ -f "$t" ] || continue
    [ -n "$only" ] && [[ "$t" != *"$only"* ]] && continue
    run_one "$(basename "$t" .sh)" bash "$t"
done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
