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


def ordered_lookup_rows(dialect: str, spool: Path) -> dict[sa.Table, Path]:
    """Each lookup table the warehouse stores (warehouse.stored_tables), with the rows of the
    spool's contacts (fact_contact's columns, as loaded) in its index's order, in a parquet
    file beside the spool. A lookup the warehouse reads as a view of fact_contact gets none."""
    names = [c.name for c in fact_contact.columns]
    stored = warehouse.stored_tables(dialect)
    ordered: dict[sa.Table, Path] = {}
    try:
        with scratch.session(spool.parent) as local:
            for table, rows_of in CONTACT_LOOKUPS.items():
                if table not in stored:
                    continue
                rows = rows_of(scratch.parquet(spool, names, "contacts"))
                path = ordered[table] = spool.with_name(f"{spool.stem}-{table.name}.parquet")
                schema = warehouse.arrow_schema(table)
                with pq.ParquetWriter(path, schema, compression="lz4") as writer:
                    for batch in warehouse.export_batches(local, rows, schema):
                        writer.write_batch(batch)
    except BaseException:
        for path in ordered.values():
            path.unlink(missing_ok=True)
        raise
    return ordered


def replace_lookup_days(conn: sa.Connection, ordered: dict[sa.Table, Path],
                        days: Collection[date]) -> dict[str, int]:
    """Replace ``days`` of each lookup table with its ordered rows, in the open transaction;
    returns the rows inserted per table. The files are gone after."""
    inserted = {}
    try:
        for table, path in ordered.items():
            conn.execute(sa.delete(table).where(warehouse.in_days(table.c.contact_date, days)))
            inserted[table.name] = warehouse.insert_parquet(conn, table, path)
    finally:
        for path in ordered.values():
            path.unlink(missing_ok=True)
    return inserted
