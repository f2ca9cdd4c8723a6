"""The insight layer's marts, each recomputed whole for every period a run's days touch.

A mart over days, ISO weeks, months or fiscal quarters is replaced one period at a time
(delete the period's rows, insert a fresh computation) in the caller's transaction, so
re-running any day leaves identical rows, like ``pipelines.marts.rebuild_mart`` does per
day. SQL marts live in ``warehouse/marts/<table>.sql`` and receive ``:start_day`` and
``:end_day`` (the period, end exclusive), ``:period_start`` and their own parameters;
the emerging-terms mart is computed in Python. Registered in order: the daily bridge
``fact_text_theme`` comes before the weekly theme mart that reads it, the daily contact
counts ``agg_contact_daily`` before the segment and cost marts that add them up, and the
daily driver sums and answer counts (``agg_driver_daily``, ``agg_likert_daily``) before the
quarterly marts that add them up.

The reference tables they read (``dim_theme`` from ``schemas/themes.yaml``,
``dim_unit_cost`` from ``schemas/costs.yaml``) are replaced first, on every run.
"""

from __future__ import annotations

import logging
import time as clock
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.schema import CreateView

from pipelines import warehouse
from pipelines.contracts import SAFE_NAME, ContractError, read_schema_file
from pipelines.insight import emerging, statistics
from pipelines.insight.periods import Period, PeriodBounds, fiscal_year_quarter, following, touched
from pipelines.insight.tables import (
    CASE_HISTORY,
    FIRST_SEEN,
    agg_contact_daily,
    agg_driver_daily,
    agg_likert_daily,
    dim_theme,
    dim_unit_cost,
    fact_text_theme,
    mart_a11_collection_detail,
    mart_a11_likert,
    mart_contact_cost_monthly,
    mart_cycle_time_exceedance,
    mart_cycle_time_weekly,
    mart_driver_quarterly,
    mart_emerging_terms,
    mart_segment_daily,
    mart_theme_weekly,
)
from pipelines.insight.text import load_taxonomy
from pipelines.model import (
    PARTITION_INDEXES,
    SUPERSEDED_INDEXES,
    fact_feedback,
    fact_survey_response,
    ledger,
)
from pipelines.settings import Settings

log = logging.getLogger(__name__)

Params = Callable[[sa.Connection, Settings, PeriodBounds, list[date]], dict[str, Any]]


@dataclass(frozen=True)
class PeriodMart:
    table: sa.Table
    period: Period
    params: Params | None = None
    build: Callable[[sa.Connection, PeriodBounds], pd.DataFrame] | None = None  # Python, not SQL
    later_periods: int = 0  # periods after a touched one whose rows read it (a baseline)
    contact_customers: bool = False  # its SQL names the customers of the period's contacts
    # a Python build reading case_customer_history for the survey comments of its period and
    # of this long before it (and nothing else of it)
    first_seen_lookback: timedelta | None = None

    @property
    def period_column(self) -> str:
        return "date_day" if self.period is Period.DAY else "period_start"


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class CostModel:
    currency: str
    unit_costs: dict[str, float]
    target_fcr: float
    status_deflection_share: float


@cache
def load_costs(schemas_dir: Path) -> CostModel:
    """``schemas_dir/costs.yaml``, checked: channel names safe, shares within 0..1."""
    path, raw = read_schema_file(schemas_dir, "costs.yaml", "cost model")
    costs = {}
    for channel, cost in (raw.get("unit_costs") or {}).items():
        if not SAFE_NAME.match(str(channel)):
            raise ContractError(f"{path}: channel {channel!r} must match {SAFE_NAME.pattern}")
        if not isinstance(cost, int | float) or cost < 0:
            raise ContractError(f"{path}: unit cost of {channel} must be a number >= 0, not {cost!r}")
        costs[str(channel)] = float(cost)
    shares = {}
    for name in ("target_fcr", "status_deflection_share"):
        value = raw.get(name)
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ContractError(f"{path}: {name} must be a share between 0 and 1, not {value!r}")
        shares[name] = float(value)
    return CostModel(str(raw.get("currency", "USD")), costs, **shares)


@cache
def load_driver_window(schemas_dir: Path) -> timedelta:
    """``schemas_dir/drivers.yaml``'s ``contact_window_days``: how long before a survey response
    its case's latest contact may have started to be linked to it (a whole number of days >= 1)."""
    path, raw = read_schema_file(schemas_dir, "drivers.yaml", "driver settings")
    days = raw.get("contact_window_days")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ContractError(f"{path}: contact_window_days must be a whole number of days >= 1, not {days!r}")
    return timedelta(days=days)


def load_reference_tables(conn: sa.Connection, schemas_dir: Path) -> None:
    """Replace ``dim_theme`` and ``dim_unit_cost`` from their YAML files."""
    themes = load_taxonomy(Path(schemas_dir)).frame()
    warehouse.replace_where(conn, dim_theme, sa.true(), warehouse.to_arrow(themes, dim_theme))
    costs = load_costs(Path(schemas_dir))
    frame = pd.DataFrame({"channel_id": list(costs.unit_costs), "unit_cost": list(costs.unit_costs.values()),
                          "currency": costs.currency})
    warehouse.replace_where(conn, dim_unit_cost, sa.true(), warehouse.to_arrow(frame, dim_unit_cost))


# ---------------------------------------------------------------- parameters


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _fiscal(conn, settings, bounds: PeriodBounds, days) -> dict[str, Any]:
    fiscal_year, quarter = fiscal_year_quarter(bounds.start)
    return {"fiscal_year": fiscal_year, "fiscal_quarter": quarter}


def _review(conn, settings, bounds: PeriodBounds, days) -> dict[str, Any]:
    """The review covers its week up to the last day loaded so far: the latest of the run's
    days and the case source's loaded intervals (ledger) within the week."""
    ends = [d + timedelta(days=1) for d in days if bounds.start <= d < bounds.end]
    loaded = conn.execute(sa.select(sa.func.max(ledger.c.interval_end)).where(
        ledger.c.source == "case_db", ledger.c.status == "loaded",
        ledger.c.interval_end > _midnight(bounds.start),
        ledger.c.interval_end <= _midnight(bounds.end))).scalar()
    if loaded is not None:
        ends.append(pd.Timestamp(loaded).tz_convert(UTC).date() if pd.Timestamp(loaded).tzinfo
                    else pd.Timestamp(loaded).date())
    as_of = min(max(ends, default=bounds.end), bounds.end)
    return {"as_of": _midnight(as_of), "review_date": as_of - timedelta(days=1)}


def _costs(conn, settings: Settings, bounds, days) -> dict[str, Any]:
    costs = load_costs(Path(settings.schemas_dir))
    return {"target_fcr": costs.target_fcr, "status_deflection_share": costs.status_deflection_share}


def _drivers(conn, settings: Settings, bounds: PeriodBounds, days) -> dict[str, Any]:
    """The contact window, and the first contact day it can reach from the period's responses
    (a day early: a response's date need not be its UTC date): a bound on a column the contacts
    are stored in order of, so that DuckDB skips the older ones unread."""
    window = load_driver_window(Path(settings.schemas_dir))
    return {"contact_window": window, "contacts_from": bounds.start - window - timedelta(days=1)}


PERIOD_MARTS: dict[str, PeriodMart] = {
    "fact_text_theme": PeriodMart(fact_text_theme, Period.DAY),
    "agg_contact_daily": PeriodMart(agg_contact_daily, Period.DAY, contact_customers=True),
    "agg_driver_daily": PeriodMart(agg_driver_daily, Period.DAY, params=_drivers),
    "agg_likert_daily": PeriodMart(agg_likert_daily, Period.DAY),
    "mart_segment_daily": PeriodMart(mart_segment_daily, Period.DAY),
    "mart_theme_weekly": PeriodMart(mart_theme_weekly, Period.WEEK),
    "mart_emerging_terms": PeriodMart(mart_emerging_terms, Period.WEEK, build=emerging.build,
                                      later_periods=emerging.BASELINE_WEEKS,
                                      first_seen_lookback=timedelta(weeks=emerging.BASELINE_WEEKS)),
    "mart_cycle_time_exceedance": PeriodMart(mart_cycle_time_exceedance, Period.WEEK, params=_review),
    "mart_cycle_time_weekly": PeriodMart(mart_cycle_time_weekly, Period.WEEK),
    "mart_driver_quarterly": PeriodMart(mart_driver_quarterly, Period.FISCAL_QUARTER, params=_fiscal),
    "mart_a11_collection_detail": PeriodMart(mart_a11_collection_detail, Period.FISCAL_QUARTER,
                                             params=_fiscal),
    "mart_a11_likert": PeriodMart(mart_a11_likert, Period.FISCAL_QUARTER, params=_fiscal),
    "mart_contact_cost_monthly": PeriodMart(mart_contact_cost_monthly, Period.MONTH, params=_costs),
}


# ---------------------------------------------------------------- rebuilding


def _last_text_day(conn: sa.Connection, start: date, end: date) -> date | None:
    """The last day in [start, end) with a survey response or feedback.

    Bounded below as well as above, so that PostgreSQL reads only those days' blocks (through
    the day's BRIN) and DuckDB only their row groups: the latest day of all the responses, asked
    every night, scanned every response ever loaded (beside 730 days of 2,000 responses a day,
    0.09 s warm and 0.37 s cold, against 0.04 s beside 30 days).
    """
    days = [conn.execute(sa.select(sa.func.max(column)).where(column >= start, column < end)).scalar()
            for column in (fact_survey_response.c.response_date, fact_feedback.c.feedback_date)]
    days = [d for d in days if d is not None]
    return max(days) if days else None


def periods_to_rebuild(conn: sa.Connection, mart: PeriodMart, days: Iterable[date]) -> list[PeriodBounds]:
    """The periods the days touch, plus the later ones that read them and already have data."""
    periods = touched(mart.period, days)
    if mart.later_periods and periods:
        later = following(mart.period, periods[-1], mart.later_periods)
        last = _last_text_day(conn, later[0].start, later[-1].end)
        periods += [p for p in later if last is not None and p.start <= last and p not in periods]
    return sorted(set(periods))


def rebuild_period(conn: sa.Connection, settings: Settings, mart: PeriodMart, bounds: PeriodBounds,
                   days: list[date] | None = None) -> int:
    """Replace ``mart``'s rows for one period with a fresh computation; returns rows written."""
    table = mart.table
    conn.execute(sa.delete(table).where(table.c[mart.period_column] == bounds.start))
    if mart.build is not None:
        reads_first_seen = mart.first_seen_lookback is not None
        with _first_seen_for(conn, _first_seen_span(mart, bounds), needed=reads_first_seen):
            return warehouse.insert_rows(conn, table, warehouse.to_arrow(mart.build(conn, bounds), table))
    params = {"start_day": bounds.start, "end_day": bounds.end, "period_start": bounds.start}
    if mart.params is not None:
        params |= mart.params(conn, settings, bounds, list(days or bounds.days))
    query = sa.text((Path(settings.warehouse_sql_dir) / "marts" / f"{table.name}.sql").read_text())
    wanted = set(query.compile().params)
    missing = wanted - set(params)
    if missing:
        raise ValueError(f"{table.name}.sql needs parameters {sorted(missing)}")
    names = [c.name for c in table.columns]
    rows = query.bindparams(**{k: v for k, v in params.items() if k in wanted}).columns(
        *[sa.column(n) for n in names]).subquery("mart_rows")
    needs = FirstSeenSpan(bounds, bounds if mart.contact_customers else None)
    with _first_seen_for(conn, needs, needed=FIRST_SEEN in query.text or CASE_HISTORY in query.text):
        return warehouse.insert_select(conn, table, sa.select(*[rows.c[n] for n in names]))


# PostgreSQL only, like the facts' (pipelines.model.PARTITION_INDEXES): each period is deleted
# and its inputs read through these, so a night costs the same whatever history lies beside it.
PERIOD_INDEXES: tuple[sa.Index, ...] = tuple(
    sa.Index(f"ix_{mart.table.name}_{mart.period_column}", mart.table.c[mart.period_column]).ddl_if(
        dialect="postgresql")
    for mart in PERIOD_MARTS.values())


def ensure_indexes(conn: sa.Connection) -> None:
    """Create the partition indexes a warehouse made before they were declared lacks
    (``create_all`` adds indexes only with new tables) and drop the ones they replaced.
    PostgreSQL only."""
    if conn.dialect.name == "postgresql":
        tables = set(sa.inspect(conn).get_table_names())
        for index in (*PARTITION_INDEXES, *PERIOD_INDEXES):
            if index.table is not None and index.table.name in tables:
                index.create(conn, checkfirst=True)
        for name in SUPERSEDED_INDEXES:
            conn.execute(sa.schema.DropIndex(sa.Index(name), if_exists=True))


# ---------------------------------------------------------------- customers' first activity
# customer_history (first_time / returning) needs each customer's earliest case receipt or
# contact. Computed over the whole history in every mart query, that grew with the history and
# was repeated per mart and period; instead it is computed once per run, for the customers the
# rebuilt periods can name, into a temporary table the mart SQL reads (customer_first_seen).
# On PostgreSQL each customer's earliest activity is one probe of the (customer_key, time)
# indexes, in key order: the probes then walk each index from one end to the other, and a leaf
# page read serves the next keys too, where hash order read a page from disk per key once the
# index outgrew shared_buffers (1.6M customers at 5M contacts: 16 s of probes, then 5.7 s).
# Keys are sorted in the column's own collation, the indexes' order, which the sort that makes
# them distinct (UNION) already gives: sorted bytewise (COLLATE "C") instead, they were sorted a
# second time (1.6M customers at 5M contacts: 0.4-1.6 s of the 9-10 s). DuckDB groups the
# facts' activity once.


# A case names its customer when it was received or decided in the span, was still in process
# at some time in it (the weekly exceedance list), or was surveyed in it; or in the text span,
# with a comment (the emerging terms' weeks and their baseline read comments only).
_CASE_IN_SPAN = """(
    (received_date >= :start_day AND received_date < :end_day)
    OR (decided_date >= :start_day AND decided_date < :end_day)
    OR (received_date < :end_day AND (decided_date IS NULL OR decided_date >= :start_day)
        AND NOT (status = 'withdrawn' AND updated_at < :start_at)))"""

_SURVEYED_IN_SPAN = """(
    (response_date >= :start_day AND response_date < :end_day)
    OR (comment IS NOT NULL AND response_date >= :text_start AND response_date < :text_end))"""

# Of a row of fact_case (its columns unqualified): whether the case names its customer.
_CASE_NAMES_CUSTOMER = f"""(
    {_CASE_IN_SPAN}
    OR case_key IN (SELECT case_key FROM fact_survey_response WHERE {_SURVEYED_IN_SPAN}))"""

_FIRST_SEEN_KEYS = f"""
SELECT customer_key FROM contact_customer_day
WHERE contact_date >= :contact_start AND contact_date < :contact_end
UNION
SELECT customer_key FROM fact_case WHERE customer_key IS NOT NULL AND {_CASE_IN_SPAN}
UNION
SELECT c.customer_key FROM fact_survey_response r JOIN fact_case c ON c.case_key = r.case_key
WHERE {_SURVEYED_IN_SPAN} AND c.customer_key IS NOT NULL
"""

# DuckDB has no index to probe: one pass groups each customer's activity and keeps the
# customers the span names (a set of keys, then a probe and a group per customer, each held a
# hash table of customers: at 20M contacts, 6.4M customers, that ran out of the warehouse's
# 512 MB). A customer's contacts there are their first contact (customer_first_contact, kept
# by the contact loads: pipelines.conform.first_contacts) and the span's contacts, which name
# them, not all of fact_contact, which grows with the history.
_FIRST_SEEN_SQL = {
    "postgresql": f"""
INSERT INTO {{target}} (customer_key, first_at)
SELECT k.customer_key,
       LEAST((SELECT MIN(c.received_at) FROM fact_case c WHERE c.customer_key = k.customer_key),
             (SELECT x.first_start FROM customer_first_contact x WHERE x.customer_key = k.customer_key))
FROM (SELECT customer_key FROM ({_FIRST_SEEN_KEYS}) u ORDER BY customer_key) k
""",
    "default": f"""
INSERT INTO {{target}} (customer_key, first_at)
SELECT customer_key, MIN(first_at)
FROM (
    SELECT customer_key, first_start AS first_at, FALSE AS named FROM customer_first_contact
    UNION ALL
    SELECT customer_key, start_time, TRUE FROM fact_contact
    WHERE customer_key IS NOT NULL AND contact_date >= :contact_start AND contact_date < :contact_end
    UNION ALL
    SELECT customer_key, received_at, {_CASE_NAMES_CUSTOMER}
    FROM fact_case WHERE customer_key IS NOT NULL
) activity
GROUP BY customer_key
HAVING bool_or(named)
""",
}


# The survey marts joined each response to its case and the case to its customer's first
# activity: a hash of every customer the span names (1.6M at 5M contacts, most of them callers
# whose cases no response names) built again in each of six marts, about 1.5 s each on
# PostgreSQL. Each case's history is derived once instead, next to the first activity
# (CREATE TABLE ... AS: PostgreSQL may compute it in parallel, where INSERT ... SELECT never).
# Only for the cases that named the customers, the only ones a mart joins it for: every case of
# those customers grew with the history (beside 730 days, 191k cases of 44k customers; now 78k).
# One pass over fact_case with the surveyed cases' keys hashed: a UNION of the span's cases and
# the surveyed ones, each found by index, added 1.5 s at the benchmark's default size to dedupe.
_CASE_HISTORY_SQL = f"""
CREATE {{kind}} TABLE {{target}} AS
SELECT c.case_key,
       CASE WHEN f.first_at < c.received_at THEN 'returning' ELSE 'first_time' END AS customer_history
FROM fact_case c JOIN {{first_seen}} f ON f.customer_key = c.customer_key
WHERE {_CASE_NAMES_CUSTOMER}
"""


@dataclass(frozen=True)
class FirstSeenSpan:
    """Whose first activity is needed: the customers of the cases and survey responses of
    ``span`` (and of the cases in process during it), of the contacts of ``contacts``, and of
    the survey responses with a comment of ``texts``.

    Contacts outnumber the rest, and only the daily contact counts name their customers, so
    the month and quarter a night also rebuilds do not make it look up all their callers.
    Likewise only the emerging terms read the four weeks before their week, and only their
    comments: beside 730 days, looking up the customers of every response of those weeks
    (58k, against 8k with a comment) joined them to every case ever loaded, 0.3 s more than
    beside 30 days.
    """

    span: PeriodBounds
    contacts: PeriodBounds | None = None
    texts: PeriodBounds | None = None

    def covers(self, other: FirstSeenSpan) -> bool:
        def within(inner: PeriodBounds | None, outer: PeriodBounds | None) -> bool:
            return inner is None or (outer is not None and outer.start <= inner.start
                                     and inner.end <= outer.end)
        return (within(other.span, self.span) and within(other.contacts, self.contacts)
                and within(other.texts, self.texts))


@contextmanager
def _first_seen_for(conn: sa.Connection, span: FirstSeenSpan | None, needed: bool = True) -> Iterator[None]:
    """Make ``customer_first_seen`` cover ``span`` for the duration of the block: the one of an
    enclosing block when it covers the span, else a fresh one, dropped afterwards (the facts
    may change once the block is left)."""
    current = conn.info.get(FIRST_SEEN)
    if not needed or span is None or (current is not None and current.covers(span)):
        yield
        return
    fill_first_seen(conn, span)
    conn.info[FIRST_SEEN] = span
    try:
        yield
    finally:
        conn.info.pop(FIRST_SEEN, None)
        if current is not None:
            fill_first_seen(conn, current)
            conn.info[FIRST_SEEN] = current
        else:
            drop_first_seen(conn)


# On PostgreSQL, customer_first_seen is a temporary view of an unlogged table of the run's own
# (a unique name: concurrent runs do not wait on each other's), created and dropped within the
# marts' transaction: a query that scans a temporary table never runs in parallel, and the
# joins to the first activity are the largest part of the contact marts (agg_contact_daily,
# 5M contacts: 9.0 s on one core, 5.5 s on two).
_STORED_FIRST_SEEN = "xoflow_first_seen_table"  # conn.info key: the unlogged tables' names


def drop_first_seen(conn: sa.Connection) -> None:
    """Drop ``customer_first_seen`` and ``case_customer_history`` (and the tables behind them on
    PostgreSQL), if there are any."""
    stored = conn.info.pop(_STORED_FIRST_SEEN, None)
    if stored is None:
        for name in (CASE_HISTORY, FIRST_SEEN):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
        return
    for view, table in zip((CASE_HISTORY, FIRST_SEEN), stored, strict=True):
        conn.execute(sa.schema.DropView(sa.table(view), if_exists=True))
        conn.execute(sa.schema.DropTable(sa.table(table), if_exists=True))


def fill_first_seen(conn: sa.Connection, span: FirstSeenSpan | PeriodBounds) -> int:
    """(Re)create the temporary ``customer_first_seen`` for every customer that a mart over a
    period within ``span`` can name, and ``case_customer_history`` for their cases; returns
    the customers."""
    if isinstance(span, PeriodBounds):
        span = FirstSeenSpan(span, span)
    began = clock.perf_counter()
    none = PeriodBounds(span.span.start, span.span.start)
    contacts, texts = span.contacts or none, span.texts or none
    drop_first_seen(conn)
    postgres = conn.dialect.name == "postgresql"
    suffix = f"_{uuid.uuid4().hex[:12]}" if postgres else ""
    name, histories = f"{FIRST_SEEN}{suffix}", f"{CASE_HISTORY}{suffix}"
    table = sa.Table(name, sa.MetaData(), sa.Column("customer_key", sa.String()),
                     sa.Column("first_at", sa.DateTime(timezone=True)),
                     prefixes=["UNLOGGED" if postgres else "TEMPORARY"])
    table.create(conn)
    if postgres:
        conn.info[_STORED_FIRST_SEEN] = (histories, name)
    sql = _FIRST_SEEN_SQL.get(conn.dialect.name, _FIRST_SEEN_SQL["default"]).format(target=name)
    cases = {"start_day": span.span.start, "end_day": span.span.end, "start_at": _midnight(span.span.start),
             "text_start": texts.start, "text_end": texts.end}
    rows = conn.execute(sa.text(sql).execution_options(preserve_rowcount=True),
                        {**cases, "contact_start": contacts.start, "contact_end": contacts.end})
    if postgres:
        conn.execute(sa.text(f"ANALYZE {name}"))
    conn.execute(sa.text(_CASE_HISTORY_SQL.format(kind="UNLOGGED" if postgres else "TEMPORARY",
                                                  target=histories, first_seen=name)), cases)
    if postgres:
        conn.execute(sa.text(f"ANALYZE {histories}"))
        conn.execute(CreateView(sa.select(table), FIRST_SEEN, temporary=True))
        conn.execute(CreateView(sa.select(sa.table(histories, sa.column("case_key"),
                                                   sa.column("customer_history"))),
                                CASE_HISTORY, temporary=True))
    count = max(rows.rowcount or 0, 0)
    log.info("%s: first activity of %d customers in %.2f s", FIRST_SEEN, count, clock.perf_counter() - began)
    return count


# Tables the marts read; their planner statistics must be current (see _refresh_statistics).
SOURCE_TABLES = ("fact_case", "fact_contact", "contact_by_case", "contact_customer_day",
                 "customer_first_contact", "fact_survey_response", "fact_feedback", "fact_web_daily",
                 "dim_service", "dim_journey", "dim_theme", "dim_unit_cost")


# Daily marts that longer periods' marts read (their other days' rows were built on earlier nights).
DAILY_INPUTS = (fact_text_theme.name, agg_contact_daily.name, agg_driver_daily.name,
                agg_likert_daily.name)


# The tables whose (customer_key, time) indexes give each customer's first activity, and
# fact_contact, which the contact marts scan (see _mark_loaded_pages_visible).
VACUUMED_TABLES = ("fact_case", "customer_first_contact", "fact_contact")


def _mark_loaded_pages_visible(conn: sa.Connection) -> None:
    """An index-only probe still reads the table page of a row until VACUUM marks the page
    all-visible, which a bulk load leaves to autovacuum: every first-activity probe of a night
    just loaded read the heap (316k heap fetches for 321k customers at 1M contacts). VACUUM
    skips the pages already marked, so it costs the new pages only (0.6 s there), not history.
    It cannot run in the marts' transaction, so it runs on a connection of its own, after the
    load has committed: without index cleanup (an index pass reads whole indexes), without
    truncation (an exclusive lock), skipping a table someone holds locked. PostgreSQL only."""
    if conn.dialect.name != "postgresql":
        return
    with conn.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as maintenance:
        # a table the caller created in its own, uncommitted transaction is not there to vacuum
        committed = [name for name in VACUUMED_TABLES
                     if maintenance.execute(sa.text("SELECT to_regclass(:name)"), {"name": name}).scalar()]
        if committed:
            maintenance.execute(sa.text("VACUUM (INDEX_CLEANUP OFF, TRUNCATE false, SKIP_LOCKED) "
                                        + ", ".join(committed)))


def _refresh_statistics(conn: sa.Connection, last_day: date | None) -> None:
    """The planner statistics of the tables the marts read, renewed where a night's load made
    them stale (``pipelines.insight.statistics``), and the transaction's planner settings.
    PostgreSQL only: DuckDB needs nothing of the kind."""
    if conn.dialect.name == "postgresql":
        statistics.renew(conn, SOURCE_TABLES + DAILY_INPUTS, last_day)
        # JIT compiling each mart query cost about 1.2 s of a 1.4 s query (measured on the A-11
        # mart); the marts are many short queries, so the rest of the transaction goes without.
        conn.execute(sa.text("SET LOCAL jit = off"))
        # A hash join whose build side holds many NULL keys (responses whose case is unknown)
        # split itself into 65,536 batches under the default 4 MB and took 46 s instead of 2.6 s
        # (A-11 collection detail, 200k responses); the marts are few, large queries.
        conn.execute(sa.text("SET LOCAL work_mem = '256MB'"))
        # The default cost of a random page read (4, a spinning disk's) made a night's contacts
        # hash-join the whole of fact_case rather than probe its key: the segment and contact
        # cost marts took 0.4 s instead of 0.1 s beside 730 days of history, and grew with it.
        # The pages a night reads were mostly just written, so they are cached.
        conn.execute(sa.text("SET LOCAL random_page_cost = 1.1"))


def _first_seen_span(mart: PeriodMart, bounds: PeriodBounds) -> FirstSeenSpan:
    """The customers a Python-built mart's period can name: those of its comments and of the
    look-back's."""
    lookback = mart.first_seen_lookback or timedelta(0)
    return FirstSeenSpan(bounds, texts=PeriodBounds(bounds.start - lookback, bounds.end))


def _hull(periods: list[PeriodBounds]) -> PeriodBounds:
    return PeriodBounds(min(p.start for p in periods), max(p.end for p in periods))


def rebuild_period_marts(conn: sa.Connection, settings: Settings, days: list[date]) -> dict[str, int]:
    """Reference tables, then every insight mart for the periods ``days`` touch (in one transaction)."""
    began = clock.perf_counter()
    ensure_indexes(conn)
    load_reference_tables(conn, Path(settings.schemas_dir))
    _mark_loaded_pages_visible(conn)
    _refresh_statistics(conn, max(days, default=None))
    log.info("warehouse readied for the marts (indexes, reference tables, vacuum, statistics) in %.2f s",
             clock.perf_counter() - began)
    plan = {name: periods_to_rebuild(conn, mart, days) for name, mart in PERIOD_MARTS.items()}
    periods = [bounds for name, mart in PERIOD_MARTS.items() if mart.build is None for bounds in plan[name]]
    python_built = [_first_seen_span(mart, bounds) for name, mart in PERIOD_MARTS.items()
                    if mart.first_seen_lookback is not None for bounds in plan[name]]
    periods += [needs.span for needs in python_built]
    texts = [needs.texts for needs in python_built]
    contacts = [bounds for name, mart in PERIOD_MARTS.items() if mart.contact_customers
                for bounds in plan[name]]
    counts = {}
    # one first-activity table for every mart's periods (their span: at most a fiscal quarter)
    span = FirstSeenSpan(_hull(periods), _hull(contacts) if contacts else None,
                         _hull(texts) if texts else None) if periods else None
    with _first_seen_for(conn, span, needed=span is not None):
        for name, mart in PERIOD_MARTS.items():
            began = clock.perf_counter()
            counts[name] = sum(rebuild_period(conn, settings, mart, bounds, days) for bounds in plan[name])
            log.info("%s: %d rows over %d %s period(s) in %.2f s", name, counts[name], len(plan[name]),
                     mart.period.value, clock.perf_counter() - began)
    return counts
