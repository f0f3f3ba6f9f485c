#!/usr/bin/env bash
# bench/run.sh: `make bench` on a machine with an NVIDIA GPU (see bench/README.md).
#   1. the llama3-8b preset (16 GB, random weights in Meta's layout) under /tmp, written once by wt-make-model
#   2. its file read once so that the load is timed from the page cache
#   3. build/bin/bench: copy bandwidth, load, prefill 17/512, decode at 128/1024 (ours and cuBLAS), memory
#   4. bench/peers.py: HF eager, sdpa, static cache + torch.compile, and gpt-fast run from its own checkout
#      (GPT_FAST_DIR, default the first of ../shared/peers/gpt-fast, shared/peers/gpt-fast, build/peers/gpt-fast
#      that exists; none: its row says so); the table; the JSON with GPU, commit and date
#   5. the walkthrough on the same model (bench/walkthrough_bench.py: wall time, per-chapter times, peak anonymous
#      RSS): chapters 00-15 with the CPU reference and every picture (target <= 3 min), and all chapters with
#      --device cuda --no-compare, the CUDA path alone (target <= 20 s); BENCH_SKIP_WALKTHROUGH=1 leaves them out
# The JSON goes to $OUT when that is set (the device tool's folder), else bench/results/.
# GIT_COMMIT=SHA names the commit in the JSON (needed where there is no .git, e.g. the device machine; else git
# rev-parse). BENCH_MODEL=DIR uses another model; BENCH_SKIP_PEERS=1 measures ours alone; BENCH_RUNS (5), BENCH_STEPS (32);
# BENCH_FLAGS: more options of build/bin/bench (the engine's switches: --gemv-batch N, --no-pdl, --l2-fill N).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${BENCH_MODEL:-/tmp/llama3-8b-bench}
RUNS=${BENCH_RUNS:-5}
STEPS=${BENCH_STEPS:-32}
DEST=${OUT:-bench/results}
mkdir -p "$DEST"
if [ -z "${GIT_COMMIT:-}" ]; then GIT_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown); fi
export GIT_COMMIT
echo "== commit $GIT_COMMIT =="
[ -x build/bin/bench ] || { echo "build/bin/bench is missing: make needs nvcc for the bench" >&2; exit 1; }
nvidia-smi -L >/dev/null 2>&1 || { echo "bench: no NVIDIA GPU here" >&2; exit 1; }
if [ ! -f "$MODEL/params.json" ]; then
    echo "== writing the llama3-8b preset to $MODEL (16 GB, about a minute) =="
    build/bin/wt-make-model --preset llama3-8b --seed 1 --tokenizer build/models/tokenizer.model --out "$MODEL" --quiet
fi
echo "== page cache: reading $MODEL once =="
cat "$MODEL"/consolidated.*.pth >/dev/null
WORK=$(mktemp -d /tmp/bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
echo "== ours =="
# shellcheck disable=SC2086  # BENCH_FLAGS is a list of options
build/bin/bench --model "$MODEL" --json "$WORK/ours.json" --runs "$RUNS" --decode-steps "$STEPS" ${BENCH_FLAGS:-}
GPU=$(python3 -c "import json,re,sys; print(re.sub('[^A-Za-z0-9]+','-',json.load(open('$WORK/ours.json'))['gpu'].split(' (')[0]).strip('-'))")
RESULT="$DEST/bench-$GPU-$(date -u +%Y%m%dT%H%M%SZ).json"
echo "== peers and table =="
PEER_FLAGS=()
[ "${BENCH_SKIP_PEERS:-0}" = 1 ] && PEER_FLAGS+=(--skip-peers)
if [ -z "${GPT_FAST_DIR:-}" ]; then
    for d in ../shared/peers/gpt-fast shared/peers/gpt-fast build/peers/gpt-fast; do
        [ -f "$d/model.py" ] && { GPT_FAST_DIR=$d; break; }
    done
fi
if [ -n "${GPT_FAST_DIR:-}" ]; then PEER_FLAGS+=(--gpt-fast "$GPT_FAST_DIR"); echo "gpt-fast: $GPT_FAST_DIR"
else echo "gpt-fast: no checkout found (GPT_FAST_DIR): its row will say so"; fi
PYTHONUNBUFFERED=1 python3 bench/peers.py --ours "$WORK/ours.json" --out "$RESULT" --runs "$RUNS" \
    --decode-steps "$STEPS" "${PEER_FLAGS[@]}"
if [ "${BENCH_SKIP_WALKTHROUGH:-0}" != 1 ]; then
    STAMP=$(date -u +%Y%m%dT%H%M%SZ)
    ALL15=00,01,02,03,04,05,06,07,08,09,10,11,12,13,14,15
    echo "== the walkthrough, every chapter with --device cuda --no-compare (target <= 20 s) =="
    python3 bench/walkthrough_bench.py "$MODEL" "$DEST/walkthrough-$GPU-$STAMP-8b-nocompare.json" --device cuda \
        --no-compare --commit "$GIT_COMMIT"
    echo "== the walkthrough, chapters 00-15 with the CPU reference (target <= 180 s) =="
    python3 bench/walkthrough_bench.py "$MODEL" "$DEST/walkthrough-$GPU-$STAMP-8b-00-15.json" --device cuda \
        --only "$ALL15" --commit "$GIT_COMMIT"
fi
