"""web_analytics: one JSON document per day, records as text, bad documents fail the source."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipelines.contracts import Contract, ContractError
from pipelines.interval import Interval
from pipelines.settings import Settings
from pipelines.sources import SourceUnavailable, web_analytics


def drop(settings: Settings, day: str, body: str) -> Path:
    path = Path(settings.landing_dir) / "web_analytics" / f"web_{day}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def test_records_become_text_rows_numbered_by_position(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    rows = [
        {"date": "2026-03-01", "page_path": "/citizenship/apply", "sessions": 120,
         "task_starts": 0, "task_completions": 7.5, "status_checks": None, "bot": False,
         "segments": {"mobile": 80}},
        {"date": "2026-03-01", "page_path": "/card-renewal/status", "sessions": "12"},
        "not a record",
    ]
    drop(settings, "2026-03-01", json.dumps({"generated": "x", "rows": rows}))

    batch = web_analytics.extract(contracts["web_analytics"], settings, march_first)

    frame = batch.frame
    first, second, third = frame.astype(object).where(frame.notna(), None).to_dict("records")
    assert first["sessions"] == "120" and first["task_starts"] == "0"
    assert first["task_completions"] == "7.5" and first["status_checks"] is None
    assert first["bot"] == "false" and first["segments"] == '{"mobile":80}'
    assert first["_parse_error"] is None
    assert second["sessions"] == "12" and second["task_starts"] is None
    assert third["date"] is None and third["_parse_error"] == "record 3: not a JSON object"
    assert [r["_row"] for r in (first, second, third)] == [1, 2, 3]
    assert batch.origins == ["web_2026-03-01.json"]


def test_invalid_json_names_file_and_line(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    drop(settings, "2026-03-01", '{"rows": [\n  {"date": "2026-03-01",}\n]}')

    with pytest.raises(ContractError, match=r"file web_2026-03-01\.json line 2"):
        web_analytics.extract(contracts["web_analytics"], settings, march_first)


def test_document_without_the_records_list_is_a_contract_error(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    drop(settings, "2026-03-01", '{"data": []}')

    with pytest.raises(ContractError, match="list under 'rows'"):
        web_analytics.extract(contracts["web_analytics"], settings, march_first)


def test_missing_day_is_unavailable(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    with pytest.raises(SourceUnavailable, match=r"web_2026-03-01\.json"):
        web_analytics.extract(contracts["web_analytics"], settings, march_first)


def test_batches_give_the_same_rows_numbered_by_position_across_boundaries(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    rows: list[object] = [{"date": "2026-03-01", "page_path": f"/p{n}", "sessions": n} for n in range(7)]
    rows[4] = ["not", "a", "record"]
    drop(settings, "2026-03-01", json.dumps({"rows": rows}))

    batches = list(web_analytics.extract_batches(contracts["web_analytics"], settings, march_first,
                                                 batch_rows=3))

    assert [len(batch.frame) for batch in batches] == [3, 3, 1]
    assert all(batch.origins == ["web_2026-03-01.json"] for batch in batches)
    joined = pd.concat([batch.frame for batch in batches], ignore_index=True)
    pd.testing.assert_frame_equal(joined, web_analytics.extract(contracts["web_analytics"], settings,
                                                                march_first).frame)
    assert joined["_row"].tolist() == list(range(1, 8))
    for path, error, row in joined[["page_path", "_parse_error", "_row"]].itertuples(index=False):
        record = rows[row - 1]
        if isinstance(record, dict):
            assert path == record["page_path"] and pd.isna(error)
        else:
            assert pd.isna(path) and error == f"record {row}: not a JSON object"
