"""Repeat contacts are flagged over the day's rows and the warehouse's 7 days before."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipelines import warehouse
from pipelines.conform import facts, repeats
from pipelines.conform.catalog import load_catalog
from pipelines.model import fact_contact
from pipelines.settings import REPO_ROOT

KEY = "test-key"


def contacts(ids, customers, times):
    n = len(ids)
    clean = pd.DataFrame({
        "contact_id": ids, "customer_ref": customers, "case_number": [None] * n, "queue": ["NATZ"] * n,
        "channel": ["phone"] * n, "reason": ["status_inquiry"] * n,
        "start_time": pd.to_datetime(pd.Series(times), utc=True).astype("datetime64[us, UTC]"),
        "wait_seconds": [1] * n, "handle_seconds": [1] * n, "resolved_first_contact": [True] * n,
        "transferred": [False] * n, "abandoned": [False] * n, "customer_type": ["individual"] * n,
        "language": ["en"] * n, "region": ["west"] * n,
    })
    rows = facts.conform_contacts(clean, load_catalog(REPO_ROOT / "schemas"), KEY).rows
    assert rows["repeat_within_7d"].isna().all()  # conform leaves the flag to the warehouse
    return warehouse.to_arrow(rows, fact_contact)


def load(engine, rows, tmp_path, name):
    spool = tmp_path / f"{name}.parquet"
    pq.write_table(rows, spool)
    flagged = tmp_path / f"{name}-flagged.parquet"
    with engine.begin() as conn:
        repeats.flag_contacts(conn, spool, flagged)
        return warehouse.insert_parquet(conn, fact_contact, flagged)


def expected_flags(all_rows: pd.DataFrame, day_ids: list[str]) -> dict[str, bool]:
    """Straight from the definition: an earlier contact (same customer, service) at most 7 days before."""
    flags = {}
    for contact_id in day_ids:
        me = all_rows.loc[contact_id]
        same = all_rows[(all_rows.customer == me.customer) & (all_rows.index != contact_id)]
        earlier = same[(same.start < me.start) | ((same.start == me.start) & (same.index < contact_id))]
        flags[contact_id] = bool(me.customer is not None and
                                 ((me.start - earlier.start) <= timedelta(days=7)).any())
    return flags


@pytest.fixture(params=["duckdb", "postgresql"])
def engine(request, tmp_path, server_database):
    url = (f"duckdb:///{tmp_path / 'w.duckdb'}" if request.param == "duckdb"
           else server_database("postgresql", "repeats").replace("postgresql://", "postgresql+psycopg://"))
    engine = warehouse.engine_for(url)
    fact_contact.create(engine)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("bucket_rows", [repeats.FLAG_BUCKET_ROWS, 2], ids=["one window", "windows of 2"])
def test_flags_count_history_and_same_day_and_ignore_older_than_7_days(engine, tmp_path, bucket_rows,
                                                                       monkeypatch):
    monkeypatch.setattr(repeats, "FLAG_BUCKET_ROWS", bucket_rows)  # 9 contacts: 5 buckets of customers
    # history: C2 six days before, C3 eight days before, C4 exactly 7 days before,
    # C5 nine and two days before, C6 ten and eight days before, and contacts without a customer
    history_ids = ["H2", "H3", "H4", "H5a", "H5b", "H6a", "H6b", "H7"]
    history = contacts(history_ids, ["C2", "C3", "C4", "C5", "C5", "C6", "C6", None],
                       ["2026-03-02T10:00Z", "2026-02-28T10:00Z", "2026-03-01T09:00Z", "2026-02-27T09:00Z",
                        "2026-03-06T09:00Z", "2026-02-26T09:00Z", "2026-02-28T09:00Z", "2026-03-07T09:00Z"])
    assert load(engine, history, tmp_path, "history") == len(history_ids)
    day_ids = ["K1", "K2", "K3", "K4", "K5", "K6", "K7", "K8", "K9"]
    day = contacts(day_ids, ["C1", "C1", "C2", "C3", "C4", None, None, "C5", "C6"],
                   ["2026-03-08T09:00Z", "2026-03-08T12:00Z", "2026-03-08T09:00Z", "2026-03-08T09:00Z",
                    "2026-03-08T09:00Z", "2026-03-08T09:00Z", "2026-03-08T09:30Z", "2026-03-08T09:00Z",
                    "2026-03-08T09:00Z"])
    assert load(engine, day, tmp_path, "day") == len(day_ids)

    on_the_day = fact_contact.c.contact_date == datetime(2026, 3, 8, tzinfo=UTC).date()
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(fact_contact.c.contact_key, fact_contact.c.repeat_within_7d)
                                   .where(on_the_day)).all())
    both = pd.concat([history.to_pandas(), day.to_pandas()])
    customers = both["customer_key"].astype(object).where(both["customer_key"].notna(), None)
    both = pd.DataFrame({"customer": customers, "start": both["start_time"]}).set_axis(
        [*history_ids, *day_ids])
    expected = expected_flags(both, day_ids)
    keys = dict(zip(day_ids, day.column("contact_key").to_pylist(), strict=True))
    assert {i: stored[keys[i]] for i in day_ids} == expected
    assert expected == {"K1": False, "K2": True, "K3": True, "K4": False, "K5": True,
                        "K6": False, "K7": False, "K8": True, "K9": False}


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)  # DuckDB stores no lookups
def test_a_lookup_that_fails_to_load_fails_the_flags_and_leaves_no_files(engine, tmp_path, monkeypatch):
    """The contact lookups' rows are ordered on a thread while PostgreSQL copies the previous
    lookup's; when a COPY fails, the rows ordered for the others and the flags are not left behind."""
    from pipelines import nightly
    from pipelines.conform import contact_lookups
    from pipelines.interval import Interval

    warehouse.ensure_schema(engine, bi_layer=False)
    spool = tmp_path / "conformed-run.parquet"
    pq.write_table(contacts(["K1", "K2", "K3"], ["C1", "C2", "C1"],
                            ["2026-03-08T09:00Z", "2026-03-08T10:00Z", "2026-03-08T11:00Z"]), spool)
    loaded = []
    load_rows = contact_lookups.replace_lookup_days

    def load_one_then_fail(conn, table, path, days):
        if loaded:
            raise RuntimeError(f"COPY into {table.name} failed")
        loaded.append(table.name)
        return load_rows(conn, table, path, days)

    monkeypatch.setattr(contact_lookups, "replace_lookup_days", load_one_then_fail)
    night = Interval(datetime(2026, 3, 8, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC))
    with pytest.raises(RuntimeError, match="COPY into contact_by_case failed"), engine.begin() as conn:
        nightly._flag_contacts_and_fill_lookups(conn, spool, "run", night)
    assert loaded == ["contact_customer_day"]
    assert [p.name for p in tmp_path.iterdir()] == [spool.name]
