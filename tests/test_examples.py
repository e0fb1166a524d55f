"""Every example runs to completion and prints what it is there to show.

The bundled data is what its script writes.
"""

import runpy
from pathlib import Path

import pandas as pd
import pytest

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
GENERATOR = EXAMPLES_DIR / "make_example_data.py"
EXAMPLES = sorted(p for p in EXAMPLES_DIR.glob("*.py") if p != GENERATOR)

# lines each example must print; every example has an entry
EXPECTED = {
    "quickstart.py": ["status: optimal"],
    "pipeline.py": [
        "status: optimal",
        "binding: max_turnover",
        "With 5% drift bands -> status: optimal",
        "With 10% drift bands -> status: no_trade",
        "every asset within its band",
    ],
    "batch_run.py": [
        "20 accounts,",
        "optimal: 18",
        "invalid_input: 2",
        "ACC0011 invalid_input",
        "ACC0013 invalid_input",
    ],
    "dask_cluster.py": [
        "summary matches the local run",
        "trades match the local run",
        "invalid_input: 2",
    ],
}


def test_every_example_has_expected_output():
    assert sorted(EXPECTED) == sorted(p.name for p in EXAMPLES)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_prints_its_results(path, capsys):
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    missing = [line for line in EXPECTED.get(path.name, ()) if line not in out]
    assert not missing, f"{path.name} did not print {missing}:\n{out}"


def test_bundled_example_data_is_reproduced_by_its_script(tmp_path):
    runpy.run_path(str(GENERATOR))["main"](tmp_path)
    bundled = EXAMPLES_DIR / "data"
    names = sorted(p.name for p in bundled.iterdir())
    assert names == sorted(p.name for p in tmp_path.iterdir())
    for name in names:
        if name.endswith(".parquet"):
            pd.testing.assert_frame_equal(
                pd.read_parquet(tmp_path / name), pd.read_parquet(bundled / name)
            )
        else:
            assert (tmp_path / name).read_text() == (bundled / name).read_text()
