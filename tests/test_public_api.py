"""The import paths the README documents, old and new, keep working."""

import subprocess
import sys

import solver
import solver.backtest
import solver.ledger
import solver.sweep
import solver.triggers
from solver.batch import RunConfig, rebalance_batch
from solver.dynamic import BacktestConfig, Ledger, backtest
from solver.program import sweep


def test_readme_paths_name_the_same_objects():
    assert solver.sweep.sweep is sweep
    assert solver.backtest.backtest is backtest
    assert solver.backtest.BacktestConfig is BacktestConfig
    assert solver.ledger.Ledger is Ledger
    assert solver.rebalance_batch is rebalance_batch
    assert solver.RunConfig is RunConfig
    assert callable(solver.rebalance)
    assert solver.triggers.DriftBands(absolute=0.05).absolute == 0.05


def test_package_exports_resolve():
    import solver.batch
    import solver.dynamic
    import solver.orders
    import solver.program

    for package in (
        solver,
        solver.program,
        solver.orders,
        solver.batch,
        solver.dynamic,
    ):
        for name in package.__all__:
            assert getattr(package, name) is not None, (package.__name__, name)


def test_a_local_models_file_is_named_when_it_hides_the_package(tmp_path):
    (tmp_path / "models.py").write_text("x = 1\n")
    run = subprocess.run(
        [sys.executable, "-c", "import solver"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0
    assert f"'models' resolves to {tmp_path / 'models.py'}" in run.stderr
    assert "rename it" in run.stderr
