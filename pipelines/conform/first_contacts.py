"""Each customer's first contact (model.customer_first_contact), kept by the contact loads.

The marts call a customer returning when a case or a contact came before. A DuckDB warehouse
has no index to probe for that and grouped every contact ever loaded, so a night's marts cost
more the longer the history (10,000 contacts a day: 0.06 s beside 30 days, 0.37 s beside 730).
The load that replaces days of fact_contact brings this table up to date in its transaction,
from those days' contacts alone. Only a customer whose first contact lay in a replaced day,
and whose contacts of that day now start later or are gone, is looked up in all of fact_contact
again: a reload that changed a day, never a new night.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.schema import CreateTableAs

from pipelines import warehouse
from pipelines.model import customer_first_contact, fact_contact, first_contact_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FirstContactChanges:
    """What a load did to the table: customers ``inserted`` from the days' contacts (new to it,
    or their first contact was one of the days' as they were), whose first contact is
    ``earlier`` now, and ``looked_up`` in all of fact_contact (theirs was replaced by a later one)."""

    inserted: int
    earlier: int
    looked_up: int


def _temporary(conn: sa.Connection, name: str, rows: sa.Select) -> sa.Table:
    created = CreateTableAs(rows, name, temporary=True)
    conn.execute(created)
    return created.table


def record_days(conn: sa.Connection, days: Collection[date]) -> FirstContactChanges:
    """Bring customer_first_contact up to date with ``days`` of fact_contact, which the open
    transaction has just replaced (deleted and loaded again, or loaded for the first time)."""
    began = time.perf_counter()
    table, key = customer_first_contact, customer_first_contact.c.customer_key
    columns = [c.name for c in table.columns]
    loaded = fact_contact.select().where(warehouse.in_days(fact_contact.c.contact_date, days)).subquery()
    night = _temporary(conn, "night_first_contact", first_contact_rows(loaded))
    replaced = warehouse.in_days(table.c.first_date, days)
    # whose stored first contact was one of the days' contacts as they were before
    lost = _temporary(conn, "lost_first_contact", sa.select(key, table.c.first_start).where(replaced))
    conn.execute(sa.delete(table).where(replaced))
    earlier = conn.execute(
        sa.update(table).where(key == night.c.customer_key, night.c.first_start < table.c.first_start)
        .values(first_start=night.c.first_start, first_date=night.c.first_date)
        .execution_options(preserve_rowcount=True)).rowcount
    unknown = ~sa.exists(sa.select(key).where(key == night.c.customer_key))
    inserted = conn.execute(sa.insert(table).from_select(columns, sa.select(night).where(unknown))
                            .execution_options(preserve_rowcount=True)).rowcount
    # The days' contacts now start later than the lost first contact did, or are gone: the
    # first contact may be on another day, and only all of fact_contact tells.
    later = sa.or_(table.c.first_start.is_(None), table.c.first_start > lost.c.first_start)
    stale = _temporary(conn, "stale_first_contact", sa.select(lost.c.customer_key)
                       .select_from(lost.outerjoin(table, key == lost.c.customer_key)).where(later))
    looked_up = conn.execute(sa.select(sa.func.count()).select_from(stale)).scalar_one()
    if looked_up:
        conn.execute(sa.delete(table).where(key.in_(sa.select(stale.c.customer_key))))
        theirs = fact_contact.select().where(fact_contact.c.customer_key.in_(sa.select(stale.c.customer_key)))
        conn.execute(sa.insert(table).from_select(columns, first_contact_rows(theirs.subquery())))
    for temporary in (stale, lost, night):
        conn.execute(sa.schema.DropTable(temporary))
    changes = FirstContactChanges(max(inserted, 0), max(earlier, 0), looked_up)
    log.info("%s: %s in %.2f s", table.name, changes, time.perf_counter() - began)
    return changes
