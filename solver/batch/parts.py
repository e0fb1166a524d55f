"""Crash-safe batch output: one committed part per finished chunk, merged at the end.

A finished chunk is written under ``OUT_DIR/.parts`` as ``<id>.trades.parquet``,
``<id>.summary.parquet`` and, last, ``<id>.commit.json`` holding both files'
SHA-256; each file is written atomically. A chunk counts once its commit
record exists and both files match it. When a run opens the store, the files
of uncommitted chunks (a kill in mid-commit) are removed, and a committed
chunk whose files are missing or do not match is discarded with a warning
that names it: its accounts are solved again.

The merge writes the final trades and summary in full under temporary names
and renames trades, then summary. The caller records both, with their
checksums, in the manifest before it removes the parts, so a kill at any
instruction leaves either the parts or final tables the manifest vouches for.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from solver.batch.files import atomic_path, remove_temporary, sha256_of, write_json
from solver.batch.tables import FORMATS, read_path, write_frame, write_table
from solver.result import SUMMARY_FIELDS, TRADE_COLUMNS

logger = logging.getLogger(__name__)
PARTS = ".parts"
DISCARDED = ".parts.old"  # a parts directory being removed
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
FINAL_TABLES = ("summary", "trades")


class PartStore:
    """The committed parts of one output directory, and its earlier final tables.

    Parameters
    ----------
    out_dir : Path
        The output directory; the caller holds its lock.
    finals : dict or None
        The manifest's record of final tables written by an earlier run with
        the same key (``{"summary": {"file", "sha256"}, "trades": ...}``);
        they are reused only if both files still match it.
    """

    def __init__(self, out_dir: Path, finals: dict[str, Any] | None) -> None:
        self.out_dir = out_dir
        self.parts = out_dir / PARTS
        for stale in out_dir.glob(f"{DISCARDED}*"):
            shutil.rmtree(stale)
        remove_temporary(out_dir)
        remove_temporary(self.parts)
        self._chunks = self._committed()
        self._finals = self._trusted(finals)

    def finished(self) -> set[str]:
        """Return the accounts committed in a part or in trusted final tables."""
        done: set[str] = set()
        for _, summary in self._sources():
            done.update(summary["account_id"].astype(str))
        return done

    def write(self, summary: pd.DataFrame, trades: pd.DataFrame) -> None:
        """Commit one finished chunk: its trades, its summary, then the record."""
        chunk = uuid.uuid4().hex
        paths = self._paths(chunk)
        write_table(trades.loc[:, list(TRADE_COLUMNS)], paths["trades"])
        write_table(summary.loc[:, list(SUMMARY_FIELDS)], paths["summary"])
        record = {kind: sha256_of(paths[kind]) for kind in FINAL_TABLES}
        write_json(record, paths["commit"])
        self._chunks.append(chunk)

    def merge(self, fmt: str, order: list[str]) -> tuple[pd.DataFrame, int, list[Path]]:
        """Write the final tables in ``fmt``, each account once.

        The summary is sorted like ``order``; trades are streamed source by
        source, never all in memory. Returns the summary, the trade count
        and the paths of the final summary and trades.
        """
        sources = self._sources()
        seen: set[str] = set()
        keep = []  # per source: the accounts it is first to report
        for _, frame in sources:
            ids = set(frame["account_id"].astype(str)) - seen
            keep.append(ids)
            seen |= ids
        frames = [frame for _, frame in sources]
        summary = (
            pd.concat(frames, ignore_index=True).drop_duplicates("account_id")
            if frames
            else _empty(SUMMARY_FIELDS)
        )
        rank = {aid: i for i, aid in enumerate(order)}
        summary = summary.sort_values(
            "account_id", key=lambda s: s.map(rank), kind="stable"
        ).reset_index(drop=True)
        paths = [self.out_dir / f"{name}.{fmt}" for name in FINAL_TABLES]
        # nested: the inner (trades) is renamed into place first, then summary
        with atomic_path(paths[0]) as summary_tmp, atomic_path(paths[1]) as trades_tmp:
            count = _write_trades([path for path, _ in sources], keep, trades_tmp, fmt)
            write_frame(summary, summary_tmp, fmt)
        for other in FORMATS:
            if other != fmt:
                for name in FINAL_TABLES:
                    (self.out_dir / f"{name}.{other}").unlink(missing_ok=True)
        return summary, count, paths

    def clear(self) -> None:
        """Remove every part: one rename, then the removal of the renamed copy."""
        if self.parts.exists():
            discarded = self.out_dir / f"{DISCARDED}.{uuid.uuid4().hex[:8]}"
            self.parts.rename(discarded)
            shutil.rmtree(discarded)
        self._chunks = []

    def _paths(self, chunk: str) -> dict[str, Path]:
        """Return the three files of a chunk."""
        return {
            "trades": self.parts / f"{chunk}.trades.parquet",
            "summary": self.parts / f"{chunk}.summary.parquet",
            "commit": self.parts / f"{chunk}.commit.json",
        }

    def _committed(self) -> list[str]:
        """Return the intact committed chunks; remove the others' files."""
        chunks = {p.name.split(".")[0] for p in self.parts.glob("*.*")}
        intact = []
        for chunk in sorted(chunks):
            paths = self._paths(chunk)
            if not paths["commit"].exists():  # a kill before the commit record
                for path in paths.values():
                    path.unlink(missing_ok=True)
                continue
            damage = _damage(paths)
            if damage is None:
                intact.append(chunk)
                continue
            logger.warning(
                "discarding part %s: %s; its accounts are solved again",
                paths["commit"],
                damage,
            )
            for path in paths.values():
                path.unlink(missing_ok=True)
        return intact

    def _trusted(self, finals: dict[str, Any] | None) -> dict[str, Path] | None:
        """Return the earlier final tables if both still match the manifest."""
        if not finals:
            return None
        paths = {}
        for name in FINAL_TABLES:
            entry = finals.get(name) or {}
            path = self.out_dir / str(entry.get("file", ""))
            if not path.is_file() or sha256_of(path) != entry.get("sha256"):
                logger.warning(
                    "final %s table of the earlier run is missing or changed; "
                    "its accounts are solved again",
                    name,
                )
                return None
            paths[name] = path
        return paths

    def _sources(self) -> list[tuple[Path, pd.DataFrame]]:
        """Return (trades path, summary) of every committed chunk, then the finals."""
        sources = []
        for chunk in self._chunks:
            paths = self._paths(chunk)
            sources.append((paths["trades"], pd.read_parquet(paths["summary"])))
        if self._finals is not None:
            summary = read_path(self._finals["summary"], "summary")
            sources.append((self._finals["trades"], summary))
        return sources


def _damage(paths: dict[str, Path]) -> str | None:
    """Say what is wrong with a committed chunk, or None when it is intact."""
    try:
        record = json.loads(paths["commit"].read_text())
    except (OSError, ValueError) as exc:
        return f"unreadable commit record ({exc})"
    for kind in FINAL_TABLES:
        if not paths[kind].exists():
            return f"{paths[kind].name} is missing"
        if sha256_of(paths[kind]) != record.get(kind):
            return f"{paths[kind].name} does not match its checksum"
    return None


def _write_trades(
    sources: list[Path], keep: list[set[str]], path: Path, fmt: str
) -> int:
    """Stream each source's trades of its kept accounts into ``path``."""
    count, writer = 0, None
    try:
        for source, accounts in zip(sources, keep, strict=True):
            frame = read_path(source, "trades")
            frame = frame.loc[
                frame["account_id"].astype(str).isin(accounts), list(TRADE_COLUMNS)
            ]
            if fmt == "csv":
                frame.to_csv(path, mode="a", header=count == 0, index=False)
            else:
                table = pa.Table.from_pandas(
                    frame, schema=TRADE_SCHEMA, preserve_index=False
                )
                writer = writer or pq.ParquetWriter(path, TRADE_SCHEMA)
                writer.write_table(table)
            count += len(frame)
        if fmt == "csv" and count == 0:
            _empty(TRADE_COLUMNS).to_csv(path, index=False)
        elif writer is None and fmt != "csv":
            pq.write_table(TRADE_SCHEMA.empty_table(), path)
    finally:
        if writer is not None:
            writer.close()
    return count


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    """Return an empty frame with the given columns."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
