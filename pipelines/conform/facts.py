"""Shape each source's clean rows into its fact table.

Each builder takes the validated frame and returns the fact rows plus the codes
that mapped to no service (loaded as ``unmapped``, reported, never dropped).
Identifiers are pseudonymised and free text redacted here, before anything
reaches the curated layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd

from pipelines.conform.catalog import UNMAPPED, Catalog
from pipelines.model import A11_ITEMS
from pipelines.privacy import pseudonymise, redact

REPEAT_WINDOW = timedelta(days=7)


@dataclass
class Conformed:
    table: str
    rows: pd.DataFrame
    unmapped: pd.DataFrame  # code_kind, code, rows


def _unmapped(codes: pd.Series, service_ids: pd.Series, code_kind: str) -> pd.DataFrame:
    missing = codes[service_ids == UNMAPPED].fillna("(empty)")
    counts = missing.value_counts().rename_axis("code").reset_index(name="rows")
    counts.insert(0, "code_kind", code_kind)
    return counts.astype({"code_kind": "string", "code": "string", "rows": "int64"})


def _utc_date(stamps: pd.Series) -> pd.Series:
    return stamps.dt.tz_convert("UTC").dt.date


def conform_cases(clean: pd.DataFrame, catalog: Catalog, key: str) -> Conformed:
    service = catalog.map_codes(clean["form_type"], "form_type")
    received_date = _utc_date(clean["received_at"])
    decided_date = _utc_date(clean["decided_at"])
    cycle = (pd.to_datetime(decided_date) - pd.to_datetime(received_date)).dt.days.astype("Int64")
    standard = catalog.standard_days(service)
    rows = pd.DataFrame({
        "case_key": pseudonymise(clean["case_number"], key, "case"),
        "service_id": service,
        "journey_id": catalog.journey_of(service),
        "form_type": clean["form_type"],
        "product_line": clean["product_line"],
        "office": clean["office"],
        "channel": clean["channel"],
        "customer_key": pseudonymise(clean["customer_ref"], key, "customer"),
        "customer_type": clean["customer_type"],
        "language": clean["language"],
        "region": clean["region"],
        "received_at": clean["received_at"],
        "received_date": received_date,
        "decided_at": clean["decided_at"],
        "decided_date": decided_date,
        "status": clean["status"],
        "cycle_days": cycle,
        "standard_days": standard,
        "over_standard": (cycle > standard).astype("boolean"),
        "updated_at": clean["updated_at"],
    })
    return Conformed("fact_case", rows, _unmapped(clean["form_type"], service, "form_type"))


def conform_contacts(
    clean: pd.DataFrame, catalog: Catalog, key: str,
    previous_contacts: Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame],
) -> Conformed:
    """``previous_contacts(start, end)`` gives customer_key, service_id, start_time already loaded."""
    service = catalog.map_codes(clean["queue"], "queue")
    journey = catalog.journey_of(service)
    rows = pd.DataFrame({
        "contact_key": pseudonymise(clean["contact_id"], key, "contact"),
        "contact_date": _utc_date(clean["start_time"]),
        "customer_key": pseudonymise(clean["customer_ref"], key, "customer"),
        "case_key": pseudonymise(clean["case_number"], key, "case"),
        "service_id": service,
        "journey_id": journey,
        "stage": catalog.stage_by_journey(journey, "contact_reason_stage", clean["reason"]),
        "queue": clean["queue"],
        "channel": clean["channel"],
        "reason": clean["reason"],
        "customer_type": clean["customer_type"],
        "language": clean["language"],
        "region": clean["region"],
        "start_time": clean["start_time"],
        "wait_seconds": clean["wait_seconds"],
        "handle_seconds": clean["handle_seconds"],
        "resolved_first_contact": clean["resolved_first_contact"],
        "transferred": clean["transferred"],
        "abandoned": clean["abandoned"],
    })
    rows["repeat_within_7d"] = _repeat_flags(rows, previous_contacts)
    return Conformed("fact_contact", rows, _unmapped(clean["queue"], service, "queue"))


def _repeat_flags(rows: pd.DataFrame, previous_contacts) -> pd.Series:
    """A contact repeats when the same customer contacted about the same service in the 7 days before."""
    if rows.empty:
        return pd.Series(dtype="boolean")
    first = rows["start_time"].min()
    history = previous_contacts(first - REPEAT_WINDOW, first)
    both = pd.concat([
        history[["customer_key", "service_id", "start_time"]].assign(_current=False),
        rows[["customer_key", "service_id", "start_time"]].assign(_current=True),
    ], ignore_index=False)
    both = both.reset_index(names="_index").sort_values(
        ["customer_key", "service_id", "start_time", "_current", "_index"], kind="stable")
    previous = both.groupby(["customer_key", "service_id"], sort=False)["start_time"].shift()
    repeat = previous.notna() & (both["start_time"] - previous <= REPEAT_WINDOW)
    current = both["_current"].to_numpy()
    flags = pd.Series(repeat.to_numpy()[current], index=both["_index"].to_numpy()[current])
    return flags.reindex(rows.index).astype("boolean")


def conform_survey(
    clean: pd.DataFrame, catalog: Catalog, key: str,
    lookup_cases: Callable[[list[str]], pd.DataFrame],
) -> Conformed:
    """``lookup_cases(case_keys)`` gives case_key, cycle_days, standard_days, over_standard."""
    service = catalog.map_codes(clean["form_uuid"], "survey_form")
    case_key = pseudonymise(clean["external_id"], key, "case")
    rows = pd.DataFrame({
        "response_id": clean["response_id"],
        "response_date": _utc_date(clean["created_at"]),
        "form_uuid": clean["form_uuid"],
        "service_id": service,
        "journey_id": catalog.journey_of(service),
        "stage": catalog.survey_form_stage(clean["form_uuid"]).where(service != UNMAPPED, UNMAPPED),
        "channel": clean["channel"],
        "customer_type": clean["customer_type"],
        "language": clean["language"],
        "region": clean["region"],
        "created_at": clean["created_at"],
        **{item: clean[item] for item in A11_ITEMS},
        "comment": redact(clean["comment"]),
        "case_key": case_key,
    })
    cases = lookup_cases(sorted(case_key.dropna().unique().tolist()))
    cases = cases.rename(columns={"cycle_days": "case_cycle_days", "standard_days": "case_standard_days",
                                  "over_standard": "case_over_standard"})
    rows = rows.merge(cases, on="case_key", how="left", validate="many_to_one")
    rows.insert(rows.columns.get_loc("case_key") + 1, "case_linked",
                rows["case_key"].isin(cases["case_key"]).astype("boolean"))
    return Conformed("fact_survey_response", rows,
                     _unmapped(clean["form_uuid"], service, "survey_form"))


def conform_web(clean: pd.DataFrame, catalog: Catalog, key: str) -> Conformed:
    service, stage = catalog.web_path(clean["page_path"])
    rows = pd.DataFrame({
        "date_day": _utc_date(clean["date"]),
        "page_path": clean["page_path"],
        "service_id": service,
        "journey_id": catalog.journey_of(service),
        "stage": stage,
        "sessions": clean["sessions"],
        "task_starts": clean["task_starts"],
        "task_completions": clean["task_completions"],
        "status_checks": clean["status_checks"],
    })
    return Conformed("fact_web_daily", rows, _unmapped(clean["page_path"], service, "web_path"))


def conform_feedback(clean: pd.DataFrame, catalog: Catalog, key: str) -> Conformed:
    hint = clean["service_hint"]
    service = catalog.map_codes(hint, "feedback_hint")
    rows = pd.DataFrame({
        "feedback_id": clean["feedback_id"],
        "feedback_date": _utc_date(clean["received_at"]),
        "channel": clean["channel"],
        "received_at": clean["received_at"],
        "service_id": service,
        "journey_id": catalog.journey_of(service),
        "service_hint": hint,
        "rating": clean["rating"],
        "text": redact(clean["text"]),
        "customer_type": clean["customer_type"],
        "language": clean["language"],
        "region": clean["region"],
    })
    return Conformed("fact_feedback", rows, _unmapped(hint, service, "feedback_hint"))
