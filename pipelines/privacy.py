"""Personal data out of the curated layer: keyed pseudonyms for identifiers, redaction of free text.

Identifiers (case numbers, customer references, contact ids) become HMAC-SHA256
pseudonyms under one secret key, the same function everywhere so X and O still
join on them. Free text gets typed placeholders so it stays readable.
"""

from __future__ import annotations

import hashlib
import hmac
import re

import pandas as pd

PSEUDONYM_LENGTH = 32  # hex characters kept: 128 bits

# Order matters: the most specific patterns first, so an SSN is not read as a phone.
REDACTIONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("EMAIL", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("RECEIPT", re.compile(r"\b[A-Z]{3}\d{10}\b")),
    ("A_NUMBER", re.compile(r"\bA-?\d{8,9}\b")),
    ("PHONE", re.compile(r"(?<!\w)(?:\+?1[ .-]?)?\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}\b")),
)


def pseudonymise(values: pd.Series, key: str, kind: str) -> pd.Series:
    """Keyed, deterministic pseudonyms; ``kind`` keeps a case number and a contact id apart."""
    if not key:
        raise ValueError("no pseudonymisation key: set XOFLOW_PSEUDONYM_KEY")
    secret = key.encode()

    def one(value: object) -> object:
        if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
            return pd.NA
        digest = hmac.new(secret, f"{kind}:{str(value).strip()}".encode(), hashlib.sha256)
        return digest.hexdigest()[:PSEUDONYM_LENGTH]

    return values.map(one).astype("string")


def redact(values: pd.Series) -> pd.Series:
    """Replace personal data in free text with ``[TYPE]`` placeholders."""
    text = values.astype("string")
    for label, pattern in REDACTIONS:
        text = text.str.replace(pattern, f"[{label}]", regex=True)
    return text
