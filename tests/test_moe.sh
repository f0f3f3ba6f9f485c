#!/usr/bin/env bash
# tests/test_moe.sh: the mixture-of-experts feed-forward (issue 14, chapter 20) on the CPU.
#   1. tests/reference/moe_reference.py --self-test: torch.topk's tie order, the two aux forms, the HF names, RoPE
#      forms; and the C unit test's hand-worked cases (build/tests/test_moe runs under tests/run.sh by itself)
#   2. a PyTorch reference written from the equations (moe_reference.py) agrees with chapter 20's tensors (gate logits
#      and scores, top-k ids and weights, aux loss, routed and layer output) and chapter 15's logits on the
#      minimind-moe preset (MiniMind's config.json + fp16 .pth), the mixtral-tiny preset (HF safetensors) and the MoE
#      demo model; a planted error in our tensors makes the comparison fail
#   3. files written by torch itself (torch.save of state dicts named as MiniMind's and Mixtral's, their config.json)
#      load and give the reference's logits; a gate of zeros (all scores tied) picks torch.topk's experts;
#      wt-convert hf-to-meta of MiniMind's layout gives our layout, and the same tensors
#   4. bad input: an expert tensor missing, a gate of the wrong shape, k > E: one line, exit 2
#   5. the MoE demo model meets its routing criteria on the C walkthrough's tensors (confidence on the tutorial
#      prompt), a dense model's chapter 20 says so and traces the MoE demo model, the whole walkthrough of the MoE
#      demo model runs (chapter 13 shows the MoE in place of SwiGLU; check_trace.py), generate runs it on the CPU
# expect: 50 s
source "$(dirname "$0")/lib.sh"
MAKE=build/bin/wt-make-model
S20=build/steps/20_moe
S15=build/steps/15_logits
REF=tests/reference/moe_reference.py
FILES=tests/reference/moe_torch_files.py
DEMO=build/models/llama3-tiny-moe
IDS=1,300,400,500,600,700,800,900,1000,1200,77,5,300
TUTORIAL=128000,1820,4320,311,279,17139,3488,315,2324,11,279,15861,11,323,4395,374,220
for f in "$MAKE" "$S20" "$S15"; do [ -x "$f" ] || { no "$f is not built (make all)"; finish; exit; }; done
$PY -c 'import torch, numpy' 2>/dev/null || { no "$PY lacks torch/numpy (apt-get install python3-torch)"; finish; exit; }

check "moe_reference.py --self-test (topk ties, aux forms, names, RoPE forms)" $PY "$REF" --self-test

# ---- 2. our tensors against the PyTorch reference ---------------------------------------------------------------------
check "wt-make-model --preset minimind-moe --layers 2" "$MAKE" --preset minimind-moe --layers 2 --out "$TMP/mm" --quiet
check "wt-make-model --preset mixtral-tiny" "$MAKE" --preset mixtral-tiny --out "$TMP/mx" --quiet
# name model ids layer: chapter 20 and 15 on the CPU, the reference, the comparison
against_torch() {
    local name=$1 model=$2 ids=$3 layer=$4
    check "$name: 20_moe --layer $layer" "$S20" --model "$model" --tokens "$ids" --layer "$layer" --device cpu \
        --out "$TMP/t_$name" --quiet
    # the same run as chapter 20's (a trace is one run: another --layer would be refused), though 15 runs every layer
    check "$name: 15_logits" "$S15" --model "$model" --tokens "$ids" --layer "$layer" --device cpu --out "$TMP/t_$name" --quiet
    check "$name: the PyTorch reference" $PY "$REF" "$model" --ids "$ids" --layer "$layer" --out-dir "$TMP/r_$name"
    check "$name: gate, top-k, weights, aux, output and logits = PyTorch's" $PY "$REF" --compare "$TMP/r_$name" \
        "$TMP/t_$name" --logits "$TMP/t_$name/15_logits/logits.npy"
}
against_torch minimind "$TMP/mm" "$IDS" 1
against_torch mixtral "$TMP/mx" "$IDS" 1
if [ -f "$DEMO/params.json" ]; then
    against_torch demo0 "$DEMO" "$TUTORIAL" 0
    against_torch demo1 "$DEMO" "$TUTORIAL" 1
else
    no "$DEMO is missing: run make models"
fi
# the comparison fails on a planted error: one pick changed, or one element of the output moved by 3 bf16 ulps
for plant in topk_idx moe_out; do
    rm -rf "$TMP/planted" && cp -r "$TMP/t_minimind" "$TMP/planted"
    $PY -c "
import numpy as np, sys
p = '$TMP/planted/20_moe/$plant.npy'; a = np.load(p)
if '$plant' == 'topk_idx': a[3, 0] = (a[3, 0] + 1) % 4
else: a.flat[77] = a.flat[77] * (1 + 3 * 2.0 ** -8) + 0.05
np.save(p, a)"
    if $PY "$REF" --compare "$TMP/r_minimind" "$TMP/planted" >"$TMP/out" 2>&1; then
        no "the comparison passed a planted error in $plant"
    else [ $? -eq 1 ] && grep -q "^FAIL" "$TMP/out" && ok || no "the comparison of a planted error in $plant: not exit 1"; fi
done

# ---- 3. files written by torch ------------------------------------------------------------------------------------------
check "torch.save of a MiniMind state dict (fp16, its names, tied lm_head) + config.json" $PY "$FILES" minimind "$TMP/tm"
check "torch.save of a Mixtral state dict (pytorch_model.bin, bf16) + config.json" $PY "$FILES" mixtral "$TMP/tx"
against_torch torch_minimind "$TMP/tm" 1,2,3,40,50,60,70,80,90,100,200 0
against_torch torch_mixtral "$TMP/tx" 1,2,3,40,50,60,70,80,90,100,200 1
check "wt-make-model --preset minimind-moe --format meta" "$MAKE" --preset minimind-moe --layers 2 --format meta \
    --out "$TMP/meta" --quiet
# MiniMind's layout converted to ours (wt-convert hf-to-meta) routes and computes the same, bit for bit
check "wt-convert hf-to-meta of the minimind-moe preset" build/bin/wt-convert hf-to-meta "$TMP/mm" "$TMP/mm_meta"
check "the converted model: chapter 20" "$S20" --model "$TMP/mm_meta" --tokens "$IDS" --layer 1 --device cpu \
    --out "$TMP/t_mm_meta" --quiet
check "the converted model gives MiniMind's layout's tensors, bit for bit" bash -c "
    for f in gate_scores topk_idx topk_weight moe_out; do
        cmp '$TMP/t_mm_meta/20_moe/'\$f.npy '$TMP/t_minimind/20_moe/'\$f.npy || exit 1; done"
check "a gate of zeros: every score ties" $PY "$FILES" ties "$TMP/meta" "$TMP/ties"
against_torch ties "$TMP/ties" "$IDS" 0
check "ties: every token picks experts 2 and 3, torch.topk's order for four equal scores" $PY -c "
import numpy as np, sys
a = np.load('$TMP/t_ties/20_moe/topk_idx.npy'); print(a[:3].tolist())
sys.exit(0 if (a == [2, 3]).all() else 1)"

# ---- 4. bad input -------------------------------------------------------------------------------------------------------
check "broken: an expert tensor missing" $PY "$FILES" broken missing-expert "$TMP/meta" "$TMP/bad1"
check "broken: a gate of the wrong shape" $PY "$FILES" broken gate-shape "$TMP/meta" "$TMP/bad2"
check "broken: k > E" $PY "$FILES" broken k-gt-e "$TMP/meta" "$TMP/bad3"
check_fails 2 "layers.1.feed_forward.experts.2.w3.weight: missing" "a missing expert tensor: one line, exit 2" \
    "$S20" --model "$TMP/bad1" --tokens 1,2,3 --device cpu --out "$TMP/tb"
check_fails 2 "layers.0.feed_forward.gate.weight: shape \[5, 512\], but the config implies \[4, 512\]" \
    "a gate of the wrong shape: one line, exit 2" "$S20" --model "$TMP/bad2" --tokens 1,2,3 --device cpu --out "$TMP/tb"
check_fails 2 "num_experts_per_tok: 5, but a token picks 1..n_routed_experts = 4" "k > E: one line, exit 2" \
    "$S20" --model "$TMP/bad3" --tokens 1,2,3 --device cpu --out "$TMP/tb"
check_fails 2 "expected token ids" "--tokens with a bad id: one line, exit 2" \
    "$S20" --model "$TMP/meta" --tokens 1,x --device cpu --out "$TMP/tb"

# ---- 5. the demo model, a dense model, generate -------------------------------------------------------------------------
if [ -f "$DEMO/params.json" ]; then
    # the routing criteria of weights_tools/train_tiny.py (moe_criteria): confidence >= 2/E in every MoE layer on the
    # tutorial prompt, from the C walkthrough's gate scores
    check "MoE demo: the gate is far from uniform on the tutorial prompt (C tensors, both layers)" $PY -c "
import numpy as np, sys
sys.path.insert(0, 'weights_tools'); import train_tiny as t
layers = []
for d in ('$TMP/t_demo0', '$TMP/t_demo1'):
    s = np.load(d + '/20_moe/gate_scores.npy'); i = np.load(d + '/20_moe/topk_idx.npy').astype(int)
    layers.append(t.routing_stats(s, i, s.shape[1]))
c = t.moe_criteria(layers, 4, check_load=False); print(c['worst_confidence'], [r['load'] for r in layers])
sys.exit(0 if c['ok'] else 1)"
    check "the routing criteria reject a uniform gate and a starved expert" $PY -c "
import numpy as np, sys
sys.path.insert(0, 'weights_tools'); import train_tiny as t
u = t.routing_stats(np.full((17, 4), 0.25), np.tile([0, 1, 2, 3], (17, 1))[:, :2], 4)
sharp = np.eye(4)[np.arange(100) % 3]; starved = t.routing_stats(sharp, np.stack([np.arange(100) % 3, (np.arange(100) + 1) % 3], 1), 4)
sys.exit(0 if not t.moe_criteria([u], 4, check_load=False)['ok'] and not t.moe_criteria([starved], 4)['ok'] else 1)"
    DENSE=build/models/llama3-tiny-trained
    [ -f "$DENSE/params.json" ] || DENSE=build/models/tiny
    check "a dense model: chapter 20 says so and traces the MoE demo model" bash -c "
        '$S20' --model '$DENSE' --device cpu --out '$TMP/td' | grep -q 'dense SwiGLU feed-forward, no experts: this chapter traces the MoE demo'"
    # the whole walkthrough on a MoE model: chapter 13 lists the gate and experts and runs the MoE in place of SwiGLU
    check "the walkthrough of the MoE demo model on the CPU: every chapter" build/bin/walkthrough --model "$DEMO" \
        --device cpu --out "$TMP/wmoe" --quiet
    check "check_trace.py on the MoE demo's walkthrough" $PY tests/reference/check_trace.py "$TMP/wmoe" "$DEMO" \
        00_config 01_tokenize 02_embed 03_rmsnorm 04_query 05_rope 06_key 07_scores 08_mask 09_softmax 10_value \
        11_multihead 12_output 13_ffn 14_layers 15_logits 16_generate 17_packed 18_tensor_parallel 19_logit_lens 20_moe
    check "13_ffn on the MoE demo model prints the gate, the 4 experts and the shared one, not w1/w2/w3" $PY -c "
import json, sys
lines = [l for s in json.load(open('$TMP/wmoe/trace.json'))['steps'] if s['id'] == '13_ffn' for l in s['lines']]
has = lambda w: any(w in l for l in lines)
sys.exit(0 if has('layers.0.feed_forward.gate.weight') and has('experts.3.w2.weight') and
         has('shared_experts.0.w1.weight') and not has('layers.0.feed_forward.w1.weight') else 1)"
    check "generate on the MoE demo model runs the CPU reference" build/bin/generate --model "$DEMO" \
        --prompt "In the beginning God created" -n 4 --temperature 0 --device cpu --quiet
fi
finish
