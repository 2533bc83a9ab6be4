# mpt-serve: every target installs what it needs into $(VENV) first (CPU torch pinned for tests/CI).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install serve demo test bench-serve clean

$(STAMP): pyproject.toml constraints-cpu.txt scripts/install.sh
	scripts/install.sh $(VENV) serve,test
	touch $(STAMP)

install: $(STAMP)

## serve: the HTTP server on 127.0.0.1:8000 over the embedded demo (MPT_* env vars and flags override)
serve: $(STAMP)
	VENV=$(VENV) scripts/serve.sh $(ARGS)

## demo: the whole training pipeline (tiny backbone -> teachers -> distill -> adapt -> eval -> predict)
demo: $(STAMP)
	MPT=$(VENV)/bin/mpt scripts/demo_pipeline.sh

## test: the test suite (fails on test failures, and when no test ran)
test: $(STAMP)
	$(PY) -m pytest -q

## bench-serve: serving throughput/latency benchmark (CPU, tiny model) -> bench/results/serve.json
bench-serve: $(STAMP)
	$(PY) -m bench.serve_bench

clean:
	rm -rf build runs .pytest_cache
