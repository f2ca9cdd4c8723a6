"""The BI layer: plain-named, documented views; a read-only role that sees marts and views only.

A real PostgreSQL warehouse is loaded with one demo night, then the test connects as
``xoflow_bi``, the role BI tools use: it reads every view and the marts, and is refused
on every other table (quarantine, ledger, facts, anything added later) and on any write,
even after switching its session to read-write. The views' column comments (taken from
the model) are checked on DuckDB too.
"""

from __future__ import annotations

import shutil
from datetime import date

import pytest
import sqlalchemy as sa

from pipelines import bi, nightly, warehouse
from pipelines.demo import build_demo_sources
from pipelines.interval import Interval
from pipelines.marts import MARTS
from pipelines.settings import REPO_ROOT, Settings

DAY = date(2026, 3, 2)
SOURCES = ("contact_center", "web_analytics")
VIEWS = [view.name for view in bi.view_definitions(REPO_ROOT / "warehouse")]


@pytest.fixture(scope="module")
def loaded(server_database, tmp_path_factory) -> Settings:
    """A PostgreSQL warehouse with one night of two demo sources, loaded by the nightly job."""
    home = tmp_path_factory.mktemp("bi")
    schemas = home / "schemas"
    shutil.copytree(REPO_ROOT / "schemas", schemas)
    for path in (schemas / "sources").glob("*.yaml"):
        if path.stem not in SOURCES:
            path.unlink()
    env = {"XOFLOW_HOME": str(home), "XOFLOW_SURVEY_API_KEY": "unused", "XOFLOW_PSEUDONYM_KEY": "bi-test-key",
           "XOFLOW_WAREHOUSE_URL": server_database("postgresql", "bi")}
    build_demo_sources(Settings.from_env(env), DAY, DAY, seed=3)
    settings = Settings.from_env(env | {"XOFLOW_SCHEMAS_DIR": str(schemas)})
    nightly.run_day(DAY, "bi-night", settings)
    return settings


@pytest.fixture(scope="module")
def admin(loaded) -> sa.Engine:
    return warehouse.engine_for(loaded.warehouse_url)


@pytest.fixture(scope="module")
def bi_user(loaded):
    # a new session per connect: a session switched to read-write must not come back from a pool
    engine = sa.create_engine(sa.make_url(loaded.warehouse_url).set(username=bi.BI_ROLE, password=None),
                              poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


def base_tables(admin: sa.Engine) -> list[str]:
    with admin.connect() as conn:
        return list(conn.execute(sa.text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_type = 'BASE TABLE' ORDER BY 1")).scalars())


def refused(engine: sa.Engine, statement: str, *, read_write: bool = True) -> str:
    """The PostgreSQL error class a statement by the BI role ends in ("" when it succeeds)."""
    with engine.connect() as conn:
        if read_write:  # privileges, not the role's read-only default, must refuse it
            conn.execute(sa.text("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE"))
            conn.commit()
        try:
            conn.execute(sa.text(statement))
        except sa.exc.DBAPIError as error:
            conn.rollback()
            return type(error.orig).__name__
        conn.rollback()
        return ""


def test_the_bi_role_reads_every_view_by_its_plain_name_and_the_marts(bi_user, admin):
    with bi_user.connect() as conn:
        counts = {view: conn.execute(sa.text(f"SELECT count(*) FROM {view}")).scalar() for view in VIEWS}
        marts = {name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
                 for name, table in MARTS.items()}
    with admin.connect() as conn:
        expected = conn.execute(sa.text("SELECT count(*) FROM mart_journey_service_daily")).scalar()
        contacts = conn.execute(sa.text("SELECT count(*) FROM fact_contact")).scalar()
    assert {"journey_service_daily", "cases", "contacts", "survey_responses", "services"} <= set(counts)
    assert counts["journey_service_daily"] == marts["mart_journey_service_daily"] == expected > 0
    assert counts["contacts"] == contacts > 0


def test_the_bi_role_is_refused_every_table_that_is_not_a_mart(bi_user, admin):
    private = [t for t in base_tables(admin) if t not in MARTS]
    assert {"quarantine", "ledger", "fact_case", "fact_contact", "fact_survey_response"} <= set(private)
    outcomes = {table: refused(bi_user, f"SELECT * FROM public.{table} LIMIT 1", read_write=False)
                for table in private}
    assert outcomes == dict.fromkeys(private, "InsufficientPrivilege")


@pytest.mark.parametrize("statement", [
    "INSERT INTO public.mart_journey_service_daily (date_day) VALUES ('2026-03-02')",
    "UPDATE public.mart_journey_service_daily SET contacts = 0",
    "DELETE FROM public.mart_journey_service_daily",
    "TRUNCATE public.mart_journey_service_daily",
    "ALTER TABLE public.mart_journey_service_daily ADD COLUMN x int",
    "UPDATE bi.services SET service_name = 'x'",
    "DELETE FROM bi.channels",
    "INSERT INTO bi.calendar (date_day) VALUES (DATE '2026-03-02')",
    "DROP VIEW bi.cases",
    "CREATE VIEW bi.mine AS SELECT 1 AS x",
    "CREATE TABLE bi.mine (x int)",
    "CREATE TABLE public.mine (x int)",
    "INSERT INTO public.quarantine (source) VALUES ('x')",
    "DELETE FROM public.ledger",
    "COMMENT ON VIEW bi.cases IS 'mine'",
])
def test_the_bi_role_is_refused_any_write(bi_user, statement):
    assert refused(bi_user, statement) == "InsufficientPrivilege"


def test_the_bi_role_starts_read_only(bi_user):
    assert refused(bi_user, "CREATE TABLE bi.mine (x int)", read_write=False) == "ReadOnlySqlTransaction"
    # a tool that needs temporary tables switches its session to read-write; that is all it gains
    assert refused(bi_user, "CREATE TEMPORARY TABLE scratch (x int)", read_write=True) == ""


def test_no_view_reads_quarantine_ledger_messages_or_customer_keys(admin):
    with admin.connect() as conn:
        used = conn.execute(sa.text(
            "SELECT view_name, table_name, column_name FROM information_schema.view_column_usage "
            "WHERE view_schema = 'bi'")).all()
    assert {view for view, _, _ in used} == set(VIEWS)
    assert not [u for u in used if u.table_name == "quarantine"]
    assert not [u for u in used if (u.table_name, u.column_name) == ("ledger", "message")]
    assert not [u for u in used if u.column_name == "customer_key"]


def test_the_nightly_job_takes_back_privileges_granted_by_hand(admin, bi_user, loaded):
    with admin.begin() as conn:
        conn.execute(sa.text(f"GRANT SELECT ON quarantine TO {bi.BI_ROLE}"))
    assert refused(bi_user, "SELECT * FROM public.quarantine", read_write=False) == ""

    night = Interval.for_day(DAY)
    nightly.build_marts(night.start, night.end, "bi-night", loaded)  # what every night runs

    assert refused(bi_user, "SELECT * FROM public.quarantine", read_write=False) == "InsufficientPrivilege"


def comments_of_views(engine: sa.Engine) -> dict[tuple[str, str], str | None]:
    with engine.connect() as conn:
        if engine.dialect.name == "duckdb":
            rows = conn.execute(sa.text("SELECT table_name, column_name, comment FROM duckdb_columns() "
                                        "WHERE schema_name = 'bi'")).all()
            views = conn.execute(sa.text("SELECT view_name, comment FROM duckdb_views() "
                                         "WHERE schema_name = 'bi'")).all()
        else:
            rows = conn.execute(sa.text(
                "SELECT c.relname, a.attname, col_description(c.oid, a.attnum) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid "
                "WHERE n.nspname = 'bi' AND c.relkind = 'v' AND a.attnum > 0")).all()
            views = conn.execute(sa.text(
                "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = 'bi' AND c.relkind = 'v'")).all()
    return {(v, c): text for v, c, text in rows} | {(v, ""): text for v, text in views}


@pytest.mark.parametrize("backend", ["duckdb", "postgresql"])
def test_every_view_and_column_carries_the_models_comment(request, backend, tmp_path):
    from pipelines.model import dim_service, fact_contact, mart_journey_service_daily

    if backend == "duckdb":
        engine = warehouse.engine_for(f"duckdb:///{tmp_path / 'wh.duckdb'}")
        warehouse.ensure_schema(engine)
    else:
        engine = request.getfixturevalue("admin")
    comments = comments_of_views(engine)
    assert {view for view, _ in comments} == set(VIEWS)
    assert all(comments.values()), [key for key, text in comments.items() if not text]
    assert comments[("contacts", "wait_seconds")] == fact_contact.c.wait_seconds.comment
    assert comments[("journey_service_daily", "service_name")] == dim_service.c.service_name.comment
    assert comments[("journey_service_daily", "fcr_rate")] == mart_journey_service_daily.c.fcr_rate.comment
    assert comments[("cases", "")].startswith("One row per case")
