# tbn: thin wrappers over the CLI and pytest. `make demo` and `make test` work on a fresh
# machine: they create .venv and install tbn with its Python dependencies first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The CPU build of torch 2.13.0 lies here on our machines; elsewhere pip uses PyPI.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
RUNS   := runs

# ---- the C runtime: sources and flags from its manifest, firmware/lib/tbn/library.json --------
TBN_PATHS := PYTHONPATH=host $(PYTHON) -m tbn.paths
TBN_INC := $(shell $(TBN_PATHS) c-include)
TBN_SRC := $(shell $(TBN_PATHS) c-sources)
TBN_HDR := $(wildcard $(TBN_INC)/*.h firmware/lib/tbn/src/*.h) firmware/lib/tbn/library.json
CWARN   := $(shell $(TBN_PATHS) c-flags) -I$(TBN_INC)
ifeq ($(strip $(TBN_SRC)),)
$(error no C runtime sources: `$(TBN_PATHS) c-sources` failed (needs $(PYTHON) and firmware/lib/tbn/library.json))
endif
# the golden-vector checker's F32 tolerance is tbn.parity's
F32_RTOL := $(shell PYTHONPATH=host $(PYTHON) -m tbn.parity)
SANITIZE := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
HOST    := build/host
FUZZ_SECONDS ?= 60
# `make test` runs the hardware-in-the-loop tests on every board in boards/: the emulated ones,
# and real ones, whose build is skipped with the reason where the PlatformIO registry is unreachable.
HIL_BOARDS := $(sort $(basename $(notdir $(wildcard boards/*.json))))
EMULATED_BOARDS := $(shell PYTHONPATH=host $(PYTHON) -m tbn.boards list --emulated)
# MicroPython targets (boards/micropython/): `pytest tests/hil --board mpy_X` runs the tbn
# module there, built in and as a native .mpy
MPY_TARGETS := $(sort $(basename $(notdir $(wildcard boards/micropython/*.json))))
DEMO_BOARD ?= mps2_an500
HIL_RUNS ?= 20

# Every step of `make test` / `make check` leaves its result here; tools/summary.py adds them
# up into the one closing line "tests: N passed, N failed, N skipped".
RESULTS := build/results
TEST_STEPS := deps setup data lint c-vectors gpu-kernels unit $(addprefix hil-,$(HIL_BOARDS) $(MPY_TARGETS)) cross fuzz
CHECK_STEPS := setup data lint c-vectors unit
# $(call record,STEP,PASSED,FAILED,SKIPPED,NOTE): the result of a step that is not a pytest run
record = mkdir -p $(RESULTS) && printf '{"passed": %s, "failed": %s, "skipped": %s, "note": "%s"}\n' \
  $(2) $(3) $(4) "$(5)" > $(RESULTS)/$(1).json

.PHONY: setup setup-step test check data lint unit demo bench header vectors clean deps lib c-test fuzz cross hil \
        hil-repeat soak gpu-kernels bench-mcu bench-mlperf

setup: $(STAMP)

# Checks each toolchain by what it must do (clang links libFuzzer, the cross compilers link,
# QEMU boots) and installs the Debian packages behind what fails (needs root; CI runs as root).
# DEPS_DONE=1: already checked by the make that called this one.
deps:
	@[ -n "$(DEPS_DONE)" ] || if PYTHON=$(PYTHON) tools/deps.sh; then $(call record,deps,1,0,0,every toolchain does its job); \
	else $(call record,deps,0,1,0,a toolchain is missing: see above); exit 1; fi

lib: $(HOST)/libtbn.so

# Each built under a name of its own and renamed into place: test workers that build it at once
# (pytest -n) never load a half-written file.
$(HOST)/libtbn.so: $(TBN_SRC) $(TBN_HDR)
	@mkdir -p $(@D)
	$(CC) $(CWARN) -O2 -fPIC -shared $(TBN_SRC) -lm -o $@.$$$$ && mv -f $@.$$$$ $@

# The golden-vector checker, with AddressSanitizer and UndefinedBehaviorSanitizer.
$(HOST)/tbn_check: tests/c/tbn_check.c $(TBN_SRC) $(TBN_HDR) host/tbn/parity.py
	@mkdir -p $(@D)
	$(CC) $(CWARN) $(SANITIZE) -DTBN_F32_RTOL=$(F32_RTOL) $(TBN_SRC) $< -lm -o $@.$$$$ && mv -f $@.$$$$ $@

c-test: $(HOST)/tbn_check
	@ok=0; bad=0; for v in tests/vectors/*.tbn; do n=$${v%.tbn}; \
	  if $(HOST)/tbn_check $$v $$n.input.bin $$n.output.bin; then ok=$$((ok+1)); else bad=$$((bad+1)); fi; \
	  if $(HOST)/tbn_check --reject $$v; then ok=$$((ok+1)); else bad=$$((bad+1)); fi; done; \
	$(call record,c-vectors,$$ok,$$bad,0,golden vectors and their corruptions under ASan+UBSan); \
	[ $$bad = 0 ]

$(HOST)/tbn_bench: benchmarks/c/tbn_bench.c $(TBN_SRC) $(TBN_HDR)
	@mkdir -p $(@D)
	$(CC) $(CWARN) -O2 $(TBN_SRC) $< -lm -o $@

$(HOST)/fuzz_model: tests/c/fuzz_model.c $(TBN_SRC) $(TBN_HDR)
	@mkdir -p $(@D)
	clang $(CWARN) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $(TBN_SRC) $< -lm -o $@

# libFuzzer over loading and invoking, seeded with the golden vectors and with every input that
# once found a bug (tests/c/fuzz-regressions: each runs again first).
fuzz: deps $(HOST)/fuzz_model
	@mkdir -p $(HOST)/fuzz-corpus && cp tests/vectors/*.tbn tests/c/fuzz-regressions/* $(HOST)/fuzz-corpus/
	@$(HOST)/fuzz_model -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1 \
	  -artifact_prefix=$(HOST)/ $(HOST)/fuzz-corpus > $(HOST)/fuzz.log 2>&1; status=$$?; \
	execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(HOST)/fuzz.log); \
	if [ $$status -ne 0 ] || grep -q "ERROR: \|SUMMARY: .*Sanitizer" $(HOST)/fuzz.log; then \
	  tail -40 $(HOST)/fuzz.log; echo "fuzz: CRASH (input saved as $(HOST)/crash-*)"; \
	  $(call record,fuzz,0,1,0,a crash: $(HOST)/crash-*); exit 1; fi; \
	echo "fuzz: $$execs executions in $(FUZZ_SECONDS) s, 0 crashes (log: $(HOST)/fuzz.log)"; \
	$(call record,fuzz,1,0,0,$$execs executions in $(FUZZ_SECONDS) s)

# Warning-free cross builds of the runtime; prints .text per target.
cross: deps setup
	@if $(BIN)/python benchmarks/c_size.py --out $(HOST)/cross; then \
	  $(call record,cross,1,0,0,warning-free -Os builds for every target); \
	else $(call record,cross,0,1,0,a cross build failed); exit 1; fi

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv $(VENV) || { echo "$(PYTHON) -m venv failed: make deps installs python3-venv"; exit 1; }
	@# byte-compiled here (about 50 s of a fresh setup): with PYTHONDONTWRITEBYTECODE set, as on
	@# our CI machines, --no-compile left every process compiling torch again (unit tests 544 -> 756 s)
	$(BIN)/python -m pip install --quiet $(FIND_LINKS) -e '.[dev,firmware,micropython,tf,report,data]'
	touch $@

lint: setup
	@if $(BIN)/ruff check host tests benchmarks examples tools; then $(call record,lint,1,0,0,ruff); \
	else $(call record,lint,0,1,0,ruff); exit 1; fi

# MNIST found (or downloaded) and verified before the tests that read it: where it is missing
# (a clone away from ../shared, offline, no $$TBN_DATA) this is the one message that says so.
data: setup
	@if $(BIN)/python -m tbn.data; then $(call record,data,1,0,0,MNIST verified); \
	else $(call record,data,0,1,0,MNIST not found: set TBN_DATA=DIR (see above)); exit 1; fi

# Unit tests: everything but the hardware-in-the-loop tests, which run board by board below.
# UNIT_JOBS workers (pytest-xdist), a test file to a worker: files that build into a shared
# folder (the C checker, the MicroPython tree) then never race one another.
UNIT_JOBS ?= 2
unit: setup lib
	@mkdir -p $(RESULTS)
	$(BIN)/python -m pytest -m "not hil" -n $(UNIT_JOBS) --dist loadfile --junitxml=$(RESULTS)/unit.xml

# The full suite: every step runs even when an earlier one fails (-k), then one summary line.
# Without toolchains or a venv nothing else can run; the summary (stdlib only) still reports.
test:
	@rm -rf $(RESULTS) && mkdir -p $(RESULTS) && touch $(RESULTS)/.start
	@$(MAKE) --no-print-directory deps setup-step && \
	$(MAKE) --no-print-directory -k lib data lint c-test gpu-kernels unit hil cross fuzz FUZZ_SECONDS=60 DEPS_DONE=1; \
	status=$$?; $(PYTHON) tools/summary.py $(RESULTS) $(TEST_STEPS) && exit $$status

# The fast developer loop: lint, unit tests and the C golden vectors; no apt, no emulator.
check:
	@rm -rf $(RESULTS) && mkdir -p $(RESULTS) && touch $(RESULTS)/.start
	@$(MAKE) --no-print-directory setup-step && $(MAKE) --no-print-directory -k data lint c-test unit; \
	status=$$?; $(PYTHON) tools/summary.py $(RESULTS) $(CHECK_STEPS) && exit $$status

# setup, with its result recorded for the summary
setup-step:
	@if $(MAKE) --no-print-directory setup; then $(call record,setup,1,0,0,.venv with tbn and its dependencies); \
	else $(call record,setup,0,1,0,the venv could not be made: see above); exit 1; fi

# Compile every kernels_gpu/*.cu with nvcc for sm_80 and sm_90 (no GPU needed), so a kernel
# that does not compile fails CI; the CUDA engine loads these fatbins.
gpu-kernels: setup
	@if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then \
	  if PATH="$$PATH:/usr/local/cuda/bin" $(BIN)/python -m tbn.gpu.build --arch 80 --arch 90; then \
	    $(call record,gpu-kernels,1,0,0,every kernels_gpu/*.cu for sm_80 and sm_90); \
	  else $(call record,gpu-kernels,0,1,0,nvcc failed); exit 1; fi; \
	elif [ "$$CI" = true ]; then echo "gpu-kernels: nvcc not found; CI must compile kernels_gpu/"; \
	  $(call record,gpu-kernels,0,1,0,nvcc not found); exit 1; \
	else echo "gpu-kernels: skipped: nvcc not found (install the CUDA toolkit to compile kernels_gpu/)"; \
	  $(call record,gpu-kernels,0,0,1,nvcc not found); fi

# Hardware-in-the-loop tests, board by board (pytest --board X); -k goes on past a failure.
# The boards run two at a time (each builds into its own folder and boots its own emulator;
# hil-repeat shows them holding side by side under load), each board's output kept together;
# the MicroPython targets then one by one, as they share the MicroPython tree they build in.
# (A third lane, the MicroPython targets beside the boards, made the boards about a third
# slower on 2 cores: no gain.) Overlapping boards make the summary's per-step seconds those
# since the previous to finish.
HIL_JOBS ?= 2
hil: deps setup
	@$(MAKE) --no-print-directory -k -j$(HIL_JOBS) --output-sync=target $(addprefix hil-,$(HIL_BOARDS)); \
	boards=$$?; $(MAKE) --no-print-directory -k $(addprefix hil-,$(MPY_TARGETS)); \
	mpy=$$?; [ $$boards = 0 ] && [ $$mpy = 0 ]

hil-%: deps setup
	@echo "== hil: $*"; mkdir -p $(RESULTS)
	$(BIN)/python -m pytest tests/hil --board $* -q -ra --junitxml=$(RESULTS)/hil-$*.xml

# The whole HIL suite HIL_RUNS times in a row on every emulated board, the boards side by side
# (the MicroPython targets in turn beside them, as they share their build tree), with a
# parallel build of the C runtime as extra load; stops a board at its first failure.
hil-repeat: deps setup
	$(BIN)/python tools/hil_repeat.py --runs $(HIL_RUNS) --load --results $(RESULTS)/repeat $(EMULATED_BOARDS) \
		--after $(MPY_TARGETS)

# The 10,000-inference link soak of docs/results.md (about ten minutes).
soak: deps setup
	$(BIN)/python benchmarks/soak.py --json $(RUNS)/bench/soak.json

# Train briefly, compile, build the firmware with the model in flash, boot the emulated
# Cortex-M7 and run 100 MNIST test images over its serial link beside the host reference.
demo: deps setup lib
	$(BIN)/tbn train --recipe mlp --p 4 --epochs 3 --out $(RUNS)/demo --overwrite
	$(BIN)/tbn compile $(RUNS)/demo/model.pt -o $(RUNS)/demo/model.tbn
	$(BIN)/tbn compile $(RUNS)/demo/model.pt -o $(RUNS)/demo/model-int8.tbn --activations int8 > /dev/null
	$(BIN)/tbn inspect $(RUNS)/demo/model-int8.tbn
	$(BIN)/tbn run $(RUNS)/demo/model.tbn --data mnist
	$(BIN)/tbn infer --board $(DEMO_BOARD) --model $(RUNS)/demo/model.tbn --data mnist --n 100
	$(BIN)/tbn infer --board $(DEMO_BOARD) --model $(RUNS)/demo/model-int8.tbn --data mnist --n 100

# Regenerate what is generated from the Python definitions (tests check that none is stale):
# tbn_format.h from tbn.format.spec, tbn_protocol.h from tbn.device.protocol, the vectors.
header: setup
	$(BIN)/python -m tbn.format.cheader
	$(BIN)/python -m tbn.device.cheader

vectors: setup
	$(BIN)/python -m tbn.vectors

bench: setup
	$(BIN)/python benchmarks/step_time.py --json $(RUNS)/bench/step_time.json
	$(BIN)/python benchmarks/mnist_accuracy.py --json $(RUNS)/bench/mnist_accuracy.json

# tbn's kernels on the emulated Cortex-M7 and M4 (QEMU icount): table vs direct kernel, MLP at
# p = 1, 4, 8, 16 and the cnn recipe (trains them first, about two minutes); the firmware's
# worst-case stack on each Cortex-M board
bench-mcu: setup
	$(BIN)/python benchmarks/mcu.py --json $(RUNS)/bench/mcu.json
	$(BIN)/python benchmarks/stack.py --json $(RUNS)/bench/stack.json

# MLPerf Tiny's architectures (tbn at p=1 and p=4, CMSIS-NN int8 beside them) on the emulated
# Cortex-M7 and M4, and the assembly loops' cycles from llvm-mca (about 15 minutes)
bench-mlperf: setup
	$(BIN)/python benchmarks/mlperf_tiny.py --json $(RUNS)/bench/mlperf_tiny.json
	$(BIN)/python benchmarks/loop_cycles.py --json $(RUNS)/bench/loop_cycles.json

clean:
	rm -rf $(VENV) $(RUNS) build .pytest_cache .ruff_cache .hypothesis
