"""The night's contacts that name a case, loaded into ``contact_by_case`` in case order.

The driver mart probes that table's ``(case_key, start_time)`` index once per survey response
(see model.contact_by_case). COPY adds each row to the index as it goes: rows in key order
fill its leaf pages one after another, rows in any other order each land on another page.
So on PostgreSQL the scratch DuckDB sorts the night's case links first (spilling to disk
past its memory bound); DuckDB, which keeps no such index, inserts them from the spool as
they are.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import sqlalchemy as sa

from pipelines import scratch, warehouse
from pipelines.model import contact_by_case

LINK_COLUMNS = tuple(c.name for c in contact_by_case.columns)
# The index's order, then the contact key: the same rows give the same file.
CASE_ORDER = ("case_key", "start_time", "contact_key")


def load_case_links(conn: sa.Connection, spool: Path) -> int:
    """Insert the spool's contacts (fact_contact's columns) that name a case, in the open
    transaction; the days they replace must already be deleted."""
    if conn.dialect.name == "duckdb":
        contacts = scratch.parquet(spool, LINK_COLUMNS, "contacts")
        links = sa.select(*[contacts.c[n] for n in LINK_COLUMNS]).where(contacts.c.case_key.is_not(None))
        inserted = conn.execute(sa.insert(contact_by_case).from_select(LINK_COLUMNS, links)
                                .execution_options(preserve_rowcount=True)).rowcount
        return max(inserted or 0, 0)
    ordered = spool.with_name(f"{spool.stem}-by-case.parquet")
    try:
        _write_in_case_order(spool, ordered)
        return warehouse.insert_parquet(conn, contact_by_case, ordered)
    finally:
        ordered.unlink(missing_ok=True)


def _write_in_case_order(spool: Path, out: Path) -> None:
    schema = warehouse.arrow_schema(contact_by_case)
    with scratch.session(out.parent) as local, pq.ParquetWriter(out, schema, compression="lz4") as writer:
        contacts = scratch.parquet(spool, LINK_COLUMNS, "contacts")
        links = (sa.select(*[contacts.c[n] for n in LINK_COLUMNS]).where(contacts.c.case_key.is_not(None))
                 .order_by(*[contacts.c[n] for n in CASE_ORDER]))
        for batch in warehouse.export_batches(local, links, schema):
            writer.write_batch(batch)
