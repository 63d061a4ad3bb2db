# tapegrad - make builds the libraries and tools, make test runs the tests.
#
#   make              build/libtapegrad.a, build/libtapegrad.so (float) and
#                     build/libtapegrad_f64.a, .so (double, for gradient checks)
#   make install      PREFIX=/usr/local, DESTDIR=: libraries, headers, .pc, charlm
#   make test         install missing dependencies, build, run every suite
#   make asan         the same suites under AddressSanitizer + UBSan
#   make noomp        the same suites built without OpenMP
#   make tsan         models trained in parallel threads, under ThreadSanitizer
#   make OPENMP=0     build without OpenMP (kernel levels: ops/kernels.h)
#   make MPI=1        build with mpicc: data-parallel training (nn/dist.h)
#
# Build outputs go to $(BUILD) (build/ by default), never into the sources.

# `make` alone builds (all) and runs nothing. Without this line the first
# rule in the file would be the default, whatever it is (it was once
# run-tests', from the kernel levels' section); tests/make_default.sh
# checks it.
.DEFAULT_GOAL := all

BUILD    ?= build
MPI      ?= 0
OPENMP   ?= 1
SANITIZE ?= 0
OPT      ?= -O3

# ---- kernel levels: flags ------------------------------------------------
# The library is compiled for the target's baseline, so one build runs on
# any CPU of the family (x86-64: SSE2). The kernel files (KERNEL_SRC) are
# compiled again per x86-64 level, and ops/kernels/kernels.c picks the level the
# CPU runs when the library starts (TG_KERNELS=avx512|avx2|generic forces
# one). -march=native is gone: a built binary runs anywhere at the speed
# of its CPU. (PORTABLE=1, which removed it, is now what every build is.)
# -fno-trapping-math (kernel files only): without it GCC will not turn the
# selects of ops/kernels/vmath.h's tanh and sigmoid into vector blends unless
# AVX-512's masks can hide a lane's division, and those loops stay scalar
# at avx2 and generic (3-4x slower). It changes no value: only whether a
# floating-point exception flag may be raised by a lane that is dropped.
ARCH_FLAGS =
KFLAGS_generic = -fno-trapping-math
KFLAGS_avx512  = -march=x86-64-v4 -mprefer-vector-width=512 $(KFLAGS_generic)
KFLAGS_avx2    = -march=x86-64-v3 $(KFLAGS_generic)
# ---- end of kernel levels: flags -----------------------------------------
OMP_FLAGS  = $(if $(filter 1,$(OPENMP)),-fopenmp,-Wno-unknown-pragmas)
# float-cast-overflow (a NaN or out-of-range float converted to an integer)
# is not part of GCC's -fsanitize=undefined: asked for by name.
SAN_ON     = -fsanitize=address,undefined,float-cast-overflow \
             -fno-sanitize-recover=undefined,float-cast-overflow \
             -fno-omit-frame-pointer
# SANITIZE=thread: ThreadSanitizer instead (make tsan, below)
TSAN_ON    = -fsanitize=thread -fno-omit-frame-pointer
SAN_FLAGS  = $(if $(filter 1,$(SANITIZE)),$(SAN_ON)) \
             $(if $(filter thread,$(SANITIZE)),$(TSAN_ON))
WARNINGS   = -Wall -Wextra -Wshadow -Wdouble-promotion -Wmissing-prototypes \
             -Wstrict-prototypes -Wformat=2 -Wvla
# pkg-config is asked lazily (=), after scripts/deps.sh has installed it
PKG_CFLAGS = $(shell pkg-config --cflags stb libcjson 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs libcjson 2>/dev/null)
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   = $(shell pkg-config --libs check 2>/dev/null)

# make MPI=1: data-parallel training over MPI (nn/dist.h), built with mpicc
ifeq ($(MPI),1)
CC := mpicc
MPI_FLAGS = -DTG_HAVE_MPI
endif

# -pthread: each thread has its own tape and arena (README, "Threads"),
# freed when it ends (tensor/arena.c)
CFLAGS  = -std=c11 -D_POSIX_C_SOURCE=200809L $(OPT) -g -fno-math-errno $(ARCH_FLAGS) \
          $(OMP_FLAGS) $(SAN_FLAGS) $(WARNINGS) -fPIC -pthread -I. $(PKG_CFLAGS) \
          -MMD -MP $(MPI_FLAGS) $(EXTRA_CFLAGS)
LDFLAGS = $(OMP_FLAGS) $(SAN_FLAGS) -pthread $(EXTRA_LDFLAGS)
LDLIBS  = $(PKG_LIBS) -lm

LIB_SRC  := $(wildcard tensor/*.c autograd/*.c ops/*.c ops/*/*.c nn/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/f32/%.o)
LIB64_OBJ := $(LIB_SRC:%.c=$(BUILD)/f64/%.o)
HEADERS  := $(wildcard tensor/*.h autograd/*.h ops/*.h ops/*/*.h nn/*.h)
# The headers internal to the library (each says so at its top); the others
# are public: installed, and checked as C++ too.
INTERNAL_HEADERS := tensor/ds.h tensor/parallel.h autograd/anomaly.h \
                    autograd/inspect_internal.h \
                    ops/internal.h ops/fuse/fuse_internal.h \
                    ops/fuse/fuse_stats.h ops/kernels/gemm.h \
                    ops/kernels/kernel_table.h ops/kernels/vmath.h \
                    ops/kernels/vm_codes.h nn/optim_internal.h \
                    nn/dist_internal.h
PUBLIC_HEADERS := $(filter-out $(INTERNAL_HEADERS),$(HEADERS))

# ---- kernel levels: objects ----------------------------------------------
# ops/kernels/gemm.c and ops/kernels/vm.c (ops/kernels/kernel_table.h): their
# plain objects are the generic level; on x86-64 also gemm.avx512.o,
# gemm.avx2.o, ... with each level's flags and suffix, and ops/kernels/kernels.c
# is told that they are there. Another CPU family (aarch64) builds the generic
# level only, and so does `make KERNEL_LEVELS=` here.
KERNEL_SRC    := ops/kernels/gemm.c ops/kernels/vm.c
KERNEL_LEVELS := $(if $(findstring x86_64,$(shell $(CC) -dumpmachine)),avx512 avx2)
$(KERNEL_SRC:%.c=$(BUILD)/f32/%.o) $(KERNEL_SRC:%.c=$(BUILD)/f64/%.o): \
    CFLAGS += $(KFLAGS_generic)
ifneq ($(KERNEL_LEVELS),)
LIB_OBJ   += $(foreach l,$(KERNEL_LEVELS),$(KERNEL_SRC:%.c=$(BUILD)/f32/%.$(l).o))
LIB64_OBJ += $(foreach l,$(KERNEL_LEVELS),$(KERNEL_SRC:%.c=$(BUILD)/f64/%.$(l).o))
$(BUILD)/f32/ops/kernels/kernels.o $(BUILD)/f64/ops/kernels/kernels.o: \
    CFLAGS += -DTG_KERNELS_X86
endif
$(BUILD)/f32/%.avx512.o: %.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(KFLAGS_avx512) -DTG_KLEVEL=avx512 -c $< -o $@
$(BUILD)/f64/%.avx512.o: %.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(KFLAGS_avx512) -DTG_KLEVEL=avx512 -DTG_DOUBLE -c $< -o $@
$(BUILD)/f32/%.avx2.o: %.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(KFLAGS_avx2) -DTG_KLEVEL=avx2 -c $< -o $@
$(BUILD)/f64/%.avx2.o: %.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(KFLAGS_avx2) -DTG_KLEVEL=avx2 -DTG_DOUBLE -c $< -o $@

# make run-tests runs the test binaries, the first 1000 inputs of
# tests/fuse_fuzz, torch_parity and the test scripts of LEVEL_SCRIPTS once
# more at each level this CPU supports besides the one chosen by default
# (TG_KERNELS set; tests/kernel_levels lists the levels and checks the
# forced one ran). LEVEL_SCRIPTS: those whose results depend on the
# kernels' numbers (training, sampling, evaluation, printed figures, N
# ranks against one process), each with its arguments; about 30 s a level.
run-tests: $(BUILD)/tests/kernel_levels
$(BUILD)/tests/kernel_levels: tests/kernel_levels.c $(BUILD)/libtapegrad.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(BUILD)/libtapegrad.a $(LDLIBS)
DIST_MAKE = $(MAKE) --no-print-directory BUILD=$(BUILD)/mpi MPI=1 \
	SANITIZE=$(SANITIZE) OPT=$(OPT) OPENMP=$(OPENMP)
LEVEL_SCRIPTS = 'charlm_cli $(BUILD)/charlm' 'torch_interop $(BUILD)/charlm' \
	'custom_cells $(BUILD)/custom_cells' 'walkthrough_docs $(BUILD)/walkthrough' \
	'gradflow $(BUILD)/gradflow' 'memory_tasks $(BUILD)/memory_tasks' \
	'optimise_vs_gates $(BUILD)/optimise_vs_gates' 'hf_vs_sgd $(BUILD)/hf_vs_sgd' \
	'dist $(BUILD) "$(DIST_MAKE)"'
KERNEL_TESTS = \
	kl=$(BUILD)/tests/kernel_levels; dflt=$$($$kl --active); \
	for lv in $$($$kl); do \
	    [ $$lv = "$$dflt" ] && continue; \
	    echo "== kernel level $$lv: every test binary, torch_parity, the scripts"; \
	    [ "$$(TG_KERNELS=$$lv $$kl --active)" = $$lv ] || \
	        { echo "TG_KERNELS=$$lv did not select $$lv"; fail=1; }; \
	    for t in $(TEST_BIN) $(GRAD_BIN); do \
	        TG_KERNELS=$$lv $$t > $(BUILD)/kernels.log 2>&1 || \
	            { cat $(BUILD)/kernels.log; echo "$$t FAILED at $$lv"; fail=1; }; \
	    done; \
	    TG_KERNELS=$$lv $(BUILD)/tests/fuse_fuzz --inputs 1000 > $(BUILD)/kernels.log 2>&1 || \
	        { cat $(BUILD)/kernels.log; echo "fuse_fuzz FAILED at $$lv"; fail=1; }; \
	    TG_KERNELS=$$lv $(BUILD)/torch_parity tests/fixtures/*.safetensors \
	        > $(BUILD)/parity_$$lv.log && tail -n 1 $(BUILD)/parity_$$lv.log \
	        || { cat $(BUILD)/parity_$$lv.log; fail=1; }; \
	    for s in $(LEVEL_SCRIPTS); do \
	        eval "set -- $$s"; n=$$1; shift; echo "== tests/$$n.sh at $$lv"; \
	        TG_KERNELS=$$lv sh tests/$$n.sh "$$@" || \
	            { echo "tests/$$n.sh FAILED at $$lv"; fail=1; }; \
	    done; \
	done;
# ---- end of kernel levels: objects ---------------------------------------

# tests/test_*.c link the float library; tests/grad_*.c the double one
TEST_SRC   := $(wildcard tests/test_*.c)
GRAD_SRC   := $(wildcard tests/grad_*.c)
TEST_BIN   := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
GRAD_BIN   := $(GRAD_SRC:tests/%.c=$(BUILD)/tests/%)
EXAMPLE_SRC := $(wildcard examples/*.c)
EXAMPLE_BIN := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/%)

.PHONY: all test run-tests asan noomp tsan deps check-headers clean
all: $(BUILD)/libtapegrad.a $(BUILD)/libtapegrad.so $(BUILD)/libtapegrad_f64.a \
     $(EXAMPLE_BIN)

# objects depend on the Makefile too: a change of flags rebuilds them
$(BUILD)/f32/%.o: %.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/f64/%.o: %.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DTG_DOUBLE -c $< -o $@

# The explorer's page (autograd/explore.h) is autograd/explorer.html, kept
# as HTML to read and edit; it becomes the C string explorer_page here
# (backslashes, quotes and question marks escaped: no trigraph can form).
%/gen/explorer_page.h: autograd/explorer.html
	@mkdir -p $(@D)
	{ echo '/* made from autograd/explorer.html by the Makefile */'; \
	  echo 'static const char explorer_page[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' \
	      -e 's/^/"/' -e 's/$$/\\n"/' $<; echo ';'; } > $@
$(BUILD)/f32/autograd/explore.o $(BUILD)/f64/autograd/explore.o: \
    $(BUILD)/gen/explorer_page.h
$(BUILD)/f32/autograd/explore.o $(BUILD)/f64/autograd/explore.o: \
    CFLAGS += -I$(BUILD)/gen

# stb_ds's hash shifts bytes into the sign bit of an int (stb_ds.h, the
# 8-byte hash), which UBSan reports at random, depending on addresses; the
# file that holds stb_ds's implementation is spared that one check.
$(BUILD)/f32/tensor/error.o $(BUILD)/f64/tensor/error.o: \
    CFLAGS += $(if $(filter 1,$(SANITIZE)),-fno-sanitize=shift-base)

$(BUILD)/libtapegrad.a: $(LIB_OBJ)
	$(AR) rcs $@ $^
$(BUILD)/libtapegrad_f64.a: $(LIB64_OBJ)
	$(AR) rcs $@ $^
$(BUILD)/libtapegrad.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) $^ -o $@ $(LDLIBS)

# examples/common/: what several examples share (tasks, flag values)
EXAMPLE_COMMON := $(wildcard examples/common/*.c)
$(BUILD)/%: examples/%.c $(EXAMPLE_COMMON) $(wildcard examples/common/*.h) \
            $(BUILD)/libtapegrad.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< $(EXAMPLE_COMMON) -o $@ $(LDFLAGS) \
	    $(BUILD)/libtapegrad.a $(LDLIBS)

# The charlm tool: several files in examples/charlm/, one program.
CHARLM_SRC := $(wildcard examples/charlm/*.c)
all: $(BUILD)/charlm
CHARLM_COMMON := examples/common/cells.c examples/common/cli.c
$(BUILD)/charlm: $(CHARLM_SRC) examples/charlm/charlm.h $(CHARLM_COMMON) \
                 examples/common/cells.h examples/common/cli.h \
                 $(BUILD)/libtapegrad.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CHARLM_SRC) $(CHARLM_COMMON) -o $@ $(LDFLAGS) \
	    $(BUILD)/libtapegrad.a $(LDLIBS)

# The study "optimisation or gates?": several files, one program.
OVG_SRC := $(wildcard examples/optimise_vs_gates/*.c)
all: $(BUILD)/optimise_vs_gates
$(BUILD)/optimise_vs_gates: $(OVG_SRC) \
                 $(wildcard examples/optimise_vs_gates/*.h) \
                 $(EXAMPLE_COMMON) $(wildcard examples/common/*.h) \
                 $(BUILD)/libtapegrad.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(OVG_SRC) $(EXAMPLE_COMMON) -o $@ $(LDFLAGS) \
	    $(BUILD)/libtapegrad.a $(LDLIBS)

# make demo: an LSTM (one layer of 256, Adam 5e-3) trained for two minutes
# on two threads on the fortunes (Debian package `fortunes`), saved, and a
# 500-character sample at temperature 0.7. The size and rate were chosen by
# measurement among seven two-minute runs (README, "Two commands"); the
# JSON lines go to build/demo.jsonl.
# make bench: the whole speed table (all sizes, cells and modes, 1 and 2
# threads); flags as scripts/bench_torch_rnn.py (the same in PyTorch), e.g.
#   build/bench --cell lstm --mode train --E 256 --H 256 --L 2 --T 64 --B 32
# scripts/bench_compare.py runs PyTorch's side in the same session.
.PHONY: bench
bench:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory $(BUILD)/bench
	$(BUILD)/bench

.PHONY: demo
demo:
	@sh scripts/deps.sh fortunes
	@$(MAKE) --no-print-directory $(BUILD)/charlm
	@rm -f $(BUILD)/demo.jsonl
	$(BUILD)/charlm train --minutes 2 --threads 2 --eval-every 1000 \
	    --layers 1 --hidden 256 --lr 5e-3 --optim adamw --dropout 0.1 \
	    --save $(BUILD)/demo.safetensors --overwrite --log $(BUILD)/demo.jsonl
	@echo "== 500 characters sampled from $(BUILD)/demo.safetensors:"
	@$(BUILD)/charlm sample --load $(BUILD)/demo.safetensors --length 500 \
	    --temperature 0.7

# make custom-cells: five cells defined in examples/custom_cells.c only,
# trained side by side on the adding problem and as character models.
.PHONY: custom-cells
custom-cells: $(BUILD)/custom_cells
	$(BUILD)/custom_cells

# make walkthrough: the program behind docs/walkthrough.md, every section,
# and its LSTM graph drawn top to bottom when Graphviz's dot is installed.
.PHONY: walkthrough
walkthrough: $(BUILD)/walkthrough
	$(BUILD)/walkthrough all --dot $(BUILD)/walkthrough_lstm.dot
	@if command -v dot >/dev/null 2>&1; then \
	    dot -Grankdir=TB -Tsvg $(BUILD)/walkthrough_lstm.dot -o $(BUILD)/walkthrough_lstm.svg \
	    && echo "graph drawn in $(BUILD)/walkthrough_lstm.svg"; fi

# make explore: the explorer's pages (autograd/explore.h) in docs/explorer/:
# the walkthrough's expression, two LSTM steps compiled and as written, a
# plain RNN against an LSTM over 50 steps; and, where Chromium is
# installed, the screenshot the README shows. Pages of a large tape (a
# 2-layer LSTM of 128 over 64 steps) go to $(BUILD)/explorer/, with their
# sizes and, with Chromium, their time to first paint.
.PHONY: explore
explore: $(BUILD)/explore
	@mkdir -p docs/explorer $(BUILD)/explorer
	$(BUILD)/explore docs/explorer
	$(BUILD)/explore --large $(BUILD)/explorer/large_compiled.html
	$(BUILD)/explore --large $(BUILD)/explorer/large_written.html --written
	@if command -v chromium >/dev/null 2>&1 && \
	    /usr/bin/python3 -c 'import websocket' 2>/dev/null; then \
	    /usr/bin/python3 tests/explorer_browser.py shot \
	        docs/explorer/rnn_vs_lstm.html 2005 docs/explorer/rnn_vs_lstm.png && \
	    echo "screenshot in docs/explorer/rnn_vs_lstm.png" && \
	    for p in large_compiled large_written; do \
	        /usr/bin/python3 tests/explorer_browser.py measure \
	            $(BUILD)/explorer/$$p.html || exit 1; done; \
	else ls -l $(BUILD)/explorer/; fi

# make gradflow: ||dL/dh_t|| against the distance from the loss for RNN,
# LSTM and GRU, at init and trained, and an exploding RNN (docs/gradflow.md);
# the .dat files go to $(BUILD)/gradflow_data/, drawn by gnuplot if installed.
.PHONY: gradflow
gradflow: $(BUILD)/gradflow
	$(BUILD)/gradflow --out $(BUILD)/gradflow_data
	@if command -v gnuplot >/dev/null 2>&1; then \
	    gnuplot -e "dir='$(BUILD)/gradflow_data'" examples/gradflow.gp \
	    && echo "picture drawn in $(BUILD)/gradflow_data/gradflow.svg"; fi

# make optimise-vs-gates: do plain RNNs fail long-range tasks for want of
# gates or of optimisation? Eleven rows (Adam rows, the published IRNN and
# Hessian-free regimes, one-change controls) on the adding problem (T = 10,
# 50, 100, 200) and the copy task (T = 10, 20, 50, 100), 5 seeds, budgets in
# sequence-gradients, every row tuned by one rule first; curvature (Hessian
# and Adam-preconditioned) along training. JOBS shards in parallel, one
# thread each; a killed study resumes when rerun (docs/optimise_vs_gates.md,
# scripts/optimise_vs_gates.sh). Estimated from --calibrate's seconds per
# sequence-gradient: 77 minutes on 2 cores if no run solved, about 55 with
# the gated cells solving the adding problem early; it took 58, and the
# copy task at T = 100 (added later, resumed beside other jobs) 21 more.
.PHONY: optimise-vs-gates
JOBS ?= 2
optimise-vs-gates: $(BUILD)/optimise_vs_gates
	JOBS=$(JOBS) sh scripts/optimise_vs_gates.sh $(BUILD)/optimise_vs_gates

# make hf-vs-sgd: Hessian-free against SGD and Adam on charlm's model at
# an equal cost in gradient evaluations (docs/hf_vs_sgd.md; a few minutes).
.PHONY: hf-vs-sgd
hf-vs-sgd: $(BUILD)/hf_vs_sgd
	$(BUILD)/hf_vs_sgd --doc docs/hf_vs_sgd.md

# make memory-tasks: the adding problem and the copy task for RNN, LSTM and
# GRU at T = 10, 50, 100, 200: steps to solve per cell and length
# (docs/memory_tasks.md).
.PHONY: memory-tasks
memory-tasks: $(BUILD)/memory_tasks
	$(BUILD)/memory_tasks

$(BUILD)/tests/test_%: tests/test_%.c tests/harness.h $(BUILD)/libtapegrad.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) $< -o $@ $(LDFLAGS) \
	    $(BUILD)/libtapegrad.a $(CHECK_LIBS) $(LDLIBS)
$(BUILD)/tests/grad_%: tests/grad_%.c tests/harness.h tests/rnn_check.h $(BUILD)/libtapegrad_f64.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DTG_DOUBLE $(CHECK_CFLAGS) $< -o $@ $(LDFLAGS) \
	    $(BUILD)/libtapegrad_f64.a $(CHECK_LIBS) $(LDLIBS)

# The differential fuzzer of compiled steps (fuzz/fuse_diff*.c, also a
# libFuzzer target: make fuzz) on fixed seeds, against the double library:
# FUSE_FUZZ_INPUTS inputs (fewer under the sanitizers), then the coverage
# it must reach. A library whose tg_cell_type has user_size (the fix of
# bug b, fuzz/fuse_diff.h) lets its captured-state cells declare it.
FUSE_DIFF_SRC    := fuzz/fuse_diff.c fuzz/fuse_diff_gen.c fuzz/fuse_diff_shapes.c \
                    fuzz/fuse_diff_step.c fuzz/fuse_diff_cov.c
FUSE_DIFF_DEPS   := $(FUSE_DIFF_SRC) fuzz/fuse_diff.h fuzz/fuse_diff_ops.h \
                    fuzz/fuse_diff_gen.h
FUSE_DIFF_FLAGS   = -DTG_DOUBLE \
    $(if $(shell grep -s 'size_t user_size' nn/cell.h),-DFUSE_DIFF_USER_SIZE)
FUSE_FUZZ_INPUTS ?= $(if $(filter 1,$(SANITIZE)),600,4000)
$(BUILD)/tests/fuse_fuzz: tests/fuse_fuzz.c $(FUSE_DIFF_DEPS) $(BUILD)/libtapegrad_f64.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(FUSE_DIFF_FLAGS) $< $(FUSE_DIFF_SRC) -o $@ $(LDFLAGS) \
	    $(BUILD)/libtapegrad_f64.a $(LDLIBS)

# The library's fuzz targets with a plain main() (fuzz/replay.c): run-tests
# replays fuzz/regressions/<target>/ through them, no clang needed.
REPLAY_TARGETS := st_parse params_load
REPLAY_BIN := $(REPLAY_TARGETS:%=$(BUILD)/tests/replay_%)
$(BUILD)/tests/replay_%: fuzz/%.c fuzz/replay.c fuzz/fuzz.h $(BUILD)/libtapegrad.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< fuzz/replay.c -o $@ $(LDFLAGS) $(BUILD)/libtapegrad.a $(LDLIBS)

# Every header compiles on its own, and every public one (those installed,
# PUBLIC_HEADERS below) also as C++11, in float and in double.
check-headers:
	@mkdir -p $(BUILD)/headers
	@for h in $(HEADERS); do \
	    printf '#include "%s"\n' "$$h" > $(BUILD)/headers/one.c; \
	    $(CC) $(CFLAGS) -fsyntax-only $(BUILD)/headers/one.c || \
	        { echo "header $$h does not compile on its own"; exit 1; }; \
	done; echo "headers: all $(words $(HEADERS)) compile on their own"
	@for h in $(PUBLIC_HEADERS); do \
	    printf '#include "%s"\n' "$$h" > $(BUILD)/headers/one.cpp; \
	    for real in "" -DTG_DOUBLE; do \
	        $(CXX) -std=c++11 -Wall -Wextra -pedantic -Werror $$real -I. \
	            -fsyntax-only $(BUILD)/headers/one.cpp || \
	            { echo "header $$h does not compile as C++11 ($$real)"; exit 1; }; \
	    done; \
	done; echo "headers: the $(words $(PUBLIC_HEADERS)) public ones compile as C++11"
	@vars=$$(grep -ho 'getenv("[A-Z_]*")' $(LIB_SRC) | sed 's/getenv("\(.*\)")/\1/' | sort -u); \
	for v in $$vars; do grep -q "$$v" nn/state.h || \
	    { echo "nn/state.h does not list $$v, which the library reads"; exit 1; }; \
	done; echo "headers: nn/state.h lists the" $$(echo $$vars | wc -w) "variables the library reads"

deps:
	@sh scripts/deps.sh

# make test: dependencies first (a separate make, so that pkg-config
# answers after they are installed), then build and run everything.
test:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory run-tests

run-tests: all check-headers $(TEST_BIN) $(GRAD_BIN) $(REPLAY_BIN) \
           $(BUILD)/tests/fuse_fuzz
	@fail=0; for t in $(TEST_BIN) $(GRAD_BIN); do \
	    echo "== $$t"; $$t || fail=1; \
	done; \
	echo "== $(BUILD)/tests/fuse_fuzz --inputs $(FUSE_FUZZ_INPUTS)"; \
	$(BUILD)/tests/fuse_fuzz --inputs $(FUSE_FUZZ_INPUTS) > $(BUILD)/fuse_fuzz.log 2>&1 \
	    && head -n 1 $(BUILD)/fuse_fuzz.log \
	    || { cat $(BUILD)/fuse_fuzz.log; fail=1; }; \
	for t in $(REPLAY_TARGETS); do \
	    [ -d fuzz/regressions/$$t ] || continue; \
	    echo "== fuzz/regressions/$$t"; \
	    $(BUILD)/tests/replay_$$t fuzz/regressions/$$t/* || fail=1; \
	done; \
	echo "== tests/make_default.sh"; sh tests/make_default.sh "$(MAKE)" || fail=1; \
	for s in $(LEVEL_SCRIPTS); do \
	    eval "set -- $$s"; n=$$1; shift; echo "== tests/$$n.sh"; \
	    sh tests/$$n.sh "$$@" || fail=1; \
	done; \
	echo "== tests/explorer.sh"; sh tests/explorer.sh $(BUILD)/explore || fail=1; \
	echo "== tests/readme_snippets.sh"; sh tests/readme_snippets.sh $(BUILD) || fail=1; \
	echo "== tests/install.sh"; sh tests/install.sh $(BUILD) "$(MAKE) --no-print-directory \
	    BUILD=$(BUILD) SANITIZE=$(SANITIZE) OPT=$(OPT) OPENMP=$(OPENMP)" || fail=1; \
	echo "== tests/charlm_faults.sh"; sh tests/charlm_faults.sh $(BUILD)/charlm || fail=1; \
	echo "== tests/mpi_faults.sh"; sh tests/mpi_faults.sh $(BUILD) "$(DIST_MAKE)" || fail=1; \
	echo "== torch_parity on tests/fixtures"; \
	$(BUILD)/torch_parity tests/fixtures/*.safetensors > $(BUILD)/parity.log \
	    && tail -n 1 $(BUILD)/parity.log \
	    || { cat $(BUILD)/parity.log; fail=1; }; \
	if $(BUILD)/torch_parity Makefile > /dev/null; then \
	    echo "torch_parity accepted a file that is not safetensors"; fail=1; fi; \
	$(KERNEL_TESTS) \
	if [ $$fail = 0 ]; then echo "ALL TESTS PASSED"; \
	else echo "SOME TESTS FAILED"; exit 1; fi

asan:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory BUILD=build/asan SANITIZE=1 OPT=-O1 run-tests

noomp:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory BUILD=build/noomp OPENMP=0 run-tests

# make tsan: tests/test_models_in_threads.c (independent models trained in
# parallel threads, each checked bit for bit against itself alone) and the
# library built with -fsanitize=thread, run with every report fatal. Built
# without OpenMP (OPENMP=0): GCC's libgomp is not instrumented for
# ThreadSanitizer, and its barriers would be reported as races. (A build
# with OpenMP run under OMP_NUM_THREADS=1 works too.) Not part of make
# test: a third build of the whole library.
tsan:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory BUILD=build/tsan SANITIZE=thread OPENMP=0 \
	    OPT=-O1 build/tsan/tests/test_models_in_threads
	TSAN_OPTIONS="halt_on_error=1 exitcode=66 $(TSAN_OPTIONS)" \
	    build/tsan/tests/test_models_in_threads

# ---- fuzzing (fuzz/, fuzz/README.md) -------------------------------------
# make fuzz [FUZZ_SECONDS=60]: five libFuzzer targets built with clang under
# ASan + UBSan into $(FUZZ_BUILD), each run FUZZ_SECONDS seconds on seeds
# made from tests/fixtures (and checkpoints charlm writes), after replaying
# the inputs in fuzz/regressions/<target>/ (every past finding). Fails on a
# crash, hang, leak or sanitizer report; the input is saved in
# $(FUZZ_BUILD)/crashes/. Clang and libFuzzer come from scripts/fuzz_deps.sh.
FUZZ_SECONDS ?= 60
FUZZ_BUILD   ?= build/fuzz
FUZZ_CC      ?= clang
FUZZ_TARGETS := st_parse params_load ckpt corpus fuse_diff
FUZZ_SAN     = -fsanitize=address,undefined,float-cast-overflow \
               -fno-sanitize-recover=undefined,float-cast-overflow
FUZZ_CFLAGS  = -std=c11 -D_POSIX_C_SOURCE=200809L -O1 -g -fno-omit-frame-pointer \
               -fno-math-errno -Wno-unknown-pragmas $(FUZZ_SAN) \
               -fsanitize=fuzzer-no-link -I. $(PKG_CFLAGS)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_CL_OBJ  := $(CHARLM_SRC:%.c=$(FUZZ_BUILD)/obj/%.o) \
                $(FUZZ_BUILD)/obj/examples/common/cells.o \
                $(FUZZ_BUILD)/obj/examples/common/cli.o

$(FUZZ_BUILD)/obj/%.o: %.c Makefile
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@
# stb_ds's hash (see above); charlm's main() renamed (libFuzzer has one),
# and its cl_strdup (fuzz/charlm_glue.h says why)
$(FUZZ_BUILD)/obj/tensor/error.o: FUZZ_CFLAGS += -fno-sanitize=shift-base
$(FUZZ_BUILD)/obj/autograd/explore.o $(FUZZ_BUILD)/obj64/autograd/explore.o: \
    $(FUZZ_BUILD)/gen/explorer_page.h
$(FUZZ_BUILD)/obj/autograd/explore.o $(FUZZ_BUILD)/obj64/autograd/explore.o: \
    FUZZ_CFLAGS += -I$(FUZZ_BUILD)/gen
$(FUZZ_BUILD)/obj/examples/charlm/main.o: \
    FUZZ_CFLAGS += -Dmain=cl_tool_main -Dcl_strdup=cl_tool_strdup

$(FUZZ_BUILD)/fuzz_st_parse $(FUZZ_BUILD)/fuzz_params_load: \
    $(FUZZ_BUILD)/fuzz_%: fuzz/%.c fuzz/fuzz.h $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(WARNINGS) -fsanitize=fuzzer $< $(FUZZ_LIB_OBJ) -o $@ $(LDLIBS)
$(FUZZ_BUILD)/fuzz_ckpt $(FUZZ_BUILD)/fuzz_corpus: \
    $(FUZZ_BUILD)/fuzz_%: fuzz/%.c fuzz/fuzz.h fuzz/charlm_glue.h $(FUZZ_LIB_OBJ) $(FUZZ_CL_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(WARNINGS) -fsanitize=fuzzer $< $(FUZZ_CL_OBJ) \
	    $(FUZZ_LIB_OBJ) -o $@ $(LDLIBS)

# fuse_diff compares compiled steps with the unfused ones to 1e-10, in
# double: the library once more with -DTG_DOUBLE (obj64/). The same check
# runs on fixed seeds in make test (tests/fuse_fuzz, above).
FUZZ_LIB64_OBJ  := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj64/%.o)
# (no comparison tracing in the library: the input's bytes are compared in
# fuzz/ only, and tracing the numeric loops' comparisons took 60% of the
# time; edges are still counted. -O2, not -O1: the same checks, but at -O1
# clang keeps the matrix kernel's accumulators in memory, every one of
# their loads and stores checked - a fifth of the time)
FUSE_DIFF_OPT ?= -O2
$(FUZZ_BUILD)/obj64/%.o: %.c Makefile
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUSE_DIFF_OPT) -fno-sanitize-coverage=trace-cmp \
	    -DTG_DOUBLE -MMD -MP -c $< -o $@
$(FUZZ_BUILD)/obj64/tensor/error.o: FUZZ_CFLAGS += -fno-sanitize=shift-base
# the kernel levels too, as in the library: the products then run in the
# CPU's vector kernel - under ASan the generic one, every scalar load
# checked, took 40% of the time - and the fuzzer checks that level's code
ifneq ($(KERNEL_LEVELS),)
FUZZ_LIB64_OBJ += $(foreach l,$(KERNEL_LEVELS),$(KERNEL_SRC:%.c=$(FUZZ_BUILD)/obj64/%.$(l).o))
$(FUZZ_BUILD)/obj64/ops/kernels/kernels.o: FUZZ_CFLAGS += -DTG_KERNELS_X86
$(KERNEL_SRC:%.c=$(FUZZ_BUILD)/obj64/%.o): FUZZ_CFLAGS += $(KFLAGS_generic)
$(FUZZ_BUILD)/obj64/%.avx512.o: %.c Makefile
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUSE_DIFF_OPT) -fno-sanitize-coverage=trace-cmp \
	    $(KFLAGS_avx512) -DTG_KLEVEL=avx512 -DTG_DOUBLE -MMD -MP -c $< -o $@
$(FUZZ_BUILD)/obj64/%.avx2.o: %.c Makefile
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUSE_DIFF_OPT) -fno-sanitize-coverage=trace-cmp \
	    $(KFLAGS_avx2) -DTG_KLEVEL=avx2 -DTG_DOUBLE -MMD -MP -c $< -o $@
endif
$(FUZZ_BUILD)/fuzz_fuse_diff: $(FUSE_DIFF_DEPS) $(FUZZ_LIB64_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUSE_DIFF_OPT) $(FUSE_DIFF_FLAGS) $(WARNINGS) \
	    -fsanitize=fuzzer $(FUSE_DIFF_SRC) $(FUZZ_LIB64_OBJ) -o $@ $(LDLIBS)

# Seeds: the fixtures; tiny checkpoints of each cell written by charlm
# (built as usual, in $(BUILD)); text for the corpus reader; for fuse_diff
# the first inputs of its seeded runner (random bytes: every byte is a
# choice, so there is no dictionary either).
$(FUZZ_BUILD)/seeds.stamp: $(wildcard tests/fixtures/*.safetensors) \
    $(wildcard fuzz/seeds/*/*) $(BUILD)/charlm $(BUILD)/tests/fuse_fuzz
	@rm -rf $(FUZZ_BUILD)/seeds && mkdir -p $(FUZZ_BUILD)/seeds/st_parse \
	    $(FUZZ_BUILD)/seeds/params_load $(FUZZ_BUILD)/seeds/ckpt \
	    $(FUZZ_BUILD)/seeds/corpus $(FUZZ_BUILD)/seeds/fuse_diff
	$(BUILD)/tests/fuse_fuzz --write-seeds $(FUZZ_BUILD)/seeds/fuse_diff --inputs 300
	cp tests/fixtures/*.safetensors $(FUZZ_BUILD)/seeds/st_parse/
	cp tests/fixtures/*charlm_*.safetensors $(FUZZ_BUILD)/seeds/params_load/
	cp fuzz/seeds/corpus/* README.md $(FUZZ_BUILD)/seeds/corpus/
	@for cl in lstm:1 gru:2 rnn_tanh:1; do \
	    c=$${cl%:*}; l=$${cl#*:}; \
	    $(BUILD)/charlm train --data fuzz/seeds/corpus/text.txt --cell $$c \
	        --layers $$l --hidden 6 --embed 4 --seq 8 --batch 2 --steps 3 \
	        --threads 1 --save $(FUZZ_BUILD)/seeds/ckpt/$$c.safetensors \
	        --overwrite > $(FUZZ_BUILD)/seeds/train.log 2>&1 \
	        || { cat $(FUZZ_BUILD)/seeds/train.log; exit 1; }; \
	done
	cp $(FUZZ_BUILD)/seeds/ckpt/* $(FUZZ_BUILD)/seeds/st_parse/
	cp $(FUZZ_BUILD)/seeds/ckpt/* $(FUZZ_BUILD)/seeds/params_load/
	@touch $@

.PHONY: fuzz fuzz-build fuzz-run
fuzz:
	@sh scripts/fuzz_deps.sh
	@$(MAKE) --no-print-directory fuzz-run

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%) $(FUZZ_BUILD)/seeds.stamp

# -timeout: one input taking 10 s is a hang (30 s for fuse_diff, whose
# inputs run two whole schedules); the executions of each run are added to
# $(FUZZ_BUILD)/executions.log.
fuzz-run: fuzz-build
	@mkdir -p $(FUZZ_BUILD)/crashes
	@for t in $(FUZZ_TARGETS); do \
	    bin=$(FUZZ_BUILD)/fuzz_$$t; \
	    if [ -d fuzz/regressions/$$t ]; then \
	        echo "== fuzz $$t: replaying fuzz/regressions/$$t"; \
	        $$bin fuzz/regressions/$$t/* > $(FUZZ_BUILD)/$$t.replay.log 2>&1 \
	            || { cat $(FUZZ_BUILD)/$$t.replay.log; exit 1; }; \
	    fi; \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	    echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	    case $$t in fuse_diff) dict=; to=30;; \
	        *) dict=-dict=fuzz/tapegrad.dict; to=10;; esac; \
	    $$bin -max_total_time=$(FUZZ_SECONDS) -timeout=$$to -print_final_stats=1 \
	        $$dict \
	        -artifact_prefix=$(FUZZ_BUILD)/crashes/$$t- \
	        $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/seeds/$$t \
	        > $(FUZZ_BUILD)/$$t.log 2>&1 \
	        || { tail -n 60 $(FUZZ_BUILD)/$$t.log; \
	             echo "fuzz $$t FAILED: the input is in $(FUZZ_BUILD)/crashes/"; \
	             exit 1; }; \
	    runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_BUILD)/$$t.log); \
	    echo "$$t $$runs $(FUZZ_SECONDS)" >> $(FUZZ_BUILD)/executions.log; \
	    echo "   $$runs executions, no crash"; \
	done

# ---- installing: make install, make uninstall ---------------------------
# make install [PREFIX=/usr/local] [DESTDIR=]: the float and double
# libraries, static and shared (libtapegrad.so.$(TG_VERSION), soname
# libtapegrad.so.$(TG_SOMAJOR)), the public headers under
# $(INCLUDEDIR)/tapegrad/ (tensor/, autograd/, ops/, nn/: programs keep
# writing #include "ops/ops.h", with the -I that tapegrad.pc gives),
# tapegrad.pc and tapegrad-f64.pc (-DTG_DOUBLE) for pkg-config, and the
# charlm tool. DESTDIR stages the files for a package; the .pc files name
# PREFIX. make uninstall removes exactly what install wrote.
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
TG_VERSION := 0.1.0
TG_SOMAJOR := 0

# the shared libraries carry their soname; build/lib*.so.0 link to them
$(BUILD)/libtapegrad.so: LDFLAGS += -Wl,-soname,libtapegrad.so.$(TG_SOMAJOR)
$(BUILD)/libtapegrad_f64.so: $(LIB64_OBJ)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libtapegrad_f64.so.$(TG_SOMAJOR) \
	    $^ -o $@ $(LDLIBS)
$(BUILD)/%.so.$(TG_SOMAJOR): $(BUILD)/%.so
	ln -sf $(<F) $@
all: $(BUILD)/libtapegrad_f64.so $(BUILD)/libtapegrad.so.$(TG_SOMAJOR) \
     $(BUILD)/libtapegrad_f64.so.$(TG_SOMAJOR)

# What a static link needs besides the archive (--static); the shared
# libraries record their own needs. cJSON is private: only the file
# functions (tensor/safetensors.c) use it.
PC_PRIVATE = $(if $(filter 1,$(OPENMP)),-fopenmp) -pthread -lm
# $(call write_pc,FILE,NAME,LIB,EXTRA_CFLAGS,DESCRIPTION)
define write_pc
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' \
	    'includedir=$(INCLUDEDIR)' '' 'Name: $(strip $(2))' \
	    'Description: $(strip $(5))' 'Version: $(TG_VERSION)' \
	    'Cflags: $(strip -I$${includedir}/tapegrad $(4))' \
	    'Libs: -L$${libdir} -l$(strip $(3))' \
	    'Libs.private: $(strip $(PC_PRIVATE))' \
	    'Requires.private: libcjson' > $(strip $(1))
endef

INSTALL_LIBS := libtapegrad libtapegrad_f64
.PHONY: install uninstall
install: $(INSTALL_LIBS:%=$(BUILD)/%.a) $(INSTALL_LIBS:%=$(BUILD)/%.so) \
         $(BUILD)/charlm
	mkdir -p $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 755 $(BUILD)/charlm $(DESTDIR)$(BINDIR)/charlm
	for l in $(INSTALL_LIBS); do \
	    install -m 644 $(BUILD)/$$l.a $(DESTDIR)$(LIBDIR)/$$l.a && \
	    install -m 755 $(BUILD)/$$l.so \
	        $(DESTDIR)$(LIBDIR)/$$l.so.$(TG_VERSION) && \
	    ln -sf $$l.so.$(TG_VERSION) $(DESTDIR)$(LIBDIR)/$$l.so.$(TG_SOMAJOR) && \
	    ln -sf $$l.so.$(TG_SOMAJOR) $(DESTDIR)$(LIBDIR)/$$l.so || exit 1; \
	done
	for h in $(PUBLIC_HEADERS); do \
	    mkdir -p $(DESTDIR)$(INCLUDEDIR)/tapegrad/$$(dirname $$h) && \
	    install -m 644 $$h $(DESTDIR)$(INCLUDEDIR)/tapegrad/$$h || exit 1; \
	done
	$(call write_pc,$(DESTDIR)$(LIBDIR)/pkgconfig/tapegrad.pc,tapegrad,tapegrad,,\
	    tape-based automatic differentiation in C (float))
	$(call write_pc,$(DESTDIR)$(LIBDIR)/pkgconfig/tapegrad-f64.pc,tapegrad-f64,\
	    tapegrad_f64,-DTG_DOUBLE,tape-based automatic differentiation in C (double))

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/charlm
	for l in $(INSTALL_LIBS); do \
	    rm -f $(DESTDIR)$(LIBDIR)/$$l.a $(DESTDIR)$(LIBDIR)/$$l.so \
	        $(DESTDIR)$(LIBDIR)/$$l.so.$(TG_SOMAJOR) \
	        $(DESTDIR)$(LIBDIR)/$$l.so.$(TG_VERSION); \
	done
	rm -f $(DESTDIR)$(LIBDIR)/pkgconfig/tapegrad.pc \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/tapegrad-f64.pc
	rm -f $(PUBLIC_HEADERS:%=$(DESTDIR)$(INCLUDEDIR)/tapegrad/%)
	for d in tensor autograd ops nn; do \
	    rmdir $(DESTDIR)$(INCLUDEDIR)/tapegrad/$$d 2>/dev/null; done; \
	rmdir $(DESTDIR)$(INCLUDEDIR)/tapegrad 2>/dev/null; true
# ---- end of installing ---------------------------------------------------

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(LIB64_OBJ:.o=.d)
-include $(wildcard $(FUZZ_BUILD)/obj/*/*.d $(FUZZ_BUILD)/obj/*/*/*.d \
                    $(FUZZ_BUILD)/obj64/*/*.d)
