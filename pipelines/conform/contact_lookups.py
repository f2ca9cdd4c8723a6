"""The night's contacts again, in the narrow tables the marts probe (model.CONTACT_LOOKUPS).

On PostgreSQL each such table has one B-tree, and COPY adds each row to it as it goes: in
key order the rows fill its leaf pages one after another, in any other order each lands on
another page. So the scratch DuckDB derives each table's rows from the conformed spool in
its index's order first (spilling to disk past its memory bound). A DuckDB warehouse keeps
no such index, and reads them as views of fact_contact instead.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from pipelines import scratch, warehouse, working_files
from pipelines.model import CONTACT_LOOKUPS, contact_customer_day, fact_contact


def stored_lookups(dialect: str) -> list[sa.Table]:
    """The lookup tables a warehouse of ``dialect`` stores (warehouse.stored_tables), the one
    with the fewest rows first: its rows are ready soonest, so its COPY starts soonest. A lookup
    the warehouse reads as a view of fact_contact is not among them."""
    stored = warehouse.stored_tables(dialect)
    return sorted((t for t in CONTACT_LOOKUPS if t in stored), key=lambda t: t is not contact_customer_day)


def ordered_lookup_rows(spool: Path, table: sa.Table) -> Path:
    """The lookup's rows of the spool's contacts (fact_contact's columns, as loaded) in its
    index's order, in a parquet file beside the spool. Ordering contact_by_case's 5M rows took
    8.4 s with the scratch's usual memory, 9.9 s within ``scratch.IN_LOAD_MEMORY``."""
    names = [c.name for c in fact_contact.columns]
    path = spool.with_name(f"{spool.stem}-{table.name}.parquet")
    schema = warehouse.arrow_schema(table)
    try:
        with (scratch.session(spool.parent, scratch.IN_LOAD_MEMORY) as local,
              working_files.Writer(path, schema) as writer):
            rows = CONTACT_LOOKUPS[table](scratch.parquet(spool, names, "contacts"))
            for batch in warehouse.export_batches(local, rows, schema):
                writer.write(batch)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def replace_lookup_days(conn: sa.Connection, table: sa.Table, path: Path, days: Collection[date]) -> int:
    """Replace ``days`` of the lookup table with its ordered rows in ``path``, in the open
    transaction; returns the rows inserted. The file is gone after."""
    try:
        conn.execute(sa.delete(table).where(warehouse.in_days(table.c.contact_date, days)))
        return warehouse.insert_parquet(conn, table, path)
    finally:
        path.unlink(missing_ok=True)
