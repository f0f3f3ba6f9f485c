#!/usr/bin/env bash
# tools/device_pack.sh: packs what a GPU machine needs from this build into .carry/build.tar.xz (git-ignored), for
# machines that can run but not build the project (no PCRE2/Jansson headers there). The binaries are nearly
# identical (the font and the CUDA runtime are linked into each), so xz (8 MB window) packs them to a few MB.
# On the GPU machine: tar xJf .carry/build.tar.xz && STAGES=... bash tests/gpu/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .carry
files=(build/bin build/steps build/models/tokenizer.model)
for t in build/tests/test_*; do [ -x "$t" ] && files+=("$t"); done
tar cf - "${files[@]}" | xz -6 -T1 > .carry/build.tar.xz.partial
mv .carry/build.tar.xz.partial .carry/build.tar.xz
ls -la .carry/build.tar.xz
