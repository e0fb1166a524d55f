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

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from solver.result import SUMMARY_FIELDS, TRADE_COLUMNS
from solver.tables import FORMATS, read_table, write_table

PARTS = ".parts"
NUMERIC_TRADE_COLUMNS = (
    "quantity",
    "price",
    "value",
    "realized_gain",
    "est_tax",
    "est_cost",
)
TEXT, NUMBER = pa.large_string(), pa.float64()
TRADE_SCHEMA = pa.schema(
    [(c, NUMBER if c in NUMERIC_TRADE_COLUMNS else TEXT) for c in TRADE_COLUMNS]
)


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

    def merge(self, fmt: str, order: list[str]) -> tuple[pd.DataFrame, int]:
        """Write the final tables in ``fmt``; drop the parts.

        The summary is sorted like ``order``; trades are streamed part by
        part, never all in memory. Returns the summary and the trade count.
        """
        parts = sorted(self.parts.glob("*.summary.parquet"))
        # final trades count only with the final summary, written after them
        earlier = {"summary": self._final("summary"), "trades": []}
        if earlier["summary"]:
            earlier["trades"] = self._final("trades")
        summaries = [pd.read_parquet(p) for p in parts] + earlier["summary"]
        seen: set[str] = set()
        keep = []  # per source: the accounts it is first to report
        for frame in summaries:
            ids = set(frame["account_id"].astype(str)) - seen
            keep.append(ids)
            seen |= ids
        summary = (
            pd.concat(summaries, ignore_index=True).drop_duplicates("account_id")
            if summaries
            else _empty(SUMMARY_FIELDS)
        )
        rank = {aid: i for i, aid in enumerate(order)}
        summary = summary.sort_values(
            "account_id", key=lambda s: s.map(rank), kind="stable"
        )
        sources = [self.parts / p.name.replace(".summary.", ".trades.") for p in parts]
        count = self._write_trades(
            [*sources, *earlier["trades"]], keep, self.out_dir / f"trades.{fmt}"
        )
        for other in FORMATS:
            if other != fmt:
                for name in ("trades", "summary"):
                    (self.out_dir / f"{name}.{other}").unlink(missing_ok=True)
        write_table(summary.reset_index(drop=True), self.out_dir / f"summary.{fmt}")
        shutil.rmtree(self.parts, ignore_errors=True)
        return summary.reset_index(drop=True), count

    def _write_trades(
        self, sources: list[Path | pd.DataFrame], keep: list[set[str]], path: Path
    ) -> int:
        """Stream each source's trades of its kept accounts into ``path``."""
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        os.close(fd)
        count, writer = 0, None
        try:
            for source, accounts in zip(sources, keep, strict=True):
                frame = pd.read_parquet(source) if isinstance(source, Path) else source
                frame = frame.loc[
                    frame["account_id"].astype(str).isin(accounts), list(TRADE_COLUMNS)
                ]
                table = pa.Table.from_pandas(
                    frame, schema=TRADE_SCHEMA, preserve_index=False
                )
                if path.suffix == ".csv":
                    frame.to_csv(tmp, mode="a", header=count == 0, index=False)
                else:
                    writer = writer or pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table)
                count += len(frame)
            if writer is None and path.suffix != ".csv":
                pq.write_table(TRADE_SCHEMA.empty_table(), tmp)
            elif path.suffix == ".csv" and count == 0:
                _empty(TRADE_COLUMNS).to_csv(tmp, index=False)
        finally:
            if writer is not None:
                writer.close()
        os.replace(tmp, path)
        return count

    def _summaries(self) -> list[pd.DataFrame]:
        """Read the committed summary parts and any earlier final summary."""
        frames = [
            pd.read_parquet(p) for p in sorted(self.parts.glob("*.summary.parquet"))
        ]
        return frames + self._final("summary")

    def _final(self, name: str) -> list[pd.DataFrame]:
        """Read a final table left by an earlier, completed run."""
        frame = read_table(self.out_dir, name, required=False)
        return [] if frame is None else [frame]


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    """Return an empty frame with the given columns."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
