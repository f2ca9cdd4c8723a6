"""The staging area: one source's validated batches for one day, waiting for the load.

``<home>/staging/<source>/<day>/`` holds ``clean-NNNNN.parquet`` and
``quarantine-NNNNN.parquet`` per batch, the run's merged GX result
(``gx_validation.json``, for the Data Docs), for most sources the batches already conformed
to their fact's rows (``conformed-<run>.parquet``) and ``result.json``, written last and
tagged with the run id: the load takes only what *this* run validated completely. A
run that fails writes ``error.json`` instead, so the load can say why the source is
missing.

Batches are validated one at a time (memory bounded by the batch, not the day), so a
key repeated in two batches is only seen here, once all batches are staged: DuckDB
counts the keys over the staged files and the repeated rows move to quarantine, as
GX does inside a batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines import working_files
from pipelines.contracts import Contract
from pipelines.interval import Interval
from pipelines.settings import Settings
from pipelines.sources import ORIGIN_COLUMN, ROW_COLUMN
from pipelines.validate import QUARANTINE_COLUMNS, ValidationResult, quarantine_types

RESULT_FILE, ERROR_FILE, GX_FILE = "result.json", "error.json", "gx_validation.json"
# A GX result keeps at most this many sample values per expectation once batches are merged.
SAMPLE_VALUES = 20
SAMPLE_KEYS = ("partial_unexpected_list", "partial_unexpected_index_list", "partial_unexpected_counts")
# DuckDB's memory while counting keys over the day (it spills beyond it). The count comes at the
# end of the extract, on top of the process's high-water mark: with 512 MB it raised a 5M-row
# extract's peak by 300 MB; with 128 MB by 160 MB, in the same 0.5 s.
KEY_COUNT_MEMORY = "128MB"


def staging_dir(settings: Settings, source: str, interval: Interval) -> Path:
    return settings.home / "staging" / source / interval.days[0].isoformat()


def last_extract_seconds(settings: Settings, source: str) -> float | None:
    """Seconds the latest staged day of ``source`` took to extract and validate (None: none kept)."""
    for folder in sorted((settings.home / "staging" / source).glob("*"), reverse=True):
        result = folder / RESULT_FILE
        if result.exists():
            seconds = json.loads(result.read_text()).get("seconds") or {}
            return float(sum(seconds.values())) if seconds else None
    return None


@dataclass
class Staged:
    """What one run staged for one source: the load reads the clean batches one by one."""

    source: str
    summary: dict[str, Any]
    clean_files: list[Path]
    quarantine: pd.DataFrame

    def clean_batches(self) -> Iterator[pd.DataFrame]:
        for path in self.clean_files:
            yield pd.read_parquet(path)


class StageWriter:
    """Stages one source's batches for one run; ``finish`` makes them visible to the load."""

    def __init__(self, settings: Settings, contract: Contract, interval: Interval, run_id: str) -> None:
        self.contract, self.run_id = contract, run_id
        self.folder = staging_dir(settings, contract.source, interval)
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in (RESULT_FILE, GX_FILE, *(p.name for p in self.folder.glob("*-*.parquet"))):
            (self.folder / old).unlink(missing_ok=True)
        self.clean_files: list[Path] = []
        self.quarantine_files: list[Path] = []
        self.rows_read = self.rows_valid = self.rows_quarantined = 0
        self.gx_results: list[dict[str, Any]] = []
        self.gx_success = True

    def add(self, result: ValidationResult) -> None:
        number = len(self.clean_files)
        clean = self.folder / f"clean-{number:05d}.parquet"
        quarantined = self.folder / f"quarantine-{number:05d}.parquet"
        working_files.write_table(pa.Table.from_pandas(result.clean, preserve_index=False), clean)
        working_files.write_table(pa.Table.from_pandas(result.quarantine, preserve_index=False), quarantined)
        self.clean_files.append(clean)
        self.quarantine_files.append(quarantined)
        self.rows_read += result.rows_read
        self.rows_valid += len(result.clean)
        self.rows_quarantined += len(result.quarantine)
        self.gx_success &= result.gx_success
        if result.gx_result is not None:
            self.gx_results.append(result.gx_result)

    def finish(self, summary: dict[str, Any],
               conform: Callable[[list[Path]], dict[str, Any] | None] | None = None) -> dict[str, Any]:
        """Quarantine keys repeated across batches, then write the run's result (last).

        ``conform``, given the clean files as they end up, returns what it made of them, or
        None (``summary["conformed"]``): it runs before the result is written, so the load
        never sees a staged source whose conform is still under way.
        """
        moved = self._quarantine_repeated_keys()
        self.rows_valid -= moved
        self.rows_quarantined += moved
        merged = merged_gx(self.gx_results) if self.gx_results else None
        if merged is not None:
            (self.folder / GX_FILE).write_text(json.dumps(
                {"run_id": self.run_id, "result": merged}, default=str))
        summary = {**summary, "run_id": self.run_id, "rows_read": self.rows_read,
                   "rows_valid": self.rows_valid, "rows_quarantined": self.rows_quarantined,
                   "gx_success": self.gx_success and not moved,
                   "gx_statistics": merged["statistics"] if merged else {},
                   "batches": len(self.clean_files)}
        if self.rows_valid + self.rows_quarantined != self.rows_read:
            raise AssertionError(f"{self.contract.source}: staging lost rows")
        if conform is not None:
            summary["conformed"] = conform(self.clean_files)
        (self.folder / RESULT_FILE).write_text(json.dumps(summary, default=str))
        (self.folder / ERROR_FILE).unlink(missing_ok=True)
        return summary

    def fail(self, error: BaseException) -> None:
        (self.folder / ERROR_FILE).write_text(json.dumps(
            {"run_id": self.run_id, "error": type(error).__name__, "message": str(error)}))

    def _quarantine_repeated_keys(self) -> int:
        key = list(self.contract.key)
        if len(self.clean_files) < 2 or not key:
            return 0
        repeated = _repeated_keys(self.clean_files, key)
        if not repeated.num_rows:
            return 0
        moved = []
        for path in self.clean_files:
            batch = pq.read_table(path)
            hit = pc.is_in(_key_text(batch, key), value_set=_key_text(repeated, key))
            if not pc.any(hit).as_py():
                continue
            moved.append(batch.filter(hit).to_pandas())
            working_files.write_table(batch.filter(pc.invert(hit)), path)
        rows = pd.concat(moved, ignore_index=True)
        path = self.folder / f"quarantine-{len(self.quarantine_files):05d}.parquet"
        working_files.write_table(pa.Table.from_pandas(_repeated_key_quarantine(self.contract, rows, key),
                                                       preserve_index=False), path)
        self.quarantine_files.append(path)
        return len(rows)


def _repeated_keys(files: list[Path], key: list[str]) -> pa.Table:
    with duckdb.connect() as con:
        con.execute(f"SET memory_limit = '{KEY_COUNT_MEMORY}'")
        columns = ", ".join(f'"{c}"' for c in key)
        return con.sql(f"SELECT {columns} FROM read_parquet($files) GROUP BY ALL HAVING count(*) > 1",
                       params={"files": [str(f) for f in files]}).to_arrow_table()


def _key_text(table: pa.Table, key: list[str]) -> pa.Array:
    """The key as one text value per row (compound keys joined), comparable across tables."""
    parts = [pc.cast(table.column(c), pa.string()) for c in key]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, "\x1f", null_handling="replace", null_replacement="")


def _repeated_key_quarantine(contract: Contract, rows: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    check = "expect_column_values_to_be_unique" if len(key) == 1 else "expect_compound_columns_to_be_unique"
    shown = rows[key[0]].astype(str) if len(key) == 1 else None
    reason = (f"column {key[0]}: " + shown.map(repr) + " appears more than once in the day's extract "
              "(key must be unique)") if shown is not None else pd.Series(
        f"key {key} appears more than once in the day's extract", index=rows.index)
    records = rows[[c for c in contract.column_names if c in rows]].astype(object)
    records = records.where(records.notna(), None)
    return pd.DataFrame({
        "source": contract.source,
        "origin": rows.get(ORIGIN_COLUMN),
        "row_number": rows.get(ROW_COLUMN),
        "failed_check": check,
        "column_name": key[0] if len(key) == 1 else None,
        "reason": reason,
        "record": [json.dumps(r, default=str, sort_keys=True) for r in records.to_dict("records")],
    }, columns=QUARANTINE_COLUMNS).astype(quarantine_types())


def merged_gx(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One GX validation result for the day from the per-batch ones: counts summed, samples capped."""
    merged = json.loads(json.dumps(results[0], default=str))
    for number, item in enumerate(merged.get("results", [])):
        parts = [r["results"][number] for r in results]
        item["success"] = all(p.get("success") for p in parts)
        details = item.get("result") or {}
        for count in ("element_count", "unexpected_count", "missing_count"):
            if count in details:
                details[count] = sum((p.get("result") or {}).get(count) or 0 for p in parts)
        for sample in SAMPLE_KEYS:
            if sample in details:
                samples = [v for p in parts for v in (p.get("result") or {}).get(sample) or []]
                details[sample] = samples[:SAMPLE_VALUES]
        for bulky in ("unexpected_list", "unexpected_index_list"):
            details.pop(bulky, None)
        counted = details.get("element_count") or 0
        if "unexpected_count" in details and counted:
            details["unexpected_percent"] = 100.0 * details["unexpected_count"] / counted
            nonmissing = counted - (details.get("missing_count") or 0)
            if "unexpected_percent_nonmissing" in details:
                details["unexpected_percent_nonmissing"] = (
                    100.0 * details["unexpected_count"] / nonmissing if nonmissing else 0.0)
    evaluated = len(merged.get("results", []))
    successful = sum(bool(item.get("success")) for item in merged.get("results", []))
    merged["success"] = successful == evaluated
    merged["statistics"] = {
        **merged.get("statistics", {}), "evaluated_expectations": evaluated,
        "successful_expectations": successful, "unsuccessful_expectations": evaluated - successful,
        "success_percent": 100.0 * successful / evaluated if evaluated else None}
    return merged


def read_staged(settings: Settings, source: str, interval: Interval, run_id: str) -> Staged | str:
    """This run's staged batches of ``source``, or why there are none."""
    folder = staging_dir(settings, source, interval)
    result_file = folder / RESULT_FILE
    if result_file.exists():
        summary = json.loads(result_file.read_text())
        if summary["run_id"] == run_id:
            quarantined = [pd.read_parquet(p) for p in sorted(folder.glob("quarantine-*.parquet"))]
            quarantine = (pd.concat(quarantined, ignore_index=True) if quarantined
                          else pd.DataFrame(columns=QUARANTINE_COLUMNS).astype(quarantine_types()))
            return Staged(source, summary, sorted(folder.glob("clean-*.parquet")), quarantine)
    error_file = folder / ERROR_FILE
    if error_file.exists():
        error = json.loads(error_file.read_text())
        return f"{error['error']}: {error['message']}"
    return "extract and validation did not complete in this run"
