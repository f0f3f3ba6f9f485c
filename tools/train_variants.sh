#!/usr/bin/env bash
# tools/train_variants.sh: trains several variants of the demo model (weights_tools/train_tiny.py) at once on one
# GPU, prints one line per variant and keeps the best one that passes.
#
# Usage: tools/train_variants.sh CORPUS OUT          (e.g. build/corpus $OUT/train on the GPU machine)
#        tools/train_variants.sh --summarize WORK OUT  (only the summary and the copy, from a finished WORK)
#
# Every variant is one train_tiny.py process with the default model shape (dim 512, 4 layers, 4 heads, 1 kv head,
# vocab 128256) and --time-budget $BUDGET seconds for its training loop; all run concurrently on the same GPU, so
# the whole script takes at most about BUDGET + 90 s (start-up, the final bf16 checks and saves; a process stops
# earlier when its steps are done: 236 s in all for the sweep of the committed model). Each process is also under
# a hard `timeout` of BUDGET + HARD_EXTRA seconds. The variants (one a line, "NAME ARGS...") are in VARIANTS below;
# the environment variable VARIANTS replaces them.
#
# Then, for each variant: exit status, steps done, kept step, held-out loss of the saved bf16 file (on the unchanged
# valid.bin), the greedy answer (2983 = "42"), the best layer-0 previous-token head and the strongest BOS sink, all
# read from its train_log.json. The passing variants (exit 0: answer 42 and both attention criteria, checked by
# train_tiny.py on the saved file) are ranked by held-out loss; the best one's params.json, consolidated.00.pth,
# loss.csv, loss.png (when matplotlib made one), train_log.json, stdout.log and tokenizer.model (so that OUT is a
# model directory for TINY_MODEL=OUT; not to be committed) are copied to OUT, CHOSEN.txt naming it. Every variant's
# train_log.json and stdout log go to OUT/variants/NAME.* in any case. If none passes, the variant with the highest
# layer-0 previous-token score among those answering 42 is copied to OUT/best_failing/ instead and the exit status
# is 3. Exit 0 when a variant passed, 3 when none did, 2 on bad input.
#
# Environment:
#   BUDGET=300        seconds of training loop per process (--time-budget; 8 variants on an H200 need ~212 s)
#   HARD_EXTRA=140    seconds added to BUDGET for the hard timeout of each process
#   WORK=build/train/variants   where the runs write (under the repository by default)
#   PY=python3        the python with torch (2.x with CUDA on the GPU machine; Debian's 1.13 on the CPU)
#   DEVICE=cuda
#   THREADS=2         OMP/MKL threads per process (16 cores shared by the 8 processes)
#   SMOKE=1           a tiny CPU version of everything (dim 64, 2 layers, 12 steps, the first 2 variants): the plumbing
#   VARIANTS          replaces the list below (same format)
#   PACK=1            OUT gets few files under 16 MiB each instead (summary.txt, meta.tar.gz with every file
#                     named above but the checkpoint, the checkpoint as xz in 15 MiB pieces consolidated.00.pth.xz.NN)
set -uo pipefail
HERE=$(pwd)
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$HERE/$1" ;; esac; }  # paths given are read from the caller's directory
cd "$(dirname "$0")/.."

# NAME then train_tiny.py arguments (added to the defaults). The recipe is a shared direction in the embedding's start
# (--embed-init-std 0.1 --embed-init-shared 0.1; train_tiny.py's docstring, "A previous-token head in layer 0", says
# why): three seeds, two with more of it (0.2), one with repeated-span data (--repeat-frac) on top, one without
# dropout, one with a higher lr. This is the sweep that made the committed model (shared_rep25_s1; its summary is
# models/llama3-tiny-trained/sweep.txt). The control (the recipe without the shared start) was measured in earlier
# sweeps (models/README.md, "What came before"): VARIANTS can add "control --seed 1".
DEFAULT_VARIANTS="shared_s1 --seed 1 --embed-init-std 0.1 --embed-init-shared 0.1
shared_s2 --seed 2 --embed-init-std 0.1 --embed-init-shared 0.1
shared_s3 --seed 3 --embed-init-std 0.1 --embed-init-shared 0.1
shared2_s1 --seed 1 --embed-init-std 0.1 --embed-init-shared 0.2
shared2_s2 --seed 2 --embed-init-std 0.1 --embed-init-shared 0.2
shared_rep25_s1 --seed 1 --embed-init-std 0.1 --embed-init-shared 0.1 --repeat-frac 0.25
shared_nodrop_s1 --seed 1 --embed-init-std 0.1 --embed-init-shared 0.1 --dropout 0
shared_lr15_s1 --seed 1 --embed-init-std 0.1 --embed-init-shared 0.1 --lr 1.5e-3"

die2() { echo "error: $*" >&2; exit 2; }

summarize() {  # WORK OUT: the table, the choice, the copies; returns 0 (a variant passed) or 3
    local work=$1 out=$2
    mkdir -p "$out/variants"
    "${PY:-python3}" - "$work" "$out" <<'EOF'
import json, os, shutil, sys
work, out = sys.argv[1], sys.argv[2]
names = [l.split()[0] for l in open(os.path.join(work, "variants.txt")) if l.strip()]
rows = []
for n in names:
    d = os.path.join(work, n)
    rc = open(os.path.join(work, n + ".rc")).read().strip() if os.path.isfile(os.path.join(work, n + ".rc")) else "?"
    r = {"name": n, "dir": d, "rc": rc, "loss": None, "answer": None, "prev": None, "bos": None, "steps": None,
         "kept": None, "secs": None}
    lp = os.path.join(d, "train_log.json")
    if os.path.isfile(lp):
        try:
            L = json.load(open(lp))
            r.update(loss=L.get("held_out_loss_saved_bf16"), answer=L["answer"]["bf16"]["argmax"],
                     prev=L["attention_criteria"]["layer0_previous"]["value"],
                     bos=L["attention_criteria"]["bos_sink"]["value"], steps=L["train"]["steps_done"],
                     kept=L["train"]["kept_step"], secs=L["train"]["seconds"])
        except (ValueError, KeyError, TypeError) as e:
            r["note"] = f"unreadable train_log.json ({e})"
        shutil.copyfile(lp, os.path.join(out, "variants", n + ".train_log.json"))
    if os.path.isfile(os.path.join(work, n + ".log")):
        shutil.copyfile(os.path.join(work, n + ".log"), os.path.join(out, "variants", n + ".log"))
    rows.append(r)
f = lambda v, fmt: "-" if v is None else format(v, fmt)
print(f"{'variant':<16} {'exit':>4} {'steps':>5} {'kept':>5} {'train_s':>7} {'held-out':>8} {'answer':>6} "
      f"{'L0 prev':>7} {'BOS':>6}  args")
args = {l.split()[0]: " ".join(l.split()[1:]) for l in open(os.path.join(work, "variants.txt")) if l.strip()}
for r in rows:
    print(f"{r['name']:<16} {r['rc']:>4} {f(r['steps'], 'd'):>5} {f(r['kept'], 'd'):>5} {f(r['secs'], '.0f'):>7} "
          f"{f(r['loss'], '.4f'):>8} {f(r['answer'], 'd'):>6} {f(r['prev'], '.3f'):>7} {f(r['bos'], '.3f'):>6}  "
          f"{args[r['name']]}{'  ' + r['note'] if 'note' in r else ''}")
files = ["params.json", "consolidated.00.pth", "loss.csv", "loss.png", "train_log.json", "tokenizer.model"]
passing = sorted((r for r in rows if r["rc"] == "0" and r["loss"] is not None), key=lambda r: r["loss"])
if passing:
    best, dest, status = passing[0], out, 0
    print(f"BEST {best['name']}: held-out loss {best['loss']:.4f}, answer {best['answer']}, layer-0 previous "
          f"{best['prev']:.3f}, BOS {best['bos']:.3f} -> {out}")
else:
    cand = sorted((r for r in rows if r["answer"] == 2983 and r["prev"] is not None), key=lambda r: -r["prev"])
    if not cand:
        print("NONE passed, and none answered 42: nothing copied")
        sys.exit(3)
    best, dest, status = cand[0], os.path.join(out, "best_failing"), 3
    print(f"NONE passed; the highest layer-0 previous-token score among those answering 42: {best['name']} "
          f"({best['prev']:.3f}) -> {dest} (NOT a model that meets the criteria)")
os.makedirs(dest, exist_ok=True)
for fn in files:
    src = os.path.join(best["dir"], fn)
    if os.path.isfile(src):
        shutil.copyfile(src, os.path.join(dest, fn))
shutil.copyfile(os.path.join(work, best["name"] + ".log"), os.path.join(dest, "stdout.log"))
with open(os.path.join(dest, "CHOSEN.txt"), "w") as g:
    g.write(f"{best['name']} {args[best['name']]}\nexit {best['rc']}\n")
sys.exit(status)
EOF
}

finish_up() {  # WORK OUT: summarize, plainly or (PACK=1) into few files under 16 MiB; returns summarize's status
    local work=$1 out=$2 rc ckpt
    if [ "${PACK:-0}" != 1 ]; then summarize "$work" "$out"; return $?; fi
    # PACK=1: OUT/summary.txt, OUT/meta.tar.gz (everything but the checkpoint) and the chosen checkpoint as xz in
    # 15 MiB pieces, consolidated.00.pth.xz.NN (cat them in order, then xz -d)
    rm -rf "$work/_out"
    mkdir -p "$out"
    summarize "$work" "$work/_out" | tee "$out/summary.txt"
    rc=${PIPESTATUS[0]}
    ckpt=$(ls "$work/_out/consolidated.00.pth" "$work/_out/best_failing/consolidated.00.pth" 2>/dev/null | head -n 1)
    if [ -n "$ckpt" ]; then
        rm -f "$out"/consolidated.00.pth.xz.*
        xz -6 -T0 -c "$ckpt" | split -b 15M -d - "$out/consolidated.00.pth.xz."
        rm -f "$ckpt"
        echo "the checkpoint of ${ckpt#"$work/_out/"}: $(ls "$out"/consolidated.00.pth.xz.* | wc -l) xz pieces in $out"
    fi
    tar czf "$out/meta.tar.gz" -C "$work/_out" .
    return "$rc"
}

if [ "${1:-}" = "--summarize" ]; then
    [ $# -eq 3 ] || die2 "usage: $0 --summarize WORK OUT"
    [ -f "$2/variants.txt" ] || die2 "$2/variants.txt: missing (not a WORK directory of this script)"
    finish_up "$(abspath "$2")" "$(abspath "$3")"; exit $?
fi
[ $# -eq 2 ] || die2 "usage: $0 CORPUS OUT   (or --summarize WORK OUT)"
CORPUS=$(abspath "$1") OUT=$(abspath "$2")
[ -f "$CORPUS/corpus.json" ] || die2 "$CORPUS/corpus.json: missing (tools/make_corpus.sh $CORPUS)"

PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
BUDGET=${BUDGET:-300}
HARD_EXTRA=${HARD_EXTRA:-140}
THREADS=${THREADS:-2}
if [ -n "${WORK:-}" ]; then WORK=$(abspath "$WORK"); else WORK=$(pwd)/build/train/variants; fi
VARIANTS=${VARIANTS:-$DEFAULT_VARIANTS}
COMMON=()
if [ "${SMOKE:-0}" = 1 ]; then
    DEVICE=${DEVICE_SMOKE:-cpu}
    BUDGET=${BUDGET_SMOKE:-60}
    COMMON=(--dim 64 --n-heads 2 --n-layers 2 --multiple-of 32 --seq-len 32 --batch-size 4 --steps 12 --eval-every 4
            --log-every 4 --warmup 4)
    VARIANTS=$(printf '%s\n' "$VARIANTS" | head -n 2)
fi
"$PY" -c 'import torch' 2>/dev/null || die2 "$PY: no torch (set PY=...)"

rm -rf "$WORK"
mkdir -p "$WORK" "$OUT" || die2 "cannot make $WORK and $OUT"
printf '%s\n' "$VARIANTS" | grep -v '^[[:space:]]*$' > "$WORK/variants.txt"
echo "train_variants: $(wc -l < "$WORK/variants.txt") variants at once on $DEVICE, --time-budget $BUDGET s each" \
     "(hard limit $((BUDGET + HARD_EXTRA)) s), $THREADS threads each; torch $("$PY" -c 'import torch; print(torch.__version__)')"
[ "$DEVICE" = cuda ] && { nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true; }
T0=$(date +%s)
pids=()
while read -r name args; do
    # shellcheck disable=SC2086  # ARGS are words on purpose
    ( OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS \
      timeout -k 10 $((BUDGET + HARD_EXTRA)) "$PY" weights_tools/train_tiny.py --corpus "$CORPUS" --out "$WORK/$name" \
        --device "$DEVICE" --time-budget "$BUDGET" "${COMMON[@]}" $args > "$WORK/$name.log" 2>&1
      echo $? > "$WORK/$name.rc" ) &
    pids+=($!)
    echo "  started $name: $args"
done < "$WORK/variants.txt"
wait "${pids[@]}"
echo "all done after $(( $(date +%s) - T0 )) s"
finish_up "$WORK" "$OUT"
