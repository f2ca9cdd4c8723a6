"""Contact-center export: one CSV per day in the landing folder (contract kind ``csv_files``).

Every cell is read as text (``"007"`` stays ``"007"``, ``"NA"`` stays ``"NA"``) and an
empty cell becomes ``None``: deciding what is a number or a missing value is
validation's job, which can then quarantine a bad row with a reason.

A whole file fails the source with ``ContractError`` (naming the file and line) when it
cannot be read as a table at all: not text in the declared encoding, rows with the
wrong number of fields, no header, or a header without a required column. Error
messages never quote row contents, which may hold personal data.
A day's file that has not landed yet raises ``SourceUnavailable`` (retryable).

Location settings: ``folder``, ``file_pattern`` (with ``{date}``), optional
``delimiter`` (default ``,``) and ``encoding`` (default ``utf-8``).
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

from pipelines.contracts import Contract, ContractError
from pipelines.interval import Interval
from pipelines.settings import Settings
from pipelines.sources import RawBatch
from pipelines.sources._common import (
    TextColumns,
    daily_files,
    require_files,
    required_source_columns,
)

log = logging.getLogger(__name__)

MAX_REPORTED_BAD_ROWS = 5


def extract(contract: Contract, settings: Settings, interval: Interval) -> RawBatch:
    """Every day's CSV of the interval, all cells as text, in file then row order."""
    paths = daily_files(contract, settings, interval)
    require_files(contract.source, paths)
    delimiter = str(contract.location.get("delimiter", ","))
    encoding = str(contract.location.get("encoding", "utf-8"))
    required = required_source_columns(contract)

    columns = TextColumns()
    for path in paths:
        block = read_text_csv(path, delimiter=delimiter, encoding=encoding, source=contract.source)
        missing = [name for name in required if name not in block]
        if missing:
            raise ContractError(
                f"{contract.source}: file {path.name} has no column {', '.join(missing)} "
                f"(header: {', '.join(block)})"
            )
        rows = len(next(iter(block.values()), []))
        columns.add_block(block, origin=path.name, rows=range(1, rows + 1))
        log.info("%s: read %d rows from %s", contract.source, rows, path)
    return RawBatch(source=contract.source, frame=columns.frame(), origins=[p.name for p in paths])


def read_text_csv(
    path: Path, *, delimiter: str = ",", encoding: str = "utf-8", source: str = ""
) -> dict[str, list[str | None]]:
    """One CSV file as ``{header: [text or None, ...]}``; raises ``ContractError`` if unreadable."""
    where = f"{source}: file {path.name}" if source else f"file {path.name}"
    data = path.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ContractError(f"{where} line {line}: not valid {encoding} text") from None
    except LookupError:
        raise ContractError(f"{where}: unknown encoding {encoding!r}") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ContractError(f"{where} line {line}: contains NUL bytes (binary, not CSV)")

    header = _header(text, delimiter, where)
    bad_rows: list[str] = []

    def note_bad_row(row: pa_csv.InvalidRow) -> str:
        if len(bad_rows) < MAX_REPORTED_BAD_ROWS:
            line = f"line {row.number}" if row.number is not None else "a row"
            bad_rows.append(f"{line} has {row.actual_columns} fields, expected {row.expected_columns}")
        return "skip"

    try:
        table = pa_csv.read_csv(
            pa.py_buffer(text.encode("utf-8")),
            read_options=pa_csv.ReadOptions(
                use_threads=False, column_names=header, skip_rows=1, encoding="utf-8"
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=note_bad_row
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        # Arrow quotes the offending row in its message; keep personal data out of logs.
        reason = str(exc).split(":", 1)[0]
        raise ContractError(f"{where}: cannot be parsed as CSV ({reason})") from None
    if bad_rows:
        raise ContractError(f"{where}: ragged rows: {'; '.join(bad_rows)}")
    return {
        name: [value or None for value in table.column(index).to_pylist()]
        for index, name in enumerate(header)
    }


def _header(text: str, delimiter: str, where: str) -> list[str]:
    """The first record's names; the header must be complete and unambiguous."""
    try:
        header = next(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter), None)
    except csv.Error as exc:
        raise ContractError(f"{where} line 1: header cannot be parsed ({exc})") from None
    if not header or not any(name.strip() for name in header):
        raise ContractError(f"{where}: empty file (no header row)")
    blank = [str(position) for position, name in enumerate(header, 1) if not name.strip()]
    if blank:
        raise ContractError(f"{where} line 1: header has blank names at position {', '.join(blank)}")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise ContractError(f"{where} line 1: header repeats {', '.join(duplicates)}")
    return header
