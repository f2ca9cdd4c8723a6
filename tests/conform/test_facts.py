"""Conform: codes map through the catalog, unmapped rows are kept, identifiers never leak."""

import pandas as pd
import pytest

from pipelines.conform import facts
from pipelines.conform.catalog import UNMAPPED, load_catalog
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
    from pipelines.privacy import pseudonymise
    assert row["case_key"] == pseudonymise(pd.Series(["FBA0000000001"]), KEY, "case").iloc[0]
