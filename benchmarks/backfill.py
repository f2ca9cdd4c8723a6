"""Backfill throughput: the same demo days loaded sequentially and with extract workers.

    ./dev python -m benchmarks.backfill --days 6 --workers 1,2 [--scale 1] [--repeat 1]

Builds the demo agency's sources once (``--scale`` multiplies its daily volumes), then for
each worker count backfills the same days into a fresh home (its own DuckDB warehouse,
lake, raw zone and staging) and prints one throughput column per run and the speed-up of
each worker count over ``workers=1`` (median wall time over ``--repeat`` runs; repeats are
interleaved so that load from other processes on the machine hits every setting alike).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from rich.console import Console

from pipelines.backfill import WORKER_NICENESS, BackfillResult, run_backfill, throughput_table
from pipelines.demo import Volumes, build_demo_sources
from pipelines.demo.survey_api_server import SurveyApiServer
from pipelines.secrets import use_demo_secrets
from pipelines.settings import Settings


def scaled_volumes(factor: float) -> Volumes:
    """The demo's default daily volumes times ``factor``."""
    def times(pair: tuple[int, int]) -> tuple[int, int]:
        return max(int(pair[0] * factor), 1), max(int(pair[1] * factor), 1)

    base = Volumes()
    return Volumes(cases=times(base.cases), contacts=times(base.contacts), feedback=times(base.feedback))


def fresh_home(sources: Settings, home: Path) -> Settings:
    """A new home (warehouse, lake, raw, staging) reading the shared, read-only sources."""
    return replace(sources, home=home, warehouse_url=f"duckdb:///{home / 'warehouse.duckdb'}",
                   raw_dir=home / "raw", lake_dir=home / "lake")


def run(days: int, workers: list[int], scale: float, repeat: int, seed: int, first: date,
        workdir: Path, console: Console, niceness: int = WORKER_NICENESS) -> dict[int, list[BackfillResult]]:
    """Time every worker count ``repeat`` times on the same sources; returns the runs per count."""
    use_demo_secrets()  # throw-away keys where none is configured
    last = first + timedelta(days=days - 1)
    sources = Settings.from_env({**os.environ, "XOFLOW_HOME": str(workdir / "sources")})
    console.print(f"Demo sources for {first} .. {last} (scale {scale}) in {sources.landing_dir}; "
                  f"load average before: {os.getloadavg()[0]:.1f}")
    build_demo_sources(sources, first, last, seed=seed, volumes=scaled_volumes(scale),
                       as_of=datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC))
    day_list = [first + timedelta(days=i) for i in range(days)]
    results: dict[int, list[BackfillResult]] = {w: [] for w in workers}
    with SurveyApiServer(sources.landing_dir / "survey" / "responses.json", sources.survey_api_key) as api:
        served = replace(sources, survey_api_url=api.url)
        for attempt in range(repeat):
            for count in workers:
                home = workdir / f"workers{count}_run{attempt + 1}"
                result = run_backfill(day_list, fresh_home(served, home), count, niceness=niceness)
                if result.failures:
                    raise RuntimeError(f"workers={count}: {result.failures}")
                console.print(f"workers={count} run {attempt + 1}: {result.seconds:.1f} s")
                results[count].append(result)
                shutil.rmtree(home, ignore_errors=True)
    read = {r.rows_read for runs in results.values() for r in runs}
    if len(read) != 1:
        raise RuntimeError(f"runs read different row counts: {sorted(read)}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=6, help="days to backfill (default 6)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplier of the demo's daily volumes")
    parser.add_argument("--repeat", type=int, default=1, help="runs per worker count (median reported)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--niceness", type=int, default=WORKER_NICENESS,
                        help=f"CPU priority drop of the extract processes (default {WORKER_NICENESS})")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 3, 1), help="first day")
    parser.add_argument("--workdir", type=Path, help="keep the sources here (default: a temporary folder)")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    if 1 not in workers:
        workers.insert(0, 1)  # the baseline, measured in the same run
    console = Console(width=max(Console().width, 110))
    with tempfile.TemporaryDirectory(prefix="xoflow-backfill-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        results = run(args.days, workers, args.scale, args.repeat, args.seed, args.start, workdir, console,
                      args.niceness)
    columns = [(f"workers={w} #{i + 1}", r) for w, runs in results.items() for i, r in enumerate(runs)]
    console.print(throughput_table(columns, title=f"Backfill of {args.days} demo days, scale {args.scale}, "
                                                  f"extract workers at nice +{args.niceness}"))
    baseline = statistics.median(r.seconds for r in results[1])
    for count, runs in results.items():
        walls = [r.seconds for r in runs]
        console.print(f"workers={count}: median {statistics.median(walls):.1f} s "
                      f"(runs {', '.join(f'{w:.1f}' for w in walls)}), "
                      f"speed-up over workers=1: {baseline / statistics.median(walls):.2f}x")
    console.print(f"cores: {os.cpu_count()}; load average (1, 5, 15 min) at the end: "
                  f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    logging_shutdown_and_exit()


def logging_shutdown_and_exit() -> None:
    """Leave without interpreter teardown (DuckDB's bindings print "nanobind: leaked" lines)."""
    import logging
    import sys

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
