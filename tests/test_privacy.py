"""Redaction and pseudonymisation, as specified by schemas/privacy.yaml and the contracts' PII flags.

The planted texts are in ``privacy_corpus``: personal data in the formats people type,
several per text, next to near misses (ordinary numbers, dates of service, a 16-digit
number that fails the Luhn check) that must stay. Pseudonyms are checked against
``hmac`` from the standard library, not against the pipeline's own helper.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from privacy_corpus import TEXTS, expected, near_misses, personal_data, planted, type_counts

from pipelines.contracts import ContractError
from pipelines.privacy import (
    PrivacyConfigError,
    PrivacyPolicy,
    load_privacy,
    luhn_valid,
    pseudonymise,
    redact,
    without_lookarounds,
)
from pipelines.secrets import MissingSecret
from pipelines.settings import REPO_ROOT

SCHEMAS = REPO_ROOT / "schemas"
KEY = "unit-test-key"


@pytest.fixture(scope="module")
def redactor():
    return load_privacy(SCHEMAS).redactor


def hmac_hex(key: str, kind: str, value: str, length: int = 32) -> str:
    return hmac.new(key.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:length]


# ------------------------------------------------------------------ the corpus


def test_the_corpus_is_large_and_varied():
    found = personal_data()
    assert len(found) >= 60
    assert {t for t, _ in found} == {"EMAIL", "SSN", "ITIN", "A_NUMBER", "RECEIPT", "CARD", "PHONE", "DOB",
                                     "ADDRESS", "NAME"}
    assert len(near_misses()) >= 25
    assert sum(len(type_counts(t)) > 1 or sum(type_counts(t).values()) > 1 for t in TEXTS) >= 20


@pytest.mark.parametrize("text", TEXTS, ids=[f"text{i:02d}" for i in range(len(TEXTS))])
def test_personal_data_becomes_its_placeholder_and_near_misses_stay(redactor, text):
    counts: Counter = Counter()
    assert redactor.redact_text(planted(text), counts) == expected(text)
    assert counts == type_counts(text)


def test_a_column_is_redacted_as_each_text_alone_with_repeats_counted(redactor):
    texts = [planted(t) for t in TEXTS]
    column = pd.Series([*texts, None, texts[0], "", "no personal data here", texts[5]], dtype=object)
    result = redactor.redact(column)
    one_by_one = [None if v is None else redactor.redact_text(v) for v in column]
    assert result.text.tolist()[:len(texts)] == [expected(t) for t in TEXTS]
    assert [None if v is pd.NA else v for v in result.text.tolist()] == one_by_one
    wanted = sum((type_counts(t) for t in TEXTS), Counter()) + type_counts(TEXTS[0]) + type_counts(TEXTS[5])
    assert result.redactions == wanted
    assert result.texts_checked == len(texts) + 4
    assert result.texts_redacted["NAME"] == sum(1 for t in TEXTS if type_counts(t)["NAME"]) + 2


def test_the_re2_preselection_never_skips_a_text_python_would_change(redactor):
    """RE2 only picks which texts get the Python pass; every text the rules change must be picked."""
    texts = [planted(t) for t in TEXTS] + [
        "Ｍy phone ２０２-５５５-０１４３", "naïve café, call 202-555-0143", "tab\x0bseparated 123-45-6789",
        "nothing at all", "Dear Ms. Ågren", "born 1/2/80"]
    positions, _ = redactor.candidates(texts)
    changed = {i for i, t in enumerate(texts) if redactor.redact_text(t) != t}
    assert changed <= set(positions.tolist())
    assert len(changed) >= len(TEXTS)


def test_lookarounds_are_dropped_for_preselection_only():
    assert without_lookarounds(r"(?!(?:Team|All)\b)(?P<pii>[A-Z]\w+)(?= *$)") == r"(?P<pii>[A-Z]\w+)"
    assert without_lookarounds(r"[(?!]x\(?<=y") == r"[(?!]x\(?<=y"


# ------------------------------------------------------------------ rules that need care


@pytest.mark.parametrize("number", ["4111111111111111", "5500 0000 0000 0004", "378282246310005",
                                    "6011-1111-1111-1117"])
def test_card_numbers_pass_luhn_and_are_redacted(redactor, number):
    assert luhn_valid(number)
    assert redactor.redact_text(f"paid with {number} yesterday") == "paid with [CARD] yesterday"


@pytest.mark.parametrize("number", ["4111111111111112", "5500 0000 0000 0005", "378282246310006",
                                    "1234 5678 9012 3456"])
def test_numbers_shaped_like_cards_that_fail_luhn_stay(redactor, number):
    assert not luhn_valid(number)
    assert redactor.redact_text(f"letter number {number} here") == f"letter number {number} here"


@pytest.mark.parametrize(("text", "redacted"), [
    ("born on 1985-03-14", "born on [DOB]"),
    ("DOB 3/14/85", "DOB [DOB]"),
    ("Date of Birth: March 14, 1985", "Date of Birth: [DOB]"),
    ("my birthday was on 14th of March 1985", "my birthday was on [DOB]"),
    ("interview on 1985-03-14", "interview on 1985-03-14"),
    ("I applied 3/14/2026 and waited", "I applied 3/14/2026 and waited"),
    ("the decision dated March 14, 2026 arrived", "the decision dated March 14, 2026 arrived"),
])
def test_dates_are_dates_of_birth_only_when_the_text_says_so(redactor, text, redacted):
    assert redactor.redact_text(text) == redacted


@pytest.mark.parametrize(("text", "redacted"), [
    ("Thanks, Jane Doe", "Thanks, [NAME]"),
    ("Thank you!\nJane", "Thank you!\n[NAME]"),
    ("Best regards, Jo-Ann Smith-Jones.", "Best regards, [NAME]."),
    ("my name's Li", "my name's [NAME]"),
    ("Mrs. Ana María López was helpful", "Mrs. [NAME] was helpful"),
    ("This is Kofi Annan calling", "This is [NAME] calling"),
    ("Thanks, Team!", "Thanks, Team!"),
    ("Thank you So much", "Thank you So much"),
    ("This is Ridiculous", "This is Ridiculous"),
    ("Thanks to USCIS", "Thanks to USCIS"),
])
def test_names_are_redacted_where_the_text_introduces_them(redactor, text, redacted):
    assert redactor.redact_text(text) == redacted


@pytest.mark.parametrize("text", ["Jane Doe called twice", "I spoke with Maria about it",
                                  "ask for kevin smith", "Thanks Jane for nothing"])
def test_names_without_a_cue_are_not_detected(redactor, text):
    """A known limit, stated in the README: a name needs a cue (an introduction, title, sign-off)."""
    assert redactor.redact_text(text) == text


def test_the_demo_worlds_own_personal_data_is_redacted(redactor):
    from pipelines.demo.world import _pii_snippet

    for kind, case in ((0, None), (1, None), (2, "FBA3976000012"), (2, None)):
        text = _pii_snippet(kind, [2, 5], case)
        assert redactor.redact_text(text) in {
            "Call me at [PHONE].", "My email is [EMAIL].", "My name is [NAME], case [RECEIPT].",
            "My name is [NAME]."}


def test_redact_without_a_redactor_uses_the_repos_rules():
    assert redact(pd.Series(["SSN 123-45-6789", None])).tolist()[0] == "SSN [SSN]"


# ------------------------------------------------------------------ configuration


@pytest.fixture
def schemas(tmp_path) -> Path:
    copy = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, copy)
    return copy


def edit_privacy(schemas: Path, change) -> Path:
    path = schemas / "privacy.yaml"
    raw = yaml.safe_load(path.read_text())
    change(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    load_privacy.cache_clear()
    return schemas


def test_a_new_type_is_one_rule_in_privacy_yaml(schemas):
    edit_privacy(schemas, lambda raw: raw["rules"].insert(0, {
        "type": "PASSPORT", "patterns": [r"(?i:passport(?: +(?:no\.?|number))?) *(?P<pii>[A-Z]\d{8})\b"]}))
    redactor = load_privacy(schemas).redactor
    assert redactor.redact_text("passport no. X12345678, call 202-555-0143") == \
        "passport no. [PASSPORT], call [PHONE]"
    assert redactor.types[0] == "PASSPORT"


@pytest.mark.parametrize(("change", "message"), [
    (lambda raw: raw["rules"][0].update(type="e-mail"), "type 'e-mail'"),
    (lambda raw: raw["rules"][0].update(patterns=[r"(\w)\1"]), "back-references"),
    (lambda raw: raw["rules"][0].update(patterns=["{{NOWHERE}}"]), "unknown definition"),
    (lambda raw: raw["rules"][0].update(patterns=["(unclosed"]), "does not compile"),
    (lambda raw: raw["rules"][0].update(patterns=[r"(?P<who>x)"]), "named group"),
    (lambda raw: raw["rules"][0].update(patterns=[r"\p{Lu}x"]), "does not compile"),
    (lambda raw: raw["rules"][0].update(check="mod97"), "check 'mod97'"),
    (lambda raw: raw["rules"][0].update(replace="[X]"), "unknown settings"),
    (lambda raw: raw.update(raw_zone={"retention_days": 0}), "retention_days"),
    (lambda raw: raw.update(pseudonyms={"hex_length": 8}), "hex_length"),
])
def test_a_broken_privacy_file_stops_with_the_file_and_rule_named(schemas, change, message):
    edit_privacy(schemas, change)
    with pytest.raises(PrivacyConfigError, match=message) as error:
        load_privacy(schemas)
    assert "privacy.yaml" in str(error.value)
    assert isinstance(error.value, ContractError)  # fails the task at once, no retries


# ------------------------------------------------------------------ pseudonyms


def test_pseudonyms_are_hmac_sha256_of_domain_and_value():
    values = pd.Series(["FBA0000000001", " FBA0000000001 ", None, "FBA0000000002"], dtype=object)
    out = pseudonymise(values, KEY, "case")
    assert out.tolist()[0] == hmac_hex(KEY, "case", "FBA0000000001")
    assert out.iloc[1] == out.iloc[0]
    assert out.isna().tolist() == [False, False, True, False]
    assert out.iloc[3] == hmac_hex(KEY, "case", "FBA0000000002")


@pytest.mark.parametrize("length", [16, 31, 32, 64])
def test_pseudonyms_of_many_values_are_each_values_hmac_at_any_length(length):
    values = pd.Series([f"C{i:08d}" for i in range(3000)] + ["é 漢字", "", " x ", None, "C00000007"],
                       index=range(100, 3105), dtype="string")
    out = pseudonymise(values, KEY, "customer", length)
    assert list(out.index) == list(values.index) and str(out.dtype) == "string"
    assert out.tolist() == [pd.NA if v is pd.NA else hmac_hex(KEY, "customer", v.strip(), length)
                            for v in values.tolist()]
    ids = pd.Series([f" K{i}" for i in range(5000)])  # distinct and present: hashed without encoding
    assert pseudonymise(ids, KEY, "contact", length).tolist() == [
        hmac_hex(KEY, "contact", v.strip(), length) for v in ids]


def test_the_domain_keeps_equal_texts_of_different_identifiers_apart():
    same = pd.Series(["12345"])
    assert pseudonymise(same, KEY, "case").iloc[0] != pseudonymise(same, KEY, "contact").iloc[0]


def test_a_long_key_is_hashed_first_as_hmac_requires():
    long_key = "k" * 200
    assert pseudonymise(pd.Series(["x"]), long_key, "case").iloc[0] == hmac_hex(long_key, "case", "x")


def test_different_keys_give_unrelated_pseudonyms():
    values = pd.Series([f"C{i:08d}" for i in range(2000)])
    first, second = pseudonymise(values, KEY, "customer"), pseudonymise(values, KEY + "2", "customer")
    assert not set(first) & set(second)
    assert first.is_unique and second.is_unique


def test_no_key_is_a_clear_error_naming_where_to_set_it():
    with pytest.raises(MissingSecret, match="XOFLOW_PSEUDONYM_KEY.*xoflow_pseudonym_key"):
        pseudonymise(pd.Series(["x"]), "", "case")
    with pytest.raises(MissingSecret, match="XOFLOW_PSEUDONYM_KEY"):
        PrivacyPolicy("", SCHEMAS)


def test_the_policy_never_shows_its_key():
    policy = PrivacyPolicy("a-secret-key-42", SCHEMAS)
    assert "a-secret-key-42" not in repr(policy) and "a-secret-key-42" not in str(vars(policy).keys())


# ------------------------------------------------------------------ the contracts decide what is protected


def feedback_rows() -> pd.DataFrame:
    return pd.DataFrame({
        "feedback_id": ["FB1", "FB2"], "channel": ["email", "email"],
        "service_hint": ["case FBA3976000012", "card"],
        "text": ["Thanks, Jane Doe", "call 202-555-0143"], "language": ["en", "en"],
    })


def test_only_columns_the_contract_flags_are_touched():
    protected = PrivacyPolicy(KEY, SCHEMAS).protect("feedback", feedback_rows())
    assert protected.frame["text"].tolist() == ["Thanks, [NAME]", "call [PHONE]"]
    assert protected.frame["service_hint"].tolist() == ["case FBA3976000012", "card"]  # not flagged
    assert protected.frame["feedback_id"].tolist() == ["FB1", "FB2"]
    counts = protected.redactions.set_index("pii_type")
    assert counts.loc["NAME", "redactions"] == 1 and counts.loc["PHONE", "redactions"] == 1
    assert set(counts["column_name"]) == {"text"} and set(counts["zone"]) == {"curated"}
    assert (counts["texts_checked"] == 2).all()


def test_flagging_a_column_in_the_contract_protects_it(schemas):
    path = schemas / "sources" / "feedback.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["columns"]["service_hint"]["pii"] = "free_text"
    raw["columns"]["feedback_id"]["pii"] = "identifier"
    raw["columns"]["feedback_id"]["identifies"] = "feedback"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    protected = PrivacyPolicy(KEY, schemas).protect("feedback", feedback_rows())
    assert protected.frame["service_hint"].tolist() == ["case [RECEIPT]", "card"]
    assert protected.frame["feedback_id"].tolist() == [hmac_hex(KEY, "feedback", "FB1"),
                                                       hmac_hex(KEY, "feedback", "FB2")]


def test_quarantined_records_lose_free_text_but_keep_identifiers():
    record = {"contact_id": "CC2026030200007", "customer_ref": "C00012345", "case_number": "FBA3976000012",
              "wait_seconds": "abc", "notes": "Caller said: my SSN is 123-45-6789"}
    quarantine = pd.DataFrame({
        "source": ["contact_center"], "origin": ["contacts_2026-03-02.csv"], "row_number": [7],
        "failed_check": ["type"], "column_name": ["wait_seconds"],
        "reason": ["column wait_seconds: 'abc' is not an integer; column notes: 'SSN 123-45-6789' is odd"],
        "record": [json.dumps(record, sort_keys=True)],
    })
    kept = PrivacyPolicy(KEY, SCHEMAS).protect_quarantine("contact_center", quarantine)
    out = json.loads(kept.frame.at[0, "record"])
    assert out == {**record, "notes": "Caller said: my SSN is [SSN]"}
    assert kept.frame.at[0, "reason"] == \
        "column wait_seconds: 'abc' is not an integer; column notes: 'SSN [SSN]' is odd"
    counts = kept.redactions.set_index("pii_type")
    assert counts.loc["SSN", "redactions"] == 1 and counts.loc["SSN", "zone"] == "quarantine"
