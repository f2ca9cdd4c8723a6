"""
# xoflow_nightly

**Owner:** cx-data-engineering (xoflow maintainers). A failed run is the signal for
on-call (no alert callback is wired yet).

Loads one UTC day of operational (O) and experience (X) data into the warehouse:

1. `wait_for_late_data` waits until 02:00 UTC, two hours after the day closed, so that
   files and API data that land shortly after midnight are there.
2. `list_sources` lists the sources with a contract in `schemas/sources`.
3. `extract_and_validate` runs once per source (dynamic task mapping; the grid shows
   the source name): extract the day, keep the raw copy, validate against the contract,
   stage clean rows and quarantine bad ones, and conform the clean rows to the fact's rows
   (pseudonyms, redaction, codes; the survey's are conformed by the load, which reads the
   night's cases).
4. `conform_and_load` runs when every source is done, *even if some failed*: it loads
   what was staged and writes the ledger (rows read = loaded + quarantined).
5. `build_marts` recomputes the marts for the day (and the weeks, months and fiscal
   quarters it falls in).
6. `publish_report` writes the run's GX Data Docs, the journey health report
   (`$XOFLOW_HOME/reports/`) and the A-11 files of the day's fiscal quarter
   (`$XOFLOW_HOME/exports/a11/`).
7. `purge_expired_raw` runs after the marts *whatever happened before*: it deletes raw
   extracts and staged batches (data as received, unredacted) whose day is 30 days or
   more before the interval's last day (`schemas/privacy.yaml` `raw_zone.retention_days`,
   `XOFLOW_RAW_RETENTION_DAYS`), logs each and records it in the table `raw_purge`.
8. `check_all_tasks_succeeded` fails the run if any task above failed, so that a run with
   a failed source ends **failed** although the rest of the day was loaded.

The tasks only call `pipelines.nightly` (and `pipelines.retention`); all logic lives there.

## Secrets

The pseudonymisation key, the survey API key and database passwords come from Airflow
connections (`xoflow_pseudonym_key`, `xoflow_survey_api`, `xoflow_case_db`,
`xoflow_warehouse`) or `XOFLOW_*` environment variables, never from this file
(`pipelines/secrets.py`); Airflow masks them in task logs.

## Schedule and data interval

`CronDataIntervalTimetable("0 0 * * *", "UTC")`: the run for day D has data interval
[D 00:00, D+1 00:00) UTC and logical date D. It is created at D+1 00:00 and starts work
at 02:00 (`wait_for_late_data`). `catchup=False`, one run at a time.

## Retries

Every task is retried twice with exponential backoff (after 5-10, then 10-20 minutes)
for transient errors, e.g. `SourceUnavailable`. `ContractError` and `SourceAuthError`
fail the task at once (`pipelines.airflow_env.fail_fast`): retrying cannot fix a broken
contract or refused credentials.

## Rerunning a day

Every step replaces the day's partitions, so a rerun is safe.

- Airflow UI: *Clear* the run for that day (logical date D), or only its failed tasks
  and downstream. This keeps the same data interval.
- Several days, or days without a run (before `start_date`, skipped while paused):
  `airflow backfill create --dag-id xoflow_nightly --from-date D1 --to-date D2
  --reprocess-behavior completed` (the scheduler runs them; logical date D loads D).
- Without a scheduler, this DAG in-process: `python -m pipelines.airflow_env D
  [--skip-wait]`, or `pipelines.airflow_env.run_dag_for_day(date(...))` in Python. It
  calls `dag.test()` with logical date D+1 00:00 UTC, because a *manual* run's data
  interval is the last whole day before its logical date; so does
  `airflow dags test xoflow_nightly <D+1>T00:00:00+00:00`. Rerunning replaces the
  earlier `dag.test()` run of that day.
- Without Airflow at all: `xoflow run --date D` calls the same `pipelines.nightly`
  functions.

## Changelog

- 0.1.0: first version: grace wait, per-source mapped extract, conform and load,
  marts, final check; fail fast on contract and auth errors.
- 0.2.0: `purge_expired_raw` (raw-zone retention); secrets from Airflow connections.
- 0.3.0: `publish_report` (journey health report, GX Data Docs, A-11 export).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.sdk import CronDataIntervalTimetable, TriggerRule, dag, task

from pipelines import airflow_env


@dag(
    dag_id=airflow_env.DAG_ID,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=12),
    default_args=airflow_env.task_defaults(),
    tags=["xoflow", "nightly", "etl"],
    doc_md=__doc__,
)
def xoflow_nightly():
    wait_for_late_data = TimeDeltaSensor(
        task_id="wait_for_late_data",
        doc_md="Succeeds at data_interval_end + 2 h (02:00 UTC); at once for past days.",
        delta=timedelta(hours=2),
        mode="reschedule",
        poke_interval=timedelta(minutes=10).total_seconds(),
        timeout=timedelta(hours=6).total_seconds(),
    )

    @task
    def list_sources() -> list[str]:
        """The sources to load, longest extract first: one `extract_and_validate` per entry."""
        from pipelines import nightly

        with airflow_env.fail_fast():
            return nightly.extract_order()

    @task(map_index_template="{{ task.op_kwargs['source'] }}")
    def extract_and_validate(source: str, data_interval_start=None, data_interval_end=None, run_id=None):
        """Extract, keep raw, validate and stage one source for the data interval."""
        from pipelines import nightly

        with airflow_env.fail_fast():
            return nightly.extract_and_validate(
                source, airflow_env.utc(data_interval_start), airflow_env.utc(data_interval_end), run_id
            )

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def conform_and_load(data_interval_start=None, data_interval_end=None, run_id=None):
        """Conform and load what was staged, write the ledger; runs even if a source failed."""
        from pipelines import nightly

        with airflow_env.fail_fast():
            return nightly.conform_and_load(
                airflow_env.utc(data_interval_start), airflow_env.utc(data_interval_end), run_id
            )

    @task
    def build_marts(data_interval_start=None, data_interval_end=None, run_id=None):
        """Recompute the marts for the days of the data interval."""
        from pipelines import nightly

        with airflow_env.fail_fast():
            return nightly.build_marts(
                airflow_env.utc(data_interval_start), airflow_env.utc(data_interval_end), run_id
            )

    @task
    def publish_report(data_interval_start=None, data_interval_end=None, run_id=None):
        """The run's GX Data Docs, journey health report and its fiscal quarter's A-11 files."""
        from pipelines import nightly

        with airflow_env.fail_fast():
            return nightly.publish_report(
                airflow_env.utc(data_interval_start), airflow_env.utc(data_interval_end), run_id
            )

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def purge_expired_raw(data_interval_start=None, data_interval_end=None, run_id=None):
        """Delete raw extracts and staged batches past retention; runs even if a task failed."""
        from pipelines import retention

        with airflow_env.fail_fast():
            return retention.purge_expired(
                airflow_env.utc(data_interval_start), airflow_env.utc(data_interval_end), run_id
            )

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def check_all_tasks_succeeded(ti=None):
        """Fail (and so fail the run) if any other task of this run failed."""
        airflow_env.fail_if_any_task_failed(ti, map_names={"extract_and_validate": "list_sources"})

    sources = list_sources()
    extracted = extract_and_validate.expand(source=sources)
    marts = build_marts()
    wait_for_late_data >> sources
    purged = purge_expired_raw()
    extracted >> conform_and_load() >> marts >> purged
    published = publish_report()
    marts >> published
    [extracted, marts, purged, published] >> check_all_tasks_succeeded()


xoflow_nightly()
