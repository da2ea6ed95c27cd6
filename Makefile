# The two commands of the README: `make demo` and `make test`. Both set everything up first.
PY := .venv/bin/python
LINT := .venv/bin/lint-imports
.PHONY: setup demo test bench clean

setup:
	bash scripts/setup.sh

demo: setup
	$(PY) -m mixstyle.cli demo --out demo_out

# The layer contract first ([tool.importlinter] in pyproject.toml, docs/DESIGN.md "The tree").
# Then the tests in three runs: everything but the live host spread over the cores (pytest-xdist,
# one file per worker at a time, the files marked long first: tests/conftest.py); the host tests
# two at a time (the studio page and web first, each file on its own JACK server); last the host
# tests that time the real-time callback and the disk reader, alone, so no other test competes
# with their JACK callbacks. All three run; any failing fails `make test`.
HOST_TIMING = tests/host/test_jack.py tests/host/test_realtime.py tests/host/test_live_rate.py \
	tests/host/test_engine.py

test: setup
	$(LINT) --no-cache --no-logo
	MIXSTYLE_REQUIRE_REAL=1 $(PY) -m pytest -q -p no:cacheprovider -n auto --maxprocesses 4 --durations=15 \
	    --dist loadfile --no-loadscope-reorder --ignore=tests/host tests; a=$$?; \
	MIXSTYLE_REQUIRE_REAL=1 $(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile \
	    --no-loadscope-reorder $(addprefix --ignore=,$(HOST_TIMING)) tests/host; b=$$?; \
	MIXSTYLE_REQUIRE_REAL=1 $(PY) -m pytest -q -p no:cacheprovider $(HOST_TIMING); c=$$?; \
	test $$a -eq 0 && test $$b -eq 0 && test $$c -eq 0

# -e as in setup.sh: a plain install would copy the checkout into .venv, and later edits would
# not reach the mixstyle command until the next make test/setup.
bench: setup
	$(PY) -m pip install -q -e ".[bench]" >/dev/null 2>&1 || echo "bench: matchering not installable, its row is skipped"
	$(PY) bench/run.py $(BENCH)

clean:
	rm -rf demo_out build *.egg-info
