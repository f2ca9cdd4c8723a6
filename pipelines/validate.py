"""Validate a raw batch against its contract: typed clean rows out, bad rows quarantined.

Two passes, each reporting per row so nothing is lost:

1. parsing, in pandas: every value arrives as text; a value that is present but does
   not parse as the contract's type is a row failure ("'abc' is not an integer");
2. GX Core expectations built from the contract (not null, ranges, allowed values,
   unique keys, the run's interval), one ``validate`` call per batch against the whole
   suite, with ``COMPLETE`` results so every failing row index comes back.

A missing required column is not a row problem: it stops the source with a
``ContractError`` that names the source, the file(s) and the column.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contracts import Column, Contract, ContractError
from pipelines.interval import Interval
from pipelines.sources import ORIGIN_COLUMN, ROW_COLUMN, RawBatch

log = logging.getLogger(__name__)

PARSE_ERROR_COLUMN = "_parse_error"
TRUE_TEXT = frozenset({"true", "t", "yes", "y", "1"})
FALSE_TEXT = frozenset({"false", "f", "no", "n", "0"})
TEXT = pd.StringDtype("pyarrow")  # received text, vectorised string ops in Arrow
# COMPLETE gives every failing row's index; the index query GX would also build is added
# afterwards from those indexes (``_add_index_queries``).
RESULT_FORMAT = {"result_format": "COMPLETE", "return_unexpected_index_query": False}
PLAIN_INTEGER = r"^-?[0-9]{1,15}$"  # exact as int64 and as float64
PLAIN_UTC_INSTANT = r"^(19|20)[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$"
# Text handed to GX dictionary-encoded when at most this share of a sample is distinct.
DICTIONARY_SAMPLE_ROWS, DICTIONARY_DISTINCT_SHARE = 10_000, 0.05
_nullable = {pa.int64(): pd.Int64Dtype()}
QUARANTINE_COLUMNS = ["source", "origin", "row_number", "failed_check", "column_name", "reason", "record"]


@dataclass
class ValidationResult:
    """Clean typed rows and the quarantined ones; ``len(clean) + len(quarantine) == rows_read``."""

    source: str
    clean: pd.DataFrame
    quarantine: pd.DataFrame
    rows_read: int
    gx_success: bool
    gx_statistics: dict[str, Any]
    # GX's validation result (JSON) for the run's Data Docs, without the per-row value and index
    # lists (the failures above hold them; the day's merged result drops them)
    gx_result: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Failure:
    index: Any
    check: str
    column: str | None
    reason: str


# ---------------------------------------------------------------- parsing


def _parse_column(values: pd.Series, col: Column) -> tuple[pd.Series, pd.Series]:
    """Parse text to the contract type; returns (parsed, mask of present-but-unparseable)."""
    received = values.astype(TEXT)
    if col.type == "string":
        return _text(received), pd.Series(False, index=values.index)
    stripped = received.str.strip()
    present = (stripped != "").fillna(False).astype(bool)  # empty or blank counts as missing
    text = received.where(present)
    if col.type in ("integer", "float"):
        candidates = stripped.where(present)
        numbers = (_integers(candidates) if col.type == "integer"
                   else pd.to_numeric(candidates, errors="coerce"))
        bad = present & numbers.isna()
        if col.type == "integer":
            fractional = numbers.notna() & (numbers != numbers.round())
            bad |= fractional
            numbers = numbers.where(~fractional)
            return numbers.astype("Int64"), bad
        return numbers.astype("Float64"), bad
    if col.type == "boolean":
        parsed = _booleans(stripped.where(present))
        return parsed, present & parsed.isna()
    # timestamp and date: ISO 8601; naive times are taken as UTC
    stamps = _instants(text)
    bad = present & stamps.isna()
    if col.type == "date":
        return stamps.dt.normalize().astype("datetime64[us, UTC]"), bad
    return stamps, bad


def _instants(text: pd.Series) -> pd.Series:
    """``pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")`` in microseconds.

    pandas reads each value in Python (about 0.4 s per 1M); UTC instants written the one
    way exports write them (``2026-03-02T19:22:43Z``, up to 6 decimals, years 1900-2099,
    within pandas' nanosecond range) are cast by Arrow's ISO 8601 parser, which rejects
    the same impossible dates and times. The rest, and any column Arrow refuses, go to pandas.
    """
    arrow = pa.array(text.array)
    plain = pc.fill_null(pc.match_substring_regex(arrow, PLAIN_UTC_INSTANT), False)
    rest = text.notna().to_numpy() & ~plain.to_numpy(zero_copy_only=False)
    try:
        cast = pc.cast(pc.if_else(plain, arrow, pa.scalar(None, arrow.type)), pa.timestamp("us", "UTC"))
    except pa.ArrowInvalid:  # e.g. 2026-02-30: pandas says which values are bad
        rest = text.notna().to_numpy()
        cast = pa.nulls(len(text), pa.timestamp("us", "UTC"))
    stamps = pd.Series(cast.to_pandas().array, index=text.index).astype("datetime64[us, UTC]")
    if rest.any():
        others = pd.to_datetime(text[rest], errors="coerce", utc=True, format="ISO8601")
        stamps = stamps.mask(rest, others.astype("datetime64[us, UTC]"))
    return stamps


def _text(received: pd.Series) -> pd.Series:
    """The text as received, empty or blank as missing: Arrow's whitespace test, not a strip
    (the same characters count as blank, without copying every value)."""
    arrow = pa.array(received.array)
    blank = pc.or_(pc.equal(arrow, ""), pc.utf8_is_space(arrow))
    kept = pc.if_else(blank, pa.scalar(None, arrow.type), arrow)
    return pd.Series(pd.arrays.ArrowStringArray(kept), index=received.index, name=received.name)


def _integers(text: pd.Series) -> pd.Series:
    """``pd.to_numeric(text, errors="coerce")`` for an integer column, plain integers cast in Arrow.

    pandas parses text one Python object at a time (about 1 s per 1M values). An optional
    minus and up to 15 digits is the same integer whatever pandas would choose (``Int64``,
    or ``Float64`` when a decimal is in the column: exact below 2**53), so those are cast in
    Arrow and only the rest (signs, decimals, exponents, long or bad values) goes to pandas.
    """
    arrow = pa.array(text.array)
    plain = pc.fill_null(pc.match_substring_regex(arrow, PLAIN_INTEGER), False)
    rest = text.notna().to_numpy() & ~plain.to_numpy(zero_copy_only=False)
    parsed = pc.cast(pc.if_else(plain, arrow, None), pa.int64())
    numbers = pd.Series(parsed.to_pandas(types_mapper=_nullable.get).array, index=text.index)
    if not rest.any():
        return numbers
    others = pd.to_numeric(text[rest], errors="coerce")
    if not isinstance(others.dtype, pd.Int64Dtype | pd.Float64Dtype):  # beyond int64: pandas decides
        return pd.to_numeric(text, errors="coerce")
    return numbers.astype(others.dtype).mask(rest, others)


def _booleans(text: pd.Series) -> pd.Series:
    """TRUE_TEXT as true, FALSE_TEXT as false, anything else missing (nullable ``boolean``)."""
    lowered = pc.utf8_lower(pa.array(text.array))

    def among(words: frozenset[str]):
        found = pc.is_in(lowered, value_set=pa.array(sorted(words), lowered.type))
        return pc.fill_null(found, False).to_numpy(zero_copy_only=False)

    true, false = among(TRUE_TEXT), among(FALSE_TEXT)
    return pd.Series(pd.arrays.BooleanArray(true, ~(true | false)), index=text.index)


def _type_name(col: Column) -> str:
    return {"integer": "an integer", "float": "a number", "boolean": "true or false",
            "timestamp": "an ISO 8601 timestamp", "date": "an ISO 8601 date"}.get(col.type, col.type)


# ---------------------------------------------------------------- GX Core


@cache
def _gx_context():
    """One ephemeral GX context per process: building it is the expensive part."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints every in-memory batch under HASH_THRESHOLD bytes by hashing all of its
    # values (about 2 s per 1M contact rows), only to label the result; our batches are
    # bounded by design, so skip it as GX itself does for big frames.
    pandas_execution_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.data_sources.add_pandas("xoflow")
    return context


def _expectations(contract: Contract, interval: Interval) -> list:
    import great_expectations.expectations as gxe

    built: list = []
    for col in contract.columns:
        meta = {"column_description": col.description}
        if not col.nullable:
            built.append(gxe.ExpectColumnValuesToNotBeNull(column=col.name, meta=meta))
        if col.min is not None or col.max is not None:
            built.append(gxe.ExpectColumnValuesToBeBetween(
                column=col.name, min_value=col.min, max_value=col.max, meta=meta))
        if col.allowed is not None:
            built.append(gxe.ExpectColumnValuesToBeInSet(
                column=col.name, value_set=list(col.allowed), meta=meta))
        if col.regex is not None:
            built.append(gxe.ExpectColumnValuesToMatchRegex(column=col.name, regex=col.regex))
    if len(contract.key) == 1:
        built.append(gxe.ExpectColumnValuesToBeUnique(column=contract.key[0]))
    elif contract.key:
        built.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(contract.key)))
    # rows outside the run's interval belong to another night's partition
    event = contract.column(contract.event_time)
    lower = interval.start if event.type == "timestamp" else pd.Timestamp(interval.days[0], tz="UTC")
    upper = interval.end if event.type == "timestamp" else pd.Timestamp(interval.days[-1], tz="UTC")
    built.append(gxe.ExpectColumnValuesToBeBetween(
        column=event.name, min_value=pd.Timestamp(lower).to_pydatetime(),
        max_value=pd.Timestamp(upper).to_pydatetime() - (
            timedelta(microseconds=1) if event.type == "timestamp" else timedelta(0)),
        meta={"reason": "outside the run's data interval"}))
    return built


def _gx_failures(contract: Contract, typed: pd.DataFrame, interval: Interval):
    import great_expectations as gx

    context = _gx_context()
    source = context.data_sources.get("xoflow")
    asset_name = contract.source
    try:
        asset = source.get_asset(asset_name)
    except LookupError:
        asset = source.add_dataframe_asset(asset_name)
    batch_name = "whole"
    try:
        batch_definition = asset.get_batch_definition(batch_name)
    except (KeyError, LookupError, ValueError):
        batch_definition = asset.add_batch_definition_whole_dataframe(batch_name)
    suite = gx.ExpectationSuite(name=f"{contract.source}_{interval.start:%Y%m%d}")
    expectations = _expectations(contract, interval)
    for expectation in expectations:
        suite.add_expectation(expectation)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": _for_gx(typed, expectations)})
    try:
        result = batch.validate(suite, result_format=RESULT_FORMAT)
    finally:
        del batch
        _forget_batches(source)
    _add_index_queries(result)
    failures: list[_Failure] = []
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        column = config.kwargs.get("column")
        if item.exception_info and item.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"{contract.source}: GX could not evaluate {config.type} on {column}: "
                f"{item.exception_info.get('exception_message')}")
        indexes = item.result.get("unexpected_index_list") or []
        values = typed[column].array if column else None  # what ``typed.at`` gives, without its lookups
        for index in indexes:
            if isinstance(index, dict):  # compound checks give the key columns
                index = index.get("index", next(iter(index.values())))
            value = values[index] if column else None
            failures.append(_Failure(index, config.type, column, _reason(config, value)))
    for item in result.results:  # per-row lists: read above, dropped by the day's merged result
        for bulky in ("unexpected_list", "unexpected_index_list"):
            (item.result or {}).pop(bulky, None)
    return failures, bool(result.success), dict(result.statistics), result.to_json_dict()


def _forget_batches(source) -> None:
    """Drop the frame GX keeps in its execution engine after validating it.

    GX holds the last batch's data until the next batch replaces it, so the checked
    columns of one batch stayed in memory while the next was read, parsed and checked.
    """
    manager = source.get_execution_engine().batch_manager
    manager.batch_data_cache.clear()
    manager.reset_batch_cache()


def _for_gx(typed: pd.DataFrame, expectations: list) -> pd.DataFrame:
    """The columns the suite checks, in the dtypes GX checks fastest.

    GX filters the whole frame (every column) several times per expectation, so a column
    no expectation reads only costs copies. Its range check maps a Python function over
    nullable ``Int64``/``Float64`` values, but compares numpy floats at once (about 3 s per
    1M rows).
    """
    checked = set()
    for expectation in expectations:
        checked.update(getattr(expectation, "column_list", None) or [getattr(expectation, "column", None)])
    frame = typed[[c for c in typed.columns if c in checked]]
    nullable = (pd.Int64Dtype, pd.Float64Dtype)
    numeric = {c: "float64" for c, t in frame.dtypes.items() if isinstance(t, nullable)}
    frame = frame.astype(numeric) if numeric else frame
    texts = {c: _dictionary_text(frame[c]) for c, t in frame.dtypes.items() if isinstance(t, pd.StringDtype)}
    return frame.assign(**texts) if texts else frame


def _dictionary_text(values: pd.Series) -> pd.Series:
    """Codes and categories as an Arrow dictionary: GX's row filters then copy 4-byte codes,
    not the strings. Mostly distinct text (ids) stays as it is: encoding it costs more than
    its copies."""
    text = pa.array(values.array)
    sample = text.slice(0, DICTIONARY_SAMPLE_ROWS)
    if pc.count_distinct(sample, mode="all").as_py() > len(sample) * DICTIONARY_DISTINCT_SHARE:
        return values
    encoded = pc.dictionary_encode(text)
    return pd.Series(pd.arrays.ArrowExtensionArray(encoded), index=values.index, name=values.name)


def _add_index_queries(result) -> None:
    """Put back each map check's ``unexpected_index_query`` as GX writes it.

    GX builds that text by filtering the whole frame once more per expectation (about a
    tenth of its time); it is only the failing indexes, which the result already holds,
    in a ``df.filter`` call, so the suite runs without it and it is written here.
    """
    for item in result.results:
        details = item.result or {}
        indexes = details.get("unexpected_index_list")
        if indexes is None or "unexpected_index_query" in details:
            continue
        plain = [int(i) for i in indexes]
        details["unexpected_index_query"] = f"df.filter(items={plain}, axis=0)"


def _reason(config, value: Any) -> str:
    kw = config.kwargs
    column = kw.get("column")
    shown = "empty" if value is None or value is pd.NA or (
        isinstance(value, float) and pd.isna(value)) else repr(_plain(value))
    match config.type:
        case "expect_column_values_to_not_be_null":
            return f"column {column}: required value is missing"
        case "expect_column_values_to_be_between":
            if (config.meta or {}).get("reason"):
                return f"column {column}: {shown} is {config.meta['reason']}"
            return f"column {column}: {shown} is outside [{kw.get('min_value')}, {kw.get('max_value')}]"
        case "expect_column_values_to_be_in_set":
            return f"column {column}: {shown} is not one of {sorted(kw.get('value_set'))}"
        case "expect_column_values_to_be_unique":
            return f"column {column}: {shown} appears more than once in the batch (key must be unique)"
        case "expect_compound_columns_to_be_unique":
            return f"key {kw.get('column_list')} appears more than once in the batch"
        case _:
            return f"column {column}: {shown} failed {config.type}"


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


# ---------------------------------------------------------------- the whole batch


def check_columns(contract: Contract, frame: pd.DataFrame, origins: list[str]) -> None:
    """Stop the source when a required column is absent: no row could be trusted."""
    missing = [c for c in contract.required_columns if c not in frame.columns]
    if missing:
        where = ", ".join(origins[:3]) + (" ..." if len(origins) > 3 else "") or "(no data)"
        raise ContractError(
            f"{contract.source} {where}: required column {missing[0]!r} is missing"
            + (f" (also {missing[1:]})" if len(missing) > 1 else "")
            + f"; the contract {contract.path.name if contract.path else ''} requires it")


def validate_batch(contract: Contract, batch: RawBatch, interval: Interval) -> ValidationResult:
    frame = batch.frame.rename(columns=contract.rename)
    if len(frame) or len(frame.columns):
        check_columns(contract, frame, batch.origins)
    frame = frame.reset_index(drop=True)
    for col in contract.columns:  # optional columns the source did not send
        if col.name not in frame.columns:
            frame[col.name] = None
    failures: list[_Failure] = []
    if PARSE_ERROR_COLUMN in frame.columns:
        for index, error in frame[PARSE_ERROR_COLUMN].dropna().items():
            failures.append(_Failure(index, "parse", None, str(error)))
    typed = pd.DataFrame(index=frame.index)
    for col in contract.columns:
        parsed, bad = _parse_column(frame[col.name], col)
        typed[col.name] = parsed
        received = frame[col.name].array
        for index in np.flatnonzero(bad.to_numpy()).tolist():
            reason = f"column {col.name}: {received[index]!r} is not {_type_name(col)}"
            failures.append(_Failure(index, "type", col.name, reason))
    gx_success, gx_statistics, gx_result = True, {}, None
    if len(typed):
        gx_fails, gx_success, gx_statistics, gx_result = _gx_failures(contract, typed, interval)
        failures.extend(gx_fails)

    failed = np.zeros(len(frame), dtype=bool)
    failed[[f.index for f in failures]] = True
    kept = np.flatnonzero(~failed)  # positions: the frame's index is 0..n-1
    clean = typed.take(kept)
    clean.insert(len(clean.columns), ORIGIN_COLUMN, frame[ORIGIN_COLUMN].take(kept)
                 if ORIGIN_COLUMN in frame else None)
    clean.insert(len(clean.columns), ROW_COLUMN, frame[ROW_COLUMN].take(kept).astype("Int64")
                 if ROW_COLUMN in frame else pd.NA)
    quarantine = _quarantine_frame(contract, frame, failures)
    if len(clean) + len(quarantine) != len(frame):
        raise AssertionError(f"{contract.source}: validation lost rows")
    return ValidationResult(contract.source, clean.reset_index(drop=True), quarantine,
                            len(frame), gx_success, gx_statistics, gx_result)


def _quarantine_frame(contract: Contract, frame: pd.DataFrame, failures: list[_Failure]) -> pd.DataFrame:
    """One row per failing record: its first failure as check/column, every reason joined."""
    by_row: dict[Any, list[_Failure]] = {}
    for failure in failures:
        by_row.setdefault(failure.index, []).append(failure)
    record_columns = [c for c in frame.columns if not c.startswith("_")]
    indexes = sorted(by_row)
    picked = frame.take(indexes)
    failing = picked.astype(object).where(picked.notna(), None)
    records = failing[record_columns].to_dict("records")
    origins = failing[ORIGIN_COLUMN].tolist() if ORIGIN_COLUMN in frame else [None] * len(indexes)
    numbers = (failing[ROW_COLUMN].tolist() if ROW_COLUMN in frame else [i + 1 for i in indexes])
    rows = []
    for index, record, origin, number in zip(indexes, records, origins, numbers, strict=True):
        found = by_row[index]
        # a value that did not parse also reads as missing to GX: keep the parse reason only
        typed_columns = {f.column for f in found if f.check == "type"}
        found = [f for f in found if f.check == "type" or f.column not in typed_columns]
        rows.append({
            "source": contract.source,
            "origin": origin,
            "row_number": int(number),
            "failed_check": found[0].check,
            "column_name": found[0].column,
            "reason": "; ".join(f.reason for f in found),
            "record": json.dumps(record, default=str, sort_keys=True),
        })
    return pd.DataFrame(rows, columns=QUARANTINE_COLUMNS).astype(quarantine_types())


def quarantine_types() -> dict[str, str]:
    return {"source": "string", "origin": "string", "row_number": "Int64", "failed_check": "string",
            "column_name": "string", "reason": "string", "record": "string"}
