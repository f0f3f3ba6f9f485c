#!/usr/bin/env bash
# test_trace_runs.sh: a trace directory holds one run (issue 12: re-running one chapter with another prompt left a
# page whose header showed the new prompt beside chapters computed for the old one, without a word).
#
# Each chapter records its run in trace.json (the model's path and fingerprint, the prompt's token ids, layer, head,
# precision, device); a chapter written into a trace of another run is refused (exit 2, one line naming the other
# chapter and what differs) unless --force; export-notebook refuses a mixed trace (exit 2) unless --allow-mixed, and
# then says so at the top of the page and the notebook.
# expect: 2 s
source "$(dirname "$0")/lib.sh"
M=build/models/tiny
M2=build/models/llama3-tiny-trained
EXPORT=build/bin/export-notebook
for f in build/steps/02_embed build/steps/03_rmsnorm "$EXPORT" "$M/params.json" "$M2/params.json"; do
    [ -e "$f" ] || { no "$f is missing: run 'make all models' first"; finish; exit; }
done
T="$TMP/trace"
run() { build/steps/"$1" --out "$T" --device cpu --quiet "${@:2}"; }

check "02_embed into a fresh trace" run 02_embed --model "$M"
check "03_rmsnorm, same run: accepted" run 03_rmsnorm --model "$M"
check "each chapter records its run (fingerprint, token ids, layer, head, precision, device)" $PY -c "
import json
t = json.load(open('$T/trace.json'))
runs = [s['run'] for s in t['steps']]
assert len(runs) == 2 and runs[0] == runs[1], runs
r = runs[0]
assert r['fingerprint'].startswith('fnv1a64:') and len(r['fingerprint']) == 24, r
assert r['tokens'] == t['tokens']['ids'] and r['tokens'][0] == 128000, r
assert (r['layer'], r['head'], r['precision'], r['device']) == (0, 0, 'bf16', 'cpu'), r
assert r['model'] == '$M', r"
cp "$T/trace.json" "$TMP/before.json"

# another prompt, layer, head, precision, model: refused, and the trace is left as it was
check_fails 2 "^error: $T: chapter 02_embed was computed for another run: the prompt \(17 tokens vs 3\); .*--force" \
    "another prompt is refused" run 03_rmsnorm --model "$M" --prompt "hello there"
check_fails 2 "another run: layer \(0 vs 1\)" "another layer is refused" run 03_rmsnorm --model "$M" --layer 1
check_fails 2 "another run: head \(0 vs 1\)" "another head is refused" run 03_rmsnorm --model "$M" --head 1
check_fails 2 "another run: precision \(\"bf16\" vs \"fp32\"\)" "another precision is refused" \
    run 03_rmsnorm --model "$M" --precision fp32
check_fails 2 "another run: the model's fingerprint \(\"fnv1a64:[0-9a-f]{16}\" vs \"fnv1a64:[0-9a-f]{16}\"\)" \
    "another model (same shapes, other weights and config) is refused" run 03_rmsnorm --model "$M2"
check "the refused runs left trace.json as it was" cmp "$TMP/before.json" "$T/trace.json"
# the same model under another path is the same run
mkdir -p "$TMP/copy" && cp "$M"/* "$TMP/copy/"
check "the same model copied elsewhere: accepted" run 03_rmsnorm --model "$TMP/copy"

check "the consistent trace exports" "$EXPORT" "$T" -o "$TMP/a.ipynb" --html "$TMP/a.html"
check "its page says nothing of a mix" bash -c "! grep -q 'MIXED' '$TMP/a.html'"

# --force writes anyway, with a warning; the exporter then refuses the trace, or marks it with --allow-mixed
check "--force writes into the trace of another run, with a warning" bash -c "
    build/steps/03_rmsnorm --out '$T' --device cpu --quiet --model '$M' --prompt 'hello there' --force 2>'$TMP/force.err' &&
    grep -q '^warning: .*another run: the prompt (17 tokens vs 3); written anyway (--force)' '$TMP/force.err'"
check_fails 2 "trace.json: chapters 02_embed and 03_rmsnorm were computed for different runs: the prompt \(17 tokens vs 3\): this trace mixes runs" \
    "export-notebook refuses the mixed trace" "$EXPORT" "$T" -o "$TMP/b.ipynb" --html "$TMP/b.html"
check "nothing was written for the refused export" test ! -e "$TMP/b.html" -a ! -e "$TMP/b.ipynb"
check "export-notebook --allow-mixed exports it" "$EXPORT" "$T" -o "$TMP/b.ipynb" --html "$TMP/b.html" --allow-mixed
check "the page says MIXED TRACE at the top, with the reason" \
    grep -qE '<p class="fail mixed">⚠ MIXED TRACE: .*chapters 02_embed and 03_rmsnorm were computed for different runs: the prompt' "$TMP/b.html"
check "the notebook says it too" grep -q 'MIXED TRACE' "$TMP/b.ipynb"
N_MISSING=$(( $(ls build/steps/[0-9][0-9]_* | wc -l) - 2 ))  # every chapter but the two written
check "the page's summary names the $N_MISSING missing chapters" \
    grep -qE "<p class=\"summary na\">0 compared with CUDA and passed · 2 not compared · $N_MISSING missing \(00_config, 01_tokenize, 04_query" "$TMP/b.html"
# once mixed, even the first run's prompt is refused: the trace holds another run now
check_fails 2 "another run: the prompt \(3 tokens vs 17\)" "a mixed trace refuses further chapters" run 02_embed --model "$M"
finish
