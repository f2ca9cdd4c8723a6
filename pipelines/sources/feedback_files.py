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
"""

from __future__ import annotations

import json
import logging

from pipelines.contracts import Contract
from pipelines.interval import Interval
from pipelines.settings import Settings
from pipelines.sources import RawBatch
from pipelines.sources._common import (
    PARSE_ERROR_COLUMN,
    TextColumns,
    as_text,
    daily_files,
    require_files,
    source_column_names,
)

log = logging.getLogger(__name__)


def extract(contract: Contract, settings: Settings, interval: Interval) -> RawBatch:
    """Every line of every day's file in the interval, bad lines flagged rather than fatal."""
    paths = daily_files(contract, settings, interval)
    require_files(contract.source, paths)

    columns = TextColumns([*source_column_names(contract), PARSE_ERROR_COLUMN])
    for path in paths:
        bad = 0
        with path.open("rb") as lines:
            for number, raw in enumerate(lines, start=1):
                raw = raw.rstrip(b"\r\n")
                if number == 1:
                    raw = raw.removeprefix(b"\xef\xbb\xbf")
                if not raw.strip():
                    continue
                record, error = parse_line(raw)
                if error is None:
                    row = {str(name): as_text(value) for name, value in record.items()}
                    row[PARSE_ERROR_COLUMN] = None
                else:
                    bad += 1
                    row = {PARSE_ERROR_COLUMN: f"line {number}: {error}"}
                columns.add_record(row, origin=path.name, row=number)
        if bad:
            log.warning("%s: %s has %d unparseable lines (quarantined)", contract.source, path, bad)
    log.info("%s: read %d records from %d files", contract.source, len(columns), len(paths))
    return RawBatch(source=contract.source, frame=columns.frame(), origins=[p.name for p in paths])


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
