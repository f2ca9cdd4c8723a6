"""The demo source systems: deterministic, contract-shaped, and carrying the planted truths.

Figures are computed from the files and tables as written (what the pipeline sees),
not from the world's own frames, except where a test compares the two on purpose.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from pipelines.contracts import Contract, load_contracts
from pipelines.demo import (
    DemoWorld,
    Volumes,
    advance_sources,
    build_demo_sources,
    read_survey_store,
)
from pipelines.demo import world as W
from pipelines.settings import REPO_ROOT, Settings

START = date(2026, 3, 1)
END = date(2026, 3, 21)
SCHEMAS = REPO_ROOT / "schemas"
CATALOG = yaml.safe_load((SCHEMAS / "catalog.yaml").read_text())
SERVICES = {s["service_id"]: s for s in CATALOG["services"]}
CONTRACTS: dict[str, Contract] = load_contracts(SCHEMAS)
SMALL = Volumes(cases=(30, 50), contacts=(60, 100), feedback=(20, 30))  # for the DB-heavy tests


def code_map(code: str) -> dict[str, str]:
    return {c: sid for sid, s in SERVICES.items() for c in s["codes"][code]}


def settings_for(home: Path) -> Settings:
    return Settings.from_env({"XOFLOW_HOME": str(home)})


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, DemoWorld]:
    settings = settings_for(tmp_path_factory.mktemp("demo"))
    world = build_demo_sources(settings, START, END, seed=7)
    return settings, world


@pytest.fixture(scope="module")
def table(built: tuple[Settings, DemoWorld]) -> pd.DataFrame:
    return cases_table(built[0])


# --- reading what was written -----------------------------------------------------------
def read_csv_text(path: Path) -> list[dict[str, str | None]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [{k: (v or None) for k, v in row.items()} for row in csv.DictReader(handle)]


def contacts_frame(settings: Settings, days: list[date]) -> pd.DataFrame:
    frames = []
    for day in days:
        path = settings.landing_dir / "contact_center" / f"contacts_{day}.csv"
        frames.append(pd.read_csv(path, dtype=str, keep_default_na=False))
    return pd.concat(frames, ignore_index=True)


def cases_table(settings: Settings) -> pd.DataFrame:
    engine = sa.create_engine(settings.case_db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM cases")).mappings().all()
    finally:
        engine.dispose()
    frame = pd.DataFrame([dict(r) for r in rows])
    for col in ("received_at", "decided_at", "updated_at"):
        frame[col] = pd.to_datetime(frame[col]).dt.tz_localize(UTC)
    return frame


def survey_rows(records: list[dict]) -> list[dict[str, str | None]]:
    """Store records as contract-named text rows (the connector's rename)."""
    rename = CONTRACTS["survey"].rename
    rows = []
    for rec in records:
        flat = {"id": rec["id"], "form_uuid": rec["form_uuid"], **rec["attributes"]}
        rows.append({rename.get(k, k): v for k, v in flat.items()})
    return rows


def as_text(value: object) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def violations(contract: Contract, row: dict[str, object]) -> list[str]:
    """Columns of ``row`` that break the contract (a small stand-in for validation)."""
    bad = []
    for col in contract.columns:
        value = as_text(row.get(col.name))
        if value is None or value.strip() == "":
            if not col.nullable:
                bad.append(col.name)
            continue
        try:
            if col.type == "integer":
                number = int(value)
                if (col.min is not None and number < col.min) or (
                    col.max is not None and number > col.max
                ):
                    raise ValueError
            elif col.type == "timestamp":
                datetime.fromisoformat(value)
            elif col.type == "date":
                date.fromisoformat(value)
            elif col.type == "boolean" and value not in ("true", "false"):
                raise ValueError
        except ValueError:
            bad.append(col.name)
            continue
        if col.allowed is not None and value not in col.allowed:
            bad.append(col.name)
    return bad


# --- determinism ------------------------------------------------------------------------
def landing_files(settings: Settings) -> dict[str, bytes]:
    root = settings.landing_dir
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_sources(tmp_path: Path) -> None:
    a, b = (settings_for(tmp_path / name) for name in "ab")
    day = date(2026, 3, 10)
    for settings in (a, b):
        build_demo_sources(settings, day, day + timedelta(days=1), seed=7, volumes=SMALL)
    assert landing_files(a) == landing_files(b)
    assert len(landing_files(a)) == 3 * 2 + 1
    assert cases_table(a).equals(cases_table(b))
    other = DemoWorld(seed=8, start=day, end=day)
    assert not other.contact_rows(day).equals(DemoWorld(seed=7, start=day, end=day).contact_rows(day))


def test_a_day_does_not_depend_on_the_range_asked_for() -> None:
    wide = DemoWorld(seed=7, start=date(2026, 3, 1), end=date(2026, 3, 10))
    narrow = DemoWorld(seed=7, start=date(2026, 3, 5), end=date(2026, 3, 6))
    day = date(2026, 3, 5)
    assert wide.contact_rows(day).equals(narrow.contact_rows(day))
    assert wide.survey_records(day) == narrow.survey_records(day)
    assert wide.web_document(day) == narrow.web_document(day)
    assert wide.feedback_records(day) == narrow.feedback_records(day)
    assert wide.planted_bad_rows("contact_center", day) == narrow.planted_bad_rows(
        "contact_center", day
    )
    first, last = narrow.cases["received_at"].min(), narrow.cases["received_at"].max()
    overlap = wide.cases[wide.cases["received_at"].between(first, last)]
    pd.testing.assert_frame_equal(overlap.reset_index(drop=True), narrow.cases)
    as_of = midnight(date(2026, 3, 6)) + timedelta(hours=9)
    state_wide = wide.case_state(as_of)
    state_narrow = narrow.case_state(as_of)
    recent = state_wide[state_wide["received_at"] >= first].reset_index(drop=True)
    pd.testing.assert_frame_equal(recent, state_narrow)


# --- contracts --------------------------------------------------------------------------
def test_files_and_table_have_the_contract_columns(
    built: tuple[Settings, DemoWorld], table: pd.DataFrame
) -> None:
    settings, world = built
    landing = settings.landing_dir
    day = world.days[3]
    with (landing / "contact_center" / f"contacts_{day}.csv").open() as handle:
        assert next(csv.reader(handle)) == CONTRACTS["contact_center"].column_names
    doc = json.loads((landing / "web_analytics" / f"web_{day}.json").read_text())
    assert doc["date"] == day.isoformat() and doc["property"] == W.WEB_PROPERTY
    for row in doc["rows"]:
        assert list(row) == CONTRACTS["web_analytics"].column_names
    for line in (landing / "feedback" / f"feedback_{day}.jsonl").read_text().splitlines():
        assert list(json.loads(line)) == CONTRACTS["feedback"].column_names
    store = read_survey_store(landing)
    assert store and store == read_survey_store(landing / "survey" / "responses.json")
    needed = set(CONTRACTS["survey"].column_names)
    for row in survey_rows(store[:50]):
        assert needed <= set(row)
    assert list(table.columns) == CONTRACTS["case_db"].column_names


def test_every_row_is_valid_except_the_planted_ones(built: tuple[Settings, DemoWorld]) -> None:
    settings, world = built
    landing = settings.landing_dir
    found: dict[str, set] = {s: set() for s in W.BAD_ROW_KINDS}
    planted: dict[str, set] = {s: set() for s in W.BAD_ROW_KINDS}
    for day in world.days:
        for source in ("contact_center", "web_analytics", "feedback", "survey"):
            for bad in world.planted_bad_rows(source, day):
                where = bad["row"] if bad["key"] is None else bad["key"]
                planted[source].add((bad["day"], where, bad["column"]))
        rows = read_csv_text(landing / "contact_center" / f"contacts_{day}.csv")
        for number, row in enumerate(rows, 1):
            for column in violations(CONTRACTS["contact_center"], row):
                where = number if row["contact_id"] is None else row["contact_id"]
                found["contact_center"].add((day.isoformat(), where, column))
        doc = json.loads((landing / "web_analytics" / f"web_{day}.json").read_text())
        for row in doc["rows"]:
            for column in violations(CONTRACTS["web_analytics"], row):
                found["web_analytics"].add((day.isoformat(), row["page_path"], column))
        lines = (landing / "feedback" / f"feedback_{day}.jsonl").read_text().splitlines()
        for line in lines:
            row = json.loads(line)
            for column in violations(CONTRACTS["feedback"], row):
                found["feedback"].add((day.isoformat(), row["feedback_id"], column))
    for row in survey_rows(read_survey_store(landing)):
        for column in violations(CONTRACTS["survey"], row):
            found["survey"].add((row["created_at"][:10], row["response_id"], column))
    for source in ("contact_center", "web_analytics", "feedback", "survey"):
        assert found[source] == planted[source], source
        kinds = {b["kind"] for b in world.planted_bad_rows(source)}
        assert kinds == {kind for kind, _ in W.BAD_ROW_KINDS[source]}
    # each planted row has exactly one fault (the set of (row, column) has no repeats)
    rows = [(d, key) for d, key, _ in planted["contact_center"]]
    assert len(rows) == len(set(rows)) == len(world.days) * 6


def test_case_db_bad_rows_are_the_planted_ones(
    built: tuple[Settings, DemoWorld], table: pd.DataFrame
) -> None:
    _settings, world = built
    broken = pd.DataFrame(index=table.index)
    for col in CONTRACTS["case_db"].columns:  # nulls and allowed values, vectorised
        values = table[col.name]
        broken[col.name] = values.isna() if not col.nullable else False
        if col.allowed is not None:
            broken[col.name] |= values.notna() & ~values.isin(col.allowed)
    assert broken.sum(axis=1).max() == 1
    faults = {
        table.at[i, "case_number"]: [broken.columns[row.to_numpy()].tolist()[0]]
        for i, row in broken[broken.any(axis=1)].iterrows()
    }
    as_of = W.end_of_day(world.end)
    expected = {}
    for day in world.days:
        for bad in world.planted_bad_rows("case_db", day, as_of=as_of):
            expected[bad["key"]] = [bad["column"]]
    in_window = table["updated_at"] >= pd.Timestamp(START, tz=UTC)
    window_cases = set(table.loc[in_window, "case_number"])
    window_faults = {k: v for k, v in faults.items() if k in window_cases}
    assert window_faults == expected
    assert {tuple(v) for v in expected.values()} == {("channel",), ("form_type",)}
    # one planted case per kind per receipt day, about 1 % of cases
    assert len(faults) == 2 * table["received_at"].dt.date.nunique()


def test_unmapped_rows_are_valid_and_map_to_nothing(built: tuple[Settings, DemoWorld]) -> None:
    settings, world = built
    day = world.days[5]
    queues = code_map("queue")
    contacts = {r["contact_id"]: r for r in world.contact_rows(day).to_dict("records")}
    legacy = world.unmapped_rows("contact_center", day)
    assert len(legacy) == W.UNMAPPED_ROWS_PER_DAY["contact_center"]
    for rec in legacy:
        row = contacts[rec["key"]]
        assert row["queue"] == W.UNMAPPED_QUEUE and row["queue"] not in queues
        assert violations(CONTRACTS["contact_center"], row) == []
    hints = code_map("feedback_hint")
    kinds = {r["kind"] for r in world.unmapped_rows("feedback")}
    assert kinds == {"unknown_code", "missing_code"}
    records = {r["feedback_id"]: r for r in world.feedback_records(day)}
    for rec in world.unmapped_rows("feedback", day):
        assert records[rec["key"]]["service_hint"] not in hints
        assert violations(CONTRACTS["feedback"], records[rec["key"]]) == []
    prefixes = code_map("web_path")
    for rec in world.unmapped_rows("web_analytics", day):
        assert not any(rec["key"].startswith(p + "/") for p in prefixes)
    planted_keys = {b["key"] for b in world.planted_bad_rows("feedback", day)}
    assert planted_keys.isdisjoint({r["key"] for r in world.unmapped_rows("feedback", day)})


# --- the case DB as of a moment ---------------------------------------------------------
def test_case_db_holds_nothing_from_the_future(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    as_of = midnight(START + timedelta(days=2)) + timedelta(hours=12)
    world = build_demo_sources(
        settings, START, START + timedelta(days=4), seed=3, as_of=as_of, volumes=SMALL
    )
    as_of = pd.Timestamp(as_of)
    table = cases_table(settings)
    assert table["case_number"].is_unique
    assert table["received_at"].max() < as_of
    assert table["updated_at"].max() < as_of
    assert table["decided_at"].max() < as_of
    assert (table["updated_at"] >= table["received_at"]).all()
    decided = table["status"].isin(["approved", "denied"])
    assert table["decided_at"].notna().equals(decided)
    assert set(table["status"]) == {"received", "in_process", "approved", "denied", "withdrawn"}
    assert (table.loc[decided, "updated_at"] == table.loc[decided, "decided_at"]).all()
    assert table["case_number"].str.fullmatch(r"FBA\d{10}").all()
    assert table["customer_ref"].str.fullmatch(r"C\d{8}").all()
    store = read_survey_store(settings.landing_dir)
    assert max(r["attributes"]["created_at"] for r in store) < as_of.isoformat()[:19] + ".000Z"
    assert min(r["attributes"]["created_at"] for r in store) >= START.isoformat()

    # the next night: the table is replaced, cases move on, nothing is duplicated
    later = midnight(START + timedelta(days=4))
    assert advance_sources(settings, world, later) is world
    after = cases_table(settings)
    assert after["case_number"].is_unique and len(after) > len(table)
    assert after["updated_at"].max() < pd.Timestamp(later)
    merged = table.merge(after, on="case_number", suffixes=("_before", "_after"))
    assert len(merged) == len(table)
    moved = merged["status_before"] != merged["status_after"]
    assert moved.sum() > 20
    assert (merged.loc[moved, "updated_at_after"] >= as_of).all()
    expected = world.case_state(later)
    assert list(after["case_number"]) == list(expected["case_number"])
    assert (after["status"].to_numpy() == expected["status"].to_numpy()).all()
    assert len(read_survey_store(settings.landing_dir)) > len(store)


def test_advancing_past_the_end_extends_the_world(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    world = build_demo_sources(settings, START, START, seed=5, volumes=SMALL)
    before = landing_files(settings)
    longer = advance_sources(settings, world, midnight(START + timedelta(days=3)))
    assert longer.end == START + timedelta(days=2)
    after = landing_files(settings)
    assert {k: after[k] for k in before if "survey" not in k} == {
        k: v for k, v in before.items() if "survey" not in k
    }
    assert len(after) == 3 * 3 + 1


# --- planted relationships --------------------------------------------------------------
def test_cycle_times_center_on_the_standard(table: pd.DataFrame) -> None:
    table = table.copy()
    table["service_id"] = table["form_type"].map(code_map("form_type"))
    decided = table[table["status"].isin(["approved", "denied"]) & table["service_id"].notna()]
    days = (decided["decided_at"].dt.normalize() - decided["received_at"].dt.normalize()).dt.days
    standard = decided["service_id"].map({k: v["standard_days"] for k, v in SERVICES.items()})
    over = (days > standard).groupby(decided["service_id"]).mean()
    assert over.between(0.15, 0.35).all(), over
    assert over.max() - over.min() > 0.03  # varies by service
    assert (days <= W.MAX_CYCLE_DAYS).all()
    assert not (days == standard).any()  # no case on the boundary


def test_satisfaction_falls_when_the_case_ran_over(
    built: tuple[Settings, DemoWorld], table: pd.DataFrame
) -> None:
    settings, _world = built
    survey = pd.DataFrame(survey_rows(read_survey_store(settings.landing_dir)))
    joined = survey.merge(table, left_on="external_id", right_on="case_number",
                          suffixes=("", "_case"))
    assert len(joined) == len(survey) - survey["external_id"].isna().sum()
    assert (joined["channel"] == joined["channel_case"]).all()
    assert (joined["customer_type"] == joined["customer_type_case"]).all()
    assert (joined["region"] == joined["region_case"]).all()
    created = pd.to_datetime(joined["created_at"], utc=True)
    lag = created - joined["decided_at"]
    assert lag.min() >= pd.Timedelta(0) and lag.max() <= pd.Timedelta(days=3)
    service = joined["form_uuid"].map(code_map("survey_form"))
    standard = service.map({k: v["standard_days"] for k, v in SERVICES.items()})
    days = (joined["decided_at"].dt.normalize() - joined["received_at"].dt.normalize()).dt.days
    joined["over"] = days > standard
    for item in ("satisfaction", "trust", "efficiency"):
        scores = pd.to_numeric(joined[item])
        valid = scores.between(1, 5)
        means = scores[valid].groupby(joined.loc[valid, "over"]).mean()
        assert means[False] - means[True] >= 1.0, (item, means)
    sat = pd.to_numeric(joined["satisfaction"])
    sat = sat[sat.between(1, 5)].groupby(joined["over"]).mean()
    assert 3.8 <= sat[False] <= 4.4 and 2.3 <= sat[True] <= 2.9
    # comments about waiting or status come with cases over their standard
    comments = joined["comment"].fillna("").str.lower()
    waiting = comments.str.contains("wait|status|slow|long")
    assert waiting[joined["over"]].mean() > 0.3 > waiting[~joined["over"]].mean()
    # about a third of decided cases answer, some 60-120 a day
    per_day = survey.groupby(survey["created_at"].str[:10]).size()
    assert per_day.between(40, 130).all()


def test_contacts_follow_online_status(built: tuple[Settings, DemoWorld]) -> None:
    settings, world = built
    contacts = contacts_frame(settings, world.days)
    contacts = contacts[contacts["contact_id"] != ""]
    contacts = contacts[~contacts["start_time"].str.contains("T25")]
    contacts["start"] = pd.to_datetime(contacts["start_time"], utc=True)
    service = contacts["queue"].map(code_map("queue"))
    contacts = contacts[service.notna()]
    online = service.dropna().map({k: v["online_status"] for k, v in SERVICES.items()})
    contacts = contacts.assign(online=online).sort_values(["customer_ref", "start"])
    gap = contacts.groupby("customer_ref")["start"].shift(-1) - contacts["start"]
    repeat = (gap < pd.Timedelta(days=7)).groupby(contacts["online"]).mean()
    assert repeat[False] > 1.5 * repeat[True], repeat
    status = (contacts["reason"] == "status_inquiry").groupby(contacts["online"]).mean()
    assert status[False] > 1.5 * status[True], status
    abandoned = contacts["abandoned"] == "true"
    assert (contacts.loc[abandoned, "handle_seconds"] == "0").all()
    assert (contacts.loc[abandoned, "resolved_first_contact"] == "false").all()
    resolved = contacts["resolved_first_contact"] == "true"
    by_transfer = resolved.groupby(contacts["transferred"]).mean()
    assert by_transfer["true"] < by_transfer["false"] - 0.15
    answered = contacts[~abandoned]
    fcr = resolved[~abandoned].groupby(answered["queue"]).mean()
    assert fcr.max() - fcr.min() > 0.1
    per_day = contacts_frame(settings, world.days).groupby(lambda i: 0).size()
    assert 400 * len(world.days) <= per_day.iloc[0] <= 700 * len(world.days)


def test_segments_are_the_same_customer_everywhere(
    built: tuple[Settings, DemoWorld], table: pd.DataFrame
) -> None:
    settings, world = built
    segment = ["customer_type", "language", "region"]
    contacts = contacts_frame(settings, world.days[:7])[["customer_ref", "case_number", *segment]]
    both = pd.concat([table[["customer_ref", *segment]], contacts[["customer_ref", *segment]]])
    assert both.drop_duplicates()["customer_ref"].is_unique
    cases = table.set_index("case_number")["customer_ref"]
    with_case = contacts[contacts["case_number"] != ""]
    assert (with_case["case_number"].map(cases) == with_case["customer_ref"]).all()
    vets = table[table["form_type"] == SERVICES["veteran_pension"]["codes"]["form_type"][0]]
    assert (vets["customer_type"] == "veteran").all()


def test_web_pages_follow_the_catalog(built: tuple[Settings, DemoWorld]) -> None:
    settings, world = built
    prefixes = code_map("web_path")
    stages = CATALOG["web_path_stage"]
    for day in world.days[:5]:
        doc = json.loads((settings.landing_dir / "web_analytics" / f"web_{day}.json").read_text())
        paths = {r["page_path"] for r in doc["rows"]}
        for row in doc["rows"]:
            prefix = next((p for p in prefixes if row["page_path"].startswith(p + "/")), None)
            if prefix is None:
                continue
            suffix = row["page_path"][len(prefix) :]
            assert suffix in stages
            if row["status_checks"]:
                assert suffix == "/status" and SERVICES[prefixes[prefix]]["online_status"]
        for sid, svc in SERVICES.items():
            has_status = svc["codes"]["web_path"][0] + "/status" in paths
            assert has_status == svc["online_status"], sid
        # online applications completed on the web are the online cases received that day
        cases = world.cases
        received = cases[cases["received_at"].dt.date == day]
        online = received[received["true_channel"] == "online"]["service_id"].value_counts()
        for sid, svc in SERVICES.items():
            intake = [r for r in doc["rows"] if r["page_path"].startswith(svc["codes"]["web_path"][0])
                      and r["task_completions"] and not r["status_checks"]]
            assert intake and intake[0]["task_completions"] == online.get(sid, 0)


def test_feedback_mentions_status_for_services_without_it(
    built: tuple[Settings, DemoWorld],
) -> None:
    settings, world = built
    hints = code_map("feedback_hint")
    rows = []
    for day in world.days:
        path = settings.landing_dir / "feedback" / f"feedback_{day}.jsonl"
        rows += [json.loads(line) for line in path.read_text().splitlines()]
    fb = pd.DataFrame(rows)
    assert fb.groupby(fb["received_at"].str[:10]).size().between(20, 40).all()
    fb["online"] = fb["service_hint"].map(hints).map(
        {k: v["online_status"] for k, v in SERVICES.items()}
    )
    mentions = fb["text"].str.contains("status", case=False)
    share = mentions.groupby(fb["online"]).mean()
    assert share[False] > share[True] + 0.2
    reviews = fb[fb["channel"] == "app_review"]
    assert reviews["rating"].between(1, 5).all()
    assert fb.loc[fb["channel"].isin(["email", "social"]), "rating"].isna().all()
