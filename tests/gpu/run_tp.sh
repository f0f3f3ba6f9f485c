#!/usr/bin/env bash
# tests/gpu/run_tp.sh: tensor parallelism (generate --tp N, bench --tp N) on a machine with 2 or more NVIDIA GPUs.
# The multi-GPU counterpart of `make test-gpu` (tests/gpu/run.sh); `bash tests/gpu/run_tp.sh` after `make all models`.
#
#   demo       the trained demo model (4 heads, 1 kv head: --tp 2 replicates it): greedy ids of --tp 2 equal --tp 1's
#              (-n 32), and the prompt's logits agree (NMSE <= 1e-4, same argmax); and --tp 4 when 4 GPUs are there
#   8b         the llama3-8b preset (written under $GPU_TMP with wt-make-model when missing): --tp 2 against --tp 1,
#              the prompt's logits NMSE <= 1e-2 with the argmax rule of test_engine_gpu (the same token, or a near tie
#              within 3 x the RMS logit error: random weights have many), the greedy ids' common prefix reported
#   kill       generate --tp 2 on the 8B preset with a long generation; rank 1 is killed (SIGKILL) once both ranks
#              run: the coordinator must exit 1 within 20 s with one line "rank 1 of 2: killed by signal 9", and no
#              rank process may be left
#   oom        --max-seq-len far beyond the GPU: every rank refuses, exit 1, one line naming a rank and the memory
#   nvls       --verbose says NCCL_NVLS_ENABLE=0 was set; with NCCL_NVLS_ENABLE=1 given, NCCL still reads 0
#   bench      build/bin/bench --tp 2 and --tp 1 on the 8B preset (JSON to $OUT or bench/results/); the decode
#              speedup is reported (DESIGN's target: TP=2 >= 1.7x TP=1), not a pass/fail
#   chapter18  18_tensor_parallel --device cuda over NCCL, one process per GPU: --tp 2 on the tiny and the demo model,
#              --tp 4 / --tp 8 when that many GPUs are there (the demo's 4 heads: up to 4), the 8B preset at --tp 2 and
#              the most GPUs up to 8: the chapter says it runs over NCCL, finds the collectives' results the same bits
#              on every rank, and every rank's CUDA tensors pass against the CPU emulation of the same ranks (for N = 2
#              NCCL's bf16 sum is the emulation's own: one rounded addition)
#   visible    CUDA_VISIBLE_DEVICES narrowed to one GPU while --tp 2 asks for two: chapter 18 says "1 found" and runs
#              the ranks one after another on that GPU (every comparison still passes)
# STAGES="demo kill" picks stages (default: all). libnccl.so.2 is found through the usual library path; when it is
# not there, the one PyTorch ships (nvidia-nccl) is put on LD_LIBRARY_PATH. Ends with "N passed, N failed" and writes
# a summary (date, commit, GPUs, NCCL, counts, the measured numbers) to $GPU_SUMMARY (default
# tests/gpu/last-run-tp.txt).
set -u
cd "$(dirname "$0")/../.."
STAGES="${STAGES:-demo 8b kill oom nvls bench chapter18 visible}"
GPU_TMP="${GPU_TMP:-/tmp/l3t-gpu}"
SUMMARY="${GPU_SUMMARY:-tests/gpu/last-run-tp.txt}"
LOGS="${GPU_LOGS:-$GPU_TMP/logs-tp}"
mkdir -p "$GPU_TMP" "$LOGS"
source tests/gpu/lib.sh  # stage, note, run
pass() { PASS=$((PASS + 1)); note "ok    $*"; }
fail() { FAIL=$((FAIL + 1)); note "FAIL  $*"; }

N_GPU=$(nvidia-smi -L 2>/dev/null | wc -l)
[ "$N_GPU" -ge 2 ] || { echo "tensor parallelism needs 2 GPUs, nvidia-smi lists $N_GPU"; echo "0 passed, 1 failed"; exit 1; }
GPUS=$(nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader | tr '\n' ';')
echo "GPUs: $GPUS"
# NCCL at run time: the system's, else PyTorch's
if ! ldconfig -p 2>/dev/null | grep -q libnccl.so.2 && [ ! -e /usr/local/cuda/lib64/libnccl.so.2 ]; then
    D=$(python3 -c "import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], 'lib'))" 2>/dev/null)
    if [ -n "$D" ] && [ -e "$D/libnccl.so.2" ]; then export LD_LIBRARY_PATH="$D${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; note "libnccl.so.2 from $D"; fi
fi
GEN=build/bin/generate
BENCH=build/bin/bench
PROMPT="the answer to the ultimate question of life, the universe, and everything is "

# nmse_check A.npy B.npy MAX_NMSE: B (tensor parallel) against A (one GPU); the argmax rule of test_engine_gpu
nmse_check() {
    python3 - "$@" <<'EOF'
import sys, numpy as np
a, b, lim = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64), float(sys.argv[3])
nmse = float(((a - b) ** 2).sum() / (a ** 2).sum()); rms = float(np.sqrt(((a - b) ** 2).mean()))
ia, ib = int(a.argmax()), int(b.argmax()); gap = float(a[ia] - a[ib])
print(f"nmse {nmse:.3e} (limit {lim:g}), max |diff| {np.abs(a - b).max():.4g}, argmax {ia} / {ib}, gap {gap:.4g}, 3 x RMS error {3 * rms:.4g}")
sys.exit(0 if np.isfinite(b).all() and nmse <= lim and (ia == ib or gap <= 3 * rms) else 1)
EOF
}
# common_prefix A B: how many leading ids two id files share, of how many
common_prefix() { python3 -c "
a=open('$1').read().split(); b=open('$2').read().split(); n=0
while n < min(len(a), len(b)) and a[n] == b[n]: n += 1
print(n, len(a), len(b))"; }

# tp_pair NAME MODEL N N_NEW: greedy ids and the prompt's logits of --tp N and of --tp 1
tp_pair() {
    local name=$1 model=$2 n=$3 n_new=$4
    run "${name}_tp1" $GEN --model "$model" --prompt "$PROMPT" -n "$n_new" --temperature 0 --device cuda \
        --ids-out "$GPU_TMP/$name.tp1.ids" --logits-out "$GPU_TMP/$name.tp1.npy"
    run "${name}_tp$n" $GEN --model "$model" --prompt "$PROMPT" -n "$n_new" --temperature 0 --tp "$n" \
        --ids-out "$GPU_TMP/$name.tp$n.ids" --logits-out "$GPU_TMP/$name.tp$n.npy"
    grep -E "^(decode|prefill):" "$LOGS/${name}_tp1.log" "$LOGS/${name}_tp$n.log" | sed 's/^/        /'
}

if stage demo; then
    echo "== the demo model: --tp 2 (kv head replicated) against --tp 1 =="
    DEMO=build/models/llama3-tiny-trained
    tp_pair demo "$DEMO" 2 32
    run demo_ids_equal cmp "$GPU_TMP/demo.tp1.ids" "$GPU_TMP/demo.tp2.ids"
    run demo_logits nmse_check "$GPU_TMP/demo.tp1.npy" "$GPU_TMP/demo.tp2.npy" 1e-4 && note "$(cat "$LOGS/demo_logits.log")"
    if [ "$N_GPU" -ge 4 ]; then
        tp_pair demo4 "$DEMO" 4 32
        run demo4_ids_equal cmp "$GPU_TMP/demo4.tp1.ids" "$GPU_TMP/demo4.tp4.ids"
        run demo4_logits nmse_check "$GPU_TMP/demo4.tp1.npy" "$GPU_TMP/demo4.tp4.npy" 1e-4
    fi
fi

M8B="$GPU_TMP/llama3-8b"
need_8b() {
    [ -f "$M8B/params.json" ] || run make_8b build/bin/wt-make-model --preset llama3-8b --seed 1 \
        --tokenizer build/models/tokenizer.model --out "$M8B"
}
if stage 8b; then
    echo "== the llama3-8b preset: --tp 2 against --tp 1 =="
    need_8b
    tp_pair 8b "$M8B" 2 16
    run 8b_logits nmse_check "$GPU_TMP/8b.tp1.npy" "$GPU_TMP/8b.tp2.npy" 1e-2 && note "8B prompt logits: $(cat "$LOGS/8b_logits.log")"
    read -r same n1 n2 < <(common_prefix "$GPU_TMP/8b.tp1.ids" "$GPU_TMP/8b.tp2.ids")
    note "8B greedy ids: the first $same of $n1 agree (random weights: near ties may part them later)"
    [ "${same:-0}" -ge 1 ] && pass "8b_first_token" || fail "8b_first_token (the first generated token differs)"
fi

if stage kill; then
    echo "== a rank killed mid-run: the other ranks and the coordinator end, one line =="
    need_8b
    $GEN --model "$M8B" --prompt "$PROMPT" -n 4000 --max-seq-len 4096 --temperature 0 --tp 2 \
        >"$LOGS/kill.out" 2>"$LOGS/kill.err" &
    coord=$!
    r1=""
    for _ in $(seq 1 120); do  # until both ranks exist and rank 0 prints the generated text (loaded, decoding)
        r1=$(pgrep -P "$coord" -f -- "--tp-rank 1 " | head -n 1)
        [ -n "$r1" ] && [ "$(wc -c <"$LOGS/kill.out")" -gt ${#PROMPT} ] && break
        sleep 1
    done
    if [ -z "$r1" ]; then fail "kill: rank 1 never started"; kill "$coord" 2>/dev/null
    else
        ranks=$(pgrep -P "$coord" | tr '\n' ' ')
        t0=$(date +%s.%N)
        kill -9 "$r1"
        for _ in $(seq 1 200); do kill -0 "$coord" 2>/dev/null || break; sleep 0.1; done
        wait "$coord"; rc=$?
        dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
        left=0; for p in $ranks; do kill -0 "$p" 2>/dev/null && left=$((left + 1)); done
        if [ "$rc" -eq 1 ] && grep -q "^generate: rank 1 of 2: killed by signal 9" "$LOGS/kill.err" &&
            [ "$(grep -c "rank" "$LOGS/kill.err")" -eq 1 ] && [ "$left" -eq 0 ] &&
            awk -v d="$dt" 'BEGIN{exit !(d <= 20)}'; then
            pass "kill: rank 1 killed, all ended in ${dt}s with one line: $(grep '^generate: rank' "$LOGS/kill.err")"
        else fail "kill: exit $rc after ${dt}s, $left rank processes left, stderr: $(tail -n 3 "$LOGS/kill.err")"
            for p in $ranks; do kill -9 "$p" 2>/dev/null; done
        fi
    fi
fi

if stage oom; then
    echo "== out of memory on the ranks: one line, exit 1 =="
    need_8b
    $GEN --model "$M8B" --prompt x --tp 2 --max-seq-len 16000000 >"$LOGS/oom.out" 2>"$LOGS/oom.err"; rc=$?
    if [ "$rc" -eq 1 ] && [ "$(wc -l <"$LOGS/oom.err")" -eq 1 ] &&
        grep -qE "^generate: rank [01] of 2: fatal: the GPU .* has .* free, this model needs" "$LOGS/oom.err"; then
        pass "oom: $(cat "$LOGS/oom.err" | cut -c1-160)"
    else fail "oom: exit $rc, stderr: $(head -c 400 "$LOGS/oom.err")"; fi
fi

if stage nvls; then
    echo "== NCCL_NVLS_ENABLE: set to 0 whatever the environment held, said with --verbose, read as 0 by NCCL =="
    env -u NCCL_NVLS_ENABLE $GEN --model build/models/llama3-tiny-trained --prompt "$PROMPT" -n 2 --tp 2 --verbose \
        >"$LOGS/nvls.out" 2>"$LOGS/nvls.err"; rc=$?
    [ $rc -eq 0 ] && grep -q "^generate: NCCL_NVLS_ENABLE=0 (set here, the ranks inherit it)" "$LOGS/nvls.err" &&
        pass "nvls: --verbose says it set NCCL_NVLS_ENABLE=0" || fail "nvls: exit $rc, $(head -c 300 "$LOGS/nvls.err")"
    # NCCL_DEBUG=INFO: NCCL logs the value it read ("NCCL_NVLS_ENABLE set by environment to 0") in every rank
    env NCCL_NVLS_ENABLE=1 NCCL_DEBUG=INFO $GEN --model build/models/llama3-tiny-trained --prompt x -n 2 --tp 2 --verbose \
        >/dev/null 2>"$LOGS/nvls1.err"; rc=$?
    [ $rc -eq 0 ] && ! grep -q "NCCL_NVLS_ENABLE set by environment to 1" "$LOGS/nvls1.err" &&
        grep -q "NCCL_NVLS_ENABLE set by environment to 0" "$LOGS/nvls1.err" &&
        pass "nvls: NCCL_NVLS_ENABLE=1 given, NCCL read 0" || fail "nvls=1: exit $rc, $(grep -m 5 NVLS "$LOGS/nvls1.err")"
fi

if stage bench; then
    echo "== bench --tp 2 against --tp 1 on the 8B preset =="
    need_8b
    DEST=${OUT:-bench/results}
    mkdir -p "$DEST"
    STAMP=$(date -u +%Y%m%dT%H%M%SZ)
    run bench_tp1 $BENCH --model "$M8B" --json "$DEST/bench-tp1-$STAMP.json" --runs 3
    run bench_tp2 $BENCH --model "$M8B" --json "$DEST/bench-tp2-$STAMP.json" --runs 3 --tp 2
    if [ -f "$DEST/bench-tp1-$STAMP.json" ] && [ -f "$DEST/bench-tp2-$STAMP.json" ]; then
        note "$(python3 - "$DEST/bench-tp1-$STAMP.json" "$DEST/bench-tp2-$STAMP.json" <<'EOF'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
out = []
for k in ("decode_128_tok_s", "decode_1024_tok_s"):
    out.append(f"{k}: tp1 {a[k]:.1f}, tp2 {b[k]:.1f} (x{b[k] / a[k]:.2f}; target >= 1.7)")
for k in ("prefill_17_ms", "prefill_512_ms"):
    out.append(f"{k}: tp1 {a[k]:.2f}, tp2 {b[k]:.2f}")
print("bench on " + a["gpu"] + ": " + "; ".join(out))
EOF
)"
    fi
fi

if stage chapter18; then
    echo "== 18_tensor_parallel over NCCL, one process per GPU =="
    # the chapter over NCCL: its own line, the same bits on every rank, every comparison OK
    nccl_ok() {
        local log="$1" n="$2"; shift 2
        "$@" >"$log" 2>&1 || return 1
        grep -q "^CUDA: $n GPUs, one process per rank, NCCL all-reduces (NCCL_NVLS_ENABLE=0)" "$log" &&
            grep -q "are the same bits on all $n ranks: yes" "$log" && grep -qE '^OK +18_' "$log" && ! grep -qE '^FAIL' "$log"
    }
    for m in build/models/tiny build/models/llama3-tiny-trained; do
        for n in 2 4 8; do
            [ "$n" -le "$N_GPU" ] || continue
            [ "$(basename $m)" = tiny ] || [ "$n" -le 4 ] || continue  # the demo's 4 heads: N <= 4
            run "ch18_$(basename $m)_tp$n" nccl_ok "$LOGS/ch18_$(basename $m)_tp$n.out" "$n" \
                build/steps/18_tensor_parallel --model $m --device cuda --tp $n --out "$GPU_TMP/tp_$(basename $m)_$n"
            grep -E "^OK .*all-reduce|^OK .*all-gather" "$LOGS/ch18_$(basename $m)_tp$n.out" | sed 's/^/        /'
        done
    done
    need_8b
    most=$(( N_GPU >= 8 ? 8 : N_GPU >= 4 ? 4 : 2 ))
    for n in $(echo 2 $most | tr ' ' '\n' | sort -un); do
        run "ch18_8b_tp$n" nccl_ok "$LOGS/ch18_8b_tp$n.out" "$n" build/steps/18_tensor_parallel --model "$M8B" \
            --device cuda --tp $n --out "$GPU_TMP/tp_8b_$n"
    done
fi

if stage visible; then
    echo "== chapter 18 with one GPU visible: it says so and emulates the ranks on it =="
    emulated() {
        CUDA_VISIBLE_DEVICES=0 build/steps/18_tensor_parallel --model build/models/tiny --device cuda --tp 2 \
            --out "$GPU_TMP/tp_vis1" >"$LOGS/vis1.out" 2>&1 && grep -q "^CUDA: 2 ranks need 2 GPUs; 1 found" "$LOGS/vis1.out" &&
            ! grep -qE '^FAIL' "$LOGS/vis1.out"
    }
    run ch18_one_visible_gpu emulated
fi

COMMIT=${GIT_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
{
    echo "tests/gpu/run_tp.sh: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit: $COMMIT"
    echo "GPUs: $GPUS"
    echo "stages: $STAGES"
    echo "result: $PASS passed, $FAIL failed"
    echo
    for n in "${NOTES[@]}"; do echo "$n"; done
} >"$SUMMARY"
echo "summary: $SUMMARY"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
