"""Marts: SQL files in ``warehouse/marts`` recomputed for the days a run touched.

Each file is one SELECT with ``:start_day``/``:end_day`` parameters; its rows replace
the mart's rows for those days in one transaction.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from pipelines import warehouse
from pipelines.insight.marts import PERIOD_MARTS, rebuild_period_marts
from pipelines.model import MARTS

# The insight layer's marts (segments, themes, drivers, weekly review, A-11, cost): each is
# recomputed whole for every day, week, month or fiscal quarter the run's days touch, after
# the daily marts (MARTS, declared in pipelines.model). See pipelines.insight.marts.
__all__ = ["MARTS", "PERIOD_MARTS", "mart_query", "rebuild_mart", "rebuild_period_marts"]


def mart_query(sql_dir: Path, table: sa.Table) -> sa.TextClause:
    return sa.text((Path(sql_dir) / "marts" / f"{table.name}.sql").read_text())


def rebuild_mart(conn: sa.Connection, sql_dir: Path, table: sa.Table, days: list[date]) -> int:
    """Replace the mart's rows for ``days`` (a contiguous range) with a fresh computation."""
    start, end = min(days), max(days) + timedelta(days=1)
    if conn.dialect.name == "postgresql":
        # JIT compiling costs more than the indexed day it would speed up (see insight.marts)
        conn.execute(sa.text("SET LOCAL jit = off"))
    names = [c.name for c in table.columns]
    query = mart_query(sql_dir, table).bindparams(start_day=start, end_day=end).columns(
        *[sa.column(n) for n in names])
    conn.execute(sa.delete(table).where(table.c.date_day >= start, table.c.date_day < end))
    rows = query.subquery("mart_rows")
    return warehouse.insert_select(conn, table, sa.select(*[rows.c[n] for n in names]))
