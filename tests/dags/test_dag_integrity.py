"""Every DAG file in dags/ imports cleanly, fast, and carries what on-call needs.

One set of tests per file, so a broken file fails on its own name. The files are
parsed the way Airflow's DAG processor does (``DagBag``), nothing is run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from pipelines.airflow_env import DAGS_FOLDER

DAG_FILES = sorted(p for p in DAGS_FOLDER.glob("*.py") if not p.name.startswith("_"))
MAX_PARSE_SECONDS = 2.0
HEAVY_MODULES = ("pandas", "great_expectations", "duckdb", "pyarrow")


@pytest.fixture(scope="module", params=DAG_FILES, ids=lambda path: path.name)
def bag(request) -> DagBag:
    return DagBag(dag_folder=str(request.param), collect_dags=True)


def test_there_are_dag_files():
    assert DAG_FILES, f"no DAG files in {DAGS_FOLDER}"


def test_file_imports_without_errors_and_defines_a_dag(bag):
    assert bag.import_errors == {}
    assert bag.dags, f"{bag.dag_folder} defines no DAG"


def test_file_parses_fast(bag):
    (stat,) = bag.dagbag_stats
    assert stat.duration.total_seconds() < MAX_PARSE_SECONDS


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda path: path.name)
def test_parsing_does_not_import_heavy_libraries(path: Path):
    # A fresh interpreter: this test session has long imported pandas and friends.
    script = textwrap.dedent(
        f"""
        import sys
        from pipelines import airflow_env
        airflow_env.configure()
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(path)!r}, collect_dags=True)
        assert not bag.import_errors, bag.import_errors
        print("HEAVY:", *(m for m in {HEAVY_MODULES!r} if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    (line,) = [line for line in out.stdout.splitlines() if line.startswith("HEAVY:")]
    assert line.split()[1:] == [], f"{path.name} imports {line.split()[1:]} at parse time"


def test_every_dag_has_tags_owner_and_docs(bag):
    for dag in bag.dags.values():
        assert dag.tags, f"{dag.dag_id}: no tags"
        assert dag.doc_md and len(dag.doc_md.strip()) > 200, f"{dag.dag_id}: doc_md missing or stub"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag.dag_id}.{task.task_id}: no owner"


def test_every_task_retries(bag):
    for dag in bag.dags.values():
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag.dag_id}.{task.task_id}: retries={task.retries}"


def test_every_dag_schedules_non_empty_data_intervals(bag):
    """A plain cron string gives empty intervals in Airflow 3 (CronTriggerTimetable)."""
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import DataInterval, TimeRestriction

    for dag in bag.dags.values():
        timetable = coerce_to_core_timetable(dag.timetable)
        assert timetable.can_be_scheduled, f"{dag.dag_id}: not scheduled"
        first = timetable.next_dagrun_info(
            last_automated_data_interval=None,
            restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True),
        )
        second = timetable.next_dagrun_info(
            last_automated_data_interval=first.data_interval,
            restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True),
        )
        for info in (first, second):
            assert isinstance(info.data_interval, DataInterval)
            assert info.data_interval.end > info.data_interval.start, f"{dag.dag_id}: empty interval"
        assert second.data_interval.start == first.data_interval.end, f"{dag.dag_id}: gaps or overlaps"


def test_every_dag_serializes_for_the_scheduler(bag):
    from airflow.serialization.serialized_objects import DagSerialization

    for dag in bag.dags.values():
        DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
