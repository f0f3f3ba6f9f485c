#!/usr/bin/env bash
# test_fuzz_corpus.sh: the fuzzers' regression corpus, replayed under AddressSanitizer + UndefinedBehaviorSanitizer
# (fast: every input once, no fuzzing; `make fuzz` is what fuzzes), and what the programs say about the reproducers
# of issue 12: exit 2, one line naming the file and what is wrong, no hang, no heap overflow.
#
# The corpus: tests/fuzz/make_corpus writes seeds (the project's own writers) and the reproducers into $TMP/corpus;
# tests/fuzz/regressions/<harness>/ holds every input a fuzzer ever found crashing or hanging (committed).
# expect: 1 s
source tests/lib.sh
B=${FUZZ_BUILD_DIR:-build/asan}  # the sanitizer build (make test builds it)
INSPECT=$B/bin/wt-inspect
C=$TMP/corpus
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0  # a program that exits 2 on bad input frees nothing first

check "make_corpus writes seeds and reproducers" $B/fuzz/make_corpus "$C" --tokenizer build/models/tokenizer.model
for src in tests/fuzz/fuzz_*.c; do
    h=$(basename "$src" .c); h=${h#fuzz_}
    dirs=("$C/$h"); [ -d "tests/fuzz/regressions/$h" ] && dirs+=("tests/fuzz/regressions/$h")
    n=$(find "${dirs[@]}" -type f | wc -l)
    # 5 s per input: each takes milliseconds; the exponential pickle printer took more than 5 s on an 85-byte input.
    check "replay $h: $n inputs under ASan+UBSan, none slower than 5 s" $B/fuzz/replay_$h --timeout 5 "${dirs[@]}"
    [ "$n" -ge 2 ] && ok || no "$h: only $n inputs in its corpus"
done

# ---- the programs on the reproducers ---------------------------------------------------------------------------------
# A stride-0 view claiming 2^62 elements of a one-element storage: wt-inspect hung checksumming it, and --dump
# allocated 1 byte and wrote past it.
check_fails 2 "repro_stride0_expand.pth: .*data.pkl: .*a view of 4611686018427387904 elements .*extent exceeds the storage" \
    "wt-inspect refuses a stride-0 view of 2^62 elements" timeout 20 $INSPECT "$C/pth/repro_stride0_expand.pth"
check_fails 2 "extent exceeds the storage" "wt-inspect --dump of it refuses before writing" \
    timeout 20 $INSPECT "$C/pth/repro_stride0_expand.pth" --dump expanded "$TMP/expanded.npy"
check "--dump wrote nothing" test ! -e "$TMP/expanded.npy" -a ! -e "$TMP/expanded.npy.partial"
check_fails 2 "repro_count_overflow.pth: .*the element count of size \[4294967296, 4294967296, 4294967296\] overflows 64 bits" \
    "an element count of 2^96" timeout 20 $INSPECT "$C/pth/repro_count_overflow.pth"
check_fails 2 "repro_overlap.pth: .*a view of 16 elements .* storage '0' of 8 elements" "overlapping strides claim more elements than stored" \
    timeout 20 $INSPECT "$C/pth/repro_overlap.pth"
# A tensor name holding a newline and an escape sequence: the message stays one line, the bytes shown escaped.
check_fails 2 "tensor 'evil\\\\nname\\\\x1b\[31m' appears twice" "a name with a newline is escaped in the message" \
    $INSPECT "$C/pth/repro_newline_name.pth"

# Config values out of range: refused before any conversion (1e300 printed "ffn_hidden 256"; dim 1e9 reached config_print).
meta_with() {  # DIR PARAMS: the tiny test model's weights are not needed: the config is read first
    mkdir -p "$1"; cp "$2" "$1/params.json"; cp "$C/pth/seed_state_dict.pth" "$1/consolidated.00.pth"
}
meta_with "$TMP/m_mult" "$C/params_json/repro_multiplier_1e300.json"
check_fails 2 "m_mult/params.json: ffn_dim_multiplier: expected a number from 0.01 to 100, found 1e\+300" "ffn_dim_multiplier 1e300" \
    $INSPECT "$TMP/m_mult"
meta_with "$TMP/m_dim" "$C/params_json/repro_dim_1e9.json"
check_fails 2 "m_dim/params.json: dim: expected a positive integer from 1 to 1048576, found 1000000000" "dim 1e9" $INSPECT "$TMP/m_dim"
mkdir -p "$TMP/hf_dim" && cp "$C/config_json/repro_hidden_1e9.json" "$TMP/hf_dim/config.json" && cp "$C/safetensors/seed.safetensors" "$TMP/hf_dim/model.safetensors"
check_fails 2 "hf_dim/config.json: hidden_size: expected a positive integer from 1 to 1048576" "hidden_size 1e9" $INSPECT "$TMP/hf_dim"
mkdir -p "$TMP/hf_eps" && cp "$C/config_json/repro_doubles_1e300.json" "$TMP/hf_eps/config.json" && cp "$C/safetensors/seed.safetensors" "$TMP/hf_eps/model.safetensors"
check_fails 2 "hf_eps/config.json: rms_norm_eps: expected a number from 1e-30 to 1, found 1e\+300" "rms_norm_eps 1e300" $INSPECT "$TMP/hf_eps"
check_fails 2 "repro_shape_overflow.safetensors: header: tensor \"x\": shape: the element count overflows 64 bits" \
    "a safetensors shape of 2^64 bytes" $INSPECT "$C/safetensors/repro_shape_overflow.safetensors"
# A tokenizer line with an escape sequence: shown escaped, one line.
check_fails 2 "repro_rank_control.model: line 1: rank: expected a decimal number, found \"0\\\\x1b\[2J\"" "a control character in a tokenizer line" \
    $B/bin/wt-tokenize --tokenizer "$C/tokenizer_load/repro_rank_control.model" x
finish
