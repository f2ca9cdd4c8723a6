"""The real nightly DAG, run with ``dag.test()`` over demo sources, checked against the sources.

Every expected figure is computed here straight from what the source systems hold (the
case database, the CSV drops, the survey platform's store) with plain Python, not with
the pipeline's code. The whole module runs twice: on the embedded DuckDB warehouse and on
a fresh PostgreSQL database (loaded with COPY), with the same expectations.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import yaml
from airflow_harness import run_dag_for_day

from pipelines.demo import DemoWorld, advance_sources, build_demo_sources, read_survey_store
from pipelines.demo.survey_api_server import SurveyApiServer
from pipelines.settings import REPO_ROOT, Settings

pytestmark = pytest.mark.dag_run

DAY1, DAY2, DAY3 = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)
CATALOG = yaml.safe_load((REPO_ROOT / "schemas" / "catalog.yaml").read_text())
RUN_COLUMNS = {"run_id", "loaded_at"}  # who loaded a row and when: differ on every run by design


def midnight_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


@dataclass
class Nightly:
    settings: Settings
    world: DemoWorld
    runs: dict
    before_rerun: dict
    after_rerun: dict
    lake_before_rerun: dict
    lake_after_rerun: dict

    def query(self, sql: str, **params) -> list[dict]:
        engine = sa.create_engine(self.settings.warehouse_url)
        try:
            with engine.connect() as conn:
                return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]
        finally:
            engine.dispose()


def dump_warehouse(url: str) -> dict[str, list[tuple]]:
    engine = sa.create_engine(url)
    from pipelines.model import metadata

    tables = {}
    try:
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                columns = [c for c in table.columns if c.name not in RUN_COLUMNS]
                rows = conn.execute(sa.select(*columns)).all()
                tables[table.name] = sorted((tuple(r) for r in rows), key=repr)
    finally:
        engine.dispose()
    return tables


def dump_lake(lake_dir: Path) -> dict[str, list]:
    return {str(p.relative_to(lake_dir)): sorted(map(repr, pq.read_table(p).to_pylist()))
            for p in sorted(lake_dir.rglob("*.parquet"))}


def warehouse_url(request: pytest.FixtureRequest) -> str | None:
    """The embedded DuckDB default (None), or a fresh PostgreSQL database for this session."""
    if request.param == "duckdb":
        return None
    url = sa.make_url(request.getfixturevalue("server_database")("postgresql", "e2e"))
    # the test's own queries read timestamps in UTC whatever the server's time zone
    return url.update_query_dict({"options": "-c TimeZone=UTC"}).render_as_string(hide_password=False)


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def nightly(request, tmp_path_factory, airflow_db) -> Nightly:
    home = tmp_path_factory.mktemp("xoflow")
    url = warehouse_url(request)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XOFLOW_HOME", str(home))
        for name in ("XOFLOW_WAREHOUSE_URL", "XOFLOW_CASE_DB_URL", "XOFLOW_LANDING_DIR",
                     "XOFLOW_LAKE_DIR", "XOFLOW_RAW_DIR"):
            mp.delenv(name, raising=False)
        if url:
            mp.setenv("XOFLOW_WAREHOUSE_URL", url)
        settings = Settings.from_env()
        world = build_demo_sources(settings, DAY1, DAY2, seed=11, as_of=midnight_after(DAY1))
        store = settings.landing_dir / "survey" / "responses.json"
        with SurveyApiServer(store, settings.survey_api_key) as server:
            mp.setenv("XOFLOW_SURVEY_API_URL", server.url)
            runs = {"day1": run_dag_for_day(DAY1)}
            advance_sources(settings, world, midnight_after(DAY2))
            runs["day2"] = run_dag_for_day(DAY2)
            before, lake_before = dump_warehouse(settings.warehouse_url), dump_lake(settings.lake_dir)
            runs["day2_again"] = run_dag_for_day(DAY2)
            after, lake_after = dump_warehouse(settings.warehouse_url), dump_lake(settings.lake_dir)
            # day 3: the contact-center platform drops a file without a required column
            world = advance_sources(settings, world, midnight_after(DAY3))
            broken = settings.landing_dir / "contact_center" / f"contacts_{DAY3.isoformat()}.csv"
            with broken.open() as handle:
                rows = list(csv.DictReader(handle))
            with broken.open("w", newline="") as handle:
                fields = [f for f in rows[0] if f != "wait_seconds"]
                writer = csv.DictWriter(handle, fields, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
            runs["day3_broken"] = run_dag_for_day(DAY3)
        yield Nightly(settings, world, runs, before, after, lake_before, lake_after)


# ------------------------------------------------------------------ independent answers


def service_by(code_kind: str) -> dict[str, str]:
    return {str(code).lower(): s["service_id"] for s in CATALOG["services"]
            for code in s["codes"].get(code_kind, [])}


def standard_days() -> dict[str, int]:
    return {s["service_id"]: s["standard_days"] for s in CATALOG["services"]}


def parse_time(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def decided_cases(settings: Settings, day: date) -> dict[tuple[str, str], list[int]]:
    """Cycle days of valid cases decided on ``day``, by (service, channel), from the case DB."""
    path = settings.case_db_url.removeprefix("sqlite:///")
    forms = service_by("form_type")
    out: dict[tuple[str, str], list[int]] = {}
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT form_type, channel, received_at, decided_at, status FROM cases").fetchall()
    for form_type, channel, received, decided, status in rows:
        if status not in ("approved", "denied") or form_type is None:
            continue
        if channel not in ("online", "paper", "in_person"):
            continue
        received_at, decided_at = parse_time(received), parse_time(decided)
        if decided_at.date() != day:
            continue
        service = forms.get(form_type.lower(), "unmapped")
        out.setdefault((service, channel), []).append((decided_at.date() - received_at.date()).days)
    return out


def contact_figures(settings: Settings, day: date) -> dict[tuple[str, str, str], tuple[int, int, int]]:
    """(contacts, answered, resolved among answered) by (service, stage, channel) from the CSV drop."""
    queues = service_by("queue")
    journey_of = {s["service_id"]: s["journey_id"] for s in CATALOG["services"]}
    reason_stage = {j["journey_id"]: j["contact_reason_stage"] for j in CATALOG["journeys"]}
    path = settings.landing_dir / "contact_center" / f"contacts_{day.isoformat()}.csv"
    figures: dict[tuple[str, str, str], list[int]] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            if not row["contact_id"] or not row["wait_seconds"].isdigit():
                continue
            if parse_time(row["start_time"]) is None:
                continue
            service = queues.get(row["queue"].lower(), "unmapped")
            stage = reason_stage.get(journey_of.get(service), {}).get(row["reason"], "unmapped")
            counts = figures.setdefault((service, stage, row["channel"]), [0, 0, 0])
            counts[0] += 1
            if row["abandoned"] == "false":
                counts[1] += 1
                counts[2] += row["resolved_first_contact"] == "true"
    return {k: tuple(v) for k, v in figures.items()}


def survey_satisfaction(settings: Settings, day: date) -> dict[tuple[str, str, str], list[int]]:
    """Satisfaction answers of valid responses submitted on ``day`` by (service, stage, channel)."""
    forms = service_by("survey_form")
    stages = {k: v["stage"] for k, v in CATALOG["survey_forms"].items()}
    out: dict[tuple[str, str, str], list[int]] = {}
    for record in read_survey_store(settings.landing_dir / "survey" / "responses.json"):
        answers = record["attributes"]
        if parse_time(answers["created_at"]).date() != day:
            continue
        scores = [answers[f"answer_{i:02d}"] for i in range(1, 9)]
        if answers["answer_10"] is None or not all(s in {"1", "2", "3", "4", "5"} for s in scores[:2]):
            continue
        if any(s is not None and s not in {"1", "2", "3", "4", "5"} for s in scores):
            continue
        key = (forms[record["form_uuid"]], stages[record["form_uuid"]], answers["answer_11"])
        out.setdefault(key, []).append(int(answers["answer_02"]))
    return out


# ------------------------------------------------------------------ the runs


def test_both_nights_succeed_and_a_rerun_succeeds(nightly):
    for name in ("day1", "day2", "day2_again"):
        assert nightly.runs[name].state == "success", (name, nightly.runs[name].states)


@pytest.mark.parametrize("day", [DAY1, DAY2])
def test_median_cycle_days_and_pct_over_standard_match_the_case_database(nightly, day):
    expected = decided_cases(nightly.settings, day)
    mart = {(r["service_id"], r["channel"]): r for r in nightly.query(
        "SELECT * FROM mart_journey_service_daily WHERE date_day = :d AND cases_decided > 0", d=day)}
    assert set(mart) == set(expected)
    services = {service for service, _ in expected}
    assert len(services - {"unmapped"}) >= 3
    standards = standard_days()
    for key, cycles in expected.items():
        row = mart[key]
        assert row["cases_decided"] == len(cycles), key
        assert row["median_cycle_days"] == pytest.approx(statistics.median(cycles)), key
        assert row["p90_cycle_days"] == pytest.approx(np.percentile(cycles, 90)), key
        over = sum(c > standards[key[0]] for c in cycles)
        assert row["pct_over_standard"] == pytest.approx(100 * over / len(cycles)), key


@pytest.mark.parametrize("day", [DAY1, DAY2])
def test_first_contact_resolution_matches_the_contact_files(nightly, day):
    expected = contact_figures(nightly.settings, day)
    mart = {(r["service_id"], r["stage"], r["channel"]): r for r in nightly.query(
        "SELECT * FROM mart_journey_service_daily WHERE date_day = :d AND contacts > 0", d=day)}
    assert set(mart) == set(expected)
    assert len({s for s, _, _ in expected} - {"unmapped"}) >= 3
    for key, (contacts, answered, resolved) in expected.items():
        assert mart[key]["contacts"] == contacts, key
        if answered:
            assert mart[key]["fcr_rate"] == pytest.approx(100 * resolved / answered), key


@pytest.mark.parametrize("day", [DAY1, DAY2])
def test_mean_satisfaction_matches_the_survey_platform(nightly, day):
    expected = survey_satisfaction(nightly.settings, day)
    mart = {(r["service_id"], r["stage"], r["channel"]): r for r in nightly.query(
        "SELECT * FROM mart_journey_service_daily WHERE date_day = :d AND survey_responses > 0", d=day)}
    assert set(mart) == set(expected)
    assert len({s for s, _, _ in expected}) >= 3
    for key, scores in expected.items():
        assert mart[key]["survey_responses"] == len(scores), key
        assert mart[key]["mean_satisfaction"] == pytest.approx(statistics.mean(scores)), key


def test_every_survey_response_carries_its_cases_cycle_time(nightly):
    rows = nightly.query("SELECT r.case_linked, r.case_cycle_days, c.cycle_days, r.case_over_standard, "
                         "c.over_standard FROM fact_survey_response r "
                         "LEFT JOIN fact_case c ON c.case_key = r.case_key")
    assert rows and all(r["case_linked"] for r in rows)
    assert all(r["case_cycle_days"] == r["cycle_days"] for r in rows)
    assert all(r["case_over_standard"] == r["over_standard"] for r in rows)


@pytest.mark.parametrize("day", [DAY1, DAY2])
def test_the_driver_marts_case_links_hold_every_loaded_contact_that_names_a_case(nightly, day):
    """contact_by_case, which the driver mart probes, holds each contact of the file that names a
    case and was not quarantined, once, with its case's pseudonym, start and wait."""
    from pipelines.privacy import pseudonymise

    quarantined = {r["row_number"] for r in nightly.query(
        "SELECT row_number FROM quarantine WHERE source = 'contact_center' AND partition_date = :d", d=day)}
    path = nightly.settings.landing_dir / "contact_center" / f"contacts_{day.isoformat()}.csv"
    with path.open() as handle:
        named = [row for number, row in enumerate(csv.DictReader(handle), start=1)
                 if number not in quarantined and row["case_number"].strip()]
    keys = pseudonymise(pd.Series([row["case_number"] for row in named]), nightly.settings.pseudonym_key,
                        "case")
    expected = sorted((key, parse_time(row["start_time"]), int(row["wait_seconds"]) if row["wait_seconds"]
                       else None) for key, row in zip(keys, named, strict=True))
    links = nightly.query("SELECT case_key, start_time, wait_seconds FROM contact_by_case "
                          "WHERE contact_date = :d", d=day)
    stored = sorted((r["case_key"], r["start_time"].astimezone(UTC), r["wait_seconds"]) for r in links)
    assert len(expected) > 50
    assert stored == expected


def callers_first_contacts(nightly, day) -> dict[str, datetime]:
    """Each caller's first contact among the day's file's loaded (not quarantined) contacts."""
    from pipelines.privacy import pseudonymise

    quarantined = {r["row_number"] for r in nightly.query(
        "SELECT row_number FROM quarantine WHERE source = 'contact_center' AND partition_date = :d", d=day)}
    path = nightly.settings.landing_dir / "contact_center" / f"contacts_{day.isoformat()}.csv"
    with path.open() as handle:
        loaded = [row for number, row in enumerate(csv.DictReader(handle), start=1)
                  if number not in quarantined]
    keys = pseudonymise(pd.Series([row["customer_ref"] for row in loaded]), nightly.settings.pseudonym_key,
                        "customer")
    firsts: dict[str, datetime] = {}
    for key, row in zip(keys, loaded, strict=True):
        started = parse_time(row["start_time"])
        firsts[key] = min(firsts.get(key, started), started)
    return firsts


@pytest.mark.parametrize("day", [DAY1, DAY2])
def test_each_callers_first_contact_of_the_day_is_held_for_the_first_activity_lookups(nightly, day):
    """contact_customer_day, where the marts look up a customer's first activity, holds the start
    of each customer's first contact of the day among the file's loaded contacts."""
    expected = callers_first_contacts(nightly, day)
    stored = {r["customer_key"]: r["first_start"].astimezone(UTC) for r in nightly.query(
        "SELECT customer_key, first_start FROM contact_customer_day WHERE contact_date = :d", d=day)}
    assert len(expected) > 50
    assert stored == expected


def test_each_callers_first_contact_of_all_nights_is_held(nightly):
    """customer_first_contact, where the marts look up a customer's first contact, holds each
    caller's first contact over the nights loaded (day 2 twice; day 3's file was refused), as
    the files have them."""
    day1, day2 = callers_first_contacts(nightly, DAY1), callers_first_contacts(nightly, DAY2)
    expected = {key: (min(t for t in (day1.get(key), day2.get(key)) if t is not None))
                for key in day1.keys() | day2.keys()}
    stored = {r["customer_key"]: (r["first_start"].astimezone(UTC), r["first_date"]) for r in nightly.query(
        "SELECT customer_key, first_start, first_date FROM customer_first_contact")}
    assert len(day1.keys() & day2.keys()) > 5, "callers who came back"
    assert stored == {key: (first, first.date()) for key, first in expected.items()}


def test_the_lake_holds_the_warehouse_facts_each_in_its_partition(nightly):
    """The lake is written from the rows each load committed: the same rows, each once, in its partition."""
    partition_of = {"fact_case": lambda r: r["received_date"].isoformat()[:7],
                    "fact_contact": lambda r: r["contact_date"].isoformat(),
                    "fact_feedback": lambda r: r["feedback_date"].isoformat()}
    for table, partition in partition_of.items():
        lake = []
        for path in sorted((nightly.settings.lake_dir / table).rglob("*.parquet")):
            rows = pq.read_table(path).to_pylist()
            assert {f"{path.parent.name.split('=')[0]}={partition(r)}" for r in rows} == {path.parent.name}
            first = pq.read_metadata(path).row_group(0).column(0)  # the lake's format, statistics for BI
            assert (first.compression, first.is_stats_set) == ("ZSTD", True), path
            lake.extend(rows)
        columns = [n for n in lake[0] if n not in RUN_COLUMNS]
        stored = nightly.query(f"SELECT {', '.join(columns)} FROM {table}")
        assert len(stored) > 50, table
        assert sorted(_plain(r, columns) for r in lake) == sorted(_plain(r, columns) for r in stored), table


def _plain(row: dict, columns: list[str]) -> str:
    """A row as text; the drivers give different tzinfo objects for the same UTC instant."""
    values = map(row.get, columns)
    return repr([v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v for v in values])


def test_running_a_day_again_leaves_every_table_identical(nightly):
    assert nightly.after_rerun == nightly.before_rerun
    assert nightly.lake_after_rerun == nightly.lake_before_rerun
    assert sum(map(len, nightly.before_rerun.values())) > 1000


# ------------------------------------------------------------------ nothing lost


@pytest.mark.parametrize("source", ["case_db", "contact_center", "survey", "web_analytics", "feedback"])
@pytest.mark.parametrize("day", [DAY1, DAY2])
def test_each_planted_bad_row_is_in_quarantine_with_its_reason(nightly, source, day):
    planted = nightly.world.planted_bad_rows(source, day, as_of=midnight_after(DAY2) if day == DAY2 else None)
    assert planted, f"the demo plants bad {source} rows every day"
    quarantined = nightly.query("SELECT * FROM quarantine WHERE source = :s AND partition_date = :d",
                                s=source, d=day)
    for bad in planted:
        if bad["key"] is not None:
            matches = [q for q in quarantined if bad["key"] in json.loads(q["record"]).values()]
        else:
            matches = [q for q in quarantined
                       if q["origin"] == bad["origin"] and q["row_number"] == bad["row"]]
        assert len(matches) == 1, bad
        assert matches[0]["column_name"] == bad["column"], (bad, matches[0])
        assert bad["column"] in matches[0]["reason"]


def test_quarantine_holds_only_rows_that_break_the_contract(nightly):
    rows = nightly.query("SELECT source, reason FROM quarantine")
    assert rows and all(r["reason"] for r in rows)


def test_ledger_balances_for_every_source_and_day(nightly):
    ledger = nightly.query("SELECT * FROM ledger WHERE status = 'loaded'")
    assert {(r["source"], r["interval_start"].date()) for r in ledger} >= {
        (s, d) for s in ("case_db", "contact_center", "survey", "web_analytics", "feedback")
        for d in (DAY1, DAY2)}
    for row in ledger:
        assert row["rows_read"] == row["rows_loaded"] + row["rows_quarantined"], row


def test_ledger_counts_every_row_of_the_contact_file(nightly):
    for day in (DAY1, DAY2):
        path = nightly.settings.landing_dir / "contact_center" / f"contacts_{day.isoformat()}.csv"
        lines = len(path.read_text().splitlines()) - 1
        (row,) = nightly.query("SELECT rows_read FROM ledger WHERE source = 'contact_center' "
                               "AND interval_start = :s", s=datetime.combine(day, time(), tzinfo=UTC))
        assert row["rows_read"] == lines


def test_unmapped_codes_are_loaded_and_reported(nightly):
    for day in (DAY1, DAY2):
        planted = nightly.world.unmapped_rows("contact_center", day)
        assert planted
        loaded = nightly.query("SELECT count(*) AS n FROM fact_contact WHERE contact_date = :d "
                               "AND service_id = 'unmapped'", d=day)[0]["n"]
        assert loaded == len(planted)
        reported = nightly.query("SELECT code, rows FROM unmapped_code WHERE source = 'contact_center' "
                                 "AND partition_date = :d", d=day)
        assert sum(r["rows"] for r in reported) == len(planted)
        assert {r["code"] for r in reported} == {p["value"] for p in planted}


def test_a_file_missing_a_required_column_fails_its_source_but_the_others_load(nightly):
    run = nightly.runs["day3_broken"]
    assert run.state == "failed"
    assert run.states["extract_and_validate[contact_center]"] == "failed"
    assert run.tasks["extract_and_validate[contact_center]"].try_number == 1  # not retried
    for source in ("case_db", "survey", "web_analytics", "feedback"):
        assert run.states[f"extract_and_validate[{source}]"] == "success"
    ledger = {r["source"]: r for r in nightly.query(
        "SELECT * FROM ledger WHERE interval_start = :s", s=datetime.combine(DAY3, time(), tzinfo=UTC))}
    assert {s for s, r in ledger.items() if r["status"] == "loaded"} == {
        "case_db", "survey", "web_analytics", "feedback"}
    failed = ledger["contact_center"]
    assert failed["status"] == "failed"
    assert f"contacts_{DAY3.isoformat()}.csv" in failed["message"]
    assert "wait_seconds" in failed["message"]
    assert nightly.query("SELECT count(*) AS n FROM mart_journey_service_daily WHERE date_day = :d "
                         "AND survey_responses > 0", d=DAY3)[0]["n"] > 0
