"""Weekly "emerging terms": the phrases whose share of texts rose fastest, per service.

A phrase (1-3 words, see ``pipelines.insight.text.phrases``) counts once per text. Its
rise is the smoothed ratio of the share of this week's texts that contain it to the
share of the baseline weeks' texts (the four weeks before):

    rate_ratio = ((m + 0.5) / (n + 1)) / ((b + 0.5) / (nb + 1))

with m of n texts this week and b of nb in the baseline. Shares, not counts, so that a
week still in progress compares fairly; the +0.5 keeps a phrase never seen before from
dividing by zero. A phrase needs ``MIN_MENTIONS`` texts this week and a rate ratio of at
least ``MIN_RATE_RATIO`` (a real rise, not the noise of a small week), a week needs
baseline texts, and a phrase inside (or around) one already listed is skipped as a repeat.

Texts in which redaction found personal data are left out: where one identifier was
caught, a name may still sit beside it, and a phrase list must never surface one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import sqlalchemy as sa

from pipelines import warehouse
from pipelines.conform.catalog import UNMAPPED
from pipelines.insight.periods import PeriodBounds
from pipelines.insight.tables import CASE_HISTORY, SEGMENT_KINDS, mart_emerging_terms
from pipelines.insight.text import has_placeholder, phrases
from pipelines.model import fact_feedback, fact_survey_response

BASELINE_WEEKS = 4
TOP_TERMS = 10
MIN_MENTIONS = 3
MIN_RATE_RATIO = 1.5


def _contains(longer: str, shorter: str) -> bool:
    return f" {shorter} " in f" {longer} "


class PhraseIndex:
    """The phrases of a set of texts, extracted once per distinct text, counted over any subset.

    Extracting a text's phrases is the costly part (about 25 us a text), and the mart counted
    each text once per segment kind: five times, over a week and its four-week baseline.
    Here a text's phrases are found once, however many texts share its words or segments
    count it; a subset's counts are then one weighted ``bincount`` over (text, phrase) pairs.
    """

    def __init__(self, texts: Sequence[str], max_words: int = 3) -> None:
        codes, distinct = pd.factorize(pd.Series(list(texts), dtype=object), sort=False)
        vocabulary: dict[str, int] = {}
        owners: list[int] = []
        terms: list[int] = []
        for number, text in enumerate(distinct):
            found = [vocabulary.setdefault(p, len(vocabulary)) for p in phrases(str(text), max_words)]
            terms.extend(found)
            owners.extend([number] * len(found))
        self.codes = np.asarray(codes, dtype=np.int64)  # each text's distinct-text number
        self.distinct = len(distinct)
        self.vocabulary = np.array(list(vocabulary), dtype=object)
        self.owners = np.asarray(owners, dtype=np.int64)
        self.terms = np.asarray(terms, dtype=np.int64)

    def counts(self, positions: np.ndarray) -> np.ndarray:
        """How many of the texts at ``positions`` contain each phrase of the vocabulary."""
        texts = np.bincount(self.codes[positions], minlength=self.distinct)
        return np.bincount(self.terms, weights=texts[self.owners],
                           minlength=len(self.vocabulary)).astype(np.int64)

    def emerging(self, current: np.ndarray, baseline: np.ndarray, top: int = TOP_TERMS,
                 min_mentions: int = MIN_MENTIONS) -> list[dict]:
        """The ``top`` phrases rising fastest in the texts at ``current`` against those at ``baseline``."""
        n, nb = len(current), len(baseline)
        if not n or not nb:
            return []
        now, before = self.counts(current), self.counts(baseline)
        ratio = ((now + 0.5) / (n + 1)) / ((before + 0.5) / (nb + 1))
        chosen_at = np.flatnonzero((now >= min_mentions) & (ratio >= MIN_RATE_RATIO))
        candidates = [(str(self.vocabulary[i]), int(now[i]), int(before[i]), float(ratio[i]))
                      for i in chosen_at]
        return _ranked(candidates, n, nb, top)


def _ranked(candidates: list[tuple[str, int, int, float]], n: int, nb: int, top: int) -> list[dict]:
    """Fastest rise first (then more mentions, longer phrase, alphabetical), skipping repeats."""
    candidates.sort(key=lambda c: (-c[3], -c[1], -len(c[0].split()), c[0]))
    chosen: list[dict] = []
    for term, mentions, base, ratio in candidates:
        if any(_contains(c["term"], term) or _contains(term, c["term"]) for c in chosen):
            continue
        chosen.append({"rank": len(chosen) + 1, "term": term, "mentions": mentions, "texts": n,
                       "baseline_mentions": base, "baseline_texts": nb, "rate_ratio": ratio})
        if len(chosen) == top:
            break
    return chosen


def emerging_terms(current: Sequence[str], baseline: Sequence[str], top: int = TOP_TERMS,
                   min_mentions: int = MIN_MENTIONS) -> list[dict]:
    """The ``top`` phrases rising fastest in ``current`` against ``baseline`` (both texts)."""
    index = PhraseIndex([*current, *baseline])
    positions = np.arange(len(current) + len(baseline))
    return index.emerging(positions[:len(current)], positions[len(current):], top, min_mentions)


_TEXT_SCHEMA = pa.schema([("day", pa.date32()), *[(name, pa.string()) for name in (
    "service_id", "text", "customer_type", "language", "region", "customer_history")]])


def _texts_by_service(conn: sa.Connection, start, end) -> Iterator[pd.DataFrame]:
    """Survey comments and feedback texts received in [start, end) with service and segments,
    one service at a time: a service's phrases are counted apart from the others', and a week
    and its baseline at 20M contacts (3M texts) took 1.6 GB when read at once.

    Each response's customer history comes from ``case_customer_history``, which the caller
    fills with the first activity for the period and its look-back (``pipelines.insight.marts``):
    computing it here scanned every case and contact ever loaded, once per week rebuilt.
    """
    histories = sa.table(CASE_HISTORY, sa.column("case_key"), sa.column("customer_history"))
    r = fact_survey_response
    history = sa.func.coalesce(histories.c.customer_history, "unknown")
    survey = (sa.select(r.c.response_date.label("day"), r.c.service_id, r.c.comment.label("text"),
                        r.c.customer_type, r.c.language, r.c.region, history.label("customer_history"))
              .select_from(r.outerjoin(histories, histories.c.case_key == r.c.case_key))
              .where(r.c.response_date >= start, r.c.response_date < end, r.c.comment.is_not(None),
                     r.c.service_id != UNMAPPED))
    f = fact_feedback
    feedback = (sa.select(f.c.feedback_date.label("day"), f.c.service_id, f.c.text, f.c.customer_type,
                          f.c.language, f.c.region, sa.literal("unknown").label("customer_history"))
                .where(f.c.feedback_date >= start, f.c.feedback_date < end, f.c.text.is_not(None),
                       f.c.service_id != UNMAPPED))
    texts = sa.select(sa.union_all(survey, feedback).subquery("texts"))
    # read as Arrow: a frame built from fetched rows took 3 of 5 s for the 1.3M texts of a week
    # and its baseline at the benchmark's default size. Spooled to a file per service as they
    # come: ordering them by service in the warehouse ran out of DuckDB's 512 MB at 3M texts.
    with tempfile.TemporaryDirectory(prefix="xoflow-texts-") as folder:
        ds.write_dataset(warehouse.export_batches(conn, texts, _TEXT_SCHEMA), folder, schema=_TEXT_SCHEMA,
                         format="arrow", partitioning=["service_id"], partitioning_flavor="hive")
        spooled = ds.dataset(folder, schema=_TEXT_SCHEMA, format="arrow", partitioning="hive")
        services = {ds.get_partition_keys(part.partition_expression)["service_id"]
                    for part in spooled.get_fragments()}
        for service in sorted(services):
            frame = spooled.to_table(filter=ds.field("service_id") == service).to_pandas()
            frame = frame[frame["text"].astype("string").str.strip().fillna("").ne("")]
            yield frame[~has_placeholder(frame["text"])]


def build(conn: sa.Connection, bounds: PeriodBounds) -> pd.DataFrame:
    """The mart's rows for one ISO week."""
    baseline_start = bounds.start - timedelta(weeks=BASELINE_WEEKS)
    rows = []
    for texts in _texts_by_service(conn, baseline_start, bounds.end):
        texts = texts.reset_index(drop=True)
        index = PhraseIndex(texts["text"].astype(str).tolist())
        in_week = (pd.to_datetime(texts["day"]).dt.date >= bounds.start).to_numpy()
        for kind in SEGMENT_KINDS:
            segment = (pd.Series("all", index=texts.index) if kind == "all"
                       else texts[kind].astype("string").fillna("unknown"))
            for (service, value), group in texts.groupby([texts["service_id"], segment], sort=True):
                positions = group.index.to_numpy()
                current, before = positions[in_week[positions]], positions[~in_week[positions]]
                for term in index.emerging(current, before):
                    rows.append({"period_start": bounds.start, "service_id": service, "segment_kind": kind,
                                 "segment": value, **term})
    columns = [c.name for c in mart_emerging_terms.columns]
    rows.sort(key=lambda row: (SEGMENT_KINDS.index(row["segment_kind"]), row["service_id"], row["segment"],
                               row["rank"]))  # as before the services were read apart
    return pd.DataFrame(rows, columns=columns)
