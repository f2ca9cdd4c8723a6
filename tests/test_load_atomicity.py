"""A load that dies midway leaves the warehouse (and the lake) as they were; the rerun balances.

Night 1 is loaded; night 2 is extracted and staged. Then its load is broken twice, each
time after the case facts were already replaced inside the transaction: once by an error
raised in the transaction, once by killing the loading process with SIGKILL while the
transaction is open. Both leave every table and lake file exactly as before. A plain
rerun then loads night 2, and the ledger balances against the source files. On DuckDB and
on a real PostgreSQL database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from demo_homes import SOURCES_WITHOUT_SURVEY, home_without_survey

from pipelines import ledger, nightly, warehouse
from pipelines.demo import advance_sources, build_demo_sources
from pipelines.interval import Interval
from pipelines.model import fact_case, fact_contact, metadata
from pipelines.settings import REPO_ROOT, Settings

DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 3)
SOURCES = SOURCES_WITHOUT_SURVEY
NIGHT2 = Interval.for_day(DAY2)


def midnight_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


@dataclass
class Staged:
    settings: Settings
    env: dict[str, str]


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def night2_staged(request, tmp_path_factory) -> Staged:
    home = tmp_path_factory.mktemp(f"atomicity_{request.param}")
    server = {}
    if request.param == "postgresql":
        server["XOFLOW_WAREHOUSE_URL"] = request.getfixturevalue("server_database")("postgresql", "atomicity")
    settings, demo, env = home_without_survey(home, "atomicity-test-key", **server)
    world = build_demo_sources(demo, DAY1, DAY2, seed=7, as_of=midnight_after(DAY1))
    nightly.run_day(DAY1, "night1", settings)
    advance_sources(demo, world, midnight_after(DAY2))
    for source in nightly.source_names(settings):
        nightly.extract_and_validate(source, NIGHT2.start, NIGHT2.end, "night2", settings)
    return Staged(settings, env)


def dump_warehouse(url: str) -> dict[str, list[tuple]]:
    """Every row of every table, including who loaded it and when."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {t.name: sorted(map(tuple, conn.execute(sa.select(t)).all()), key=repr)
                    for t in metadata.sorted_tables}
    finally:
        engine.dispose()


def dump_lake(settings: Settings) -> dict[str, list]:
    return {str(p.relative_to(settings.lake_dir)): pq.read_table(p).to_pylist()
            for p in sorted(settings.lake_dir.rglob("*.parquet"))}


def night2_cases_in_warehouse(conn: sa.Connection) -> int:
    query = sa.select(sa.func.count()).select_from(fact_case).where(
        fact_case.c.updated_at >= NIGHT2.start, fact_case.c.updated_at < NIGHT2.end)
    return conn.execute(query).scalar()


def release_warehouse(settings: Settings) -> None:
    """Close this process's pooled connections (a DuckDB file admits one writing process)."""
    warehouse.engine_for(settings.warehouse_url).dispose()


def test_an_error_after_the_facts_were_replaced_leaves_everything_as_it_was(night2_staged, monkeypatch):
    settings = night2_staged.settings
    before, lake_before = dump_warehouse(settings.warehouse_url), dump_lake(settings)
    assert before["fact_case"] and sum(1 for r in before["ledger"] if r[0] == "case_db") == 1
    inside: dict[str, int] = {}

    def fail_after_the_facts(conn, entry, now=None):
        inside[entry.source] = night2_cases_in_warehouse(conn)
        raise RuntimeError("the load died after replacing the facts")

    monkeypatch.setattr(ledger, "record", fail_after_the_facts)
    with pytest.raises(RuntimeError, match="died after replacing"):
        nightly.conform_and_load(NIGHT2.start, NIGHT2.end, "night2", settings)

    assert inside["case_db"] > 0  # the transaction had night 2's cases in place...
    assert dump_warehouse(settings.warehouse_url) == before  # ...and none of it stayed
    assert dump_lake(settings) == lake_before


STALLING_LOAD = """
import pathlib, sys, time
from datetime import datetime
from pipelines import ledger, nightly
from pipelines.settings import Settings

marker = pathlib.Path(sys.argv[1])

def stall(conn, entry, now=None):  # the facts are replaced; the ledger row is next
    marker.write_text(entry.source)
    time.sleep(3600)

ledger.record = stall
nightly.conform_and_load(datetime.fromisoformat(sys.argv[2]), datetime.fromisoformat(sys.argv[3]),
                         "night2", Settings.from_env())
"""


def test_a_killed_load_leaves_everything_as_it_was_and_a_rerun_balances(night2_staged, tmp_path):
    settings = night2_staged.settings
    before, lake_before = dump_warehouse(settings.warehouse_url), dump_lake(settings)
    marker = tmp_path / "inside_the_transaction"
    release_warehouse(settings)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("XOFLOW_")} | night2_staged.env
    child = subprocess.Popen(
        [sys.executable, "-c", STALLING_LOAD, str(marker), NIGHT2.start.isoformat(), NIGHT2.end.isoformat()],
        env=child_env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300  # a bound against hanging, not a speed check
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), f"the load never reached its ledger step:\n{child.stdout.read().decode()}"
        assert marker.read_text() in SOURCES  # two sources load at once: either may get there first
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    assert dump_warehouse(settings.warehouse_url) == before
    assert dump_lake(settings) == lake_before

    report = nightly.conform_and_load(NIGHT2.start, NIGHT2.end, "night2", settings)

    assert set(report["loaded"]) == set(SOURCES) and not report["failed"]
    engine = warehouse.engine_for(settings.warehouse_url)
    with engine.connect() as conn:
        entries = {r.source: r for r in conn.execute(
            sa.select(metadata.tables["ledger"]).where(
                metadata.tables["ledger"].c.interval_start == NIGHT2.start)).all()}
        contacts = conn.execute(sa.select(sa.func.count()).select_from(fact_contact).where(
            fact_contact.c.contact_date == DAY2)).scalar()
        cases = night2_cases_in_warehouse(conn)
    assert set(entries) == set(SOURCES)
    for entry in entries.values():
        assert entry.status == "loaded" and entry.run_id == "night2"
        assert entry.rows_read == entry.rows_loaded + entry.rows_quarantined, entry
    drop = settings.landing_dir / "contact_center" / f"contacts_{DAY2.isoformat()}.csv"
    assert entries["contact_center"].rows_read == len(drop.read_text().splitlines()) - 1
    assert entries["contact_center"].rows_loaded == contacts
    assert entries["case_db"].rows_loaded == cases > 0


def test_a_source_that_fails_to_load_leaves_the_sources_loaded_beside_it(night2_staged, monkeypatch):
    """Sources load two at a time, each in a transaction of its own: the case load failing
    rolls back night 2's cases only; the contacts, web and feedback loaded beside it stay,
    and the error still fails the load."""
    settings = night2_staged.settings
    before = dump_warehouse(settings.warehouse_url)
    record = ledger.record

    def fail_for_cases(conn, entry, now=None):
        if entry.source == "case_db":
            raise RuntimeError("the case load died")
        return record(conn, entry, now)

    monkeypatch.setattr(ledger, "record", fail_for_cases)
    with pytest.raises(RuntimeError, match="case load died"):
        nightly.conform_and_load(NIGHT2.start, NIGHT2.end, "night2", settings)

    after = dump_warehouse(settings.warehouse_url)
    assert after["fact_case"] == before["fact_case"]

    def night2_entries(rows: list[tuple]) -> dict[str, tuple]:  # ledger rows: source first
        return {row[0]: row for row in rows if row[1] == NIGHT2.start}

    entries_before, entries_after = night2_entries(before["ledger"]), night2_entries(after["ledger"])
    assert entries_after["case_db"] == entries_before["case_db"]
    for source in set(SOURCES) - {"case_db"}:  # loaded again, committed: a later loaded_at
        assert entries_after[source] != entries_before[source], source
