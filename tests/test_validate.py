"""Validation: every row ends up clean or quarantined with a reason that names the column."""

from datetime import date

import pandas as pd
import pytest

from pipelines.contracts import ContractError, load_contract
from pipelines.interval import Interval
from pipelines.settings import REPO_ROOT
from pipelines.sources import RawBatch
from pipelines.validate import validate_batch

DAY = Interval.for_day(date(2026, 3, 1))


def contact(i: int, **overrides) -> dict:
    row = dict(contact_id=f"K{i}", customer_ref="C00000001", case_number=None, queue="NATZ",
               channel="phone", reason="status_inquiry", start_time="2026-03-01T10:00:00Z",
               wait_seconds="30", handle_seconds="100", resolved_first_contact="true",
               transferred="false", abandoned="false", customer_type="individual", language="en",
               region="west", _origin="contacts_2026-03-01.csv", _row=str(i))
    row.update(overrides)
    return row


@pytest.fixture(scope="module")
def contract():
    return load_contract(REPO_ROOT / "schemas", "contact_center")


def run(contract, rows):
    batch = RawBatch("contact_center", pd.DataFrame(rows), ["contacts_2026-03-01.csv"])
    return validate_batch(contract, batch, DAY)


def test_each_bad_value_is_quarantined_with_its_column_and_reason(contract):
    rows = [contact(1), contact(2, wait_seconds="abc"), contact(3, start_time="2026-02-30T25:00"),
            contact(4, contact_id=None), contact(5, channel="fax"),
            contact(6, start_time="2026-03-02T00:00:00Z"), contact(7, wait_seconds="-5"),
            contact(8, resolved_first_contact="maybe")]
    result = run(contract, rows)
    assert result.rows_read == 8
    assert list(result.clean["contact_id"]) == ["K1"]
    reasons = dict(zip(result.quarantine["row_number"], result.quarantine["reason"], strict=True))
    assert reasons[2] == "column wait_seconds: 'abc' is not an integer"
    assert reasons[3] == "column start_time: '2026-02-30T25:00' is not an ISO 8601 timestamp"
    assert reasons[4] == "column contact_id: required value is missing"
    assert reasons[5] == "column channel: 'fax' is not one of ['chat', 'email', 'phone']"
    assert "outside the run's data interval" in reasons[6]
    assert reasons[7].startswith("column wait_seconds: -5 is outside [0")
    assert reasons[8] == "column resolved_first_contact: 'maybe' is not true or false"
    assert set(result.quarantine["origin"]) == {"contacts_2026-03-01.csv"}


def test_duplicate_keys_are_all_quarantined(contract):
    result = run(contract, [contact(1), contact(2, contact_id="K1"), contact(3)])
    assert list(result.clean["contact_id"]) == ["K3"]
    assert set(result.quarantine["row_number"]) == {1, 2}
    assert result.quarantine["failed_check"].eq("expect_column_values_to_be_unique").all()


def test_clean_rows_have_contract_types(contract):
    result = run(contract, [contact(1, wait_seconds=" 42 ", transferred="TRUE")])
    row = result.clean.iloc[0]
    assert row["wait_seconds"] == 42 and bool(row["transferred"]) is True
    assert str(result.clean["start_time"].dtype) == "datetime64[us, UTC]"


def test_missing_required_column_stops_the_source_naming_file_and_column(contract):
    rows = [{k: v for k, v in contact(1).items() if k != "wait_seconds"}]
    with pytest.raises(ContractError, match=r"contact_center contacts_2026-03-01.csv: required column "
                                            r"'wait_seconds' is missing"):
        run(contract, rows)


def test_record_is_kept_verbatim_in_quarantine(contract):
    result = run(contract, [contact(1, wait_seconds="abc")])
    assert '"wait_seconds": "abc"' in result.quarantine["record"].iloc[0]
