"""Every example runs to completion; the bundled data is what its script writes."""

import runpy
from pathlib import Path

import pandas as pd
import pytest

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
GENERATOR = EXAMPLES_DIR / "make_example_data.py"
EXAMPLES = sorted(p for p in EXAMPLES_DIR.glob("*.py") if p != GENERATOR)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path, capsys):
    runpy.run_path(str(path), run_name="__main__")
    assert "status: optimal" in capsys.readouterr().out


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
