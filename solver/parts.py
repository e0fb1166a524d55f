"""Crash-safe batch output: one part per finished chunk, merged at the end.

Each finished chunk is written as ``<id>.trades.parquet`` then
``<id>.summary.parquet`` under ``OUT_DIR/.parts``, each file atomically. An
account counts as finished once its summary part exists, so a kill at any
moment loses at most the chunks in flight, and a trades part without its
summary part is ignored. The final ``trades`` and ``summary`` tables are
written atomically from all parts, each account once, before the parts are
removed.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pandas as pd

from solver.result import SUMMARY_FIELDS, TRADE_COLUMNS
from solver.tables import FORMATS, write_table

PARTS = ".parts"


class PartStore:
    """The parts of one output directory."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.parts = out_dir / PARTS

    def finished(self) -> set[str]:
        """Return the accounts already in a summary part or a final summary."""
        done: set[str] = set()
        for frame in self._summaries():
            done.update(frame["account_id"].astype(str))
        return done

    def write(self, summary: pd.DataFrame, trades: pd.DataFrame) -> None:
        """Store one finished chunk: trades first, then the summary that commits it."""
        chunk = uuid.uuid4().hex
        write_table(
            trades.loc[:, list(TRADE_COLUMNS)], self.parts / f"{chunk}.trades.parquet"
        )
        write_table(
            summary.loc[:, list(SUMMARY_FIELDS)],
            self.parts / f"{chunk}.summary.parquet",
        )

    def merge(self, fmt: str, order: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Write the final tables in ``fmt`` (accounts in ``order``); drop the parts."""
        summaries = self._summaries()
        trades = self._trades()
        summary = (
            pd.concat(summaries, ignore_index=True)
            if summaries
            else _empty(SUMMARY_FIELDS)
        )
        summary = summary.drop_duplicates("account_id", keep="first")
        rank = {aid: i for i, aid in enumerate(order)}
        summary = summary.sort_values(
            "account_id", key=lambda s: s.map(rank), kind="stable"
        )
        all_trades = (
            pd.concat(trades, ignore_index=True) if trades else _empty(TRADE_COLUMNS)
        )
        all_trades = all_trades.drop_duplicates().sort_values(
            "account_id", key=lambda s: s.map(rank), kind="stable"
        )
        for other in FORMATS:
            if other != fmt:
                for name in ("trades", "summary"):
                    (self.out_dir / f"{name}.{other}").unlink(missing_ok=True)
        write_table(all_trades.reset_index(drop=True), self.out_dir / f"trades.{fmt}")
        write_table(summary.reset_index(drop=True), self.out_dir / f"summary.{fmt}")
        shutil.rmtree(self.parts, ignore_errors=True)
        return summary.reset_index(drop=True), all_trades.reset_index(drop=True)

    def _summaries(self) -> list[pd.DataFrame]:
        """Read the committed summary parts and any earlier final summary."""
        frames = [
            pd.read_parquet(p) for p in sorted(self.parts.glob("*.summary.parquet"))
        ]
        return frames + self._final("summary")

    def _trades(self) -> list[pd.DataFrame]:
        """Read the trades parts whose chunk committed, and any earlier final trades."""
        frames = []
        for summary in sorted(self.parts.glob("*.summary.parquet")):
            chunk = summary.name.removesuffix(".summary.parquet")
            frames.append(pd.read_parquet(self.parts / f"{chunk}.trades.parquet"))
        return frames + self._final("trades")

    def _final(self, name: str) -> list[pd.DataFrame]:
        """Read a final table left by an earlier, completed run."""
        out = []
        for fmt in FORMATS:
            path = self.out_dir / f"{name}.{fmt}"
            if path.exists():
                out.append(
                    pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
                )
        return out


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    """Return an empty frame with the given columns."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
