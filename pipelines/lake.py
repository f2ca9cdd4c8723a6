"""The parquet lake: one file per table partition, replaced atomically.

Writing goes to a temporary file in the same folder and is moved into place with
``os.replace``, so a reader sees the old partition or the new one, never half of
either; writing the same rows twice gives the same file contents.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.contracts import SAFE_NAME

PART_FILE = "part.parquet"
# How partitions are written: zstd, and Arrow's column statistics, which BI tools' filters use.
WRITE_OPTIONS = {"compression": "zstd"}


def partition_path(lake_dir: Path, table: str, key: str, value: date | str) -> Path:
    if not SAFE_NAME.match(table) or not SAFE_NAME.match(key):
        raise ValueError(f"unsafe lake table or partition name: {table!r}/{key!r}")
    text = value.isoformat() if isinstance(value, date) else str(value)
    if not text or any(c in text for c in "/\\\x00") or text.startswith(".") or ".." in text:
        raise ValueError(f"unsafe partition value {text!r}")
    return Path(lake_dir) / table / f"{key}={text}" / PART_FILE


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary name beside ``path`` to write, moved onto ``path`` if the block ends without
    error: a reader finds the old file or the new one, never part of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_partition(path: Path, table: pa.Table) -> Path:
    """Replace one partition file atomically."""
    with replacing(path) as tmp:
        pq.write_table(table, tmp, **WRITE_OPTIONS)
    return path


def write_partition_batches(path: Path, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Path:
    """Replace one partition file atomically with rows streamed in batches (memory: one batch)."""
    with replacing(path) as tmp, pq.ParquetWriter(tmp, schema, **WRITE_OPTIONS) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return path


def place_partition(path: Path, written: Path) -> Path:
    """Replace one partition atomically with a file already written as partitions are
    (``WRITE_OPTIONS``): a hard link to it where the file system allows, else a copy. The
    file's own name may then be deleted, never written in place: it is the partition."""
    with replacing(path) as tmp:
        try:
            os.link(written, tmp)
        except OSError:
            shutil.copyfile(written, tmp)
    return path


def read_partition(path: Path) -> pa.Table | None:
    return pq.read_table(path) if path.exists() else None


def table_path(lake_dir: Path, table: str) -> Path:
    if not SAFE_NAME.match(table):
        raise ValueError(f"unsafe lake table name: {table!r}")
    return Path(lake_dir) / table
