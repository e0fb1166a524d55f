"""The lots table split by account onto disk, so a batch never holds it whole.

Lots are streamed from ``lots.parquet`` (record batches) or ``lots.csv``
(chunks, read as text so that bad values reach validation intact) into one
Parquet file per bucket, the bucket being a stable hash of ``account_id``.
Every account's lots land in one bucket; validation and solving then read
one bucket at a time, which bounds the memory of the batch's parent process.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from models.errors import InputError
from solver.batch.tables import find_table, read_path
from solver.errors import OutputError

ROWS_PER_SHARD = 500_000
READ_ROWS = 1_000_000
CSV_BYTES_PER_ROW = 60  # to size the shards of a CSV before reading it


def bucket_of(account_ids: pd.Series, buckets: int) -> np.ndarray:
    """Return each account's bucket: a stable hash, the same in every run."""
    hashes = pd.util.hash_array(account_ids.astype(str).to_numpy(dtype=object))
    bucket: np.ndarray = (hashes % np.uint64(buckets)).astype(np.int64)
    return bucket


@dataclass(frozen=True)
class LotShards:
    """Lots split into ``buckets`` Parquet files under ``directory``."""

    directory: Path
    buckets: int
    columns: tuple[str, ...]
    written: frozenset[int]  # the buckets that received lots
    rows: int

    def read(self, bucket: int) -> pd.DataFrame:
        """Return the lots of one bucket (no rows, same columns, when empty).

        Raises
        ------
        OutputError
            The bucket's file, written by this run, is gone: never read as
            an account without lots.
        """
        path = self.directory / f"{bucket}.parquet"
        if bucket not in self.written:
            return pd.DataFrame({c: pd.Series(dtype=str) for c in self.columns})
        try:
            frame = read_path(path, "lots")  # identifiers as text
        except InputError as exc:
            raise OutputError(f"cannot read the lot shard {path}: {exc}") from exc
        return frame

    def __iter__(self) -> Iterator[pd.DataFrame]:
        """Yield the lots bucket by bucket."""
        for bucket in range(self.buckets):
            yield self.read(bucket)


def split_lots(
    in_dir: Path, directory: Path, *, rows_per_shard: int = ROWS_PER_SHARD
) -> LotShards:
    """Stream ``IN_DIR/lots.*`` into buckets under ``directory``."""
    path = find_table(in_dir, "lots", required=True)
    columns: tuple[str, ...] = ()  # a CSV's are read from its first chunk
    if path.suffix == ".parquet":
        try:
            with pq.ParquetFile(path) as file:
                rows = file.metadata.num_rows
                columns = tuple(file.schema_arrow.names)  # known even without rows
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read {path.name}: {exc}", field="lots") from exc
        chunks = _parquet_chunks(path)
    else:
        rows = path.stat().st_size // CSV_BYTES_PER_ROW
        chunks = _csv_chunks(path)
    buckets = max(1, math.ceil(rows / ROWS_PER_SHARD))
    total = 0
    directory.mkdir(parents=True, exist_ok=True)
    writers: dict[int, pq.ParquetWriter] = {}
    try:
        for chunk in chunks:
            columns = tuple(chunk.column_names)
            if "account_id" not in chunk.column_names:
                raise InputError("missing column in table 'lots'", field="account_id")
            total += chunk.num_rows
            ids = chunk.column("account_id").to_pandas()
            where = bucket_of(ids, buckets)
            for bucket in np.unique(where):
                part = chunk.take(pa.array(np.flatnonzero(where == bucket)))
                if bucket not in writers:
                    path = directory / f"{bucket}.parquet"
                    writers[bucket] = pq.ParquetWriter(path, part.schema)
                writers[bucket].write_table(part)
    finally:
        chunks.close()  # closes the file when a bad chunk stops the split
        for writer in writers.values():
            writer.close()
    return LotShards(
        directory, buckets, columns, frozenset(int(b) for b in writers), total
    )


def _parquet_chunks(path: Path) -> Generator[pa.Table, None, None]:
    """Yield the file's rows in tables of at most ``READ_ROWS``."""
    with pq.ParquetFile(path) as file:
        for batch in file.iter_batches(batch_size=READ_ROWS):
            yield pa.Table.from_batches([batch])


def _csv_chunks(path: Path) -> Generator[pa.Table, None, None]:
    """Yield the file's rows as text columns, ``READ_ROWS`` at a time."""
    try:
        with pd.read_csv(
            path, dtype=str, chunksize=READ_ROWS, keep_default_na=False
        ) as reader:
            for frame in reader:
                yield pa.Table.from_pandas(frame, preserve_index=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path.name}: {exc}", field="lots") from exc
