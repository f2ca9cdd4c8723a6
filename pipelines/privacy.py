"""Personal data out of the curated layer: keyed pseudonyms for identifiers, redaction of free text.

What to protect is declared once, on the columns of each source contract
(``pii: identifier`` with the domain it ``identifies``, or ``pii: free_text``); how is
declared in ``schemas/privacy.yaml``. :class:`PrivacyPolicy` applies both to a
validated batch before anything reaches the lake or the warehouse.

- Identifiers (case numbers, customer references, contact ids) become HMAC-SHA256
  pseudonyms under one secret key, computed as ``HMAC(key, "<domain>:<value>")`` by
  the same function everywhere, so a case number in the survey's hidden field and in
  the case system give the same ``case_key`` and X still joins O. Without the key the
  pseudonyms cannot be recomputed or reversed; a different key gives unrelated ones.
- Free text gets typed placeholders (``[EMAIL]``, ``[SSN]``...) so it stays readable.
  All rules run as one regular expression, in one pass per distinct text; RE2 (through
  pyarrow, in C++) first picks out the texts any rule could match, so the Python pass
  only reads those. Card numbers are kept unless their digits pass the Luhn check.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from pipelines.contracts import ContractError, load_contract
from pipelines.secrets import PSEUDONYM_KEY_CONNECTION, PSEUDONYM_KEY_ENV, MissingSecret
from pipelines.settings import REPO_ROOT

PRIVACY_FILE = "privacy.yaml"
DEFAULT_SCHEMAS = REPO_ROOT / "schemas"
PSEUDONYM_LENGTH = 32  # hex characters kept: 128 bits (privacy.yaml pseudonyms.hex_length)
DEFAULT_RETENTION_DAYS = 30
PII_KINDS = ("identifier", "free_text")
PII_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{0,30}$")
CURATED, QUARANTINE = "curated", "quarantine"
REDACTION_COLUMNS = ["column_name", "zone", "pii_type", "redactions", "texts_redacted", "texts_checked"]

# Texts RE2 and Python's ``re`` could read differently (non-ASCII letters and digits,
# the few ASCII controls Python counts as white space) always get the Python pass.
_ALWAYS_CHECK = r"[^\x00-\x7f]|[\x0b\x1c-\x1f]"
_DEFINITION = re.compile(r"\{\{([A-Z][A-Z0-9_]*)\}\}")
_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")


class PrivacyConfigError(ContractError):
    """``schemas/privacy.yaml`` or a contract's PII flags are wrong (fails the run, not retried)."""


# ---------------------------------------------------------------- checks


def luhn_valid(text: str) -> bool:
    """The Luhn checksum of the digits in ``text`` (separators ignored)."""
    digits = [ord(c) - 48 for c in text if "0" <= c <= "9"]
    if len(digits) < 2:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


CHECKS: dict[str, Callable[[str], bool]] = {"luhn": luhn_valid}


# ---------------------------------------------------------------- redaction


@dataclass(frozen=True)
class RedactionRule:
    """One type of personal data: its placeholder type, patterns and optional check."""

    type: str
    patterns: tuple[str, ...]
    check: str | None = None
    description: str = ""

    @property
    def placeholder(self) -> str:
        return f"[{self.type}]"


@dataclass(frozen=True)
class RedactionResult:
    """Redacted texts and, per type, how many matches were replaced in how many texts."""

    text: pd.Series
    redactions: Counter
    texts_redacted: Counter
    texts_checked: int


def without_lookarounds(pattern: str) -> str:
    """``pattern`` with every lookahead and lookbehind removed (RE2 has none).

    Dropping a lookaround only ever lets a pattern match more, so the result still
    finds every text the full pattern could match: good enough to pre-select.
    """
    out: list[str] = []
    i, depth_skip, in_class = 0, 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if not depth_skip:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern[i + 1:i + 2] == "]":  # a leading ] is a literal inside the class
                if not depth_skip:
                    out.append("[]")
                i += 2
                continue
        elif char == "(":
            if depth_skip:
                depth_skip += 1
            elif pattern.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
                depth_skip = 1
                i += 1
                continue
        elif char == ")" and depth_skip:
            depth_skip -= 1
            i += 1
            continue
        if not depth_skip:
            out.append(char)
        i += 1
    return "".join(out)


class Redactor:
    """All redaction rules as one regular expression; the earlier rule wins at a position.

    Texts are pre-selected with RE2: one pass with every rule finds the few texts any
    rule could match, then one pass per rule over those says which rules could; the
    Python pass over a text compiles only those rules (a rule that cannot match
    anywhere in a text cannot win anywhere in it, so the result is the same).
    """

    MAX_RULES = 63

    def __init__(self, rules: Iterable[RedactionRule], where: str = PRIVACY_FILE) -> None:
        self.rules = tuple(rules)
        self.where = where
        if not self.rules:
            raise PrivacyConfigError(f"{where}: no redaction rules")
        if len(self.rules) > self.MAX_RULES:
            raise PrivacyConfigError(f"{where}: at most {self.MAX_RULES} redaction rules")
        self._alternatives: list[str] = []
        self._groups: list[tuple[str, RedactionRule, list[str]]] = []
        self._rule_prefilters: list[str] = []
        for i, rule in enumerate(self.rules):
            parts, pii_groups, prefilters = [], [], []
            for j, pattern in enumerate(rule.patterns):
                group = f"r{i}p{j}"
                if "(?P<pii>" in pattern:
                    pii_groups.append(group)
                parts.append("(?:" + pattern.replace("(?P<pii>", f"(?P<{group}>") + ")")
                prefilters.append("(?:" + without_lookarounds(pattern).replace("(?P<pii>", "(") + ")")
            self._alternatives.append(f"(?P<r{i}>{'|'.join(parts)})")
            self._groups.append((f"r{i}", rule, pii_groups))
            self._rule_prefilters.append("|".join(prefilters))
        self._all = (1 << len(self.rules)) - 1
        self._compiled: dict[int, tuple[re.Pattern[str], list[tuple[str, RedactionRule, list[str]]]]] = {}
        self._pattern_for(self._all)  # compile errors surface here, with the file's name
        self._prefilter = "|".join([_ALWAYS_CHECK, *self._rule_prefilters])
        try:
            pc.match_substring_regex(pa.array(["x"]), self._prefilter)
        except pa.ArrowInvalid as exc:
            raise PrivacyConfigError(
                f"{where}: a redaction pattern does not compile as RE2 once lookarounds are "
                f"removed (no back-references or other Python-only syntax): {exc}") from None
        unchecked = [rule for rule in self.rules if rule.check is None]
        self._fallback = Redactor(unchecked, where) if len(unchecked) < len(self.rules) else None

    @property
    def types(self) -> list[str]:
        return list(dict.fromkeys(rule.type for rule in self.rules))

    def _pattern_for(self, mask: int) -> tuple[re.Pattern[str], list[tuple[str, RedactionRule, list[str]]]]:
        """The combined pattern of the rules in ``mask`` (bit i = rule i), compiled once."""
        if mask not in self._compiled:
            chosen = [i for i in range(len(self.rules)) if mask >> i & 1]
            try:
                pattern = re.compile("|".join(self._alternatives[i] for i in chosen))
            except re.error as exc:
                raise PrivacyConfigError(
                    f"{self.where}: the redaction patterns do not compile: {exc}") from None
            self._compiled[mask] = (pattern, [self._groups[i] for i in chosen])
        return self._compiled[mask]

    def redact_text(self, text: str, counts: Counter | None = None, mask: int | None = None) -> str:
        """One text with every match replaced by its placeholder; ``counts`` gets one per match.

        ``mask`` limits the pass to the rules that can match (all when not given).
        """
        counts = Counter() if counts is None else counts
        pattern, groups = self._pattern_for(self._all if mask is None else mask)
        return pattern.sub(lambda match: self._replacement(match, groups, counts), text)

    def _replacement(self, match: re.Match[str], groups: list[tuple[str, RedactionRule, list[str]]],
                     counts: Counter) -> str:
        for group, rule, pii_groups in groups:
            if match.start(group) < 0:
                continue
            found = match.group(group)
            if rule.check is not None and not CHECKS[rule.check](found):
                # a near miss (a 16-digit number failing Luhn) stays, but is read by the other rules
                return self._fallback.redact_text(found, counts) if self._fallback else found
            counts[rule.type] += 1
            for pii in pii_groups:
                if match.start(pii) >= 0:
                    start, end = match.start(pii) - match.start(), match.end(pii) - match.start()
                    return found[:start] + rule.placeholder + found[end:]
            return rule.placeholder
        return match.group(0)

    def candidates(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(positions, rule masks)`` of the texts some rule could match (RE2, a superset)."""
        if not texts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
        values = pa.array(texts, pa.large_string())
        hit = pc.match_substring_regex(values, self._prefilter).to_numpy(zero_copy_only=False)
        positions = np.flatnonzero(hit)
        masks = np.zeros(len(positions), dtype=np.uint64)
        if len(positions):
            chosen = values.take(pa.array(positions))
            for i, prefilter in enumerate(self._rule_prefilters):
                could = pc.match_substring_regex(chosen, prefilter).to_numpy(zero_copy_only=False)
                masks[could.astype(bool)] |= np.uint64(1 << i)
            forced = pc.match_substring_regex(chosen, _ALWAYS_CHECK).to_numpy(zero_copy_only=False)
            masks[forced.astype(bool)] = np.uint64(self._all)
        return positions, masks

    def redact(self, values: pd.Series) -> RedactionResult:
        """Redact a column of texts: each distinct text once, only those RE2 pre-selects."""
        text = values.astype("string")
        codes, uniques = pd.factorize(text, sort=False)
        distinct = uniques.tolist()
        redacted = np.array([*distinct, None], dtype=object)  # code -1 (missing) picks None
        per_text: dict[int, Counter] = {}
        positions, masks = self.candidates(distinct)
        for i, mask in zip(positions.tolist(), masks.tolist(), strict=True):
            counts: Counter = Counter()
            redacted[i] = self.redact_text(distinct[i], counts, mask)
            if counts:
                per_text[i] = counts
        redactions: Counter = Counter()
        texts_redacted: Counter = Counter()
        if per_text:
            times = np.bincount(codes[codes >= 0], minlength=len(distinct))
            for i, counts in per_text.items():
                for pii_type, n in counts.items():
                    redactions[pii_type] += n * int(times[i])
                    texts_redacted[pii_type] += int(times[i])
        out = pd.Series(redacted[codes], index=values.index, dtype="string")
        return RedactionResult(out, redactions, texts_redacted, int((codes >= 0).sum()))


def redact(values: pd.Series, redactor: Redactor | None = None) -> pd.Series:
    """Replace personal data in free text with ``[TYPE]`` placeholders (rules of privacy.yaml)."""
    return (redactor or load_privacy(DEFAULT_SCHEMAS).redactor).redact(values).text


# ---------------------------------------------------------------- pseudonyms


def pseudonymise(values: pd.Series, key: str, kind: str, length: int = PSEUDONYM_LENGTH) -> pd.Series:
    """Keyed, deterministic pseudonyms: hex of ``HMAC-SHA256(key, "<kind>:<value>")``.

    ``kind`` (the identifier's domain: case, customer, contact) keeps a case number and
    a contact id with the same text apart. Values are stripped of surrounding space;
    missing stays missing. Each distinct value is hashed once (Arrow's dictionary
    encoding finds them, a take spreads the pseudonyms back over the rows), unless the
    values look distinct anyway (ids): then encoding them would only cost time.
    """
    if not key:
        raise MissingSecret(f"no pseudonymisation key: set {PSEUDONYM_KEY_ENV} or the Airflow "
                            f"connection {PSEUDONYM_KEY_CONNECTION!r} (its password)")
    stripped = _arrow_strings(values.astype("string").str.strip())
    key_bytes, prefix = key.encode(), f"{kind}:".encode()
    if stripped.null_count == 0 and _looks_distinct(stripped):
        hashed = _hmac_sha256_hex(key_bytes, prefix, stripped, length)
    else:
        encoded = pc.dictionary_encode(stripped)
        hashed = _hmac_sha256_hex(key_bytes, prefix, encoded.dictionary, length).take(encoded.indices)
    return pd.Series(pd.arrays.ArrowStringArray(hashed), index=values.index)


def _looks_distinct(values: pa.Array, sample: int = 4096) -> bool:
    """No repeats among the first ``sample`` values (the pseudonyms are the same either way)."""
    head = values.slice(0, sample)
    return pc.count_distinct(head).as_py() == len(head)


def _arrow_strings(values: pd.Series) -> pa.Array:
    """A string column as one Arrow array (a column of pandas' Arrow-backed strings without copying)."""
    column = pa.array(values, pa.large_string())
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


# Each byte's two hex digits as one 16-bit number whose bytes in memory are those digits.
_HEX_PAIRS = np.frombuffer(b"".join(f"{byte:02x}".encode() for byte in range(256)), dtype=np.uint16)


def _hmac_sha256_hex(key: bytes, prefix: bytes, messages: pa.Array, length: int) -> pa.Array:
    """HMAC-SHA256 (RFC 2104) of ``prefix + message`` as hex, first ``length`` digits, per message.

    Equal to ``hmac.digest(key, prefix + message, "sha256").hex()[:length]``. The key's
    inner and outer pads (and the prefix) are hashed once; each message then costs a
    copy of each hash state and two short updates, 0.7-0.9 us of one core. DuckDB's
    vectorised SHA-256 hashes the whole pads again for every message: 1.4 us of CPU,
    as fast on the wall clock only with both cores to itself. The hex digits are made
    at once in numpy.
    """
    block = hashlib.sha256().block_size
    key = hashlib.sha256(key).digest() if len(key) > block else key
    key = key.ljust(block, b"\0")
    new_inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + prefix).copy
    new_outer = hashlib.sha256(bytes(b ^ 0x5C for b in key)).copy
    digests = []
    for message in messages.cast(pa.large_binary()).to_pylist():
        inner, outer = new_inner(), new_outer()
        inner.update(message)
        outer.update(inner.digest())
        digests.append(outer.digest())
    count, size = len(digests), hashlib.sha256().digest_size
    raw = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(count, size)
    digits = _HEX_PAIRS[raw[:, :(length + 1) // 2]].view(np.uint8)[:, :length]  # (count, length)
    offsets = np.arange(count + 1, dtype=np.int64) * length
    return pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets),
                                            pa.py_buffer(np.ascontiguousarray(digits)))


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class PrivacyConfig:
    """``schemas/privacy.yaml``: the redaction rules, pseudonym length and raw-zone retention."""

    redactor: Redactor
    pseudonym_length: int
    retention_days: int
    path: Path


def _expand(pattern: str, definitions: dict[str, str], where: str) -> str:
    for _ in range(10):  # definitions may use definitions
        missing = [name for name in _DEFINITION.findall(pattern) if name not in definitions]
        if missing:
            raise PrivacyConfigError(f"{where}: unknown definition {{{{{missing[0]}}}}}")
        expanded = _DEFINITION.sub(lambda m: definitions[m.group(1)], pattern)
        if expanded == pattern:
            return pattern
        pattern = expanded
    raise PrivacyConfigError(f"{where}: definitions nest too deeply (a cycle?)")


def parse_privacy(raw: dict[str, Any], path: Path) -> PrivacyConfig:
    """Check and compile the privacy configuration; errors name the file and the rule."""
    if not isinstance(raw, dict):
        raise PrivacyConfigError(f"{path}: expected a mapping with 'rules'")
    definitions = {str(k): str(v) for k, v in (raw.get("definitions") or {}).items()}
    rules = []
    for number, spec in enumerate(raw.get("rules") or [], start=1):
        where = f"{path} rule {number}"
        if not isinstance(spec, dict):
            raise PrivacyConfigError(f"{where}: expected a mapping with type and patterns")
        pii_type = spec.get("type")
        if not isinstance(pii_type, str) or not PII_TYPE.match(pii_type):
            raise PrivacyConfigError(f"{where}: type {pii_type!r} must match {PII_TYPE.pattern}")
        where = f"{path} rule {number} ({pii_type})"
        unknown = set(spec) - {"type", "patterns", "check", "description"}
        if unknown:
            raise PrivacyConfigError(f"{where}: unknown settings {sorted(unknown)}")
        check = spec.get("check")
        if check is not None and check not in CHECKS:
            raise PrivacyConfigError(f"{where}: check {check!r} is not one of {sorted(CHECKS)}")
        patterns = spec.get("patterns")
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) for p in patterns):
            raise PrivacyConfigError(f"{where}: patterns must be a non-empty list of strings")
        expanded = []
        for pattern in patterns:
            pattern = _expand(pattern, definitions, where)
            if _BACKREFERENCE.search(pattern):
                raise PrivacyConfigError(f"{where}: back-references are not allowed: {pattern!r}")
            named = set(re.findall(r"\(\?P<(\w+)>", pattern))
            if named - {"pii"} or pattern.count("(?P<pii>") > 1:
                raise PrivacyConfigError(f"{where}: the only named group allowed is one (?P<pii>...)")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise PrivacyConfigError(f"{where}: pattern does not compile ({exc}): {pattern!r}") from None
            expanded.append(pattern)
        rules.append(RedactionRule(pii_type, tuple(expanded), check, " ".join(str(
            spec.get("description", "")).split())))
    length = (raw.get("pseudonyms") or {}).get("hex_length", PSEUDONYM_LENGTH)
    if not isinstance(length, int) or not 16 <= length <= 64:
        raise PrivacyConfigError(f"{path}: pseudonyms.hex_length must be 16..64, not {length!r}")
    days = (raw.get("raw_zone") or {}).get("retention_days", DEFAULT_RETENTION_DAYS)
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise PrivacyConfigError(f"{path}: raw_zone.retention_days must be a whole number >= 1")
    return PrivacyConfig(Redactor(rules, str(path)), length, days, path)


@cache
def load_privacy(schemas_dir: Path) -> PrivacyConfig:
    path = Path(schemas_dir) / PRIVACY_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PrivacyConfigError(f"cannot read {path}: {exc}") from None
    return parse_privacy(raw, path)


# ---------------------------------------------------------------- the policy


@dataclass(frozen=True)
class Protected:
    """A protected batch and its redaction counts (``REDACTION_COLUMNS``, one row per column and type)."""

    frame: pd.DataFrame
    redactions: pd.DataFrame


def counts_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Redaction counts (``REDACTION_COLUMNS``) from records of them."""
    return pd.DataFrame(rows, columns=REDACTION_COLUMNS).astype({
        "column_name": "string", "zone": "string", "pii_type": "string", "redactions": "int64",
        "texts_redacted": "int64", "texts_checked": "int64"})


def no_redactions() -> pd.DataFrame:
    """Redaction counts of a source without free text (``REDACTION_COLUMNS``, no rows)."""
    return counts_frame([])


def combine_counts(*counts: pd.DataFrame | None) -> pd.DataFrame:
    """Several batches of redaction counts as one: counts of the same column, zone and type add up."""
    frames = [c for c in counts if c is not None and len(c)]
    if not frames:
        return no_redactions()
    keys = ["column_name", "zone", "pii_type"]
    every = pd.concat(frames, ignore_index=True)
    summed = every.groupby(keys, as_index=False, sort=False, dropna=False).sum()
    return summed[REDACTION_COLUMNS].astype(no_redactions().dtypes.to_dict())


class PrivacyPolicy:
    """The contracts' PII flags, the rules of ``privacy.yaml`` and the pseudonymisation key.

    ``protect(source, clean)`` is what every fact builder calls first: identifier columns
    become pseudonyms, free-text columns are redacted, every other column is untouched.
    """

    def __init__(self, key: str, schemas_dir: Path = DEFAULT_SCHEMAS) -> None:
        if not key:
            raise MissingSecret(f"no pseudonymisation key: set {PSEUDONYM_KEY_ENV} or the Airflow "
                                f"connection {PSEUDONYM_KEY_CONNECTION!r} (its password)")
        self._key = key
        self.schemas_dir = Path(schemas_dir)
        self.config = load_privacy(self.schemas_dir)

    def __repr__(self) -> str:  # never the key
        return f"PrivacyPolicy(schemas_dir={str(self.schemas_dir)!r})"

    def protect(self, source: str, frame: pd.DataFrame) -> Protected:
        """Pseudonymise the source's identifier columns and redact its free-text columns."""
        contract = load_contract(self.schemas_dir, source)
        out = frame.copy(deep=False)  # protected columns are replaced, never changed in place
        counts = []
        for col in contract.columns:
            if col.name not in out.columns:
                continue
            if col.pii == "identifier":
                out[col.name] = pseudonymise(out[col.name], self._key, col.identifies,
                                             self.config.pseudonym_length)
            elif col.pii == "free_text":
                result = self.config.redactor.redact(out[col.name])
                out[col.name] = result.text
                counts += self._count_rows(col.name, CURATED, result)
        return Protected(out, counts_frame(counts))

    def protect_quarantine(self, source: str, quarantine: pd.DataFrame) -> Protected:
        """Redact the free text inside quarantined records (``record`` JSON and ``reason``).

        Identifiers stay as received: the quarantine is for data engineers, who need them
        to find the row in the source system; it is never granted to BI readers.
        """
        contract = load_contract(self.schemas_dir, source)
        free_text = [c.name for c in contract.columns if c.pii == "free_text"]
        if not free_text or quarantine.empty:
            return Protected(quarantine, counts_frame([]))
        records = [json.loads(r) if isinstance(r, str) else {} for r in quarantine["record"].tolist()]
        counts = []
        for name in free_text:
            values = pd.Series([r.get(name) for r in records], dtype=object)
            result = self.config.redactor.redact(values)
            counts += self._count_rows(name, QUARANTINE, result)
            for record, value in zip(records, result.text.tolist(), strict=True):
                if name in record:
                    record[name] = None if value is pd.NA else value
        out = quarantine.copy()
        out["record"] = pd.Series([json.dumps(r, default=str, sort_keys=True) for r in records],
                                  index=quarantine.index, dtype="string")
        out["reason"] = self._redact_reasons(quarantine["reason"], set(free_text))
        return Protected(out, counts_frame(counts))

    def _redact_reasons(self, reasons: pd.Series, free_text: set[str]) -> pd.Series:
        """Reasons quote the failing value; redact the parts about a free-text column."""
        def one(reason: object) -> object:
            if not isinstance(reason, str):
                return reason
            parts = reason.split("; ")
            for i, part in enumerate(parts):
                column = part.removeprefix("column ").split(":", 1)[0]
                if part.startswith("column ") and column in free_text:
                    parts[i] = self.config.redactor.redact_text(part)
            return "; ".join(parts)
        return reasons.map(one).astype("string")

    def _count_rows(self, column: str, zone: str, result: RedactionResult) -> list[dict[str, Any]]:
        return [{"column_name": column, "zone": zone, "pii_type": pii_type,
                 "redactions": result.redactions.get(pii_type, 0),
                 "texts_redacted": result.texts_redacted.get(pii_type, 0),
                 "texts_checked": result.texts_checked}
                for pii_type in self.config.redactor.types]


def policy_for(key: str | PrivacyPolicy) -> PrivacyPolicy:
    """A policy from the repo's schemas when only a key is given (fact builders, tests)."""
    return key if isinstance(key, PrivacyPolicy) else PrivacyPolicy(key)
