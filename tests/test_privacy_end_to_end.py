"""Personal data planted in every free-text source never reaches what analysts and BI tools read.

The demo sources of one day get the texts of ``privacy_corpus`` (68 pieces of personal
data in ten types, with near misses) in every free-text field: survey comments (in the
survey platform's store, served over HTTP), feedback texts (JSON Lines) and contact
notes (CSV). The real DAG loads the day. Then every value the run wrote outside the raw
zone is searched: lake parquet files, every warehouse table, mart and view, any other
file. Expected texts and redaction counts are computed here from the corpus markup; the
X-to-O joins are compared with the same joins on the clear identifiers, computed from
the source systems with plain Python.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import os
import re
import sqlite3
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from airflow_harness import run_dag_for_day
from privacy_corpus import TEXTS, expected, near_misses, personal_data, planted, type_counts
from privacy_outputs import file_places, find, warehouse_places

from pipelines import nightly
from pipelines.demo import DemoWorld, build_demo_sources, read_survey_store
from pipelines.demo.survey_api_server import SurveyApiServer
from pipelines.settings import Settings

pytestmark = pytest.mark.dag_run

DAY = date(2026, 4, 6)
KEY_A, KEY_B = "privacy-e2e-key-A-6c1f", "privacy-e2e-key-B-93d2"
RESTRICTED = ("raw", "staging", "sources")  # data as received, and the demo's source systems
FREE_TEXT = {"survey": "comment", "feedback": "text", "contact_center": "notes"}
PSEUDONYM = re.compile(r"^[0-9a-f]{32}$")
IDENTIFIER_TOKEN = re.compile(r"[A-Za-z]{1,3}\d{6,}")


@dataclass
class Planted:
    """What each source row received: ``texts[source][row key] = corpus text (marked up)``."""

    texts: dict[str, dict[str, str]]
    quarantined: dict[str, set[str]]


@dataclass
class Night:
    settings: Settings
    other_key: Settings
    world: DemoWorld
    planted: Planted
    state: str

    def query(self, sql: str, settings: Settings | None = None, **params) -> list[dict]:
        engine = sa.create_engine((settings or self.settings).warehouse_url)
        try:
            with engine.connect() as conn:
                return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]
        finally:
            engine.dispose()


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.planting")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def corpus_cycle(count: int) -> list[str]:
    return [TEXTS[i % len(TEXTS)] for i in range(count)]


def plant(settings: Settings, world: DemoWorld) -> Planted:
    """Every free text of the day replaced by corpus texts, in turn (empty ones stay empty)."""
    texts: dict[str, dict[str, str]] = {}
    bad = {s: world.planted_bad_rows(s, DAY) for s in ("survey", "feedback", "contact_center")}

    store = settings.landing_dir / "survey" / "responses.json"
    records = read_survey_store(store)
    todays = [r for r in records if r["attributes"]["created_at"].startswith(DAY.isoformat())]
    for record, text in zip(todays, corpus_cycle(len(todays)), strict=True):
        record["attributes"]["answer_09"] = planted(text)
    texts["survey"] = {r["id"]: t for r, t in zip(todays, corpus_cycle(len(todays)), strict=True)}
    atomic_write(store, json.dumps(records, ensure_ascii=False) + "\n")

    feedback = settings.landing_dir / "feedback" / f"feedback_{DAY.isoformat()}.jsonl"
    lines = [json.loads(line) for line in feedback.read_text().splitlines()]
    keep = [r for r in lines if r["text"] != ""]
    for record, text in zip(keep, corpus_cycle(len(keep)), strict=True):
        record["text"] = planted(text)
    texts["feedback"] = {r["feedback_id"]: t for r, t in zip(keep, corpus_cycle(len(keep)), strict=True)}
    atomic_write(feedback, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines))

    contacts = settings.landing_dir / "contact_center" / f"contacts_{DAY.isoformat()}.csv"
    with contacts.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames, list(reader)
    assert "notes" in fields
    for row, text in zip(rows, corpus_cycle(len(rows)), strict=True):
        row["notes"] = planted(text)
    # a dozen customers called about their case the day they answered its survey
    bad_rows = {b["row"] for b in bad["contact_center"]}
    surveyed = [r["attributes"]["answer_10"] for r in todays if r["attributes"]["answer_10"]][:12]
    callers = [row for number, row in enumerate(rows, start=1) if number not in bad_rows]
    for row, case_number in zip(callers, surveyed, strict=False):
        row["case_number"] = case_number
    # a contact is keyed by its row number: one planted bad row has no contact_id
    texts["contact_center"] = {str(i): t for i, t in enumerate(corpus_cycle(len(rows)), start=1)}
    with contacts.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    quarantined = {
        "survey": {b["key"] for b in bad["survey"]},
        "feedback": {b["key"] for b in bad["feedback"]},
        "contact_center": {str(b["row"]) for b in bad["contact_center"]},
    }
    return Planted(texts, quarantined)


@pytest.fixture(scope="module")
def night(tmp_path_factory, airflow_db) -> Night:
    home = tmp_path_factory.mktemp("privacy")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XOFLOW_HOME", str(home))
        mp.setenv("XOFLOW_PSEUDONYM_KEY", KEY_A)
        for name in ("XOFLOW_WAREHOUSE_URL", "XOFLOW_CASE_DB_URL", "XOFLOW_LANDING_DIR",
                     "XOFLOW_LAKE_DIR", "XOFLOW_RAW_DIR"):
            mp.delenv(name, raising=False)
        settings = Settings.from_env()
        world = build_demo_sources(settings, DAY, DAY, seed=23,
                                   as_of=datetime.combine(DAY + timedelta(days=1), time(), tzinfo=UTC))
        planted_texts = plant(settings, world)
        store = settings.landing_dir / "survey" / "responses.json"
        with SurveyApiServer(store, settings.survey_api_key) as server:
            mp.setenv("XOFLOW_SURVEY_API_URL", server.url)
            run = run_dag_for_day(DAY)
            # the same sources loaded again under another key, into another warehouse
            other_home = tmp_path_factory.mktemp("privacy_other_key")
            other = replace(settings, survey_api_url=server.url, pseudonym_key=KEY_B, home=other_home,
                            lake_dir=other_home / "lake", raw_dir=other_home / "raw",
                            warehouse_url=f"duckdb:///{other_home / 'warehouse.duckdb'}")
            nightly.run_day(DAY, "other_key", other)
            settings = replace(settings, survey_api_url=server.url)
        yield Night(settings, other, world, planted_texts, run.state)


def pseudonym(key: str, kind: str, value: str) -> str:
    return hmac.new(key.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


# ------------------------------------------------------------------ the run


def test_the_night_loads(night):
    assert night.state == "success"
    loaded = night.query("SELECT source, status FROM ledger")
    assert {r["source"] for r in loaded if r["status"] == "loaded"} == {
        "case_db", "contact_center", "survey", "web_analytics", "feedback"}


def test_every_planted_text_went_into_a_source(night):
    for source, rows in night.planted.texts.items():
        assert len(rows) >= len(TEXTS), source  # every corpus text at least once per source
        assert night.planted.quarantined[source] & set(rows), f"{source}: some planted rows are quarantined"


# ------------------------------------------------------------------ nothing readable holds them


def test_the_scan_finds_the_personal_data_where_it_was_received(night):
    """The search below can fail: in the raw zone, as received, every planted value is there."""
    values = [v for _, v in personal_data()]
    found = {needle for needle, _ in find(values, file_places(night.settings.home / "raw"))}
    assert found == set(values)


def test_no_planted_personal_data_in_any_file_table_mart_or_view(night):
    values = [v for _, v in personal_data()]
    places = list(file_places(night.settings.home, skip=RESTRICTED))
    wheres = {p.where for p in places}
    assert any("lake/fact_feedback" in w for w in wheres) and any("bi." in w for w in wheres)
    assert any("mart_journey_service_daily" in w for w in wheres)
    assert any("fact_contact" in w and "table" in w for w in wheres)
    assert any("/reports/" in w and w.endswith(".html") for w in wheres)  # the run's published report
    assert any("/data_docs/" in w for w in wheres)
    assert find(values, places) == []


def test_planted_texts_arrive_redacted_exactly_with_near_misses_kept(night):
    rows = {r["feedback_id"]: r["text"] for r in night.query("SELECT feedback_id, text FROM fact_feedback")}
    for key, text in night.planted.texts["feedback"].items():
        if key not in night.planted.quarantined["feedback"]:
            assert rows[key] == expected(text), key
    rows = {r["response_id"]: r["comment"] for r in night.query(
        "SELECT response_id, comment FROM fact_survey_response")}
    for key, text in night.planted.texts["survey"].items():
        if key not in night.planted.quarantined["survey"]:
            assert rows[key] == expected(text), key
    notes = {r["contact_key"]: r["notes"] for r in night.query("SELECT contact_key, notes FROM fact_contact")}
    contact_ids = contact_ids_by_row(night)
    for row, text in night.planted.texts["contact_center"].items():
        if row not in night.planted.quarantined["contact_center"]:
            assert notes[pseudonym(KEY_A, "contact", contact_ids[row])] == expected(text), row
    kept = "\n".join(rows.values())
    assert all(near in kept for near in near_misses())


def test_quarantined_records_keep_identifiers_but_not_free_text(night):
    records = [json.loads(r["record"]) | {"_source": r["source"]} for r in night.query(
        "SELECT source, record FROM quarantine")]
    planted_texts = [r for r in records if r["_source"] in FREE_TEXT and r.get(FREE_TEXT[r["_source"]])]
    assert len(planted_texts) >= 5
    for record in planted_texts:
        text = record[FREE_TEXT[record["_source"]]]
        assert text in {expected(t) for t in TEXTS}, text
    bad_cases = {b["key"] for b in night.world.planted_bad_rows("case_db", DAY)}
    assert bad_cases <= {r.get("case_number") for r in records}  # clear, so engineers can find them


def test_the_ledger_counts_each_type_of_redaction_per_source_and_zone(night):
    expected_counts: Counter = Counter()
    for source, rows in night.planted.texts.items():
        for key, text in rows.items():
            zone = "quarantine" if key in night.planted.quarantined[source] else "curated"
            for pii_type, n in type_counts(text).items():
                expected_counts[(source, FREE_TEXT[source], zone, pii_type)] += n
    ledger = night.query("SELECT source, column_name, zone, pii_type, redactions FROM ledger_redaction")
    found = Counter({(r["source"], r["column_name"], r["zone"], r["pii_type"]): r["redactions"]
                     for r in ledger if r["redactions"]})
    assert found == expected_counts
    zero = {(r["source"], r["zone"], r["pii_type"]) for r in ledger if not r["redactions"]}
    assert ("feedback", "curated", "ITIN") not in zero  # the corpus has ITINs in every source
    assert {r["source"] for r in ledger} == set(FREE_TEXT)


def test_clear_identifiers_are_only_in_the_quarantine(night):
    identifiers = source_identifiers(night)
    assert len(identifiers) > 1000
    places = [p for p in file_places(night.settings.home, skip=(*RESTRICTED, "warehouse.duckdb"))
              if "quarantine_" not in p.where]
    places += list(warehouse_places(night.settings.warehouse_url, skip_tables={"quarantine"}))
    leaks = [(token, p.where) for p in places
             for token in set(IDENTIFIER_TOKEN.findall(p.text)) & identifiers]
    assert leaks == []
    for column in ("case_key", "customer_key"):
        keys = [r["k"] for r in night.query(f"SELECT DISTINCT {column} AS k FROM fact_case")]
        assert keys and all(PSEUDONYM.match(k) for k in keys)


# ------------------------------------------------------------------ X still joins O


def valid_cases(night: Night) -> dict[str, tuple]:
    """case_number -> (form_type, office, status) of the cases that pass their contract."""
    with sqlite3.connect(night.settings.case_db_url.removeprefix("sqlite:///")) as db:
        rows = db.execute("SELECT case_number, form_type, office, status, channel FROM cases").fetchall()
    return {number: (form, office, status) for number, form, office, status, channel in rows
            if form is not None and channel in ("online", "paper", "in_person")}


def survey_case_numbers(night: Night) -> dict[str, str | None]:
    """response_id -> external_id of the day's responses, from the survey platform's store."""
    return {r["id"]: r["attributes"]["answer_10"] for r in read_survey_store(night.settings.landing_dir)
            if r["attributes"]["created_at"].startswith(DAY.isoformat())}


def contact_ids_by_row(night: Night) -> dict[str, str]:
    path = night.settings.landing_dir / "contact_center" / f"contacts_{DAY.isoformat()}.csv"
    with path.open(newline="") as handle:
        return {str(i): row["contact_id"] for i, row in enumerate(csv.DictReader(handle), start=1)}


def source_identifiers(night: Night) -> set[str]:
    with sqlite3.connect(night.settings.case_db_url.removeprefix("sqlite:///")) as db:
        found = {v for row in db.execute("SELECT case_number, customer_ref FROM cases") for v in row}
    path = night.settings.landing_dir / "contact_center" / f"contacts_{DAY.isoformat()}.csv"
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            found |= {row["contact_id"], row["customer_ref"], row["case_number"]}
    return {v for v in found if v}


def test_survey_responses_join_the_same_cases_as_on_clear_case_numbers(night):
    cases = valid_cases(night)
    loaded = {r["response_id"] for r in night.query("SELECT response_id FROM fact_survey_response")}
    clear = {rid: cases[number] for rid, number in survey_case_numbers(night).items()
             if rid in loaded and number in cases}
    joined = {r["response_id"]: (r["form_type"], r["office"], r["status"]) for r in night.query(
        "SELECT r.response_id, c.form_type, c.office, c.status FROM fact_survey_response r "
        "JOIN fact_case c ON c.case_key = r.case_key")}
    assert len(clear) > 20
    assert joined == clear


def test_survey_responses_join_the_same_contacts_as_on_clear_case_numbers(night):
    """X to O through the case: each response with every contact about its case."""
    path = night.settings.landing_dir / "contact_center" / f"contacts_{DAY.isoformat()}.csv"
    with path.open(newline="") as handle:
        contacts = list(csv.DictReader(handle))
    fingerprint = {(c["start_time"][:19], c["queue"], c["wait_seconds"]) for c in contacts}
    assert len(fingerprint) == len(contacts)  # a contact is recognisable without its id
    loaded_contacts = {(r["t"], r["queue"], str(r["wait_seconds"])) for r in night.query(
        "SELECT strftime(start_time AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S') AS t, queue, wait_seconds "
        "FROM fact_contact")}
    responses = survey_case_numbers(night)
    loaded = {r["response_id"] for r in night.query("SELECT response_id FROM fact_survey_response")}
    clear = Counter((rid, (c["start_time"][:19], c["queue"], c["wait_seconds"]))
                    for rid, number in responses.items() if rid in loaded and number
                    for c in contacts if c["case_number"] == number
                    and (c["start_time"][:19], c["queue"], c["wait_seconds"]) in loaded_contacts)
    joined = Counter((r["response_id"], (r["t"], r["queue"], str(r["wait_seconds"]))) for r in night.query(
        "SELECT r.response_id, strftime(c.start_time AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S') AS t, c.queue, "
        "c.wait_seconds FROM fact_survey_response r JOIN fact_contact c ON c.case_key = r.case_key"))
    assert sum(clear.values()) >= 10
    assert joined == clear


def test_contacts_join_the_same_customers_cases_as_on_clear_references(night):
    """O to O: contacts and cases of the same customer, matched on the pseudonymous customer key."""
    cases = valid_cases(night)
    with sqlite3.connect(night.settings.case_db_url.removeprefix("sqlite:///")) as db:
        owner = {n: ref for n, ref in db.execute("SELECT case_number, customer_ref FROM cases") if n in cases}
    by_customer = Counter(owner.values())
    contact_ids = contact_ids_by_row(night)
    path = night.settings.landing_dir / "contact_center" / f"contacts_{DAY.isoformat()}.csv"
    with path.open(newline="") as handle:
        refs = {row["contact_id"]: row["customer_ref"] for row in csv.DictReader(handle)}
    loaded = {r["contact_key"] for r in night.query("SELECT contact_key FROM fact_contact")}
    clear = {pseudonym(KEY_A, "contact", cid): by_customer[refs[cid]]
             for cid in contact_ids.values() if pseudonym(KEY_A, "contact", cid) in loaded}
    joined = {r["contact_key"]: r["n"] for r in night.query(
        "SELECT k.contact_key, count(c.case_key) AS n FROM fact_contact k "
        "LEFT JOIN fact_case c ON c.customer_key = k.customer_key GROUP BY k.contact_key")}
    assert sum(clear.values()) > 0
    assert joined == clear


# ------------------------------------------------------------------ another key, nothing in common


KEY_COLUMNS = {"fact_case": ("case_key", "customer_key"),
               "fact_contact": ("contact_key", "customer_key", "case_key"),
               "fact_survey_response": ("case_key",)}


def test_another_key_gives_pseudonyms_with_nothing_in_common(night):
    for table, columns in KEY_COLUMNS.items():
        for column in columns:
            sql = f"SELECT DISTINCT {column} AS k FROM {table} WHERE {column} IS NOT NULL"
            first = {r["k"] for r in night.query(sql)}
            second = {r["k"] for r in night.query(sql, night.other_key)}
            assert len(first) == len(second) > 10, (table, column)
            assert not first & second, (table, column)


def test_outputs_under_two_keys_cannot_be_joined_but_are_otherwise_identical(night):
    responses = night.query("SELECT response_id, case_key FROM fact_survey_response")
    cases_a = {r["case_key"] for r in night.query("SELECT case_key FROM fact_case")}
    cases_b = {r["case_key"] for r in night.query("SELECT case_key FROM fact_case", night.other_key)}
    assert sum(r["case_key"] in cases_a for r in responses) > 20
    assert sum(r["case_key"] in cases_b for r in responses) == 0
    for table, keys in KEY_COLUMNS.items():
        columns = [c["column_name"] for c in night.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = :t", t=table)
            if c["column_name"] not in keys]
        sql = f"SELECT {', '.join(columns)} FROM {table}"
        other = night.query(sql, night.other_key)
        assert sorted(map(repr, night.query(sql))) == sorted(map(repr, other)), table
