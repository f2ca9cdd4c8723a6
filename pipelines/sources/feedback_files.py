"""Unsolicited feedback: one JSON Lines file per day (contract kind ``jsonl_files``).

Each non-blank line is one record; values are kept as text like ``web_analytics``
(numbers as JSON text, booleans ``true``/``false``, nested values as JSON, ``null`` as
``None``) and every contract column is present in the frame. ``_row`` is the line
number in the file (blank lines are skipped but still counted).

A bad line does not fail the file. A line that is not valid JSON (or not UTF-8, or not
a JSON object) becomes a row with every contract column ``None`` and
``_parse_error = "line N: <reason>"``; the column is ``None`` on good rows. Validation
treats a non-null ``_parse_error`` as a row failure and quarantines the row with that
reason, so the line is counted and traceable instead of silently dropped. The reason
never quotes the line itself, which may hold personal data.
A day's file that has not landed yet raises ``SourceUnavailable`` (retryable).

``extract_batches`` reads each file ``CHUNK_LINES`` lines at a time and hands out batches
of at most ``batch_rows`` records (a batch may hold the end of one day's file and the
start of the next); ``extract`` is the same as one batch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence

from pipelines.contracts import Contract
from pipelines.interval import Interval
from pipelines.settings import Settings
from pipelines.sources import BATCH_ROWS, RawBatch
from pipelines.sources._common import (
    PARSE_ERROR_COLUMN,
    UNBOUNDED,
    TextBatches,
    collector_paused,
    daily_files,
    one_batch,
    record_columns,
    require_files,
    source_column_names,
)

log = logging.getLogger(__name__)

CHUNK_LINES = 50_000  # lines parsed before they are turned into Arrow columns


def extract(contract: Contract, settings: Settings, interval: Interval) -> RawBatch:
    """Every line of every day's file in the interval, bad lines flagged rather than fatal, in one batch."""
    return one_batch(contract.source, extract_batches(contract, settings, interval, batch_rows=UNBOUNDED))


def extract_batches(
    contract: Contract, settings: Settings, interval: Interval, batch_rows: int = BATCH_ROWS
) -> Iterator[RawBatch]:
    """``extract`` as batches of at most ``batch_rows`` lines, each file read a chunk of lines at a time.

    Memory holds one chunk of parsed lines (``CHUNK_LINES``) and one batch of Arrow text,
    whatever the size of the day's file.
    """
    paths = daily_files(contract, settings, interval)
    require_files(contract.source, paths)

    batches = TextBatches(contract.source, [*source_column_names(contract), PARSE_ERROR_COLUMN], batch_rows)
    chunk_lines = min(CHUNK_LINES, batch_rows)
    for path in paths:
        bad, before = 0, batches.rows
        with path.open("rb") as lines:
            numbered = enumerate(lines, start=1)
            while True:
                with collector_paused():  # a bounded chunk, freed by reference counting
                    chunk = _read_chunk(numbered, chunk_lines)
                    if chunk is None:
                        break
                    columns, rows, chunk_bad = chunk
                bad += chunk_bad
                yield from batches.add(columns, origin=path.name, rows=rows)
        if batches.rows == before:
            batches.note(path.name)  # a file of blank lines is still a file read
        if bad:
            log.warning("%s: %s has %d unparseable lines (quarantined)", contract.source, path, bad)
    yield from batches.finish()
    log.info("%s: read %d records from %d files in %d batches", contract.source, batches.rows,
             len(paths), batches.batches)


def _read_chunk(
    numbered: Iterator[tuple[int, bytes]], size: int
) -> tuple[dict[str, Sequence[object]], list[int], int] | None:
    """Up to ``size`` non-blank lines as columns, their numbers and bad-line count; ``None`` at the end."""
    records: list[dict] = []
    errors: list[str | None] = []
    rows: list[int] = []
    bad = 0
    for number, raw in numbered:
        raw = raw.rstrip(b"\r\n")
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if not raw.strip():
            continue
        record, error = parse_line(raw)
        if error is None:
            records.append(record)
            errors.append(None)
        else:
            bad += 1
            records.append({})
            errors.append(f"line {number}: {error}")
        rows.append(number)
        if len(rows) == size:
            break
    if not rows:
        return None
    columns = record_columns(records)
    columns[PARSE_ERROR_COLUMN] = errors
    return columns, rows, bad


def parse_line(raw: bytes) -> tuple[dict, None] | tuple[None, str]:
    """One JSON Lines record, or the reason it is not one (without quoting the line)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {exc.start + 1})"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} (column {exc.colno})"
    if not isinstance(value, dict):
        return None, f"expected a JSON object, got {_json_kind(value)}"
    return value, None


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array"
