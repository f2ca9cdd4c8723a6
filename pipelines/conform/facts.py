"""Shape each source's clean rows into its fact table.

Each builder takes the validated frame and returns the fact rows plus the codes
that mapped to no service (loaded as ``unmapped``, reported, never dropped).
Identifiers are pseudonymised and free text redacted here, before anything
reaches the curated layer: each builder first applies the privacy policy, which
protects the columns the source's contract flags ``pii`` (``pipelines.privacy``).
``key`` is that policy, or just the pseudonymisation key (then the repo's schemas).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.conform.catalog import UNMAPPED, Catalog, key_positions
from pipelines.insight.text import ThemeTaxonomy, text_signals
from pipelines.model import A11_ITEMS
from pipelines.privacy import PrivacyPolicy, policy_for


@dataclass
class Conformed:
    table: str
    rows: pd.DataFrame
    unmapped: pd.DataFrame  # code_kind, code, rows
    redactions: pd.DataFrame | None = None  # privacy.REDACTION_COLUMNS


def _unmapped(codes: pd.Series, service_ids: pd.Series, code_kind: str) -> pd.DataFrame:
    missing = codes[service_ids == UNMAPPED].fillna("(empty)")
    counts = missing.value_counts().rename_axis("code").reset_index(name="rows")
    counts.insert(0, "code_kind", code_kind)
    return counts.astype({"code_kind": "string", "code": "string", "rows": "int64"})


def _utc_date(stamps: pd.Series) -> pd.Series:
    """The UTC calendar day of each timestamp, as an Arrow date column (no Python date per row)."""
    utc = pa.array(stamps.dt.tz_convert("UTC"))
    return pd.Series(pd.arrays.ArrowExtensionArray(utc.cast(pa.date32())), index=stamps.index)


def _days_between(first: pd.Series, last: pd.Series) -> pd.Series:
    """Whole days from one date column to another (missing where either is)."""
    days = pc.subtract(pa.array(last).cast(pa.int32()), pa.array(first).cast(pa.int32()))
    return pd.Series(days.to_pandas(types_mapper={pa.int32(): pd.Int64Dtype()}.get), index=first.index)


def conform_cases(clean: pd.DataFrame, catalog: Catalog, key: str | PrivacyPolicy) -> Conformed:
    protected = policy_for(key).protect("case_db", clean)
    clean = protected.frame
    service = catalog.map_codes(clean["form_type"], "form_type")
    received_date = _utc_date(clean["received_at"])
    decided_date = _utc_date(clean["decided_at"])
    cycle = _days_between(received_date, decided_date)
    standard = catalog.standard_days(service)
    rows = pd.DataFrame({
        "case_key": clean["case_number"],
        "service_id": service,
        "journey_id": catalog.journey_of(service),
        "form_type": clean["form_type"],
        "product_line": clean["product_line"],
        "office": clean["office"],
        "channel": clean["channel"],
        "customer_key": clean["customer_ref"],
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
    return Conformed("fact_case", rows, _unmapped(clean["form_type"], service, "form_type"),
                     protected.redactions)


def conform_contacts(clean: pd.DataFrame, catalog: Catalog, key: str | PrivacyPolicy) -> Conformed:
    """The repeat flag is left empty: the warehouse sets it on insert (``conform.repeats``)."""
    protected = policy_for(key).protect("contact_center", clean)
    clean = protected.frame
    service = catalog.map_codes(clean["queue"], "queue")
    journey = catalog.journey_of(service)
    rows = pd.DataFrame({
        "contact_key": clean["contact_id"],
        "contact_date": _utc_date(clean["start_time"]),
        "customer_key": clean["customer_ref"],
        "case_key": clean["case_number"],
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
    rows["repeat_within_7d"] = pd.Series(pd.NA, index=rows.index, dtype="boolean")
    rows["notes"] = clean["notes"] if "notes" in clean else pd.Series(pd.NA, index=rows.index, dtype="string")
    return Conformed("fact_contact", rows, _unmapped(clean["queue"], service, "queue"), protected.redactions)


def conform_survey(
    clean: pd.DataFrame, catalog: Catalog, key: str | PrivacyPolicy,
    lookup_cases: Callable[[list[str]], pd.DataFrame], taxonomy: ThemeTaxonomy | None = None,
) -> Conformed:
    """``lookup_cases(case_keys)`` gives case_key, cycle_days, standard_days, over_standard.
    Sentiment and themes (``taxonomy``, default the repo's) are read from the redacted comment."""
    protected = policy_for(key).protect("survey", clean)
    clean = protected.frame
    signals = text_signals(clean["comment"], taxonomy)
    service = catalog.map_codes(clean["form_uuid"], "survey_form")
    case_key = clean["external_id"]
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
        "comment": clean["comment"],
        "comment_sentiment": signals["sentiment"],
        "comment_themes": signals["themes"],
        "case_key": case_key,
    })
    known = pc.unique(pa.array(case_key, pa.large_string())).drop_null()
    cases = lookup_cases(known.take(pc.sort_indices(known)).to_pylist())
    cases = cases.rename(columns={"cycle_days": "case_cycle_days", "standard_days": "case_standard_days",
                                  "over_standard": "case_over_standard"})
    rows = _with_cases(rows, cases)
    return Conformed("fact_survey_response", rows,
                     _unmapped(clean["form_uuid"], service, "survey_form"), protected.redactions)


def _with_cases(rows: pd.DataFrame, cases: pd.DataFrame) -> pd.DataFrame:
    """Each response with its case's columns (missing if not found) and ``case_linked`` after ``case_key``.

    A left join on ``case_key`` through the position of each key among the cases (one
    Arrow hash lookup) rather than a pandas merge, which factorizes both sides.
    """
    if not cases["case_key"].is_unique:
        raise pd.errors.MergeError("lookup_cases gave a case key twice; each response needs one case")
    found = key_positions(rows["case_key"], cases["case_key"].tolist())
    linked = pd.Series(found >= 0, index=rows.index, dtype="boolean")
    columns = {name: pd.Series(cases[name].array.take(found, allow_fill=True), index=rows.index)
               for name in cases.columns if name != "case_key"}
    rows = rows.assign(**columns)
    rows.insert(rows.columns.get_loc("case_key") + 1, "case_linked", linked)
    return rows


def conform_web(clean: pd.DataFrame, catalog: Catalog, key: str | PrivacyPolicy) -> Conformed:
    protected = policy_for(key).protect("web_analytics", clean)
    clean = protected.frame
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
    return Conformed("fact_web_daily", rows, _unmapped(clean["page_path"], service, "web_path"),
                     protected.redactions)


def conform_feedback(clean: pd.DataFrame, catalog: Catalog, key: str | PrivacyPolicy,
                     taxonomy: ThemeTaxonomy | None = None) -> Conformed:
    """Sentiment and themes (``taxonomy``, default the repo's) are read from the redacted text."""
    protected = policy_for(key).protect("feedback", clean)
    clean = protected.frame
    signals = text_signals(clean["text"], taxonomy)
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
        "text": clean["text"],
        "sentiment": signals["sentiment"],
        "themes": signals["themes"],
        "customer_type": clean["customer_type"],
        "language": clean["language"],
        "region": clean["region"],
    })
    return Conformed("fact_feedback", rows, _unmapped(hint, service, "feedback_hint"), protected.redactions)
