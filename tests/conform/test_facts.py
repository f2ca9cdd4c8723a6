"""Conform: codes map through the catalog, unmapped rows are kept, identifiers never leak."""

from datetime import date

import pandas as pd
import pytest

from pipelines.conform import facts
from pipelines.conform.catalog import UNMAPPED, load_catalog
from pipelines.model import A11_ITEMS
from pipelines.privacy import pseudonymise
from pipelines.settings import REPO_ROOT

KEY = "test-key"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(REPO_ROOT / "schemas")


def stamps(*texts):
    return pd.to_datetime(pd.Series(texts), utc=True).astype("datetime64[us, UTC]")


def contacts(customers, queues, times, reasons=None):
    n = len(customers)
    return pd.DataFrame({
        "contact_id": [f"K{i}" for i in range(n)], "customer_ref": customers,
        "case_number": [None] * n, "queue": queues, "channel": ["phone"] * n,
        "reason": reasons or ["status_inquiry"] * n, "start_time": stamps(*times),
        "wait_seconds": [1] * n, "handle_seconds": [1] * n, "resolved_first_contact": [True] * n,
        "transferred": [False] * n, "abandoned": [False] * n, "customer_type": ["individual"] * n,
        "language": ["en"] * n, "region": ["west"] * n,
    })


def test_unknown_queue_is_loaded_as_unmapped_and_reported(catalog):
    clean = contacts(["C1", "C2", "C3"], ["NATZ", "LEGACY", "legacy"],
                     ["2026-03-01T09:00Z", "2026-03-01T10:00Z", "2026-03-01T11:00Z"])
    out = facts.conform_contacts(clean, catalog, KEY)
    assert list(out.rows["service_id"]) == ["naturalization", UNMAPPED, UNMAPPED]
    assert out.unmapped.to_dict("records") == [
        {"code_kind": "queue", "code": "LEGACY", "rows": 1},
        {"code_kind": "queue", "code": "legacy", "rows": 1}]


def test_contact_reason_maps_to_the_stage_of_the_services_journey(catalog):
    clean = contacts(["C1", "C2"], ["NATZ", "CARD"], ["2026-03-01T09:00Z"] * 2, ["decision", "decision"])
    out = facts.conform_contacts(clean, catalog, KEY)
    assert list(out.rows["stage"]) == ["decision", "receive"]


def test_identifiers_are_pseudonymised_consistently_across_sources(catalog):
    clean = contacts(["C00000001"], ["NATZ"], ["2026-03-01T09:00Z"])
    clean["case_number"] = ["FBA0000000001"]
    out = facts.conform_contacts(clean, catalog, KEY)
    other = facts.conform_contacts(clean, catalog, "another-key")
    row = out.rows.iloc[0]
    assert "C00000001" not in row.to_string() and "FBA0000000001" not in row.to_string()
    assert row["case_key"] != other.rows.iloc[0]["case_key"]
    assert row["case_key"] == pseudonymise(pd.Series(["FBA0000000001"]), KEY, "case").iloc[0]


def survey(case_numbers, forms):
    n = len(case_numbers)
    return pd.DataFrame({
        "response_id": [f"R{i}" for i in range(n)], "created_at": stamps(*["2026-03-01T23:30-05:00"] * n),
        "form_uuid": forms, "channel": ["online"] * n, "customer_type": ["individual"] * n,
        "language": ["en"] * n, "region": ["west"] * n,
        **{item: pd.array([4] * n, dtype="Int64") for item in A11_ITEMS},
        "comment": ["Waited too long, call me at 202-555-0143.", None] * (n // 2) + [None] * (n % 2),
        "external_id": case_numbers,
    })


def test_survey_responses_carry_their_cases_outcome_where_the_case_is_known(catalog):
    clean = survey(["FBA1", "FBA2", "FBA1", "FBA9"], ["a1b2c3d4", "A1B2C3D4", "unknown", "d4e5f6a7"])
    key = lambda number: pseudonymise(pd.Series([number]), KEY, "case").iloc[0]  # noqa: E731
    asked = []

    def lookup_cases(case_keys):
        asked.append(case_keys)
        return pd.DataFrame({"case_key": pd.Series([key("FBA2"), key("FBA1")], dtype="string"),
                             "cycle_days": pd.array([30, 150], dtype="Int64"),
                             "standard_days": pd.array([120, 120], dtype="Int64"),
                             "over_standard": pd.array([False, True], dtype="boolean")})

    rows = facts.conform_survey(clean, catalog, KEY, lookup_cases).rows
    assert asked == [sorted({key("FBA1"), key("FBA2"), key("FBA9")})]
    assert list(rows.columns[-5:]) == ["case_key", "case_linked", "case_cycle_days", "case_standard_days",
                                       "case_over_standard"]
    assert rows["case_linked"].tolist() == [True, True, True, False]
    assert rows["case_cycle_days"].tolist() == [150, 30, 150, pd.NA]
    assert rows["case_over_standard"].tolist() == [True, False, True, pd.NA]
    assert rows["service_id"].tolist() == ["naturalization", "naturalization", UNMAPPED, "card_renewal"]
    assert rows["stage"].tolist() == ["decision", "decision", UNMAPPED, "receive"]
    assert rows["response_date"].tolist() == [date(2026, 3, 2)] * 4  # the UTC day
    assert rows["comment"].iloc[0] == "Waited too long, call me at [PHONE]."


def test_case_cycle_days_count_utc_days_from_receipt_to_decision(catalog):
    clean = pd.DataFrame({
        "case_number": ["FBA1", "FBA2"], "form_type": ["N-400", "X-1"], "product_line": ["initial"] * 2,
        "office": ["o1"] * 2, "channel": ["online"] * 2, "customer_ref": ["C1", "C2"],
        "customer_type": ["individual"] * 2, "language": ["en"] * 2, "region": ["west"] * 2,
        "received_at": stamps("2026-01-01T23:30-05:00", "2026-01-01T10:00Z"),
        "decided_at": stamps("2026-06-01T01:00Z", None), "status": ["approved", "received"],
        "updated_at": stamps("2026-06-01T01:00Z", "2026-01-01T10:00Z"),
    })
    rows = facts.conform_cases(clean, catalog, KEY).rows
    assert rows["received_date"].tolist() == [date(2026, 1, 2), date(2026, 1, 1)]
    assert rows["cycle_days"].tolist() == [150, pd.NA]
    assert rows["standard_days"].tolist() == [120, pd.NA]
    assert rows["over_standard"].tolist() == [True, pd.NA]
