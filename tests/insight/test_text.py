"""Text analytics: themes a reviewer can predict from the taxonomy, a sentiment with the right sign."""

from pathlib import Path

import pandas as pd
import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from pipelines.contracts import ContractError
from pipelines.insight.text import has_placeholder, load_taxonomy, phrases, sentiment, text_signals, themes
from pipelines.settings import REPO_ROOT


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy(REPO_ROOT / "schemas")


def test_themes_are_matched_on_word_boundaries_and_listed_in_taxonomy_order(taxonomy):
    texts = pd.Series(["Nobody could tell me the STATUS of my case, I waited months.",
                       "The app crashes when I upload documents.",
                       "Ecstatic!",  # contains "stat" and "tic" but no theme word
                       None, "   "])
    found = themes(texts, taxonomy)
    assert found[0] == "wait_time;status_updates"
    assert set(found[1].split(";")) == {"mobile_app", "documents"}
    assert found[2:].isna().all()


def test_phrase_words_may_be_separated_by_any_spaces_or_hyphens(taxonomy):
    found = themes(pd.Series(["I was put  on-hold for an hour"]), taxonomy)
    assert "phone_line" in found[0].split(";")


# Texts where RE2 and Python's re could differ: Unicode letters, digits, spaces and case
# folds (Kelvin sign, long s), the ASCII controls Python counts as spaces, emoji.
TRICKY = ["Nobody could tell me the STATUS of my case", "I was put\x0bon hold", "on\x1chold", "ON-HOLD!!",
          "on\u00a0hold", "waited\u2028months", "caf\u00e9 app crashes \U0001F600", "\u212aind staff",
          "the \u017ftatus page", "\U0001F642 great", "great \U0001F642", "  padded wait  ", "wait_time",
          "waiting's", "x-wait-x", "status\u2014page", "i \u2764 the app", "\u00a9", "great!!! :)", ":(",
          "TAB\twait", "new\nline status", "\u00e9tat du site", "stra\u00dfe", "\u0130stanbul online",
          "A\u0301pp", "Quick and easy, thank you.", "The STATUS page never updates!!", "I WAITED months :("]


def test_themes_are_those_pythons_re_finds_in_every_text(taxonomy):
    texts = pd.Series(TRICKY)
    expected = [";".join(t.theme_id for t in taxonomy.themes if t.pattern.search(text)) or None
                for text in TRICKY]
    assert [None if v is pd.NA else v for v in themes(texts, taxonomy).tolist()] == expected


def test_sentiment_is_vaders_own_compound_score_with_or_without_emoji():
    analyzer = SentimentIntensityAnalyzer()
    assert sentiment(pd.Series(TRICKY)).tolist() == [analyzer.polarity_scores(t)["compound"] for t in TRICKY]


def test_sentiment_is_negative_for_complaints_positive_for_praise_and_missing_without_text():
    scores = sentiment(pd.Series(["Too slow. I almost lost my job waiting for this.",
                                  "Staff were helpful and respectful.", None, ""]))
    assert scores[0] < -0.05 and scores[1] > 0.05
    assert scores[2:].isna().all()
    assert str(scores.dtype) == "Float64"


def test_text_signals_keep_the_index_of_the_texts(taxonomy):
    texts = pd.Series(["The fees were unclear.", None], index=[10, 20])
    signals = text_signals(texts, taxonomy)
    assert list(signals.index) == [10, 20]
    assert signals.loc[10, "themes"] == "fees;clarity"


def test_redaction_placeholders_are_recognised_and_never_part_of_a_phrase():
    texts = pd.Series(["Call me at [PHONE].", "No personal data here.", None])
    assert has_placeholder(texts).tolist() == [True, False, False]
    assert "phone" not in phrases("Call me at [PHONE] please")
    assert phrases("The status page never changed.") >= {"status page", "status", "page never changed"}
    assert "the status" not in phrases("The status page")  # no phrase starts with a stop word


@pytest.mark.parametrize("yaml_text, message", [
    ("themes:\n  - {theme_id: Wait-Time, phrases: [wait]}\n", "must match"),
    ("themes:\n  - {theme_id: wait, phrases: []}\n", "has no phrases"),
    ("themes:\n  - {theme_id: wait, phrases: [a]}\n  - {theme_id: wait, phrases: [b]}\n", "listed twice"),
    ("themes: []\n", "no themes"),
])
def test_a_broken_taxonomy_is_refused_with_the_reason(tmp_path: Path, yaml_text, message):
    (tmp_path / "themes.yaml").write_text(yaml_text)
    with pytest.raises(ContractError, match=message):
        load_taxonomy(tmp_path)
