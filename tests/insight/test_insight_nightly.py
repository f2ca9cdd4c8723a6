"""The insight layer over eight nights: drivers, weekly review, A-11 export, the report.

One module-scoped fixture loads eight demo days, Monday 2 to Monday 9 March 2026 (fiscal
2026 Q2: a whole ISO week and the first day of the next), advancing the demo sources
each night: the first six nights with ``pipelines.nightly.run_day`` (the same functions,
without a scheduler, to keep the suite fast), the last two with the real
``xoflow_nightly`` DAG (``dag.test()``), whose ``publish_report`` task writes the report
and Data Docs examined here. Every expected figure is computed from what the source
systems hold (the case database, the survey platform's store, the contact-center files)
with plain Python, never with the pipeline's code.
"""

from __future__ import annotations

import csv
import math
import re
import statistics
import subprocess
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from airflow_harness import run_dag_for_day
from typer.testing import CliRunner

from pipelines import nightly
from pipelines.demo import DemoWorld, advance_sources, build_demo_sources, read_survey_store
from pipelines.demo import world as demo_world
from pipelines.demo.survey_api_server import SurveyApiServer
from pipelines.settings import REPO_ROOT, Settings

pytestmark = pytest.mark.dag_run

DAYS = [date(2026, 3, 2) + timedelta(days=i) for i in range(8)]  # Mon 2 .. Mon 9 March 2026
DAG_DAYS = DAYS[-2:]  # the nights run by the real DAG
QUARTER_START, QUARTER_END = date(2026, 1, 1), date(2026, 4, 1)  # FY2026 Q2
CATALOG = yaml.safe_load((REPO_ROOT / "schemas" / "catalog.yaml").read_text())
A11_CONFIG = yaml.safe_load((REPO_ROOT / "schemas" / "a11.yaml").read_text())
COSTS = yaml.safe_load((REPO_ROOT / "schemas" / "costs.yaml").read_text())
DRIVERS = yaml.safe_load((REPO_ROOT / "schemas" / "drivers.yaml").read_text())
WINDOW = timedelta(days=DRIVERS["contact_window_days"])
REFERENCE = Path(__file__).parent / "touchpoints_reference"
SCORES = {"1", "2", "3", "4", "5"}
ITEMS = ("trust", "satisfaction", "effectiveness", "ease", "efficiency", "transparency", "humanity",
         "employee")  # answer_01 .. answer_08


def midnight_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


@dataclass
class Nights:
    settings: Settings
    world: DemoWorld
    runs: list

    def query(self, sql: str, **params) -> list[dict]:
        engine = sa.create_engine(self.settings.warehouse_url)
        try:
            with engine.connect() as conn:
                return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def nights(tmp_path_factory, airflow_db) -> Nights:
    home = tmp_path_factory.mktemp("insight")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XOFLOW_HOME", str(home))
        for name in ("XOFLOW_WAREHOUSE_URL", "XOFLOW_CASE_DB_URL", "XOFLOW_LANDING_DIR", "XOFLOW_LAKE_DIR",
                     "XOFLOW_RAW_DIR", "XOFLOW_SCHEMAS_DIR"):
            mp.delenv(name, raising=False)
        mp.setenv("XOFLOW_PSEUDONYM_KEY", "insight-test-key")
        mp.setenv("XOFLOW_SURVEY_API_KEY", "insight-test-api-key")
        settings = Settings.from_env()
        world = build_demo_sources(settings, DAYS[0], DAYS[-1], seed=11, as_of=midnight_after(DAYS[0]))
        runs = []
        with SurveyApiServer(settings.landing_dir / "survey" / "responses.json",
                             settings.survey_api_key) as server:
            mp.setenv("XOFLOW_SURVEY_API_URL", server.url)
            for day in DAYS:
                advance_sources(settings, world, midnight_after(day))
                if day in DAG_DAYS:
                    runs.append(run_dag_for_day(day))
                else:
                    nightly.run_day(day, f"insight_test__{day.isoformat()}", Settings.from_env())
        yield Nights(Settings.from_env(), world, runs)


# ------------------------------------------------------------------ the sources, read directly


def service_by(code_kind: str) -> dict[str, str]:
    return {str(code).lower(): s["service_id"] for s in CATALOG["services"]
            for code in s["codes"].get(code_kind, [])}


STANDARD = {s["service_id"]: s["standard_days"] for s in CATALOG["services"]}
HISP = {s["service_id"] for s in CATALOG["services"] if s.get("hisp")}
NAMES = {s["service_id"]: s["name"] for s in CATALOG["services"]}
FORM_STAGE = {form: spec["stage"] for form, spec in CATALOG["survey_forms"].items()}


def parse_time(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def valid_contacts(settings: Settings, day: date) -> list[dict]:
    """Rows of the day's contact-center file that pass the contract (as the e2e test reads them)."""
    path = settings.landing_dir / "contact_center" / f"contacts_{day.isoformat()}.csv"
    with path.open() as handle:
        return [{**row, "start": parse_time(row["start_time"])} for row in csv.DictReader(handle)
                if row["contact_id"] and row["wait_seconds"].isdigit() and parse_time(row["start_time"])]


def source_cases(settings: Settings) -> dict[str, dict]:
    """Valid cases in the case database as it stands after the last night, by case number."""
    import sqlite3

    forms = service_by("form_type")
    with sqlite3.connect(settings.case_db_url.removeprefix("sqlite:///")) as db:
        rows = db.execute("SELECT case_number, form_type, product_line, office, channel, received_at, "
                          "decided_at, status, updated_at, customer_ref FROM cases").fetchall()
    cases = {}
    for number, form, product, office, channel, received, decided, status, updated, customer in rows:
        if form is None or form.lower() not in forms or channel not in ("online", "paper", "in_person"):
            continue  # quarantined by the contract
        cases[number] = {"service": forms[form.lower()], "product_line": product, "office": office,
                         "channel": channel, "received_at": parse_time(received),
                         "decided_at": parse_time(decided), "status": status,
                         "updated_at": parse_time(updated), "customer": customer}
    return cases


def source_responses(settings: Settings, first: date, last: date) -> list[dict]:
    """Valid survey responses submitted from ``first`` to ``last``, from the platform's store."""
    forms = service_by("survey_form")
    out = []
    for record in read_survey_store(settings.landing_dir / "survey" / "responses.json"):
        answers = record["attributes"]
        created = parse_time(answers["created_at"])
        if not first <= created.date() <= last:
            continue
        scores = [answers[f"answer_{i:02d}"] for i in range(1, 9)]
        if answers["answer_10"] is None or not all(s in SCORES for s in scores[:2]):
            continue
        if any(s is not None and s not in SCORES for s in scores):
            continue
        out.append({"id": record["id"], "service": forms[record["form_uuid"].lower()],
                    "stage": FORM_STAGE[record["form_uuid"]], "channel": answers["answer_11"],
                    "created_at": created, "case": answers["answer_10"], "comment": answers["answer_09"],
                    **{item: None if s is None else int(s) for item, s in zip(ITEMS, scores, strict=True)}})
    return out


def decided_day(case: dict) -> date:
    return case["decided_at"].date()


# ------------------------------------------------------------------ the runs


def test_every_dag_night_succeeds_and_publishes_its_report(nights):
    for run in nights.runs:
        assert run.state == "success", (run.interval, run.states)
        assert run.states["publish_report"] == "success"
    reports = sorted((nights.settings.home / "reports").glob("journey_health_*.html"))
    assert {p.name.split("__")[0] for p in reports} == {f"journey_health_{d.isoformat()}"
                                                          for d in DAG_DAYS}
    assert (nights.settings.home / "reports" / "latest.html").read_text().count(reports[-1].name) == 2
    assert (nights.settings.home / "exports" / "a11" / "FY2026_Q2" / "cx_responses.csv").exists()


# ------------------------------------------------------------------ driver analysis


def band_of(cycle: int, standard: int) -> str:
    if cycle <= standard:
        return "on_time"
    return "over_1_30_days" if cycle - standard <= 30 else "over_31_plus_days"


def test_driver_mart_recovers_lower_satisfaction_for_cases_over_standard(nights):
    cases = source_cases(nights.settings)
    scores: dict[tuple[str, str], list[int]] = defaultdict(list)
    for response in source_responses(nights.settings, DAYS[0], DAYS[-1]):
        case = cases[response["case"]]
        cycle = (case["decided_at"].date() - case["received_at"].date()).days
        scores[(response["service"], band_of(cycle, STANDARD[response["service"]]))].append(
            response["satisfaction"])
    mart = {(r["service_id"], r["band"]): r for r in nights.query(
        "SELECT * FROM mart_driver_quarterly WHERE period_start = :q AND driver = 'case_timeliness' "
        "AND segment_kind = 'all'", q=QUARTER_START)}
    assert set(mart) == set(scores)
    excluding_zero = 0
    for (service, band), values in scores.items():
        row = mart[(service, band)]
        mean = statistics.mean(values)
        assert row["responses"] == len(values), (service, band)
        assert row["mean_satisfaction"] == pytest.approx(mean), (service, band)
        if band == "on_time" or len(values) < 2:
            continue
        base = scores[(service, "on_time")]
        diff = mean - statistics.mean(base)
        half = 1.96 * math.sqrt(statistics.variance(values) / len(values)
                                + statistics.variance(base) / len(base))
        assert row["diff_satisfaction"] == pytest.approx(diff), (service, band)
        assert row["diff_satisfaction_ci_low"] == pytest.approx(diff - half), (service, band)
        assert row["diff_satisfaction_ci_high"] == pytest.approx(diff + half), (service, band)
        assert diff < 0, (service, band, diff)  # the planted effect: later is worse
        if len(values) >= 10:
            assert row["diff_satisfaction_ci_high"] < 0, (service, band, row)
            excluding_zero += 1
    # every service has enough over-standard responses for a confident answer
    assert excluding_zero >= len(STANDARD)


def test_driver_mart_links_responses_to_the_latest_contact_about_their_case(nights):
    cases = source_cases(nights.settings)
    by_case: dict[str, list[dict]] = defaultdict(list)
    for day in DAYS:
        for row in valid_contacts(nights.settings, day):
            if row["case_number"]:
                by_case[row["case_number"]].append(row)
    resolved: dict[tuple[str, str], list[int]] = defaultdict(list)
    for response in source_responses(nights.settings, DAYS[0], DAYS[-1]):
        before = [c for c in by_case.get(response["case"], [])
                  if response["created_at"] - WINDOW <= c["start"] < response["created_at"]]
        if not before or response["case"] not in cases:
            continue
        latest = max(before, key=lambda c: c["start"])
        if latest["abandoned"] == "false":
            band = "resolved" if latest["resolved_first_contact"] == "true" else "not_resolved"
            resolved[(response["service"], band)].append(response["satisfaction"])
    assert sum(map(len, resolved.values())) >= 30, "enough responses have a contact about their case"
    mart = {(r["service_id"], r["band"]): r for r in nights.query(
        "SELECT * FROM mart_driver_quarterly WHERE period_start = :q AND driver = 'first_contact_resolution' "
        "AND segment_kind = 'all'", q=QUARTER_START)}
    assert {k: r["responses"] for k, r in mart.items()} == {k: len(v) for k, v in resolved.items()}
    for key, values in resolved.items():
        assert mart[key]["mean_satisfaction"] == pytest.approx(statistics.mean(values)), key


def test_driver_mart_breaks_down_by_segment_and_the_segments_add_up(nights):
    rows = nights.query("SELECT segment_kind, segment, SUM(responses) AS n FROM mart_driver_quarterly "
                        "WHERE period_start = :q AND driver = 'case_timeliness' GROUP BY 1, 2",
                        q=QUARTER_START)
    totals = Counter()
    for row in rows:
        totals[row["segment_kind"]] += row["n"]
    assert set(totals) == {"all", "customer_type", "language", "region", "customer_history"}
    assert len(set(totals.values())) == 1  # each breakdown covers every response once
    histories = {r["segment"] for r in rows if r["segment_kind"] == "customer_history"}
    assert histories <= {"first_time", "returning", "unknown"} and "first_time" in histories


# ------------------------------------------------------------------ weekly cycle-time review


def exceedances(cases: dict[str, dict], review_day: date) -> Counter:
    """Cases in process at the end of ``review_day`` older than their standard, from the case DB."""
    as_of = midnight_after(review_day)
    found = Counter()
    for case in cases.values():
        if case["received_at"] >= as_of:
            continue
        if case["decided_at"] is not None and case["decided_at"] < as_of:
            continue
        if case["status"] == "withdrawn" and case["updated_at"] < as_of:
            continue
        age = (review_day - case["received_at"].date()).days
        standard = STANDARD[case["service"]]
        if age > standard:
            found[(case["service"], case["product_line"], case["office"], case["received_at"].date(), age,
                   age - standard)] += 1
    return found


@pytest.mark.parametrize("week, review_day", [(date(2026, 3, 2), date(2026, 3, 8)),  # as of its Sunday
                                              (date(2026, 3, 9), date(2026, 3, 9))])  # week in progress
def test_weekly_exceedance_list_equals_the_case_database(nights, week, review_day):
    expected = exceedances(source_cases(nights.settings), review_day)
    rows = nights.query("SELECT * FROM mart_cycle_time_exceedance WHERE period_start = :w", w=week)
    assert {r["review_date"] for r in rows} == {review_day}
    listed = Counter((r["service_id"], r["product_line"], r["office"], r["received_date"], r["age_days"],
                      r["days_over"]) for r in rows)
    assert listed == expected
    assert sum(expected.values()) > 100


def test_weekly_review_averages_completed_cases_by_product_line_against_the_standard(nights):
    week = date(2026, 3, 2)
    cycles: dict[tuple[str, str], list[int]] = defaultdict(list)
    for case in source_cases(nights.settings).values():
        if case["status"] in ("approved", "denied") and week <= decided_day(case) < week + timedelta(days=7):
            cycles[(case["service"], case["product_line"])].append(
                (case["decided_at"].date() - case["received_at"].date()).days)
    rows = {(r["service_id"], r["product_line"]): r for r in nights.query(
        "SELECT * FROM mart_cycle_time_weekly WHERE period_start = :w AND segment_kind = 'all'", w=week)}
    assert set(rows) == set(cycles)
    for key, values in cycles.items():
        assert rows[key]["cases_completed"] == len(values)
        assert rows[key]["mean_cycle_days"] == pytest.approx(statistics.mean(values))
        assert rows[key]["mean_days_vs_standard"] == pytest.approx(statistics.mean(values) - STANDARD[key[0]])


# ------------------------------------------------------------------ A-11 export


def reference_columns(name: str) -> list[str]:
    """Field names of a Touchpoints data-model page, in the page's order."""
    names = []
    for line in (REFERENCE / name).read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.lstrip().startswith("|") or len(cells) < 2:
            continue
        first = cells[0]
        if re.fullmatch(r"[a-z][a-z0-9_]*", first):
            names.append(first)
    return names


@pytest.fixture(scope="module")
def a11_files(nights, tmp_path_factory) -> Path:
    from pipelines.cli import app

    folder = tmp_path_factory.mktemp("a11")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XOFLOW_HOME", str(nights.settings.home))
        mp.setenv("XOFLOW_PSEUDONYM_KEY", "insight-test-key")
        result = CliRunner().invoke(
            app, ["a11", "--fiscal-year", "2026", "--quarter", "2", "--out", str(folder)], terminal_width=150)
    assert result.exit_code == 0, result.output
    return folder


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


@pytest.mark.parametrize("name, reference", [
    ("cx_responses.csv", "cx_responses.md"),
    ("cx_collection_details.csv", "cx_collection_details.md"),
    ("omb_cx_reporting_collections.csv", "omb_cx_reporting_collections.md")])
def test_a11_files_have_exactly_the_reference_columns(a11_files, name, reference):
    columns, _ = read_csv(a11_files / name)
    expected = reference_columns(reference)
    assert len(expected) > 15
    assert columns == expected


def flag(score: int | None, positive: bool) -> str:
    if score is None:
        return "0"
    return "1" if (score >= 4 if positive else score <= 2) else "0"


def test_a11_responses_equal_the_survey_platform(a11_files, nights):
    expected = {r["id"]: r for r in source_responses(nights.settings, DAYS[0], DAYS[-1])
                if r["service"] in HISP}
    _, rows = read_csv(a11_files / "cx_responses.csv")
    assert len(rows) == len(expected) > 300
    assert {r["external_id"] for r in rows} == set(expected)
    assert Counter(r["question_1"] for r in rows) == Counter(str(r["trust"]) for r in expected.values())
    for row in rows:
        source = expected[row["external_id"]]
        for item in ("effectiveness", "ease", "efficiency", "transparency", "humanity", "employee"):
            assert row[f"positive_{item}"] == flag(source[item], True), (row, item)
            assert row[f"negative_{item}"] == flag(source[item], False), (row, item)
        assert row["positive_other"] == row["negative_other"] == "null"
        assert parse_time(row["created_at"]) == source["created_at"].replace(microsecond=0)


def test_a11_collection_details_count_customers_offered_and_respondents(a11_files, nights):
    respondents = Counter((r["service"], A11_CONFIG["channels"][r["channel"]], r["stage"])
                          for r in source_responses(nights.settings, DAYS[0], DAYS[-1])
                          if r["service"] in HISP)
    journeys = {j["journey_id"]: j for j in CATALOG["journeys"]}
    decided_stage = {s["service_id"]: journeys[s["journey_id"]]["case_decided_stage"]
                     for s in CATALOG["services"]}
    offered, customers = Counter(), defaultdict(set)
    for case in source_cases(nights.settings).values():
        if case["service"] in HISP and case["status"] in ("approved", "denied") and (
                QUARTER_START <= decided_day(case) < QUARTER_END):
            key = (case["service"], A11_CONFIG["channels"][case["channel"]], decided_stage[case["service"]])
            offered[key] += 1
            customers[key].add(case["customer"])
    tp_ids = {v: k for k, v in A11_CONFIG["touchpoints_service_ids"].items()}
    _, rows = read_csv(a11_files / "cx_collection_details.csv")
    got = {(tp_ids[int(r["service_id"])], r["channel"], r["service_stage_name"]): r for r in rows}
    assert set(got) == set(offered) | set(respondents)
    for key, row in got.items():
        assert int(row["volume_of_respondents"]) == respondents[key], key
        assert int(row["volume_of_customers_provided_survey_opportunity"]) == offered[key], key
        assert int(row["volume_of_customers"]) == len(customers[key]), key
        assert row["service_name"] == NAMES[key[0]]


def test_a11_older_format_counts_answers_at_each_point(a11_files, nights):
    slots = A11_CONFIG["question_items"]
    counts: dict[tuple, Counter] = defaultdict(Counter)
    for r in source_responses(nights.settings, DAYS[0], DAYS[-1]):
        if r["service"] in HISP:
            for item in ITEMS:
                key = (NAMES[r["service"]], A11_CONFIG["channels"][r["channel"]], r["stage"], item)
                counts[key][r[item]] += 1
    _, rows = read_csv(a11_files / "omb_cx_reporting_collections.csv")
    assert rows
    for row in rows:
        for slot, item in slots.items():
            answers = counts[(row["service_name"], row["channel"], row["transaction_point"], item)]
            assert [int(row[f"{slot}_{p}"]) for p in range(1, 6)] == [answers[p] for p in range(1, 6)], (
                row["service_name"], row["channel"], slot)


# ------------------------------------------------------------------ segments, text, cost


def test_segment_mart_counts_responses_per_language_as_the_survey_platform_does(nights):
    day = DAYS[4]
    expected = Counter()
    for record in read_survey_store(nights.settings.landing_dir / "survey" / "responses.json"):
        answers = record["attributes"]
        scores = [answers[f"answer_{i:02d}"] for i in range(1, 9)]
        if (parse_time(answers["created_at"]).date() == day and answers["answer_10"] is not None
                and all(s in SCORES for s in scores[:2]) and all(s is None or s in SCORES for s in scores)):
            expected[(service_by("survey_form")[record["form_uuid"]], answers["language"] or "unknown")] += 1
    rows = nights.query("SELECT service_id, segment, survey_responses FROM mart_segment_daily "
                        "WHERE date_day = :d AND segment_kind = 'language' AND survey_responses > 0", d=day)
    assert {(r["service_id"], r["segment"]): r["survey_responses"] for r in rows} == dict(expected)
    assert len({segment for _, segment in expected}) >= 2


def test_every_comment_mentioning_status_carries_the_status_theme_and_a_sentiment(nights):
    status = re.compile(r"\bstatus\b", re.IGNORECASE)
    comments = {r["id"]: r["comment"] for r in source_responses(nights.settings, DAYS[0], DAYS[-1])
                if r["comment"]}
    loaded = {r["response_id"]: r for r in nights.query(
        "SELECT response_id, comment_themes, comment_sentiment FROM fact_survey_response "
        "WHERE comment IS NOT NULL")}
    assert set(loaded) == set(comments)
    mentioning = [i for i, text in comments.items() if status.search(text)]
    assert len(mentioning) > 20
    for response_id in mentioning:
        assert "status_updates" in loaded[response_id]["comment_themes"].split(";")
    assert all(-1 <= r["comment_sentiment"] <= 1 for r in loaded.values())
    bridge = nights.query("SELECT record_id FROM fact_text_theme WHERE theme_id = 'status_updates' "
                          "AND source = 'survey_comment'")
    assert {r["record_id"] for r in bridge} >= set(mentioning)


def test_waiting_comments_read_negative_and_praise_positive(nights):
    """The demo writes waiting complaints for late cases and praise for happy on-time ones."""
    sentiment = {r["response_id"]: r["comment_sentiment"] for r in nights.query(
        "SELECT response_id, comment_sentiment FROM fact_survey_response WHERE comment IS NOT NULL")}
    comments = [r for r in source_responses(nights.settings, DAYS[0], DAYS[-1]) if r["comment"]]
    waits = [sentiment[r["id"]] for r in comments if r["comment"].startswith(demo_world.WAIT_PHRASES)]
    praise = [sentiment[r["id"]] for r in comments if r["comment"].startswith(demo_world.POSITIVE_PHRASES)]
    assert len(waits) > 20 and len(praise) > 20
    assert statistics.mean(waits) < -0.1 < 0.3 < statistics.mean(praise)


def test_theme_mart_counts_texts_per_service_and_week(nights):
    week = date(2026, 3, 2)
    texts = Counter()
    for r in source_responses(nights.settings, week, week + timedelta(days=6)):
        if r["comment"] and r["comment"].strip():
            texts[r["service"]] += 1
    rows = nights.query("SELECT service_id, MAX(texts) AS texts, COUNT(*) AS themes FROM mart_theme_weekly "
                        "WHERE period_start = :w AND source = 'survey_comment' AND segment_kind = 'all' "
                        "GROUP BY service_id", w=week)
    assert {r["service_id"]: r["texts"] for r in rows} == dict(texts)
    assert all(r["themes"] >= 3 for r in rows)


def test_emerging_terms_are_ranked_phrases_against_a_baseline(nights):
    rows = nights.query("SELECT * FROM mart_emerging_terms WHERE segment_kind = 'all' "
                        "ORDER BY service_id, rank")
    assert {r["period_start"] for r in rows} == {date(2026, 3, 9)}  # the first week has no baseline
    for service in {r["service_id"] for r in rows}:
        ranks = [r["rank"] for r in rows if r["service_id"] == service]
        assert ranks == list(range(1, len(ranks) + 1))
    assert all(r["mentions"] >= 3 and r["rate_ratio"] >= 1.5 and r["baseline_texts"] > 0 for r in rows)


def test_emerging_terms_are_those_of_each_services_texts_of_the_week_and_its_baseline(nights):
    """The mart, which reads a service's texts at a time, lists what the texts of the facts give,
    counted per service here over the week and the four weeks before."""
    from pipelines.insight.emerging import emerging_terms
    from pipelines.insight.text import has_placeholder

    week = date(2026, 3, 9)
    texts = nights.query(
        "SELECT service_id, comment AS text, response_date AS day FROM fact_survey_response "
        "UNION ALL SELECT service_id, text, feedback_date FROM fact_feedback")
    by_service: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for row in texts:
        text = row["text"]
        if (row["service_id"] == "unmapped" or not (text or "").strip()
                or has_placeholder(pd.Series([text])).iloc[0] or row["day"] < week - timedelta(weeks=4)):
            continue
        by_service[row["service_id"]][0 if row["day"] >= week else 1].append(text)
    expected = {service: emerging_terms(current, before)
                for service, (current, before) in by_service.items()}
    rows = nights.query("SELECT service_id, rank, term, mentions, texts, baseline_mentions, baseline_texts "
                        "FROM mart_emerging_terms WHERE period_start = :w AND segment_kind = 'all' "
                        "ORDER BY service_id, rank", w=week)
    got = defaultdict(list)
    for row in rows:
        got[row["service_id"]].append({k: v for k, v in row.items() if k != "service_id"})
    wanted = {service: [{k: v for k, v in term.items() if k != "rate_ratio"} for term in terms]
              for service, terms in expected.items() if terms}
    assert dict(got) == wanted
    assert len(wanted) >= 2  # several services list terms


def test_cost_mart_prices_contacts_and_counts_avoidable_status_calls(nights):
    queues = service_by("queue")
    online = {s["service_id"]: s["online_status"] for s in CATALOG["services"]}
    contacts, status_calls = Counter(), Counter()
    for day in DAYS:
        for row in valid_contacts(nights.settings, day):
            key = (queues.get(row["queue"].lower(), "unmapped"), row["channel"])
            contacts[key] += 1
            status_calls[key] += row["reason"] == "status_inquiry"
    rows = {(r["service_id"], r["channel"]): r for r in nights.query(
        "SELECT * FROM mart_contact_cost_monthly WHERE period_start = :m AND segment_kind = 'all' "
        "AND channel <> 'web'", m=date(2026, 3, 1))}
    assert set(rows) == set(contacts)
    for key, n in contacts.items():
        row = rows[key]
        assert row["contacts"] == n, key
        assert row["cost"] == pytest.approx(n * COSTS["unit_costs"][key[1]]), key
        assert row["status_inquiries"] == status_calls[key], key
        share = 0 if key[0] == "unmapped" or online[key[0]] else COSTS["status_deflection_share"]
        assert row["avoidable_online_status"] == pytest.approx(status_calls[key] * share), key
    assert any(r["avoidable_online_status"] > 0 for r in rows.values())
    assert any(r["avoidable_fcr"] > 0 for r in rows.values())


# ------------------------------------------------------------------ the report in a real browser


def planted_personal_data(world: DemoWorld) -> list[re.Pattern]:
    names = [f"{first} {last}" for first in demo_world.FIRST_NAMES for last in demo_world.LAST_NAMES]
    return [re.compile("|".join(map(re.escape, names))), re.compile(r"@example\.com"),
            re.compile(r"202-555-01\d\d"), re.compile(r"\bFBA\d{10}\b"), re.compile(r"\bC\d{8}\b")]


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    import shutil

    binary = shutil.which("chromium")
    if binary is None:
        import os

        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         f"--user-data-dir={profile}", "--virtual-time-budget=20000", *args],
        capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def rendered(nights, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("browser")
    (report,) = (nights.settings.home / "reports").glob(f"journey_health_{DAYS[-1].isoformat()}__*.html")
    shot = folder / "report.png"
    taken = chromium(f"--screenshot={shot}", "--window-size=1280,2400", report.as_uri(),
                     profile=folder / "profile-shot")
    assert shot.exists(), taken.stderr[-2000:]
    dom = chromium("--dump-dom", report.as_uri(), profile=folder / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    return {"report": report, "screenshot": shot, "dom": dom.stdout, "html": report.read_text()}


def test_report_renders_its_charts_in_a_real_browser(rendered):
    from PIL import Image, ImageStat

    image = Image.open(rendered["screenshot"]).convert("L")
    assert image.size == (1280, 2400)
    assert ImageStat.Stat(image).stddev[0] > 20, "the screenshot is (nearly) blank"
    dom = rendered["dom"]
    assert dom.count('class="main-svg"') >= 4 * len(NAMES)  # plotly drew every chart
    from pipelines.insight.report import chart_titles

    for name in NAMES.values():
        for title in chart_titles(name).values():
            assert re.search(rf'class="g?title"[^>]*>{re.escape(title)}<', dom) or (
                f">{title}</text>" in dom), f"chart title {title!r} not rendered"


def test_report_shows_redacted_comments_but_no_planted_personal_data(rendered, nights):
    planted = [text for day in DAYS for text in nights.world.survey_responses(day)["comment"].dropna()
               if any(p.search(text) for p in planted_personal_data(nights.world))]
    assert planted, "the demo plants personal data in comments"
    for text in (rendered["dom"], rendered["html"]):
        for pattern in planted_personal_data(nights.world):
            assert not pattern.search(text), pattern.pattern
    assert rendered["dom"].count("<blockquote>") >= len(NAMES)  # example comments are shown


def test_report_links_to_the_runs_gx_data_docs_without_personal_data(rendered, nights):
    links = re.findall(r'href="([^"]+)"', rendered["html"])
    docs = [rendered["report"].parent / link for link in links if "data_docs" in link]
    assert any(p.name == "index.html" for p in docs)
    pages = [p for p in docs if p.name != "index.html"]
    assert {p.stem for p in pages} == {"case_db", "contact_center", "survey", "web_analytics", "feedback"}
    for page in docs:
        assert page.exists(), page
        text = page.read_text()
        for pattern in planted_personal_data(nights.world):
            assert not pattern.search(text), (page, pattern.pattern)
    survey = next(p for p in pages if p.stem == "survey").read_text()
    assert "satisfaction" in survey and "external_id" in survey  # GX rendered the checks


# ------------------------------------------------------------------ the same marts on PostgreSQL


def mart_rows(engine: sa.Engine, table: sa.Table) -> list[tuple]:
    def plain(value):  # 9 significant digits: the two engines may sum in another order
        return float(f"{value:.9g}") if isinstance(value, float) else value

    with engine.connect() as conn:
        rows = conn.execute(sa.select(table)).all()
    return sorted((tuple(plain(v) for v in row) for row in rows), key=repr)


def test_insight_marts_compute_the_same_rows_on_postgresql(nights, server_database):
    """Every insight mart's SQL, run on a PostgreSQL copy of the facts, gives DuckDB's rows."""
    from dataclasses import replace

    from pipelines.insight.marts import PERIOD_MARTS, SOURCE_TABLES, rebuild_period_marts
    from pipelines.insight.tables import INSIGHT_TABLES
    from pipelines.model import metadata

    duck = sa.create_engine(nights.settings.warehouse_url)
    pg = sa.create_engine(server_database("postgresql", "insight"))
    try:
        copied = [metadata.tables[name] for name in (*SOURCE_TABLES, "ledger")
                  if name not in ("dim_theme", "dim_unit_cost")]
        metadata.create_all(pg, tables=[*copied, *INSIGHT_TABLES])
        with duck.connect() as source, pg.begin() as target:
            for table in copied:
                rows = [dict(r) for r in source.execute(sa.select(table)).mappings()]
                for start in range(0, len(rows), 5000):
                    target.execute(table.insert(), rows[start:start + 5000])
        for engine in (duck, pg):
            with engine.begin() as conn:
                rebuild_period_marts(conn, replace(nights.settings, warehouse_url=str(engine.url)), DAYS)
        for name, mart in PERIOD_MARTS.items():
            expected = mart_rows(duck, mart.table)
            assert expected or name == "mart_emerging_terms", f"{name} is empty"
            assert mart_rows(pg, mart.table) == expected, name
    finally:
        duck.dispose()
        pg.dispose()


def test_xoflow_report_writes_the_report_of_a_loaded_day_again(nights):
    from pipelines.cli import app

    result = CliRunner().invoke(app, ["report", "--date", DAYS[-3].isoformat()], terminal_width=200)
    assert result.exit_code == 0, result.output
    (written,) = (nights.settings.home / "reports").glob(f"journey_health_{DAYS[-3].isoformat()}__*.html")
    page = written.read_text()
    assert f"Data through {DAYS[-3].isoformat()}" in page
    assert "GX Data Docs of this run" in page  # the day's latest run kept its validations


def test_a_home_without_a_warehouse_gets_no_report(tmp_path):
    from pipelines.insight.publish import publish

    settings = Settings(home=tmp_path, warehouse_url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    night = midnight_after(DAYS[0]) - timedelta(days=1), midnight_after(DAYS[0])
    assert publish(*night, "nothing-loaded", settings)["report"] is None
    assert list(tmp_path.iterdir()) == []
