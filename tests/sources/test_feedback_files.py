"""feedback_files: JSON Lines per day; a bad line becomes a flagged row, never a failed file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.contracts import Contract
from pipelines.interval import Interval
from pipelines.settings import Settings
from pipelines.sources import SourceUnavailable, feedback_files
from pipelines.validate import validate_batch

GOOD = (
    '{"feedback_id": "F-%d", "channel": "email", "received_at": "2026-03-01T10:00:00Z", '
    '"service_hint": "citizenship", "rating": %s, "text": "Took ages", "language": "en"}'
)


def drop(settings: Settings, day: str, body: bytes) -> Path:
    path = Path(settings.landing_dir) / "feedback" / f"feedback_{day}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


def test_bad_lines_become_rows_with_a_parse_error_and_the_file_still_loads(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    lines = [
        GOOD % (1, "4"),
        '{"feedback_id": "F-2", "text": "unterminated',
        "",
        GOOD % (3, "null"),
        "[1, 2]",
    ]
    body = "\n".join(lines).encode() + b"\n\xff\xfe not utf-8\r\n"
    drop(settings, "2026-03-01", body)

    batch = feedback_files.extract(contracts["feedback"], settings, march_first)

    frame = batch.frame
    assert frame["_row"].tolist() == [1, 2, 4, 5, 6]  # line numbers; the blank line is skipped
    assert frame["feedback_id"].tolist() == ["F-1", None, "F-3", None, None]
    assert frame["rating"].tolist() == ["4", None, None, None, None]
    errors = frame["_parse_error"].tolist()
    assert errors[0] is None and errors[2] is None
    assert errors[1].startswith("line 2: Unterminated string")
    assert errors[3] == "line 5: expected a JSON object, got an array"
    assert errors[4].startswith("line 6: not UTF-8 text")
    bad = frame.loc[1, [c for c in frame.columns if not c.startswith("_")]]
    assert bad.isna().all()
    assert set(frame["_origin"]) == {"feedback_2026-03-01.jsonl"}


def test_validation_quarantines_the_flagged_lines(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    drop(settings, "2026-03-01", (GOOD % (1, "5") + "\nnot json\n").encode())
    batch = feedback_files.extract(contracts["feedback"], settings, march_first)

    result = validate_batch(contracts["feedback"], batch, march_first)

    assert result.rows_read == 2 and len(result.clean) == 1
    assert result.quarantine["row_number"].tolist() == [2]
    assert result.quarantine["reason"].str.contains("line 2").all()


def test_missing_day_is_unavailable(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    with pytest.raises(SourceUnavailable, match=r"feedback_2026-03-01\.jsonl"):
        feedback_files.extract(contracts["feedback"], settings, march_first)
