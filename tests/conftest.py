"""Shared test setup. One section per concern; keep each one self-contained."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from pipelines import airflow_env

# --------------------------------------------------------------------------- Airflow environment
# Airflow reads its configuration once, when it is first imported, so this runs at import
# time, before any test module imports airflow. Every test session gets its own
# AIRFLOW_HOME and SQLite metadata DB in a temporary folder (never the developer's
# .airflow/), migrated on first use by pipelines.airflow_env.migrate_db().
# (Importing pipelines.airflow_env does not import airflow.)

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="xoflow-airflow-"))
atexit.register(shutil.rmtree, AIRFLOW_HOME, ignore_errors=True)
airflow_env.configure(AIRFLOW_HOME, override=True)
# A retried task runs again after 1-2 s instead of 5 minutes.
os.environ[airflow_env.RETRY_DELAY_ENV] = "0"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "dag_run: runs the real DAG in-process with dag.test() (a few seconds per run)"
    )
    config.addinivalue_line(
        "markers", "celery: runs the DAG on a distributed Airflow (scheduler, Celery worker; ~1.5 min)"
    )


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The session's migrated Airflow metadata DB (its AIRFLOW_HOME)."""
    airflow_env.migrate_db()
    return AIRFLOW_HOME


# --------------------------------------------------------------------------- secrets and home
# Secrets have no defaults (pipelines.secrets): the test session sets known throw-away
# ones, overriding whatever the developer's shell holds, so no real key reaches a test.
# XOFLOW_HOME points at a temporary folder, so a test that does not set its own never
# reads or writes (or purges) the developer's ./.xoflow.

TEST_PSEUDONYM_KEY = "test-pseudonym-key-5d0c"
TEST_SURVEY_API_KEY = "test-survey-api-key-81be"
os.environ["XOFLOW_PSEUDONYM_KEY"] = TEST_PSEUDONYM_KEY
os.environ["XOFLOW_SURVEY_API_KEY"] = TEST_SURVEY_API_KEY
XOFLOW_HOME = Path(tempfile.mkdtemp(prefix="xoflow-home-"))
atexit.register(shutil.rmtree, XOFLOW_HOME, ignore_errors=True)
os.environ["XOFLOW_HOME"] = str(XOFLOW_HOME)


# --------------------------------------------------------------------------- database servers
# PostgreSQL, MariaDB and Redis run on loopback on the development machine and in CI.
# Tests reach them through the fixtures below. An unreachable server skips the test with
# the reason on a user's machine, but fails it under CI=true, where the servers are part
# of the setup. Each test session creates its own databases, named
# xoflow_test_<purpose>_<random>, and drops them at the end, so concurrent runs never meet.
# XOFLOW_TEST_POSTGRES_URL / XOFLOW_TEST_MARIADB_URL / XOFLOW_TEST_REDIS_URL point elsewhere.

SERVER_URLS = {
    "postgresql": os.environ.get("XOFLOW_TEST_POSTGRES_URL",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    "mariadb": os.environ.get("XOFLOW_TEST_MARIADB_URL", "mariadb+pymysql://root@127.0.0.1:3306/mysql"),
    "redis": os.environ.get("XOFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
}


def server_unavailable(reason: str) -> NoReturn:
    """Skip with ``reason`` locally; fail under ``CI=true``, where every server must be up."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the servers are part of the CI setup)", pytrace=False)
    pytest.skip(reason)


def _reachable(kind: str) -> str:
    """The admin URL of a server that answers, or skip/fail naming what did not."""
    import socket

    import sqlalchemy as sa

    url = sa.make_url(SERVER_URLS[kind])
    safe = url.render_as_string(hide_password=True)
    try:
        if kind == "redis":
            with socket.create_connection((url.host or "127.0.0.1", url.port or 6379), timeout=3) as sock:
                sock.sendall(b"PING\r\n")
                if not sock.recv(64).startswith(b"+PONG"):
                    raise ConnectionError("no PONG")
        else:
            timeout = {"postgresql": {"connect_timeout": 3}, "mariadb": {"connect_timeout": 3}}[kind]
            engine = sa.create_engine(url, connect_args=timeout)
            try:
                with engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
            finally:
                engine.dispose()
    except Exception as exc:  # any failure to connect means: not usable here
        server_unavailable(f"{kind} server not reachable at {safe}: {type(exc).__name__}: {exc}")
    return SERVER_URLS[kind]


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    return _reachable("postgresql")


@pytest.fixture(scope="session")
def mariadb_admin_url() -> str:
    return _reachable("mariadb")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _reachable("redis")


@pytest.fixture(scope="session")
def server_database() -> Iterator[Callable[[str, str], str]]:
    """``server_database(kind, purpose)``: the URL of a new, empty database on the
    ``postgresql`` or ``mariadb`` server, dropped when the test session ends."""
    import re
    import secrets

    import sqlalchemy as sa

    created: list[tuple[str, str]] = []

    def admin(kind: str) -> sa.Engine:
        return sa.create_engine(SERVER_URLS[kind], isolation_level="AUTOCOMMIT")

    def create(kind: str, purpose: str) -> str:
        if not re.fullmatch(r"[a-z0-9_]{1,30}", purpose):
            raise ValueError(f"database purpose {purpose!r}: lower-case letters, digits, _")
        _reachable(kind)
        name = f"xoflow_test_{purpose}_{secrets.token_hex(4)}"
        engine = admin(kind)
        try:
            with engine.connect() as conn:
                suffix = " CHARACTER SET utf8mb4" if kind == "mariadb" else ""
                conn.execute(sa.text(f"CREATE DATABASE {name}{suffix}"))
        finally:
            engine.dispose()
        created.append((kind, name))
        return sa.make_url(SERVER_URLS[kind]).set(database=name).render_as_string(hide_password=False)

    yield create
    for kind, name in reversed(created):
        engine = admin(kind)
        try:
            with engine.connect() as conn:
                force = " WITH (FORCE)" if kind == "postgresql" else ""
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}{force}"))
        finally:
            engine.dispose()


# --------------------------------------------------------------------------- process exit
# With GX and DuckDB loaded in one process, DuckDB's bindings print dozens of harmless
# "nanobind: leaked ..." lines during interpreter teardown, after pytest's summary line.
# Once pytest has reported, leave without that teardown, keeping pytest's exit status.

_exit_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status.append(int(exitstatus))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _exit_status and not hasattr(config, "workerinput"):
        import logging
        import sys

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[-1])
