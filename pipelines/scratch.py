"""An in-process DuckDB for the work between conform and load: flags, ordering, lake files.

It runs beside whichever warehouse the job loads (DuckDB or PostgreSQL) and reads the
run's parquet spools in place. Its memory is bounded like the warehouse's and it spills
into the folder it is given, so a large day costs disk, not RAM.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pipelines.warehouse import DUCKDB_MEMORY_LIMIT


@contextmanager
def session(work_dir: Path) -> Iterator[sa.Connection]:
    """A fresh in-memory DuckDB spilling into a folder of its own under ``work_dir``; both gone after."""
    with tempfile.TemporaryDirectory(prefix=".spill-", dir=work_dir) as spill:
        engine = sa.create_engine("duckdb:///:memory:", poolclass=NullPool, connect_args={"config": {
            "memory_limit": DUCKDB_MEMORY_LIMIT, "temp_directory": spill}})
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()


def parquet(path: Path, names: Sequence[str], alias: str) -> sa.TableValuedAlias:
    """A parquet file as a relation of the given columns."""
    return sa.func.read_parquet(str(path)).table_valued(*names).alias(alias)


def copy_to_parquet(conn: sa.Connection, query: sa.Select, out: Path) -> int:
    """Write the query's rows to a zstd parquet file with DuckDB's own (parallel) writer."""
    sql = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    target = sa.literal(str(out)).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    return conn.exec_driver_sql(f"COPY ({sql}) TO {target} (FORMAT parquet, COMPRESSION zstd)").scalar_one()
