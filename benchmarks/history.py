"""Is a night's cost independent of the history already in the warehouse?

``python -m benchmarks.history --warehouse duckdb|postgres [--history 30,730] [--per-day 20000]
[--nights N] [--day YYYY-MM-DD]``

For each history length it builds a fresh warehouse, fills it with that many days of facts
before the benchmark day (synthesized in SQL with ``generate_series``: realistic keys, the
catalog's services and journeys, one partition per day, customers drawn from a pool that the
benchmark day's own customers belong to, so "returning customer" lookups meet real history,
and the cases received in the months before its first day, which the case source's first
load brings into a warehouse of any age: see ``CASE_SNAPSHOT_DAYS``), optionally builds the
marts over that history, then loads the benchmark day (``benchmarks.data``) through the real
job: each source's ``extract_and_validate``, then ``conform_and_load`` and ``build_marts``,
each stage in its own process as ``xoflow bench`` does. ``--nights N`` loads N new days one
after another from the benchmark day, as N nights of the job would, and reports each stage's
median. It prints seconds per stage for each history length and the ratio of the longest to
the shortest history (issue 6: at most 1.2). ``--remeasure N`` then runs the load and marts
stages of the last night again N times on the warehouses left, history lengths in turn,
which evens out the other work of a shared machine (but re-runs a day the warehouse already
holds).

The benchmark day (``PERIODS_START``) begins a week, a month and a fiscal quarter, so every
period the marts recompute holds the same days whatever the history's length.

Per-day volume is a parameter (``--per-day`` contacts; survey responses a fifth of it, case
updates a tenth, feedback a sixteenth, as in ``benchmarks.data``). The default, 20,000
contacts a day, puts 14.6M contacts and 2.9M survey responses in a 730-day history, which
this 2-core machine synthesizes in a few minutes per warehouse.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
import yaml

from benchmarks.data import Size, generate
from benchmarks.run import Measure, _free_port, _wait_for_port, run_measured
from pipelines import marts, warehouse
from pipelines.conform import dimensions, first_contacts
from pipelines.conform.catalog import load_catalog
from pipelines.model import (
    CONTACT_LOOKUPS,
    dim_channel,
    dim_date,
    dim_journey,
    dim_service,
    fact_contact,
)
from pipelines.nightly import source_names
from pipelines.privacy import pseudonymise
from pipelines.settings import REPO_ROOT, Settings

PSEUDONYM_KEY = "bench-key"
# The benchmark day: a Monday that begins a month and a fiscal quarter (Q4 of FY2024), so the
# week, month and quarter the marts recompute hold the same days whatever the history's length,
# and the emerging terms' 4-week baseline lies within the shortest history (30 days). On a day
# later in its quarter, a 30-day history holds fewer of the quarter's days than a 730-day one,
# and the quarterly marts' larger input is then counted as history (``--day`` picks another).
PERIODS_START = date(2024, 7, 1)
POOL_TABLE = "bench_history_customer"
COMBO_TABLE = "bench_history_combo"
# A synthesized case is decided up to this many days after its receipt; a contact names a case
# received up to CONTACT_CASE_DAYS before it, a survey response one up to RESPONSE_CASE_DAYS (its
# case's latest contact before it is then some days old, from the same day to weeks before).
CASE_DECISION_DAYS = 150
CONTACT_CASE_DAYS = 90
RESPONSE_CASE_DAYS = 120
# The case source's first load takes every case changed before the first night (its contract's
# ``initial_load: all_history``, nightly._extraction_window), so a warehouse of any age holds the
# cases still in process and the cases its contacts and responses name: the history also holds
# the cases received in this many days before its first day. Without them, a 30-day history had
# a fifth of a 730-day one's cases in process, and its responses named cases it did not hold.
CASE_SNAPSHOT_DAYS = max(CASE_DECISION_DAYS, CONTACT_CASE_DAYS, RESPONSE_CASE_DAYS)


@dataclass(frozen=True)
class Volume:
    """Rows per history day, in the proportions of ``benchmarks.data.Size``."""

    contacts: int
    customers: int  # size of the customer pool the days draw from

    @property
    def responses(self) -> int:
        return max(self.contacts // 5, 1)

    @property
    def cases(self) -> int:
        return max(self.contacts // 10, 1)

    @property
    def feedback(self) -> int:
        return max(self.contacts // 16, 1)

    def day_size(self) -> Size:
        """The benchmark day at the same volume as a history day."""
        return Size(contacts=self.contacts, survey_responses=self.responses, case_updates=self.cases)


# ---------------------------------------------------------------- synthesizing history


def _catalog() -> dict:
    return yaml.safe_load((REPO_ROOT / "schemas" / "catalog.yaml").read_text())


def _combos() -> pd.DataFrame:
    """Every service x contact reason, with its journey, queue, stage, standard and web path."""
    catalog = _catalog()
    journeys = {j["journey_id"]: j for j in catalog["journeys"]}
    rows = []
    for service in catalog["services"]:
        journey = journeys[service["journey_id"]]
        for reason, stage in journey["contact_reason_stage"].items():
            rows.append({"service_id": service["service_id"], "journey_id": service["journey_id"],
                         "queue": service["codes"]["queue"][0], "reason": reason, "stage": stage,
                         "standard_days": service["standard_days"],
                         "form_type": service["codes"]["form_type"][0],
                         "form_uuid": service["codes"]["survey_form"][0],
                         "survey_stage": catalog["survey_forms"][service["codes"]["survey_form"][0]]["stage"],
                         "web_path": service["codes"]["web_path"][0]})
    frame = pd.DataFrame(rows)
    frame.insert(0, "n", range(len(frame)))
    return frame


def _customer_pool(size: int) -> pd.DataFrame:
    """Customer refs C00000001.. pseudonymised as the job does: the benchmark day's contacts
    (refs 1 .. contacts/3) are among them."""
    refs = pd.Series([f"C{i:08d}" for i in range(1, size + 1)])
    return pd.DataFrame({"n": range(size), "customer_key": pseudonymise(refs, PSEUDONYM_KEY, "customer")})


def _seconds(dialect: str, expr: str) -> str:
    whole = f"CAST(FLOOR({expr}) AS INTEGER)"  # DuckDB divides integers into doubles
    return f"{whole} * INTERVAL '1 second'" if dialect == "duckdb" else f"make_interval(secs => {whole})"


def _day_zero(first: date) -> tuple[str, str]:
    """Day number 0 of the SQL below, as a date and as midnight UTC."""
    return (f"CAST('{first.isoformat()}' AS DATE)",
            f"CAST('{first.isoformat()} 00:00:00+00' AS TIMESTAMP WITH TIME ZONE)")


def _customer_join(volume: Volume) -> str:
    """The join that gives row g.i of day d.d its customer from the pool (see _modulo)."""
    return f"JOIN {POOL_TABLE} p ON p.n = {_modulo('g.i * 7919 + d.d * 104729', str(volume.customers))}"


def _modulo(expr: str, divisor: str) -> str:
    """``expr`` modulo ``divisor``, from 0 also where ``expr`` is negative (SQL's % keeps the
    sign): the days before the history's first are numbered below zero."""
    return f"(({expr}) % ({divisor}) + ({divisor})) % ({divisor})"


def _cases_sql(dialect: str, first: date, days: range, volume: Volume, horizon: int) -> str:
    """INSERT ... SELECT of the cases received on days ``first + days``; a case is decided up to
    ``CASE_DECISION_DAYS`` after receipt, and still in process if that is after day ``horizon``."""
    day0, ts0 = _day_zero(first)
    decided_after = f"(g.i * 13) % {CASE_DECISION_DAYS}"
    return f"""
INSERT INTO fact_case (case_key, service_id, journey_id, form_type, product_line, office, channel,
    customer_key, customer_type, language, region, received_at, received_date, decided_at, decided_date,
    status, cycle_days, standard_days, over_standard, updated_at)
SELECT SUBSTR(MD5('hc' || CAST(d.d AS VARCHAR) || '-' || CAST(g.i AS VARCHAR)), 1, 32),
       c.service_id, c.journey_id, c.form_type, 'initial', 'office_' || CAST(g.i % 40 AS VARCHAR),
       CASE g.i % 3 WHEN 0 THEN 'online' WHEN 1 THEN 'paper' ELSE 'in_person' END,
       p.customer_key,
       CASE g.i % 4 WHEN 0 THEN 'business' WHEN 1 THEN 'veteran' ELSE 'individual' END,
       CASE g.i % 6 WHEN 0 THEN 'es' ELSE 'en' END, 'west',
       {ts0} + {_seconds(dialect, f"d.d * 86400 + (g.i * 86399) / {volume.cases}")},
       {day0} + d.d,
       CASE WHEN g.i % 50 <> 7 AND d.d + {decided_after} < {horizon}
            THEN {ts0} + {_seconds(dialect, f"(d.d + {decided_after}) * 86400 + 43200")} END,
       CASE WHEN g.i % 50 <> 7 AND d.d + {decided_after} < {horizon} THEN {day0} + d.d + {decided_after} END,
       CASE WHEN g.i % 50 <> 7 AND d.d + {decided_after} < {horizon}
            THEN CASE WHEN g.i % 10 = 0 THEN 'denied' ELSE 'approved' END
            WHEN g.i % 50 = 7 THEN 'withdrawn' ELSE 'in_process' END,
       CASE WHEN g.i % 50 <> 7 AND d.d + {decided_after} < {horizon} THEN {decided_after} END,
       c.standard_days,
       CASE WHEN g.i % 50 <> 7 AND d.d + {decided_after} < {horizon}
            THEN {decided_after} > c.standard_days END,
       {ts0} + {_seconds(dialect, f"d.d * 86400 + (g.i * 86399) / {volume.cases}")}
FROM (SELECT CAST(v AS INTEGER) AS d FROM generate_series({days.start}, {days.stop - 1}) AS s(v)) d
CROSS JOIN (SELECT CAST(v AS INTEGER) AS i FROM generate_series(0, {volume.cases - 1}) AS s(v)) g
{_customer_join(volume)}
JOIN {COMBO_TABLE} c ON c.n = {_modulo("g.i * 7 + d.d", f"SELECT COUNT(*) FROM {COMBO_TABLE}")}"""


def _history_sql(dialect: str, first: date, days: range, volume: Volume, horizon: int) -> list[str]:
    """INSERT ... SELECT statements for the facts of days ``first + days`` (day numbers count
    from ``first``, so keys stay unique across chunks); cases decided after day ``horizon``
    are still in process."""
    day0, ts0 = _day_zero(first)
    s = volume.contacts
    contacts = f"""
INSERT INTO fact_contact (contact_key, contact_date, customer_key, case_key, service_id, journey_id, stage,
    queue, channel, reason, customer_type, language, region, start_time, wait_seconds, handle_seconds,
    resolved_first_contact, transferred, abandoned, repeat_within_7d, notes)
SELECT SUBSTR(MD5('hk' || CAST(d.d AS VARCHAR) || '-' || CAST(g.i AS VARCHAR)), 1, 32),
       {day0} + d.d, p.customer_key,
       CASE WHEN g.i % 10 < 3 THEN SUBSTR(MD5('hc' || CAST(d.d - g.i % {CONTACT_CASE_DAYS} AS VARCHAR) || '-'
            || CAST(g.i % {volume.cases} AS VARCHAR)), 1, 32) END,
       c.service_id, c.journey_id, c.stage, c.queue,
       CASE g.i % 4 WHEN 0 THEN 'chat' WHEN 1 THEN 'email' ELSE 'phone' END, c.reason,
       CASE g.i % 4 WHEN 0 THEN 'business' WHEN 1 THEN 'veteran' ELSE 'individual' END,
       CASE g.i % 6 WHEN 0 THEN 'es' WHEN 1 THEN 'zh' ELSE 'en' END,
       CASE g.i % 5 WHEN 0 THEN 'northeast' WHEN 1 THEN 'southeast' WHEN 2 THEN 'midwest'
            WHEN 3 THEN 'southwest' ELSE 'west' END,
       {ts0} + {_seconds(dialect, f"d.d * 86400 + (g.i * 86399) / {s}")},
       (g.i * 31) % 1800, CASE WHEN g.i % 14 = 0 THEN 0 ELSE 30 + (g.i * 17) % 1470 END,
       g.i % 14 <> 0 AND g.i % 10 < 7, g.i % 8 = 0, g.i % 14 = 0, g.i % 5 = 0, NULL
FROM (SELECT CAST(v AS INTEGER) AS d FROM generate_series({days.start}, {days.stop - 1}) AS s(v)) d
CROSS JOIN (SELECT CAST(v AS INTEGER) AS i FROM generate_series(0, {s - 1}) AS s(v)) g
{_customer_join(volume)}
JOIN {COMBO_TABLE} c ON c.n = (g.i * 13 + d.d) % (SELECT COUNT(*) FROM {COMBO_TABLE})"""
    cases = _cases_sql(dialect, first, days, volume, horizon)
    items = ", ".join(f"1 + (g.i * {k} + d.d) % 5" for k in (3, 5, 7, 11, 13, 17, 19, 23))
    responses = f"""
INSERT INTO fact_survey_response (response_id, response_date, form_uuid, service_id, journey_id, stage,
    channel, customer_type, language, region, created_at, trust, satisfaction, effectiveness, ease,
    efficiency, transparency, humanity, employee, comment, comment_sentiment, comment_themes, case_key,
    case_linked, case_cycle_days, case_standard_days, case_over_standard)
SELECT SUBSTR(MD5('hr' || CAST(d.d AS VARCHAR) || '-' || CAST(g.i AS VARCHAR)), 1, 20), {day0} + d.d,
       c.form_uuid, c.service_id, c.journey_id, c.survey_stage, 'online',
       CASE g.i % 4 WHEN 0 THEN 'business' WHEN 1 THEN 'veteran' ELSE 'individual' END,
       CASE g.i % 6 WHEN 0 THEN 'es' ELSE 'en' END, 'west',
       {ts0} + {_seconds(dialect, f"d.d * 86400 + (g.i * 86399) / {volume.responses}")},
       {items},
       CASE WHEN g.i % 7 = 0 THEN 'Waited too long for a decision.' END,
       CASE WHEN g.i % 7 = 0 THEN -0.4767 END,
       CASE WHEN g.i % 7 = 0 THEN 'wait_time' END,
       SUBSTR(MD5('hc' || CAST(d.d - ((g.i * 7) % {RESPONSE_CASE_DAYS}) AS VARCHAR) || '-'
              || CAST(g.i % {volume.cases} AS VARCHAR)), 1, 32),
       TRUE, g.i % 200, c.standard_days, g.i % 200 > c.standard_days
FROM (SELECT CAST(v AS INTEGER) AS d FROM generate_series({days.start}, {days.stop - 1}) AS s(v)) d
CROSS JOIN (SELECT CAST(v AS INTEGER) AS i FROM generate_series(0, {volume.responses - 1}) AS s(v)) g
JOIN {COMBO_TABLE} c ON c.n = (g.i * 11 + d.d) % (SELECT COUNT(*) FROM {COMBO_TABLE})"""
    feedback = f"""
INSERT INTO fact_feedback (feedback_id, feedback_date, channel, received_at, service_id, journey_id,
    service_hint, rating, text, sentiment, themes, customer_type, language, region)
SELECT 'HF' || CAST(d.d AS VARCHAR) || '-' || CAST(g.i AS VARCHAR), {day0} + d.d,
       CASE g.i % 3 WHEN 0 THEN 'app_review' WHEN 1 THEN 'email' ELSE 'social' END,
       {ts0} + {_seconds(dialect, f"d.d * 86400 + (g.i * 86399) / {volume.feedback}")},
       c.service_id, c.journey_id, c.service_id, CASE WHEN g.i % 3 = 0 THEN 1 + g.i % 5 END,
       CASE WHEN g.i % 3 = 0 THEN 'Quick and easy, thank you.' ELSE 'The status page never updates.' END,
       CASE WHEN g.i % 3 = 0 THEN 0.6249 ELSE 0.0 END,
       CASE WHEN g.i % 3 = 0 THEN NULL ELSE 'status_updates;website' END,
       'individual', 'en', 'west'
FROM (SELECT CAST(v AS INTEGER) AS d FROM generate_series({days.start}, {days.stop - 1}) AS s(v)) d
CROSS JOIN (SELECT CAST(v AS INTEGER) AS i FROM generate_series(0, {volume.feedback - 1}) AS s(v)) g
JOIN {COMBO_TABLE} c ON c.n = (g.i * 5 + d.d) % (SELECT COUNT(*) FROM {COMBO_TABLE})"""
    web = f"""
INSERT INTO fact_web_daily (date_day, page_path, service_id, journey_id, stage, sessions, task_starts,
    task_completions, status_checks)
SELECT {day0} + d.d, c.web_path || '/' || c.reason, c.service_id, c.journey_id, c.stage,
       100 + (c.n * 37 + d.d * 11) % 4900, CAST(FLOOR((100 + (c.n * 37 + d.d * 11) % 4900) / 2) AS INTEGER),
       CAST(FLOOR((100 + (c.n * 37 + d.d * 11) % 4900) / 3) AS INTEGER), (c.n + d.d) % 50
FROM (SELECT CAST(v AS INTEGER) AS d FROM generate_series({days.start}, {days.stop - 1}) AS s(v)) d
CROSS JOIN {COMBO_TABLE} c"""
    return [contacts, cases, responses, feedback, web]


def load_dimensions(conn: sa.Connection) -> None:
    """The catalog's dimensions, as the nightly load writes them."""
    catalog = load_catalog(REPO_ROOT / "schemas")
    for table, frame in ((dim_service, dimensions.dim_service(catalog)),
                         (dim_journey, dimensions.dim_journey(catalog)),
                         (dim_channel, dimensions.dim_channel(catalog)),
                         (dim_date, dimensions.dim_date())):
        warehouse.replace_where(conn, table, sa.true(), warehouse.to_arrow(frame, table))


def synthesize_history(engine: sa.Engine, first: date, days: int, volume: Volume,
                       chunk_days: int = 30) -> float:
    """Fill the dimensions, the facts with ``days`` days from ``first``, and the cases received
    in the ``CASE_SNAPSHOT_DAYS`` before (the case source's first load); returns the seconds."""
    began = time.perf_counter()
    dialect = engine.dialect.name
    stored = warehouse.stored_tables(dialect)
    with engine.begin() as conn:
        load_dimensions(conn)
        for name, frame in ((POOL_TABLE, _customer_pool(volume.customers)), (COMBO_TABLE, _combos())):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
            columns = [sa.Column(c, sa.Integer if frame[c].dtype.kind == "i" else sa.String())
                       for c in frame.columns]
            table = sa.Table(name, sa.MetaData(), *columns)
            table.create(conn)
            warehouse.insert_rows(conn, table, warehouse.to_arrow(frame, table))
    with engine.begin() as conn:
        conn.execute(sa.text(_cases_sql(dialect, first, range(-CASE_SNAPSHOT_DAYS, 0), volume, days)))
    # Days in chunks, each chunk in its own transaction: PostgreSQL keeps memory flat.
    for offset in range(0, days, chunk_days):
        span = min(chunk_days, days - offset)
        with engine.begin() as conn:
            for statement in _history_sql(dialect, first, range(offset, offset + span), volume, days):
                conn.execute(sa.text(statement))
            # what the nightly load keeps beside fact_contact (model.CONTACT_DERIVED, where stored)
            filled = [first + timedelta(days=offset + i) for i in range(span)]
            chunk = fact_contact.c.contact_date.between(filled[0], filled[-1])
            for table, rows in CONTACT_LOOKUPS.items():
                if table in stored:
                    conn.execute(sa.insert(table).from_select([c.name for c in table.columns],
                                                              rows(fact_contact).where(chunk)))
            first_contacts.record_days(conn, filled)
    with engine.begin() as conn:
        for name in (POOL_TABLE, COMBO_TABLE):
            conn.execute(sa.text(f"DROP TABLE {name}"))
    if dialect == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    return time.perf_counter() - began


def build_history_marts(settings: Settings, first: date, days: int, recent_days: int = 35) -> float:
    """The daily mart over the whole history (one statement), the insight marts over its last
    ``recent_days`` (the periods around the benchmark day; every period of a long history would
    take longer than the benchmark itself). Returns the seconds it took."""
    began = time.perf_counter()
    engine = warehouse.engine_for(settings.warehouse_url)
    warehouse.ensure_schema(engine, sql_dir=settings.warehouse_sql_dir)
    history = [first + timedelta(days=i) for i in range(days)]
    with engine.begin() as conn:
        for table in marts.MARTS.values():
            marts.rebuild_mart(conn, settings.warehouse_sql_dir, table, history)
        marts.rebuild_period_marts(conn, settings, history[-recent_days:])
    return time.perf_counter() - began


# ---------------------------------------------------------------- one history length


@dataclass
class HistoryRun:
    days: int
    synth_seconds: float
    history_marts_seconds: float
    nights: list[list[Measure]]  # each night's stages

    @property
    def stages(self) -> list[Measure]:
        return self.nights[0]

    def each_night(self, kind: str) -> list[float]:
        return [sum(m.seconds for m in stages if kind in m.name) for stages in self.nights]

    def seconds(self, kind: str) -> float:
        """The median over the nights of the stages named ``kind``."""
        return statistics.median(self.each_night(kind))

    @property
    def total(self) -> float:
        return statistics.median(sum(m.seconds for m in stages) for stages in self.nights)


def _fresh_postgres(admin_url: str, name: str) -> str:
    """An empty database ``name``: created once, then emptied by recreating its public schema
    (DROP DATABASE waits for every backend of the server to acknowledge it, which a shared
    server does not always do promptly)."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            query = sa.text("SELECT 1 FROM pg_database WHERE datname = :n")
            if not conn.execute(query, {"n": name}).first():
                conn.execute(sa.text(f"CREATE DATABASE {name}"))
    finally:
        admin.dispose()
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    return url


def run_history(kind: str, days: int, volume: Volume, workdir: Path, postgres_admin_url: str,
                history_marts: bool, day: date = PERIODS_START, nights_count: int = 1) -> HistoryRun:
    """A fresh warehouse with ``days`` days of history before ``day``, then ``nights_count``
    nights from ``day`` on, each loading a new day as the nightly job does."""
    home = workdir / f"{kind}_{days}"
    subprocess.run(["rm", "-rf", str(home)], check=True)
    env = {**os.environ, "XOFLOW_HOME": str(home), "XOFLOW_PSEUDONYM_KEY": PSEUDONYM_KEY,
           "XOFLOW_SURVEY_API_KEY": "bench-key"}
    for name in ("XOFLOW_WAREHOUSE_URL", "XOFLOW_CASE_DB_URL", "XOFLOW_LANDING_DIR", "XOFLOW_LAKE_DIR",
                 "XOFLOW_RAW_DIR"):
        env.pop(name, None)
    if kind == "postgres":
        env["XOFLOW_WAREHOUSE_URL"] = _fresh_postgres(postgres_admin_url, f"marts_history_{days}")
    settings = Settings.from_env(env)
    home.mkdir(parents=True, exist_ok=True)
    engine = warehouse.engine_for(settings.warehouse_url)
    try:
        warehouse.ensure_schema(engine, sql_dir=settings.warehouse_sql_dir)
        first = day - timedelta(days=days)
        synth = synthesize_history(engine, first, days, volume)
    finally:
        engine.dispose()
    print(f"{kind} {days} days: history synthesized in {synth:.1f} s", flush=True)
    marts_seconds = 0.0
    if history_marts:
        marts_seconds = build_history_marts(settings, first, days)
        warehouse.engine_for(settings.warehouse_url).dispose()  # the stages' processes open it next
        print(f"{kind} {days} days: history marts built in {marts_seconds:.1f} s", flush=True)
    nights = [run_night(env, settings, night, volume, f"history_{days}_{uuid.uuid4().hex[:6]}")
              for night in (day + timedelta(days=n) for n in range(nights_count))]
    return HistoryRun(days, synth, marts_seconds, nights)


def run_night(env: dict[str, str], settings: Settings, day: date, volume: Volume,
              run_id: str) -> list[Measure]:
    """One night of the real job on ``day``'s generated sources, each stage in its own process."""
    bench = generate(settings, day, volume.day_size())
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "pipelines.demo.survey_api_server", "--store",
                               str(bench.survey_store), "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {**env, "XOFLOW_SURVEY_API_URL": f"http://127.0.0.1:{port}"}
    start, _ = bench.interval
    stages = []
    try:
        _wait_for_port(port)
        for source in source_names(settings):
            stages.append(run_measured(f"extract+validate {source}", [
                sys.executable, "-m", "benchmarks.stage", "extract", source, start.isoformat(), run_id], env))
        for stage in ("load", "marts"):
            stages.append(run_measured(stage, [sys.executable, "-m", "benchmarks.stage", stage,
                                               start.isoformat(), run_id], env))
    finally:
        server.terminate()
        server.wait(10)
    return stages


def remeasure(kind: str, lengths: list[int], workdir: Path, postgres_admin_url: str,
              repeats: int) -> dict[int, dict[str, list[float]]]:
    """Run the load and marts stages again on the warehouses and staged day a run left, history
    lengths taken in turn, ``repeats`` times: the other work on a shared machine then weighs on
    each length alike. Both stages replace the day's partitions, so each run does the same work."""
    times: dict[int, dict[str, list[float]]] = {n: {"load": [], "marts": []} for n in lengths}
    for _ in range(repeats):
        for days in lengths:
            home = workdir / f"{kind}_{days}"
            env = {**os.environ, "XOFLOW_HOME": str(home), "XOFLOW_PSEUDONYM_KEY": PSEUDONYM_KEY,
                   "XOFLOW_SURVEY_API_KEY": "bench-key"}
            for name in ("XOFLOW_WAREHOUSE_URL", "XOFLOW_CASE_DB_URL", "XOFLOW_LANDING_DIR",
                         "XOFLOW_LAKE_DIR", "XOFLOW_RAW_DIR"):
                env.pop(name, None)
            if kind == "postgres":
                env["XOFLOW_WAREHOUSE_URL"] = sa.make_url(postgres_admin_url).set(
                    database=f"marts_history_{days}").render_as_string(hide_password=False)
            result = sorted((home / "staging" / "case_db").glob("*/result.json"))[-1]  # the last night
            staged = json.loads(result.read_text())
            start = f"{result.parent.name}T00:00:00+00:00"  # the staged day's folder
            for stage in ("load", "marts"):
                m = run_measured(stage, [sys.executable, "-m", "benchmarks.stage", stage, start,
                                         staged["run_id"]], env)
                times[days][stage].append(m.seconds)
            print(f"{kind} {days} days: load {times[days]['load'][-1]:.2f} s, "
                  f"marts {times[days]['marts'][-1]:.2f} s", flush=True)
    return times


def render_remeasured(kind: str, times: dict[int, dict[str, list[float]]]) -> str:
    lengths = sorted(times)
    low, high = lengths[0], lengths[-1]
    lines = [f"{kind}: load and marts of the same day again, history lengths in turn (median of "
             f"{len(times[low]['load'])}; all runs in brackets)", "",
             "| stage | " + " | ".join(f"{n} days" for n in lengths) + f" | {high} / {low} |",
             "|---|" + "---:|" * (len(lengths) + 1)]
    for stage in ("load", "marts"):
        medians = {n: statistics.median(times[n][stage]) for n in lengths}
        cells = " | ".join(f"{medians[n]:.2f} ({', '.join(f'{v:.1f}' for v in times[n][stage])})"
                           for n in lengths)
        lines.append(f"| {stage} | {cells} | {medians[high] / medians[low]:.2f} |")
    return "\n".join(lines)


def render(kind: str, runs: list[HistoryRun], volume: Volume, day: date) -> str:
    shortest, longest = min(runs, key=lambda r: r.days), max(runs, key=lambda r: r.days)
    head = " | ".join(f"{r.days} days" for r in runs)
    nights = len(shortest.nights)
    span = day.isoformat() if nights == 1 else f"{nights} nights from {day.isoformat()}, median"
    lines = [f"{kind}: the same day ({span}; {volume.contacts:,} contacts, "
             f"{volume.responses:,} responses, {volume.cases:,} case updates, {volume.feedback:,} feedback) "
             f"after N days of history at that volume per day",
             "", f"| stage | {head} | {longest.days} / {shortest.days} |",
             "|---|" + "---:|" * (len(runs) + 1)]
    rows = {m.name: [r.seconds(m.name) for r in runs] for m in shortest.stages}
    # the stages that touch the warehouse (extraction and validation read only the sources)
    rows["warehouse stages (load + marts)"] = [r.seconds("load") + r.seconds("marts") for r in runs]
    rows["nightly job, all stages"] = [r.total for r in runs]
    low, high = runs.index(shortest), runs.index(longest)
    for name, values in rows.items():
        cells = " | ".join(f"{v:.2f}" for v in values)
        lines.append(f"| {name} | {cells} | {values[high] / values[low] if values[low] else 0:.2f} |")
    lines.append("")
    if nights > 1:
        for stage in ("load", "marts"):
            lines.append(f"{stage}, night by night: " + "; ".join(
                f"{r.days} days " + ", ".join(f"{v:.2f}" for v in r.each_night(stage)) for r in runs))
    lines.append("history synthesized in " + ", ".join(f"{r.synth_seconds:.0f} s ({r.days} days)"
                                                       for r in runs))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", choices=["duckdb", "postgres"], default="duckdb")
    parser.add_argument("--history", default="30,730", help="history lengths in days, comma-separated")
    parser.add_argument("--day", type=date.fromisoformat, default=PERIODS_START,
                        help="the benchmark day (default %(default)s: see PERIODS_START)")
    parser.add_argument("--nights", type=int, default=1,
                        help="nights loaded one after another from --day (a new day each; median reported)")
    parser.add_argument("--per-day", type=int, default=20_000, help="contacts per day (history and the day)")
    parser.add_argument("--customers", type=int, default=0,
                        help="customer pool size (default: 20 x per-day, each customer about every 20 days)")
    parser.add_argument("--history-marts", action=argparse.BooleanOptionalAction, default=True,
                        help="build the marts over the history before loading the day")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/xoflow-history"))
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                        help="an admin URL; the benchmark creates databases marts_history_<days>")
    parser.add_argument("--remeasure", type=int, default=0, metavar="N",
                        help="only run load and marts again N times on what a previous run left")
    args = parser.parse_args(argv)
    if args.remeasure:
        lengths = [int(d) for d in args.history.split(",")]
        print(render_remeasured(args.warehouse, remeasure(args.warehouse, lengths, args.workdir,
                                                          args.postgres_url, args.remeasure)))
        return
    volume = Volume(args.per_day, args.customers or 20 * args.per_day)
    runs = [run_history(args.warehouse, int(days), volume, args.workdir, args.postgres_url,
                        args.history_marts, args.day, args.nights) for days in args.history.split(",")]
    print(render(args.warehouse, runs, volume, args.day))


if __name__ == "__main__":
    main()
