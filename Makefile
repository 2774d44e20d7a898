# Ninety — the two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NINETY := $(VENV)/bin/ninety
STAMP := $(VENV)/.installed

.PHONY: demo run test bench lint install clean tools

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(NINETY) demo --serve

run: $(STAMP)
	$(NINETY) run

# The suite needs Chromium, ffmpeg, fpcalc and redis-server: installed here when possible, else a clear stop with the command to type.
tools:
	@.ci/ensure-tools

test: $(STAMP) tools
	$(PY) -m pytest -n 2 --dist loadgroup -q

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
