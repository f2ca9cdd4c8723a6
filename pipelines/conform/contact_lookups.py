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

import pyarrow.parquet as pq
import sqlalchemy as sa

from pipelines import scratch, warehouse
from pipelines.model import CONTACT_LOOKUPS, fact_contact


def load_contact_lookups(conn: sa.Connection, spool: Path, days: Collection[date]) -> dict[str, int]:
    """Replace ``days`` of each lookup table with the rows of the spool's contacts (fact_contact's
    columns, as loaded), in the open transaction; returns the rows inserted per table. A lookup
    the warehouse does not store is a view of fact_contact (warehouse.stored_tables): nothing to do."""
    names = [c.name for c in fact_contact.columns]
    stored = warehouse.stored_tables(conn.dialect.name)
    inserted = {}
    for table, rows_of in CONTACT_LOOKUPS.items():
        if table not in stored:
            continue
        conn.execute(sa.delete(table).where(warehouse.in_days(table.c.contact_date, days)))
        rows = rows_of(scratch.parquet(spool, names, "contacts"))
        ordered = spool.with_name(f"{spool.stem}-{table.name}.parquet")
        try:
            schema = warehouse.arrow_schema(table)
            with scratch.session(spool.parent) as local, \
                    pq.ParquetWriter(ordered, schema, compression="lz4") as writer:
                for batch in warehouse.export_batches(local, rows, schema):
                    writer.write_batch(batch)
            inserted[table.name] = warehouse.insert_parquet(conn, table, ordered)
        finally:
            ordered.unlink(missing_ok=True)
    return inserted
