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

import codecs
import csv
import io
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from pipelines.contracts import Contract, ContractError
from pipelines.interval import Interval
from pipelines.settings import Settings
from pipelines.sources import BATCH_ROWS, ORIGIN_COLUMN, ROW_COLUMN, RawBatch
from pipelines.sources._common import (
    daily_files,
    require_files,
    required_source_columns,
)

log = logging.getLogger(__name__)

MAX_REPORTED_BAD_ROWS = 5
# Arrow parses the file this much at a time (a record must fit in it); its reader holds about
# 20x that: 4 MiB blocks took the contact extract's peak to 864 MB, 2 MiB to 796-820 MB.
READ_BLOCK_BYTES = 2 << 20
CHECK_CHUNK_BYTES = 16 << 20
HEADER_PEEK_CHARS = 1 << 20  # the header record lies within the first MiB
TEXT = pd.StringDtype("pyarrow")


def extract(contract: Contract, settings: Settings, interval: Interval) -> RawBatch:
    """Every day's CSV of the interval as one batch (tests, small days)."""
    batches = list(extract_batches(contract, settings, interval, batch_rows=sys.maxsize))
    frame = pd.concat([b.frame for b in batches], ignore_index=True) if batches else pd.DataFrame()
    return RawBatch(source=contract.source, frame=frame,
                    origins=list(dict.fromkeys(o for b in batches for o in b.origins)))


def extract_batches(contract: Contract, settings: Settings, interval: Interval,
                    batch_rows: int = BATCH_ROWS) -> Iterator[RawBatch]:
    """Every day's CSV of the interval, all cells as text, in file then row order, in batches.

    A file is read block by block, so memory is bounded by ``batch_rows`` and not by the file.
    """
    paths = daily_files(contract, settings, interval)
    require_files(contract.source, paths)
    delimiter = str(contract.location.get("delimiter", ","))
    encoding = str(contract.location.get("encoding", "utf-8"))
    required = required_source_columns(contract)
    for path in paths:
        rows = 0
        for block in read_text_csv_batches(path, delimiter=delimiter, encoding=encoding,
                                           source=contract.source, batch_rows=batch_rows,
                                           required=required):
            frame = _text_frame(block)
            frame[ORIGIN_COLUMN] = pd.Series([path.name] * len(frame), dtype=TEXT)
            frame[ROW_COLUMN] = np.arange(rows + 1, rows + len(frame) + 1, dtype="int64")
            rows += len(frame)
            yield RawBatch(source=contract.source, frame=frame, origins=[path.name])
        log.info("%s: read %d rows from %s", contract.source, rows, path)


def _text_frame(block: pa.Table) -> pd.DataFrame:
    """Arrow text columns as pandas Arrow-backed strings (sharing Arrow's buffers)."""
    return block.to_pandas(types_mapper={pa.string(): TEXT}.get)


def read_text_csv(
    path: Path, *, delimiter: str = ",", encoding: str = "utf-8", source: str = ""
) -> dict[str, list[str | None]]:
    """One CSV file as ``{header: [text or None, ...]}``; raises ``ContractError`` if unreadable."""
    blocks = list(read_text_csv_batches(path, delimiter=delimiter, encoding=encoding, source=source))
    header = _header_of(path, delimiter, encoding, source)
    return {name: [value for block in blocks for value in block.column(name).to_pylist()]
            for name in header}


def read_text_csv_batches(
    path: Path, *, delimiter: str = ",", encoding: str = "utf-8", source: str = "",
    batch_rows: int = BATCH_ROWS, required: list[str] | None = None,
) -> Iterator[pa.Table]:
    """One CSV file as Arrow tables of text (null for an empty cell), at most ``batch_rows`` each.

    Raises ``ContractError`` naming the file (and line) if it cannot be read as a table,
    before any batch when the text or header is wrong, at the failing block for ragged rows.
    """
    where = f"{source}: file {path.name}" if source else f"file {path.name}"
    _check_text(path, encoding, where)
    header = _header_of(path, delimiter, encoding, source)
    missing = [name for name in required or () if name not in header]
    if missing:
        raise ContractError(f"{where} has no column {', '.join(missing)} (header: {', '.join(header)})")
    bad_rows: list[str] = []

    def note_bad_row(row: pa_csv.InvalidRow) -> str:
        if len(bad_rows) < MAX_REPORTED_BAD_ROWS:
            line = f"line {row.number}" if row.number is not None else "a row"
            bad_rows.append(f"{line} has {row.actual_columns} fields, expected {row.expected_columns}")
        return "skip"

    try:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(
                use_threads=False, column_names=header, skip_rows=1, encoding=encoding,
                block_size=READ_BLOCK_BYTES),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=note_bad_row),
            # an empty cell, quoted or not, is null as Arrow reads it (no other text is: "NA"
            # stays "NA"), not a "" replaced afterwards (a copy of every column of the batch)
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), null_values=[""],
                strings_can_be_null=True, quoted_strings_can_be_null=True),
        )
        pending: list[pa.RecordBatch] = []
        pending_rows, yielded = 0, False
        for record_batch in reader:
            if bad_rows:
                break
            pending.append(record_batch)
            pending_rows += record_batch.num_rows
            while pending_rows >= batch_rows:
                whole = pa.Table.from_batches(pending)
                yield whole.slice(0, batch_rows)
                yielded = True
                rest = whole.slice(batch_rows)
                pending, pending_rows = rest.to_batches(), rest.num_rows
    except pa.ArrowInvalid as exc:
        # Arrow quotes the offending row in its message; keep personal data out of logs.
        reason = str(exc).split(":", 1)[0]
        raise ContractError(f"{where}: cannot be parsed as CSV ({reason})") from None
    if bad_rows:
        raise ContractError(f"{where}: ragged rows: {'; '.join(bad_rows)}")
    if pending_rows or not yielded:  # a header-only file still tells its columns
        yield pa.Table.from_batches(pending, schema=reader.schema)


def _check_text(path: Path, encoding: str, where: str) -> None:
    """The whole file decodes in ``encoding`` and holds no NUL, read in chunks (line named if not)."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)()
    except LookupError:
        raise ContractError(f"{where}: unknown encoding {encoding!r}") from None
    lines = 0
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(CHECK_CHUNK_BYTES)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                line = lines + chunk.count(b"\n", 0, max(exc.start, 0)) + 1
                raise ContractError(f"{where} line {line}: not valid {encoding} text") from None
            if "\x00" in text:
                line = lines + text.count("\n", 0, text.index("\x00")) + 1
                raise ContractError(f"{where} line {line}: contains NUL bytes (binary, not CSV)")
            lines += text.count("\n")
            if not chunk:
                return


def _header_of(path: Path, delimiter: str, encoding: str, source: str) -> list[str]:
    where = f"{source}: file {path.name}" if source else f"file {path.name}"
    with path.open("r", encoding=encoding, newline="") as handle:
        return _header(handle.read(HEADER_PEEK_CHARS), delimiter, where)


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
