"""The ids a connector has already kept, to drop an API's repeats, in a few bytes per id.

A paged API can send a record twice when records shift between page requests. Keeping
every id of a form in a Python set cost about 95 bytes per id (the set's slot and the
``str``): 76 MB for the 800k responses of a form on a day 4x the benchmark's size, on
top of an extract whose other memory does not grow with the day. Here each id costs its
64-bit hash and its own text in an Arrow array (about 22 bytes for a 10-character id),
and the answer stays exact: a hash match is confirmed by comparing the ids themselves.

Ids are kept in sorted runs (hash order), merged as they grow, so that checking a page
is a binary search per run and adding one is a sort of the page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa


def hash_ids(ids: Sequence[str]) -> np.ndarray:
    """64-bit hashes of the ids (pandas' vectorised SipHash of each value)."""
    return pd.util.hash_array(np.asarray(ids, dtype=object))


class SeenIds:
    """Which ids were kept before; ``keep_new`` marks a page's new ids and remembers them."""

    def __init__(self, hash_of: Callable[[Sequence[str]], np.ndarray] = hash_ids) -> None:
        self._hash_of = hash_of
        self._runs: list[tuple[np.ndarray, pa.Array]] = []  # hashes ascending, the ids in that order

    def __len__(self) -> int:
        return sum(len(hashes) for hashes, _ in self._runs)

    def keep_new(self, ids: Sequence[str]) -> np.ndarray:
        """A mask of the ids not seen before nor earlier in ``ids``; those are remembered."""
        new = np.ones(len(ids), dtype=bool)
        if not len(ids):
            return new
        earlier: set[str] = set()
        for position, text in enumerate(ids):  # a page's own repeats: the first one is kept
            if text in earlier:
                new[position] = False
            earlier.add(text)
        hashes = np.asarray(self._hash_of(ids), dtype=np.uint64)
        for run_hashes, run_ids in self._runs:
            first = np.searchsorted(run_hashes, hashes)
            inside = first < len(run_hashes)
            matched = np.zeros(len(ids), dtype=bool)
            matched[inside] = run_hashes[first[inside]] == hashes[inside]
            for position in np.flatnonzero(matched & new):
                at = int(first[position])
                while at < len(run_hashes) and run_hashes[at] == hashes[position]:
                    if run_ids[at].as_py() == ids[position]:  # the same id, not only the same hash
                        new[position] = False
                        break
                    at += 1
        if new.any():
            fresh = hashes[new]
            order = np.argsort(fresh, kind="stable")
            self._runs.append((fresh[order], pa.array(ids, pa.string()).filter(pa.array(new)).take(order)))
            self._merge()
        return new

    def _merge(self) -> None:
        """Merge the newest run into the one before while it is at least half its size: each id
        is then merged a logarithmic number of times, and there are few runs to search."""
        while len(self._runs) > 1 and 2 * len(self._runs[-1][0]) >= len(self._runs[-2][0]):
            (older_hashes, older_ids), (newer_hashes, newer_ids) = self._runs[-2:]
            hashes = np.concatenate([older_hashes, newer_hashes])
            order = np.argsort(hashes, kind="stable")
            ids = pa.concat_arrays([older_ids, newer_ids]).take(order)
            self._runs[-2:] = [(hashes[order], ids)]
