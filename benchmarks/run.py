"""``xoflow bench``: the nightly job at scale against the machine's own physical limits.

In one run, on the same generated files, it measures

* the full nightly job per stage (each stage in its own process: seconds, rows/s, peak RSS),
* the physical references: DuckDB converting the raw files to parquet, and a plain
  PostgreSQL ``COPY`` of the contact-center CSV,
* a peer: dlt loading the same raw files into the same kind of warehouse,

and prints every figure with its ratio to the reference, then appends the table to
``BENCHMARKS.md`` with the machine's cores and memory.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import psutil

from benchmarks.data import SIZES, BenchDay, Size, generate
from pipelines.nightly import source_names
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


def pipeline_stages(env: dict[str, str], bench: BenchDay, label: str) -> list[Measure]:
    """The nightly job, stage by stage, each in its own process."""
    start, _ = bench.interval
    run_id = f"bench_{label}_{uuid.uuid4().hex[:6]}"
    measures = []
    for source in source_names():
        m = run_measured(f"{label}: extract+validate {source}",
                         [sys.executable, "-m", "benchmarks.stage", "extract", source, start.isoformat(),
                          run_id], env)
        m.rows = int(m.detail.get("rows_read", 0))
        measures.append(m)
    load = run_measured(f"{label}: conform+load", [sys.executable, "-m", "benchmarks.stage", "load",
                                                   start.isoformat(), run_id], env)
    load.rows = sum(v["rows_read"] for v in load.detail.get("loaded", {}).values())
    marts = run_measured(f"{label}: marts", [sys.executable, "-m", "benchmarks.stage", "marts",
                                              start.isoformat(), run_id], env)
    return [*measures, load, marts]


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
    reference: Measure
    peer: Measure | None

    @property
    def total_seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def peak_rss_mb(self) -> float:
        return max(s.peak_rss_mb for s in self.stages)

    @property
    def validation_seconds(self) -> float:
        return sum(s.detail.get("seconds", {}).get("validate", 0.0) for s in self.stages)


def run_bench(size: Size, warehouses: list[str], postgres_url: str | None, workdir: Path,
              peer: bool = True) -> list[BenchResult]:
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
            stages = pipeline_stages(env, bench, warehouse)
        finally:
            server.terminate()
            server.wait(10)
        if warehouse == "duckdb":
            reference = duckdb_reference(bench, home)
            other = dlt_peer(bench, "duckdb", str(home / "dlt.duckdb"), home) if peer else None
        else:
            reference = postgres_reference(bench, postgres_url.replace("+psycopg", ""))
            other = dlt_peer(bench, "postgres", _with_password(postgres_url), home) if peer else None
        results.append(BenchResult(warehouse, stages, reference, other))
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


def machine() -> str:
    return (f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
            f"Python {sys.version.split()[0]}")


def render(results: list[BenchResult], size: Size, size_name: str) -> str:
    """A Markdown table: every figure with its ratio to the run's physical reference."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"## {stamp}: size {size_name} ({size.contacts:,} contacts, {size.survey_responses:,} survey "
             f"responses, {size.case_updates:,} case updates, {size.feedback:,} feedback)",
             "", f"Machine: {machine()}", "",
             "| warehouse | step | seconds | rows | rows/s | peak RSS MB | x reference |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for result in results:
        ref = result.reference.seconds
        for m in [*result.stages, result.reference, *( [result.peer] if result.peer else [])]:
            lines.append(f"| {result.label} | {m.name} | {m.seconds:.2f} | {m.rows:,} | "
                         f"{m.rows_per_second:,.0f} | {m.peak_rss_mb:,.0f} | {m.seconds / ref:.2f} |")
        total = result.total_seconds
        lines.append(f"| {result.label} | **nightly job, all stages** | {total:.2f} | | | "
                     f"{result.peak_rss_mb:,.0f} | {total / ref:.2f} |")
        if result.peer:
            lines.append(f"| {result.label} | nightly job / dlt peer | | | | | "
                         f"{total / result.peer.seconds:.2f} |")
        lines.append(f"| {result.label} | validation share of the job | | | | | "
                     f"{result.validation_seconds / total:.0%} |")
    return "\n".join(lines) + "\n"


def append_benchmarks_md(text: str, path: Path = REPO_ROOT / "BENCHMARKS.md") -> None:
    header = "# Benchmarks\n\nAppended by `xoflow bench`; newest last.\n\n"
    existing = path.read_text() if path.exists() else header
    path.write_text(existing.rstrip("\n") + "\n\n" + text)


def size_named(name: str) -> Size:
    if name in SIZES:
        return SIZES[name]
    return SIZES["default"].scaled(float(name))
