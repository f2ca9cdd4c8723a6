"""Batches change nothing: a night run in small batches loads what one whole batch loads.

Two demo nights are run twice from the same source files, once with the default batch
size (each source is one batch) and once with 97 rows per batch (the contact CSV
arrives in dozens of batches). The warehouse holds the same facts, quarantine, unmapped
codes, ledger counts and marts either way (run ids and timestamps excluded). A contact id
planted twice, far apart in the file, lands in different batches and is still
quarantined twice, like GX's unique check does inside one batch.
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from demo_homes import SOURCES_WITHOUT_SURVEY, home_without_survey

from pipelines import nightly, sources, staging
from pipelines.demo import advance_sources, build_demo_sources
from pipelines.interval import Interval
from pipelines.model import metadata
from pipelines.settings import REPO_ROOT, Settings

DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 3)
SOURCES = SOURCES_WITHOUT_SURVEY
SMALL_BATCH = 97
VOLATILE = {"run_id", "loaded_at", "purged_at", "record", "reason"}


def midnight_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def run_two_nights(home, batch_rows: int, monkeypatch) -> Settings:
    settings, demo, _ = home_without_survey(home, "batching-test-key")
    world = build_demo_sources(demo, DAY1, DAY2, seed=11, as_of=midnight_after(DAY1))
    contacts = settings.landing_dir / "contact_center" / f"contacts_{DAY1.isoformat()}.csv"
    lines = contacts.read_text().splitlines(keepends=True)
    contacts.write_text("".join(lines + [lines[1]]))  # the first contact again, as the last row
    monkeypatch.setattr(sources, "BATCH_ROWS", batch_rows)
    nightly.run_day(DAY1, "night1", settings)
    advance_sources(demo, world, midnight_after(DAY2))
    nightly.run_day(DAY2, "night2", settings)
    return settings


def dump(settings: Settings) -> dict[str, list[tuple]]:
    engine = sa.create_engine(settings.warehouse_url)
    try:
        with engine.connect() as conn:
            tables = {}
            for table in metadata.sorted_tables:
                columns = [c for c in table.columns if c.name not in VOLATILE]
                tables[table.name] = sorted(map(tuple, conn.execute(sa.select(*columns)).all()), key=repr)
            return tables
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        whole = run_two_nights(tmp_path_factory.mktemp("whole"), 10**9, monkeypatch)
    with pytest.MonkeyPatch.context() as monkeypatch:
        small = run_two_nights(tmp_path_factory.mktemp("small"), SMALL_BATCH, monkeypatch)
    return whole, small


def test_small_batches_load_the_same_warehouse(both):
    whole, small = both
    staged = staging.staging_dir(small, "contact_center", Interval.for_day(DAY1))
    contacts = small.landing_dir / "contact_center" / f"contacts_{DAY1.isoformat()}.csv"
    rows = len(contacts.read_text().splitlines()) - 1
    assert rows > 3 * SMALL_BATCH
    assert len(list(staged.glob("clean-*.parquet"))) == math.ceil(rows / SMALL_BATCH)
    assert len(list(staging.staging_dir(whole, "contact_center", Interval.for_day(DAY1))
                    .glob("clean-*.parquet"))) == 1
    expected, found = dump(whole), dump(small)
    assert expected["fact_contact"] and expected["mart_journey_service_daily"]
    for name in expected:
        assert found[name] == expected[name], name


def test_a_key_repeated_in_different_batches_is_quarantined_both_times(both):
    _, small = both
    engine = sa.create_engine(small.warehouse_url)
    contacts = small.landing_dir / "contact_center" / f"contacts_{DAY1.isoformat()}.csv"
    lines = contacts.read_text().splitlines()
    first_id = lines[1].split(",")[0]
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT row_number, failed_check, column_name, reason FROM quarantine "
            "WHERE source = 'contact_center' AND partition_date = :day AND reason LIKE :pattern "
            "ORDER BY row_number"), {"day": DAY1, "pattern": f"%{first_id}%"}).all()
    engine.dispose()
    assert [r.row_number for r in rows] == [1, len(lines) - 1]
    assert {r.failed_check for r in rows} == {"expect_column_values_to_be_unique"}
    assert all(r.column_name == "contact_id" and "more than once" in r.reason for r in rows)


def test_the_next_night_extracts_longest_first_by_what_each_source_took(both):
    """The extract's own result.json carries the seconds the next night's order reads."""
    whole, _ = both
    took = {}
    for source in SOURCES:
        result = json.loads((whole.home / "staging" / source / DAY2.isoformat() / "result.json").read_text())
        took[source] = result["seconds"]["extract"] + result["seconds"]["validate"]
    assert all(seconds > 0 for seconds in took.values())
    assert nightly.extract_order(whole) == sorted(SOURCES, key=lambda source: -took[source])


def test_a_contract_sets_its_own_batch_size(tmp_path):
    """``batch_rows`` in a source's contract (wide records) overrides the job's default."""
    schemas = tmp_path / "schemas"
    shutil.copytree(REPO_ROOT / "schemas", schemas)
    contract = schemas / "sources" / "contact_center.yaml"
    contract.write_text(contract.read_text() + "\nbatch_rows: 40\n")
    env = {"XOFLOW_HOME": str(tmp_path), "XOFLOW_SCHEMAS_DIR": str(schemas),
           "XOFLOW_SURVEY_API_KEY": "unused", "XOFLOW_PSEUDONYM_KEY": "batching-test-key"}
    settings = Settings.from_env(env)
    build_demo_sources(Settings.from_env(env | {"XOFLOW_SCHEMAS_DIR": str(REPO_ROOT / "schemas")}),
                       DAY1, DAY1, seed=11, as_of=midnight_after(DAY1))
    interval = Interval.for_day(DAY1)
    result = nightly.extract_and_validate("contact_center", interval.start, interval.end, "own", settings)
    staged = staging.staging_dir(settings, "contact_center", interval)
    assert result["rows_read"] > 3 * 40
    assert len(list(staged.glob("clean-*.parquet"))) == math.ceil(result["rows_read"] / 40)
    assert result["rows_read"] < sources.BATCH_ROWS  # the default would have made one batch
