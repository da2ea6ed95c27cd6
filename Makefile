# The two commands of the README: `make demo` and `make test`. Both set everything up first.
PY := .venv/bin/python
.PHONY: setup demo test bench clean

setup:
	bash scripts/setup.sh

demo: setup
	$(PY) -m mixstyle.cli demo --out demo_out

test: setup
	MIXSTYLE_REQUIRE_REAL=1 $(PY) -m pytest -q -p no:cacheprovider tests

bench: setup
	$(PY) -m pip install -q ".[bench]" >/dev/null 2>&1 || echo "bench: matchering not installable, its row is skipped"
	$(PY) bench/run.py $(BENCH)

clean:
	rm -rf demo_out build *.egg-info
