"""Shared test setup. One section per concern; keep each one self-contained."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

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


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The session's migrated Airflow metadata DB (its AIRFLOW_HOME)."""
    airflow_env.migrate_db()
    return AIRFLOW_HOME


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
