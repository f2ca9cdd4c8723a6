"""Backfill a range of days on every core, with the same results as loading them one by one.

What may run in parallel and what may not:

- Extract + validate (``nightly.extract_and_validate``) of one (source, day) only reads its
  source and writes its own raw file and staging folder, so different pairs run in worker
  processes (spawned, not forked: DuckDB and GX hold threads and locks a fork would copy).
- Loading (``nightly.conform_and_load``) and the marts (``nightly.build_marts``) stay in date
  order in one thread of this process: DuckDB allows one writing process, case snapshots
  keep the newest version, and the contacts' 7-day repeat flags look at earlier days.
  While day d loads, the workers extract days d+1 .. d+lookahead (bounded, so staged rows
  do not pile up ahead of the loader).
- A snapshot source loaded ``initial_load: all_history`` (the case DB) extracts all history
  on its first load, decided by looking at the lake. Until one of its days has loaded rows in
  this backfill, its next day is extracted only once every earlier day is loaded, as in a
  sequential run; otherwise each early day would extract all history again. That extract
  is what the loader waits for, so the loader's thread runs it itself (no worker start-up
  on the critical path) while the workers extract the other sources.

- The extract processes run at a lower CPU priority (``WORKER_NICENESS``): they only work
  ahead, the loader is the critical path. ``workers=1`` is the plain sequential job, in
  this process, in ``nightly.run_day``'s order.

A source that fails on a day is recorded by the load as the nightly job records it (a failed
ledger row) and the backfill goes on; failures are listed in the result.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import logging
import multiprocessing
import os
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from rich.table import Table

from pipelines import nightly
from pipelines.contracts import load_contract
from pipelines.interval import Interval
from pipelines.schema_evolution import SchemaDrift
from pipelines.settings import Settings


def default_run_id(day: date) -> str:
    return f"backfill__{day.isoformat()}__{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class TaskTime:
    """When one extract or one day's load ran (wall clock, comparable across processes)."""

    kind: str  # "extract" or "load"
    day: date
    source: str | None
    pid: int
    started: float
    finished: float


@dataclass
class DayResult:
    day: date
    run_id: str
    extracted: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # source -> "Error: message" from its extract
    loaded: dict[str, Any] = field(default_factory=dict)  # conform_and_load's report
    marts: dict[str, Any] = field(default_factory=dict)
    marts_error: str | None = None


@dataclass
class BackfillResult:
    days: list[DayResult]
    workers: int
    lookahead: int
    seconds: float
    timings: list[TaskTime]

    def _sum(self, key: str) -> int:
        return sum(int(counts[key]) for d in self.days for counts in d.loaded.get("loaded", {}).values())

    @property
    def rows_read(self) -> int:
        return self._sum("rows_read")

    @property
    def rows_loaded(self) -> int:
        return self._sum("rows_loaded")

    @property
    def rows_quarantined(self) -> int:
        return self._sum("rows_quarantined")

    def busy_seconds(self, kind: str) -> float:
        return sum(t.finished - t.started for t in self.timings if t.kind == kind)

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / max(self.seconds, 1e-9)

    @property
    def days_per_minute(self) -> float:
        return len(self.days) * 60 / max(self.seconds, 1e-9)

    @property
    def parallelism(self) -> float:
        """Extract and load time over wall time: tasks in flight on average (1.0: one at a time)."""
        return (self.busy_seconds("extract") + self.busy_seconds("load")) / max(self.seconds, 1e-9)

    @property
    def failures(self) -> list[tuple[date, str, str]]:
        """(day, source or "marts", message) of everything that did not load."""
        found = []
        for d in self.days:
            for source, message in d.loaded.get("failed", {}).items():
                found.append((d.day, source, d.errors.get(source, message)))
            if d.marts_error:
                found.append((d.day, "marts", d.marts_error))
        return found


def _extract(source: str, day: date, run_id: str, settings: Settings) -> dict[str, Any]:
    """Worker side: one (source, day); errors come back as text, like ``nightly.run_day`` keeps them."""
    interval = Interval.for_day(day)
    started = time.time()
    try:
        summary = nightly.extract_and_validate(source, interval.start, interval.end, run_id, settings)
        outcome: dict[str, Any] = {"summary": summary}
    except Exception as error:  # the load records the source as failed; the backfill goes on
        outcome = {"error": f"{type(error).__name__}: {error}"}
    return {**outcome, "pid": os.getpid(), "started": started, "finished": time.time()}


def _load(day: date, run_id: str, settings: Settings) -> dict[str, Any]:
    """Loader side: one day's load and marts, in date order, in this process."""
    interval = Interval.for_day(day)
    started = time.time()
    loaded = nightly.conform_and_load(interval.start, interval.end, run_id, settings)
    marts: dict[str, Any] = {}
    marts_error = None
    try:
        marts = nightly.build_marts(interval.start, interval.end, run_id, settings)
    except SchemaDrift as error:  # raised after the marts hold the other sources: report, go on
        marts_error = f"{type(error).__name__}: {error}"
    return {"loaded": loaded, "marts": marts, "marts_error": marts_error,
            "pid": os.getpid(), "started": started, "finished": time.time()}


class _Inline(cf.Executor):
    """Runs each call at submit, in this process: ``workers=1`` is the plain sequential job."""

    def submit(self, fn, /, *args, **kwargs) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
        return future


# Extract workers yield the CPU to the loader: it is the critical path, they only work ahead.
WORKER_NICENESS = 10


def _start_worker(niceness: int) -> None:
    if niceness and hasattr(os, "nice"):
        os.nice(niceness)
    # With GX and DuckDB loaded, interpreter teardown prints dozens of harmless "nanobind:
    # leaked" lines per worker, burying the report; leave without it (as ``xoflow`` does).
    atexit.register(_leave_quietly)


def _leave_quietly() -> None:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _worker_pool(workers: int, niceness: int) -> cf.ProcessPoolExecutor:
    return cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_start_worker, initargs=(niceness,))


def snapshot_sources(settings: Settings, sources: list[str]) -> set[str]:
    """Sources whose first load extracts all history (``initial_load: all_history``)."""
    return {s for s in sources
            if load_contract(settings.schemas_dir, s).location.get("initial_load") == "all_history"}


def run_backfill(
    days: list[date],
    settings: Settings,
    workers: int | None = None,
    *,
    lookahead: int | None = None,
    run_id: Callable[[date], str] = default_run_id,
    niceness: int = WORKER_NICENESS,
    on_day: Callable[[DayResult], None] | None = None,
) -> BackfillResult:
    """Load ``days`` (in this order) with ``workers`` extract processes (default: the CPU count).

    ``workers=1`` runs exactly like ``nightly.run_day`` day after day, in this process.
    ``lookahead`` bounds how many days past the one loading may be extracted (default: workers).
    ``niceness`` lowers the extract processes' CPU priority (Unix), so the loader, the
    critical path, is not slowed by work done ahead.
    ``on_day`` is called (in this thread) after each day is loaded.
    Raises what the load raises for the whole run (no pseudonym key, warehouse unreachable).
    """
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    sequential = workers == 1
    ahead = 0 if sequential else (workers if lookahead is None else max(lookahead, 0))
    sources = nightly.source_names(settings)
    snapshot = snapshot_sources(settings, sources)
    results = [DayResult(day, run_id(day)) for day in days]
    timings: list[TaskTime] = []
    pending = [(i, source) for i in range(len(days)) for source in sources]  # day order, then load order
    running: dict[cf.Future, tuple[int, str]] = {}
    in_process: set[cf.Future] = set()  # of those, extracts run by the loader thread
    extracted = [0] * len(days)
    first_loaded: set[str] = set()  # snapshot sources with rows in the lake from this backfill
    loaded_days = 0
    loading: cf.Future | None = None

    def may_extract(index: int, source: str) -> bool:
        if index > loaded_days + ahead:
            return False
        return source not in snapshot or source in first_loaded or index == loaded_days

    began = time.perf_counter()
    extract_pool: cf.Executor = _Inline() if sequential else _worker_pool(workers, niceness)
    loader: cf.Executor = _Inline() if sequential else cf.ThreadPoolExecutor(1, "xoflow-load")
    try:
        while loaded_days < len(days):
            if loading is None and extracted[loaded_days] == len(sources):
                day = results[loaded_days]
                loading = loader.submit(_load, day.day, day.run_id, settings)
            for task in [t for t in pending if may_extract(*t)]:
                index, source = task
                day = results[index]
                if source in snapshot and source not in first_loaded:
                    # Its day loads next and the loader waits for it: run it there, without
                    # waiting for a worker process to start.
                    future = loader.submit(_extract, source, day.day, day.run_id, settings)
                    in_process.add(future)
                elif len(running) - len(in_process) < workers:
                    future = extract_pool.submit(_extract, source, day.day, day.run_id, settings)
                else:
                    continue
                pending.remove(task)
                running[future] = task
            watched = set(running) | ({loading} if loading is not None else set())
            done, _ = cf.wait(watched, return_when=cf.FIRST_COMPLETED)
            broken = any(isinstance(f.exception(), BrokenProcessPool)
                         for f in done if f in running and f not in in_process)
            for future in [f for f in running if f in done or (broken and f not in in_process)]:
                index, source = running.pop(future)
                day = results[index]
                if broken and future not in in_process:  # a worker died (memory?): its pool's extracts failed
                    outcome = {"error": "WorkerDied: an extract process ended abruptly", "pid": 0,
                               "started": time.time(), "finished": time.time()}
                else:
                    outcome = future.result()
                in_process.discard(future)
                if "error" in outcome:
                    day.errors[source] = outcome["error"]
                else:
                    day.extracted[source] = outcome["summary"]
                extracted[index] += 1
                timings.append(TaskTime("extract", day.day, source, outcome["pid"],
                                        outcome["started"], outcome["finished"]))
            if broken:
                extract_pool.shutdown(wait=False, cancel_futures=True)
                extract_pool = _worker_pool(workers, niceness)
            if loading is not None and loading in done:
                outcome = loading.result()  # raises what stops the whole run
                day = results[loaded_days]
                day.loaded, day.marts = outcome["loaded"], outcome["marts"]
                day.marts_error = outcome["marts_error"]
                timings.append(TaskTime("load", day.day, None, outcome["pid"], outcome["started"],
                                        outcome["finished"]))
                first_loaded |= {s for s in snapshot
                                 if day.loaded.get("loaded", {}).get(s, {}).get("rows_loaded", 0) > 0}
                loaded_days += 1
                loading = None
                if on_day is not None:
                    on_day(day)
    finally:
        extract_pool.shutdown(wait=True, cancel_futures=True)
        loader.shutdown(wait=True, cancel_futures=True)
    return BackfillResult(results, workers, ahead, time.perf_counter() - began, timings)


def throughput_table(runs: list[tuple[str, BackfillResult]], title: str = "Backfill throughput") -> Table:
    """One column per run: volumes, wall time, rates, and how much of the time ran side by side."""
    table = Table(title=title)
    table.add_column("measure")
    for label, _ in runs:
        table.add_column(label, justify="right")
    measures: list[tuple[str, Callable[[BackfillResult], str]]] = [
        ("days", lambda r: str(len(r.days))),
        ("rows read", lambda r: f"{r.rows_read:,}"),
        ("rows loaded", lambda r: f"{r.rows_loaded:,}"),
        ("rows quarantined", lambda r: f"{r.rows_quarantined:,}"),
        ("wall seconds", lambda r: f"{r.seconds:.1f}"),
        ("rows/s (read)", lambda r: f"{r.rows_per_second:,.0f}"),
        ("days/min", lambda r: f"{r.days_per_minute:.1f}"),
        ("extract workers", lambda r: str(r.workers) if r.workers > 1 else "1 (in process)"),
        ("look-ahead days", lambda r: str(r.lookahead)),
        ("extract busy s (all workers)", lambda r: f"{r.busy_seconds('extract'):.1f}"),
        ("load + marts busy s", lambda r: f"{r.busy_seconds('load'):.1f}"),
        ("busy / wall (concurrency)", lambda r: f"{r.parallelism:.2f}"),
    ]
    for name, value in measures:
        table.add_row(name, *(value(run) for _, run in runs))
    return table
