# The developer loop. Every target is one command; CI runs `bash .ci/run` (= scripts/test.sh).
# The clone's .venv (scripts/*.sh make it) when there is one: never the system Python.
PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

.PHONY: unit test lint bench install-tier mutation

unit:          ## the fast tier: no process, no nginx, no network (seconds)
	$(PYTHON) -m pytest -m unit -q

test:          ## every tier but the real VM (needs nginx, chromium: scripts/test.sh installs them)
	$(PYTHON) -m pytest -q

lint:          ## what CI checks: ruff, ruff format, mypy
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

install-tier:  ## wheel + sdist into fresh venvs, pipx, uv tool install, the example corpus
	$(PYTHON) -m pytest -m install -q

bench:         ## the benchmark tables (each names its baseline, measured in the same run)
	$(PYTHON) benchmarks/bench_up.py
	$(PYTHON) benchmarks/bench_fresh.py
	$(PYTHON) benchmarks/bench_logs.py

mutation:      ## mutation testing (mutmut) of the pure modules against the unit tier; prints the score
	bash .ci/mutation
