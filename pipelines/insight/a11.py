"""OMB Circular A-11 Section 280 quarterly export for Touchpoints, one fiscal quarter at a time.

Writes three CSV files (columns exactly as in GSA Touchpoints' data model) for the HISP
services of the catalog (``hisp: true``), from the warehouse:

- ``cx_collection_details.csv``: one row per service, journey stage and channel with the
  quarter's volumes (``mart_a11_collection_detail``): customers (distinct customers whose
  case was decided), offered a survey (cases decided: every decision sends one survey
  invitation), respondents (responses submitted in the quarter). ``channel`` is the
  channel of the transaction surveyed, in Touchpoints' vocabulary (``schemas/a11.yaml``).
- ``cx_responses.csv`` ("A-11 v2" upload): one row per response. ``question_1`` is the
  trust item on its 1-5 scale. Each driver item answered on 1-5 becomes a pair of flags:
  4-5 is ``positive_<item>`` "1" and ``negative_<item>`` "0"; 1-2 the reverse; 3 (neutral)
  and an unanswered item are "0" and "0" (offered, not chosen). ``positive_other`` and
  ``negative_other`` are "null": the survey offers no "other". ``question_4`` is the
  redacted comment; ``external_id`` the survey platform's response id (never the case
  number). ``cx_collection_detail_id`` (and ``..._upload_id``) is the 1-based row of the
  response's detail in ``cx_collection_details.csv``; ``job_id`` names the export.
- ``omb_cx_reporting_collections.csv`` (the older format): the same details with the count
  of answers at each point 1-5 per question slot (``question_items`` in ``a11.yaml``).

Identifiers Touchpoints assigns (collection and detail ids) are numbered locally: they
link the files to each other; Touchpoints assigns its own on import. Before writing, the
quarter's two A-11 marts are recomputed from the facts, so the files always agree with
the facts as they stand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pipelines import warehouse
from pipelines.contracts import ContractError, read_schema_file
from pipelines.insight.marts import PERIOD_MARTS, rebuild_period
from pipelines.insight.periods import fiscal_quarter_bounds
from pipelines.insight.tables import mart_a11_collection_detail, mart_a11_likert
from pipelines.model import A11_ITEMS, dim_service, fact_survey_response
from pipelines.settings import Settings

DRIVER_ITEMS = ("effectiveness", "ease", "efficiency", "transparency", "humanity", "employee")

CX_RESPONSES_COLUMNS = (
    "created_at", "cx_collection_detail_id", "cx_collection_detail_upload_id", "external_id", "job_id",
    "negative_ease", "negative_effectiveness", "negative_efficiency", "negative_employee",
    "negative_humanity", "negative_other", "negative_transparency",
    "positive_ease", "positive_effectiveness", "positive_efficiency", "positive_employee",
    "positive_humanity", "positive_other", "positive_transparency",
    "question_1", "question_4", "updated_at",
)
CX_COLLECTION_DETAILS_COLUMNS = (
    "channel", "created_at", "cx_collection_id", "omb_control_number", "service_id", "service_name",
    "service_provider_id", "service_provider_name", "service_stage_id", "service_stage_name",
    "survey_title", "survey_type", "trust_question_text", "updated_at", "volume_of_customers",
    "volume_of_customers_provided_survey_opportunity", "volume_of_respondents",
)
QUESTION_SLOTS = tuple(f"q{i}" for i in range(1, 12))
OMB_CX_REPORTING_COLUMNS = (
    "id", "collection_id", "collection_year", "collection_quarter", "collection_name",
    "collection_organization_id", "collection_organization_name", "collection_organization_abbreviation",
    "service_provider_id", "service_provider_name", "service_provider_organization_id",
    "service_provider_organization_name", "service_provider_organization_abbreviation",
    "service_provided", "service_id", "service_name", "transaction_point", "channel",
    "volume_of_customers", "volume_of_customers_provided_survey_opportunity", "volume_of_respondents",
    "omb_control_number", "federal_register_url",
    *[f"{slot}_{part}" for slot in QUESTION_SLOTS for part in ("text", "1", "2", "3", "4", "5")],
    "created_at", "updated_at", "operational_metrics",
)
FILES = ("cx_collection_details.csv", "cx_responses.csv", "omb_cx_reporting_collections.csv")


@dataclass(frozen=True)
class A11Config:
    raw: dict[str, Any]

    def channel(self, channel: str) -> str:
        mapping = self.raw["channels"]
        if channel not in mapping:
            raise ContractError(f"schemas/a11.yaml: channel {channel!r} has no Touchpoints channel "
                                f"under 'channels' (known: {sorted(mapping)})")
        return mapping[channel]

    def touchpoints_service_id(self, service_id: str) -> int:
        ids = self.raw.get("touchpoints_service_ids") or {}
        if service_id not in ids:
            raise ContractError(f"schemas/a11.yaml: HISP service {service_id!r} has no "
                                "touchpoints_service_ids entry")
        return int(ids[service_id])


@cache
def load_a11_config(schemas_dir: Path) -> A11Config:
    path, raw = read_schema_file(schemas_dir, "a11.yaml", "A-11 reporting configuration")
    for key in ("service_provider", "organization", "channels", "question_items", "question_texts",
                "omb_control_number", "survey_type", "survey_title", "trust_question_text"):
        if key not in raw:
            raise ContractError(f"{path}: missing {key!r}")
    unknown = {slot: item for slot, item in raw["question_items"].items()
               if slot not in QUESTION_SLOTS or item not in A11_ITEMS}
    if unknown:
        raise ContractError(f"{path}: question_items must map q1..q11 to A-11 items {A11_ITEMS}: {unknown}")
    return A11Config(raw)


@dataclass(frozen=True)
class A11Export:
    folder: Path
    files: dict[str, Path]
    details: int
    responses: int


def export_folder(settings: Settings, fiscal_year: int, quarter: int) -> Path:
    return settings.home / "exports" / "a11" / f"FY{fiscal_year}_Q{quarter}"


def _flags(scores: pd.Series) -> tuple[pd.Series, pd.Series]:
    positive = scores.ge(4).fillna(False).map({True: "1", False: "0"})
    negative = scores.le(2).fillna(False).map({True: "1", False: "0"})
    return positive.astype(object), negative.astype(object)


def _iso(stamps: pd.Series) -> pd.Series:
    return pd.to_datetime(stamps, utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def export_quarter(settings: Settings, fiscal_year: int, quarter: int, folder: Path | None = None,
                   generated_at: datetime | None = None) -> A11Export:
    """Recompute the quarter's A-11 marts and write the three files; returns what was written."""
    config = load_a11_config(Path(settings.schemas_dir))
    bounds = fiscal_quarter_bounds(fiscal_year, quarter)
    stamp = (generated_at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    engine = warehouse.engine_for(settings.warehouse_url)
    with engine.begin() as conn:
        for name in ("mart_a11_collection_detail", "mart_a11_likert"):
            rebuild_period(conn, settings, PERIOD_MARTS[name], bounds)
        details = _details(conn, bounds.start)
        likert = _likert(conn, bounds.start)
        responses = _responses(conn, bounds.start, bounds.end)
    folder = Path(folder or export_folder(settings, fiscal_year, quarter))
    folder.mkdir(parents=True, exist_ok=True)
    job_id = f"xoflow-FY{fiscal_year}-Q{quarter}"

    details = details.sort_values(["service_id", "stage", "channel"], kind="stable").reset_index(drop=True)
    details["detail_id"] = range(1, len(details) + 1)
    collections = {s: i for i, s in enumerate(sorted(details["service_id"].unique()), start=1)}
    provider = config.raw["service_provider"]
    out_details = pd.DataFrame({
        "channel": details["channel"].map(config.channel),
        "created_at": stamp,
        "cx_collection_id": details["service_id"].map(collections),
        "omb_control_number": config.raw["omb_control_number"],
        "service_id": details["service_id"].map(config.touchpoints_service_id),
        "service_name": details["service_name"],
        "service_provider_id": provider["id"],
        "service_provider_name": provider["name"],
        "service_stage_id": None,
        "service_stage_name": details["stage"],
        "survey_title": config.raw["survey_title"],
        "survey_type": config.raw["survey_type"],
        "trust_question_text": config.raw["trust_question_text"],
        "updated_at": stamp,
        "volume_of_customers": details["volume_of_customers"],
        "volume_of_customers_provided_survey_opportunity": details["volume_offered"],
        "volume_of_respondents": details["volume_of_respondents"],
    }, columns=list(CX_COLLECTION_DETAILS_COLUMNS))

    detail_of = {(r.service_id, r.stage, r.channel): r.detail_id for r in details.itertuples()}
    keys = zip(responses["service_id"], responses["stage"], responses["channel"], strict=True)
    detail_ids = pd.Series([detail_of[k] for k in keys], index=responses.index, dtype="Int64")
    flags = {}
    for item in DRIVER_ITEMS:
        flags[f"positive_{item}"], flags[f"negative_{item}"] = _flags(responses[item])
    out_responses = pd.DataFrame({
        "created_at": _iso(responses["created_at"]),
        "cx_collection_detail_id": detail_ids,
        "cx_collection_detail_upload_id": detail_ids,
        "external_id": responses["response_id"],
        "job_id": job_id,
        **flags,
        "positive_other": "null",
        "negative_other": "null",
        "question_1": responses["trust"].astype("Int64").astype("string"),
        "question_4": responses["comment"],
        "updated_at": _iso(responses["created_at"]),
    }, index=responses.index)[list(CX_RESPONSES_COLUMNS)]

    out_omb = _omb_rows(config, details, likert, collections, fiscal_year, quarter, stamp)
    files = {}
    for name, frame in zip(FILES, (out_details, out_responses, out_omb), strict=True):
        files[name] = folder / name
        tmp = files[name].with_name(f".{name}.tmp")
        frame.to_csv(tmp, index=False, lineterminator="\n")
        tmp.replace(files[name])
    return A11Export(folder, files, len(out_details), len(out_responses))


def _hisp_services() -> sa.Select:
    return sa.select(dim_service.c.service_id, dim_service.c.service_name).where(dim_service.c.hisp)


def _details(conn: sa.Connection, period_start) -> pd.DataFrame:
    m = mart_a11_collection_detail
    hisp = _hisp_services().subquery()
    query = (sa.select(m.c.service_id, hisp.c.service_name, m.c.stage, m.c.channel, m.c.volume_of_customers,
                       m.c.volume_offered, m.c.volume_of_respondents)
             .join(hisp, hisp.c.service_id == m.c.service_id)
             .where(m.c.period_start == period_start, m.c.segment_kind == "all"))
    return pd.DataFrame(conn.execute(query).all(), columns=[
        "service_id", "service_name", "stage", "channel", "volume_of_customers", "volume_offered",
        "volume_of_respondents"])


def _likert(conn: sa.Connection, period_start) -> pd.DataFrame:
    m = mart_a11_likert
    columns = ["service_id", "stage", "channel", "item", *[f"count_{p}" for p in range(1, 6)]]
    query = sa.select(*[m.c[c] for c in columns]).where(m.c.period_start == period_start,
                                                         m.c.segment_kind == "all")
    return pd.DataFrame(conn.execute(query).all(), columns=columns)


def _responses(conn: sa.Connection, start, end) -> pd.DataFrame:
    r = fact_survey_response
    hisp = _hisp_services().subquery()
    columns = ["response_id", "service_id", "stage", "channel", "created_at", *A11_ITEMS, "comment"]
    query = (sa.select(*[r.c[c] for c in columns]).join(hisp, hisp.c.service_id == r.c.service_id)
             .where(r.c.response_date >= start, r.c.response_date < end)
             .order_by(r.c.created_at, r.c.response_id))
    frame = pd.DataFrame(conn.execute(query).all(), columns=columns)
    frame["channel"] = frame["channel"].fillna("unknown")
    for item in A11_ITEMS:
        frame[item] = frame[item].astype("Int64")
    return frame


def _omb_rows(config: A11Config, details: pd.DataFrame, likert: pd.DataFrame, collections: dict,
              fiscal_year: int, quarter: int, stamp: str) -> pd.DataFrame:
    provider, organization = config.raw["service_provider"], config.raw["organization"]
    counts = {(r.service_id, r.stage, r.channel, r.item): r for r in likert.itertuples()}
    rows = []
    for d in details.itertuples():
        row: dict[str, Any] = {
            "id": d.detail_id, "collection_id": collections[d.service_id],
            "collection_year": fiscal_year, "collection_quarter": quarter,
            "collection_name": config.raw.get("collection_name", "CX Quarterly Reporting"),
            "collection_organization_id": organization["id"],
            "collection_organization_name": organization["name"],
            "collection_organization_abbreviation": organization.get("abbreviation"),
            "service_provider_id": provider["id"], "service_provider_name": provider["name"],
            "service_provider_organization_id": organization["id"],
            "service_provider_organization_name": organization["name"],
            "service_provider_organization_abbreviation": organization.get("abbreviation"),
            "service_provided": d.service_name,
            "service_id": config.touchpoints_service_id(d.service_id), "service_name": d.service_name,
            "transaction_point": d.stage, "channel": config.channel(d.channel),
            "volume_of_customers": d.volume_of_customers,
            "volume_of_customers_provided_survey_opportunity": d.volume_offered,
            "volume_of_respondents": d.volume_of_respondents,
            "omb_control_number": config.raw["omb_control_number"],
            "federal_register_url": config.raw.get("federal_register_url"),
            "created_at": stamp, "updated_at": stamp,
            "operational_metrics": None,
        }
        for slot in QUESTION_SLOTS:
            item = config.raw["question_items"].get(slot)
            row[f"{slot}_text"] = config.raw["question_texts"].get(item) if item else None
            found = counts.get((d.service_id, d.stage, d.channel, item)) if item else None
            for point in range(1, 6):
                row[f"{slot}_{point}"] = int(getattr(found, f"count_{point}")) if found is not None else (
                    0 if item else None)
        rows.append(row)
    return pd.DataFrame(rows, columns=list(OMB_CX_REPORTING_COLUMNS)).astype(
        {f"{slot}_{p}": "Int64" for slot in QUESTION_SLOTS for p in range(1, 6)})
