#!/usr/bin/env bash
# test_digest.sh: the demo walkthrough on the CPU writes the same .npy bytes and prints the same lines as the commit
# recorded in tests/golden/demo_cpu_digests.txt (its first line says which).
#
# tests/reference/trace_digest.py lists the sha256 of every .npy file of the trace and of each chapter's printed
# lines (the trace directory replaced by OUT/, chapter 16's wall-clock rows dropped). A change that must not alter
# any result (a refactor) leaves the list as it is; a change that alters a printed line on purpose regenerates the
# list in the same commit and says in its message which lines changed and why:
#     build/bin/walkthrough --model build/models/llama3-tiny-trained --device cpu --out DIR --quiet
#     (head -n 1 tests/golden/demo_cpu_digests.txt; python3 tests/reference/trace_digest.py DIR) > NEW && mv NEW ...
# (edit the header line to name the new commit.) .npy bytes must never change in such a commit.
# expect: 13 s
source "$(dirname "$0")/lib.sh"
MODEL=build/models/llama3-tiny-trained
GOLDEN=tests/golden/demo_cpu_digests.txt
for f in build/bin/walkthrough "$MODEL/params.json" "$GOLDEN"; do
    [ -e "$f" ] || { no "$f is missing: run make all models first"; finish; exit 1; }
done

# --device cpu: the CPU reference alone, as on a machine without a GPU (the stored list was made there)
check "walkthrough on the CPU" build/bin/walkthrough --model "$MODEL" --device cpu --out "$TMP/trace" --quiet
check "trace_digest.py" $PY tests/reference/trace_digest.py "$TMP/trace"
cp "$TMP/out" "$TMP/digests.txt"
grep -v '^#' "$GOLDEN" >"$TMP/golden.txt"
if diff "$TMP/golden.txt" "$TMP/digests.txt" >"$TMP/diff"; then ok
else no "digests differ from $GOLDEN ($(head -n 1 "$GOLDEN" | cut -c1-80)...):"; sed 's/^/    /' "$TMP/diff" | head -n 40 >&2; fi
check "the list covers every chapter and tensor of the golden list" test "$(wc -l <"$TMP/digests.txt")" -ge "$(wc -l <"$TMP/golden.txt")"

# the digest can fail: one changed byte of a tensor, one changed printed line
f=$(find "$TMP/trace" -name '*.npy' | sort | head -n 1)
printf '\x01' | dd of="$f" bs=1 seek=$(($(stat -c %s "$f") - 1)) conv=notrunc status=none
$PY tests/reference/trace_digest.py "$TMP/trace" >"$TMP/changed.txt"
check "one changed .npy byte changes the list" bash -c "! diff -q '$TMP/digests.txt' '$TMP/changed.txt' >/dev/null"
$PY - "$TMP/trace/trace.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
t["steps"][0]["lines"].append("one more line")
json.dump(t, open(sys.argv[1], "w"))
PY
$PY tests/reference/trace_digest.py "$TMP/trace" >"$TMP/changed2.txt"
check "one changed printed line changes the list" bash -c "! diff -q '$TMP/changed.txt' '$TMP/changed2.txt' >/dev/null"
finish
