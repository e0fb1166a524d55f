"""The batch contract (docs/DATA.md) checked on the outputs of any input.

A batch either stops with ``InputError`` naming a field and writes no
``summary`` or ``trades``, or answers every input account once.
"""

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from models import InputError
from solver.batch.config import RunConfig
from solver.batch.engine import rebalance_batch
from solver.result import ANSWERED, Status
from tests.solver.bad_tables import writable
from tests.solver.batch_data import AS_OF, save

STATUSES = {str(s) for s in Status}
TRADED = {str(Status.OPTIMAL), str(Status.OPTIMAL_INACCURATE), str(Status.RELAXED)}
CONFIG = RunConfig(as_of=AS_OF)


def run_batch(tables: dict[str, pd.DataFrame], fmt: str) -> pd.DataFrame | InputError:
    """Run a batch on ``tables`` and check the contract.

    Returns the ``InputError`` (it names a field, and no ``summary`` or
    ``trades`` was written) or the summary (every input account once, with a
    consistent answer).
    """
    with tempfile.TemporaryDirectory() as tmp:
        in_dir, out_dir = Path(tmp) / "in", Path(tmp) / "out"
        save(in_dir, {name: writable(t) for name, t in tables.items()}, fmt=fmt)
        error = None
        try:
            report = rebalance_batch(
                in_dir, out_dir, config=CONFIG, workers=1, progress=False
            )
        except InputError as err:
            error = err
        written = [*out_dir.glob("summary.*"), *out_dir.glob("trades.*")]
        if error is not None:
            assert error.field, str(error)
            assert f"field={error.field!r}" in str(error)
            assert not written, (str(error), written)
            return error
        summary = pd.read_parquet(out_dir / "summary.parquet")
        trades = pd.read_parquet(out_dir / "trades.parquet")
    check_summary(summary, trades, input_ids(tables))
    assert len(report.summary) == len(summary)
    assert report.orders == len(trades)
    return summary


def outcome(result: pd.DataFrame | InputError) -> str:
    """Describe a batch outcome for ``hypothesis.event``."""
    if isinstance(result, InputError):
        return "InputError"
    return "returned: " + ", ".join(sorted(set(result["status"])))


def input_ids(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Return the input's account ids, in order, each once."""
    accounts = tables["accounts"]
    if "account_id" not in accounts:
        return []
    return list(dict.fromkeys(accounts["account_id"].astype(str)))


def check_summary(
    summary: pd.DataFrame, trades: pd.DataFrame, account_ids: list[str]
) -> None:
    """Every account once, docs/DATA.md statuses, reasons, and consistent trades."""
    assert list(summary["account_id"]) == account_ids
    assert set(summary["status"]) <= STATUSES
    messages = summary["message"].fillna("").astype(str).str.strip()
    unanswered = ~summary["status"].isin(ANSWERED)
    assert (messages[unanswered] != "").all(), summary[unanswered]
    internal = messages.str.contains("internal error")  # an unforeseen exception
    assert not internal.any(), messages[internal].tolist()
    traded = set(summary.loc[summary["status"].isin(TRADED), "account_id"])
    assert set(trades["account_id"]) <= traded
    check_trades(trades)


def check_trades(trades: pd.DataFrame) -> None:
    """Sides are buy or sell; quantities and prices finite and positive."""
    assert set(trades["side"]) <= {"buy", "sell"}
    for column in ("quantity", "price"):
        values = trades[column].to_numpy(dtype=float)
        assert np.isfinite(values).all(), trades
        assert (values > 0).all(), trades
