"""Extracts start longest first, so that a night's extract phase on few executor slots ends sooner.

The order comes from each source's latest staged day (``result.json``, written by the
extract); a source with none staged yet goes first, in load order, since nothing says it
is short.
"""

from __future__ import annotations

import json

from pipelines import nightly
from pipelines.settings import Settings


def stage_result(settings: Settings, source: str, day: str, extract: float, validate: float) -> None:
    folder = settings.home / "staging" / source / day
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"source": source, "seconds": {
        "extract": extract, "validate": validate}}))


def test_sources_go_longest_latest_extract_first_and_unknown_ones_lead_in_load_order(tmp_path):
    settings = Settings.from_env({"XOFLOW_HOME": str(tmp_path), "XOFLOW_SURVEY_API_KEY": "unused"})
    assert nightly.extract_order(settings) == nightly.source_names(settings)  # nothing staged yet
    stage_result(settings, "contact_center", "2026-03-02", 20.0, 6.2)
    stage_result(settings, "survey", "2026-03-01", 90.0, 10.0)  # an older, slower day: not used
    stage_result(settings, "survey", "2026-03-02", 16.0, 9.8)
    stage_result(settings, "case_db", "2026-03-02", 9.0, 3.9)
    (settings.home / "staging" / "feedback" / "2026-03-02").mkdir(parents=True)  # failed: no result
    unknown = [s for s in nightly.source_names(settings) if s not in {"contact_center", "survey", "case_db"}]
    assert unknown == ["web_analytics", "feedback"]
    assert nightly.extract_order(settings) == [*unknown, "contact_center", "survey", "case_db"]
