"""feedback_files: JSON Lines per day; a bad line becomes a flagged row, never a failed file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
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


def texts(column: pd.Series) -> list[str | None]:
    """A text column as Python values, missing (``<NA>``) as ``None``."""
    return [None if pd.isna(value) else value for value in column]


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
    assert texts(frame["feedback_id"]) == ["F-1", None, "F-3", None, None]
    assert texts(frame["rating"]) == ["4", None, None, None, None]
    errors = texts(frame["_parse_error"])
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


def test_batches_across_lines_and_files_give_the_same_rows_each_traceable_to_its_line(
    contracts: dict[str, Contract], settings: Settings
) -> None:
    two_days = Interval(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))
    first = [GOOD % (n, n % 5 + 1) for n in range(1, 8)]
    first[3] = "{not json"
    first.insert(5, "   ")  # blank: skipped but counted
    second = [GOOD % (n, "null") for n in range(100, 105)]
    paths = [drop(settings, "2026-03-01", "\n".join(first).encode() + b"\n"),
             drop(settings, "2026-03-02", "\n".join(second).encode() + b"\n")]

    batches = list(feedback_files.extract_batches(contracts["feedback"], settings, two_days,
                                                  batch_rows=3))

    assert [len(batch.frame) for batch in batches] == [3, 3, 3, 3]  # 7 + 5 records
    assert batches[2].origins == ["feedback_2026-03-01.jsonl", "feedback_2026-03-02.jsonl"]
    assert batches[3].origins == ["feedback_2026-03-02.jsonl"]
    joined = pd.concat([batch.frame for batch in batches], ignore_index=True)
    whole = feedback_files.extract(contracts["feedback"], settings, two_days)
    pd.testing.assert_frame_equal(joined, whole.frame)
    assert whole.origins == [path.name for path in paths]
    # each row's (_origin, _row) is its file and line: read the line back independently
    lines = {path.name: path.read_text().splitlines() for path in paths}
    for feedback_id, error, origin, row in joined[
            ["feedback_id", "_parse_error", "_origin", "_row"]].itertuples(index=False):
        line = lines[origin][row - 1]
        if pd.isna(error):
            assert json.loads(line)["feedback_id"] == feedback_id
        else:
            assert line == "{not json" and error.startswith(f"line {row}:")
