"""Web analytics export: one JSON document per day (contract kind ``json_files``).

The records are the list under ``location["records"]`` of each day's document. Values
are kept as text: numbers as their JSON text (``12``, ``0.5``), booleans as
``true``/``false``, nested objects and lists as compact JSON, ``null`` as ``None``.
Every contract column is present in the frame (``None`` where a record lacks it).

A document that is not JSON, or has no list under the records key, fails the source
with ``ContractError`` naming the file (and line). One element of the list that is not
an object does not fail the file: it becomes a row whose contract columns are ``None``
and whose ``_parse_error`` says why, so validation quarantines that row alone (the
same convention as ``feedback_files``). ``_row`` is the element's 1-based position.
A day's file that has not landed yet raises ``SourceUnavailable`` (retryable).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

from pipelines.contracts import Contract, ContractError
from pipelines.interval import Interval
from pipelines.settings import Settings
from pipelines.sources import BATCH_ROWS, RawBatch
from pipelines.sources._common import (
    PARSE_ERROR_COLUMN,
    UNBOUNDED,
    TextBatches,
    daily_files,
    one_batch,
    record_columns,
    require_files,
    source_column_names,
)

log = logging.getLogger(__name__)


def extract(contract: Contract, settings: Settings, interval: Interval) -> RawBatch:
    """The records of every day's document in the interval, values as text, in one batch."""
    return one_batch(contract.source, extract_batches(contract, settings, interval, batch_rows=UNBOUNDED))


def extract_batches(
    contract: Contract, settings: Settings, interval: Interval, batch_rows: int = BATCH_ROWS
) -> Iterator[RawBatch]:
    """``extract`` as batches of at most ``batch_rows`` records.

    A day's document is parsed whole (it is one JSON value, and small: a row per page
    path), then handed out a slice of records at a time.
    """
    records_key = contract.location.get("records")
    if not records_key:
        raise ContractError(f"{contract.source}: location needs 'records' (the list's key)")
    paths = daily_files(contract, settings, interval)
    require_files(contract.source, paths)

    batches = TextBatches(contract.source, [*source_column_names(contract), PARSE_ERROR_COLUMN], batch_rows)
    for path in paths:
        records = _records(contract.source, path, records_key)
        for first in range(0, len(records), batch_rows):
            part = records[first : first + batch_rows]
            objects = [record if isinstance(record, dict) else {} for record in part]
            columns = record_columns(objects)
            columns[PARSE_ERROR_COLUMN] = [
                None if isinstance(record, dict) else f"record {first + offset}: not a JSON object"
                for offset, record in enumerate(part, start=1)
            ]
            yield from batches.add(columns, origin=path.name, rows=range(first + 1, first + len(part) + 1))
        if not records:
            batches.note(path.name)
        log.info("%s: read %d records from %s", contract.source, len(records), path)
    yield from batches.finish()


def _records(source: str, path: Path, records_key: str) -> list:
    """The list under ``records_key`` of one day's document; ``ContractError`` naming the file if none."""
    where = f"{source}: file {path.name}"
    try:
        document = json.loads(path.read_bytes())
    except UnicodeDecodeError as exc:
        raise ContractError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ContractError(
            f"{where} line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})"
        ) from None
    records = document.get(records_key) if isinstance(document, dict) else None
    if not isinstance(records, list):
        raise ContractError(f"{where}: expected an object with a list under {records_key!r}")
    return records
