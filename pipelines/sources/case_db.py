"""Case-management database (contract kind ``sql``): incremental on the watermark column.

Reads the rows of ``location["table"]`` (optionally ``location["schema"]``) whose
watermark (the contract's ``watermark``, else its ``event_time``) lies in the run's
interval, ``start <= watermark < end``, with SQLAlchemy Core only, so the same code
runs on SQLite, PostgreSQL and MariaDB. Only the contract's columns are selected:
other columns of the table never leave the database.

Timestamps: SQLite has no timestamp type, so the watermark is usually ISO text in any
of several spellings (``T`` or space, ``Z`` or an offset, with or without fractions).
On SQLite it is compared through ``strftime('%Y-%m-%d %H:%M:%f', ...)``, which brings
every spelling to UTC text with milliseconds before comparing. Rows whose watermark
SQLite cannot read as a time (or is NULL) are never selected: an incremental extract
cannot place them in any interval. On other databases a native timestamp column is
compared directly (bounds naive UTC for ``timestamp without time zone`` and MariaDB's
``DATETIME``) and a text column is cast to a timestamp first (on MariaDB the cast
ignores a ``Z`` or offset, so a text watermark there must be UTC; on PostgreSQL a text
value that is no timestamp at all stops the extract with a ``ContractError``). Every
session runs in UTC, so ``timestamptz``/``TIMESTAMP`` values and casts never depend
on the server's time zone. Naive timestamps are taken to be UTC.

Values come back as text, in one spelling whatever the database: a column the
database declares as a timestamp (PostgreSQL ``timestamp[tz]``, MariaDB ``DATETIME``/
``TIMESTAMP``, a SQLite column declared ``DATETIME``) yields canonical UTC text
``YYYY-MM-DDTHH:MM:SS.ffffffZ``, so SQLite, PostgreSQL and MariaDB give identical
batches; a value there that is no timestamp, and every value of a text column, comes
as stored, for validation to judge. Other values go through ``as_text`` (booleans
``true``/``false``). ``_origin`` is ``"<dialect>:<table>"``; ``_row`` numbers rows
1..n in watermark then key order (text keys compared byte-wise on every database, not
by the server's collation). Unreachable database or locked file raises
``SourceUnavailable``; a missing table or required column raises ``ContractError``.
No message ever carries the database password.

``extract_batches`` streams the rows from a server-side cursor in batches of at most
``batch_rows`` (``_row`` keeps counting across them); ``extract`` is the same as one batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from pipelines.contracts import SAFE_NAME, Contract, ContractError
from pipelines.interval import Interval
from pipelines.settings import Settings
from pipelines.sources import BATCH_ROWS, RawBatch, SourceUnavailable
from pipelines.sources._common import (
    UNBOUNDED,
    TextBatches,
    as_text,
    one_batch,
    required_source_columns,
    source_column_names,
)

log = logging.getLogger(__name__)

FETCH_ROWS = 10_000  # rows per fetch from the server-side cursor
SQLITE_UTC_TEXT = "%Y-%m-%d %H:%M:%f"
MYSQL_FAMILY = ("mysql", "mariadb")
UNAVAILABLE_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)


def extract(contract: Contract, settings: Settings, interval: Interval) -> RawBatch:
    """The table's rows changed within the interval, contract columns only, as text, in one batch."""
    return one_batch(contract.source, extract_batches(contract, settings, interval, batch_rows=UNBOUNDED))


def extract_batches(
    contract: Contract, settings: Settings, interval: Interval, batch_rows: int = BATCH_ROWS
) -> Iterator[RawBatch]:
    """``extract`` as batches of at most ``batch_rows`` rows, streamed from a server-side cursor.

    ``yield_per`` makes SQLAlchemy stream the result (a named cursor on PostgreSQL, an
    unbuffered ``SSCursor`` on MariaDB/MySQL, SQLite's own stepping) and fetch it
    ``FETCH_ROWS`` at a time, so memory holds one fetch and one batch, not the day's
    rows. The connection stays open (one read transaction) until the last batch is taken.
    """
    table_name = _identifier(contract, "table")
    schema = _identifier(contract, "schema") if contract.location.get("schema") else None
    watermark = contract.watermark or contract.event_time
    qualified = f"{schema}.{table_name}" if schema else table_name

    url = sa.make_url(settings.case_db_url)
    safe_url = url.render_as_string(hide_password=True)
    _require_sqlite_file(contract, url)
    engine = _engine(url)
    origin = f"{engine.dialect.name}:{qualified}"
    try:
        with engine.connect() as connection:
            present = _table_columns(contract, connection, table_name, schema, qualified)
            wanted = [name for name in source_column_names(contract) if name in present]
            missing = [name for name in required_source_columns(contract) if name not in present]
            if watermark not in present and watermark not in missing:
                missing.append(watermark)
            if missing:
                raise ContractError(
                    f"{contract.source}: table {qualified} has no column {', '.join(missing)}"
                )
            query = _changed_rows_query(
                engine.dialect.name, table_name, schema, wanted, present, watermark,
                key=[name for name in contract.key if name in present], interval=interval,
            )
            batches = TextBatches(contract.source, wanted, batch_rows)
            timestamps = [isinstance(present[name], sa.DateTime) for name in wanted]
            result = connection.execution_options(
                stream_results=True, yield_per=min(FETCH_ROWS, batch_rows)
            ).execute(query)
            for chunk in result.partitions():
                first = batches.rows + 1
                block = {
                    name: [canonical_timestamp(value) for value in values] if timestamp else values
                    for name, timestamp, values in zip(
                        wanted, timestamps, zip(*chunk, strict=True), strict=True
                    )
                }
                yield from batches.add(block, origin=origin, rows=range(first, first + len(chunk)))
            if not batches.rows:
                batches.note(origin)  # an empty batch still says where it looked
            yield from batches.finish()
    except sa.exc.DataError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise ContractError(
            f"{contract.source}: cannot read watermark {watermark} of {qualified} as a timestamp: "
            f"{_without_secret(str(cause).strip(), url)}"
        ) from None
    except UNAVAILABLE_ERRORS as exc:
        cause = getattr(exc, "orig", None) or exc
        detail = _without_secret(f"{type(cause).__name__}: {cause}", url)
        raise SourceUnavailable(
            f"{contract.source}: cannot read {qualified} from {safe_url}: {detail}"
        ) from None
    finally:
        engine.dispose()
    log.info("%s: read %d rows from %s for %s in %d batches", contract.source, batches.rows, origin,
             interval, batches.batches)


def canonical_timestamp(value: object) -> str | None:
    """A timestamp as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC; naive taken as UTC).

    Drivers hand back ``datetime`` objects (PostgreSQL, MariaDB) or stored text
    (SQLite); both end in the same spelling. Text that is no ISO timestamp is returned
    unchanged so that validation can quarantine it with the value as received.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return as_text(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    # isoformat, not strftime: a third of the cost, and the year always has four digits
    return value.isoformat(timespec="microseconds") + "Z"


def _engine(url: sa.URL) -> sa.Engine:
    """An engine whose sessions run in UTC (PostgreSQL, MariaDB/MySQL), whatever the server's zone."""
    engine = sa.create_engine(url)
    # MariaDB/MySQL: a streamed (unbuffered) result waits on the client between batches;
    # the server's default net_write_timeout (60 s) would cut it off during a slow load.
    mysql_session = "SET time_zone = '+00:00', net_write_timeout = 3600"
    statement = {"postgresql": "SET TIME ZONE 'UTC'", "mysql": mysql_session,
                 "mariadb": mysql_session}.get(engine.dialect.name)
    if statement:

        @sa.event.listens_for(engine, "connect")
        def _utc_session(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(statement)
            cursor.close()
            dbapi_connection.commit()  # PostgreSQL undoes a SET when its transaction rolls back

    return engine


def _identifier(contract: Contract, key: str) -> str:
    """A table or schema name from the contract, checked before it goes anywhere near SQL."""
    name = contract.location.get(key)
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise ContractError(
            f"{contract.source}: location {key} {name!r} must match {SAFE_NAME.pattern}"
        )
    return name


def _require_sqlite_file(contract: Contract, url: sa.URL) -> None:
    """Connecting to a missing SQLite file would silently create an empty database."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return
    if database.startswith("file:"):
        return
    if not Path(database).is_file():
        raise SourceUnavailable(f"{contract.source}: SQLite database not found: {database}")


def _table_columns(
    contract: Contract, connection: sa.Connection, table: str, schema: str | None, qualified: str
) -> dict[str, sa.types.TypeEngine[Any]]:
    """The table's columns by name with their declared types (no full reflection)."""
    inspector = sa.inspect(connection)
    if not inspector.has_table(table, schema=schema):
        raise ContractError(f"{contract.source}: table {qualified} not found")
    return {column["name"]: column["type"] for column in inspector.get_columns(table, schema)}


def _changed_rows_query(
    dialect: str,
    table_name: str,
    schema: str | None,
    wanted: list[str],
    present: dict[str, sa.types.TypeEngine[Any]],
    watermark: str,
    *,
    key: list[str],
    interval: Interval,
) -> sa.Select[Any]:
    """``SELECT wanted FROM table WHERE start <= watermark < end ORDER BY watermark, key``."""
    table = sa.table(table_name, *(sa.column(name) for name in {*wanted, watermark}), schema=schema)
    moment, start, end = watermark_bounds(dialect, table.c[watermark], present[watermark], interval)
    return (
        sa.select(*(table.c[name] for name in wanted))
        .where(moment >= start, moment < end)
        .order_by(moment, *(byte_order(dialect, table.c[name], present[name]) for name in key))
    )


def byte_order(
    dialect: str, column: sa.ColumnElement[Any], declared: sa.types.TypeEngine[Any]
) -> sa.ColumnElement[Any]:
    """A text key sorted byte-wise, as SQLite does, not by the server's collation.

    PostgreSQL's locale collations and MariaDB's case-insensitive default would order
    ``a`` and ``B`` (or ``-`` and digits) differently from SQLite and from each other.
    """
    if not isinstance(declared, sa.String):
        return column
    if dialect == "postgresql":
        return sa.collate(column, "C")
    if dialect in MYSQL_FAMILY:
        return sa.cast(column, mysql.BINARY())
    return column


def watermark_bounds(
    dialect: str,
    column: sa.ColumnElement[Any],
    declared: sa.types.TypeEngine[Any],
    interval: Interval,
) -> tuple[sa.ColumnElement[Any], sa.BindParameter[Any], sa.BindParameter[Any]]:
    """The watermark as a comparable expression, and the interval bounds in the same form."""
    start_utc = interval.start.astimezone(UTC)
    end_utc = interval.end.astimezone(UTC)
    if dialect == "sqlite":
        # Stored as text in any ISO spelling: compare normalised UTC text, ms precision.
        moment = sa.func.strftime(SQLITE_UTC_TEXT, column, type_=sa.String)
        return (
            moment,
            sa.bindparam("start", _sqlite_text(start_utc), type_=sa.String),
            sa.bindparam("end", _sqlite_text(end_utc), type_=sa.String),
        )
    with_zone = dialect == "postgresql"
    if isinstance(declared, sa.DateTime):
        moment = column
        with_zone = bool(declared.timezone)
    elif dialect in MYSQL_FAMILY:
        moment = sa.cast(column, mysql.DATETIME(fsp=6))  # a plain DATETIME cast drops fractions
    else:
        moment = sa.cast(column, sa.DateTime(timezone=with_zone))
    bound_type = sa.DateTime(timezone=with_zone)
    if not with_zone:
        start_utc, end_utc = start_utc.replace(tzinfo=None), end_utc.replace(tzinfo=None)
    return (
        moment,
        sa.bindparam("start", start_utc, type_=bound_type),
        sa.bindparam("end", end_utc, type_=bound_type),
    )


def _sqlite_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _without_secret(message: str, url: sa.URL) -> str:
    return message.replace(url.password, "***") if url.password else message
