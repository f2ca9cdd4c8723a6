"""The service and journey catalog (``schemas/catalog.yaml``) as lookups.

Every mapping from a source's own code to ``service_id``, ``journey_id`` and stage
goes through here, so a new code is one line of YAML, not a code change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contracts import SAFE_NAME, ContractError, read_schema_file

UNMAPPED = "unmapped"


def key_positions(values: pd.Series, keys: list[str]) -> np.ndarray:
    """Position of each value in ``keys``, -1 where the value is missing or not a key.

    One hash lookup in Arrow (C++) instead of a Python dictionary call per row, which
    is what ``Series.map(dict)`` costs on millions of rows.
    """
    column = pa.array(values.astype("string"), pa.large_string())
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    found = pc.index_in(column, value_set=pa.array(keys, pa.large_string()))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def lookup(values: pd.Series, mapping: dict[Any, Any], dtype: str = "string") -> pd.Series:
    """``mapping[value]`` per value as ``dtype``, missing where the value is missing or not a key.

    The same as ``values.map(mapping).astype(dtype)`` for a mapping keyed by text.
    """
    keys = [k for k in mapping if isinstance(k, str)]  # a number in the YAML never equals a text
    found = pd.array([mapping[k] for k in keys], dtype=dtype)
    taken = found.take(key_positions(values, keys), allow_fill=True)
    return pd.Series(taken, index=values.index)


@dataclass(frozen=True)
class Catalog:
    raw: dict[str, Any]

    @property
    def services(self) -> list[dict[str, Any]]:
        return self.raw["services"]

    @property
    def journeys(self) -> list[dict[str, Any]]:
        return self.raw["journeys"]

    def service(self, service_id: str) -> dict[str, Any]:
        return next(s for s in self.services if s["service_id"] == service_id)

    def journey(self, journey_id: str) -> dict[str, Any]:
        return next(j for j in self.journeys if j["journey_id"] == journey_id)

    def code_to_service(self, code_kind: str) -> dict[str, str]:
        """``{source code: service_id}`` for one kind of code (form_type, queue, ...)."""
        mapping: dict[str, str] = {}
        for service in self.services:
            for code in service.get("codes", {}).get(code_kind, []):
                mapping[str(code).lower()] = service["service_id"]
        return mapping

    def map_codes(self, codes: pd.Series, code_kind: str) -> pd.Series:
        """Service id per code, case-insensitive; unknown codes become ``unmapped``."""
        return lookup(codes.astype("string").str.strip().str.lower(), self.code_to_service(code_kind)
                      ).fillna(UNMAPPED)

    def journey_of(self, service_ids: pd.Series) -> pd.Series:
        mapping = {s["service_id"]: s["journey_id"] for s in self.services}
        return lookup(service_ids, mapping).fillna(UNMAPPED)

    def standard_days(self, service_ids: pd.Series) -> pd.Series:
        mapping = {s["service_id"]: s["standard_days"] for s in self.services}
        return lookup(service_ids, mapping, "Int64")

    def stage_by_journey(self, journey_ids: pd.Series, key: str, values: pd.Series) -> pd.Series:
        """Stage from a per-journey mapping such as ``contact_reason_stage``.

        A table of stages by journey and value, read at each row's two positions.
        """
        mappings = {j["journey_id"]: j.get(key, {}) for j in self.journeys}  # the last of a repeated id
        value_keys = list(dict.fromkeys(k for m in mappings.values() for k in m if isinstance(k, str)))
        table = np.full((len(mappings) + 1, len(value_keys) + 1), UNMAPPED, dtype=object)
        for row, mapping in enumerate(mappings.values()):
            for col, value in enumerate(value_keys):
                if mapping.get(value) is not None:
                    table[row, col] = mapping[value]
        row = key_positions(journey_ids, list(mappings))
        col = key_positions(values, value_keys)
        row[row < 0], col[col < 0] = len(mappings), len(value_keys)  # the last row and column: unmapped
        stages = pd.array(table.ravel(), dtype="string")
        return pd.Series(stages.take(row * table.shape[1] + col), index=values.index)

    def journey_stage(self, journey_ids: pd.Series, key: str) -> pd.Series:
        """A single stage per journey, such as ``case_decided_stage``."""
        mapping = {j["journey_id"]: j[key] for j in self.journeys}
        return journey_ids.map(mapping).fillna(UNMAPPED).astype("string")

    def web_path(self, paths: pd.Series) -> tuple[pd.Series, pd.Series]:
        """(service_id, stage) from a page path: service prefix + stage suffix."""
        prefixes = self.code_to_service("web_path")
        suffixes = {k.lower(): v for k, v in self.raw.get("web_path_stage", {}).items()}
        service = pd.Series(UNMAPPED, index=paths.index, dtype="string")
        stage = pd.Series(UNMAPPED, index=paths.index, dtype="string")
        lowered = paths.astype("string").str.lower()
        for prefix, service_id in prefixes.items():
            mask = lowered.str.startswith(prefix).fillna(False)
            service[mask] = service_id
            rest = lowered[mask].str.slice(len(prefix))
            stage[mask] = rest.map(suffixes).fillna(UNMAPPED)
        return service, stage

    def survey_form_stage(self, forms: pd.Series) -> pd.Series:
        stages = {str(k).lower(): v["stage"] for k, v in self.raw.get("survey_forms", {}).items()}
        return lookup(forms.astype("string").str.lower(), stages).fillna(UNMAPPED)

    def survey_form_ids(self) -> list[str]:
        return [code for s in self.services for code in s.get("codes", {}).get("survey_form", [])]


# Survey form ids go into the survey API's URL path (/forms/<id>/responses).
SURVEY_FORM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _check(raw: dict[str, Any], path: Path) -> None:
    for kind, items, key in (("service", raw.get("services", []), "service_id"),
                             ("journey", raw.get("journeys", []), "journey_id"),
                             ("channel", raw.get("channels", []), "channel_id")):
        for item in items:
            if not SAFE_NAME.match(str(item.get(key, ""))):
                raise ContractError(f"{path}: {kind} id {item.get(key)!r} must match {SAFE_NAME.pattern}")
    forms = [*(raw.get("survey_forms") or {}),
             *(f for s in raw.get("services", []) for f in (s.get("codes") or {}).get("survey_form", []))]
    for form in forms:
        if not SURVEY_FORM_ID.match(str(form)):
            raise ContractError(f"{path}: survey form {form!r} must match {SURVEY_FORM_ID.pattern}")
    journeys = {j["journey_id"]: set(j["stages"]) for j in raw.get("journeys", [])}
    for service in raw.get("services", []):
        if service.get("journey_id") not in journeys:
            raise ContractError(f"{path}: service {service['service_id']} names unknown journey "
                                f"{service.get('journey_id')!r}")
    for journey in raw.get("journeys", []):
        stages = set(journey["stages"])
        named = [journey.get("case_received_stage"), journey.get("case_decided_stage"),
                 *journey.get("contact_reason_stage", {}).values()]
        unknown = [s for s in named if s not in stages]
        if unknown:
            raise ContractError(f"{path}: journey {journey['journey_id']} maps to unknown stages {unknown}")


@cache
def load_catalog(schemas_dir: Path) -> Catalog:
    path, raw = read_schema_file(schemas_dir, "catalog.yaml", "service and journey catalog")
    _check(raw, path)
    return Catalog(raw)
