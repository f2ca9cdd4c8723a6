"""The SQL warehouse behind one SQLAlchemy URL (DuckDB by default, PostgreSQL in production).

Rows arrive as Arrow tables and are bulk-loaded through the dialect's native path
(DuckDB registers the Arrow table and runs ``INSERT ... SELECT``), never row by row.
Every replace of a partition runs in the caller's transaction, so a failure leaves
the previous state.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from functools import cache

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from pipelines.model import metadata

_ARROW_TYPES: dict[type, pa.DataType] = {
    sa.String: pa.string(),
    sa.Integer: pa.int64(),
    sa.Float: pa.float64(),
    sa.Boolean: pa.bool_(),
    sa.Date: pa.date32(),
    sa.DateTime: pa.timestamp("us", tz="UTC"),
}


@cache
def engine_for(url: str) -> sa.Engine:
    return sa.create_engine(url)


def ensure_schema(engine: sa.Engine) -> None:
    """Create missing tables (idempotent)."""
    metadata.create_all(engine, checkfirst=True)


def arrow_schema(table: sa.Table) -> pa.Schema:
    fields = []
    for column in table.columns:
        arrow_type = next(t for k, t in _ARROW_TYPES.items() if isinstance(column.type, k))
        fields.append(pa.field(column.name, arrow_type))
    return pa.schema(fields)


def to_arrow(frame: pd.DataFrame, table: sa.Table) -> pa.Table:
    """The frame with exactly the table's columns and types (a missing column is an error)."""
    schema = arrow_schema(table)
    missing = [f.name for f in schema if f.name not in frame.columns]
    if missing:
        raise ValueError(f"{table.name}: rows lack columns {missing}")
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


@contextmanager
def staged(conn: sa.Connection, rows: pa.Table) -> Iterator[sa.TableClause]:
    """Make an Arrow table readable as a relation inside this connection's transaction."""
    name = f"incoming_{uuid.uuid4().hex[:12]}"
    relation = sa.table(name, *[sa.column(n) for n in rows.schema.names])
    if conn.dialect.name == "duckdb":
        raw = conn.connection.driver_connection
        raw.register(name, rows)
        try:
            yield relation
        finally:
            raw.unregister(name)
        return
    # other dialects: a temporary table filled in bulk
    temp = sa.Table(name, sa.MetaData(), *[
        sa.Column(f.name, _sa_type(f.type)) for f in rows.schema], prefixes=["TEMPORARY"])
    temp.create(conn)
    if rows.num_rows:
        conn.execute(temp.insert(), rows.to_pylist())
    try:
        yield relation
    finally:
        temp.drop(conn)


def _sa_type(arrow_type: pa.DataType) -> sa.types.TypeEngine:
    for sa_type, known in _ARROW_TYPES.items():
        if arrow_type.equals(known):
            return sa_type(timezone=True) if sa_type is sa.DateTime else sa_type()
    raise TypeError(f"no SQL type for {arrow_type}")


def replace_where(conn: sa.Connection, table: sa.Table, where: sa.ColumnElement[bool],
                  rows: pa.Table) -> int:
    """Delete what ``where`` selects and insert ``rows`` in its place, in the open transaction."""
    conn.execute(sa.delete(table).where(where))
    return insert_rows(conn, table, rows)


def insert_rows(conn: sa.Connection, table: sa.Table, rows: pa.Table) -> int:
    if not rows.num_rows:
        return 0
    with staged(conn, rows) as incoming:
        names = rows.schema.names
        conn.execute(sa.insert(table).from_select(names, sa.select(*[incoming.c[n] for n in names])))
    return rows.num_rows


def upsert_newer(conn: sa.Connection, table: sa.Table, rows: pa.Table, key: str, version: str) -> int:
    """Insert new keys and replace existing ones whose stored version is not newer.

    Re-running an older day after a newer one therefore changes nothing.
    """
    if not rows.num_rows:
        return 0
    with staged(conn, rows) as incoming:
        newer = sa.select(incoming.c[key]).where(
            incoming.c[key] == table.c[key], incoming.c[version] >= table.c[version])
        conn.execute(sa.delete(table).where(sa.exists(newer)))
        names = rows.schema.names
        not_there = ~sa.exists(sa.select(table.c[key]).where(table.c[key] == incoming.c[key]))
        result = conn.execute(sa.insert(table).from_select(
            names, sa.select(*[incoming.c[n] for n in names]).where(not_there)))
    return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else rows.num_rows


def in_days(column: sa.ColumnElement, days: Iterable[date]) -> sa.ColumnElement[bool]:
    return column.in_(list(days))
