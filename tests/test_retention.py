"""Raw-zone retention: partitions of data as received are deleted N days after their day.

Days are counted back from the last day of the run's data interval, never from the
clock. Expected deletions are computed here from the folder names the test created.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from airflow_harness import run_dag_for_day

from pipelines import nightly, retention
from pipelines.contracts import ContractError
from pipelines.interval import Interval
from pipelines.settings import REPO_ROOT, Settings

LAST = date(2026, 5, 20)
SOURCES = ("survey", "contact_center")


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env({"XOFLOW_HOME": str(tmp_path), "XOFLOW_PSEUDONYM_KEY": "unused"})


def fill_zones(settings: Settings, days: list[date]) -> dict[tuple[str, str, date], tuple[int, int]]:
    """Raw and staging partitions for ``days``; returns (zone, source, day) -> (files, bytes)."""
    made = {}
    for source in SOURCES:
        for number, day in enumerate(days):
            raw = settings.raw_dir / source / f"date={day.isoformat()}"
            staging = settings.home / "staging" / source / day.isoformat()
            for zone, folder, names in (("raw", raw, ["run=a.parquet", "run=b.parquet"]),
                                        ("staging", staging, ["clean.parquet", "result.json"])):
                folder.mkdir(parents=True)
                for i, name in enumerate(names):
                    (folder / name).write_bytes(b"x" * (100 + 10 * number + i))
                sizes = [100 + 10 * number + i for i in range(len(names))]
                made[(zone, source, day)] = (len(names), sum(sizes))
    return made


def present(settings: Settings) -> set[tuple[str, str, date]]:
    found = set()
    for source in SOURCES:
        for path in (settings.raw_dir / source).glob("date=*"):
            found.add(("raw", source, date.fromisoformat(path.name.removeprefix("date="))))
        for path in (settings.home / "staging" / source).glob("*-*-*"):
            found.add(("staging", source, date.fromisoformat(path.name)))
    return found


def recorded(settings: Settings) -> dict[tuple[str, str, date], dict]:
    engine = sa.create_engine(settings.warehouse_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM raw_purge")).mappings().all()
    finally:
        engine.dispose()
    return {(r["zone"], r["source"], r["partition_date"]): dict(r) for r in rows}


def run(settings: Settings, last_day: date, run_id: str = "r1", days: int | None = None) -> dict:
    interval = Interval.for_day(last_day)
    return retention.purge_expired(interval.start, interval.end, run_id, settings, retention=days)


def test_partitions_retention_days_or_more_before_the_intervals_last_day_are_deleted(settings, caplog):
    days = [LAST - timedelta(days=n) for n in range(-2, 12)]  # two days after LAST too
    made = fill_zones(settings, days)
    caplog.set_level(logging.INFO, logger="pipelines.retention")

    result = run(settings, LAST, days=5)

    kept = {k for k in made if k[2] > LAST - timedelta(days=5)}
    assert present(settings) == kept
    assert {k[2] for k in kept} == {LAST - timedelta(days=n) for n in range(-2, 5)}
    gone = set(made) - kept
    reported = {(p["zone"], p["source"], date.fromisoformat(p["partition_date"])) for p in result["purged"]}
    assert reported == gone
    assert result["retention_days"] == 5
    assert result["deleted_through"] == (LAST - timedelta(days=5)).isoformat()
    rows = recorded(settings)
    assert set(rows) == gone
    for key, row in rows.items():
        assert (row["files"], row["bytes"]) == made[key]
        assert (row["run_id"], row["retention_days"]) == ("r1", 5)
    for zone, source, day in gone:
        assert any(f"{zone} partition {source}/{day}" in m for m in caplog.messages), (zone, source, day)


def test_the_purge_is_deterministic_and_a_backfill_never_deletes_newer_days(settings):
    made = fill_zones(settings, [LAST - timedelta(days=n) for n in range(40)])
    run(settings, LAST, days=30)
    after_first = present(settings)
    assert run(settings, LAST, "again", days=30)["purged"] == []
    assert present(settings) == after_first
    run(settings, LAST - timedelta(days=20), "backfill", days=30)  # an old day loaded again
    assert present(settings) == after_first == {k for k in made if k[2] > LAST - timedelta(days=30)}


def test_retention_comes_from_privacy_yaml_unless_the_environment_says_otherwise(tmp_path):
    assert retention.retention_days(Settings.from_env({"XOFLOW_HOME": str(tmp_path)})) == 30
    overridden = Settings.from_env({"XOFLOW_HOME": str(tmp_path), "XOFLOW_RAW_RETENTION_DAYS": "7"})
    assert retention.retention_days(overridden) == 7


def test_only_folders_named_like_partitions_are_touched(settings, tmp_path):
    fill_zones(settings, [LAST - timedelta(days=100)])
    outside = tmp_path / "elsewhere" / "keep.parquet"
    outside.parent.mkdir()
    outside.write_bytes(b"precious")
    survey = settings.raw_dir / "survey"
    (survey / f"date={(LAST - timedelta(days=99)).isoformat()}").symlink_to(outside.parent)
    (survey / "date=2026-13-45").mkdir()
    (survey / "notes").mkdir()
    (settings.raw_dir / "README.txt").write_text("raw zone")

    result = run(settings, LAST, days=30)

    assert {(p["zone"], p["source"]) for p in result["purged"]} == {
        (z, s) for z in ("raw", "staging") for s in SOURCES}
    assert outside.read_bytes() == b"precious"
    assert (survey / "date=2026-13-45").is_dir() and (survey / "notes").is_dir()
    assert (settings.raw_dir / "README.txt").exists()


def test_nothing_to_purge_writes_nothing(settings):
    assert run(settings, LAST)["purged"] == []
    assert not Path(settings.warehouse_url.removeprefix("duckdb:///")).exists()


# ------------------------------------------------------------------ in the nightly DAG


def test_the_nightly_dag_purges_after_the_marts_whatever_happened(airflow_db, tmp_path, monkeypatch):
    """The real DAG with the loading steps replaced (the purge itself is real)."""
    day = date(2026, 5, 4)
    monkeypatch.setenv("XOFLOW_HOME", str(tmp_path))
    settings = Settings.from_env()
    made = fill_zones(settings, [day - timedelta(days=n) for n in (0, 29, 30, 31, 45)])
    calls = []

    def extract(source, start, end, run_id, settings=None):
        calls.append("extract")
        if source == "survey":
            raise ContractError("survey: the platform changed its page format")  # fails at once
        return {"source": source}

    def step(name):
        def fake(start, end, run_id, settings=None):
            calls.append(name)
            return {}
        return fake

    monkeypatch.setattr(nightly, "extract_and_validate", extract)
    monkeypatch.setattr(nightly, "conform_and_load", step("conform_and_load"))
    monkeypatch.setattr(nightly, "build_marts", step("build_marts"))

    result = run_dag_for_day(day, skip_wait=True)

    assert result.states["purge_expired_raw"] == "success"
    assert result.state == "failed"  # the survey failed; the purge still ran
    assert calls[-2:] == ["conform_and_load", "build_marts"]
    assert present(settings) == {k for k in made if k[2] > day - timedelta(days=30)}
    assert set(recorded(settings)) == {k for k in made if k[2] <= day - timedelta(days=30)}


def test_the_dag_file_only_wires_the_purge():
    text = (REPO_ROOT / "dags" / "xoflow_nightly.py").read_text()
    assert "retention.purge_expired(" in text and "shutil" not in text and "rmtree" not in text
