# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv demo test bench clean

venv: $(STAMP)

$(STAMP): setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hybrid bench --size demo --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) -m pytest -q benchmarks --benchmark-only --benchmark-autosave --benchmark-columns=median,iqr,rounds
	$(PY) -m benchmarks.report
	$(VENV)/bin/hybrid bench --size default --out benchmarks/results

clean:
	rm -rf $(VENV) runs .pytest_cache .benchmarks
