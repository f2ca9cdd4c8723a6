"""Repeat contacts: the same customer contacting about the same service within 7 days.

A contact is a repeat when the customer's previous contact about the service started
at most 7 days earlier; ties on start time are ordered by contact key. The flag is set
on the day's conformed spool before the load, in the in-process DuckDB, so the
warehouse takes the rows with a plain bulk load (PostgreSQL: one ``COPY``). Of the
warehouse's history only the latest contact per customer and service in the 7 days
before the day's first contact is needed: anything older is never the previous one.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa

from pipelines import scratch, warehouse
from pipelines.model import fact_contact

REPEAT_WINDOW = timedelta(days=7)
FLAG = "repeat_within_7d"
HISTORY_COLUMNS = ("customer_key", "service_id", "start_time")
ROW = scratch.ROW_NUMBER


def flag_contacts(conn: sa.Connection, spool: Path, out: Path) -> int:
    """Write the spool's contacts (fact_contact's columns, flag empty) to ``out`` with the flag set.

    ``conn`` is the load's warehouse transaction: the history it reads is what the load
    sees (the day's own earlier rows already deleted).
    """
    history = recent_history(conn, spool, out.with_name(f"{out.stem}-history.parquet"))
    try:
        return set_flags(spool, history, out)
    finally:
        history.unlink(missing_ok=True)


def recent_history(conn: sa.Connection, spool: Path, path: Path) -> Path:
    """The warehouse's latest contact per customer and service in the window before the spool's
    first contact, as the parquet file ``path``: all of the history ``set_flags`` needs."""
    first = pc.min(pq.read_table(spool, columns=["start_time"]).column("start_time")).as_py()
    _export_history(conn, first, path)
    return path


def set_flags(spool: Path, history: Path, out: Path) -> int:
    """``flag_contacts`` without the warehouse: the flags from the spool and its ``recent_history``.

    The window runs over the keys only; the flags, in spool order, are then set on the
    spool's batches as they stream to ``out``, so memory holds one flag per contact, never
    the day's contacts.
    """
    names = [c.name for c in fact_contact.columns]
    with scratch.session(out.parent) as local:
        keys = scratch.parquet(spool, names, "keys", numbered=True)
        flags = _flags(keys, scratch.parquet(history, HISTORY_COLUMNS, "history")).subquery("flags")
        in_spool_order = sa.select(flags.c[FLAG]).order_by(flags.c[ROW])
        flag_schema = pa.schema([pa.field(FLAG, pa.bool_())])
        values = warehouse.export_table(local, in_spool_order, flag_schema).column(FLAG)
    schema = pq.read_schema(spool)
    position, written = schema.get_field_index(FLAG), 0
    with pq.ParquetWriter(out, schema, compression="lz4") as writer:
        for batch in warehouse.parquet_batches(spool):
            writer.write_batch(batch.set_column(position, FLAG, values.slice(written, batch.num_rows)
                                                .combine_chunks()))
            written += batch.num_rows
    if written != len(values):
        raise AssertionError(f"repeat flags: {len(values)} flags for {written} contacts in {spool}")
    return written


def _export_history(conn: sa.Connection, first, path: Path) -> None:
    """The latest contact per customer and service in the window before ``first``, as parquet."""
    schema = pa.schema([warehouse.arrow_schema(fact_contact).field(n) for n in HISTORY_COLUMNS])
    with pq.ParquetWriter(path, schema, compression="lz4") as writer:
        if first is None:
            return
        since = first - REPEAT_WINDOW
        latest = sa.select(fact_contact.c.customer_key, fact_contact.c.service_id,
                           sa.func.max(fact_contact.c.start_time).label("start_time")).where(
            fact_contact.c.customer_key.is_not(None),
            fact_contact.c.start_time >= since, fact_contact.c.start_time < first,
            # the same window in days, so PostgreSQL reads it through the partition-date index
            fact_contact.c.contact_date.between(since.astimezone(UTC).date(), first.astimezone(UTC).date()),
        ).group_by(fact_contact.c.customer_key, fact_contact.c.service_id)
        for batch in warehouse.export_batches(conn, latest, schema):
            writer.write_batch(batch)


def _flags(keys: sa.FromClause, history: sa.FromClause) -> sa.Select:
    """Each spool row's flag: a window over the day's keys and the history's latest contacts."""
    window_keys = ("customer_key", "service_id", "start_time", "contact_key")
    current = sa.select(keys.c[ROW], *[keys.c[n] for n in window_keys], sa.literal(1).label("current"))
    earlier = sa.select(sa.null().label(ROW), *[history.c[n] if n in HISTORY_COLUMNS else sa.null().label(n)
                                               for n in window_keys], sa.literal(0).label("current"))
    keyed = sa.union_all(current, earlier).subquery("keyed")
    previous = sa.func.lag(keyed.c.start_time).over(
        partition_by=[keyed.c.customer_key, keyed.c.service_id],
        order_by=[keyed.c.start_time, keyed.c.current, keyed.c.contact_key])
    ordered = sa.select(keyed, previous.label("previous")).subquery("ordered")
    repeat = sa.and_(ordered.c.customer_key.is_not(None), ordered.c.previous.is_not(None),
                     ordered.c.previous >= ordered.c.start_time - sa.func.to_days(REPEAT_WINDOW.days))
    return sa.select(ordered.c[ROW], repeat.label(FLAG)).where(ordered.c.current == 1)
