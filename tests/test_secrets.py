"""Secrets come from the environment or Airflow connections and are never written anywhere.

The last test runs the real DAG twice with known secrets: a survey API key and a
pseudonymisation key from Airflow connections (``AIRFLOW_CONN_*``, the way a deployment
passes them) and a database password in the case database's connection, then a night
whose survey key is refused. It captures every log line (pytest's log capture and the
process's stdout/stderr) and reads every file the runs left (raw zone, staging, lake,
the warehouse through SQL, Airflow's home and metadata DB) and finds no secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sqlite3
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from urllib.parse import quote

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from airflow_harness import run_dag_for_day
from privacy_outputs import Place, file_places, find, warehouse_places

from pipelines import nightly, secrets
from pipelines.demo import Volumes, build_demo_sources, write_case_db
from pipelines.demo.survey_api_server import SurveyApiServer
from pipelines.interval import Interval
from pipelines.secrets import MissingSecret, parse_connection, sqlalchemy_url
from pipelines.settings import Settings

SURVEY_KEY = "svy-Q7f2kLx9-secret-4417"
WRONG_SURVEY_KEY = "svy-wrong-Zp3m-secret-8802"
PSEUDONYM_KEY = "pseud-Hn5w2-secret-3391"
DB_PASSWORD = "dbpw-T8r4q-secret-5120"
SECRETS = (SURVEY_KEY, WRONG_SURVEY_KEY, PSEUDONYM_KEY, DB_PASSWORD)


# ------------------------------------------------------------------ where secrets come from


@pytest.mark.parametrize("uri", [
    "postgres://reader:p%40ss%2Fw0rd@db.example.gov:5433/cases?sslmode=require",
    "http://:the-key@https%3A%2F%2Fapi.example.gov/v1",
    "http://https://api.example.gov:8443/v1",
    "mysql://root@127.0.0.1:3306/cases",
    "generic://:only-a-password@",
])
def test_connection_uris_are_read_as_airflow_reads_them(uri):
    from airflow.sdk import Connection

    reference = Connection.from_uri(uri, conn_id="x")
    ours = parse_connection("x", uri)
    assert (ours.conn_type, ours.host, ours.login, ours.password, ours.schema, ours.port, ours.extra) == (
        reference.conn_type, reference.host or "", reference.login or "", reference.password or "",
        reference.schema or "", reference.port, reference.extra_dejson)


def test_json_connections_are_read_too():
    conn = parse_connection("x", json.dumps({"conn_type": "postgres", "host": "db", "login": "u",
                                             "password": "p w", "schema": "cases", "port": 5432,
                                             "extra": {"sslmode": "require"}}))
    assert sqlalchemy_url(conn) == "postgresql+psycopg://u:p%20w@db:5432/cases?sslmode=require"
    assert sa.make_url(sqlalchemy_url(conn)).password == "p w"


@pytest.mark.parametrize(("value", "url"), [
    ("sqlite:////opt/xoflow/sources/case_db.sqlite", "sqlite:////opt/xoflow/sources/case_db.sqlite"),
    ("postgresql://xoflow:s3cr%2Ft@warehouse-db:5432/xoflow", "postgresql+psycopg://xoflow:s3cr%2Ft@warehouse-db:5432/xoflow"),
    ('{"conn_type": "mysql", "host": "cases", "login": "etl", "password": "pw", "schema": "cases", '
     '"extra": {"sqlalchemy_driver": "mariadb+pymysql"}}', "mariadb+pymysql://etl:pw@cases/cases"),
])
def test_database_connections_become_sqlalchemy_urls(value, url):
    assert sqlalchemy_url(parse_connection("xoflow_case_db", value)) == url


def test_a_broken_connection_value_is_reported_without_quoting_it():
    with pytest.raises(ValueError) as error:
        parse_connection("xoflow_survey_api", '{"password": "hunter2-secret", oops}')
    assert "AIRFLOW_CONN_XOFLOW_SURVEY_API" in str(error.value) and "hunter2" not in str(error.value)


def test_environment_variables_win_over_connections():
    env = {"XOFLOW_PSEUDONYM_KEY": "from-env",
           "AIRFLOW_CONN_XOFLOW_PSEUDONYM_KEY": '{"conn_type": "generic", "password": "from-conn"}'}
    assert Settings.from_env(env).pseudonym_key == "from-env"
    del env["XOFLOW_PSEUDONYM_KEY"]
    assert Settings.from_env(env).pseudonym_key == "from-conn"


def test_settings_read_every_secret_from_its_connection(tmp_path):
    env = {
        "XOFLOW_HOME": str(tmp_path),
        "AIRFLOW_CONN_XOFLOW_SURVEY_API": json.dumps(
            {"conn_type": "http", "host": "https://touchpoints.example.gov", "schema": "api/v1",
             "password": SURVEY_KEY}),
        "AIRFLOW_CONN_XOFLOW_PSEUDONYM_KEY": f"generic://:{PSEUDONYM_KEY}@",
        "AIRFLOW_CONN_XOFLOW_CASE_DB": f"postgres://cases_reader:{DB_PASSWORD}@db.example.gov:5432/cases",
        "AIRFLOW_CONN_XOFLOW_WAREHOUSE": json.dumps(
            {"conn_type": "postgres", "login": "loader", "password": DB_PASSWORD, "host": "wh",
             "schema": "xo"}),
    }
    settings = Settings.from_env(env)
    assert settings.survey_api_url == "https://touchpoints.example.gov/api/v1"
    assert settings.survey_api_key == SURVEY_KEY and settings.pseudonym_key == PSEUDONYM_KEY
    case_db = sa.make_url(settings.case_db_url)
    assert (case_db.drivername, case_db.username, case_db.password, case_db.host, case_db.database) == (
        "postgresql+psycopg", "cases_reader", DB_PASSWORD, "db.example.gov", "cases")
    assert sa.make_url(settings.warehouse_url).password == DB_PASSWORD
    assert not any(s in repr(settings) for s in SECRETS)


def test_nothing_secret_has_a_default(tmp_path):
    settings = Settings.from_env({"XOFLOW_HOME": str(tmp_path)})
    assert settings.pseudonym_key == "" and settings.survey_api_key == ""
    assert settings.case_db_url.startswith("sqlite:///") and settings.warehouse_url.startswith("duckdb:///")


def test_a_run_without_a_pseudonym_key_stops_before_loading_with_a_clear_message(tmp_path):
    settings = Settings.from_env({"XOFLOW_HOME": str(tmp_path), "XOFLOW_SURVEY_API_KEY": "unused"})
    day = Interval.for_day(date(2026, 3, 1))
    where = "XOFLOW_PSEUDONYM_KEY or the Airflow connection 'xoflow_pseudonym_key'"
    with pytest.raises(MissingSecret, match=where):
        nightly.conform_and_load(day.start, day.end, "no-key", settings)
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_the_demo_uses_its_own_keys_only_where_none_is_set():
    env = {"XOFLOW_PSEUDONYM_KEY": "mine"}
    assert secrets.use_demo_secrets(env) == ["XOFLOW_SURVEY_API_KEY"]
    assert env["XOFLOW_PSEUDONYM_KEY"] == "mine" and env["XOFLOW_SURVEY_API_KEY"] == "demo-key"


# ------------------------------------------------------------------ the search can fail


def test_the_output_search_sees_secrets_in_every_kind_of_file(tmp_path):
    home = tmp_path / "home"
    (home / "lake" / "t").mkdir(parents=True)
    pq.write_table(pa.table({"v": [f"x{SURVEY_KEY}y"]}), home / "lake" / "t" / "part.parquet",
                   compression="zstd")
    with duckdb.connect(str(home / "warehouse.duckdb")) as db:
        db.execute("CREATE TABLE t AS SELECT ? AS v", [PSEUDONYM_KEY])
    with sqlite3.connect(home / "airflow.db") as db:
        db.execute("CREATE TABLE xcom (value TEXT)")
        db.execute("INSERT INTO xcom VALUES (?)", [DB_PASSWORD])
    (home / "task.log").write_text(f"... {WRONG_SURVEY_KEY} ...")
    found = {secret for secret, _ in find(SECRETS, file_places(home))}
    assert found == set(SECRETS)


# ------------------------------------------------------------------ the real DAG


DAY, BAD_DAY = date(2026, 4, 13), date(2026, 4, 14)


def midnight_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


@pytest.mark.dag_run
def test_a_dag_run_with_known_secrets_leaves_them_in_no_log_and_no_file(
    tmp_path, monkeypatch, caplog, capfd, airflow_db, server_database
):
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "home"
    monkeypatch.setenv("XOFLOW_HOME", str(home))
    for name in ("XOFLOW_WAREHOUSE_URL", "XOFLOW_CASE_DB_URL", "XOFLOW_LANDING_DIR", "XOFLOW_LAKE_DIR",
                 "XOFLOW_RAW_DIR", "XOFLOW_SURVEY_API_URL", "XOFLOW_SURVEY_API_KEY", "XOFLOW_PSEUDONYM_KEY"):
        monkeypatch.delenv(name, raising=False)
    # the case system on PostgreSQL, reached with a password inside the connection
    case_db = sa.make_url(server_database("postgresql", "secrets"))
    settings = replace(Settings.from_env(), case_db_url=case_db.render_as_string(hide_password=False))
    world = build_demo_sources(settings, DAY, BAD_DAY, seed=31, as_of=midnight_after(DAY),
                               volumes=Volumes(cases=(30, 50), contacts=(60, 90), feedback=(10, 20)))
    monkeypatch.setenv("AIRFLOW_CONN_XOFLOW_CASE_DB", (
        f"postgres://{case_db.username}:{quote(DB_PASSWORD, safe='')}@{case_db.host}:{case_db.port}"
        f"/{case_db.database}"))
    monkeypatch.setenv("AIRFLOW_CONN_XOFLOW_PSEUDONYM_KEY",
                       json.dumps({"conn_type": "generic", "password": PSEUDONYM_KEY}))
    store = settings.landing_dir / "survey" / "responses.json"
    with SurveyApiServer(store, SURVEY_KEY) as server:
        host, port = server.url.removeprefix("http://").split(":")
        connection = {"conn_type": "http", "host": f"http://{host}", "port": int(port)}
        monkeypatch.setenv("AIRFLOW_CONN_XOFLOW_SURVEY_API",
                           json.dumps({**connection, "password": SURVEY_KEY}))
        good = run_dag_for_day(DAY)
        write_case_db(world, settings.case_db_url, midnight_after(BAD_DAY))
        monkeypatch.setenv("AIRFLOW_CONN_XOFLOW_SURVEY_API",
                           json.dumps({**connection, "password": WRONG_SURVEY_KEY}))
        refused = run_dag_for_day(BAD_DAY)
    captured = capfd.readouterr()

    # the secrets were used: the night loaded with them, and the refused key failed its source
    assert good.state == "success", good.states
    assert refused.states["extract_and_validate[survey]"] == "failed"
    loaded = Settings.from_env()
    ledger = {(r["source"], r["interval_start"].date()): r
              for r in _query(loaded.warehouse_url, "SELECT * FROM ledger")}
    assert ledger[("survey", DAY)]["rows_loaded"] > 0 and ledger[("case_db", DAY)]["rows_loaded"] > 1000
    assert ledger[("survey", BAD_DAY)]["status"] == "failed"
    assert "refused the API key" in ledger[("survey", BAD_DAY)]["message"]
    engine = sa.create_engine(case_db)
    with engine.connect() as conn:
        valid = conn.execute(sa.text(
            "SELECT case_number FROM cases WHERE form_type IS NOT NULL "
            "AND channel IN ('online', 'paper', 'in_person') ORDER BY case_number LIMIT 50")).scalars().all()
    engine.dispose()
    keys = {hmac.new(PSEUDONYM_KEY.encode(), f"case:{n}".encode(), hashlib.sha256).hexdigest()[:32]
            for n in valid}
    loaded_keys = {r["case_key"] for r in _query(loaded.warehouse_url, "SELECT case_key FROM fact_case")}
    assert len(keys) == 50 and keys <= loaded_keys  # the pseudonyms were made with the connection's key
    assert "postgresql:cases" in json.dumps(_query(loaded.warehouse_url, "SELECT origin FROM quarantine"))

    # ... and are nowhere: logs, raw zone, staging, lake, warehouse, Airflow's files and DB
    logs = [Place("pytest log capture", caplog.text), Place("stdout", captured.out),
            Place("stderr", captured.err)]
    assert "extract_and_validate" in captured.out + captured.err + caplog.text  # the task logs were seen
    places = [*logs, *file_places(home), *file_places(Path(airflow_db)),
              *warehouse_places(loaded.warehouse_url)]
    assert {p.where.split("/")[0] for p in places} >= {"home", airflow_db.name}
    assert find(SECRETS, places) == []


def _query(url: str, sql: str, **params) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]
    finally:
        engine.dispose()
