"""customer_first_contact follows fact_contact through new days, earlier days and reloads.

Days of contacts are replaced as the contact loads replace them, and after each load the table
must hold, per customer, the earliest contact of all the days loaded: computed here in pandas
from the rows as this test kept them, not from the warehouse.
"""

import random
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import warehouse
from pipelines.conform import first_contacts
from pipelines.model import CONTACT_LOOKUPS, customer_first_contact, fact_contact

DAY = date(2026, 3, 2)


@pytest.fixture(params=["duckdb", "postgresql"])
def engine(request, tmp_path):
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    else:
        url = request.getfixturevalue("server_database")("postgresql", "first_contacts")
    engine = warehouse.engine_for(url)
    warehouse.ensure_schema(engine, bi_layer=False)
    yield engine
    engine.dispose()


def contact_rows(day: date, visits: list[tuple[str | None, int]]) -> pd.DataFrame:
    """One contact per (customer, minute of the day)."""
    starts = [datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=m) for _, m in visits]
    return pd.DataFrame({
        "contact_key": [f"{day}-{i}" for i in range(len(visits))], "contact_date": [day] * len(visits),
        "customer_key": [customer for customer, _ in visits], "start_time": starts, "channel": "phone"})


def replace_days(engine, days: dict[date, pd.DataFrame]) -> first_contacts.FirstContactChanges:
    """What the contact load does: replace the days' contacts and the lookup tables' rows of them
    (where stored), then record them."""
    stored = warehouse.stored_tables(engine.dialect.name)
    with engine.begin() as conn:
        for table in (fact_contact, *(t for t in CONTACT_LOOKUPS if t in stored)):
            conn.execute(sa.delete(table).where(warehouse.in_days(table.c.contact_date, days)))
        for rows in (r for r in days.values() if len(r)):  # a day may have no contacts left
            full = rows.reindex(columns=[c.name for c in fact_contact.columns])
            warehouse.insert_rows(conn, fact_contact, warehouse.to_arrow(full, fact_contact))
        for table, rows in CONTACT_LOOKUPS.items():
            if table in stored:
                loaded = rows(fact_contact).where(warehouse.in_days(fact_contact.c.contact_date, days))
                conn.execute(sa.insert(table).from_select([c.name for c in table.columns], loaded))
        return first_contacts.record_days(conn, list(days))


def stored(engine) -> dict[str, tuple[datetime, date]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(customer_first_contact)).all()
    assert len({r.customer_key for r in rows}) == len(rows), "one row per customer"
    return {r.customer_key: (r.first_start, r.first_date) for r in rows}


def expected(loaded: dict[date, pd.DataFrame]) -> dict[str, tuple[datetime, date]]:
    rows = pd.concat([r for r in loaded.values() if len(r)], ignore_index=True)
    rows = rows.dropna(subset=["customer_key"])
    firsts = rows.loc[rows.groupby("customer_key")["start_time"].idxmin()]
    return {r.customer_key: (r.start_time.to_pydatetime(), r.contact_date) for r in firsts.itertuples()}


def test_new_days_earlier_days_and_reloads(engine):
    day1, day2, day0 = DAY, DAY + timedelta(days=1), DAY - timedelta(days=1)
    Changes = first_contacts.FirstContactChanges
    visits = [("u1", 600), ("u2", 720), ("u1", 60), (None, 1)]
    first_load = replace_days(engine, {day1: contact_rows(day1, visits)})
    assert first_load == Changes(inserted=2, earlier=0, looked_up=0)
    assert stored(engine)["u1"] == (datetime(2026, 3, 2, 1, tzinfo=UTC), day1)
    # a later day adds its new customer and changes nobody's first contact
    later = contact_rows(day2, [("u1", 0), ("u2", 5), ("u3", 9)])
    assert replace_days(engine, {day2: later}) == Changes(1, 0, 0)
    # an earlier day (a backfill) moves u2's first contact to it
    assert replace_days(engine, {day0: contact_rows(day0, [("u2", 900)])}) == Changes(0, 1, 0)
    assert stored(engine)["u2"] == (datetime(2026, 3, 1, 15, tzinfo=UTC), day0)
    # day 1 again, unchanged: u1's first contact comes back with it, nobody is looked up
    before = stored(engine)
    assert replace_days(engine, {day1: contact_rows(day1, visits)}) == Changes(1, 0, 0)
    assert stored(engine) == before
    # day 1 again without u1's contacts: u1's first contact is on day 2 now
    assert replace_days(engine, {day1: contact_rows(day1, [("u2", 720)])}) == Changes(0, 0, 1)
    assert stored(engine)["u1"] == (datetime(2026, 3, 3, 0, tzinfo=UTC), day2)
    # day 2 again without u3: u3 had no other contact and is gone (u1's first contact comes back)
    assert replace_days(engine, {day2: contact_rows(day2, [("u1", 0), ("u2", 5)])}) == Changes(1, 0, 1)
    assert set(stored(engine)) == {"u1", "u2"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_loads_and_reloads_agree_with_the_contacts(engine, seed):
    """Loads of one or two days at a time, any day of two weeks, new or loaded before, with
    customers who come back: after each, the table is the contacts' earliest per customer."""
    draw = random.Random(seed)
    customers = [f"c{i}" for i in range(40)] + [None]
    loaded: dict[date, pd.DataFrame] = {}
    totals = {"inserted": 0, "earlier": 0, "looked_up": 0}
    for _ in range(40):
        days = {DAY + timedelta(days=draw.randrange(14)) for _ in range(draw.choice((1, 1, 2)))}
        rows = {day: contact_rows(day, [(draw.choice(customers), draw.randrange(1440))
                                        for _ in range(draw.randrange(0, 25))]) for day in days}
        changes = replace_days(engine, rows)
        loaded.update(rows)
        for name in totals:
            totals[name] += getattr(changes, name)
        assert stored(engine) == expected(loaded)
    assert all(totals.values()), f"every path taken: {totals}"
