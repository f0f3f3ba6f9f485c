#!/usr/bin/env bash
# tests/gpu/run.sh (`make test-gpu`): the CUDA path on a machine with an NVIDIA GPU.
#
#   kernels     every CUDA launcher against its CPU twin, small and 8B shapes (build/tests/test_kernels_gpu)
#   engine      the inference engine's GPU tests (build/tests/test_engine_gpu), when built
#   engine_ops  each engine kernel alone against the CPU reference ops it fuses, small and 8B shapes, every GEMV
#               configuration, attention at many context lengths (build/tests/test_engine_ops_gpu), and the same at
#               the small shape under compute-sanitizer memcheck
#   tiny        the whole walkthrough with --device cuda on the tiny model: every comparison must pass
#   sanitizer   compute-sanitizer memcheck over one walkthrough of the tiny model
#   8b          the llama3-8b preset (16 GB, written here with wt-make-model under $GPU_TMP): wt-inspect lists it,
#               torch.load(mmap=True) reads the same values, and the whole walkthrough passes with --device cuda
#   generate    greedy ids CPU = CUDA = HF transformers on the tiny model, chapter 16 on CUDA, compute-sanitizer
#   engine8b    the engine's logits against the CPU reference at the llama3-8b preset
#   nocompare   the walkthrough with --device cuda --no-compare (the CUDA path alone, no CPU reference, nothing
#               compared) on the tiny model and on the llama3-8b preset (written as in 8b when missing): its summary
#               says nothing was compared, check_trace.py --mode cuda-only checks every tensor, shape and figure, and
#               compare_traces.py its values against a default-mode trace of the same model (tiny: made here; 8B:
#               the 8b stage's, when that stage ran first). The 8B run is timed with measure.py (target: <= 25 s).
#   demo        the trained demo model (build/models/llama3-tiny-trained, from `make models` or unpacked from
#               models/llama3-tiny-trained): the whole walkthrough with --device cuda passes every comparison,
#               chapter 15 on CUDA prints tensor(2983) and '42', chapter 19 on CUDA compares every layer's logits
#               and ends on '42', and the CUDA path's attention maps of every layer
#               (11_multihead --no-compare --layer L) meet the demo's criteria (tests/reference/tiny_model_check.py)
#   moe         the mixture-of-experts path (issue 14): every MoE launcher against its CPU twin at MiniMind's and
#               Mixtral-8x7B's shapes, ties and empty experts included (build/tests/test_moe_gpu); chapter 20 with
#               --device cuda on the minimind-moe and mixtral-tiny presets and on the MoE demo model (every comparison
#               must pass), its CUDA path alone (--no-compare), the whole walkthrough of the MoE demo model on CUDA
#               (chapters 13-15 run the MoE in place of SwiGLU), and compute-sanitizer memcheck over chapter 20
#   tp          chapters 17 and 18 with --device cuda (one GPU): 17_packed on the tiny and the demo model passes every
#               comparison (the packed products and the fused residual + RMSNorm kernel against the CPU); 18_tensor_parallel
#               --tp 2 and --tp 4 on the demo model: with fewer GPUs than ranks it says so and runs the ranks one after
#               another on GPU 0, every rank's CUDA tensors against the CPU emulation; with the llama3-8b preset (made by
#               the 8b stage) 17 and 18 --tp 8 too. Several GPUs: tests/gpu/run_tp.sh (NCCL, one process per GPU).
#   nonfinite   the demo model with eight bytes of norm.weight turned into NaN (size unchanged), on the CUDA path:
#               15_logits and 16_generate --device cuda stop at the first value that is not finite (exit 1, one line
#               naming it; no prediction, no "bit-identical"), generate --device cuda stops before sampling, and
#               --verify-checksums refuses the file (exit 2); a trace of the GPU records the GPU as its device
# STAGES="tiny 8b" picks stages (default: all). Ends with "N passed, N failed" and writes a summary (date, commit,
# GPU, counts, timings) to $GPU_SUMMARY (default tests/gpu/last-run.txt).
set -u
cd "$(dirname "$0")/../.."
STAGES="${STAGES:-kernels engine engine_ops tiny demo moe sanitizer generate 8b engine8b tp nocompare nonfinite}"
GPU_TMP="${GPU_TMP:-/tmp/l3t-gpu}"
SUMMARY="${GPU_SUMMARY:-tests/gpu/last-run.txt}"
LOGS="${GPU_LOGS:-$GPU_TMP/logs}"
mkdir -p "$GPU_TMP" "$LOGS"
source tests/gpu/lib.sh  # stage, note, run

GPU=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -n 1)
[ -n "$GPU" ] || { echo "no NVIDIA GPU (nvidia-smi found none): make test-gpu needs one"; echo "0 passed, 1 failed"; exit 1; }
echo "GPU: $GPU"
export REQUIRE_GPU=1
TINY=build/models/tiny

if stage kernels; then
    echo "== kernels: CUDA launchers against the CPU reference =="
    run kernels build/tests/test_kernels_gpu
    grep -E "passed, [0-9]+ failed" "$LOGS/kernels.log" | tail -n 1 | sed 's/^/        /'
fi
if stage engine && [ -x build/tests/test_engine_gpu ]; then
    echo "== engine: GPU forward against the full-model CPU reference (tiny) =="
    run engine_tiny build/tests/test_engine_gpu $TINY
    grep -E "passed, [0-9]+ failed" "$LOGS/engine_tiny.log" | tail -n 1 | sed 's/^/        /'
fi
if stage engine_ops && [ -x build/tests/test_engine_ops_gpu ]; then
    echo "== engine ops: each engine kernel against the CPU reference ops it fuses =="
    run engine_ops build/tests/test_engine_ops_gpu
    grep -E "passed, [0-9]+ failed" "$LOGS/engine_ops.log" | tail -n 1 | sed 's/^/        /'
    if command -v compute-sanitizer >/dev/null; then
        run memcheck_engine_ops compute-sanitizer --tool memcheck --error-exitcode 9 build/tests/test_engine_ops_gpu --small
    else
        FAIL=$((FAIL + 1)); note "FAIL  compute-sanitizer not found"
    fi
fi
if stage tiny; then
    echo "== walkthrough on the tiny model, --device cuda =="
    run walkthrough_tiny_bf16 build/bin/walkthrough --model $TINY --device cuda --out "$GPU_TMP/tiny" --quiet
    sed -n '/^chapter/,$p' "$LOGS/walkthrough_tiny_bf16.log" | sed 's/^/        /'
    run walkthrough_tiny_fp32 build/bin/walkthrough --model $TINY --device cuda --precision fp32 --out "$GPU_TMP/tiny32" --quiet
fi
if stage demo; then
    echo "== the trained demo model, --device cuda =="
    DEMO=build/models/llama3-tiny-trained
    if [ -f "$DEMO/consolidated.00.pth" ] && [ -f "$DEMO/tokenizer.model" ]; then
        run walkthrough_demo build/bin/walkthrough --model $DEMO --device cuda --out "$GPU_TMP/demo" --quiet
        sed -n '/^chapter/,$p' "$LOGS/walkthrough_demo.log" | sed 's/^/        /'
        # the answer as the CUDA path prints it (chapter 15 compares it with the CPU's in the same run)
        answer_is_42() { "$@" && grep -qx 'tensor(2983)' "$LOGS/demo_answer.log" && grep -qx "'42'" "$LOGS/demo_answer.log"; }
        run demo_answer answer_is_42 build/steps/15_logits --model $DEMO --device cuda --out "$GPU_TMP/demo15"
        grep -A 3 '^next_token = ' "$LOGS/demo_answer.log" | sed 's/^/        /'
        # chapter 19 on CUDA: one product per layer over the vocabulary, compared with the CPU (every layer's logits,
        # the norm, the softmax at the top 10); the lens ends on the same answer
        lens_is_42() { "$@" && grep -q "^the final prediction 2983 '42' at the last position" "$LOGS/demo_logit_lens.log" &&
            [ "$(grep -cE '^OK +19_logit_lens' "$LOGS/demo_logit_lens.log")" -ge 3 ]; }
        run demo_logit_lens lens_is_42 build/steps/19_logit_lens --model $DEMO --device cuda --out "$GPU_TMP/demo19"
        grep -E '^(OK|FAIL) +19_logit_lens' "$LOGS/demo_logit_lens.log" | sed 's/^/        /'
        maps=()
        NL=$(python3 -c "import json; print(json.load(open('$DEMO/params.json'))['n_layers'])")
        for ((L = 0; L < NL; L++)); do
            run "demo_maps_layer$L" build/steps/11_multihead --model $DEMO --device cuda --no-compare --layer $L \
                --out "$GPU_TMP/demo_l$L" --quiet
            maps+=("$GPU_TMP/demo_l$L/11_multihead/attn_weights_all.npy")
        done
        run demo_attention python3 tests/reference/tiny_model_check.py attention "${maps[@]}"
        grep -E '^(OK|FAIL) ' "$LOGS/demo_attention.log" | sed 's/^/        /'
    else
        FAIL=$((FAIL + 1)); note "FAIL  $DEMO/consolidated.00.pth or tokenizer.model is missing (make models)"
    fi
fi
if stage moe; then
    echo "== mixture of experts (chapter 20): launchers, presets, the MoE demo model on CUDA =="
    run moe_kernels build/tests/test_moe_gpu
    grep -E "passed, [0-9]+ failed" "$LOGS/moe_kernels.log" | tail -n 1 | sed 's/^/        /'
    MOE_IDS=1,300,400,500,600,700,800,900,1000,1200,77,5,300
    run moe_presets bash -c "build/bin/wt-make-model --preset minimind-moe --out '$GPU_TMP/moe_mm' --quiet &&
        build/bin/wt-make-model --preset mixtral-tiny --out '$GPU_TMP/moe_mx' --quiet"
    for L in 0 7; do
        run "moe_minimind_layer$L" build/steps/20_moe --model "$GPU_TMP/moe_mm" --tokens $MOE_IDS --layer $L \
            --device cuda --out "$GPU_TMP/moe_mm_t"
    done
    run moe_mixtral build/steps/20_moe --model "$GPU_TMP/moe_mx" --tokens $MOE_IDS --layer 1 --device cuda \
        --out "$GPU_TMP/moe_mx_t"
    MOE_DEMO=build/models/llama3-tiny-moe
    if [ -f "$MOE_DEMO/params.json" ]; then
        run walkthrough_moe build/bin/walkthrough --model "$MOE_DEMO" --device cuda --out "$GPU_TMP/moe_demo" --quiet
        sed -n '/^chapter/,$p' "$LOGS/walkthrough_moe.log" | sed 's/^/        /'
        run moe_demo_layer1 build/steps/20_moe --model "$MOE_DEMO" --layer 1 --device cuda --out "$GPU_TMP/moe_demo1"
        run moe_nocompare build/steps/20_moe --model "$MOE_DEMO" --device cuda --no-compare --out "$GPU_TMP/moe_nc"
    else
        FAIL=$((FAIL + 1)); note "FAIL  $MOE_DEMO is missing (make models)"
    fi
    if command -v compute-sanitizer >/dev/null; then
        run moe_memcheck compute-sanitizer --tool memcheck --error-exitcode 9 --leak-check full build/steps/20_moe \
            --model "$GPU_TMP/moe_mm" --tokens $MOE_IDS --layer 1 --device cuda --out "$GPU_TMP/moe_memcheck" --quiet
        run moe_memcheck_kernels compute-sanitizer --tool memcheck --error-exitcode 9 build/tests/test_moe_gpu --small
    else
        FAIL=$((FAIL + 1)); note "FAIL  compute-sanitizer not found"
    fi
fi
if stage sanitizer; then
    echo "== compute-sanitizer memcheck over the walkthrough of the tiny model =="
    if command -v compute-sanitizer >/dev/null; then
        for prog in build/steps/[0-9][0-9]_*; do
            run "memcheck_$(basename $prog)" compute-sanitizer --tool memcheck --error-exitcode 9 --leak-check full \
                "$prog" --model $TINY --device cuda --out "$GPU_TMP/san" --quiet
        done
    else
        FAIL=$((FAIL + 1)); note "FAIL  compute-sanitizer not found"
    fi
fi
if stage 8b; then
    echo "== the llama3-8b preset (16 GB) =="
    M8B="$GPU_TMP/llama3-8b"
    if [ ! -f "$M8B/params.json" ]; then
        t0=$(date +%s.%N)
        run make_8b build/bin/wt-make-model --preset llama3-8b --seed 1 --tokenizer build/models/tokenizer.model --out "$M8B"
        note "wt-make-model --preset llama3-8b: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s for $(du -sh "$M8B/consolidated.00.pth" | cut -f1)"
    fi
    t0=$(date +%s.%N)
    run inspect_8b build/bin/wt-inspect "$M8B" --no-checksums
    note "wt-inspect of the 16 GB checkpoint (no checksums): $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.3f", b-a}') s"
    run torch_mmap_8b python3 tests/gpu/check_torch_mmap.py "$M8B" build/bin/wt-inspect "$GPU_TMP/dumps"
    tail -n 3 "$LOGS/torch_mmap_8b.log" | sed 's/^/        /'
    run walkthrough_8b python3 tests/gpu/measure.py walkthrough_8b -- build/bin/walkthrough --model "$M8B" --device cuda --out "$GPU_TMP/w8b" --quiet
    sed -n '/^chapter/,$p' "$LOGS/walkthrough_8b.log" | sed 's/^/        /'
    note "$(grep '^measure walkthrough_8b' "$LOGS/walkthrough_8b.log")"
    wall=$(sed -nE 's/^measure walkthrough_8b: ([0-9.]+) s wall.*/\1/p' "$LOGS/walkthrough_8b.log")
    note "the 8B walkthrough, every chapter, CUDA and the CPU reference: ${wall:-?} s, the target <= 180 s: $(awk -v w="${wall:-999}" 'BEGIN { print (w <= 180) ? "met" : "NOT met" }')"
fi
if stage generate; then
    echo "== generation: CPU = CUDA = HF greedy ids, chapter 16 on CUDA, compute-sanitizer on a short generate =="
    run generate_gpu env PY="$(command -v python3)" bash tests/test_generate.sh
    grep -E "passed, [0-9]+ failed" "$LOGS/generate_gpu.log" | tail -n 1 | sed 's/^/        /'
fi
if stage engine8b; then
    echo "== engine: GPU logits against the CPU reference at the llama3-8b preset =="
    M8B="$GPU_TMP/llama3-8b"
    [ -f "$M8B/params.json" ] || run make_8b build/bin/wt-make-model --preset llama3-8b --seed 1 --tokenizer build/models/tokenizer.model --out "$M8B"
    run engine_8b build/tests/test_engine_gpu "$M8B"
    grep -E "passed, [0-9]+ failed" "$LOGS/engine_8b.log" | tail -n 1 | sed 's/^/        /'
fi

if stage tp; then
    echo "== chapters 17 and 18 on one GPU: packed products, fused kernel, the ranks emulated on GPU 0 =="
    DEMO=build/models/llama3-tiny-trained
    N_GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
    all_ok() { "$@" && grep -qE '^OK +1[78]_' "$LOG_TP" && ! grep -qE '^FAIL' "$LOG_TP"; }
    for m in $TINY $DEMO; do
        LOG_TP="$LOGS/tp_17_$(basename $m).log"
        run "tp_17_$(basename $m)" all_ok build/steps/17_packed --model $m --device cuda --out "$GPU_TMP/tp17_$(basename $m)"
    done
    for n in 2 4; do
        LOG_TP="$LOGS/tp_18_demo_$n.log"
        run "tp_18_demo_$n" all_ok build/steps/18_tensor_parallel --model $DEMO --device cuda --tp $n --out "$GPU_TMP/tp18_$n"
        grep -E "^CUDA: " "$LOG_TP" | sed 's/^/        /'
        if [ "$N_GPUS" -lt "$n" ]; then  # the one-GPU behaviour: says so, emulates
            run "tp_18_demo_${n}_says_emulated" grep -q "^CUDA: $n ranks need $n GPUs.*; $N_GPUS found: the ranks run one after another on GPU 0" "$LOG_TP"
        fi
    done
    M8B="$GPU_TMP/llama3-8b"
    if [ -f "$M8B/params.json" ]; then
        LOG_TP="$LOGS/tp_17_8b.log"
        run tp_17_8b all_ok build/steps/17_packed --model "$M8B" --device cuda --out "$GPU_TMP/tp17_8b"
        LOG_TP="$LOGS/tp_18_8b_8.log"
        run tp_18_8b_8 all_ok build/steps/18_tensor_parallel --model "$M8B" --device cuda --tp 8 --out "$GPU_TMP/tp18_8b"
    else
        note "chapters 17-18 at the llama3-8b preset: not run (the 8b stage makes it: STAGES=\"8b tp\")"
    fi
    [ "$N_GPUS" -ge 2 ] && note "this machine has $N_GPUS GPUs: tests/gpu/run_tp.sh runs 18_tensor_parallel over NCCL"
fi

if stage nocompare; then
    echo "== the walkthrough with --device cuda --no-compare: the CUDA path alone, nothing compared =="
    CHAPTERS=$(cd build/steps && ls -d [0-9][0-9]_* | tr '\n' ' ')
    N_CHAPTERS=$(echo $CHAPTERS | wc -w)
    # summary_says LOG: the summary counts every chapter as run, none as passed, and no line says OK
    summary_says() {
        grep -qE "^$N_CHAPTERS chapters in [0-9.]+ s: $N_CHAPTERS ran, 0 failed; nothing compared \(--no-compare\)" "$1" &&
            ! grep -qE "^OK|passed" "$1" && [ "$(grep -cE "^cuda-only [0-9][0-9]_[a-z_]+: not compared" "$1")" -eq "$N_CHAPTERS" ]
    }
    # the tiny model: a default-mode trace of the same model to compare with, then the CUDA path alone
    rm -rf "$GPU_TMP/nc_tiny_ref" "$GPU_TMP/nc_tiny"
    run nc_ref_tiny build/bin/walkthrough --model $TINY --device cuda --out "$GPU_TMP/nc_tiny_ref" --quiet
    run walkthrough_tiny_nocompare build/bin/walkthrough --model $TINY --device cuda --no-compare --out "$GPU_TMP/nc_tiny" --quiet
    sed -n '/^chapter/,$p' "$LOGS/walkthrough_tiny_nocompare.log" | sed 's/^/        /'
    run nocompare_tiny_summary summary_says "$LOGS/walkthrough_tiny_nocompare.log"
    run nocompare_tiny_trace python3 tests/reference/check_trace.py --mode cuda-only "$GPU_TMP/nc_tiny" $TINY $CHAPTERS
    tail -n 1 "$LOGS/nocompare_tiny_trace.log" | sed 's/^/        /'
    run nocompare_tiny_vs_default python3 tests/gpu/compare_traces.py "$GPU_TMP/nc_tiny_ref" "$GPU_TMP/nc_tiny"
    tail -n 2 "$LOGS/nocompare_tiny_vs_default.log" | sed 's/^/        /'
    # the llama3-8b preset, timed
    M8B="$GPU_TMP/llama3-8b"
    [ -f "$M8B/params.json" ] || run make_8b build/bin/wt-make-model --preset llama3-8b --seed 1 --tokenizer build/models/tokenizer.model --out "$M8B"
    rm -rf "$GPU_TMP/w8b_nc"
    run walkthrough_8b_nocompare python3 tests/gpu/measure.py walkthrough_8b_nocompare -- build/bin/walkthrough \
        --model "$M8B" --device cuda --no-compare --out "$GPU_TMP/w8b_nc" --quiet
    sed -n '/^chapter/,$p' "$LOGS/walkthrough_8b_nocompare.log" | sed 's/^/        /'
    note "$(grep '^measure walkthrough_8b_nocompare' "$LOGS/walkthrough_8b_nocompare.log")"
    wall=$(sed -nE 's/^measure walkthrough_8b_nocompare: ([0-9.]+) s wall.*/\1/p' "$LOGS/walkthrough_8b_nocompare.log")
    note "the 8B walkthrough with --device cuda --no-compare: ${wall:-?} s, the target <= 25 s: $(awk -v w="${wall:-999}" 'BEGIN { print (w <= 25) ? "met" : "NOT met" }')"
    run nocompare_8b_summary summary_says "$LOGS/walkthrough_8b_nocompare.log"
    run nocompare_8b_trace python3 tests/reference/check_trace.py --mode cuda-only "$GPU_TMP/w8b_nc" "$M8B" $CHAPTERS
    tail -n 1 "$LOGS/nocompare_8b_trace.log" | sed 's/^/        /'
    if stage 8b && [ -f "$GPU_TMP/w8b/trace.json" ]; then
        # random 8B weights: many near ties among the logits, so chapter 16's greedy tokens may part (reported)
        run nocompare_8b_vs_default python3 tests/gpu/compare_traces.py --allow-generate-divergence "$GPU_TMP/w8b" "$GPU_TMP/w8b_nc"
        grep -E "^note|^# worst" "$LOGS/nocompare_8b_vs_default.log" | sed 's/^/        /'
    else
        note "the 8B CUDA-only trace is not compared with a default one: run the 8b stage first (STAGES=\"8b nocompare\")"
    fi
fi

if stage nonfinite; then
    echo "== nonfinite: a corrupt checkpoint on the CUDA path stops at the NaN =="
    DEMO=build/models/llama3-tiny-trained
    C="$GPU_TMP/corrupt"
    if [ -f "$DEMO/params.json" ]; then
        mkdir -p "$C" && cp "$DEMO/params.json" "$DEMO/tokenizer.model" "$DEMO/consolidated.00.pth" "$C/"
        offset=$(build/bin/wt-inspect "$DEMO" --no-checksums | sed -n 's/^norm.weight bf16 \[[0-9]*\] offset=\([0-9]*\).*/\1/p')
        printf '\377\377\377\377\377\377\377\377' | dd of="$C/consolidated.00.pth" bs=1 seek="$((offset + 64))" conv=notrunc status=none
        # stops_with LOG CODE PATTERN CMD...: CMD exits CODE, its output matches PATTERN and says no OK/bit-identical
        stops_with() {
            local log="$1" code="$2" pat="$3"; shift 3
            "$@" >"$log" 2>&1; local rc=$?
            [ "$rc" -eq "$code" ] && grep -qE -- "$pat" "$log" && ! grep -qE '^OK|bit-identical|^next_token' "$log" ||
                { echo "exit $rc (want $code), pattern '$pat':"; tail -n 20 "$log"; return 1; }
        }
        run nonfinite_15 stops_with "$GPU_TMP/nf15.log" 1 "^error: 15_logits: .* is not finite at .*\(NaN\)" \
            build/steps/15_logits --model "$C" --device cuda --out "$GPU_TMP/nf"
        run nonfinite_16 stops_with "$GPU_TMP/nf16.log" 1 "^error: 16_generate: .* is not finite at .*\(NaN\)" \
            build/steps/16_generate --model "$C" --device cuda --out "$GPU_TMP/nf"
        run nonfinite_generate stops_with "$GPU_TMP/nfgen.log" 1 "^error: the logits at position 16 are not finite" \
            build/bin/generate --model "$C" --device cuda -n 8 --prompt "the answer to the ultimate question of life, the universe, and everything is "
        run nonfinite_verify stops_with "$GPU_TMP/nfver.log" 2 "tensor norm.weight \(zip entry" \
            build/steps/05_rope --model "$C" --device cuda --out "$GPU_TMP/nfv" --verify-checksums
        run nonfinite_trace_device python3 -c "
import json, sys
t = json.load(open('$GPU_TMP/nf/trace.json'))
for s in t['steps']:
    assert 'not finite' in s.get('error', ''), s['id']
    assert s['run']['device'] not in ('cpu', '') and s['mode'] == 'cuda+cpu', s['run']
print('ok: both chapters record their error and the GPU as device')"
    else
        FAIL=$((FAIL + 1)); note "FAIL  nonfinite: $DEMO is missing (make models)"
    fi
fi

# GIT_COMMIT (the commit the carried build was made from) wins: a copy of the tree on another machine may hold a
# stale .git (seen on the device machine: a session's first commit instead of the build's)
COMMIT=${GIT_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
{
    echo "make test-gpu: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit: $COMMIT"
    echo "GPU: $GPU"
    echo "stages: $STAGES"
    echo "result: $PASS passed, $FAIL failed"
    echo
    for n in "${NOTES[@]}"; do echo "$n"; done
    for f in "$LOGS"/walkthrough_*.log; do
        [ -f "$f" ] || continue
        echo; echo "$(basename "$f" .log):"; sed -n '/^chapter/,$p' "$f"
    done
    [ -f "$LOGS/kernels.log" ] && { echo; echo "kernels:"; grep -E "^(OK|FAIL)|passed, " "$LOGS/kernels.log" | tail -n 60; }
    [ -f "$LOGS/engine_ops.log" ] && { echo; echo "engine ops: $(grep -c '^OK' "$LOGS/engine_ops.log") comparisons OK";
        grep -E "^FAIL|passed, " "$LOGS/engine_ops.log"; }
} >"$SUMMARY"
echo "summary: $SUMMARY"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
