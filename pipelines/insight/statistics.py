"""Which planner statistics a night's marts must renew on PostgreSQL, and renewing them.

PostgreSQL plans from table statistics, which a bulk load leaves stale until autovacuum gets
to it: a fact just loaded looks like one row, and a join with it becomes a nested loop
(measured: 40 s instead of 0.2 s for the A-11 mart over 40k cases). ANALYZE samples 30,000
rows, from more pages as history grows (fact_contact, 10,000 contacts a day: 0.3 s beside 30
days, 0.7-1.3 s beside 730), while a night's rows change a long history's statistics by a
share that shrinks as it grows. So a night renews:

- every statistic of a table autovacuum would analyze now: never analyzed, or more rows
  changed since its last ANALYZE than its threshold (50 rows plus 10% of the table, by
  default);
- of the other day-partitioned facts, the day column alone, when its statistics end before
  the night's last day. Its index is BRIN, which cannot tell the planner the column's
  actual maximum as a B-tree can, so a day past the statistics looks like no rows at all
  (four marts went from 0.03 s to 1.5 s each).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pipelines.model import BRIN_DAY_INDEXES

log = logging.getLogger(__name__)

_TABLE_STATISTICS = sa.table("pg_stat_user_tables", sa.column("relid"), sa.column("relname"),
                             sa.column("schemaname"), sa.column("n_mod_since_analyze"),
                             sa.column("last_analyze"), sa.column("last_autoanalyze"))
_PG_CLASS = sa.table("pg_class", sa.column("oid"), sa.column("reltuples"))
_PG_STATS = sa.table("pg_stats", sa.column("schemaname"), sa.column("tablename"), sa.column("attname"),
                     sa.column("histogram_bounds"), sa.column("most_common_vals"))

# table -> its BRIN-indexed day column
DAY_COLUMNS: dict[str, str] = {index.table.name: index.columns[0].name for index in BRIN_DAY_INDEXES}


def stale_tables(conn: sa.Connection, names: Sequence[str]) -> list[str]:
    """The tables among ``names`` whose statistics autovacuum would renew now. The changed-row
    counts lag a commit by up to a second (a session reports them when it goes idle); a table
    never analyzed is known at once."""
    scale = sa.cast(sa.func.current_setting("autovacuum_analyze_scale_factor"), sa.Float)
    base = sa.cast(sa.func.current_setting("autovacuum_analyze_threshold"), sa.Float)
    stats, pages = _TABLE_STATISTICS, _PG_CLASS
    stale = sa.or_(sa.and_(stats.c.last_analyze.is_(None), stats.c.last_autoanalyze.is_(None)),
                   stats.c.n_mod_since_analyze > base + scale * sa.func.greatest(pages.c.reltuples, 0))
    query = (sa.select(stats.c.relname).join(pages, pages.c.oid == stats.c.relid)
             .where(stats.c.schemaname == sa.func.current_schema(), stats.c.relname.in_(list(names)), stale))
    found = set(conn.execute(query).scalars())
    return [name for name in names if name in found]


def day_columns_behind(conn: sa.Connection, names: Iterable[str], last_day: date) -> list[str]:
    """The day-partitioned tables among ``names`` whose day column's statistics (histogram and
    most common values) end before ``last_day``, or that have none."""
    tables = [name for name in names if name in DAY_COLUMNS]
    if not tables:
        return []
    days = postgresql.ARRAY(sa.Date)

    def as_days(column: sa.ColumnClause) -> sa.ColumnElement:
        return sa.func.coalesce(sa.cast(sa.cast(column, sa.Text), days), sa.cast(sa.literal("{}"), days))

    s = _PG_STATS
    values = sa.func.unnest(sa.func.array_cat(as_days(s.c.histogram_bounds), as_days(s.c.most_common_vals))
                            ).column_valued("day")
    known = sa.select(sa.func.max(values)).scalar_subquery()
    pairs = [sa.and_(s.c.tablename == table, s.c.attname == DAY_COLUMNS[table]) for table in tables]
    query = sa.select(s.c.tablename, known).where(s.c.schemaname == sa.func.current_schema(), sa.or_(*pairs))
    ends = dict(conn.execute(query).all())
    return [table for table in tables if ends.get(table) is None or ends[table] < last_day]


def renew(conn: sa.Connection, names: Sequence[str], last_day: date | None) -> None:
    """ANALYZE what ``stale_tables`` names, and the day column of what ``day_columns_behind``
    names besides. PostgreSQL only; it may run inside the caller's transaction."""
    whole = stale_tables(conn, names)
    rest = [name for name in names if name not in whole]
    day_only = day_columns_behind(conn, rest, last_day) if last_day is not None else []
    targets = [*whole, *(f"{table} ({DAY_COLUMNS[table]})" for table in day_only)]
    if targets:
        conn.execute(sa.text("ANALYZE " + ", ".join(targets)))
    log.info("statistics renewed: %s of %d tables; the day column of %s", ", ".join(whole) or "none",
             len(names), ", ".join(day_only) or "none")
