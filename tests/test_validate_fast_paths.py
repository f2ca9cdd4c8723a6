"""Validation's fast paths give what the plain pandas and GX calls give, value for value."""

from datetime import date

import pandas as pd
import pytest

from pipelines import validate
from pipelines.contracts import Column, load_contract
from pipelines.interval import Interval
from pipelines.settings import REPO_ROOT
from pipelines.sources import RawBatch

DAY = Interval.for_day(date(2026, 3, 1))
TEXT = pd.StringDtype("pyarrow")


def plain_parse(values: pd.Series, col: Column) -> tuple[pd.Series, pd.Series]:
    """The straightforward pandas parse the fast paths must match."""
    received = values.astype(TEXT)
    stripped = received.str.strip()
    present = (stripped != "").fillna(False).astype(bool)
    if col.type == "string":
        return received.where(present).astype("string"), pd.Series(False, index=values.index)
    if col.type in ("timestamp", "date"):
        stamps = pd.to_datetime(received.where(present), errors="coerce", utc=True, format="ISO8601")
        stamps = stamps.dt.normalize() if col.type == "date" else stamps
        return stamps.astype("datetime64[us, UTC]"), present & stamps.isna()
    if col.type == "integer":
        numbers = pd.to_numeric(stripped.where(present), errors="coerce")
        bad = present & numbers.isna()
        fractional = numbers.notna() & (numbers != numbers.round())
        return numbers.where(~fractional).astype("Int64"), bad | fractional
    lowered = stripped.where(present).str.lower()
    parsed = pd.Series(pd.NA, index=values.index, dtype="boolean")
    parsed[lowered.isin(validate.TRUE_TEXT).fillna(False)] = True
    parsed[lowered.isin(validate.FALSE_TEXT).fillna(False)] = False
    return parsed, present & parsed.isna()


INTEGER_TEXTS = [
    ["1", "2", None], ["1", "x"], [" 42 ", "", "  "], ["007", "-007", "-0", "+5"],
    ["1e3", "1.0", "1.5", "0x10", "inf", "nan", "1_000", "٣", "-", "--1", "1-"],
    ["9007199254740993", None, "3"], ["9007199254740993", "1.5"], ["123456789012345", "-123456789012345"],
    ["9223372036854775807", "9223372036854775808", "1"], ["-1", "18446744073709551615"], [None, None], [],
]


@pytest.mark.parametrize("texts", INTEGER_TEXTS)
def test_integers_parse_as_pandas_to_numeric_does(texts):
    values = pd.Series(texts, dtype=TEXT, index=range(5, 5 + len(texts)))
    col = Column(name="n", type="integer")
    parsed, bad = validate._parse_column(values, col)
    expected, expected_bad = plain_parse(values, col)
    pd.testing.assert_series_equal(parsed, expected)
    pd.testing.assert_series_equal(bad, expected_bad, check_names=False)


INSTANT_TEXTS = [
    ["2026-03-02T19:22:43Z", "2026-03-02T09:54:19.000Z", None, "", "2026-02-17T00:00:00.000000Z",
     "2026-03-02T09:54:19.5Z"],
    ["2026-03-02T24:00:00Z", "2026-03-02T19:22:43Z"], ["2026-02-30T00:00:00Z", "2026-03-02T19:22:43Z", "abc"],
    ["2026-03-02T23:59:60Z"], ["2026-02-30T25:00"], [None], [],
    ["2026-03-02T10:00:00+02:00", "2026-03-02T10:00:00", "2026-03-02", "2026-03-02T10:00:00.123456789Z",
     "2026-03-02T19:22:43Z"],
    ["2300-01-01T00:00:00Z", "1899-12-31T23:59:59Z", "2026-03-02T19:22:43Z", " 2026-03-02T19:22:43Z "],
]


@pytest.mark.parametrize("kind", ["timestamp", "date"])
@pytest.mark.parametrize("texts", INSTANT_TEXTS)
def test_instants_parse_as_pandas_to_datetime_does(texts, kind):
    values = pd.Series(texts, dtype=TEXT, index=range(7, 7 + len(texts)))
    col = Column(name="t", type=kind)
    parsed, bad = validate._parse_column(values, col)
    expected, expected_bad = plain_parse(values, col)
    pd.testing.assert_series_equal(parsed, expected)
    pd.testing.assert_series_equal(bad, expected_bad, check_names=False)


def test_booleans_parse_as_pandas_isin_does():
    texts = ["true", "T", "YES", " no ", "0", "1", "maybe", None, "", "N", "False", "tRuE", "ja"]
    values = pd.Series(texts, dtype=TEXT)
    col = Column(name="b", type="boolean")
    parsed, bad = validate._parse_column(values, col)
    expected, expected_bad = plain_parse(values, col)
    pd.testing.assert_series_equal(parsed, expected)
    pd.testing.assert_series_equal(bad, expected_bad, check_names=False)


def test_text_keeps_values_and_drops_blanks_as_stripping_would():
    texts = ["a", " a ", "", " ", "\t\n", "\u3000", "x\u00a0", "\u00a0", None, "\u200b", "\x1c", "é"]
    values = pd.Series(texts, dtype=TEXT, index=range(3, 3 + len(texts)), name="t")
    col = Column(name="t", type="string")
    parsed, bad = validate._parse_column(values, col)
    expected, expected_bad = plain_parse(values, col)
    pd.testing.assert_series_equal(parsed, expected)
    pd.testing.assert_series_equal(bad, expected_bad)
    parsed, _ = validate._parse_column(pd.Series(texts, dtype=object), col)  # as tests and connectors send
    pd.testing.assert_series_equal(parsed, plain_parse(pd.Series(texts, dtype=object), col)[0])


def contacts(n: int) -> pd.DataFrame:
    """Enough rows for the code columns to be dictionary-encoded, with every kind of GX failure."""
    rows = []
    for i in range(n):
        rows.append(dict(
            contact_id=f"K{i}" if i % 97 else None, customer_ref=f"C{i % 50:08d}", case_number=None,
            queue=["NATZ", "TRVL"][i % 2],
            channel=["phone", "chat", "email", "fax"][i % 4 if i % 31 == 0 else i % 3],
            reason="status_inquiry", start_time="2026-03-01T10:00:00Z" if i % 53 else "2026-03-05T10:00:00Z",
            wait_seconds=str(i % 50 if i % 41 else -5), handle_seconds="100",
            resolved_first_contact="true", transferred="false", abandoned="false",
            customer_type=[None, "individual", "business", "alien"][i % 4 if i % 7 == 0 else i % 3],
            language="en", region="west", _origin="contacts_2026-03-01.csv", _row=i + 1))
    rows[10]["contact_id"] = rows[11]["contact_id"]  # a repeated key
    return pd.DataFrame(rows).astype({c: TEXT for c in rows[0] if c != "_row"})


def test_gx_on_the_narrow_dictionary_frame_gives_the_plain_frame_result(monkeypatch):
    contract = load_contract(REPO_ROOT / "schemas", "contact_center")
    frame = contacts(600)
    typed = pd.DataFrame({col.name: validate._parse_column(frame[col.name], col)[0]
                          for col in contract.columns if col.name in frame})
    fast = validate._gx_failures(contract, typed, DAY)

    def plain_frame(frame, expectations):
        return frame.astype({c: "float64" for c, t in frame.dtypes.items()
                             if isinstance(t, pd.Int64Dtype | pd.Float64Dtype)})

    monkeypatch.setattr(validate, "_for_gx", plain_frame)
    monkeypatch.setattr(validate, "RESULT_FORMAT", {"result_format": "COMPLETE"})
    monkeypatch.setattr(validate, "_add_index_queries", lambda result: None)
    plain = validate._gx_failures(contract, typed, DAY)

    assert fast[0] == plain[0] and len(fast[0]) > 30
    for result in (fast[3], plain[3]):
        result["meta"]["batch_markers"].pop("ge_load_time")
    assert fast[3] == plain[3]
    assert list(fast[3]["results"][0]["result"]) == list(plain[3]["results"][0]["result"])  # same key order
    assert fast[1:3] == plain[1:3]


def test_failing_rows_keep_their_reasons_through_the_whole_batch():
    contract = load_contract(REPO_ROOT / "schemas", "contact_center")
    frame = contacts(600)
    result = validate.validate_batch(contract, RawBatch("contact_center", frame, ["x"]), DAY)
    assert len(result.clean) + len(result.quarantine) == 600
    reasons = dict(zip(result.quarantine["row_number"], result.quarantine["reason"], strict=True))
    assert reasons[1].startswith("column contact_id: required value is missing; column start_time")
    assert reasons[98] == "column contact_id: required value is missing"
    repeated = "column contact_id: 'K11' appears more than once in the batch (key must be unique)"
    assert reasons[11] == reasons[12] == repeated
    assert reasons[32].startswith("column channel: 'fax' is not one of")
    assert reasons[8] == "column customer_type: 'alien' is not one of ['business', 'individual', 'veteran']"
    assert reasons[42] == "column wait_seconds: -5 is outside [0.0, 86400.0]"
    assert reasons[54] == "column start_time: '2026-03-05T10:00:00+00:00' is outside the run's data interval"
    assert list(result.clean["_row"][:3]) == [2, 3, 4]


def test_gx_lets_go_of_a_batch_once_it_is_validated(monkeypatch):
    """The frame handed to GX is freed with the batch: GX's engine kept it until the next
    batch replaced it, beside that batch's own frames."""
    import gc
    import weakref

    handed: list[weakref.ref] = []
    narrow = validate._for_gx

    def kept_track_of(typed, expectations):
        frame = narrow(typed, expectations)
        handed.append(weakref.ref(frame))
        return frame

    monkeypatch.setattr(validate, "_for_gx", kept_track_of)
    contract = load_contract(REPO_ROOT / "schemas", "contact_center")
    result = validate.validate_batch(contract, RawBatch("contact_center", contacts(300), ["x"]), DAY)
    gc.collect()
    assert len(handed) == 1 and handed[0]() is None
    assert len(result.clean) + len(result.quarantine) == 300
