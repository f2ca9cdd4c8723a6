"""The SQL warehouse behind one SQLAlchemy URL (DuckDB by default, PostgreSQL in production).

Rows arrive as Arrow tables and are bulk-loaded through the dialect's native path, never
row by row: DuckDB registers the Arrow table and runs ``INSERT ... SELECT``; PostgreSQL
streams it with ``COPY ... FROM STDIN (FORMAT binary)`` (psycopg 3), encoded from Arrow by
pgpq, straight into the target table or into a temporary table when the rows must be
joined first (upserts, lookups). Every replace of a partition runs in the caller's
transaction, so a failure (or a killed process) leaves the previous state.
"""

from __future__ import annotations

import itertools
import logging
import tempfile
import uuid
from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from functools import cache
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import sqlalchemy as sa
from pgpq import ArrowToPostgresBinaryEncoder
from sqlalchemy.schema import CreateTableAs, CreateView

from pipelines import bi, schema_evolution, scratch
from pipelines.model import BRIN_DAY_INDEXES, CONTACT_DERIVED, CONTACT_LOOKUPS, fact_contact, metadata
from pipelines.settings import REPO_ROOT

log = logging.getLogger(__name__)

SUPPORTED_DIALECTS = ("duckdb", "postgresql")
# Rows per chunk streamed into COPY: bounds memory whatever the size of the load.
COPY_CHUNK_ROWS = 100_000


class UnsupportedWarehouse(ValueError):
    """The warehouse URL names a database xoflow cannot bulk-load."""


# In SQLAlchemy's order of subclasses first; an Arrow type maps back to the first it meets.
_ARROW_TYPES: dict[type, pa.DataType] = {
    sa.String: pa.string(),
    sa.BigInteger: pa.int64(),  # and so int64 rows get a BIGINT temporary table
    sa.Integer: pa.int64(),
    sa.Float: pa.float64(),
    sa.Boolean: pa.bool_(),
    sa.Date: pa.date32(),
    sa.DateTime: pa.timestamp("us", tz="UTC"),
}


@cache
def engine_for(url: str) -> sa.Engine:
    """One engine per URL and process; PostgreSQL sessions run in UTC."""
    engine = sa.create_engine(url)
    require_supported(engine)
    if engine.dialect.name == "postgresql":
        sa.event.listen(engine, "connect", _session_in_utc)
    if engine.dialect.name == "duckdb":
        sa.event.listen(engine, "connect", _bounded_duckdb_memory)
    return engine


# DuckDB takes up to 80% of the machine's memory by default and keeps what it took: a night's
# 5M contacts grew the load process to 2.6 GB. Bounded, it spills to disk instead.
DUCKDB_MEMORY_LIMIT = "512MB"


def _bounded_duckdb_memory(dbapi_connection, _record) -> None:
    dbapi_connection.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
    # Tables have no order; keeping a bulk insert's order buffers it across threads.
    dbapi_connection.execute("SET preserve_insertion_order = false")


def _session_in_utc(dbapi_connection, _record) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
    dbapi_connection.commit()


def require_supported(bind: sa.Engine | sa.Connection) -> None:
    """Fail early, with the fix, on a database the bulk-load paths do not cover."""
    dialect = bind.dialect
    if dialect.name not in SUPPORTED_DIALECTS:
        raise UnsupportedWarehouse(
            f"warehouse dialect {dialect.name!r} is not supported: xoflow bulk-loads DuckDB (Arrow) and "
            f"PostgreSQL (COPY); set XOFLOW_WAREHOUSE_URL to duckdb:///<file> or "
            f"postgresql+psycopg://<user>@<host>/<db>")
    if dialect.name == "postgresql" and dialect.driver != "psycopg":
        raise UnsupportedWarehouse(
            f"PostgreSQL driver {dialect.driver!r} is not supported: bulk loads use psycopg 3's COPY; "
            f"use a postgresql+psycopg:// URL")


def ensure_schema(engine: sa.Engine, *, per_source: Collection[str] = (),
                  sql_dir: Path = REPO_ROOT / "warehouse", bi_layer: bool = True) -> None:
    """Create missing tables, add newly declared columns, keep the BI views and role grants in place.

    Idempotent; the nightly job calls it before loading (``bi_layer=False``: the views
    wait for the marts) and before the marts. Drift that cannot be applied (a changed
    type, a removed column) raises ``SchemaDrift``, except for the tables named in
    ``per_source``: their loads check them, so that only the source that loads such a
    table stops.
    """
    require_supported(engine)
    existed = set(sa.inspect(engine).get_table_names())
    tables = stored_tables(engine.dialect.name)
    metadata.create_all(engine, tables=tables, checkfirst=True)
    with engine.begin() as conn:
        _ensure_contact_derived(conn, tables, existed)
        live = schema_evolution.live_schema(conn, tables)
        for table in tables:
            evolution = schema_evolution.evolve(conn, table, strict=table.name not in per_source,
                                                live=live[table.name])
            if evolution.added:
                log.info("%s: added columns %s", table.name, evolution.added)
        if bi_layer:
            bi.ensure_bi_layer(conn, Path(sql_dir))


def stored_tables(dialect: str) -> list[sa.Table]:
    """The model's tables a warehouse of ``dialect`` stores. DuckDB reads the contact lookups
    as views of fact_contact: they exist for PostgreSQL's B-trees (model.CONTACT_LOOKUPS), and
    DuckDB, which keeps none, would only copy the night's contacts again (4 s at 5M)."""
    return [t for t in metadata.sorted_tables if not (dialect == "duckdb" and t in CONTACT_LOOKUPS)]


def _ensure_contact_derived(conn: sa.Connection, stored: list[sa.Table], existed: set[str]) -> None:
    """Each table derived from fact_contact (model.CONTACT_DERIVED) that a warehouse does not
    store is a view of fact_contact. One it stores that is new to a warehouse already holding
    fact_contact starts with its rows; from then on the contact loads keep it."""
    for table, rows in CONTACT_DERIVED.items():
        if table not in stored:
            conn.execute(CreateView(rows(fact_contact).order_by(None), table.name, or_replace=True))
        elif table.name not in existed and fact_contact.name in existed:
            columns = [c.name for c in table.columns]
            filled = conn.execute(sa.insert(table).from_select(columns, rows(fact_contact))
                                  .execution_options(preserve_rowcount=True)).rowcount
            log.info("%s: new, filled with %s rows from fact_contact", table.name, filled)


def arrow_schema(table: sa.Table) -> pa.Schema:
    fields = []
    for column in table.columns:
        fields.append(pa.field(column.name, _arrow_type(column.type)))
    return pa.schema(fields)


def to_arrow(frame: pd.DataFrame, table: sa.Table) -> pa.Table:
    """The frame with exactly the table's columns and types (a missing column is an error)."""
    schema = arrow_schema(table)
    missing = [f.name for f in schema if f.name not in frame.columns]
    if missing:
        raise ValueError(f"{table.name}: rows lack columns {missing}")
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


@contextmanager
def staged(conn: sa.Connection, rows: pa.Table | Path) -> Iterator[sa.FromClause]:
    """Make an Arrow table, or a parquet file of rows, readable as a relation inside this
    connection's transaction. A file is never read into memory at once: DuckDB scans it in
    place, PostgreSQL copies it batch by batch."""
    require_supported(conn)
    name = f"incoming_{uuid.uuid4().hex[:12]}"
    schema = pq.read_schema(rows) if isinstance(rows, Path) else rows.schema
    relation = sa.table(name, *[sa.column(n) for n in schema.names])
    if conn.dialect.name == "duckdb":
        if isinstance(rows, Path):
            yield scratch.parquet(rows, schema.names, name)
            return
        raw = conn.connection.driver_connection
        raw.register(name, rows)
        try:
            yield relation
        finally:
            raw.unregister(name)
        return
    # PostgreSQL: a temporary table, filled by COPY, gone at commit or rollback at the latest
    temp = sa.Table(name, sa.MetaData(), *[sa.Column(f.name, _sa_type(f.type)) for f in schema],
                    prefixes=["TEMPORARY"], postgresql_on_commit="DROP")
    temp.create(conn)
    copy_rows(conn, temp, parquet_batches(rows) if isinstance(rows, Path) else rows)
    conn.execute(sa.text(f"ANALYZE {conn.dialect.identifier_preparer.format_table(temp)}"))
    yield relation
    temp.drop(conn)  # not on error: the aborted transaction drops it


def copy_rows(conn: sa.Connection, table: sa.Table, rows: pa.Table | Iterable[pa.RecordBatch]) -> int:
    """Stream rows into a PostgreSQL table with binary ``COPY ... FROM STDIN``, in the open transaction.

    Binary, because the server then takes values as they are stored instead of parsing text:
    5M contacts into an unindexed table took 22.5 s as CSV, 13.5 s in binary.
    """
    batches = iter(rows.to_batches(max_chunksize=COPY_CHUNK_ROWS) if isinstance(rows, pa.Table) else rows)
    first = next(batches, None)
    if first is None:
        return 0
    schema = _copy_schema(table, first.schema)
    preparer = conn.dialect.identifier_preparer
    columns = ", ".join(preparer.quote(n) for n in schema.names)
    statement = f"COPY {preparer.format_table(table)} ({columns}) FROM STDIN (FORMAT binary)"
    encoder = ArrowToPostgresBinaryEncoder(schema)
    copied = 0
    with conn.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(encoder.write_header())
        for rows, chunk in _encoded_chunks(encoder, table, schema, itertools.chain([first], batches)):
            copy.write(chunk)
            copied += rows
        copy.write(encoder.finish())
    return copied


def _copy_schema(table: sa.Table, incoming: pa.Schema) -> pa.Schema:
    """The incoming columns typed as the table stores them: the binary format has no casts, so an
    ``int64`` sent to an INTEGER column would be rejected (CSV text was converted by the server)."""
    fields = []
    for name in incoming.names:
        if name not in table.c:
            raise ValueError(f"{table.name}: no column {name!r} to COPY into")
        fields.append(pa.field(name, _binary_arrow_type(table.c[name].type)))
    return pa.schema(fields)


def _arrow_type(column_type: sa.types.TypeEngine) -> pa.DataType:
    return next(t for k, t in _ARROW_TYPES.items() if isinstance(column_type, k))


def _binary_arrow_type(column_type: sa.types.TypeEngine) -> pa.DataType:
    """As ``_arrow_type``, but integers as wide as the column: binary COPY sends them as they are."""
    if isinstance(column_type, sa.SmallInteger):
        return pa.int16()
    if isinstance(column_type, sa.Integer) and not isinstance(column_type, sa.BigInteger):
        return pa.int32()
    return _arrow_type(column_type)


def _as_stored(table: sa.Table, schema: pa.Schema, batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch cast to ``schema``; a value the column cannot hold is an error naming the column."""
    arrays = []
    for field in schema:
        values = batch.column(field.name)
        try:
            arrays.append(values if values.type.equals(field.type) else pc.cast(values, field.type))
        except pa.ArrowInvalid as error:
            raise ValueError(f"{table.name}.{field.name}: a value does not fit the column's type "
                             f"{table.c[field.name].type}: {error}") from error
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _encoded_chunks(encoder: ArrowToPostgresBinaryEncoder, table: sa.Table, schema: pa.Schema,
                    batches: Iterator[pa.RecordBatch]) -> Iterator[tuple[int, bytes]]:
    """Each batch in COPY's binary format, the next one encoded by a worker thread while the
    caller sends this one, so that neither the encoding nor the server waits for the other."""
    def encode(batch: pa.RecordBatch) -> tuple[int, bytes]:
        return batch.num_rows, encoder.write_batch(_as_stored(table, schema, batch))

    with ThreadPoolExecutor(1, thread_name_prefix="xoflow-copy") as writer:
        pending: Future | None = None
        for batch in batches:
            following = writer.submit(encode, batch)
            if pending is not None:
                yield pending.result()
            pending = following
        if pending is not None:
            yield pending.result()


def parquet_batches(path: Path) -> Iterator[pa.RecordBatch]:
    """The file's rows batch by batch. Without ``pre_buffer=False`` the reader keeps every row
    group it has read (565 MB after streaming 5M contacts), so memory would follow the file."""
    yield from pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=COPY_CHUNK_ROWS)


def insert_parquet(conn: sa.Connection, table: sa.Table, path: Path) -> int:
    """Bulk-insert a parquet file of the table's columns, batch by batch (COPY) or as a scan (DuckDB).
    On PostgreSQL the BRIN ranges the rows filled are then summarized."""
    if conn.dialect.name == "postgresql":
        copied = copy_rows(conn, table, parquet_batches(path))
        summarize_day_ranges(conn, table)
        return copied
    names = pq.read_schema(path).names
    incoming = scratch.parquet(path, names, "incoming")
    result = conn.execute(sa.insert(table).from_select(names, sa.select(*[incoming.c[n] for n in names]))
                          .execution_options(preserve_rowcount=True))
    return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else pq.read_metadata(
        path).num_rows


def export_batches(conn: sa.Connection, query: sa.Select, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The query's rows as Arrow batches of ``schema``, streamed (DuckDB's Arrow reader; COPY TO)."""
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    if conn.dialect.name == "duckdb":
        reader = conn.connection.driver_connection.sql(sql).to_arrow_reader(COPY_CHUNK_ROWS)
        for batch in reader:
            yield pa.RecordBatch.from_arrays(
                [batch.column(i).cast(f.type) for i, f in enumerate(schema)], schema=schema)
        return
    with tempfile.TemporaryDirectory(prefix="xoflow-export-") as folder:
        spool = Path(folder) / "rows.csv"
        cursor = conn.connection.driver_connection.cursor()
        try:
            with spool.open("wb") as out, cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy:
                for chunk in copy:
                    out.write(chunk)
        finally:
            cursor.close()
        if not spool.stat().st_size:  # no rows (Arrow's reader refuses an empty file)
            return
        reader = pa_csv.open_csv(spool, read_options=pa_csv.ReadOptions(
            column_names=schema.names, use_threads=False), convert_options=pa_csv.ConvertOptions(
            column_types={f.name: f.type for f in schema}, true_values=["t"], false_values=["f"],
            strings_can_be_null=True, quoted_strings_can_be_null=False))
        for batch in reader:
            yield batch


def export_table(conn: sa.Connection, query: sa.Select, schema: pa.Schema) -> pa.Table:
    """The query's rows as one Arrow table of ``schema`` (``export_batches``, gathered)."""
    return pa.Table.from_batches(list(export_batches(conn, query, schema)), schema)


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


def insert_select(conn: sa.Connection, table: sa.Table, rows: sa.Select) -> int:
    """``INSERT INTO table SELECT rows``; returns the rows inserted. PostgreSQL never runs the
    query of an INSERT in parallel but does that of a CREATE TABLE ... AS, so there the rows
    are computed into a temporary table first: on two cores the large marts took about half
    the time (agg_contact_daily at 5M contacts: 9.3 s, then 4.4 s), and copying their rows,
    few but for the daily text themes, once more costs little."""
    names = [c.name for c in rows.selected_columns]

    def insert_from(query: sa.Select) -> int:
        inserted = conn.execute(sa.insert(table).from_select(names, query)
                                .execution_options(preserve_rowcount=True))
        return max(inserted.rowcount or 0, 0)

    if conn.dialect.name != "postgresql":
        return insert_from(rows)
    computed = CreateTableAs(rows, "mart_rows", temporary=True)
    conn.execute(computed)
    inserted = insert_from(sa.select(computed.table))
    conn.execute(sa.schema.DropTable(computed.table))
    return inserted


def insert_rows(conn: sa.Connection, table: sa.Table, rows: pa.Table) -> int:
    if not rows.num_rows:
        return 0
    if conn.dialect.name == "postgresql":
        return copy_rows(conn, table, rows)
    with staged(conn, rows) as incoming:
        names = rows.schema.names
        conn.execute(sa.insert(table).from_select(names, sa.select(*[incoming.c[n] for n in names])))
    return rows.num_rows


def upsert_newer(conn: sa.Connection, table: sa.Table, rows: pa.Table | Path, key: str, version: str) -> int:
    """Insert new keys and replace existing ones whose stored version is not newer; returns the
    rows written (replaced and inserted). ``rows``:
    an Arrow table, or a parquet file of them (read in place, not into memory: a night's case
    updates at 4x the default size are 2M rows).

    Re-running an older day after a newer one therefore changes nothing.

    Stored keys are updated in place rather than deleted and inserted again: DuckDB keeps a
    deleted key of a primary-key index in memory beside the same key inserted again, until
    the commit, and re-running a night of 2M case updates ran out of its 512 MB there.
    """
    count = pq.read_metadata(rows).num_rows if isinstance(rows, Path) else rows.num_rows
    if not count:
        return 0
    with staged(conn, rows) as incoming:
        names = list(incoming.c.keys())
        updated = conn.execute(sa.update(table).where(
            incoming.c[key] == table.c[key], incoming.c[version] >= table.c[version],
        ).values({name: incoming.c[name] for name in names if name != key}))
        not_there = ~sa.exists(sa.select(table.c[key]).where(table.c[key] == incoming.c[key]))
        inserted = conn.execute(sa.insert(table).from_select(
            names, sa.select(*[incoming.c[n] for n in names]).where(not_there)).execution_options(
            preserve_rowcount=True))
    return max(updated.rowcount, 0) + max(inserted.rowcount, 0)


def in_days(column: sa.ColumnElement, days: Iterable[date]) -> sa.ColumnElement[bool]:
    """The days, with their span spelled out: PostgreSQL's BRIN indexes take ranges, not lists."""
    days = sorted(set(days))
    if not days:
        return sa.false()
    if len(days) == 1:
        return column == days[0]
    return sa.and_(column.between(days[0], days[-1]), column.in_(days))


def summarize_day_ranges(conn: sa.Connection, table: sa.Table) -> None:
    """Summarize the BRIN page ranges a bulk load filled (PostgreSQL only, called by
    ``insert_parquet``; see model.BRIN_DAY_INDEXES).

    Until summarized, a range counts as holding every day, so each later read of any day would
    scan it. This reads the new pages once; an index a warehouse does not have yet is skipped.
    """
    for index in BRIN_DAY_INDEXES:
        if index.table is not None and index.table.name == table.name:
            conn.execute(sa.select(sa.func.brin_summarize_new_values(sa.func.to_regclass(index.name)))).all()
