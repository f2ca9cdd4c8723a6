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
# For the work inside a load's transaction (the contact lookups' rows, the repeat flags): it runs
# beside the warehouse's memory and the other load lane. Measured when the load still conformed
# every source: with 512 MB, the flags of 20M contacts took a DuckDB load to 1,655 MB, and
# ordering the lookups of 5M contacts a PostgreSQL load to 1,418 MB; with this, 1,377 MB and
# 1,154 MB (see repeats.set_flags for the seconds).
IN_LOAD_MEMORY = "256MB"


@contextmanager
def session(work_dir: Path, memory_limit: str = MEMORY_LIMIT) -> Iterator[sa.Connection]:
    """A fresh in-memory DuckDB spilling into a folder of its own under ``work_dir`` once past
    ``memory_limit``; both gone after."""
    with tempfile.TemporaryDirectory(prefix=".spill-", dir=work_dir) as spill:
        engine = sa.create_engine("duckdb:///:memory:", poolclass=NullPool, connect_args={"config": {
            "memory_limit": memory_limit, "temp_directory": spill}})
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
