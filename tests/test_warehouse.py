"""Loading: partition replace is atomic and idempotent; newer case versions win."""

from datetime import UTC, date, datetime

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from pipelines import lake, warehouse
from pipelines.model import fact_case, fact_web_daily


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    warehouse.ensure_schema(engine)
    yield engine
    engine.dispose()


def web_rows(day: date, sessions: int) -> pa.Table:
    frame = pd.DataFrame({"date_day": [day, day], "page_path": ["/a/status", "/b/apply"],
                          "service_id": ["a", "b"], "journey_id": ["j", "j"], "stage": ["s", "s"],
                          "sessions": [sessions, sessions], "task_starts": [1, 1],
                          "task_completions": [1, 1], "status_checks": [0, 0]})
    return warehouse.to_arrow(frame, fact_web_daily)


def table_rows(engine, table) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(table)).all(), key=repr)


def replace_day(conn, day, rows):
    warehouse.replace_where(conn, fact_web_daily, fact_web_daily.c.date_day == day, rows)


def test_replacing_a_partition_twice_leaves_the_same_rows(engine):
    day = date(2026, 3, 1)
    for _ in range(2):
        with engine.begin() as conn:
            replace_day(conn, day, web_rows(day, 10))
            replace_day(conn, date(2026, 3, 2), web_rows(date(2026, 3, 2), 5))
    rows = table_rows(engine, fact_web_daily)
    assert len(rows) == 4 and sum(r.sessions for r in rows) == 30


def test_a_failure_inside_the_transaction_leaves_the_previous_partition(engine):
    day = date(2026, 3, 1)
    with engine.begin() as conn:
        replace_day(conn, day, web_rows(day, 10))
    before = table_rows(engine, fact_web_daily)
    with pytest.raises(RuntimeError, match="midway"), engine.begin() as conn:
        replace_day(conn, day, web_rows(day, 99))
        raise RuntimeError("killed midway")
    assert table_rows(engine, fact_web_daily) == before


def case_row(key: str, status: str, updated: datetime) -> dict:
    return {c.name: None for c in fact_case.columns} | {
        "case_key": key, "service_id": "s", "status": status, "updated_at": updated}


def test_upsert_keeps_the_newest_version_of_a_case(engine):
    old, new = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)
    def load(rows):
        with engine.begin() as conn:
            warehouse.upsert_newer(conn, fact_case, warehouse.to_arrow(pd.DataFrame(rows), fact_case),
                                   key="case_key", version="updated_at")
    load([case_row("k1", "received", old), case_row("k2", "received", old)])
    load([case_row("k1", "approved", new)])
    load([case_row("k1", "received", old)])  # re-running the older day changes nothing
    with engine.connect() as conn:
        status = dict(conn.execute(sa.select(fact_case.c.case_key, fact_case.c.status)).all())
    assert status == {"k1": "approved", "k2": "received"}


def test_lake_partition_is_replaced_whole(tmp_path):
    path = lake.partition_path(tmp_path, "fact_web_daily", "date_day", date(2026, 3, 1))
    lake.write_partition(path, pa.table({"x": [1, 2, 3]}))
    lake.write_partition(path, pa.table({"x": [4]}))
    assert lake.read_partition(path).to_pydict() == {"x": [4]}
    assert [p.name for p in path.parent.iterdir()] == ["part.parquet"]


@pytest.mark.parametrize("bad", ["../etc", "Drop Table", "x;y"])
def test_unsafe_lake_names_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="unsafe"):
        lake.partition_path(tmp_path, bad, "date_day", date(2026, 3, 1))
