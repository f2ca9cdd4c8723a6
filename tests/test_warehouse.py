"""Loading: partition replace is atomic and idempotent; newer case versions win; DuckDB and PostgreSQL alike.

Every warehouse test runs on the embedded DuckDB file and on a real PostgreSQL database
(loaded with COPY), with the same expectations.
"""

from datetime import UTC, date, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from sqlalchemy.schema import DropView

from pipelines import lake, warehouse
from pipelines.model import (
    CONTACT_DERIVED,
    contact_by_case,
    contact_customer_day,
    customer_first_contact,
    fact_case,
    fact_contact,
    fact_web_daily,
    metadata,
    quarantine,
)


@pytest.fixture(scope="module")
def postgres_url(server_database) -> str:
    return server_database("postgresql", "warehouse")


@pytest.fixture(params=["duckdb", "postgresql"])
def engine(request, tmp_path):
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    else:
        url = request.getfixturevalue("postgres_url")
        with warehouse.engine_for(url).begin() as conn:  # an empty warehouse for each test
            conn.execute(sa.text("DROP SCHEMA IF EXISTS bi CASCADE"))
            stored = warehouse.stored_tables(conn.dialect.name)
            for view in (t for t in CONTACT_DERIVED if t not in stored):
                conn.execute(DropView(view, if_exists=True))
            metadata.drop_all(conn, tables=stored)
    engine = warehouse.engine_for(url)
    warehouse.ensure_schema(engine)
    yield engine
    engine.dispose()


def web_rows(day: date, sessions: int) -> pa.Table:
    frame = pd.DataFrame({"date_day": [day, day], "page_path": ["/a/status", "/b/apply"],
                          "service_id": ["a", "b"], "journey_id": ["j", "j"], "stage": ["s", "s"],
                          "sessions": [sessions, sessions], "task_starts": [1, 1],
                          "task_completions": [1, 1], "status_checks": [0, 0]})
    return warehouse.to_arrow(frame, fact_web_daily)


def table_rows(engine, table) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(table)).all(), key=repr)


def replace_day(conn, day, rows):
    warehouse.replace_where(conn, fact_web_daily, fact_web_daily.c.date_day == day, rows)


def test_replacing_a_partition_twice_leaves_the_same_rows(engine):
    day = date(2026, 3, 1)
    for _ in range(2):
        with engine.begin() as conn:
            replace_day(conn, day, web_rows(day, 10))
            replace_day(conn, date(2026, 3, 2), web_rows(date(2026, 3, 2), 5))
    rows = table_rows(engine, fact_web_daily)
    assert len(rows) == 4 and sum(r.sessions for r in rows) == 30


def test_a_failure_inside_the_transaction_leaves_the_previous_partition(engine):
    day = date(2026, 3, 1)
    with engine.begin() as conn:
        replace_day(conn, day, web_rows(day, 10))
    before = table_rows(engine, fact_web_daily)
    with pytest.raises(RuntimeError, match="midway"), engine.begin() as conn:
        replace_day(conn, day, web_rows(day, 99))
        raise RuntimeError("killed midway")
    assert table_rows(engine, fact_web_daily) == before


def test_readers_see_the_old_partition_until_the_replace_commits(engine):
    day = date(2026, 3, 1)
    with engine.begin() as conn:
        replace_day(conn, day, web_rows(day, 10))
    with engine.connect() as writer, engine.connect() as reader:  # two sessions of the same warehouse
        with writer.begin():
            replace_day(writer, day, web_rows(day, 99))
            seen_during = reader.execute(sa.select(sa.func.sum(fact_web_daily.c.sessions))).scalar()
            reader.rollback()
        seen_after = reader.execute(sa.select(sa.func.sum(fact_web_daily.c.sessions))).scalar()
    assert (seen_during, seen_after) == (20, 198)


def case_row(key: str, status: str, updated: datetime) -> dict:
    return {c.name: None for c in fact_case.columns} | {
        "case_key": key, "service_id": "s", "status": status, "updated_at": updated}


@pytest.mark.parametrize("given_as", ["arrow", "parquet file"])
def test_upsert_keeps_the_newest_version_of_a_case(engine, given_as, tmp_path):
    old, new = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)
    def load(rows):
        table = warehouse.to_arrow(pd.DataFrame(rows), fact_case)
        if given_as == "parquet file":  # as the nightly load gives its spool: read in place
            pq.write_table(table, tmp_path / "cases.parquet")
            table = tmp_path / "cases.parquet"
        with engine.begin() as conn:
            return warehouse.upsert_newer(conn, fact_case, table, key="case_key", version="updated_at")
    written = [load([case_row("k1", "received", old), case_row("k2", "received", old)]),
               load([case_row("k1", "approved", new), case_row("k3", "received", new)]),
               load([case_row("k1", "received", old)]),  # re-running the older day changes nothing
               load([case_row("k3", "closed", new)])]  # the same version again: this run's wins
    with engine.connect() as conn:
        status = dict(conn.execute(sa.select(fact_case.c.case_key, fact_case.c.status)).all())
    assert status == {"k1": "approved", "k2": "received", "k3": "closed"}
    assert written == [2, 2, 0, 1]


def test_rerunning_a_night_of_case_updates_fits_duckdbs_memory_bound(tmp_path, monkeypatch):
    """Every stored case replaced again, as a re-run of the night does, under a small memory bound.

    Deleting the cases and inserting them again held each key of fact_case's primary key twice
    in memory until the commit: 600k cases ran out of 96 MB (and 2M cases, a night at 4x the
    benchmark's size, out of the warehouse's 512 MB).
    """
    monkeypatch.setattr(warehouse, "DUCKDB_MEMORY_LIMIT", "80MB")
    engine = warehouse.engine_for(f"duckdb:///{tmp_path / 'bounded.duckdb'}")
    warehouse.ensure_schema(engine)
    cases = 600_000
    night = pd.DataFrame([case_row("k", "received", datetime(2026, 3, 2, tzinfo=UTC))] * cases)
    night["case_key"] = [f"{number:064x}" for number in range(cases)]  # as long as an HMAC key
    spool = tmp_path / "cases.parquet"
    pq.write_table(warehouse.to_arrow(night, fact_case), spool)
    for _ in range(2):
        with engine.begin() as conn:
            written = warehouse.upsert_newer(conn, fact_case, spool, key="case_key", version="updated_at")
        assert written == cases
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count(), sa.func.count(fact_case.c.case_key.distinct()))
                            .select_from(fact_case)).one() == (cases, cases)
    engine.dispose()


AWKWARD_TEXT = ['plain', '', None, 'quote " and, comma', 'two\nlines\r\nand a tab\t', "it's ünïcödé ✓",
                '\\N', 'NULL', '{"json": [1, "a,b"]}', ' leading and trailing ']


def test_every_value_arrives_exactly_as_sent_through_the_bulk_path(engine):
    """Empty text stays empty, NULL stays NULL, quotes, commas, newlines and backslashes survive."""
    n = len(AWKWARD_TEXT)
    frame = pd.DataFrame({
        "source": ["s"] * n, "partition_date": [date(2026, 3, 1)] * n, "run_id": ["r"] * n,
        "origin": AWKWARD_TEXT, "row_number": [None, 0, -1, 2**31 - 1, *range(n - 4)],
        "failed_check": ["c"] * n, "column_name": ["x"] * n, "reason": AWKWARD_TEXT[::-1],
        "record": AWKWARD_TEXT,
    })
    rows = warehouse.to_arrow(frame, quarantine)
    with engine.begin() as conn:
        warehouse.replace_where(conn, quarantine, sa.true(), rows)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(quarantine.c.row_number, quarantine.c.origin, quarantine.c.reason,
                                        quarantine.c.record)).all()
    expected = list(zip(rows.column("row_number").to_pylist(), AWKWARD_TEXT, AWKWARD_TEXT[::-1], AWKWARD_TEXT,
                        strict=True))
    assert sorted(map(tuple, stored), key=repr) == sorted(expected, key=repr)


def test_timestamps_dates_booleans_and_floats_survive_the_bulk_path(engine):
    moments = [datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC), None]
    rows = [case_row(f"k{i}", "approved", datetime(2026, 3, 2, tzinfo=UTC)) | {
        "received_at": moment, "received_date": moment.date() if moment else None,
        "over_standard": [True, False, None][i], "cycle_days": [0, None, 12345][i]}
        for i, moment in enumerate(moments)]
    with engine.begin() as conn:
        warehouse.upsert_newer(conn, fact_case, warehouse.to_arrow(pd.DataFrame(rows), fact_case),
                               key="case_key", version="updated_at")
    with engine.connect() as conn:
        stored = {r.case_key: r for r in conn.execute(sa.select(fact_case)).all()}
    for i, moment in enumerate(moments):
        row = stored[f"k{i}"]
        assert row.received_at == moment
        assert row.received_date == (moment.date() if moment else None)
        assert row.over_standard is [True, False, None][i]
        assert row.cycle_days == [0, None, 12345][i]


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_postgresql_rows_arrive_by_copy_not_by_insert(engine):
    """SQLAlchemy sees the DELETE of the partition but no INSERT: the rows went through COPY."""
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        with engine.begin() as conn:
            replace_day(conn, date(2026, 3, 1), web_rows(date(2026, 3, 1), 7))
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert [r.sessions for r in table_rows(engine, fact_web_daily)] == [7, 7]
    assert any(s.lstrip().upper().startswith("DELETE") for s in statements)
    assert not [s for s in statements if s.lstrip().upper().startswith("INSERT")], statements


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_a_value_too_large_for_its_column_is_refused_naming_the_column(engine):
    """Binary COPY sends values as stored: 2**31 cannot become an INTEGER, and the error says where."""
    too_large = web_rows(date(2026, 3, 1), 2**31)
    with pytest.raises(ValueError, match=r"fact_web_daily\.sessions.*INTEGER"), engine.begin() as conn:
        replace_day(conn, date(2026, 3, 1), too_large)
    assert table_rows(engine, fact_web_daily) == []


def test_a_warehouse_made_before_the_contact_lookups_gets_them_filled_from_its_contacts(engine):
    """The tables derived from fact_contact are new to a warehouse that already holds contacts:
    ensure_schema fills those it stores from fact_contact, as the loads would have. DuckDB's
    views of the contact lookups show the same rows."""
    day = date(2026, 3, 1)
    contacts = pd.DataFrame({column.name: [None] * 4 for column in fact_contact.columns} | {
        "contact_key": ["k1", "k2", "k3", "k4"], "contact_date": [day] * 4,
        "customer_key": ["u1", "u1", None, "u2"], "case_key": ["c1", None, "c1", None],
        "channel": ["phone", "chat", "email", "chat"],
        "start_time": [datetime(2026, 3, 1, h, tzinfo=UTC) for h in (10, 9, 11, 12)],
        "wait_seconds": [30, 40, None, 5], "abandoned": [False, True, False, False]})
    with engine.begin() as conn:
        warehouse.insert_rows(conn, fact_contact, warehouse.to_arrow(contacts, fact_contact))
        for table in CONTACT_DERIVED:  # as before they were declared
            if table in warehouse.stored_tables(engine.dialect.name):
                table.drop(conn)
    warehouse.ensure_schema(engine)
    with engine.connect() as conn:
        links = sorted(conn.execute(sa.select(contact_by_case.c.contact_key, contact_by_case.c.case_key,
                                              contact_by_case.c.wait_seconds, contact_by_case.c.abandoned)))
        firsts = sorted(conn.execute(sa.select(contact_customer_day)))
        first_contacts = sorted(conn.execute(sa.select(customer_first_contact)))
        kinds = dict(conn.execute(sa.text(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_name IN "
            "('contact_by_case', 'contact_customer_day', 'customer_first_contact')")).all())
    assert links == [("k1", "c1", 30, False), ("k3", "c1", None, False)]
    assert firsts == [("u1", day, datetime(2026, 3, 1, 9, tzinfo=UTC)),
                      ("u2", day, datetime(2026, 3, 1, 12, tzinfo=UTC))]
    assert first_contacts == [("u1", datetime(2026, 3, 1, 9, tzinfo=UTC), day),
                              ("u2", datetime(2026, 3, 1, 12, tzinfo=UTC), day)]
    lookups = "BASE TABLE" if engine.dialect.name == "postgresql" else "VIEW"
    assert kinds == {"contact_by_case": lookups, "contact_customer_day": lookups,
                     "customer_first_contact": "BASE TABLE"}
    warehouse.ensure_schema(engine)  # only a new table is filled: a second call adds nothing
    assert len(table_rows(engine, contact_by_case)) == 2
    assert len(table_rows(engine, contact_customer_day)) == 2
    assert len(table_rows(engine, customer_first_contact)) == 2


def test_an_unsupported_database_is_refused_with_the_fix(tmp_path):
    with pytest.raises(warehouse.UnsupportedWarehouse, match="sqlite.*duckdb.*postgresql\\+psycopg"):
        warehouse.engine_for(f"sqlite:///{tmp_path / 'wh.sqlite'}")


def test_lake_partition_is_replaced_whole(tmp_path):
    path = lake.partition_path(tmp_path, "fact_web_daily", "date_day", date(2026, 3, 1))
    lake.write_partition(path, pa.table({"x": [1, 2, 3]}))
    lake.write_partition(path, pa.table({"x": [4]}))
    assert lake.read_partition(path).to_pydict() == {"x": [4]}
    assert [p.name for p in path.parent.iterdir()] == ["part.parquet"]


def test_a_written_file_replaces_a_lake_partition_whole_and_stays_where_it_was(tmp_path):
    path = lake.partition_path(tmp_path / "lake", "fact_contact", "contact_date", date(2026, 3, 1))
    lake.write_partition(path, pa.table({"x": [1, 2, 3]}))
    written = tmp_path / "flagged.parquet"
    pq.write_table(pa.table({"x": [4, 5]}), written)
    lake.place_partition(path, written)
    assert lake.read_partition(path).to_pydict() == {"x": [4, 5]}
    assert [p.name for p in path.parent.iterdir()] == ["part.parquet"]
    written.unlink()  # the spool goes; the partition stays
    assert lake.read_partition(path).to_pydict() == {"x": [4, 5]}


@pytest.mark.parametrize("bad", ["../etc", "Drop Table", "x;y"])
def test_unsafe_lake_names_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="unsafe"):
        lake.partition_path(tmp_path, bad, "date_day", date(2026, 3, 1))
