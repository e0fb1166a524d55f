# Two entry points: `make example` (main job on bundled data) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: example test lint bench evidence clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# exit status 1 is expected: the example data has two accounts with bad data
example: $(STAMP)
	$(BIN)/rebalance batch examples/data --out out/example --restart; \
	code=$$?; [ $$code -le 1 ] || exit $$code

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider tests notebooks --nbmake --nbmake-timeout=300

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/bench_rebalance.py
	$(BIN)/python benchmarks/bench_orders.py
	$(BIN)/python benchmarks/bench_rounding_peers.py
	$(BIN)/python benchmarks/bench_sides.py
	$(BIN)/python benchmarks/bench_account.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_backtest_speed.py --before 772a156 --optimizer

# about 14 minutes: every policy on 18 years of real prices, figures in benchmarks/figures
evidence: $(STAMP)
	$(BIN)/python benchmarks/bench_backtest.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
