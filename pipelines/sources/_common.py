"""Pieces every connector needs: received values as text, daily file paths, the raw frame.

Kept in one place so that all connectors agree on what "as received, as text" means
(``true``/``false`` for booleans, JSON text for numbers and nested values, ``None``
for nothing) and on the shape of the frame validation reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import pandas as pd

from pipelines.contracts import Contract, ContractError
from pipelines.interval import Interval
from pipelines.settings import Settings
from pipelines.sources import ORIGIN_COLUMN, ROW_COLUMN, SourceUnavailable

PARSE_ERROR_COLUMN = "_parse_error"


def as_text(value: object) -> str | None:
    """A received value as the text validation will check; ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.hex()
    return str(value)


def source_column_names(contract: Contract) -> list[str]:
    """The contract's columns under the names the source itself uses (before ``rename``)."""
    received_name = {target: original for original, target in contract.rename.items()}
    return [received_name.get(name, name) for name in contract.column_names]


def required_source_columns(contract: Contract) -> list[str]:
    received_name = {target: original for original, target in contract.rename.items()}
    return [received_name.get(name, name) for name in contract.required_columns]


def daily_files(contract: Contract, settings: Settings, interval: Interval) -> list[Path]:
    """One landing file per UTC day of the interval, as the contract's location names it."""
    try:
        folder = contract.location["folder"]
        pattern = contract.location["file_pattern"]
    except KeyError as missing:
        raise ContractError(
            f"{contract.source}: location needs {missing.args[0]!r} (folder and file_pattern)"
        ) from None
    if "{date}" not in pattern:
        raise ContractError(f"{contract.source}: file_pattern {pattern!r} has no {{date}}")
    base = Path(settings.landing_dir) / folder
    return [base / pattern.format(date=day.isoformat()) for day in interval.days]


def require_files(source: str, paths: Iterable[Path]) -> None:
    """Fail (retryably) before reading anything when any day's file has not landed yet."""
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise SourceUnavailable(f"{source}: file not found: {', '.join(missing)}")


class TextColumns:
    """Column-wise text values from several origins, padded with ``None`` where one lacks a column.

    Origins (files, pages) may differ in their columns or column order; building the
    frame once at the end keeps missing values ``None`` (``pd.concat`` would make NaN).
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._values: dict[str, list[str | None]] = {name: [] for name in names}
        self._origins: list[str] = []
        self._rows: list[int] = []

    def __len__(self) -> int:
        return len(self._rows)

    def add_block(
        self, block: Mapping[str, Sequence[str | None]], origin: str, rows: Sequence[int]
    ) -> None:
        """Append equally long columns read from one origin."""
        before = len(self._rows)
        for name, values in block.items():
            if len(values) != len(rows):
                raise ValueError(f"column {name!r} has {len(values)} values for {len(rows)} rows")
            if name not in self._values:
                self._values[name] = [None] * before
            self._values[name].extend(values)
        self._origins.extend([origin] * len(rows))
        self._rows.extend(rows)
        self._pad()

    def add_record(self, record: Mapping[str, str | None], origin: str, row: int) -> None:
        """Append one record (a mapping of column to text)."""
        before = len(self._rows)
        padded = True
        for name, value in record.items():
            column = self._values.get(name)
            if column is None:  # a column first seen now: earlier rows lacked it
                column = self._values[name] = [None] * before
            column.append(value)
            padded &= len(column) == before + 1
        self._origins.append(origin)
        self._rows.append(row)
        if not padded or len(record) != len(self._values):
            self._pad()

    def _pad(self) -> None:
        total = len(self._rows)
        for values in self._values.values():
            if len(values) < total:
                values.extend([None] * (total - len(values)))

    def frame(self) -> pd.DataFrame:
        """Text columns as ``object`` (``str`` or ``None``), then ``_origin`` and ``_row``."""
        frame = pd.DataFrame(
            {name: pd.Series(values, dtype=object) for name, values in self._values.items()},
            index=pd.RangeIndex(len(self._rows)),
        )
        frame[ORIGIN_COLUMN] = pd.Series(self._origins, dtype=object)
        frame[ROW_COLUMN] = pd.Series(self._rows, dtype="int64")
        return frame
