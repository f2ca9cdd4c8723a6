"""Emerging terms: the phrase whose share of texts rose fastest comes first."""

from collections import Counter

import numpy as np

from pipelines.insight.emerging import PhraseIndex, emerging_terms
from pipelines.insight.text import phrases

BACKGROUND = ["The wait was long.", "Staff were helpful.", "The form was confusing.", "Quick and easy."]


def test_a_phrase_that_appears_this_week_ranks_first_with_its_counts():
    baseline = BACKGROUND * 20  # 80 texts over the baseline weeks
    current = BACKGROUND * 3 + ["My passport photo was rejected twice."] * 6
    terms = emerging_terms(current, baseline)
    assert terms[0]["term"] in phrases("My passport photo was rejected twice.")
    assert terms[0]["rank"] == 1
    assert (terms[0]["mentions"], terms[0]["texts"]) == (6, 18)
    assert (terms[0]["baseline_mentions"], terms[0]["baseline_texts"]) == (0, 80)
    assert terms[0]["rate_ratio"] > 10


def test_phrases_inside_a_listed_one_are_not_repeated():
    terms = emerging_terms(BACKGROUND + ["Passport photo rejected."] * 5, BACKGROUND * 10)
    listed = [t["term"] for t in terms]
    assert sum("photo" in term for term in listed) == 1


def test_steady_phrases_do_not_emerge_and_a_week_without_baseline_has_none():
    assert emerging_terms(BACKGROUND * 5, BACKGROUND * 20) == []
    assert emerging_terms(BACKGROUND * 2 + BACKGROUND[:1], BACKGROUND * 20) == []  # a small, uneven week
    assert emerging_terms(["Passport photo rejected."] * 5, []) == []


def test_a_phrase_needs_three_texts_this_week():
    terms = emerging_terms(BACKGROUND * 3 + ["Parking was awful."] * 2, BACKGROUND * 10)
    assert all("parking" not in t["term"] for t in terms)


def test_the_phrase_index_counts_each_subset_as_its_texts_counted_one_by_one():
    texts = (BACKGROUND * 3 + ["My passport photo was rejected twice.", "Passport photo rejected.",
                               "The wait was long.  ", "THE WAIT WAS LONG."]) * 2
    index = PhraseIndex(texts)
    for positions in (np.arange(len(texts)), np.arange(0, len(texts), 3), np.array([4, 4, 12]),
                      np.array([], dtype=np.int64)):
        expected = Counter(p for i in positions for p in phrases(texts[i]))
        got = {str(term): int(n) for term, n in zip(index.vocabulary, index.counts(positions), strict=True)
               if n}
        assert got == dict(expected)
