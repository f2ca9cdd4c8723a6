"""The nightly job as plain functions: what the DAG's tasks call, what the CLI calls.

Every function takes the interval and run id as arguments and returns what it did
(JSON-serialisable counts), so Airflow can pass results through XCom and tests can
run the job without a scheduler.

Between the per-source extract tasks and the load task, each source's validated rows
(and, for every source but the survey, the fact rows conformed from them) wait in
``<home>/staging/<source>/<day>/`` tagged with the run id, so the load only takes what
*this* run validated.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa

from pipelines import (
    lake,
    ledger,
    marts,
    privacy,
    schema_evolution,
    scratch,
    sources,
    warehouse,
    working_files,
)
from pipelines.conform import contact_lookups, dimensions, facts, first_contacts, repeats
from pipelines.conform.catalog import Catalog, load_catalog
from pipelines.contracts import load_contract, load_contracts
from pipelines.insight.text import load_taxonomy
from pipelines.interval import Interval
from pipelines.model import (
    PARTITIONED_FACTS,
    dim_channel,
    dim_date,
    dim_journey,
    dim_service,
    fact_case,
    fact_contact,
    fact_feedback,
    fact_survey_response,
    fact_web_daily,
    ledger_redaction,
    quarantine,
    unmapped_code,
)
from pipelines.settings import Settings
from pipelines.sources import ROW_COLUMN, batches_for
from pipelines.staging import Staged, StageWriter, last_extract_seconds, read_staged, staging_dir
from pipelines.validate import validate_batch

log = logging.getLogger(__name__)

FACT_TABLES: dict[str, sa.Table] = {t.name: t for t in (
    fact_case, fact_contact, fact_survey_response, fact_web_daily, fact_feedback)}

SOURCE_FACT = {"case_db": "fact_case", "contact_center": "fact_contact", "survey": "fact_survey_response",
               "web_analytics": "fact_web_daily", "feedback": "fact_feedback"}

# Cases load first: survey responses look up the case they are about.
LOAD_ORDER = ("case_db", "contact_center", "web_analytics", "feedback", "survey")
# The sources whose committed rows a source's conform reads.
LOADED_BEFORE = {"survey": ("case_db",)}
# Sources loaded at once, each in its own transaction: while one waits on the warehouse (COPY,
# index upkeep) or on the scratch DuckDB, another conforms in Python.
LOAD_LANES = 2


def _settings(settings: Settings | None) -> Settings:
    return settings or Settings.from_env()


def source_names(settings: Settings | None = None) -> list[str]:
    """Every source with a contract in ``schemas/sources``, in load order."""
    known = load_contracts(_settings(settings).schemas_dir)
    return [s for s in LOAD_ORDER if s in known] + sorted(set(known) - set(LOAD_ORDER))


def extract_order(settings: Settings | None = None) -> list[str]:
    """The sources longest extract first, by their latest staged day; sources without one
    first, in load order. On an executor with fewer slots than sources, starting the longest
    extracts first ends the phase sooner: on the benchmark's default day with two slots, the
    survey queued behind three shorter extracts in load order (38.8 s for the phase; longest
    first 33.4 s)."""
    settings = _settings(settings)
    names = source_names(settings)
    last = {name: last_extract_seconds(settings, name) for name in names}
    return sorted(names, key=lambda name: (last[name] is not None, -(last[name] or 0.0)))


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


# ---------------------------------------------------------------- extract + validate

# Where the first load of an ``initial_load: all_history`` source starts.
HISTORY_START = datetime(1970, 1, 1, tzinfo=UTC)


def _extraction_window(settings: Settings, source: str, location: dict, interval: Interval) -> Interval:
    """The run's interval; for the very first load of a snapshot source, all history up to its end.

    An accumulating snapshot (cases) only makes sense with the cases changed before the
    first night too, or a survey about an older case finds nothing to link to. Whether
    a first load happened is read from the lake, not the warehouse, so parallel
    extract tasks never contend for the warehouse file.
    """
    if location.get("initial_load") != "all_history":
        return interval
    loaded = lake.table_path(settings.lake_dir, SOURCE_FACT[source])
    if loaded.exists() and any(loaded.glob(f"*/{lake.PART_FILE}")):
        return interval
    log.info("%s: first load, extracting all history before %s", source, interval.end)
    return Interval(HISTORY_START, interval.end)


def extract_and_validate(
    source: str, start: datetime, end: datetime, run_id: str, settings: Settings | None = None
) -> dict[str, Any]:
    """Extract one source for [start, end) batch by batch: keep each raw batch, validate it, stage it.

    Raises ``ContractError`` (not retryable) when the source breaks its contract as a
    whole, ``SourceUnavailable`` (retryable) when it cannot be reached.
    """
    settings = _settings(settings)
    interval = Interval(start, end)
    contract = load_contract(settings.schemas_dir, source)
    stage = StageWriter(settings, contract, interval, run_id)
    window = _extraction_window(settings, source, contract.location, interval)
    raw_dir = (settings.raw_dir / source / f"date={interval.days[0].isoformat()}" / f"run={_safe(run_id)}")
    seconds = {"extract": 0.0, "validate": 0.0}
    origins: list[str] = []
    try:
        shutil.rmtree(raw_dir, ignore_errors=True)
        batch_rows = contract.batch_rows or sources.BATCH_ROWS
        batches = batches_for(contract.kind)(contract, settings, window, batch_rows=batch_rows)
        clock = time.perf_counter()
        for number, batch in enumerate(batches):
            working_files.write_table(_as_received(batch.frame), raw_dir / f"batch-{number:05d}.parquet",
                                      working_files.RAW_COMPRESSION)
            origins.extend(o for o in batch.origins if o not in origins)
            seconds["extract"] += time.perf_counter() - clock
            clock = time.perf_counter()
            stage.add(validate_batch(contract, batch, window))
            seconds["validate"] += time.perf_counter() - clock
            clock = time.perf_counter()
        clock = time.perf_counter()
        conform = None
        if source in SOURCE_FACT and source not in LOADED_BEFORE:
            def conform(clean_files: list[Path]) -> dict[str, Any] | None:
                return _conform_staged(settings, source, clean_files, interval, run_id, seconds)
        summary = stage.finish({"source": source, "origins": origins, "seconds": seconds}, conform)
        seconds["validate"] += time.perf_counter() - clock - seconds.get("conform", 0.0)
    except Exception as error:
        stage.fail(error)
        raise
    log.info("%s %s: read %d, valid %d, quarantined %d in %d batches", source, interval,
             summary["rows_read"], summary["rows_valid"], summary["rows_quarantined"], summary["batches"])
    return {k: summary[k] for k in ("source", "rows_read", "rows_valid", "rows_quarantined", "seconds")}


def _conform_staged(settings: Settings, source: str, clean_files: list[Path], interval: Interval,
                    run_id: str, seconds: dict[str, float]) -> dict[str, Any] | None:
    """The source's clean batches conformed to its fact's rows, in the extract's own process.

    Conform is most of the load's Python work (the contact center's pseudonyms: 15 of the
    load's 31 s at 5M contacts), and the load runs it for every source in one process whose
    threads share one interpreter lock. Done here, it runs beside the other extracts, on
    every core the extract tasks have. A source whose conform reads the warehouse
    (``LOADED_BEFORE``: the survey's cases) is conformed by the load.

    What fails here is left to the load (None), which conforms the batches itself and
    reports the failure as a load failure, after its own checks (schema drift first).
    """
    began = time.perf_counter()
    spool = _extract_spool(settings, source, interval, run_id)
    target = FACT_TABLES[SOURCE_FACT[source]]
    batches = (pd.read_parquet(path) for path in clean_files)
    try:
        rows, unmapped, redactions = _conform_to_spool(
            None, source, batches, load_catalog(settings.schemas_dir), settings, target, spool)
    except Exception as error:
        spool.unlink(missing_ok=True)
        log.warning("%s: conform left to the load (%s: %s)", source, type(error).__name__, error)
        return None
    except BaseException:
        spool.unlink(missing_ok=True)
        raise
    finally:
        seconds["conform"] = time.perf_counter() - began
    return {"spool": spool.name, "rows": rows, "unmapped": _records(unmapped),
            "redactions": _records(redactions if redactions is not None else privacy.no_redactions())}


def _extract_spool(settings: Settings, source: str, interval: Interval, run_id: str) -> Path:
    """Where an extract leaves its conformed rows; the load removes the file once they are loaded
    and in the lake (a later rerun of the load conforms the staged batches again)."""
    return staging_dir(settings, source, interval) / f"conformed-{_safe(run_id)}.parquet"


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records"))


def _as_received(frame: pd.DataFrame) -> pa.Table:
    """The raw batch as text columns (``_row`` stays a number)."""
    return pa.Table.from_pandas(frame.astype({c: "string" for c in frame.columns if c != ROW_COLUMN}),
                                preserve_index=False)


# ---------------------------------------------------------------- conform + load


def _load_dimensions(conn: sa.Connection, catalog: Catalog) -> None:
    for table, frame in ((dim_service, dimensions.dim_service(catalog)),
                         (dim_journey, dimensions.dim_journey(catalog)),
                         (dim_channel, dimensions.dim_channel(catalog)),
                         (dim_date, dimensions.dim_date())):
        warehouse.replace_where(conn, table, sa.true(), warehouse.to_arrow(frame, table))


def _conform(source: str, clean: pd.DataFrame, catalog: Catalog, settings: Settings,
             conn: sa.Connection | None) -> facts.Conformed:
    key = privacy.PrivacyPolicy(settings.pseudonym_key, settings.schemas_dir)
    builders: dict[str, Callable[[], facts.Conformed]] = {
        "case_db": lambda: facts.conform_cases(clean, catalog, key),
        "contact_center": lambda: facts.conform_contacts(clean, catalog, key),
        "survey": lambda: facts.conform_survey(
            clean, catalog, key, lambda keys: _case_outcomes(conn, keys),
            taxonomy=load_taxonomy(settings.schemas_dir)),
        "web_analytics": lambda: facts.conform_web(clean, catalog, key),
        "feedback": lambda: facts.conform_feedback(
            clean, catalog, key, taxonomy=load_taxonomy(settings.schemas_dir)),
    }
    return builders[source]()


def _case_outcomes(conn: sa.Connection, case_keys: list[str]) -> pd.DataFrame:
    """The cases of a chunk of survey responses. Read as Arrow (COPY TO on PostgreSQL): a frame
    built from 50k fetched tuples cost more than the query itself, 20 times a night."""
    columns = ["case_key", "cycle_days", "standard_days", "over_standard"]
    keys = pa.table({"case_key": pa.array(case_keys, pa.string())})
    schema = pa.schema([warehouse.arrow_schema(fact_case).field(c) for c in columns])
    with warehouse.staged(conn, keys) as wanted:
        query = sa.select(*[fact_case.c[c] for c in columns]).join(
            wanted, wanted.c.case_key == fact_case.c.case_key)
        found = warehouse.export_table(conn, query, schema)
    frame = found.to_pandas(types_mapper=pd.ArrowDtype)  # integers with gaps stay integers
    return frame.astype({"case_key": "string", "cycle_days": "Int64", "standard_days": "Int64",
                         "over_standard": "boolean"})


def _write_lake(settings: Settings, table: str, spool: Path, interval: Interval) -> None:
    """The lake follows the committed warehouse: written, after the commit, from the rows it loaded.

    The contacts' spool is the flagged file, written as lake partitions are
    (``repeats.set_flags``): when its rows are all of the interval's one day, it becomes that
    day's partition as it is, not read and written again (5M contacts: about 5 s).
    """
    day = PARTITIONED_FACTS[fact_contact.name]
    if table == fact_contact.name and _only_day(spool, day, interval):
        lake.place_partition(lake.partition_path(settings.lake_dir, table, day, interval.days[0]), spool)
        return
    schema = warehouse.arrow_schema(FACT_TABLES[table])
    with scratch.session(spool.parent) as local:
        for path, rows in _lake_partitions(local, settings, table, spool, interval):
            lake.write_partition_batches(path, schema, warehouse.export_batches(local, rows, schema))


def _only_day(spool: Path, column: str, interval: Interval) -> bool:
    """Whether every row of the spool falls on the interval's day (an interval of one day)."""
    if len(interval.days) != 1:
        return False
    days = pq.read_table(spool, columns=[column]).column(column)
    bounds = pc.min_max(days).as_py()
    return days.null_count == 0 and (len(days) == 0 or bounds["min"] == bounds["max"] == interval.days[0])


def _lake_partitions(local: sa.Connection, settings: Settings, table: str, spool: Path,
                     interval: Interval) -> Iterator[tuple[Path, sa.Select]]:
    """Each lake partition the spool's rows go to, with the query of its rows."""
    target = FACT_TABLES[table]
    names = [c.name for c in target.columns]
    if table in PARTITIONED_FACTS:
        column = PARTITIONED_FACTS[table]
        loaded = scratch.parquet(spool, names, "loaded")
        for day in interval.days:  # in the spool's order: the same rows give the same file
            yield (lake.partition_path(settings.lake_dir, table, column, day),
                   sa.select(loaded).where(loaded.c[column] == day))
        return
    # fact_case: partitioned by month received; newer versions of a case win (on a tie, this run's)
    incoming = scratch.parquet(spool, names, "incoming", numbered=True)
    month = sa.func.strftime(incoming.c.received_date, "%Y-%m")
    months = [m for (m,) in local.execute(sa.select(month).distinct().where(month.is_not(None))).all()]
    for value in months:
        path = lake.partition_path(settings.lake_dir, table, "received_month", value)
        yield path, _case_month(target, incoming, month == value, path if path.exists() else None)


def _case_month(target: sa.Table, incoming: sa.FromClause, in_month: sa.ColumnElement[bool],
                existing: Path | None) -> sa.Select:
    """A month of the case snapshot: its lake partition's cases updated by this run's, one row per case."""
    names, row = [c.name for c in target.columns], scratch.ROW_NUMBER
    parts = [sa.select(*[incoming.c[n] for n in names], sa.literal(1).label("run"), incoming.c[row])
             .where(in_month)]
    if existing is not None:  # one row per case already; written before a column was added, it lacks it
        have = set(pq.read_schema(existing).names)
        stored = scratch.parquet(existing, [n for n in names if n in have], "stored")
        parts.append(sa.select(*[stored.c[n] if n in have else sa.cast(sa.null(), target.c[n].type).label(n)
                                 for n in names], sa.literal(0).label("run"), sa.literal(0).label(row)))
    both = sa.union_all(*parts).subquery("both")
    latest = sa.func.row_number().over(partition_by=both.c.case_key, order_by=[
        both.c.updated_at.desc().nulls_first(), both.c.run.desc(), both.c[row].desc()])
    ranked = sa.select(both, latest.label("rank")).subquery("ranked")
    return sa.select(*[ranked.c[n] for n in names]).where(ranked.c.rank == 1).order_by(ranked.c.case_key)


@dataclass
class _Loaded:
    entry: ledger.LedgerEntry
    table: str
    spool: Path
    seconds: dict[str, float]  # conform, load (and lake, once written)


# Rows conformed at a time: conform's intermediate frames are several times the rows' size.
CONFORM_ROWS = 50_000


def _conform_to_spool(conn: sa.Connection | None, source: str, batches: Iterable[pd.DataFrame],
                      catalog: Catalog, settings: Settings, target: sa.Table,
                      spool: Path) -> tuple[int, pd.DataFrame, pd.DataFrame | None]:
    """Conform clean batches one at a time into a parquet spool of the fact's columns."""
    unmapped, redactions, rows = [], None, 0
    with working_files.Writer(spool, warehouse.arrow_schema(target)) as writer:
        for batch in batches:
            for offset in range(0, len(batch), CONFORM_ROWS):
                clean = batch.iloc[offset:offset + CONFORM_ROWS].reset_index(drop=True)
                conformed = _conform(source, clean, catalog, settings, conn)
                writer.write(warehouse.to_arrow(conformed.rows, target))
                rows += len(conformed.rows)
                unmapped.append(conformed.unmapped)
                redactions = privacy.combine_counts(redactions, conformed.redactions)
    unmapped_codes = pd.concat(unmapped, ignore_index=True) if unmapped else _unmapped_frame([])
    unmapped_codes = unmapped_codes.groupby(["code_kind", "code"], as_index=False, sort=True)["rows"].sum()
    return rows, unmapped_codes, redactions


def _unmapped_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(records, columns=["code_kind", "code", "rows"]).astype(
        {"code_kind": "string", "code": "string", "rows": "int64"})


def _conformed_spool(
    settings: Settings, staged: Staged, interval: Interval, run_id: str, catalog: Catalog,
    conn: sa.Connection, target: sa.Table,
) -> tuple[Path, int, pd.DataFrame, pd.DataFrame | None]:
    """The load's spool of the source's fact rows: a link to what the extract conformed, or
    conformed now (the survey; a source whose extract could not conform; a rerun after the
    extract's file was loaded). The extract's file stays until the load has committed:
    flagging the contacts replaces the load's spool, not it."""
    spool = staging_dir(settings, staged.source, interval) / f"loading-{_safe(run_id)}.parquet"
    spool.unlink(missing_ok=True)
    done = staged.summary.get("conformed")
    extracted = _extract_spool(settings, staged.source, interval, run_id)
    if done and extracted.exists():
        try:
            os.link(extracted, spool)
        except OSError:  # a file system without hard links
            shutil.copyfile(extracted, spool)
        return (spool, int(done["rows"]), _unmapped_frame(done["unmapped"]),
                privacy.counts_frame(done["redactions"]))
    rows, unmapped, redactions = _conform_to_spool(conn, staged.source, staged.clean_batches(), catalog,
                                                   settings, target, spool)
    return spool, rows, unmapped, redactions


def _load_source(conn: sa.Connection, settings: Settings, staged: Staged, catalog: Catalog,
                 policy: privacy.PrivacyPolicy, interval: Interval, run_id: str) -> _Loaded:
    """Facts, quarantine, unmapped codes and the ledger row of one source, in one transaction."""
    source, table = staged.source, SOURCE_FACT[staged.source]
    target = FACT_TABLES[table]
    schema_evolution.evolve(conn, target)  # newly declared columns, added with the rows that fill them
    clock = time.perf_counter()
    spool, rows_loaded, unmapped, redactions = _conformed_spool(settings, staged, interval, run_id, catalog,
                                                                conn, target)
    conformed_at = time.perf_counter()
    # quarantined records keep identifiers (engineers trace them) but not free text
    kept = policy.protect_quarantine(source, staged.quarantine)
    staged.quarantine = kept.frame
    redactions = privacy.combine_counts(redactions, kept.redactions)
    if table in PARTITIONED_FACTS:
        conn.execute(sa.delete(target).where(warehouse.in_days(target.c[PARTITIONED_FACTS[table]],
                                                                interval.days)))
        if target is fact_contact:
            began = time.perf_counter()
            lookups = _flag_contacts_and_fill_lookups(conn, spool, run_id, interval)
            log.info("%s: repeat flags and lookups %s in %.2f s", source, lookups,
                     time.perf_counter() - began)
        began = time.perf_counter()
        inserted = warehouse.insert_parquet(conn, target, spool)
        log.info("%s: %d rows into %s in %.2f s", source, inserted, table, time.perf_counter() - began)
        if target is fact_contact:
            first_contacts.record_days(conn, interval.days)
    else:
        warehouse.upsert_newer(conn, target, spool, key="case_key", version="updated_at")
    day = interval.days[0]
    this_partition = sa.and_(quarantine.c.source == source, quarantine.c.partition_date == day)
    warehouse.replace_where(conn, quarantine, this_partition, warehouse.to_arrow(
        staged.quarantine.assign(partition_date=day, run_id=run_id), quarantine))
    unmapped_partition = sa.and_(unmapped_code.c.source == source, unmapped_code.c.partition_date == day)
    warehouse.replace_where(conn, unmapped_code, unmapped_partition, warehouse.to_arrow(
        unmapped.assign(source=source, partition_date=day), unmapped_code))
    entry = ledger.LedgerEntry(
        source=source, interval_start=interval.start, interval_end=interval.end, run_id=run_id,
        status="loaded", rows_read=int(staged.summary["rows_read"]), rows_loaded=rows_loaded,
        rows_quarantined=len(staged.quarantine), rows_unmapped=int(unmapped["rows"].sum()))
    ledger.record(conn, entry)
    _record_redactions(conn, source, interval, run_id, redactions)
    seconds = {"conform": conformed_at - clock, "load": time.perf_counter() - conformed_at}
    return _Loaded(entry, table, spool, seconds)


def _flag_contacts_and_fill_lookups(conn: sa.Connection, spool: Path, run_id: str,
                                    interval: Interval) -> dict[str, int]:
    """Set the spool's repeat flags and replace the day in the contact lookup tables; returns
    the lookups' rows per table.

    The flags need the days before as this transaction sees them, the lookups only the
    spool's rows. The scratch DuckDB work runs on a thread of its own, one piece after the
    other (so that only one scratch DuckDB holds memory at a time): each lookup's rows, then
    the flags. PostgreSQL copies each lookup as soon as its rows are ready, so its backend works
    on one core while DuckDB orders the next rows or computes the flags on the other: with the
    rows of every lookup ordered first, the backend waited for them (14 s at 5M contacts).
    """
    flagged = spool.with_name(f"flagged-{_safe(run_id)}.parquet")
    history = repeats.recent_history(conn, spool, spool.with_name(f"history-{_safe(run_id)}.parquet"))
    lookups: dict[str, int] = {}
    ordered: list[Future[Path]] = []
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="scratch") as scratch_work:
            tables = contact_lookups.stored_lookups(conn.dialect.name)
            ordered = [scratch_work.submit(contact_lookups.ordered_lookup_rows, spool, t) for t in tables]
            flagging = scratch_work.submit(repeats.set_flags, spool, history, flagged)
            try:
                for table, rows in zip(tables, ordered, strict=True):
                    lookups[table.name] = contact_lookups.replace_lookup_days(conn, table, rows.result(),
                                                                              interval.days)
                flagging.result()
            except BaseException:
                for work in (*ordered, flagging):
                    work.cancel()  # what has not started; the thread finishes what has
                raise
    except BaseException:
        for rows in ordered:  # the rows of lookups not loaded
            if rows.done() and not rows.cancelled() and rows.exception() is None:
                rows.result().unlink(missing_ok=True)
        flagged.unlink(missing_ok=True)
        raise
    finally:
        history.unlink(missing_ok=True)
    flagged.replace(spool)  # the spool holds the rows as loaded: the lake is written from it
    return lookups


def _record_redactions(conn: sa.Connection, source: str, interval: Interval, run_id: str,
                       redactions: pd.DataFrame | None) -> None:
    """Redaction counts per free-text column and type, replacing the interval's earlier ones."""
    counts = redactions if redactions is not None else privacy.no_redactions()
    rows = counts.assign(source=source, interval_start=interval.start, interval_end=interval.end,
                         run_id=run_id)
    where = sa.and_(ledger_redaction.c.source == source, ledger_redaction.c.interval_start == interval.start)
    warehouse.replace_where(conn, ledger_redaction, where, warehouse.to_arrow(rows, ledger_redaction))


def conform_and_load(
    start: datetime, end: datetime, run_id: str, settings: Settings | None = None
) -> dict[str, Any]:
    """Conform every source staged for this run, load facts and dimensions, write the ledger.

    Runs even when some sources failed: it loads what was staged and records the rest
    as failed in the ledger (unless an earlier run already loaded that interval).
    """
    settings = _settings(settings)
    interval = Interval(start, end)
    catalog = load_catalog(settings.schemas_dir)
    policy = privacy.PrivacyPolicy(settings.pseudonym_key, settings.schemas_dir)  # no key: stop here
    engine = warehouse.engine_for(settings.warehouse_url)
    warehouse.ensure_schema(engine, per_source=FACT_TABLES, bi_layer=False)
    with engine.begin() as conn:
        _load_dimensions(conn, catalog)
    names = source_names(settings)
    with ThreadPoolExecutor(LOAD_LANES, thread_name_prefix="load") as lanes:
        pending: dict[str, Future] = {}
        for source in names:
            after = [pending[s] for s in LOADED_BEFORE.get(source, ()) if s in pending]
            pending[source] = lanes.submit(_load_committed, engine, settings, source, catalog, policy,
                                           interval, run_id, after)
        outcomes = {source: future.exception() or future.result() for source, future in pending.items()}
    failed = next((o for o in outcomes.values() if isinstance(o, BaseException)), None)
    if failed is not None:
        raise failed
    report: dict[str, Any] = {"loaded": {}, "failed": {}}
    for source, outcome in outcomes.items():
        kind, value = outcome
        report[kind][source] = value
    return report


def _load_committed(engine: sa.Engine, settings: Settings, source: str, catalog: Catalog,
                    policy: privacy.PrivacyPolicy, interval: Interval, run_id: str,
                    after: list[Future]) -> tuple[str, Any]:
    """One source's staged rows conformed and loaded in a transaction of its own, then its lake
    partitions; ("loaded", counts) or ("failed", why it was not staged)."""
    for earlier in after:
        earlier.result()  # its failure is this source's too: the rows it reads are not there
    staged = read_staged(settings, source, interval, run_id)
    if not isinstance(staged, str):
        staged = _schema_drift(engine, source) or staged
    with engine.begin() as conn:
        if isinstance(staged, str):
            if not ledger.has_loaded(conn, source, interval):
                ledger.record(conn, ledger.LedgerEntry(
                    source, interval.start, interval.end, run_id, "failed", 0, 0, 0, 0, staged))
            return "failed", staged
        loaded = _load_source(conn, settings, staged, catalog, policy, interval, run_id)
    # The lake follows the committed warehouse: a lake partition means its load committed
    # (a first load killed midway is therefore extracted whole again on the rerun).
    clock = time.perf_counter()
    try:
        _write_lake(settings, loaded.table, loaded.spool, interval)
    finally:
        loaded.spool.unlink(missing_ok=True)
    _extract_spool(settings, source, interval, run_id).unlink(missing_ok=True)  # staging keeps no copy
    loaded.seconds["lake"] = time.perf_counter() - clock
    lake.write_partition(
        lake.partition_path(settings.lake_dir, f"quarantine_{source}", "date", interval.days[0]),
        pa.Table.from_pandas(staged.quarantine, preserve_index=False))
    entry = loaded.entry
    return "loaded", {"rows_read": entry.rows_read, "rows_loaded": entry.rows_loaded,
                      "rows_quarantined": entry.rows_quarantined, "rows_unmapped": entry.rows_unmapped,
                      "seconds": loaded.seconds}


def _schema_drift(engine: sa.Engine, source: str) -> str | None:
    """Why the source's fact table cannot take its rows (changed type, removed column), if so."""
    table = FACT_TABLES.get(SOURCE_FACT.get(source, ""))
    if table is None:
        return None
    with engine.connect() as conn:
        problems = schema_evolution.check(conn, table)
    return f"SchemaDrift: {schema_evolution.describe(table.name, problems)}" if problems else None


# ---------------------------------------------------------------- marts


def build_marts(
    start: datetime, end: datetime, run_id: str, settings: Settings | None = None
) -> dict[str, Any]:
    """Recompute the marts for the days of [start, end)."""
    settings = _settings(settings)
    interval = Interval(start, end)
    engine = warehouse.engine_for(settings.warehouse_url)
    warehouse.ensure_schema(engine, per_source=FACT_TABLES, sql_dir=settings.warehouse_sql_dir)
    with engine.begin() as conn:
        # the insight layer first: it readies the night's pages and statistics for every reader
        # (see rebuild_period_marts); no insight mart reads the daily marts
        counts = marts.rebuild_period_marts(conn, settings, interval.days)
        for name, table in marts.MARTS.items():
            began = time.perf_counter()
            counts[name] = marts.rebuild_mart(conn, settings.warehouse_sql_dir, table, interval.days)
            log.info("%s: %d rows in %.2f s", name, counts[name], time.perf_counter() - began)
    # A source stopped for schema drift fails the run (once the marts hold the other sources).
    stopped = {s: message for s in source_names(settings) if (message := _schema_drift(engine, s))}
    if stopped:
        raise schema_evolution.SchemaDrift("; ".join(f"{s} not loaded: {m}" for s, m in stopped.items()))
    return counts


def publish_report(
    start: datetime, end: datetime, run_id: str, settings: Settings | None = None
) -> dict[str, Any]:
    """The run's GX Data Docs, journey health report and its fiscal quarter's A-11 files."""
    from pipelines.insight.publish import publish

    return publish(start, end, run_id, _settings(settings))


def run_day(day: date, run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """The whole nightly job for one day without a scheduler (CLI, tests)."""
    interval = Interval.for_day(day)
    extracted, errors = {}, {}
    for source in source_names(settings):
        try:
            extracted[source] = extract_and_validate(source, interval.start, interval.end, run_id, settings)
        except Exception as error:  # the other sources still load; reported below
            errors[source] = f"{type(error).__name__}: {error}"
    loaded = conform_and_load(interval.start, interval.end, run_id, settings)
    mart_rows = build_marts(interval.start, interval.end, run_id, settings)
    return {"day": day.isoformat(), "extracted": extracted, "errors": errors,
            "loaded": loaded, "marts": mart_rows}
