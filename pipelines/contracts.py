"""Source contracts: the YAML files in ``schemas/sources`` as typed objects.

A contract is the single source of truth for a source's columns, types, checks and
keys; validation, conform and warehouse comments all read it from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

ColumnType = Literal["string", "integer", "float", "boolean", "timestamp", "date"]
COLUMN_TYPES: tuple[str, ...] = ("string", "integer", "float", "boolean", "timestamp", "date")
SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class ContractError(ValueError):
    """A source broke its contract in a way that stops the whole source (not one row)."""


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    description: str = ""
    required: bool = True
    nullable: bool = True
    unique: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    regex: str | None = None
    pii: str | None = None
    identifies: str | None = None  # pii: identifier: the domain of its pseudonym (case, customer...)
    maps: str | None = None


@dataclass(frozen=True)
class Contract:
    source: str
    kind: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    event_time: str
    location: dict[str, Any] = field(default_factory=dict)
    rename: dict[str, str] = field(default_factory=dict)
    watermark: str | None = None
    # records per batch from extract to load, where the job's default (sources.BATCH_ROWS)
    # would hold too much of a wide record at once
    batch_rows: int | None = None
    path: Path | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.source}: contract has no column {name!r}")


def _safe_name(name: str, what: str, path: Path) -> str:
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise ContractError(f"{path}: {what} {name!r} must match {SAFE_NAME.pattern}")
    return name


# ---------------------------------------------------------------- names that become paths or SQL

PII_FLAGS = ("identifier", "free_text")
# A source's own column name (before ``rename``): printable, no quotes, separators or controls.
SOURCE_COLUMN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ .-]{0,127}$")
# One plain folder name below the landing folder, and a file name with exactly one ``{date}``.
SAFE_FOLDER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
SAFE_FILE_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\{date\}[A-Za-z0-9_.-]*$")
LOCATION_NAMES = {"table": SAFE_NAME, "schema": SAFE_NAME, "folder": SAFE_FOLDER,
                  "file_pattern": SAFE_FILE_PATTERN}
DERIVED_TABLE_PREFIXES = ("quarantine_",)  # lake tables named after the source


def _check_location(location: dict[str, Any], path: Path) -> dict[str, Any]:
    """Location values that become file paths or SQL identifiers: plain names only.

    ``folder`` is one folder name under the landing folder (no ``/``, no ``..``);
    ``file_pattern`` a file name whose only placeholder is ``{date}`` (``str.format``
    would otherwise reach attributes: ``{date.__class__}``).
    """
    for key, pattern in LOCATION_NAMES.items():
        if key not in location:
            continue
        value = location[key]
        if not isinstance(value, str) or not pattern.match(value) or ".." in value:
            raise ContractError(f"{path}: location {key} {value!r} must match {pattern.pattern} "
                                "(a plain name: no path separators, no '..')")
    return location


def _check_pii(col: Column, path: Path) -> None:
    if col.pii is not None and col.pii not in PII_FLAGS:
        raise ContractError(f"{path}: column {col.name!r} has pii {col.pii!r}; use one of {PII_FLAGS}")
    if col.pii == "identifier":
        if col.identifies is None:
            raise ContractError(f"{path}: identifier column {col.name!r} needs identifies: <domain> "
                                "(case, customer, contact...): the same domain joins across sources")
        _safe_name(col.identifies, f"column {col.name!r} identifies", path)
    elif col.identifies is not None:
        raise ContractError(f"{path}: column {col.name!r} sets identifies without pii: identifier")
    if col.pii == "free_text" and col.type != "string":
        raise ContractError(f"{path}: free-text column {col.name!r} must have type string")


def parse_contract(raw: dict[str, Any], path: Path) -> Contract:
    source = _safe_name(raw.get("source", ""), "source name", path)
    columns = []
    for name, spec in (raw.get("columns") or {}).items():
        spec = dict(spec or {})
        col_type = spec.pop("type", None)
        if col_type not in COLUMN_TYPES:
            raise ContractError(f"{path}: column {name!r} has type {col_type!r}; use one of {COLUMN_TYPES}")
        allowed = spec.pop("allowed", None)
        unknown = set(spec) - {f for f in Column.__dataclass_fields__ if f not in {"name", "type"}}
        if unknown:
            raise ContractError(f"{path}: column {name!r} has unknown settings {sorted(unknown)}")
        columns.append(
            Column(
                name=_safe_name(name, "column", path),
                type=col_type,
                allowed=tuple(str(a) for a in allowed) if allowed is not None else None,
                **spec,
            )
        )
        _check_pii(columns[-1], path)
    for prefix in DERIVED_TABLE_PREFIXES:
        _safe_name(prefix + source, "derived table name", path)
    names = {c.name for c in columns}
    key = tuple(raw.get("key") or ())
    event_time = raw.get("event_time", "")
    for needed in (*key, event_time):
        if needed not in names:
            raise ContractError(f"{path}: key/event_time column {needed!r} is not among the columns")
    rename = {str(k): _safe_name(v, "rename target", path) for k, v in (raw.get("rename") or {}).items()}
    for original in rename:
        if not SOURCE_COLUMN.match(original):
            raise ContractError(
                f"{path}: rename source column {original!r} must match {SOURCE_COLUMN.pattern}")
    watermark = raw.get("watermark")
    if watermark is not None and watermark not in names:
        raise ContractError(f"{path}: watermark column {watermark!r} is not among the columns")
    batch_rows = raw.get("batch_rows")
    if batch_rows is not None and (isinstance(batch_rows, bool) or not isinstance(batch_rows, int)
                                   or batch_rows < 1):
        raise ContractError(f"{path}: batch_rows must be a whole number of records >= 1, not {batch_rows!r}")
    return Contract(
        source=source,
        kind=raw.get("kind", ""),
        description=" ".join(str(raw.get("description", "")).split()),
        columns=tuple(columns),
        key=key,
        event_time=event_time,
        location=_check_location(dict(raw.get("location") or {}), path),
        rename=rename,
        watermark=watermark,
        batch_rows=batch_rows,
        path=path,
    )


@cache
def load_contracts(schemas_dir: Path) -> dict[str, Contract]:
    """All contracts under ``schemas_dir/sources``, by source name."""
    contracts = {}
    for path in sorted((Path(schemas_dir) / "sources").glob("*.yaml")):
        contract = parse_contract(read_yaml_mapping(path, "source contract"), path)
        contracts[contract.source] = contract
    return contracts


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """The mapping of settings in the YAML file ``path`` (``{}`` when empty).

    A file that is missing, unreadable, not YAML, or that holds a list or a scalar stops the
    job with an error naming it and ``what`` it should hold: the parser's own message names
    no file, and a list read as settings failed later with a bare ``AttributeError``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContractError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: cannot read the {what}: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContractError(f"{path}: the {what} is not valid YAML{where}: {problem}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ContractError(f"{path}: the {what} must be a mapping of settings at the top level, "
                            f"not a {type(raw).__name__}")
    return raw


def read_schema_file(schemas_dir: Path, name: str, what: str) -> tuple[Path, dict[str, Any]]:
    """``schemas_dir/name`` and its settings (``read_yaml_mapping``)."""
    path = Path(schemas_dir) / name
    return path, read_yaml_mapping(path, what)


def load_contract(schemas_dir: Path, source: str) -> Contract:
    contracts = load_contracts(Path(schemas_dir))
    if source not in contracts:
        raise ContractError(f"no contract for source {source!r} in {schemas_dir}/sources")
    return contracts[source]
