"""Schema evolution: a newly declared nullable column is added to the live table without losing rows;
a changed type or a removed column stops the source that loads the table, with a message naming both.

Each test runs on DuckDB and on a real PostgreSQL database. The "new model" is a copy of
a fact table from ``pipelines/model.py`` with one column added, retyped or removed, as a
contract change would make it.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import replace
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import nightly, schema_evolution, warehouse
from pipelines.conform import facts
from pipelines.demo import build_demo_sources
from pipelines.interval import Interval
from pipelines.model import fact_web_daily
from pipelines.settings import REPO_ROOT, Settings

DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 3)
NEW_COLUMN = sa.Column("completion_rate", sa.Float, comment="Task completions per task started.")


def variant(table: sa.Table, *, add: sa.Column | None = None, drop: str | None = None,
            retype: tuple[str, sa.types.TypeEngine] | None = None) -> sa.Table:
    """A copy of ``table`` in its own MetaData with one column added, dropped or retyped."""
    columns = []
    for column in table.columns:
        if column.name == drop:
            continue
        copied = column._copy()
        if retype and column.name == retype[0]:
            copied.type = retype[1]
        columns.append(copied)
    if add is not None:
        columns.append(add._copy())
    return sa.Table(table.name, sa.MetaData(), *columns, comment=table.comment)


@pytest.fixture(scope="module")
def postgres_url(server_database) -> str:
    return server_database("postgresql", "evolution")


def new_url(request, backend: str, tmp_path) -> str:
    """An empty warehouse: a new DuckDB file, or the module's PostgreSQL database emptied."""
    if backend == "duckdb":
        return f"duckdb:///{tmp_path / f'wh_{uuid.uuid4().hex[:8]}.duckdb'}"
    url = request.getfixturevalue("postgres_url")
    with warehouse.engine_for(url).begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS bi CASCADE"))
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    return url


@pytest.fixture(params=["duckdb", "postgresql"])
def engine(request, tmp_path):
    engine = warehouse.engine_for(new_url(request, request.param, tmp_path))
    warehouse.ensure_schema(engine)
    yield engine
    engine.dispose()


def web_frame(day: date, pages: list[str], sessions: int) -> pd.DataFrame:
    n = len(pages)
    return pd.DataFrame({"date_day": [day] * n, "page_path": pages, "service_id": ["a"] * n,
                         "journey_id": ["j"] * n, "stage": ["s"] * n, "sessions": [sessions] * n,
                         "task_starts": [4] * n, "task_completions": [3] * n, "status_checks": [1] * n})


def load(engine, table: sa.Table, frame: pd.DataFrame, day: date) -> None:
    with engine.begin() as conn:
        warehouse.replace_where(conn, table, table.c.date_day == day, warehouse.to_arrow(frame, table))


def rows(engine, columns: list[str]) -> list[tuple]:
    with engine.connect() as conn:
        query = sa.select(*[sa.column(c) for c in columns]).select_from(sa.table("fact_web_daily"))
        return sorted(conn.execute(query).all(), key=repr)


def column_comment(engine, table: str, column: str) -> str | None:
    with engine.connect() as conn:
        if engine.dialect.name == "duckdb":
            query = "SELECT comment FROM duckdb_columns() WHERE table_name = :t AND column_name = :c"
        else:
            query = ("SELECT col_description(a.attrelid, a.attnum) FROM pg_attribute a "
                     "WHERE a.attrelid = CAST(:t AS regclass) AND a.attname = :c")
        return conn.execute(sa.text(query), {"t": table, "c": column}).scalar()


# ------------------------------------------------------------------ the table itself


def test_a_new_nullable_column_is_added_and_every_row_is_kept(engine):
    old_columns = [c.name for c in fact_web_daily.columns]
    load(engine, fact_web_daily, web_frame(DAY1, ["/a/1", "/a/2", "/a/3"], 5), DAY1)
    before = rows(engine, old_columns)
    evolved = variant(fact_web_daily, add=NEW_COLUMN)

    with engine.begin() as conn:
        result = schema_evolution.evolve(conn, evolved)

    assert result.added == ["completion_rate"] and result.problems == []
    assert rows(engine, old_columns) == before
    assert rows(engine, ["completion_rate"]) == [(None,)] * 3
    assert column_comment(engine, "fact_web_daily", "completion_rate") == NEW_COLUMN.comment
    load(engine, evolved, web_frame(DAY2, ["/a/1"], 7).assign(completion_rate=0.75), DAY2)
    assert rows(engine, ["date_day", "completion_rate"]) == sorted(
        [(DAY1, None)] * 3 + [(DAY2, 0.75)], key=repr)
    with engine.begin() as conn:  # the next run finds nothing left to do
        assert schema_evolution.evolve(conn, evolved).added == []


@pytest.mark.parametrize(("change", "expected"), [
    ({"retype": ("sessions", sa.String())},
     r"fact_web_daily.*column sessions is integer.*declared as VARCHAR"),
    ({"drop": "status_checks"}, r"fact_web_daily.*column status_checks is in the warehouse table but no "
                                r"longer declared"),
    ({"add": sa.Column("visits", sa.Integer, nullable=False)}, r"required column visits .* cannot be added"),
])
def test_a_change_that_would_lose_or_reinterpret_rows_stops_with_a_clear_message(engine, change, expected):
    load(engine, fact_web_daily, web_frame(DAY1, ["/a/1", "/a/2"], 5), DAY1)
    before = rows(engine, [c.name for c in fact_web_daily.columns])

    with pytest.raises(schema_evolution.SchemaDrift, match=f"(?i){expected}"), engine.begin() as conn:
        schema_evolution.evolve(conn, variant(fact_web_daily, **change))

    assert rows(engine, [c.name for c in fact_web_daily.columns]) == before


def test_the_declared_schema_is_already_in_place_after_ensure_schema(engine):
    warehouse.ensure_schema(engine)  # a second time: idempotent
    with engine.connect() as conn:
        assert schema_evolution.check(conn, fact_web_daily) == []


# ------------------------------------------------------------------ through the nightly job


@pytest.fixture(scope="module")
def two_sources(tmp_path_factory) -> Settings:
    """Demo contact-center and web-analytics drops for two days, and schemas naming only those two."""
    home = tmp_path_factory.mktemp("evolution")
    schemas = home / "schemas"
    shutil.copytree(REPO_ROOT / "schemas", schemas)
    for path in (schemas / "sources").glob("*.yaml"):
        if path.stem not in ("contact_center", "web_analytics"):
            path.unlink()
    settings = Settings.from_env({"XOFLOW_HOME": str(home), "XOFLOW_SCHEMAS_DIR": str(schemas),
                                  "XOFLOW_SURVEY_API_KEY": "unused", "XOFLOW_PSEUDONYM_KEY": "test-key"})
    build_demo_sources(replace(settings, schemas_dir=REPO_ROOT / "schemas"), DAY1, DAY2, seed=5)
    return settings


@pytest.fixture(params=["duckdb", "postgresql"])
def job(request, two_sources, tmp_path) -> Settings:
    """A fresh warehouse, lake and staging area over the shared demo drops."""
    return replace(two_sources, home=tmp_path, lake_dir=tmp_path / "lake", raw_dir=tmp_path / "raw",
                   warehouse_url=new_url(request, request.param, tmp_path))


def web_rows_by_day(settings: Settings) -> dict[date, list[tuple]]:
    with warehouse.engine_for(settings.warehouse_url).connect() as conn:
        found = conn.execute(sa.select(fact_web_daily)).all()
    out: dict[date, list[tuple]] = {}
    for row in found:
        out.setdefault(row.date_day, []).append(tuple(row))
    return {day: sorted(values, key=repr) for day, values in out.items()}


def test_the_next_run_adds_a_new_contract_column_and_keeps_the_earlier_rows(job, monkeypatch):
    nightly.run_day(DAY1, "day1", job)
    day1_before = web_rows_by_day(job)[DAY1]
    evolved = variant(fact_web_daily, add=NEW_COLUMN)
    conform_web = facts.conform_web

    def conform_with_rate(*args, **kwargs):
        conformed = conform_web(*args, **kwargs)
        rows = conformed.rows
        conformed.rows = rows.assign(completion_rate=rows["task_completions"] / rows["task_starts"])
        return conformed

    monkeypatch.setitem(nightly.FACT_TABLES, "fact_web_daily", evolved)
    monkeypatch.setattr(facts, "conform_web", conform_with_rate)
    report = nightly.run_day(DAY2, "day2", job)

    assert set(report["loaded"]["loaded"]) == {"contact_center", "web_analytics"}
    with warehouse.engine_for(job.warehouse_url).connect() as conn:
        old_columns = [evolved.c[c.name] for c in fact_web_daily.columns]
        day1_after = conn.execute(sa.select(*old_columns, evolved.c.completion_rate).where(
            evolved.c.date_day == DAY1)).all()
        day2 = conn.execute(sa.select(evolved).where(evolved.c.date_day == DAY2)).all()
    assert sorted((tuple(r[:-1]) for r in day1_after), key=repr) == day1_before
    assert {r.completion_rate for r in day1_after} == {None}
    assert day2 and all(r.completion_rate == pytest.approx(r.task_completions / r.task_starts)
                        for r in day2 if r.task_starts)


@pytest.mark.parametrize(("change", "column"), [
    ({"retype": ("sessions", sa.String())}, "sessions"),
    ({"drop": "status_checks"}, "status_checks"),
])
def test_a_drifted_table_stops_its_source_while_the_others_load(job, monkeypatch, change, column):
    nightly.run_day(DAY1, "day1", job)
    day1_before = web_rows_by_day(job)
    monkeypatch.setitem(nightly.FACT_TABLES, "fact_web_daily", variant(fact_web_daily, **change))
    interval_start, interval_end = Interval.for_day(DAY2).start, Interval.for_day(DAY2).end
    for source in nightly.source_names(job):
        nightly.extract_and_validate(source, interval_start, interval_end, "day2", job)

    report = nightly.conform_and_load(interval_start, interval_end, "day2", job)

    assert set(report["loaded"]) == {"contact_center"}
    message = report["failed"]["web_analytics"]
    assert "SchemaDrift" in message and "fact_web_daily" in message and column in message
    assert web_rows_by_day(job) == day1_before  # nothing of day 2, nothing of day 1 lost
    with warehouse.engine_for(job.warehouse_url).connect() as conn:
        ledger = {r.source: r for r in conn.execute(sa.text(
            "SELECT source, status, message FROM ledger WHERE interval_start = :s"), {"s": interval_start})}
    assert ledger["contact_center"].status == "loaded"
    assert ledger["web_analytics"].status == "failed" and column in ledger["web_analytics"].message
    with pytest.raises(schema_evolution.SchemaDrift, match=f"web_analytics not loaded.*{column}"):
        nightly.build_marts(interval_start, interval_end, "day2", job)
