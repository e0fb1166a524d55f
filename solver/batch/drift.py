"""``rebalance drift IN_DIR``: where each account stands, and which trigger fires.

Reads the batch tables, builds each account's weights against its model,
and reports its ex-ante tracking error, its largest drifts and the verdict
of the triggers, without solving anything.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from models.errors import InputError
from models.snapshot import build_snapshot
from solver.batch.config import RunConfig
from solver.batch.jobs import job_account, load_batch
from solver.triggers import AnyTrigger, Drift, parse_trigger, solved_whatever_triggers

DEFAULT_TRIGGERS = ("drift:0.05", "relative-drift:0.25")  # the "5/25" rule
DRIFT_COLUMNS = (
    "account_id",
    "status",
    "value",
    "cash",
    "target_cash",
    "tracking_error",
    "max_abs_drift",
    "largest_drifts",
    "fires",
    "reason",
)
WEIGHT_COLUMNS = ("account_id", "asset", "current", "target", "drift")


@dataclass(frozen=True)
class DriftReport:
    """Per-account drift rows, per-asset weights, and the input problems."""

    accounts: pd.DataFrame  # DRIFT_COLUMNS
    weights: pd.DataFrame  # WEIGHT_COLUMNS
    problems: pd.DataFrame
    triggers: tuple[str, ...]


def drift_report(in_dir: Path, config: RunConfig, *, top: int = 3) -> DriftReport:
    """Return the drift of every account of ``in_dir`` under the config's triggers.

    ``status`` is what ``batch`` does with the same triggers: ``trade`` when
    one fires, and for an account with a cash flow or in a household (both
    solved whatever the triggers; ``fires`` still says whether one fires),
    ``no_trade`` otherwise, ``invalid_input`` for accounts whose data cannot
    be used.
    """
    config = config.check().resolved()
    texts = config.triggers or DEFAULT_TRIGGERS
    trigger = AnyTrigger(tuple(parse_trigger(t) for t in texts))
    rows: list[dict[str, object]] = []
    weights: list[pd.DataFrame] = []
    with tempfile.TemporaryDirectory() as work:
        batch = load_batch(in_dir, config, Path(work))
        for aid, message in batch.invalid.items():
            rows.append(_invalid(aid, message))
        for job in batch.account_jobs(skip=set()):
            try:
                account = job_account(job)
                snapshot = build_snapshot(account, job.targets, batch.market)
            except InputError as exc:
                rows.append(_invalid(job.account_id, str(exc)))
                continue
            drift = Drift.of(snapshot, job.last_rebalance)
            row = _row(drift, snapshot.value, trigger, top)
            solved_anyway = solved_whatever_triggers(job.household_id, job.cash_flow)
            if solved_anyway:
                row.update(status="trade", reason=f"{solved_anyway}; {row['reason']}")
            rows.append(row)
            weights.append(_weights(drift))
    order = {aid: k for k, aid in enumerate(batch.account_ids)}
    accounts = pd.DataFrame(rows, columns=list(DRIFT_COLUMNS))
    accounts = accounts.sort_values("account_id", key=lambda s: s.map(order))
    numbers = ["value", "cash", "target_cash", "tracking_error", "max_abs_drift"]
    accounts[numbers] = accounts[numbers].apply(pd.to_numeric)
    table = (
        pd.concat(weights, ignore_index=True)
        if weights
        else pd.DataFrame(columns=list(WEIGHT_COLUMNS))
    )
    return DriftReport(
        accounts.reset_index(drop=True), table, batch.problems, tuple(texts)
    )


def _row(d: Drift, value: float, trigger: AnyTrigger, top: int) -> dict[str, object]:
    """Return one account's drift row."""
    firing = trigger.check(d)
    largest = d.largest(top)
    return {
        "account_id": d.account_id,
        "status": "trade" if firing.fired else "no_trade",
        "value": value,
        "cash": d.cash,
        "target_cash": d.target_cash,
        "tracking_error": d.tracking_error,
        "max_abs_drift": float(abs(largest.iloc[0])) if len(largest) else 0.0,
        "largest_drifts": ", ".join(f"{a} {w:+.2%}" for a, w in largest.items()),
        "fires": firing.fired,
        "reason": firing.reason,
    }


def _weights(d: Drift) -> pd.DataFrame:
    """Return current, target and drift per asset of one account."""
    return pd.DataFrame(
        {
            "account_id": d.account_id,
            "asset": d.universe.astype(str),
            "current": d.current,
            "target": d.target,
            "drift": d.drift,
        }
    )


def _invalid(account_id: str, message: str) -> dict[str, object]:
    """Return the row of an account whose data cannot be used."""
    row: dict[str, object] = dict.fromkeys(DRIFT_COLUMNS)
    row.update(account_id=account_id, status="invalid_input", reason=message)
    return row


def describe(report: DriftReport, top: int = 10) -> str:
    """Return the printed summary: counts and the most drifted accounts."""
    a = report.accounts
    counts = a["status"].value_counts().rename_axis("status").rename("accounts")
    worst = a[a["status"] != "invalid_input"].nlargest(top, "tracking_error")
    shown = worst[["account_id", "status", "tracking_error", "largest_drifts"]]
    return "\n".join(
        [
            f"Triggers: {', '.join(report.triggers)} (any fires)",
            counts.to_string(),
            "",
            f"Largest tracking errors (top {top})",
            shown.to_string(index=False, float_format=lambda x: f"{x:.4f}"),
        ]
    )
