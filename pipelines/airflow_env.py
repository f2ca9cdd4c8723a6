"""Airflow for embedded use: environment, metadata DB, the fail-fast rule, one-day runs.

Everything here that touches Airflow imports it lazily, because Airflow reads its
configuration once, at first import: call :func:`configure` before anything imports
``airflow`` (the CLI does it first thing; ``tests/conftest.py`` does it at import time).

- :func:`configure` sets the ``AIRFLOW_*`` environment defaults (home, dags folder,
  SQLite metadata DB, no examples).
- :func:`migrate_db` is ``airflow db migrate``, run at most once per process and
  skipped when the schema is already at head.
- :func:`run_dag_for_day` runs the real ``xoflow_nightly`` DAG in-process (``dag.test``)
  for one UTC day and returns a :class:`RunSummary`; running the same day again
  replaces the earlier run. ``python -m pipelines.airflow_env 2026-03-01`` does it from
  a shell.
- :func:`task_defaults`, :func:`fail_fast` and :func:`fail_if_any_task_failed` are what
  the DAG file uses for retries and run state, so that it holds no logic of its own.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.interval import Interval
from pipelines.settings import REPO_ROOT

DAG_ID = "xoflow_nightly"
DAGS_FOLDER = REPO_ROOT / "dags"
DEFAULT_AIRFLOW_HOME = REPO_ROOT / ".airflow"

# Seconds before the first retry of a task; later retries back off exponentially.
# Tests set it to 0 so that a retried task runs again within a second or two.
RETRY_DELAY_ENV = "XOFLOW_RETRY_DELAY_SECONDS"
DEFAULT_RETRY_DELAY = timedelta(minutes=5)

# Task states that make the run a failure (``upstream_failed``: a task never ran because
# something it depends on failed).
FAILED_STATES = frozenset({"failed", "upstream_failed"})


# --------------------------------------------------------------------------- environment


def airflow_environment(airflow_home: Path | str | None = None) -> dict[str, str]:
    """The ``AIRFLOW_*`` variables for embedded use, with everything under ``airflow_home``."""
    home = Path(airflow_home or os.environ.get("AIRFLOW_HOME") or DEFAULT_AIRFLOW_HOME).resolve()
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }


def configure(airflow_home: Path | str | None = None, *, override: bool = False) -> dict[str, str]:
    """Set the Airflow environment for embedded use and return the values now in force.

    Without ``override`` a variable that is already set wins (``./dev``, a production
    deployment or the user's shell); with it (the test session) every value is replaced.
    Call before the first ``import airflow``: once Airflow has read its configuration,
    changing these variables has no effect, so doing that raises ``RuntimeError``.
    """
    if override and airflow_home is None:
        raise ValueError("configure(override=True) needs an explicit airflow_home")
    wanted = airflow_environment(airflow_home)
    changes = {
        k: v for k, v in wanted.items() if (override or k not in os.environ) and os.environ.get(k) != v
    }
    if changes and "airflow" in sys.modules:
        raise RuntimeError(
            f"airflow was imported before pipelines.airflow_env.configure(); {sorted(changes)} "
            "would be ignored. Call configure() before anything imports airflow."
        )
    os.environ.update(changes)
    Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    return {k: os.environ[k] for k in wanted}


_migrated: set[str] = set()


def migrate_db() -> None:
    """``airflow db migrate`` for the configured metadata DB: once per process, idempotent.

    A new database is created from the ORM and stamped at head (what ``db migrate`` does
    for an empty database); one already at head is left alone without loading migrations.
    """
    from airflow import settings

    url = settings.SQL_ALCHEMY_CONN
    if url in _migrated:
        return
    from airflow.utils import db

    try:  # 0.03 s instead of the 0.8 s alembic needs to find there is nothing to do
        with settings.Session() as session:
            at_head = db._get_current_revision(session) == db._get_script_object().get_current_head()
    except AttributeError:  # private helpers renamed in a later Airflow: just migrate
        at_head = False
    if not at_head:
        db.upgradedb()  # what `airflow db migrate` runs
    _migrated.add(url)


# --------------------------------------------------------------------------- task behaviour


def task_defaults(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``default_args`` for every task: owner, 2 h timeout, two retries with backoff.

    Airflow waits 5-10 minutes before the first retry and 10-20 before the second (base
    delay times 2**(try-1), plus up to as much again as jitter), never more than 30.
    ``XOFLOW_RETRY_DELAY_SECONDS`` replaces the 5-minute base (tests use 0, i.e. 1-2 s).
    Errors that retrying cannot fix skip the retries: see :func:`fail_fast`.
    """
    env = os.environ if env is None else env
    delay = DEFAULT_RETRY_DELAY
    if env.get(RETRY_DELAY_ENV):
        delay = timedelta(seconds=float(env[RETRY_DELAY_ENV]))
    return {
        "owner": "cx-data-engineering",
        "retries": 2,
        "retry_delay": delay,
        # A multiplier in Airflow 3 (the older True is read as 2.0).
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        # A hung source or query fails (and is retried) instead of holding the night.
        "execution_timeout": timedelta(hours=2),
    }


def _is_permanent(exc: BaseException) -> bool:
    # Imported here, on the failure path only: pipelines.sources imports pandas.
    from pipelines.contracts import ContractError
    from pipelines.secrets import MissingSecret
    from pipelines.sources import SourceAuthError

    return isinstance(exc, ContractError | SourceAuthError | MissingSecret)


@contextmanager
def fail_fast() -> Iterator[None]:
    """Let errors that a retry cannot fix fail the task at once, without using its retries.

    ``ContractError`` (the source broke its contract), ``SourceAuthError`` (our
    credentials were refused) and ``MissingSecret`` (no key configured) are re-raised as
    Airflow's ``AirflowFailException``, chained to the original so the task log shows both;
    every other error propagates unchanged and is retried as configured.
    """
    try:
        yield
    except Exception as exc:
        if not _is_permanent(exc):
            raise
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{type(exc).__name__} (not retried): {exc}") from exc


def utc(moment: datetime) -> datetime:
    """A context datetime (pendulum in Airflow) as a plain, exact ``datetime`` in UTC."""
    m = moment.astimezone(UTC)
    return datetime(m.year, m.month, m.day, m.hour, m.minute, m.second, m.microsecond, tzinfo=UTC)


def fail_if_any_task_failed(ti: Any, map_names: Mapping[str, str] | None = None) -> None:
    """Fail the calling task when any other task of its DAG run failed.

    The run's state follows its leaf tasks only, and ``conform_and_load`` runs (and can
    succeed) after a source failed, so without this final check such a run would be
    marked successful. ``ti`` is the running task instance from the task context;
    ``map_names`` maps a mapped task's id to the task whose XCom list it was expanded
    over, so the error names sources rather than map indexes.
    """
    from airflow.sdk.exceptions import AirflowFailException

    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    failed = {key: state for key, state in states.items() if state in FAILED_STATES}
    if not failed:
        return
    labels = []
    for key, state in sorted(failed.items()):
        task_id, _, index = key.rpartition("_")  # mapped task instances come as <task_id>_<i>
        if task_id in (map_names or {}) and index.isdigit():
            names = ti.xcom_pull(task_ids=map_names[task_id]) or []
            if int(index) < len(names):
                key = f"{task_id}[{names[int(index)]}]"
        labels.append(f"{key} ({state})")
    raise AirflowFailException(
        f"{len(labels)} task(s) of run {ti.run_id} did not succeed: {', '.join(labels)}. "
        "Whatever the other tasks loaded is in place; see the failed tasks' logs."
    )


# --------------------------------------------------------------------------- one-day runs


@dataclass(frozen=True)
class TaskSummary:
    task_id: str
    map_index: int
    state: str | None
    try_number: int


@dataclass(frozen=True)
class RunSummary:
    """What one DAG run did. ``tasks`` is keyed ``task_id`` or ``task_id[map label]``."""

    dag_id: str
    run_id: str
    logical_date: datetime
    interval: Interval
    state: str
    seconds: float
    tasks: dict[str, TaskSummary] = field(default_factory=dict)

    @property
    def states(self) -> dict[str, str | None]:
        return {key: t.state for key, t in self.tasks.items()}

    @property
    def failed(self) -> list[str]:
        return [key for key, t in self.tasks.items() if t.state in FAILED_STATES]

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


def logical_date_for_day(day: date) -> datetime:
    """The logical date ``dag.test`` and manual triggers need to load ``day``.

    The DAG's timetable infers a manual run's data interval as the last whole day
    *before* its logical date, so day D is loaded by a manual run at D+1 00:00 UTC.
    (Scheduled runs differ: the one that loads D has logical date D.)
    """
    return Interval.for_day(day).end


def load_dag(dag_id: str = DAG_ID, dags_folder: Path | None = None) -> Any:
    """Parse the dags folder the way Airflow does and return one DAG; import errors raise."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags_folder or DAGS_FOLDER), collect_dags=True)
    if bag.import_errors:
        raise RuntimeError(f"DAG files failed to import: {bag.import_errors}")
    if dag_id not in bag.dags:
        raise LookupError(f"no DAG {dag_id!r} in {dags_folder or DAGS_FOLDER}; found {sorted(bag.dags)}")
    return bag.dags[dag_id]


def run_dag_for_day(
    day: date,
    run_conf: dict[str, Any] | None = None,
    *,
    skip_wait: bool = False,
    dag_id: str = DAG_ID,
) -> RunSummary:
    """Run the DAG in this process (``dag.test``, no scheduler) for the UTC day ``day``.

    The run's data interval is [day 00:00, day+1 00:00) UTC. Running a day again
    replaces the earlier run of that day (``dag.test`` deletes a run with the same
    logical date, task history included). Before 02:00 UTC on the next day the run
    waits in ``wait_for_late_data`` unless ``skip_wait`` marks that task successful.
    Needs :func:`configure` before Airflow is imported; migrates the metadata DB if needed.
    """
    interval = Interval.for_day(day)
    if interval.end > datetime.now(UTC):
        raise ValueError(f"{day} is not over yet: its data interval {interval} closes in the future")
    migrate_db()
    dag = load_dag(dag_id)
    started = time.monotonic()
    dag_run = dag.test(
        logical_date=logical_date_for_day(day),
        run_conf=run_conf,
        mark_success_pattern="wait_for_late_data" if skip_wait else None,
    )
    return summarize_run(dag_id, dag_run.run_id, seconds=time.monotonic() - started)


def summarize_run(dag_id: str, run_id: str, seconds: float = 0.0) -> RunSummary:
    """Read a finished run and its task instances back from the metadata DB."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        dag_run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if dag_run is None:
            raise LookupError(f"no run {run_id!r} of {dag_id!r}")
        tis = session.scalars(
            select(TaskInstance)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            .order_by(TaskInstance.task_id, TaskInstance.map_index)
        ).all()
        tasks = {}
        for ti in tis:
            key = ti.task_id
            if ti.map_index >= 0:
                key = f"{ti.task_id}[{ti.rendered_map_index or ti.map_index}]"
            state = getattr(ti.state, "value", ti.state)
            tasks[key] = TaskSummary(ti.task_id, ti.map_index, state, ti.try_number)
        return RunSummary(
            dag_id=dag_id,
            run_id=run_id,
            logical_date=utc(dag_run.logical_date),
            interval=Interval(utc(dag_run.data_interval_start), utc(dag_run.data_interval_end)),
            state=str(getattr(dag_run.state, "value", dag_run.state)),
            seconds=seconds,
            tasks=tasks,
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.airflow_env 2026-03-01 [--skip-wait]``: run the DAG for a day."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipelines.airflow_env", description=main.__doc__)
    parser.add_argument("day", type=date.fromisoformat, help="UTC day to load, YYYY-MM-DD")
    parser.add_argument("--skip-wait", action="store_true", help="do not wait for 02:00 UTC")
    args = parser.parse_args(argv)
    configure()
    result = run_dag_for_day(args.day, skip_wait=args.skip_wait)
    print(f"{result.dag_id} {result.run_id} [{result.interval}]: {result.state} in {result.seconds:.1f} s")
    for key, task in result.tasks.items():
        print(f"  {key:<45} {task.state or '-':<16} try {task.try_number}")
    return 0 if result.succeeded else 1


if __name__ == "__main__":
    raise SystemExit(main())
