"""Text analytics on redacted free text: a sentiment score and themes from a reviewed taxonomy.

Runs in conform, on text that ``pipelines.privacy.redact`` has already cleaned, so no
score or theme is ever computed from personal data. Sentiment is VADER's compound
score (-1 most negative .. +1 most positive): a lexicon model whose word list ships
inside the ``vaderSentiment`` package, so nothing is downloaded at run time and the
same text always scores the same. Themes come from ``schemas/themes.yaml``: literal
phrases on word boundaries, so a reviewer can predict every match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contracts import SAFE_NAME, ContractError, read_schema_file
from pipelines.settings import REPO_ROOT

THEME_SEPARATOR = ";"
# VADER's own convention: compound <= -0.05 is negative, >= 0.05 positive.
NEGATIVE_BELOW = -0.05
POSITIVE_ABOVE = 0.05
# A redaction placeholder such as [PHONE] or [EMAIL] (see pipelines.privacy).
PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")
# Texts RE2 (ASCII \w and \s) and Python's ``re`` (Unicode) could read differently:
# non-ASCII characters, and the ASCII controls Python counts as white space.
PYTHON_ONLY = r"[^\x00-\x7f]|[\x0b\x1c-\x1f]"
_ASCII_WORD = re.compile(r"[A-Za-z0-9_]")


@dataclass(frozen=True)
class Theme:
    theme_id: str
    label: str
    description: str
    pattern: re.Pattern[str]
    # The same matching in RE2 (Arrow, C++) for texts without PYTHON_ONLY characters;
    # None where it cannot be said in RE2, then Python reads every text.
    re2_pattern: str | None = None


@dataclass(frozen=True)
class ThemeTaxonomy:
    themes: tuple[Theme, ...]
    path: Path

    def frame(self) -> pd.DataFrame:
        """The taxonomy as rows of ``dim_theme``."""
        return pd.DataFrame({
            "theme_id": [t.theme_id for t in self.themes],
            "label": [t.label for t in self.themes],
            "description": [t.description for t in self.themes],
        })


def _phrase_regex(phrase: str) -> str:
    words = re.split(r"[\s-]+", phrase.strip().lower())
    return r"[\s-]+".join(re.escape(w) for w in words if w)


def _re2_pattern(phrases: list[str], alternatives: str) -> str | None:
    """``alternatives`` between RE2 word boundaries, when that matches exactly what Python does.

    ``(?<![\\w])`` before a phrase that starts with a word character is ``\\b`` (and the same
    at its end); on ASCII text without the controls of PYTHON_ONLY, RE2's ``\\w``, ``\\s`` and
    case folding are Python's.
    """
    ends = [w for p in phrases for w in (p.strip()[:1], p.strip()[-1:])]
    if not alternatives.isascii() or not all(_ASCII_WORD.fullmatch(c) for c in ends):
        return None
    pattern = rf"\b(?:{alternatives})\b"
    try:
        pc.match_substring_regex(pa.array([""]), pattern, ignore_case=True)
    except pa.ArrowInvalid:
        return None
    return pattern


@cache
def load_taxonomy(schemas_dir: Path) -> ThemeTaxonomy:
    """``schemas_dir/themes.yaml``, checked: ids safe as warehouse values, phrases present."""
    path, raw = read_schema_file(schemas_dir, "themes.yaml", "theme taxonomy")
    themes = []
    seen: set[str] = set()
    for i, entry in enumerate(raw.get("themes") or [], start=1):
        theme_id = str(entry.get("theme_id", ""))
        if not SAFE_NAME.match(theme_id):
            raise ContractError(f"{path}: theme {i} id {theme_id!r} must match {SAFE_NAME.pattern}")
        if theme_id in seen:
            raise ContractError(f"{path}: theme {theme_id!r} is listed twice")
        seen.add(theme_id)
        phrases = [str(p) for p in entry.get("phrases") or [] if str(p).strip()]
        if not phrases:
            raise ContractError(f"{path}: theme {theme_id!r} has no phrases")
        alternatives = "|".join(sorted({_phrase_regex(p) for p in phrases}, key=len, reverse=True))
        themes.append(Theme(theme_id, str(entry.get("label", theme_id)), str(entry.get("description", "")),
                            re.compile(rf"(?<![\w])(?:{alternatives})(?![\w])", re.IGNORECASE),
                            _re2_pattern(phrases, alternatives)))
    if not themes:
        raise ContractError(f"{path}: no themes")
    return ThemeTaxonomy(tuple(themes), path)


def default_taxonomy() -> ThemeTaxonomy:
    return load_taxonomy(REPO_ROOT / "schemas")


@cache
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


class _WithoutEmoji(str):
    """A text VADER's emoji pass reads as one piece: iterating it gives the whole text once.

    ``polarity_scores`` first rebuilds the text character by character, replacing emoji
    characters by their descriptions: 40 % of its time. A text without an emoji comes out
    of that loop unchanged, so passing it whole gives the same text and the same score.
    Every emoji character of VADER's list is non-ASCII: ASCII texts may be passed so.
    """

    def __iter__(self):
        yield str(self)


def _present(texts: pd.Series) -> pd.Series:
    return texts.notna() & texts.astype("string").str.strip().fillna("").ne("")


def _arrow_strings(texts: pd.Series) -> pa.Array:
    column = pa.array(texts.astype("string"), pa.large_string())
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def sentiment(texts: pd.Series) -> pd.Series:
    """VADER compound score per text (-1..1); missing where there is no text."""
    analyzer = _analyzer()
    present = _present(texts)
    chosen = texts[present].astype("string")
    ascii_only = pc.string_is_ascii(_arrow_strings(chosen)).to_numpy(zero_copy_only=False)
    scores = pd.Series(pd.NA, index=texts.index, dtype="Float64")
    scores[present] = [analyzer.polarity_scores(_WithoutEmoji(text) if plain else text)["compound"]
                       for text, plain in zip(chosen.tolist(), ascii_only.tolist(), strict=True)]
    return scores


def themes(texts: pd.Series, taxonomy: ThemeTaxonomy) -> pd.Series:
    """Theme ids per text, sorted and joined by ``;``; missing where no theme (or no text).

    Each theme is matched in RE2 over the whole column at once; Python's ``re`` reads only
    the texts RE2 could read differently (PYTHON_ONLY) and themes RE2 cannot express.
    """
    present = _present(texts)
    chosen = texts[present].astype("string")
    column = _arrow_strings(chosen)
    python_only = np.flatnonzero(pc.match_substring_regex(column, PYTHON_ONLY).to_numpy(zero_copy_only=False))
    every = np.arange(len(chosen))
    values = chosen.tolist()
    found = np.zeros((len(chosen), len(taxonomy.themes)), dtype=bool)
    for k, theme in enumerate(taxonomy.themes):
        if theme.re2_pattern is not None:
            found[:, k] = pc.match_substring_regex(column, theme.re2_pattern, ignore_case=True).to_numpy(
                zero_copy_only=False)
        for i in python_only if theme.re2_pattern is not None else every:
            found[i, k] = theme.pattern.search(values[i]) is not None
    combinations, which = np.unique(found, axis=0, return_inverse=True)
    ids = np.array([t.theme_id for t in taxonomy.themes], dtype=object)
    labels = np.array([THEME_SEPARATOR.join(ids[row]) or None for row in combinations], dtype=object)
    out = pd.Series(pd.NA, index=texts.index, dtype="string")
    out[present] = labels[which.reshape(-1)] if len(chosen) else []
    return out


def text_signals(texts: pd.Series, taxonomy: ThemeTaxonomy | None = None) -> pd.DataFrame:
    """``sentiment`` and ``themes`` columns for a Series of redacted texts (same index).

    Each distinct text is scored once: redacted texts repeat (placeholders, stock phrases),
    and VADER is pure Python at about 0.1 ms a text.
    """
    taxonomy = taxonomy or default_taxonomy()
    codes, distinct = pd.factorize(texts.astype("string"), sort=False)
    unique = pd.Series(distinct, dtype="string")
    scored = pd.DataFrame({"sentiment": sentiment(unique), "themes": themes(unique, taxonomy)})
    missing = codes < 0
    picked = scored.iloc[np.where(missing, 0, codes)] if len(scored) else scored.reindex(range(len(codes)))
    picked = picked.set_axis(texts.index)
    picked.loc[missing] = pd.NA
    return picked.astype({"sentiment": "Float64", "themes": "string"})


def has_placeholder(texts: pd.Series) -> pd.Series:
    """Texts in which redaction found personal data (they carry a ``[TYPE]`` placeholder)."""
    return texts.astype("string").str.contains(PLACEHOLDER, regex=True).fillna(False).astype(bool)


# ---------------------------------------------------------------- phrases (emerging terms)

# Common English function words: a phrase may contain them, but not start or end with one.
STOP_WORDS = frozenset({
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are",
    "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can",
    "could", "did", "do", "does", "doing", "done", "down", "during", "each", "even", "ever", "every",
    "few", "for", "from", "further", "get", "got", "had", "has", "have", "having", "he", "her", "here",
    "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "let", "me",
    "more", "most", "much", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only",
    "or", "other", "our", "ours", "out", "over", "own", "really", "same", "she", "should", "so", "some",
    "still", "such", "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they",
    "this", "those", "through", "to", "too", "under", "until", "up", "us", "very", "was", "we", "were",
    "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you",
    "your", "yours", "yourself", "ve", "ll", "re", "s", "t", "d", "m", "don", "didn", "doesn", "isn",
    "wasn", "can't", "i'm", "it's",
})
WORD = re.compile(r"[a-z][a-z']*")


def phrases(text: str, max_words: int = 3) -> set[str]:
    """The distinct 1..``max_words``-word phrases of a text that neither start nor end
    with a stop word. Placeholders such as ``[PHONE]`` break phrases (never part of one)."""
    out: set[str] = set()
    for chunk in PLACEHOLDER.split(text):
        for sentence in re.split(r"[.!?;:,()\"]+", chunk.lower()):
            words = [w.strip("'") for w in WORD.findall(sentence)]
            words = [w for w in words if w]
            for n in range(1, max_words + 1):
                for i in range(len(words) - n + 1):
                    gram = words[i:i + n]
                    if gram[0] in STOP_WORDS or gram[-1] in STOP_WORDS or len(gram[0]) < 2:
                        continue
                    out.add(" ".join(gram))
    return out
