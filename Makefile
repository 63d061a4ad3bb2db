# tapegrad - make builds the libraries and tools, make test runs the tests.
#
#   make              build/libtapegrad.a, build/libtapegrad.so (float) and
#                     build/libtapegrad_f64.a (double, for gradient checks)
#   make test         install missing dependencies, build, run every suite
#   make asan         the same suites under AddressSanitizer + UBSan
#   make noomp        the same suites built without OpenMP
#   make OPENMP=0     build without OpenMP;  make PORTABLE=1  no -march=native
#
# Build outputs go to $(BUILD) (build/ by default), never into the sources.

BUILD    ?= build
OPENMP   ?= 1
PORTABLE ?= 0
SANITIZE ?= 0
OPT      ?= -O3

ARCH_FLAGS = $(if $(filter 1,$(PORTABLE)),,-march=native)
OMP_FLAGS  = $(if $(filter 1,$(OPENMP)),-fopenmp,-Wno-unknown-pragmas)
# float-cast-overflow (a NaN or out-of-range float converted to an integer)
# is not part of GCC's -fsanitize=undefined: asked for by name.
SAN_ON     = -fsanitize=address,undefined,float-cast-overflow \
             -fno-sanitize-recover=undefined,float-cast-overflow \
             -fno-omit-frame-pointer
SAN_FLAGS  = $(if $(filter 1,$(SANITIZE)),$(SAN_ON))
WARNINGS   = -Wall -Wextra -Wshadow -Wdouble-promotion -Wmissing-prototypes \
             -Wstrict-prototypes -Wformat=2 -Wvla
# pkg-config is asked lazily (=), after scripts/deps.sh has installed it
PKG_CFLAGS = $(shell pkg-config --cflags stb libcjson 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs libcjson 2>/dev/null)
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   = $(shell pkg-config --libs check 2>/dev/null)

CFLAGS  = -std=c11 -D_POSIX_C_SOURCE=200809L $(OPT) -g -fno-math-errno $(ARCH_FLAGS) \
          $(OMP_FLAGS) $(SAN_FLAGS) $(WARNINGS) -fPIC -I. $(PKG_CFLAGS) \
          -MMD -MP $(EXTRA_CFLAGS)
LDFLAGS = $(OMP_FLAGS) $(SAN_FLAGS) $(EXTRA_LDFLAGS)
LDLIBS  = $(PKG_LIBS) -lm

LIB_SRC  := $(wildcard tensor/*.c autograd/*.c ops/*.c nn/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/f32/%.o)
LIB64_OBJ := $(LIB_SRC:%.c=$(BUILD)/f64/%.o)
HEADERS  := $(wildcard tensor/*.h autograd/*.h ops/*.h nn/*.h)

# tests/test_*.c link the float library; tests/grad_*.c the double one
TEST_SRC   := $(wildcard tests/test_*.c)
GRAD_SRC   := $(wildcard tests/grad_*.c)
TEST_BIN   := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
GRAD_BIN   := $(GRAD_SRC:tests/%.c=$(BUILD)/tests/%)
EXAMPLE_SRC := $(wildcard examples/*.c)
EXAMPLE_BIN := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/%)

.PHONY: all test run-tests asan noomp deps check-headers clean
all: $(BUILD)/libtapegrad.a $(BUILD)/libtapegrad.so $(BUILD)/libtapegrad_f64.a \
     $(EXAMPLE_BIN)

# objects depend on the Makefile too: a change of flags rebuilds them
$(BUILD)/f32/%.o: %.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/f64/%.o: %.c Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DTG_DOUBLE -c $< -o $@

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

$(BUILD)/%: examples/%.c $(BUILD)/libtapegrad.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(BUILD)/libtapegrad.a $(LDLIBS)

# The charlm tool: several files in examples/charlm/, one program.
CHARLM_SRC := $(wildcard examples/charlm/*.c)
all: $(BUILD)/charlm
$(BUILD)/charlm: $(CHARLM_SRC) examples/charlm/charlm.h $(BUILD)/libtapegrad.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(CHARLM_SRC) -o $@ $(LDFLAGS) \
	    $(BUILD)/libtapegrad.a $(LDLIBS)

# make demo: an LSTM (one layer of 256, Adam 5e-3) trained for two minutes
# on two threads on the fortunes (Debian package `fortunes`), saved, and a
# 500-character sample at temperature 0.7. The size and rate were chosen by
# measurement among seven two-minute runs (README, "Two commands"); the
# JSON lines go to build/demo.jsonl.
# make bench: the whole speed table (all sizes, cells and modes, 1 and 2
# threads); flags as ../shared/bench/bench_torch_rnn.py, e.g.
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
	    --layers 1 --hidden 256 --lr 5e-3 \
	    --save $(BUILD)/demo.safetensors --overwrite --log $(BUILD)/demo.jsonl >/dev/null
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

# make gradflow: ||dL/dh_t|| against the distance from the loss for RNN,
# LSTM and GRU, at init and trained, and an exploding RNN (docs/gradflow.md);
# the .dat files go to $(BUILD)/gradflow_data/, drawn by gnuplot if installed.
.PHONY: gradflow
gradflow: $(BUILD)/gradflow
	$(BUILD)/gradflow --out $(BUILD)/gradflow_data
	@if command -v gnuplot >/dev/null 2>&1; then \
	    gnuplot -e "dir='$(BUILD)/gradflow_data'" examples/gradflow.gp \
	    && echo "picture drawn in $(BUILD)/gradflow_data/gradflow.svg"; fi

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
$(BUILD)/tests/grad_%: tests/grad_%.c tests/harness.h $(BUILD)/libtapegrad_f64.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DTG_DOUBLE $(CHECK_CFLAGS) $< -o $@ $(LDFLAGS) \
	    $(BUILD)/libtapegrad_f64.a $(CHECK_LIBS) $(LDLIBS)

# Every public header compiles on its own.
check-headers:
	@mkdir -p $(BUILD)/headers
	@for h in $(HEADERS); do \
	    printf '#include "%s"\n' "$$h" > $(BUILD)/headers/one.c; \
	    $(CC) $(CFLAGS) -fsyntax-only $(BUILD)/headers/one.c || \
	        { echo "header $$h does not compile on its own"; exit 1; }; \
	done; echo "headers: all $(words $(HEADERS)) compile on their own"

deps:
	@sh scripts/deps.sh

# make test: dependencies first (a separate make, so that pkg-config
# answers after they are installed), then build and run everything.
test:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory run-tests

run-tests: all check-headers $(TEST_BIN) $(GRAD_BIN)
	@fail=0; for t in $(TEST_BIN) $(GRAD_BIN); do \
	    echo "== $$t"; $$t || fail=1; \
	done; \
	echo "== tests/charlm_cli.sh"; sh tests/charlm_cli.sh $(BUILD)/charlm || fail=1; \
	echo "== tests/custom_cells.sh"; sh tests/custom_cells.sh $(BUILD)/custom_cells || fail=1; \
	echo "== tests/walkthrough_docs.sh"; sh tests/walkthrough_docs.sh $(BUILD)/walkthrough || fail=1; \
	echo "== tests/gradflow.sh"; sh tests/gradflow.sh $(BUILD)/gradflow || fail=1; \
	echo "== tests/memory_tasks.sh"; sh tests/memory_tasks.sh $(BUILD)/memory_tasks || fail=1; \
	echo "== torch_parity on tests/fixtures"; \
	$(BUILD)/torch_parity tests/fixtures/*.safetensors > $(BUILD)/parity.log \
	    && tail -n 1 $(BUILD)/parity.log \
	    || { cat $(BUILD)/parity.log; fail=1; }; \
	if $(BUILD)/torch_parity Makefile > /dev/null; then \
	    echo "torch_parity accepted a file that is not safetensors"; fail=1; fi; \
	if [ $$fail = 0 ]; then echo "ALL TESTS PASSED"; \
	else echo "SOME TESTS FAILED"; exit 1; fi

asan:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory BUILD=build/asan SANITIZE=1 OPT=-O1 run-tests

noomp:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory BUILD=build/noomp OPENMP=0 run-tests

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(LIB64_OBJ:.o=.d)
