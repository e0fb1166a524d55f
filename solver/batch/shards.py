"""The lots table split by account onto disk, so a batch never holds it whole.

Lots are streamed from ``lots.parquet`` (record batches) or ``lots.csv``
(chunks, read as text so that bad values reach validation intact) into one
Arrow IPC file per bucket, the bucket being a stable hash of ``account_id``.
Every account's lots land in one bucket; validation and solving then read
one bucket at a time, which bounds the memory of the batch's parent process.

A shard is this run's scratch, read whole twice (checks, then solving): it
is an uncompressed IPC stream with dictionaries for the repeated
identifiers. Measured on 550,000 lots: written in 42 ms and read back in
14 ms, where Parquet took 60 and 58 ms; three times its size.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from models.errors import InputError
from solver.batch.tables import TEXT_COLUMNS, arrow_table, find_table
from solver.errors import OutputError

ROWS_PER_SHARD = 500_000
READ_ROWS = 1_000_000
CSV_BYTES_PER_ROW = 60  # to size the shards of a CSV before reading it
DICTIONARY_COLUMNS = ("account_id", "asset")  # repeated values; lot ids are not
T = TypeVar("T")
R = TypeVar("R")


def bucket_of(account_ids: pd.Series, buckets: int) -> np.ndarray:
    """Return each account's bucket: a stable hash, the same in every run."""
    hashes = pd.util.hash_array(account_ids.astype(str).to_numpy(dtype=object))
    bucket: np.ndarray = (hashes % np.uint64(buckets)).astype(np.int64)
    return bucket


@dataclass(frozen=True)
class LotShards:
    """Lots split into ``buckets`` Arrow IPC files under ``directory``."""

    directory: Path
    buckets: int
    columns: tuple[str, ...]
    written: frozenset[int]  # the buckets that received lots
    rows: int

    def read(self, bucket: int) -> pd.DataFrame:
        """Return the lots of one bucket (no rows, same columns, when empty).

        Identifiers are text (``split_lots`` cast them); each column comes
        as one piece, which pandas works on faster than many.

        Raises
        ------
        OutputError
            The bucket's file, written by this run, is gone: never read as
            an account without lots.
        """
        path = _shard_path(self.directory, bucket)
        if bucket not in self.written:
            return pd.DataFrame({c: pd.Series(dtype=str) for c in self.columns})
        try:
            with pa.OSFile(str(path)) as source:  # copied: no mapping outlives it
                table = pa.ipc.open_stream(source).read_all()
        except (OSError, pa.ArrowException) as exc:
            raise OutputError(f"cannot read the lot shard {path}: {exc}") from exc
        for i, column in enumerate(table.schema):
            if pa.types.is_dictionary(column.type):  # back to text, as written
                text = table.column(i).cast(column.type.value_type)
                table = table.set_column(i, column.name, text)
        frame: pd.DataFrame = table.combine_chunks().to_pandas()
        return frame

    def __iter__(self) -> Iterator[pd.DataFrame]:
        """Yield the lots bucket by bucket; the next is read while one is used."""
        return _read_ahead(self.read(bucket) for bucket in range(self.buckets))


def split_lots(in_dir: Path, directory: Path) -> LotShards:
    """Stream ``IN_DIR/lots.*`` into buckets under ``directory``.

    Identifier columns are cast to text as ``tables.read_path`` does, so
    an account is hashed by the name its other tables give it.
    """
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
    return _split(chunks, rows, columns, path.name, directory)


def split_frame(lots: pd.DataFrame, directory: Path) -> LotShards:
    """Split a lots DataFrame into buckets under ``directory``, as ``split_lots``.

    The frame is converted as ``tables.read_frame`` converts a table.
    """
    table = arrow_table(lots, "lots")
    return _split(
        _pieces(table), len(lots), tuple(table.column_names), "lots", directory
    )


def _split(
    chunks: Generator[pa.Table, None, None],
    rows: int,
    columns: tuple[str, ...],
    name: str,
    directory: Path,
) -> LotShards:
    """Write ``chunks`` (about ``rows`` lots in all) into buckets by account."""
    buckets = max(1, math.ceil(rows / ROWS_PER_SHARD))
    total = 0
    directory.mkdir(parents=True, exist_ok=True)
    writers: dict[int, _Shard] = {}
    pieces = _read_ahead(chunks)
    try:
        for chunk in pieces:
            columns = tuple(chunk.column_names)
            if "account_id" not in chunk.column_names:
                raise InputError("missing column in table 'lots'", field="account_id")
            text = _encoded(_as_text(chunk, name))
            total += text.num_rows
            where = _buckets(text.column("account_id"), buckets)
            for bucket in map(int, np.flatnonzero(np.bincount(where))):
                part = text.take(pa.array(np.flatnonzero(where == bucket)))
                if bucket not in writers:
                    writers[bucket] = _Shard(_shard_path(directory, bucket), part)
                writers[bucket].write(part)
    finally:
        pieces.close()  # waits for a read in flight
        chunks.close()  # closes the file when a bad chunk stops the split
        for writer in writers.values():
            writer.close()
    return LotShards(directory, buckets, columns, frozenset(writers), total)


def _pieces(table: pa.Table) -> Generator[pa.Table, None, None]:
    """Yield a table in pieces of at most ``READ_ROWS`` rows."""
    for start in range(0, max(table.num_rows, 1), READ_ROWS):
        yield table.slice(start, READ_ROWS)


def _as_text(chunk: pa.Table, name: str) -> pa.Table:
    """Cast the identifier columns to text (nulls stay null), as tables do."""
    for i, column in enumerate(chunk.column_names):
        if column in TEXT_COLUMNS:
            try:
                text = chunk.column(i).cast(pa.string())
            except pa.ArrowException as exc:  # e.g. a nested type
                raise InputError(
                    f"cannot read {name}: column {column!r} is not text: {exc}",
                    field="lots",
                ) from exc
            chunk = chunk.set_column(i, column, text)
    return chunk


def _buckets(account_ids: pa.ChunkedArray, buckets: int) -> np.ndarray:
    """Return each row's bucket, hashing each distinct account once.

    ``account_ids`` is dictionary-encoded (``_encoded``). A row without an
    account (reported by validation, which stops the batch) goes to
    bucket 0.
    """
    encoded = account_ids.combine_chunks()
    names = encoded.dictionary.to_pandas()
    per_name = np.append(bucket_of(names, buckets), 0)
    rows = encoded.indices.fill_null(len(names)).to_numpy(zero_copy_only=False)
    where: np.ndarray = per_name[rows]
    return where


def _shard_path(directory: Path, bucket: int) -> Path:
    """Return the file of one bucket's lots."""
    return directory / f"{bucket}.arrow"


def _encoded(chunk: pa.Table) -> pa.Table:
    """Dictionary-encode the columns whose values repeat (accounts, assets).

    Once per chunk: its parts keep the chunk's dictionaries.
    """
    for i, column in enumerate(chunk.column_names):
        if column in DICTIONARY_COLUMNS:
            encoded = pc.dictionary_encode(chunk.column(i).combine_chunks())
            chunk = chunk.set_column(i, column, encoded)
    return chunk


class _Shard:
    """One bucket's IPC stream, open for writing.

    Each part carries its own dictionaries, which the stream format (unlike
    the file format) allows to replace the last.
    """

    def __init__(self, path: Path, first: pa.Table) -> None:
        self.sink = pa.OSFile(str(path), "wb")
        self.writer = pa.ipc.new_stream(self.sink, first.schema)

    def write(self, part: pa.Table) -> None:
        """Append a part of the bucket."""
        self.writer.write_table(part)

    def close(self) -> None:
        """Finish the stream and close the file."""
        self.writer.close()
        self.sink.close()


def _read_ahead(items: Iterator[T]) -> Generator[T, None, None]:
    """Yield ``items``; a thread fetches the next while the caller uses one.

    Reading and decoding Parquet release the GIL, so on a spare core the
    next piece is ready when the caller asks for it.
    """
    with ThreadPoolExecutor(max_workers=1) as reader:
        ahead = reader.submit(next, items)
        while True:
            try:
                item = ahead.result()
            except StopIteration:
                return
            ahead = reader.submit(next, items)
            yield item


def map_ahead(
    function: Callable[[T], R], items: Iterator[T], workers: int
) -> Generator[R, None, None]:
    """Yield ``function(item)`` for each item, in order, ``workers`` at a time.

    For work that releases the GIL (Arrow and pandas kernels): on a machine
    with spare cores the pieces are checked side by side, and at most
    ``workers`` of them are held at once.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


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
