"""Run the real ``xoflow_nightly`` DAG from a test, in-process, and read back what it did.

    from airflow_harness import run_dag_for_day

    result = run_dag_for_day(date(2026, 3, 1))
    assert result.state == "success"
    assert result.states["extract_and_validate[survey]"] == "success"

``dag.test()`` runs every task in this process (no scheduler, no worker subprocess), so
whatever a test monkeypatches (``pipelines.nightly``, settings, sources) is what the tasks
call. ``tests/conftest.py`` points Airflow at a fresh metadata DB for the test session.
"""

from __future__ import annotations

from datetime import date, datetime

from pipelines.airflow_env import (
    DAG_ID,
    RunSummary,
    TaskSummary,
    logical_date_for_day,
    run_dag_for_day,
)

__all__ = ["RunSummary", "TaskSummary", "dag_run_ids", "run_dag_for_day"]


def dag_run_ids(day: date, dag_id: str = DAG_ID) -> list[str]:
    """Run ids kept in the metadata DB for the run that loads ``day``."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    logical_date: datetime = logical_date_for_day(day)
    with create_session() as session:
        return list(
            session.scalars(
                select(DagRun.run_id).where(DagRun.dag_id == dag_id, DagRun.logical_date == logical_date)
            )
        )
