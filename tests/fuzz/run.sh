#!/usr/bin/env bash
# tests/fuzz/run.sh BUILD SECONDS: runs every libFuzzer harness BUILD/fuzz/fuzz_NAME for SECONDS (what `make fuzz
# FUZZ_SECONDS=N` calls), one after the other, each on its own corpus BUILD/corpus/NAME (kept between runs, so
# fuzzing resumes where it stopped) seeded with make_corpus's inputs and tests/fuzz/regressions/NAME.
#
# Prints one line per harness (executions, rate, corpus size, findings) and exits 1 if any harness found an input
# that crashes, hangs (> 10 s), leaks or needs more than 2 GB. A finding lies in BUILD/findings/NAME/; once the bug
# is fixed, copy the file into tests/fuzz/regressions/NAME/ so that `make test` replays it for ever.
set -u
B=${1:?usage: run.sh BUILD SECONDS}
SECONDS_EACH=${2:?usage: run.sh BUILD SECONDS}
cd "$(dirname "$0")/../.."
export ASAN_OPTIONS=abort_on_error=0:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
$B/fuzz/make_corpus "$B/seeds" --tokenizer build/models/tokenizer.model || exit 1
total=0 bad=0
printf '%-18s %8s %12s %10s %8s  %s\n' harness seconds executions exec/s corpus findings
for src in tests/fuzz/fuzz_*.c; do
    h=$(basename "$src" .c); h=${h#fuzz_}
    mkdir -p "$B/corpus/$h" "$B/findings/$h" "$B/logs"
    dirs=("$B/corpus/$h" "$B/seeds/$h"); [ -d "tests/fuzz/regressions/$h" ] && dirs+=("tests/fuzz/regressions/$h")
    log=$B/logs/$h.log
    "$B/fuzz/fuzz_$h" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
        -artifact_prefix="$B/findings/$h/" "${dirs[@]}" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    corpus=$(find "$B/corpus/$h" -type f | wc -l)
    found=$(find "$B/findings/$h" -type f | wc -l)
    printf '%-18s %8s %12s %10s %8s  %s\n' "$h" "$SECONDS_EACH" "${execs:-?}" "${rate:-?}" "$corpus" "$found"
    total=$((total + ${execs:-0}))
    if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then
        bad=$((bad + 1))
        grep -E "ERROR|SUMMARY|promise broken|runtime error|Test unit written" "$log" | head -8 | sed 's/^/    /'
        echo "    log: $log"
    fi
done
echo "fuzzing: $total executions in all, $bad harness(es) with findings"
[ "$bad" -eq 0 ]
