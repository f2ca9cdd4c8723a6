"""``xoflow backfill`` with extract workers: the same warehouse as loading the days one by one.

Two homes get the same demo sources (same seed, same broken contact file on one day). One
is loaded the plain sequential way, ``nightly.run_day`` day after day; the other by the
``backfill`` command with two extract processes. Every table must hold the same rows (the
run id and load time aside), and the counts are checked against the source files and the
case database themselves.
"""

from __future__ import annotations

import csv
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pipelines import nightly
from pipelines.backfill import BackfillResult, run_backfill
from pipelines.cli import app
from pipelines.demo import build_demo_sources
from pipelines.demo.survey_api_server import SurveyApiServer
from pipelines.model import metadata
from pipelines.settings import Settings

DAYS = [date(2026, 3, 1) + timedelta(days=i) for i in range(4)]
BROKEN = DAYS[2]  # its contact-center file lacks a required column
SOURCES = ("case_db", "contact_center", "survey", "web_analytics", "feedback")
RUN_COLUMNS = {"run_id", "loaded_at"}  # who loaded a row and when: differ on every run by design


def midnight_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


@dataclass
class Loaded:
    settings: Settings
    exit_code: int
    output: str


def demo_home(home: Path, mp: pytest.MonkeyPatch) -> Settings:
    """Demo sources for DAYS under ``home`` (the case DB and survey store as of the end)."""
    mp.setenv("XOFLOW_HOME", str(home))
    for name in ("XOFLOW_WAREHOUSE_URL", "XOFLOW_CASE_DB_URL", "XOFLOW_LANDING_DIR", "XOFLOW_LAKE_DIR",
                 "XOFLOW_RAW_DIR", "XOFLOW_SURVEY_API_URL"):
        mp.delenv(name, raising=False)
    settings = Settings.from_env()
    build_demo_sources(settings, DAYS[0], DAYS[-1], seed=5, as_of=midnight_after(DAYS[-1]))
    broken = contact_file(settings, BROKEN)
    with broken.open() as handle:
        rows = list(csv.DictReader(handle))
    with broken.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, [f for f in rows[0] if f != "wait_seconds"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return settings


def contact_file(settings: Settings, day: date) -> Path:
    return settings.landing_dir / "contact_center" / f"contacts_{day.isoformat()}.csv"


def survey_api(settings: Settings) -> SurveyApiServer:
    return SurveyApiServer(settings.landing_dir / "survey" / "responses.json", settings.survey_api_key)


@pytest.fixture(scope="module")
def sequential(tmp_path_factory) -> Iterator[Settings]:
    with pytest.MonkeyPatch.context() as mp:
        settings = demo_home(tmp_path_factory.mktemp("sequential"), mp)
        with survey_api(settings) as server:
            served = replace(settings, survey_api_url=server.url)
            for day in DAYS:
                nightly.run_day(day, f"sequential__{day.isoformat()}", served)
        yield settings


@pytest.fixture(scope="module")
def parallel(tmp_path_factory) -> Iterator[Loaded]:
    with pytest.MonkeyPatch.context() as mp:
        settings = demo_home(tmp_path_factory.mktemp("parallel"), mp)
        with survey_api(settings) as server:
            mp.setenv("XOFLOW_SURVEY_API_URL", server.url)
            result = CliRunner().invoke(app, ["backfill", "--start", DAYS[0].isoformat(), "--end",
                                              DAYS[-1].isoformat(), "--workers", "2"], terminal_width=200)
        yield Loaded(settings, result.exit_code, result.output)


@dataclass
class Direct:
    settings: Settings
    result: BackfillResult
    parent: int


@pytest.fixture(scope="module")
def direct(tmp_path_factory) -> Iterator[Direct]:
    """``run_backfill`` called directly, with a look-ahead of one day, to see when each task ran."""
    with pytest.MonkeyPatch.context() as mp:
        settings = demo_home(tmp_path_factory.mktemp("direct"), mp)
        with survey_api(settings) as server:
            result = run_backfill(DAYS, replace(settings, survey_api_url=server.url), workers=2, lookahead=1)
        yield Direct(settings, result, os.getpid())


def dump_warehouse(settings: Settings) -> dict[str, list[tuple]]:
    """Every table's rows, sorted, without run ids and load times, with the home folder masked."""
    home = str(settings.home)

    def plain(value: object) -> object:
        return value.replace(home, "<home>") if isinstance(value, str) else value

    engine = sa.create_engine(settings.warehouse_url)
    tables = {}
    try:
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                columns = [c for c in table.columns if c.name not in RUN_COLUMNS]
                rows = conn.execute(sa.select(*columns)).all()
                tables[table.name] = sorted((tuple(map(plain, r)) for r in rows), key=repr)
    finally:
        engine.dispose()
    return tables


def ledger(settings: Settings) -> dict[tuple[str, date], dict]:
    engine = sa.create_engine(settings.warehouse_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM ledger")).mappings().all()
    finally:
        engine.dispose()
    return {(r["source"], r["interval_start"].date()): dict(r) for r in rows}


def cases_updated(settings: Settings, start: datetime | None, end: datetime) -> int:
    """Cases whose last change falls in [start, end), read from the case database's file."""
    with sqlite3.connect(settings.case_db_url.removeprefix("sqlite:///")) as db:
        stamps = [datetime.fromisoformat(u).replace(tzinfo=UTC)
                  for (u,) in db.execute("SELECT updated_at FROM cases")]
    return sum((start is None or s >= start) and s < end for s in stamps)


def test_parallel_backfill_leaves_the_same_tables_as_loading_day_by_day(sequential, parallel):
    expected, got = dump_warehouse(sequential), dump_warehouse(parallel.settings)
    assert sum(len(rows) for rows in expected.values()) > 10_000
    assert expected["mart_journey_service_daily"] and expected["fact_contact"]
    for name in expected:
        assert got[name] == expected[name], name


def test_with_another_look_ahead_the_tables_are_the_same_too(sequential, direct):
    assert dump_warehouse(direct.settings) == dump_warehouse(sequential)
    assert [(d, s) for d, s, _ in direct.result.failures] == [(BROKEN, "contact_center")]


def test_loads_run_in_date_order_in_this_process_after_their_days_extracts(direct):
    loads = [t for t in direct.result.timings if t.kind == "load"]
    assert [t.day for t in loads] == DAYS
    assert {t.pid for t in loads} == {direct.parent}
    assert all(a.finished <= b.started for a, b in zip(loads, loads[1:], strict=False))
    load_of = {t.day: t for t in loads}
    extracts = [t for t in direct.result.timings if t.kind == "extract"]
    assert sorted((t.day, t.source) for t in extracts) == sorted((d, s) for d in DAYS for s in SOURCES)
    for t in extracts:
        assert t.finished <= load_of[t.day].started, t
    # other days' extracts ran in worker processes while this one loaded
    assert {t.pid for t in extracts if t.day != DAYS[0]} - {direct.parent}


def test_extracts_stay_within_the_look_ahead_and_the_snapshot_waits_for_its_first_load(direct):
    load_of = {t.day: t for t in direct.result.timings if t.kind == "load"}
    for t in direct.result.timings:
        if t.kind != "extract":
            continue
        index = DAYS.index(t.day)
        if index >= 2:  # look-ahead 1: day d is extracted once day d-2 is loaded
            assert t.started >= load_of[DAYS[index - 2]].finished, t
        if t.source == "case_db" and index >= 1:  # not before the all-history first load is in the lake
            assert t.started >= load_of[DAYS[0]].finished, t


def test_the_case_snapshot_loads_all_history_once_then_only_each_days_changes(parallel):
    read = {day: row["rows_read"] for (source, day), row in ledger(parallel.settings).items()
            if source == "case_db"}
    assert read[DAYS[0]] == cases_updated(parallel.settings, None, midnight_after(DAYS[0]))
    assert read[DAYS[0]] > 10 * read[DAYS[1]] > 0
    for day in DAYS[1:]:
        start = datetime.combine(day, time(), tzinfo=UTC)
        assert read[day] == cases_updated(parallel.settings, start, midnight_after(day))


def test_every_row_of_each_contact_file_is_counted(parallel):
    rows = ledger(parallel.settings)
    for day in DAYS:
        if day != BROKEN:
            lines = len(contact_file(parallel.settings, day).read_text().splitlines()) - 1
            assert rows[("contact_center", day)]["rows_read"] == lines


def test_a_broken_file_fails_only_its_source_and_day_and_the_command_exits_non_zero(parallel):
    assert parallel.exit_code == 1, parallel.output
    rows = ledger(parallel.settings)
    assert set(rows) == {(s, d) for s in SOURCES for d in DAYS}
    failed = {key for key, row in rows.items() if row["status"] != "loaded"}
    assert failed == {("contact_center", BROKEN)}
    message = rows[("contact_center", BROKEN)]["message"]
    assert f"contacts_{BROKEN.isoformat()}.csv" in message and "wait_seconds" in message
    for key, row in rows.items():
        if key not in failed:
            assert row["rows_read"] == row["rows_loaded"] + row["rows_quarantined"] > 0, key
    reported = [line for line in parallel.output.splitlines() if line.startswith("failed")]
    assert len(reported) == 1
    assert f"{BROKEN} contact_center" in reported[0] and "wait_seconds" in reported[0]


def report_value(output: str, measure: str) -> str:
    """The backfill column of one measure in the throughput table."""
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("│┃").split("│")]
        if len(cells) == 2 and cells[0] == measure:
            return cells[1]
    raise AssertionError(f"no {measure!r} in the report:\n{output}")


def test_the_report_gives_volumes_time_rates_and_the_workers_used(parallel):
    rows = ledger(parallel.settings)
    assert f"Backfill throughput: {len(DAYS)} days" in parallel.output
    assert report_value(parallel.output, "days") == str(len(DAYS))
    for measure, column in (("rows read", "rows_read"), ("rows loaded", "rows_loaded"),
                            ("rows quarantined", "rows_quarantined")):
        assert report_value(parallel.output, measure) == f"{sum(r[column] for r in rows.values()):,}"
    assert report_value(parallel.output, "extract workers") == "2"
    wall = float(report_value(parallel.output, "wall seconds"))
    read = sum(r["rows_read"] for r in rows.values())
    rate = float(report_value(parallel.output, "rows/s (read)").replace(",", ""))
    assert rate == pytest.approx(read / wall, rel=0.06)
    per_minute = float(report_value(parallel.output, "days/min"))
    assert per_minute == pytest.approx(len(DAYS) * 60 / wall, rel=0.06)
