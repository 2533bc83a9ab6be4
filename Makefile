# mpt-serve: every target installs what it needs into $(VENV) first (CPU torch pinned for tests/CI).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test clean

$(STAMP): pyproject.toml constraints-cpu.txt scripts/install.sh
	scripts/install.sh $(VENV) serve,test
	touch $(STAMP)

install: $(STAMP)

## demo: the whole training pipeline (tiny backbone -> teachers -> distill -> adapt -> eval -> predict)
demo: $(STAMP)
	MPT=$(VENV)/bin/mpt scripts/demo_pipeline.sh

## test: the test suite (fails on test failures, and when no test ran)
test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf build runs .pytest_cache
