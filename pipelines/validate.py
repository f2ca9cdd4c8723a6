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

import pandas as pd

from pipelines.contracts import Column, Contract, ContractError
from pipelines.interval import Interval
from pipelines.sources import ORIGIN_COLUMN, ROW_COLUMN, RawBatch

log = logging.getLogger(__name__)

PARSE_ERROR_COLUMN = "_parse_error"
TRUE_TEXT = frozenset({"true", "t", "yes", "y", "1"})
FALSE_TEXT = frozenset({"false", "f", "no", "n", "0"})
TEXT = pd.StringDtype("pyarrow")  # received text, vectorised string ops in Arrow
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
    gx_result: dict[str, Any] | None = None  # GX's validation result (JSON), kept for the run's Data Docs


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
    stripped = received.str.strip()
    present = (stripped != "").fillna(False).astype(bool)  # empty or blank counts as missing
    text = received.where(present)
    if col.type == "string":
        return text.astype("string"), pd.Series(False, index=values.index)
    if col.type in ("integer", "float"):
        numbers = pd.to_numeric(stripped.where(present), errors="coerce")
        bad = present & numbers.isna()
        if col.type == "integer":
            fractional = numbers.notna() & (numbers != numbers.round())
            bad |= fractional
            numbers = numbers.where(~fractional)
            return numbers.astype("Int64"), bad
        return numbers.astype("Float64"), bad
    if col.type == "boolean":
        lowered = stripped.where(present).str.lower()
        parsed = pd.Series(pd.NA, index=values.index, dtype="boolean")
        parsed[lowered.isin(TRUE_TEXT).fillna(False)] = True
        parsed[lowered.isin(FALSE_TEXT).fillna(False)] = False
        return parsed, present & parsed.isna()
    # timestamp and date: ISO 8601; naive times are taken as UTC
    stamps = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    bad = present & stamps.isna()
    if col.type == "date":
        return stamps.dt.normalize().astype("datetime64[us, UTC]"), bad
    return stamps.astype("datetime64[us, UTC]"), bad


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
    for expectation in _expectations(contract, interval):
        suite.add_expectation(expectation)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": _for_gx(typed)})
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
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
        for index in indexes:
            if isinstance(index, dict):  # compound checks give the key columns
                index = index.get("index", next(iter(index.values())))
            value = typed.at[index, column] if column else None
            failures.append(_Failure(index, config.type, column, _reason(config, value)))
    return failures, bool(result.success), dict(result.statistics), result.to_json_dict()


def _for_gx(typed: pd.DataFrame) -> pd.DataFrame:
    """The frame in the dtypes GX checks vectorised: its range check maps a Python function over
    nullable ``Int64``/``Float64`` values, but compares numpy floats at once (about 3 s per 1M rows)."""
    nullable = (pd.Int64Dtype, pd.Float64Dtype)
    numeric = {c: "float64" for c, t in typed.dtypes.items() if isinstance(t, nullable)}
    return typed.astype(numeric) if numeric else typed


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
        for index in bad[bad].index:
            shown = frame.at[index, col.name]
            reason = f"column {col.name}: {shown!r} is not {_type_name(col)}"
            failures.append(_Failure(index, "type", col.name, reason))
    gx_success, gx_statistics, gx_result = True, {}, None
    if len(typed):
        gx_fails, gx_success, gx_statistics, gx_result = _gx_failures(contract, typed, interval)
        failures.extend(gx_fails)

    failed_index = sorted({f.index for f in failures})
    clean = typed.drop(index=failed_index)
    clean.insert(len(clean.columns), ORIGIN_COLUMN, frame.loc[clean.index, ORIGIN_COLUMN]
                 if ORIGIN_COLUMN in frame else None)
    clean.insert(len(clean.columns), ROW_COLUMN, frame.loc[clean.index, ROW_COLUMN].astype("Int64")
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
    failing = frame.loc[indexes].astype(object).where(frame.loc[indexes].notna(), None)
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
