#!/usr/bin/env bash
# tests/test_tp_cli.sh: `generate --tp N` and `bench --tp N` on the CPU, without a GPU (make test): the command
# line, the checks made before any process starts, and what a failing rank looks like.
#   - an N that does not split the model (the tiny model has 4 query heads: --tp 3), --tp with --device cpu,
#     N out of range: exit 2, one line, nothing started
#   - --tp 2 where no GPU is (this machine): the ranks start and fail; exit 1 with ONE line naming the rank and
#     its cause (or, in a build without CUDA, the coordinator's one line saying so), within seconds; --verbose first
#     says that NCCL_NVLS_ENABLE was set to 0, whether the environment had it unset, 0 or 1
#   - --tp 1 is the single-process path: the same greedy ids as without --tp (CPU)
# The processes themselves (message, failure, kill, orphans) are tested by build/tests/test_engine_ranks; the
# weights each rank holds by build/tests/test_engine_plan; the GPU runs by tests/gpu/run_tp.sh (2 GPUs).
# expect: 4 s
source "$(dirname "$0")/lib.sh"
GEN=build/bin/generate
BENCH=build/bin/bench
MODEL=build/models/tiny
[ -x "$GEN" ] && [ -x "$BENCH" ] || { no "build/bin/generate or bench is not built"; finish; exit; }
[ -f "$MODEL/params.json" ] || { no "$MODEL is missing: run make models"; finish; exit; }

# ---- bad input: exit 2 before any rank starts
check_fails 2 "--tp 3: the 4 query heads \(n_heads\) cannot be split into 3 ranks of whole heads" \
    "generate --tp 3 on 4 heads" "$GEN" --model "$MODEL" --prompt x --tp 3
check_fails 2 "--tp 3: the 4 query heads \(n_heads\) cannot be split into 3 ranks of whole heads" \
    "bench --tp 3 on 4 heads" "$BENCH" --model "$MODEL" --json "$TMP/b.json" --tp 3
check_fails 2 "needs --device cuda or auto" "generate --tp 2 --device cpu" "$GEN" --model "$MODEL" --prompt x --tp 2 --device cpu
check_fails 2 "--tp: expected an integer in \[1, 64\]" "generate --tp 0" "$GEN" --model "$MODEL" --prompt x --tp 0
check_fails 2 "--tp: expected an integer in \[1, 64\]" "bench --tp 65" "$BENCH" --model "$MODEL" --json "$TMP/b.json" --tp 65
check "no JSON left by the refused bench" test ! -e "$TMP/b.json"

# ---- no GPU here: the ranks fail, one line names one of them, exit 1, quickly
if ! nvidia-smi -L >/dev/null 2>&1; then
    FAILED_RANK='^generate: rank [01] of 2: fatal: engine_create: no CUDA device|this build has no CUDA'
    t0=$(date +%s)
    check_fails 1 "$FAILED_RANK" "generate --tp 2 without a GPU: one line naming the rank" \
        timeout 60 "$GEN" --model "$MODEL" --prompt x --tp 2 -n 4
    check "... within 30 s" test $(($(date +%s) - t0)) -le 30
    check_fails 1 "^bench: rank [01] of 2: fatal: no CUDA device: rank [01] of --tp 2 needs GPU [01]|this build has no CUDA" \
        "bench --tp 2 without a GPU: one line naming the rank" timeout 60 "$BENCH" --model "$MODEL" --json "$TMP/b.json" --tp 2
    # --verbose: the NCCL_NVLS_ENABLE line first, then the failure (two lines in all), whatever the environment held
    for nvls in unset 0 1; do
        if [ $nvls = unset ]; then env -u NCCL_NVLS_ENABLE timeout 60 "$GEN" --model "$MODEL" --prompt x --tp 2 --verbose \
            >"$TMP/v.out" 2>"$TMP/v.err"
        else NCCL_NVLS_ENABLE=$nvls timeout 60 "$GEN" --model "$MODEL" --prompt x --tp 2 --verbose >"$TMP/v.out" 2>"$TMP/v.err"
        fi
        rc=$?
        if grep -q "this build has no CUDA" "$TMP/v.err"; then ok  # no NCCL in this build: nothing to say about it
        elif [ "$rc" -eq 1 ] && head -n 1 "$TMP/v.err" | grep -q "^generate: NCCL_NVLS_ENABLE=0 (set here, the ranks inherit it)" &&
            [ "$(wc -l <"$TMP/v.err")" -eq 2 ]; then ok
        else no "generate --tp 2 --verbose, NCCL_NVLS_ENABLE $nvls: exit $rc, stderr: $(cat "$TMP/v.err")"; fi
    done
    check "no rank process left behind" bash -c "! pgrep -f -- '--tp-rank [0-9]+ --tp-fd' >/dev/null"
fi

# ---- --tp 1: the single-process path
check "--tp 1 --device cpu" "$GEN" --model "$MODEL" --prompt "the answer is" -n 6 --temperature 0 --device cpu --tp 1 \
    --ids-out "$TMP/tp1.ids" --quiet
check "without --tp" "$GEN" --model "$MODEL" --prompt "the answer is" -n 6 --temperature 0 --device cpu \
    --ids-out "$TMP/none.ids" --quiet
check "--tp 1 gives the same ids" cmp "$TMP/tp1.ids" "$TMP/none.ids"
finish
