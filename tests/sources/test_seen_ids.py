"""SeenIds answers exactly as a set of the ids would, with few bytes per id."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import pytest

from pipelines.interval import Interval
from pipelines.sources import survey_api
from pipelines.sources.seen_ids import SeenIds, hash_ids


def colliding_hash(ids):
    """Three hash values for every id: most matches are collisions the ids must settle."""
    return np.array([len(text) % 3 for text in ids], dtype=np.uint64)


@pytest.mark.parametrize("hash_of", [hash_ids, colliding_hash], ids=["siphash", "colliding"])
def test_seen_ids_keep_what_a_set_would_keep(hash_of):
    rng = random.Random(5)
    pool = [f"{rng.randrange(10**7)}" for _ in range(3_000)] + ["", "é", "a b"]
    seen, expected = SeenIds(hash_of), set()
    for _ in range(60):  # pages of varied size, with repeats inside a page and across pages
        page = [rng.choice(pool) for _ in range(rng.randrange(0, 120))]
        new = seen.keep_new(page)
        wanted = []
        for text in page:
            wanted.append(text not in expected)
            expected.add(text)
        assert new.tolist() == wanted
    assert len(seen) == len(expected)


def test_ids_of_a_set_of_hundreds_of_thousands_cost_a_few_bytes_each():
    ids = [str(number) for number in range(10**9, 10**9 + 400_000)]
    seen = SeenIds()
    for start in range(0, len(ids), 1_000):
        assert seen.keep_new(ids[start:start + 1_000]).all()
    assert not seen.keep_new(ids[::997]).any()
    held = sum(hashes.nbytes + texts.nbytes for hashes, texts in seen._runs)
    assert held / len(ids) < 24  # a Python set of the same ids: about 95 bytes each


def test_a_submission_sent_again_is_kept_once():
    day = Interval(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))

    def submission(number, minute=0):
        return {"id": number, "attributes": {"created_at": f"2026-03-02T10:{minute:02d}:00Z",
                                             "answer_01": str(minute)}}

    seen, counts = SeenIds(), survey_api._Counts()
    first, rows = survey_api._page_columns("survey", "f1", [submission(1), submission(2), submission(2, 5)],
                                           "page 1", day, seen, counts)
    assert first["id"].to_pylist() == ["1", "2"] and rows == [1, 2]
    assert first["answer_01"].to_pylist() == ["0", "0"]  # the first of a page's repeats
    second, rows = survey_api._page_columns("survey", "f1", [submission(3), submission(1, 7)],
                                            "page 2", day, seen, counts)
    assert second["id"].to_pylist() == ["3"] and rows == [1]
    assert counts.repeated == 2
