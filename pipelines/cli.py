"""``xoflow``: run the nightly job, backfill, or the whole demo, from a terminal.

The commands call the same functions as the Airflow DAG's tasks (``pipelines.nightly``),
so what works here works under the scheduler.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from pipelines import nightly
from pipelines.interval import Interval
from pipelines.settings import Settings

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
console = Console(width=None if sys.stdout.isatty() else 120)


def _days(start: date, end: date) -> list[date]:
    if end < start:
        raise typer.BadParameter(f"end {end} is before start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _run_id(day: date) -> str:
    return f"cli__{day.isoformat()}__{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def _demo_survey_api(settings: Settings) -> Iterator[Settings]:
    """Serve the demo survey platform on loopback while the job runs."""
    from dataclasses import replace

    from pipelines.demo.survey_api_server import SurveyApiServer

    store = settings.landing_dir / "survey" / "responses.json"
    with SurveyApiServer(store, settings.survey_api_key) as server:
        yield replace(settings, survey_api_url=server.url)


def _run_days(days: list[date], settings: Settings, advance=None) -> list[dict]:
    results = []
    with Progress(console=console, transient=False) as progress:
        task = progress.add_task("nightly loads", total=len(days))
        for day in days:
            if advance is not None:
                advance(day)
            progress.update(task, description=f"loading {day}")
            run_id = _run_id(day)
            results.append(nightly.run_day(day, run_id, settings))
            progress.advance(task)
    if days:  # the last night's report, Data Docs and A-11 files, as the DAG's publish_report writes them
        night = Interval.for_day(days[-1])
        published = nightly.publish_report(night.start, night.end, run_id, settings)
        console.print(f"Journey health report: {published.get('report')}")
    return results


def _print_ledger(settings: Settings, days: list[date]) -> int:
    """Print the ledger for ``days``; returns how many source-days failed."""
    import sqlalchemy as sa

    from pipelines.model import ledger
    from pipelines.warehouse import engine_for

    start = datetime.combine(days[0], time(), tzinfo=UTC)
    end = datetime.combine(days[-1] + timedelta(days=1), time(), tzinfo=UTC)
    query = sa.select(ledger).where(ledger.c.interval_start >= start, ledger.c.interval_start < end).order_by(
        ledger.c.interval_start, ledger.c.source)
    with engine_for(settings.warehouse_url).connect() as conn:
        rows = conn.execute(query).mappings().all()
    table = Table(title="Ledger: rows read = loaded + quarantined")
    for name in ("day", "source", "status", "read", "loaded", "quarantined", "unmapped", "balanced"):
        table.add_column(name, justify="right" if name in {"read", "loaded", "quarantined", "unmapped"}
                         else "left")
    failed = 0
    for row in rows:
        balanced = row["rows_read"] == row["rows_loaded"] + row["rows_quarantined"]
        failed += row["status"] != "loaded"
        table.add_row(f"{row['interval_start']:%Y-%m-%d}", row["source"],
                      row["status"] if row["status"] == "loaded" else f"[red]{row['status']}[/red]",
                      str(row["rows_read"]), str(row["rows_loaded"]), str(row["rows_quarantined"]),
                      str(row["rows_unmapped"]), "yes" if balanced else "[red]NO[/red]")
    console.print(table)
    return failed


@app.command()
def run(day: Annotated[datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="Day to load (UTC).")]):
    """Load one day's data interval from the configured sources."""
    settings = Settings.from_env()
    days = [day.date()]
    _run_days(days, settings)
    raise typer.Exit(1 if _print_ledger(settings, days) else 0)


@app.command()
def backfill(
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="First day (UTC).")],
    end: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Last day, inclusive.")],
    workers: Annotated[int | None, typer.Option(
        min=1, help="Processes extracting days in parallel (default: the CPU count); "
        "1 loads the days one after another in this process.")] = None,
):
    """Load every day from START to END: extracts in parallel, loads and marts in date order."""
    from rich.markup import escape

    from pipelines.backfill import DayResult, run_backfill, throughput_table

    settings = Settings.from_env()
    days = _days(start.date(), end.date())
    with Progress(console=console, transient=False) as progress:
        task = progress.add_task("backfill", total=len(days))

        def loaded(day: DayResult) -> None:
            progress.update(task, description=f"loaded {day.day}")
            progress.advance(task)

        result = run_backfill(days, settings, workers, run_id=_run_id, on_day=loaded)
    last = result.days[-1]  # the last night's report, Data Docs and A-11 files, as `run` writes them
    night = Interval.for_day(last.day)
    published = nightly.publish_report(night.start, night.end, last.run_id, settings)
    console.print(f"Journey health report: {published.get('report')}")
    console.print(throughput_table([("backfill", result)], title=f"Backfill throughput: {len(days)} days"))
    failed = _print_ledger(settings, days)
    for day, source, message in result.failures:
        console.print(f"[red]failed[/red] {day} {source}: {escape(message)}")
    raise typer.Exit(1 if failed or result.failures else 0)


@app.command()
def demo(
    days: Annotated[int, typer.Argument(help="How many days, ending yesterday.")] = 7,
    seed: Annotated[int, typer.Option(help="Seed of the demo agency's data.")] = 7,
):
    """Build the demo agency's five source systems and run the nightly job for each day."""
    from pipelines.demo import advance_sources, build_demo_sources
    from pipelines.secrets import use_demo_secrets

    demo_keys = use_demo_secrets()  # throw-away keys, only where none is configured
    if demo_keys:
        console.print(f"Demo keys for {', '.join(demo_keys)} (set them to use your own)")
    settings = Settings.from_env()
    last = datetime.now(UTC).date() - timedelta(days=1)
    run_days = _days(last - timedelta(days=days - 1), last)
    console.print(f"Demo sources for {run_days[0]} .. {run_days[-1]} in {settings.landing_dir}")
    world = build_demo_sources(settings, run_days[0], run_days[-1], seed=seed,
                               as_of=datetime.combine(run_days[0] + timedelta(days=1), time(), tzinfo=UTC))

    def advance(day: date) -> None:  # the sources as they stand the night after `day`
        advance_sources(settings, world, datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC))

    with _demo_survey_api(settings) as served:
        _run_days(run_days, served, advance)
    failed = _print_ledger(settings, run_days)
    console.print(f"Warehouse: {settings.warehouse_url}\nLake: {settings.lake_dir}")
    raise typer.Exit(1 if failed else 0)


@app.command()
def report(
    day: Annotated[datetime | None, typer.Option(
        "--date", formats=["%Y-%m-%d"], help="Report as of this day (default: the last day loaded).")] = None,
):
    """Write the journey health report (and the GX Data Docs of that day's latest run)."""
    from pipelines.insight.publish import latest_loaded_day, report_for_day

    settings = Settings.from_env()
    chosen = day.date() if day else latest_loaded_day(settings)
    if chosen is None:
        console.print("Nothing loaded yet: run `xoflow run --date D` first.")
        raise typer.Exit(1)
    written = report_for_day(settings, chosen, run_id=None)
    console.print(f"Journey health report for {chosen}: {written['report']}")
    if written["data_docs"]:
        console.print(f"GX Data Docs: {written['data_docs']}")


@app.command()
def a11(
    fiscal_year: Annotated[int, typer.Option(help="Federal fiscal year (FY2026 starts 1 October 2025).")],
    quarter: Annotated[int, typer.Option(min=1, max=4, help="Fiscal quarter 1-4 (Q1 = October-December).")],
    out: Annotated[str | None, typer.Option(help="Folder for the CSV files (default: "
                                            "$XOFLOW_HOME/exports/a11/FY<year>_Q<quarter>).")] = None,
):
    """Write the OMB A-11 Section 280 files of one fiscal quarter for Touchpoints."""
    from pathlib import Path

    from pipelines.insight.a11 import export_quarter

    export = export_quarter(Settings.from_env(), fiscal_year, quarter, Path(out) if out else None)
    console.print(f"FY{fiscal_year} Q{quarter}: {export.details} collection details, "
                  f"{export.responses} responses")
    for path in export.files.values():
        console.print(f"  {path}")


@app.command()
def bench(
    size: Annotated[str, typer.Option(help="default (5M contacts), smoke (tiny), or a factor of default.")]
    = "default",
    warehouse: Annotated[str, typer.Option(help="Comma-separated: duckdb, postgres.")] = "duckdb,postgres",
    postgres_url: Annotated[str, typer.Option(
        help="Server for the PostgreSQL run: a fresh database named after this one, dropped after.")]
    = "postgresql+psycopg://postgres@127.0.0.1:5432/xoflow_bench",
    peer: Annotated[bool, typer.Option(help="Also time dlt loading the same files.")] = True,
    record: Annotated[bool, typer.Option(help="Append the table to BENCHMARKS.md.")] = True,
):
    """Benchmark one nightly day against DuckDB/PostgreSQL bulk loads and dlt (see benchmarks/)."""
    import tempfile
    from contextlib import nullcontext
    from pathlib import Path

    from benchmarks.run import append_benchmarks_md, render, run_bench, size_named
    from pipelines.postgres import fresh_database

    chosen = size_named(size)
    warehouses = [w.strip() for w in warehouse.split(",") if w.strip()]
    database = fresh_database(postgres_url) if "postgres" in warehouses else nullcontext(None)
    with database as url, tempfile.TemporaryDirectory(prefix="xoflow-bench-") as workdir:
        results = run_bench(chosen, warehouses, url, Path(workdir), peer=peer)
    text = render(results, chosen, size)
    console.print(text)
    if record:
        append_benchmarks_md(text)


def main() -> None:
    """Entry point. Exits without Python's interpreter teardown: with GX and DuckDB loaded in
    one process, DuckDB's bindings print dozens of harmless "nanobind: leaked" lines at
    teardown, which would bury the ledger summary. Output and logs are flushed first."""
    import logging
    import os

    code = 0
    try:
        app()  # standalone: prints usage errors and tracebacks, then raises SystemExit
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
