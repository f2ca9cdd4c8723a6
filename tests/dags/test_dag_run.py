"""The xoflow_nightly DAG, run for real with dag.test(), wires pipelines.nightly correctly.

``pipelines.nightly`` is replaced by fakes that record their calls and fail on demand;
``dag.test()`` runs the tasks in this process, so the fakes are what the tasks call.
What is checked here is Airflow's part: schedule and data interval, one extract per
source, retries, fail-fast errors, trigger rules and the final run state. The real
end-to-end run (real sources, real warehouse) belongs next to these tests, under the
same ``dag_run`` marker.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
from airflow_harness import dag_run_ids, run_dag_for_day

from pipelines import airflow_env, nightly
from pipelines.contracts import ContractError
from pipelines.interval import Interval
from pipelines.sources import SourceAuthError, SourceUnavailable

pytestmark = pytest.mark.dag_run

DAY = date(2026, 3, 1)
SOURCES = ["case_db", "contact_center", "survey", "web_analytics", "feedback"]


@dataclass
class FakeNightly:
    """Stands in for pipelines.nightly; ``failures[source]`` is raised on successive tries."""

    failures: dict[str, list[Exception]] = field(default_factory=dict)
    calls: list[tuple] = field(default_factory=list)

    def source_names(self, settings=None) -> list[str]:
        return list(SOURCES)

    extract_order = source_names

    def extract_and_validate(self, source, start, end, run_id, settings=None):
        self.calls.append(("extract_and_validate", source, start, end, run_id))
        if self.failures.get(source):
            raise self.failures[source].pop(0)
        return {"source": source, "rows_read": 3, "rows_valid": 3, "rows_quarantined": 0}

    def conform_and_load(self, start, end, run_id, settings=None):
        self.calls.append(("conform_and_load", None, start, end, run_id))
        return {"loaded": {}}

    def build_marts(self, start, end, run_id, settings=None):
        self.calls.append(("build_marts", None, start, end, run_id))
        return {"marts": []}

    def extracted(self) -> Counter:
        return Counter(source for name, source, *_ in self.calls if name == "extract_and_validate")

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeNightly:
        for name in ("source_names", "extract_order", "extract_and_validate", "conform_and_load",
                     "build_marts"):
            monkeypatch.setattr(nightly, name, getattr(self, name))
        return self


@pytest.fixture(scope="module")
def troubled_night(airflow_db):
    """One run of DAY where three sources misbehave and two are fine."""
    fake = FakeNightly(
        failures={
            "contact_center": [ContractError("contacts_2026-03-01.csv: column wait_seconds missing")],
            "survey": [SourceAuthError("survey API refused the key")],
            "web_analytics": [SourceUnavailable("web analytics export not there yet")],
        }
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        fake.install(monkeypatch)
        result = run_dag_for_day(DAY)
    return fake, result


def test_run_loads_the_day_as_a_half_open_utc_interval(troubled_night):
    fake, result = troubled_night
    day = Interval(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))
    assert result.interval == day
    for name, _source, start, end, run_id in fake.calls:
        assert (start, end, run_id) == (day.start, day.end, result.run_id), name
        assert type(start) is datetime and start.tzinfo is UTC, "plain UTC datetimes, not pendulum"


def test_every_source_is_extracted_once_per_try_and_named_in_the_grid(troubled_night):
    fake, result = troubled_night
    assert set(fake.extracted()) == set(SOURCES)
    assert {f"extract_and_validate[{s}]" for s in SOURCES} <= set(result.tasks)


@pytest.mark.parametrize("source", ["contact_center", "survey"])
def test_contract_and_auth_errors_fail_the_source_without_retry(troubled_night, source):
    fake, result = troubled_night
    task = result.tasks[f"extract_and_validate[{source}]"]
    assert (task.state, task.try_number) == ("failed", 1)
    assert fake.extracted()[source] == 1


def test_transient_error_is_retried(troubled_night):
    fake, result = troubled_night
    task = result.tasks["extract_and_validate[web_analytics]"]
    assert (task.state, task.try_number) == ("success", 2)
    assert fake.extracted()["web_analytics"] == 2


def test_other_sources_still_load_but_the_run_ends_failed(troubled_night):
    fake, result = troubled_night
    assert result.states["extract_and_validate[case_db]"] == "success"
    assert result.states["conform_and_load"] == "success"
    assert result.states["build_marts"] == "success"
    assert [c[0] for c in fake.calls[-2:]] == ["conform_and_load", "build_marts"]
    assert result.states["check_all_tasks_succeeded"] == "failed"
    assert result.state == "failed"
    assert sorted(result.failed) == [
        "check_all_tasks_succeeded",
        "extract_and_validate[contact_center]",
        "extract_and_validate[survey]",
    ]


def test_rerunning_a_day_replaces_its_earlier_run(troubled_night, monkeypatch):
    _, first = troubled_night
    fake = FakeNightly().install(monkeypatch)

    again = run_dag_for_day(DAY)

    assert again.state == "success", again.states
    assert again.run_id != first.run_id
    assert again.interval == first.interval
    assert all(t.state == "success" and t.try_number == 1 for t in again.tasks.values())
    assert Counter(fake.extracted()) == Counter(SOURCES)
    assert dag_run_ids(DAY) == [again.run_id]


def test_scheduled_run_for_a_day_has_the_same_interval_as_a_manual_one():
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import DataInterval, TimeRestriction

    dag = airflow_env.load_dag()
    timetable = coerce_to_core_timetable(dag.timetable)
    day = Interval.for_day(DAY)
    scheduled = timetable.next_dagrun_info(
        last_automated_data_interval=DataInterval(day.start - timedelta(days=1), day.start),
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True),
    )
    assert (scheduled.logical_date, scheduled.run_after) == (day.start, day.end)
    assert tuple(scheduled.data_interval) == (day.start, day.end)
    manual = timetable.infer_manual_data_interval(run_after=airflow_env.logical_date_for_day(DAY))
    assert tuple(manual) == (day.start, day.end)


def test_a_day_that_is_not_over_cannot_be_run():
    with pytest.raises(ValueError, match="not over yet"):
        run_dag_for_day(datetime.now(UTC).date())


def test_final_check_names_what_failed_by_source():
    from airflow.sdk.exceptions import AirflowFailException

    class RunningCheck:  # the parts of the task instance the check uses
        dag_id, run_id = "xoflow_nightly", "manual__x"

        def get_task_states(self, dag_id, run_ids):
            states = {"extract_and_validate_0": "success", "extract_and_validate_1": "failed"}
            return {"manual__x": {**states, "build_marts": "upstream_failed", "check": "running"}}

        def xcom_pull(self, task_ids):
            return {"list_sources": ["case_db", "survey"]}[task_ids]

    with pytest.raises(AirflowFailException) as failure:
        airflow_env.fail_if_any_task_failed(RunningCheck(), {"extract_and_validate": "list_sources"})
    assert "2 task(s)" in str(failure.value)
    assert "build_marts (upstream_failed), extract_and_validate[survey] (failed)" in str(failure.value)
