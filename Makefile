# mpt-serve: every target installs what it needs into $(VENV) first (CPU torch pinned for tests/CI).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install serve demo test lint format docs docs-serve tables bench-serve bench-scale bench-speed bench-gpu clean \
	lab-backbone lab-gate bench-accuracy demo-bundle

$(STAMP): pyproject.toml constraints-cpu.txt scripts/install.sh
	scripts/install.sh $(VENV) serve,test,bench,postgres,ray
	touch $(STAMP)

install: $(STAMP)

## serve: the HTTP server on 127.0.0.1:8000 over the embedded demo (MPT_* env vars and flags override)
serve: $(STAMP)
	VENV=$(VENV) scripts/serve.sh $(ARGS)

## demo: the whole training pipeline (tiny backbone -> teachers -> distill -> adapt -> eval -> predict)
demo: $(STAMP)
	MPT=$(VENV)/bin/mpt scripts/demo_pipeline.sh

## test: lint, then the test suite (fails on lint, on test failures, and when no test ran)
test: lint
	$(PY) -m pytest -q

## lint: ruff check + ruff format --check (line length 120; `make format` fixes what it can)
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints-cpu.txt -e ".[docs]"
	touch $(DOCS_STAMP)

## docs: build the documentation site into site/ (strict: a broken link, page or figure fails it)
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet

## docs-serve: the documentation site on http://127.0.0.1:8001, rebuilt as pages change
docs-serve: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve --dev-addr 127.0.0.1:8001

## tables: regenerate the markdown table of every result in bench/results/ from its JSON
tables: $(STAMP)
	$(PY) -m bench.tables

## bench-serve: serving throughput/latency benchmark (CPU, tiny model) -> bench/results/serve.json
bench-serve: $(STAMP)
	$(PY) -m bench.serve_bench
	$(PY) -m bench.tables serve

## bench-scale: one server with 1 to 10^6 resident tasks (SQLite, demo shape) -> bench/results/scale.json
## (populated stores are cached in build/scale; ARGS=--tasks 1,1000 for a quick look)
bench-scale: $(STAMP)
	$(PY) -m bench.scale $(ARGS)
	$(PY) -m bench.tables scale

## bench-speed: the engine vs PEFT on this CPU (T5-small shape, batch 32) -> bench/results/speed-cpu.json (ARGS=--quick: dry run)
bench-speed: $(STAMP)
	$(PY) -m bench.speed --device cpu $(ARGS)

## bench-gpu: the GPU run of issue 11 in one command (< 8 min), on the GPU machine's python3, no venv, no network:
## carry .whl/ (scripts/fetch_gpu_wheels.sh) for the HTTP phase -> $$OUT/speed-cuda.json (default bench/results)
bench-gpu:
	scripts/bench_gpu.sh $(ARGS)

## lab-backbone: pretrain the accuracy lab's T5 into demo/backbone (seeded; ~45 min on 2 CPU cores; committed)
lab-backbone: $(STAMP)
	$(PY) -m lab.pretrain --out demo/backbone $(ARGS)

## lab-gate: is the backbone promptable? writes bench/results/gate.json, fails if not (~10 min)
lab-gate: $(STAMP)
	$(PY) -m lab.gate --backbone demo/backbone $(ARGS)
	$(PY) -m bench.tables gate

## bench-accuracy: the paper's comparison on the lab: quick grid (ARGS=--full for all, --smoke for CI)
bench-accuracy: $(STAMP)
	$(PY) -m lab.accuracy $(ARGS)

## demo-bundle: rebuild the embedded demo in demo/ (ARGS=--rebuild-backbone to pretrain the backbone too)
demo-bundle: $(STAMP)
	$(PY) -m lab.bundle $(ARGS)

clean:
	rm -rf build runs site .pytest_cache
