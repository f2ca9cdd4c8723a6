"""``xoflow bench``: the nightly job at scale against the machine's own physical limits.

In one run, on the same generated files, it measures

* the full nightly job per stage (each stage in its own process: seconds, rows/s, peak RSS),
* the physical references: DuckDB converting the raw files to parquet, and a plain
  PostgreSQL ``COPY`` of the contact-center CSV,
* a peer: dlt loading the same raw files into the same kind of warehouse,

and prints every figure with its ratio to the reference, then appends the table to
``BENCHMARKS.md`` with the machine's cores and memory. The demo survey API has read its
store before the clock starts, as a real one is up when the night begins.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import psutil

from benchmarks.data import SIZES, BenchDay, Size, generate
from pipelines.nightly import extract_order
from pipelines.settings import REPO_ROOT, Settings

BENCH_DAY = date(2026, 3, 2)


@dataclass
class Measure:
    name: str
    seconds: float
    rows: int
    peak_rss_mb: float
    detail: dict = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _peak_rss(child: subprocess.Popen, interval: float = 0.05) -> float:
    """Peak resident memory (MB) of a child and its descendants, sampled until it exits.

    Sampled rather than read from ``wait4``: a forked child's ``ru_maxrss`` starts at the
    parent's size, which would charge the generator's memory to every stage.
    """
    process = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        try:
            rss = process.memory_info().rss + sum(
                c.memory_info().rss for c in process.children(recursive=True))
        except psutil.Error:
            rss = 0
        peak = max(peak, rss)
        time.sleep(interval)
    return peak / 2**20


def run_measured(name: str, argv: list[str], env: dict[str, str], rows: int = 0) -> Measure:
    """Run a command as a child process and measure its wall time and peak memory."""
    with tempfile.TemporaryFile("w+") as out:
        began = time.perf_counter()
        child = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        peak_mb = _peak_rss(child)
        seconds = time.perf_counter() - began
        out.seek(0)
        text = out.read()
    if child.returncode != 0:
        raise RuntimeError(f"{name} failed ({child.returncode}):\n{text[-4000:]}")
    lines = [line for line in text.splitlines() if line.startswith("{")]
    detail = json.loads(lines[-1]) if lines else {}
    return Measure(name, seconds, rows, peak_mb, detail)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


class TreeSampler:
    """Peak resident memory of all this process's children together (concurrent stages)."""

    def __init__(self, exclude: set[int], interval: float = 0.1) -> None:
        self.exclude, self.interval, self.peak_mb = exclude, interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                if child.pid in self.exclude:
                    continue
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            self.peak_mb = max(self.peak_mb, total / 2**20)
            self._stop.wait(self.interval)


def pipeline_stages(env: dict[str, str], bench: BenchDay, label: str, workers: int,
                    exclude: set[int]) -> tuple[list[Measure], Measure]:
    """The nightly job, stage by stage, each in its own process.

    The sources are extracted ``workers`` at a time, as the DAG's mapped extract tasks run
    on an executor with that many slots; the load and the marts follow one after another.
    Returns the stages and one measure of the extract phase as a whole (wall time, the
    peak memory of the concurrent processes together).
    """
    start, _ = bench.interval
    run_id = f"bench_{label}_{uuid.uuid4().hex[:6]}"

    def extract(source: str) -> Measure:
        m = run_measured(f"{label}: extract+validate {source}",
                         [sys.executable, "-m", "benchmarks.stage", "extract", source, start.isoformat(),
                          run_id], env)
        m.rows = int(m.detail.get("rows_read", 0))
        return m

    began = time.perf_counter()
    with TreeSampler(exclude) as sampler, ThreadPoolExecutor(workers) as pool:
        measures = list(pool.map(extract, extract_order(Settings.from_env(env))))
    phase = Measure(f"{label}: extract+validate, {workers} at a time", time.perf_counter() - began,
                    sum(m.rows for m in measures), sampler.peak_mb)
    load = run_measured(f"{label}: conform+load", [sys.executable, "-m", "benchmarks.stage", "load",
                                                   start.isoformat(), run_id], env)
    load.rows = sum(v["rows_read"] for v in load.detail.get("loaded", {}).values())
    marts = run_measured(f"{label}: marts", [sys.executable, "-m", "benchmarks.stage", "marts",
                                              start.isoformat(), run_id], env)
    return [*measures, load, marts], phase


def duckdb_reference(bench: BenchDay, workdir: Path) -> Measure:
    """DuckDB's own bulk path: the raw files to parquet, as fast as this machine converts them."""
    files = {"contacts": (bench.contacts_csv, "read_csv"), "feedback": (bench.feedback_jsonl, "read_json"),
             "survey": (bench.survey_store, "read_json")}
    statements = [f"COPY (SELECT * FROM {reader}('{path}')) TO '{workdir / name}.parquet' (FORMAT parquet)"
                  for name, (path, reader) in files.items()]
    code = ("import duckdb, json; con = duckdb.connect(); "
            f"[con.execute(s) for s in {statements!r}]; print(json.dumps({{}}))")
    rows = bench.size.contacts + bench.size.feedback + bench.size.survey_responses
    return run_measured("reference: DuckDB raw files -> parquet", _python(code), dict(os.environ), rows)


def postgres_reference(bench: BenchDay, url: str) -> Measure:
    """A plain COPY of the contact-center CSV into a table of text columns."""
    code = f"""
import csv, psycopg, json
header = next(csv.reader(open({str(bench.contacts_csv)!r})))
with psycopg.connect({url!r}, autocommit=True) as conn:
    conn.execute("DROP TABLE IF EXISTS bench_plain_copy")
    conn.execute("CREATE TABLE bench_plain_copy (" + ", ".join(f'"{{c}}" text' for c in header) + ")")
    with conn.cursor().copy("COPY bench_plain_copy FROM STDIN (FORMAT csv, HEADER true)") as copy, \\
            open({str(bench.contacts_csv)!r}, "rb") as f:
        while block := f.read(1 << 20):
            copy.write(block)
    conn.execute("DROP TABLE bench_plain_copy")
print(json.dumps({{}}))
"""
    return run_measured("reference: PostgreSQL COPY of the contact CSV", _python(code), dict(os.environ),
                        bench.size.contacts)


def dlt_peer(bench: BenchDay, destination: str, credentials: str, workdir: Path) -> Measure:
    """dlt's plain load of the same raw files (its Arrow path; its read_csv_duckdb fails on duckdb 2)."""
    code = f"""
import json, dlt, pyarrow.csv as pacsv, pyarrow.json as pajson
def contacts():
    yield pacsv.read_csv({str(bench.contacts_csv)!r})
def feedback():
    yield pajson.read_json({str(bench.feedback_jsonl)!r})
def survey():
    yield json.load(open({str(bench.survey_store)!r}))
pipeline = dlt.pipeline(pipeline_name="bench_peer",
                        destination=dlt.destinations.{destination}({credentials!r}),
                        dataset_name="bench_peer", pipelines_dir={str(workdir / 'dlt')!r})
for name, resource in (("contacts", contacts), ("feedback", feedback), ("survey", survey)):
    pipeline.run(dlt.resource(resource, name=name), write_disposition="replace")
print(json.dumps({{}}))
"""
    rows = bench.size.contacts + bench.size.feedback + bench.size.survey_responses
    return run_measured(f"peer: dlt -> {destination}", _python(code), dict(os.environ), rows)


@dataclass
class BenchResult:
    label: str
    stages: list[Measure]
    extract_phase: Measure
    reference: Measure
    peer: Measure | None
    server: str | None = None  # the warehouse server's version and memory settings (PostgreSQL)

    @property
    def total_seconds(self) -> float:
        """Wall time of the job: the concurrent extract phase, then load and marts."""
        after_extract = [s for s in self.stages if "extract+validate" not in s.name]
        return self.extract_phase.seconds + sum(s.seconds for s in after_extract)

    @property
    def work_seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def peak_rss_mb(self) -> float:
        """The largest single stage process."""
        return max(s.peak_rss_mb for s in self.stages)

    @property
    def peak_rss_together_mb(self) -> float:
        """All processes of the job running at the same moment (the concurrent extracts)."""
        return max(self.peak_rss_mb, self.extract_phase.peak_rss_mb)

    @property
    def validation_seconds(self) -> float:
        return sum(s.detail.get("seconds", {}).get("validate", 0.0) for s in self.stages)


def run_bench(size: Size, warehouses: list[str], postgres_url: str | None, workdir: Path,
              peer: bool = True, workers: int | None = None) -> list[BenchResult]:
    workers = workers or os.cpu_count() or 1
    results = []
    for warehouse in warehouses:
        home = workdir / warehouse
        env = {**os.environ, "XOFLOW_HOME": str(home), "XOFLOW_PSEUDONYM_KEY": "bench-key",
               "XOFLOW_SURVEY_API_KEY": "bench-key"}
        for name in ("XOFLOW_WAREHOUSE_URL", "XOFLOW_CASE_DB_URL", "XOFLOW_LANDING_DIR", "XOFLOW_LAKE_DIR",
                     "XOFLOW_RAW_DIR"):
            env.pop(name, None)
        if warehouse == "postgres":
            env["XOFLOW_WAREHOUSE_URL"] = postgres_url
        settings = Settings.from_env(env)
        bench = generate(settings, BENCH_DAY, size)
        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "pipelines.demo.survey_api_server", "--store",
                                   str(bench.survey_store), "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env["XOFLOW_SURVEY_API_URL"] = f"http://127.0.0.1:{port}"
        try:
            _wait_for_port(port)
            _warm_survey_api(env["XOFLOW_SURVEY_API_URL"], env["XOFLOW_SURVEY_API_KEY"])
            stages, phase = pipeline_stages(env, bench, warehouse, workers, {server.pid})
        finally:
            server.terminate()
            server.wait(10)
        if warehouse == "duckdb":
            reference = duckdb_reference(bench, home)
            other = dlt_peer(bench, "duckdb", str(home / "dlt.duckdb"), home) if peer else None
        else:
            reference = postgres_reference(bench, postgres_url.replace("+psycopg", ""))
            other = dlt_peer(bench, "postgres", _with_password(postgres_url), home) if peer else None
        server = postgres_server(postgres_url) if warehouse == "postgres" else None
        results.append(BenchResult(warehouse, stages, phase, reference, other, server))
    return results


def _with_password(url: str) -> str:
    """dlt insists on a password; a trust-auth server ignores whatever is sent."""
    import sqlalchemy as sa

    parsed = sa.make_url(url).set(drivername="postgresql")
    if not parsed.password:
        parsed = parsed.set(password="unused-by-trust-auth")
    return parsed.render_as_string(hide_password=False)


def _wait_for_port(port: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"survey API did not start on port {port}")


def _warm_survey_api(url: str, api_key: str) -> None:
    """Have the demo survey API read its store before the clock starts. A real Touchpoints API
    is up and serving when the night begins; the demo one parses its whole JSON store on the
    first request (about 9 s at the default size), which was charged to the survey extract."""
    httpx.get(f"{url}/forms/warm-up/responses", headers={"x-api-key": api_key}, timeout=600)


def machine() -> str:
    return (f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
            f"Python {sys.version.split()[0]}")


# Settings of the warehouse server that bear on its load and marts, printed with the figures so
# that runs on differently configured servers are not compared unawares.
SERVER_SETTINGS = ("shared_buffers", "work_mem", "maintenance_work_mem", "max_wal_size")


def postgres_server(url: str) -> str:
    """The server's version and memory settings, printed with its figures."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            values = conn.execute(sa.select(*[sa.func.current_setting(name) for name in
                                              ("server_version", *SERVER_SETTINGS)])).one()
    finally:
        engine.dispose()
    version, *settings = values
    return f"PostgreSQL {version}: " + ", ".join(f"{name} {value}" for name, value in
                                                 zip(SERVER_SETTINGS, settings, strict=True))


LOAD_PARTS = {"conform": "conform (the sources its extract did not conform: the survey)",
              "load": "load (repeat flags, bulk insert, quarantine, ledger)",
              "lake": "lake partitions"}


def load_parts(stage: Measure) -> dict[str, float]:
    """The load stage's seconds split into conform, load and lake, summed over the sources;
    an extract's conform (every source's but the survey's is conformed by its extract)."""
    per_source = [counts.get("seconds", {}) for counts in stage.detail.get("loaded", {}).values()
                  if isinstance(counts, dict)]
    if not per_source:
        conform = (stage.detail.get("seconds") or {}).get("conform")
        return {"conform": conform} if conform is not None else {}
    return {label: sum(seconds.get(part, 0.0) for seconds in per_source)
            for part, label in LOAD_PARTS.items()}


def source_loads(stage: Measure) -> dict[str, tuple[float, int]]:
    """Each source's load seconds (conform and lake apart) and rows loaded: the contact
    center's is the figure to hold against the reference's COPY of the same rows."""
    return {source: (counts["seconds"].get("load", 0.0), int(counts.get("rows_loaded", 0)))
            for source, counts in stage.detail.get("loaded", {}).items()
            if isinstance(counts, dict) and "seconds" in counts}


def render(results: list[BenchResult], size: Size, size_name: str) -> str:
    """A Markdown table: every figure with its ratio to the run's physical reference."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"## {stamp}: size {size_name} ({size.contacts:,} contacts, {size.survey_responses:,} survey "
             f"responses, {size.case_updates:,} case updates, {size.feedback:,} feedback)",
             "", f"Machine: {machine()}", "",
             *(line for result in results if result.server
               for line in (f"Warehouse server: {result.server}", "")),
             "| warehouse | step | seconds | rows | rows/s | peak RSS MB | x reference |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for result in results:
        ref = result.reference.seconds
        for m in [*result.stages, result.extract_phase, result.reference,
                  *([result.peer] if result.peer else [])]:
            lines.append(f"| {result.label} | {m.name} | {m.seconds:.2f} | {m.rows:,} | "
                         f"{m.rows_per_second:,.0f} | {m.peak_rss_mb:,.0f} | {m.seconds / ref:.2f} |")
            for part, seconds in load_parts(m).items():
                lines.append(f"| {result.label} | {m.name}: of which {part} | {seconds:.2f} | | | | "
                             f"{seconds / ref:.2f} |")
            for source, (seconds, rows) in source_loads(m).items():
                lines.append(f"| {result.label} | {m.name}: load of {source} | {seconds:.2f} | {rows:,} | "
                             f"{rows / seconds if seconds else 0:,.0f} | | {seconds / ref:.2f} |")
        total = result.total_seconds
        lines.append(f"| {result.label} | **nightly job, all stages** (wall) | {total:.2f} | | | "
                     f"{result.peak_rss_mb:,.0f} | {total / ref:.2f} |")
        lines.append(f"| {result.label} | peak RSS of the concurrent extracts together | | | | "
                     f"{result.peak_rss_together_mb:,.0f} | |")
        if result.peer:
            lines.append(f"| {result.label} | nightly job / dlt peer | | | | | "
                         f"{total / result.peer.seconds:.2f} |")
        lines.append(f"| {result.label} | validation share of the job's work (stage seconds) | | | | | "
                     f"{result.validation_seconds / result.work_seconds:.1%} |")
    return "\n".join(lines) + "\n"


def append_benchmarks_md(text: str, path: Path = REPO_ROOT / "BENCHMARKS.md") -> None:
    header = "# Benchmarks\n\nAppended by `xoflow bench`; newest last.\n\n"
    existing = path.read_text() if path.exists() else header
    path.write_text(existing.rstrip("\n") + "\n\n" + text)


def size_named(name: str) -> Size:
    if name in SIZES:
        return SIZES[name]
    return SIZES["default"].scaled(float(name))
