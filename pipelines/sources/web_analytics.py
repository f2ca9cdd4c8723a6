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

from pipelines.contracts import Contract, ContractError
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
    """The records of every day's document in the interval, values as text."""
    records_key = contract.location.get("records")
    if not records_key:
        raise ContractError(f"{contract.source}: location needs 'records' (the list's key)")
    paths = daily_files(contract, settings, interval)
    require_files(contract.source, paths)

    columns = TextColumns([*source_column_names(contract), PARSE_ERROR_COLUMN])
    for path in paths:
        where = f"{contract.source}: file {path.name}"
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
        for position, record in enumerate(records, start=1):
            if isinstance(record, dict):
                row = {str(name): as_text(value) for name, value in record.items()}
                row[PARSE_ERROR_COLUMN] = None
            else:
                row = {PARSE_ERROR_COLUMN: f"record {position}: not a JSON object"}
            columns.add_record(row, origin=path.name, row=position)
        log.info("%s: read %d records from %s", contract.source, len(records), path)
    return RawBatch(source=contract.source, frame=columns.frame(), origins=[p.name for p in paths])
