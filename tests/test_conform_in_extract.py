"""The extracts conform their own sources; the load takes their spools, or conforms itself.

Two homes load the same demo day: in one the extract tasks conform (the default), in the
other every source is left to the load, as before extracts conformed. The warehouses
must hold the same rows. A conform that fails inside an extract is left to the load,
which conforms the batches itself, as a rerun of the load does once the extract's file
was loaded.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from demo_homes import SOURCES_WITHOUT_SURVEY, home_without_survey

from pipelines import nightly, warehouse
from pipelines.demo import build_demo_sources
from pipelines.interval import Interval
from pipelines.model import metadata
from pipelines.settings import Settings
from pipelines.staging import RESULT_FILE, staging_dir

DAY = date(2026, 3, 2)
NIGHT = Interval.for_day(DAY)
SOURCES = SOURCES_WITHOUT_SURVEY
FACTS = ("fact_case", "fact_contact", "fact_web_daily", "fact_feedback", "quarantine", "unmapped_code",
         "ledger_redaction")


def home_with_demo_day(root: Path, name: str) -> Settings:
    settings, demo, _ = home_without_survey(root / name, "conform-in-extract-key")
    build_demo_sources(demo, DAY, DAY, seed=11, as_of=datetime.combine(DAY + timedelta(days=1),
                                                                      datetime.min.time(), tzinfo=UTC))
    return settings


def extract_all(settings: Settings, run_id: str) -> dict[str, dict]:
    return {source: nightly.extract_and_validate(source, NIGHT.start, NIGHT.end, run_id, settings)
            for source in nightly.source_names(settings)}


def staged_summary(settings: Settings, source: str) -> dict:
    return json.loads((staging_dir(settings, source, NIGHT) / RESULT_FILE).read_text())


def facts(settings: Settings) -> dict[str, list[tuple]]:
    """The night's fact, quarantine and count rows, without who loaded them or when."""
    engine = warehouse.engine_for(settings.warehouse_url)
    dumped = {}
    with engine.connect() as conn:
        for name in FACTS:
            table = metadata.tables[name]
            columns = [c for c in table.columns if c.name not in ("run_id", "loaded_at")]
            dumped[name] = sorted(map(tuple, conn.execute(sa.select(*columns)).all()), key=repr)
    engine.dispose()
    return dumped


def test_the_load_takes_the_extracts_conformed_rows(tmp_path, monkeypatch):
    by_extract = home_with_demo_day(tmp_path, "by_extract")
    extracted = extract_all(by_extract, "night")
    for source in SOURCES:
        conformed = staged_summary(by_extract, source)["conformed"]
        assert conformed["rows"] == extracted[source]["rows_valid"] > 0
        assert (staging_dir(by_extract, source, NIGHT) / conformed["spool"]).exists()
        assert extracted[source]["seconds"]["conform"] > 0

    def no_conform_in_the_load(*args, **kwargs):
        raise AssertionError("the load conformed a source its extract had conformed")

    with monkeypatch.context() as patched:
        patched.setattr(nightly, "_conform", no_conform_in_the_load)
        report = nightly.conform_and_load(NIGHT.start, NIGHT.end, "night", by_extract)
    assert set(report["loaded"]) == set(SOURCES)

    by_load = home_with_demo_day(tmp_path, "by_load")
    with monkeypatch.context() as patched:  # every source left to the load, as before
        patched.setattr(nightly, "LOADED_BEFORE", dict.fromkeys(SOURCES, ()))
        extract_all(by_load, "night")
        assert all(staged_summary(by_load, s).get("conformed") is None for s in SOURCES)
        nightly.conform_and_load(NIGHT.start, NIGHT.end, "night", by_load)

    assert facts(by_extract) == facts(by_load)
    assert len(facts(by_extract)["fact_contact"]) == extracted["contact_center"]["rows_valid"]

    # loaded, the extract's file is gone (staging keeps no second copy); a rerun conforms again
    assert not list(staging_dir(by_extract, "contact_center", NIGHT).glob("conformed-*"))
    rerun = nightly.conform_and_load(NIGHT.start, NIGHT.end, "night", by_extract)
    assert rerun["loaded"]["contact_center"]["rows_loaded"] == extracted["contact_center"]["rows_valid"]
    assert rerun["loaded"]["contact_center"]["seconds"]["conform"] > 0
    assert facts(by_extract) == facts(by_load)


def test_a_conform_that_fails_in_the_extract_is_left_to_the_load(tmp_path, monkeypatch, caplog):
    settings = home_with_demo_day(tmp_path, "failing")
    conform = nightly._conform

    def fails_for_contacts(source, *args):
        if source == "contact_center":
            raise ValueError("catalog not readable")
        return conform(source, *args)

    with monkeypatch.context() as patched, caplog.at_level(logging.WARNING, logger="pipelines.nightly"):
        patched.setattr(nightly, "_conform", fails_for_contacts)
        extracted = extract_all(settings, "night")
    assert "contact_center: conform left to the load (ValueError: catalog not readable)" in caplog.text
    assert staged_summary(settings, "contact_center")["conformed"] is None
    assert not list(staging_dir(settings, "contact_center", NIGHT).glob("conformed-*"))
    assert staged_summary(settings, "feedback")["conformed"]["rows"] == extracted["feedback"]["rows_valid"]

    report = nightly.conform_and_load(NIGHT.start, NIGHT.end, "night", settings)
    loaded = report["loaded"]["contact_center"]
    assert loaded["rows_loaded"] == extracted["contact_center"]["rows_valid"] > 0
    assert loaded["seconds"]["conform"] > 0

