"""Repeat contacts: the same customer contacting about the same service within 7 days.

Computed in the warehouse as the day's contacts are inserted, over the day's rows and
the 7 days before it, so neither the day nor its history has to be held in memory.
A contact is a repeat when the customer's previous contact about the service started
at most 7 days earlier; ties on start time are ordered history first, then by key.
"""

from __future__ import annotations

from datetime import UTC, timedelta

import sqlalchemy as sa

from pipelines.model import fact_contact

REPEAT_WINDOW = timedelta(days=7)
FLAG = "repeat_within_7d"


def insert_contacts(conn: sa.Connection, incoming: sa.FromClause) -> int:
    """Insert ``incoming`` (fact_contact's columns, flag empty) into fact_contact with the flag set."""
    first = conn.execute(sa.select(sa.func.min(incoming.c.start_time))).scalar()
    if first is None:
        return 0
    names = [c.name for c in fact_contact.columns]
    keys = ("customer_key", "service_id", "start_time", "contact_key")
    # the day's rows whole, the history's only by the keys the window needs: no join afterwards
    current = sa.select(*[incoming.c[n] for n in names], sa.literal(1).label("current"))
    history = sa.select(*[fact_contact.c[n] if n in keys else sa.cast(sa.null(), fact_contact.c[n].type)
                          .label(n) for n in names], sa.literal(0).label("current")).where(
        fact_contact.c.start_time >= first - REPEAT_WINDOW, fact_contact.c.start_time < first,
        # the same window in days, so PostgreSQL reads it through the partition-date index
        fact_contact.c.contact_date.between((first - REPEAT_WINDOW).astimezone(UTC).date(),
                                            first.astimezone(UTC).date()))
    keyed = sa.union_all(current, history).subquery("keyed")
    previous = sa.func.lag(keyed.c.start_time).over(
        partition_by=[keyed.c.customer_key, keyed.c.service_id],
        order_by=[keyed.c.start_time, keyed.c.current, keyed.c.contact_key])
    ordered = sa.select(*[keyed.c[n] for n in names if n != FLAG], keyed.c.current,
                        previous.label("previous")).subquery("ordered")
    repeat = sa.case((sa.and_(ordered.c.customer_key.is_not(None), ordered.c.previous.is_not(None),
                              ordered.c.previous >= ordered.c.start_time - REPEAT_WINDOW), sa.true()),
                     else_=sa.false())
    select = sa.select(*[repeat.label(FLAG) if n == FLAG else ordered.c[n] for n in names]).where(
        ordered.c.current == 1)
    result = conn.execute(sa.insert(fact_contact).from_select(names, select).execution_options(
        preserve_rowcount=True))
    return result.rowcount
