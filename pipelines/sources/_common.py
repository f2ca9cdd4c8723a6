"""Pieces every connector needs: received values as text, daily file paths, the raw frame.

Kept in one place so that all connectors agree on what "as received, as text" means
(``true``/``false`` for booleans, JSON text for numbers and nested values, ``None``
for nothing) and on the shape of the frame validation reads.

Streaming connectors gather their records column-wise into Arrow text arrays
(``TextBatches``) and hand them out as ``RawBatch``es of at most ``batch_rows`` rows
whose columns are ``string[pyarrow]``: building a column is one C call for text that
is already ``str``, and a batch holds its text in Arrow buffers rather than in one
Python object per value.
"""

from __future__ import annotations

import gc
import json
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.contracts import Contract, ContractError
from pipelines.interval import Interval
from pipelines.settings import Settings
from pipelines.sources import ORIGIN_COLUMN, ROW_COLUMN, RawBatch, SourceUnavailable

PARSE_ERROR_COLUMN = "_parse_error"
TEXT = pd.StringDtype("pyarrow")  # what validation reads received text as; missing is <NA>
ARROW_TEXT = pa.large_string()  # the storage of TEXT
UNBOUNDED = sys.maxsize  # batch_rows for "everything in one batch" (``extract``)


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


def text_array(values: Sequence[object]) -> pa.Array:
    """Values as Arrow text: ``str``/``None`` in one C pass, anything else through ``as_text``."""
    try:
        return pa.array(values, type=ARROW_TEXT)
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # numbers, booleans, nested values, non-UTF-8 bytes
        return pa.array([as_text(value) for value in values], type=ARROW_TEXT)


def record_columns(records: Sequence[dict[str, object]]) -> dict[str, Sequence[object]]:
    """Records (parsed JSON objects) as columns: every key in first-seen order, ``None`` where absent.

    The common case, every record with the same keys in the same order, is one C-level
    transposition; only mixed shapes pay a lookup per key and record.
    """
    shapes = dict.fromkeys(map(tuple, records))
    if len(shapes) == 1:
        names = next(iter(shapes))
        return dict(zip(names, zip(*map(dict.values, records), strict=True), strict=True)) if names else {}
    names = dict.fromkeys(name for shape in shapes for name in shape)
    return {name: [record.get(name) for record in records] for name in names}


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a block of records is parsed and turned into columns.

    Parsing JSON allocates a container per record; each few hundred allocations start
    a collection that walks the young objects, and the records surviving those walks
    trigger full collections over the whole process heap (GX and pandas included).
    Records are freed by reference counting once their block is converted, so pausing
    the collector over a bounded block (one page, one chunk) costs no memory.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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


class TextBatches:
    """Column blocks from one or more origins, handed out as ``RawBatch``es of at most ``batch_rows``.

    A connector ``add``s what it read from an origin (a page, a file chunk, a fetch) as
    columns of equal length with their ``_row`` numbers, and yields whatever ``add`` and
    ``finish`` yield. A block larger than the room left is split across batches, so a
    batch never exceeds ``batch_rows`` and ``_row`` keeps pointing at the record within
    its origin. Columns first seen in a later block are ``<NA>`` for earlier rows; every
    batch carries the columns seen so far, starting with ``names`` in their order.
    """

    def __init__(self, source: str, names: Iterable[str], batch_rows: int) -> None:
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be >= 1, not {batch_rows}")
        self.source = source
        self.batch_rows = batch_rows
        self.rows = 0  # records added so far
        self.batches = 0  # batches handed out so far
        self._names: dict[str, None] = dict.fromkeys(names)
        self._blocks: deque[tuple[dict[str, pa.Array], str, np.ndarray]] = deque()
        self._pending = 0
        self._origins: dict[str, None] = {}  # origins of the batch being gathered, in order

    def add(
        self, columns: Mapping[str, pa.Array | Sequence[object]], origin: str, rows: Sequence[int]
    ) -> Iterator[RawBatch]:
        """Add one origin's block (text columns, 1-based record numbers); yields every batch now full."""
        numbers = np.asarray(rows, dtype=np.int64)
        arrays: dict[str, pa.Array] = {}
        for name, values in columns.items():
            array = values if isinstance(values, pa.Array) else text_array(values)
            if len(array) != len(numbers):
                raise ValueError(f"column {name!r} has {len(array)} values for {len(numbers)} rows")
            arrays[name] = array
            self._names.setdefault(name)
        self._origins.setdefault(origin)
        if len(numbers):
            self._blocks.append((arrays, origin, numbers))
            self._pending += len(numbers)
            self.rows += len(numbers)
        while self._pending >= self.batch_rows:
            yield self._emit(self.batch_rows)

    def note(self, origin: str) -> None:
        """An origin read but without records (an empty page, a file of blank lines)."""
        self._origins.setdefault(origin)

    def finish(self) -> Iterator[RawBatch]:
        """The last, partial batch; an empty one when nothing else would carry the columns or origins."""
        if self._pending or self._origins or not self.batches:
            yield self._emit(self._pending)

    def _emit(self, count: int) -> RawBatch:
        taken: list[tuple[dict[str, pa.Array], str, np.ndarray]] = []
        room = count
        while room:
            arrays, origin, numbers = self._blocks[0]
            if len(numbers) <= room:
                taken.append(self._blocks.popleft())
                room -= len(numbers)
            else:
                taken.append(({k: a.slice(0, room) for k, a in arrays.items()}, origin, numbers[:room]))
                self._blocks[0] = ({k: a.slice(room) for k, a in arrays.items()}, origin, numbers[room:])
                room = 0
        self._pending -= count
        origins = list(self._origins)
        self._origins = dict.fromkeys(origin for _, origin, _ in self._blocks)
        self.batches += 1
        return RawBatch(source=self.source, frame=self._frame(taken, count), origins=origins)

    def _frame(self, blocks: list[tuple[dict[str, pa.Array], str, np.ndarray]], count: int) -> pd.DataFrame:
        columns: dict[str, pd.Series] = {}
        index = pd.RangeIndex(count)
        for name in self._names:
            chunks = [arrays.get(name) for arrays, _, _ in blocks]
            columns[name] = _text_series(
                [chunk if chunk is not None else pa.nulls(len(rows), ARROW_TEXT)
                 for chunk, (_, _, rows) in zip(chunks, blocks, strict=True)], index)
        columns[ORIGIN_COLUMN] = _text_series(
            [pa.repeat(pa.scalar(origin, ARROW_TEXT), len(rows)) for _, origin, rows in blocks], index)
        numbers = np.concatenate([rows for _, _, rows in blocks]) if blocks else np.empty(0, np.int64)
        columns[ROW_COLUMN] = pd.Series(numbers, index=index, dtype="int64")
        return pd.DataFrame(columns, index=index)


def _text_series(chunks: list[pa.Array], index: pd.RangeIndex) -> pd.Series:
    """One contiguous ``string[pyarrow]`` column from Arrow chunks."""
    array = pa.chunked_array(chunks, type=ARROW_TEXT).combine_chunks() if chunks else pa.array(
        [], type=ARROW_TEXT)
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([array])), index=index)


def one_batch(source: str, batches: Iterable[RawBatch]) -> RawBatch:
    """Batches joined back into one (``extract`` of a streaming connector, and tests)."""
    gathered = list(batches)
    if len(gathered) == 1:
        return gathered[0]
    names = dict.fromkeys(name for batch in gathered for name in batch.frame.columns
                          if name not in (ORIGIN_COLUMN, ROW_COLUMN))
    frames = []
    for batch in gathered:
        frame = batch.frame
        missing = {name: pd.Series(pd.NA, index=frame.index, dtype=TEXT)
                   for name in names if name not in frame.columns}
        frames.append(frame.assign(**missing)[[*names, ORIGIN_COLUMN, ROW_COLUMN]] if missing else
                      frame[[*names, ORIGIN_COLUMN, ROW_COLUMN]])
    frame = (pd.concat(frames, ignore_index=True) if frames else
             pd.DataFrame({ORIGIN_COLUMN: pd.Series(dtype=TEXT), ROW_COLUMN: pd.Series(dtype="int64")}))
    origins = list(dict.fromkeys(origin for batch in gathered for origin in batch.origins))
    return RawBatch(source=source, frame=frame, origins=origins)
