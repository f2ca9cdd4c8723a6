"""An in-process DuckDB for the work between conform and load: repeat flags, lake files.

It runs beside whichever warehouse the job loads (DuckDB or PostgreSQL) and reads the
run's parquet spools in place. Its memory is bounded (below the warehouse's) and it spills
into the folder it is given, so a large day costs disk, not RAM.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

# Beside the warehouse's own (DuckDB: 512 MB) and the conform's frames, in the same process.
MEMORY_LIMIT = "512MB"


@contextmanager
def session(work_dir: Path, memory_limit: str | None = None) -> Iterator[sa.Connection]:
    """A fresh in-memory DuckDB spilling into a folder of its own under ``work_dir``; both gone after.
    Its memory bound is ``MEMORY_LIMIT`` unless given."""
    with tempfile.TemporaryDirectory(prefix=".spill-", dir=work_dir) as spill:
        engine = sa.create_engine("duckdb:///:memory:", poolclass=NullPool, connect_args={"config": {
            "memory_limit": memory_limit or MEMORY_LIMIT, "temp_directory": spill}})
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()


ROW_NUMBER = "file_row_number"  # DuckDB's name for a row's number within its parquet file


def parquet(path: Path, names: Sequence[str], alias: str, numbered: bool = False) -> sa.TableValuedAlias:
    """A parquet file as a relation of the given columns (and ``ROW_NUMBER``, if numbered)."""
    if not numbered:
        return sa.func.read_parquet(str(path)).table_valued(*names).alias(alias)
    return sa.func.read_parquet(str(path), sa.literal_column(f"{ROW_NUMBER} = true")).table_valued(
        *names, ROW_NUMBER).alias(alias)
