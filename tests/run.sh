#!/usr/bin/env bash
# tests/run.sh [FILTER]: runs every test of `make test`, JOBS at a time, and ends with one line
# "N passed, N failed" (", N skipped" after it when something could not run here; a skip is never a pass).
#
# A test is a unit-test binary (build/tests/test_*, and the same under build/asan/ with the sanitizers) or a script
# tests/test_*.sh; FILTER keeps the tests whose name contains it. Each prints its own "N passed, N failed" (with
# ", N skipped" when it skipped something) as its last such line; those counts are added up. A test that exits
# non-zero without a failure counted is counted as one failure; so is one that prints no count.
#
# Tests run in parallel (JOBS, default: the number of cores), the longest first, so the slowest one starts at once.
# They must not share files: each writes under its own mktemp directory (tests/lib.sh's $TMP), reads build/ only.
# A line says when each test starts, with its expected duration: the time it took on its last run here
# (build/test-logs/NAME.secs), else the "# expect: N s" line of a script's header (N on 2 idle cores).
# Each test's output is build/test-logs/NAME.log.
set -u
cd "$(dirname "$0")/.."
export LC_ALL=C.UTF-8
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Tests run side by side. OpenMP threads that spin while they wait (libgomp's default) take the cores from the test
# beside them: two demo walkthroughs at once on 2 cores took 25.3 s spinning, 11.2 s with passive waits.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
LOG_DIR=build/test-logs
mkdir -p "$LOG_DIR"
only="${1:-}"
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: JOBS=$JOBS: expected a positive number" >&2; exit 2; }

# ---- the tests: NAME and its command ---------------------------------------------------------------------------------
names=() cmds=()
add() { [ -n "$only" ] && [[ "$1" != *"$only"* ]] && return; names+=("$1"); cmds+=("$2"); }
for t in build/tests/test_*; do [ -x "$t" ] && add "unit/$(basename "$t")" "$t"; done
for t in build/asan/tests/test_*; do [ -x "$t" ] && add "asan/$(basename "$t")" "$t"; done
for t in tests/test_*.sh; do [ -f "$t" ] && add "$(basename "$t" .sh)" "bash $t"; done
N=${#names[@]}
[ "$N" -gt 0 ] || { echo "run.sh: no test matches '$only' (run make all first?)" >&2; echo "0 passed, 0 failed"; exit 1; }

log_of() { echo "$LOG_DIR/$(echo "$1" | tr '/ ' '__')"; }
# expected NAME CMD: seconds, from the last run here or the script's "# expect: N s" line; empty when unknown
expected() {
    local f; f="$(log_of "$1").secs"
    if [ -s "$f" ]; then cat "$f"; return; fi
    [[ "$2" == "bash "* ]] && sed -n '1,30{s/^# expect: *~\{0,1\}\([0-9][0-9]*\) *s.*/\1/p}' "${2#bash }" | head -n 1
}

# longest first (unknown ones count as 60 s): with JOBS slots the slowest test does not start last
order=$(for i in "${!names[@]}"; do e=$(expected "${names[$i]}" "${cmds[$i]}"); echo "${e:-60} $i"; done |
        sort -k1,1nr -k2,2n | cut -d' ' -f2)

# ---- one test, in the background: its counts into $RES/INDEX ----------------------------------------------------------
RES=$(mktemp -d /tmp/l3t-run.XXXXXX)
trap 'rm -rf "$RES"' EXIT
run_one() {  # index
    local i="$1" name="${names[$1]}" log; log="$(log_of "${names[$1]}")"
    local t0; t0=$(date +%s.%N)
    ${cmds[$i]} >"$log.log" 2>&1 </dev/null
    local rc=$?
    local secs; secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
    # CPU time (user + sys) of the test and everything it ran: what it costs when the machine is shared
    times >"$RES/$i.times"   # not in a pipe: that would be a new process, with no children of its own yet
    local cpu; cpu=$(tail -n 1 "$RES/$i.times" | awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.1f", s }')
    local line; line=$(grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$log.log" | tail -n 1 | sed -E 's/^[A-Za-z]+: //')
    local p=0 f=0 s=0
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
        f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
        [[ "$line" =~ ,\ ([0-9]+)\ skipped ]] && s=${BASH_REMATCH[1]}
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    if [ -z "$line" ] && [ "$rc" -eq 0 ]; then f=1; echo "  (no 'N passed, N failed' line from $name)" >>"$log.log"; fi
    [ "$f" -eq 0 ] && printf '%.0f\n' "$secs" >"$log.secs"   # a failed run's time says little about the next one
    echo "$p $f $s $rc $secs $cpu" >"$RES/$i.partial" && mv "$RES/$i.partial" "$RES/$i"
}

# ---- the pool ----------------------------------------------------------------------------------------------------------
total_pass=0 total_fail=0 total_skip=0 started=0 done_n=0 running=0
declare -A reported=()
report() {  # index: the test's line once it has finished
    local i="$1" name="${names[$1]}" p f s rc secs cpu
    read -r p f s rc secs cpu <"$RES/$i"
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f)); total_skip=$((total_skip + s))
    done_n=$((done_n + 1)); running=$((running - 1))
    local counts="$p passed"; [ "$s" -gt 0 ] && counts="$counts, $s skipped"
    local tag="ok" why=""  # a test that skipped something is a 'skip' row, with the first reason it gave
    if [ "$s" -gt 0 ]; then
        tag="skip"; why="  skipped: $(grep -m 1 '^skipped: ' "$(log_of "$name").log" | sed 's/^skipped: //' | cut -c1-60)"
    fi
    if [ "$f" -eq 0 ]; then printf '[%*d/%d] %-5s %-32s %-22s %7s s  (cpu %s s)%s\n' ${#N} "$done_n" "$N" "$tag" "$name" "$counts" "$secs" "$cpu" "$why"
    else
        printf '[%*d/%d] FAIL  %-32s %s, %d failed (exit %d)  %s s  log: %s\n' ${#N} "$done_n" "$N" "$name" "$counts" "$f" "$rc" \
            "$secs" "$(log_of "$name").log"
        grep -E '^(FAIL|error|fatal|ERROR|AddressSanitizer|runtime error)|FAIL' "$(log_of "$name").log" | head -n 15 | sed 's/^/        /'
    fi
}
collect() { for r in "$RES"/*; do r=${r##*/}; [[ "$r" =~ ^[0-9]+$ ]] && [ -z "${reported[$r]:-}" ] && { reported[$r]=1; report "$r"; }; done; }

echo "== $N tests, $JOBS at a time (JOBS=N to change), longest first; logs in $LOG_DIR/ =="
t_all=$(date +%s)
for i in $order; do
    while [ "$running" -ge "$JOBS" ]; do wait -n 2>/dev/null; collect; done
    started=$((started + 1)); running=$((running + 1))
    e=$(expected "${names[$i]}" "${cmds[$i]}")
    printf '[%*d/%d] start %-32s %s\n' ${#N} "$started" "$N" "${names[$i]}" "$([ -z "$e" ] || { [ "$e" -lt 1 ] && echo "expect <1 s" || echo "expect ~$e s"; })"
    run_one "$i" &
done
while [ "$running" -gt 0 ]; do wait -n 2>/dev/null || sleep 0.2; collect; done

summary="$total_pass passed, $total_fail failed"
[ "$total_skip" -gt 0 ] && summary="$summary, $total_skip skipped"
echo "== $N tests in $(( $(date +%s) - t_all )) s =="
echo "$summary"
[ "$total_fail" -eq 0 ]
