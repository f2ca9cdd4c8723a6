"""The nightly DAG under a real, distributed Airflow: scheduler, dag-processor, api-server
and a separate Celery worker, with Redis as broker and PostgreSQL as metadata DB and
result backend (``pipelines.airflow_celery``).

One past day of demo sources is built, the run for that day is triggered through the
REST API (v2, with a token from the simple auth manager), and once it has finished the
warehouse is checked against the source files and the case DB, read here directly. Up,
run and down takes 1.5-2.5 minutes on two cores, so the whole module shares one run.
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipelines.airflow_celery import CeleryAirflow, StackError
from pipelines.demo import build_demo_sources
from pipelines.demo.survey_api_server import SurveyApiServer
from pipelines.demo.world import end_of_day
from pipelines.settings import Settings

pytestmark = pytest.mark.celery

DAY = (datetime.now(UTC) - timedelta(days=2)).date()  # past, so the grace wait passes at once
SOURCES = {"case_db", "contact_center", "survey", "web_analytics", "feedback"}
CASE_CHANNELS = {"online", "paper", "in_person"}


@dataclass
class CeleryRun:
    settings: Settings
    broker_url: str
    queue: str
    run: dict[str, Any]
    tasks: list[dict[str, Any]]
    worker_log: str
    process_groups: list[int]
    seconds: float

    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        engine = sa.create_engine(self.settings.warehouse_url)
        try:
            with engine.connect() as conn:
                return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]
        finally:
            engine.dispose()


def _broker(redis_url: str) -> str:
    """The test server's Redis with a database number of this session's own (1-15)."""
    base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url
    return f"{base}/{secrets.randbelow(15) + 1}"


@pytest.fixture(scope="module")
def metadata_url(server_database) -> str:
    return server_database("postgresql", "airflow")


@pytest.fixture(scope="module")
def celery_run(tmp_path_factory, metadata_url, redis_url) -> CeleryRun:
    started = time.monotonic()
    home = tmp_path_factory.mktemp("celery_xoflow")
    keys = {"XOFLOW_SURVEY_API_KEY": secrets.token_urlsafe(12),
            "XOFLOW_PSEUDONYM_KEY": secrets.token_urlsafe(12)}
    settings = Settings.from_env({"XOFLOW_HOME": str(home), **keys})
    build_demo_sources(settings, DAY, DAY, seed=7, as_of=end_of_day(DAY))
    store = settings.landing_dir / "survey" / "responses.json"
    with SurveyApiServer(store, settings.survey_api_key) as survey_api:
        stack = CeleryAirflow(
            home=tmp_path_factory.mktemp("celery_airflow"),
            metadata_url=metadata_url,
            broker_url=_broker(redis_url),
            task_environment={"XOFLOW_HOME": str(home), "XOFLOW_SURVEY_API_URL": survey_api.url,
                              "XOFLOW_RETRY_DELAY_SECONDS": "0", **keys},
            concurrency=2,
        )
        with stack:
            triggered = stack.trigger_day(DAY)
            run = stack.wait_for_run(triggered["dag_run_id"], timeout=600)
            tasks = stack.task_instances(run["dag_run_id"])
        worker_log = stack.components["celery-worker"].log.read_text(errors="replace")
        groups = [c.process.pid for c in stack.components.values() if c.process]
    seconds = time.monotonic() - started
    print(f"\nCelery run of {DAY}: {run['state']}; stack up, run and down in {seconds:.0f} s")
    return CeleryRun(settings, stack.broker_url, stack.queue, run, tasks, worker_log, groups, seconds)


def test_triggered_run_loads_the_day_and_succeeds(celery_run: CeleryRun) -> None:
    run = celery_run.run
    assert run["run_type"] == "manual" and run["triggered_by"] == "rest_api"
    interval = tuple(datetime.fromisoformat(run[f"data_interval_{edge}"]) for edge in ("start", "end"))
    assert interval == (end_of_day(DAY) - timedelta(days=1), end_of_day(DAY))
    assert run["state"] == "success", {t["task_id"]: t["state"] for t in celery_run.tasks}


def test_every_task_ran_on_the_celery_worker(celery_run: CeleryRun) -> None:
    tasks = celery_run.tasks
    extracts = [t for t in tasks if t["task_id"] == "extract_and_validate"]
    assert {t["rendered_map_index"] for t in extracts} == SOURCES
    assert {t["task_id"] for t in tasks} >= {"wait_for_late_data", "list_sources", "conform_and_load",
                                             "build_marts", "check_all_tasks_succeeded"}
    for task in tasks:
        assert task["state"] == "success", task
        assert task["queue"] == celery_run.queue  # a queue only this test's worker consumes
        # the worker's supervisor logs every workload it ran, by task instance id
        finished = [line for line in celery_run.worker_log.splitlines()
                    if "Workload finished" in line and f"workload_id={task['id']}" in line]
        assert len(finished) == 1, task["task_id"]
        assert "final_state=success" in finished[0]


def test_ledger_balances_for_every_source(celery_run: CeleryRun) -> None:
    start = datetime.combine(DAY, datetime.min.time(), UTC)
    rows = celery_run.query("SELECT * FROM ledger WHERE interval_start = :s", s=start)

    assert {r["source"] for r in rows} == SOURCES
    for row in rows:
        assert row["status"] == "loaded", row
        assert row["rows_read"] > 0
        assert row["rows_read"] == row["rows_loaded"] + row["rows_quarantined"], row
    contacts = celery_run.settings.landing_dir / "contact_center" / f"contacts_{DAY.isoformat()}.csv"
    by_source = {r["source"]: r for r in rows}
    assert by_source["contact_center"]["rows_read"] == len(contacts.read_text().splitlines()) - 1


def test_mart_counts_the_valid_cases_received_that_day(celery_run: CeleryRun) -> None:
    received = _valid_cases_received(Path(celery_run.settings.case_db_url.removeprefix("sqlite:///")), DAY)

    rows = celery_run.query("SELECT sum(cases_received) AS n, count(*) AS groups "
                            "FROM mart_journey_service_daily WHERE date_day = :d", d=DAY)

    assert rows[0]["groups"] > 0
    assert rows[0]["n"] == received > 0


def _valid_cases_received(case_db: Path, day: date) -> int:
    """Cases received on ``day`` that pass the contract (form type present, known channel)."""
    with sqlite3.connect(case_db) as db:
        rows = db.execute("SELECT form_type, channel, received_at FROM cases").fetchall()
    return sum(1 for form_type, channel, received in rows
               if form_type is not None and channel in CASE_CHANNELS
               and datetime.fromisoformat(received).date() == day)


def test_everything_started_is_stopped_and_the_queue_forgotten(celery_run: CeleryRun) -> None:
    import redis

    assert len(celery_run.process_groups) == 4
    for group in celery_run.process_groups:
        with pytest.raises(ProcessLookupError):
            os.killpg(group, 0)  # no process of the component's group is left
    with redis.Redis.from_url(celery_run.broker_url) as broker:
        assert broker.keys(f"*{celery_run.queue}*") == []


def test_a_stack_that_fails_to_start_stops_what_it_did_start(
    celery_run: CeleryRun, metadata_url: str, redis_url: str, tmp_path: Path
) -> None:
    """The API server cannot bind its port; scheduler, dag-processor and worker were running."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        stack = CeleryAirflow(home=tmp_path, metadata_url=metadata_url, broker_url=_broker(redis_url),
                              port=taken.getsockname()[1])
        with pytest.raises(StackError, match="api-server exited"), stack:
            pytest.fail("the stack must not come up")

    groups = [c.process.pid for c in stack.components.values() if c.process]
    assert len(groups) == 4
    for group in groups:
        with pytest.raises(ProcessLookupError):
            os.killpg(group, 0)
