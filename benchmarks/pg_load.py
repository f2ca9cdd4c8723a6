"""Loading contacts into PostgreSQL: the project's load path against a plain COPY, in one run.

    python -m benchmarks.pg_load                 # 1,000,000 contact rows, 3 rounds
    python -m benchmarks.pg_load --rows 200000 --rounds 5 --admin-url postgresql+psycopg://...

Both load the same generated ``fact_contact`` rows into an empty table of the same
definition (primary key and indexes included) in a fresh database, created here and
dropped at the end:

* **project path**: what the nightly job does with a day's conformed contacts, in one
  transaction: DELETE of the partition, the repeat flags set on the spool in the
  in-process DuckDB (with the warehouse's 7-day history), then COPY of the flagged
  parquet (written as CSV by Arrow, batch by batch);
* **plain COPY**: the physical reference: the same rows, already as a CSV file on disk
  (written before the clock starts), streamed by psycopg into ``COPY ... FROM STDIN``;
* **plain COPY, no indexes**: the same into a table of the same columns without any index,
  which shows what the indexes cost (the bench's reference loads into such a table).

It prints seconds and rows/s of each (best of the rounds) and the ratio project/COPY.
A script, not a test: the figures depend on the machine.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from pipelines import warehouse
from pipelines.conform import repeats
from pipelines.model import fact_contact
from pipelines.postgres import fresh_database

DAY = date(2026, 3, 2)
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
console = Console()


def contact_rows(n: int, seed: int = 1) -> pd.DataFrame:
    """``n`` conformed contacts of one day, shaped like the nightly job's ``fact_contact`` rows.

    Columns follow the model (whatever it declares), filled by type: hex keys, a few
    dozen distinct codes per text column, seconds, flags, times during the day.
    """
    rng = np.random.default_rng(seed)
    vocab = np.array([f"code_{i:02d}" for i in range(40)], dtype=object)
    start = pd.Timestamp(datetime.combine(DAY, datetime.min.time(), tzinfo=UTC))
    columns: dict[str, object] = {}
    for column in fact_contact.columns:
        if column.name == "contact_key":
            columns[column.name] = pd.Series(rng.integers(0, 2**62, n)).map("{:032x}".format).to_numpy()
        elif column.name.endswith("_key"):  # about three contacts per customer or case
            pool = rng.integers(0, 2**40, n // 3 + 1)[rng.integers(0, n // 3 + 1, n)]
            columns[column.name] = pd.Series(pool).map("{:032x}".format).to_numpy()
        elif column.name == "contact_date":
            columns[column.name] = np.full(n, DAY, dtype=object)
        elif isinstance(column.type, sa.DateTime):
            columns[column.name] = start + pd.to_timedelta(rng.integers(0, 86_400_000_000, n), unit="us")
        elif isinstance(column.type, sa.Boolean):
            columns[column.name] = rng.random(n) < 0.3
        elif isinstance(column.type, sa.Integer):
            columns[column.name] = rng.integers(0, 3600, n)
        elif isinstance(column.type, sa.Float):
            columns[column.name] = rng.random(n) * 100
        else:
            columns[column.name] = vocab[rng.integers(0, len(vocab), n)]
    frame = pd.DataFrame(columns)
    frame["contact_key"] = frame["contact_key"] + frame.index.map("{:08x}".format)  # unique keys
    return frame


def timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def project_path(engine: sa.Engine, spool: Path) -> dict[str, float]:
    """The nightly job's path for one contact partition, from the conformed spool."""
    flagged = spool.with_name("flagged.parquet")
    began = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.delete(fact_contact).where(fact_contact.c.contact_date == DAY))
        repeats.flag_contacts(conn, spool, flagged)
        flagged_at = time.perf_counter()
        warehouse.insert_parquet(conn, fact_contact, flagged)
    loaded = time.perf_counter()
    flagged.unlink()
    return {"flag": flagged_at - began, "copy": loaded - flagged_at, "total": loaded - began}


def plain_copy(engine: sa.Engine, csv_path: Path, table: str, columns: list[str]) -> float:
    """COPY the CSV file into ``table`` with psycopg, 1 MiB at a time: the database's own ingest speed."""
    raw = engine.raw_connection()
    try:
        began = time.perf_counter()
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT csv)"
        with raw.driver_connection.cursor() as cursor, cursor.copy(statement) as copy, \
                csv_path.open("rb") as source:
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        raw.driver_connection.commit()
        return time.perf_counter() - began
    finally:
        raw.close()


def main(
    rows: Annotated[int, typer.Option(help="Contact rows to load.")] = 1_000_000,
    rounds: Annotated[int, typer.Option(help="Rounds of each; the best counts.")] = 3,
    admin_url: Annotated[str, typer.Option(help="URL of a PostgreSQL user who may CREATE DATABASE.")] = (
        DEFAULT_ADMIN_URL),
) -> None:
    named = sa.make_url(admin_url).set(database="xoflow_bench_pgload").render_as_string(hide_password=False)
    with fresh_database(named) as url:
        engine = warehouse.engine_for(url)
        try:
            console.print(f"generating {rows:,} contact rows ...")
            frame = contact_rows(rows)
            columns = [c.name for c in fact_contact.columns]
            with tempfile.TemporaryDirectory() as tmp:
                csv_path, spool = Path(tmp) / "contacts.csv", Path(tmp) / "conformed.parquet"
                rows_arrow = warehouse.to_arrow(frame, fact_contact)
                pa_csv.write_csv(rows_arrow, csv_path,
                                 pa_csv.WriteOptions(include_header=False, quoting_style="all_valid"))
                # as conform leaves it: the flag is set by the load
                flag = rows_arrow.schema.get_field_index(repeats.FLAG)
                pq.write_table(rows_arrow.set_column(flag, repeats.FLAG, pa.nulls(rows, pa.bool_())), spool,
                               compression="lz4")
                warehouse.ensure_schema(engine, bi_layer=False)
                with engine.begin() as conn:
                    conn.execute(sa.text("CREATE TABLE plain_copy (LIKE fact_contact INCLUDING ALL)"))
                    conn.execute(sa.text("CREATE TABLE bare_copy (LIKE fact_contact)"))
                project, copies, bare = [], [], []
                for _ in range(rounds):  # alternate, each into an empty table
                    with engine.begin() as conn:
                        conn.execute(sa.text("TRUNCATE fact_contact, plain_copy, bare_copy"))
                    project.append(project_path(engine, spool))
                    copies.append(plain_copy(engine, csv_path, "plain_copy", columns))
                    bare.append(plain_copy(engine, csv_path, "bare_copy", columns))
                with engine.connect() as conn:
                    loaded = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                              for t in ("fact_contact", "plain_copy", "bare_copy")}
                size_mb = csv_path.stat().st_size / 2**20
            if set(loaded.values()) != {rows}:
                raise SystemExit(f"row counts differ from {rows}: {loaded}")
            report(rows, rounds, size_mb, project, copies, bare)
        finally:
            engine.dispose()


def report(rows: int, rounds: int, size_mb: float, project: list[dict[str, float]],
           copies: list[float], bare: list[float]) -> None:
    best = min(project, key=lambda r: r["total"])
    copy_best = min(copies)
    table = Table(title=f"{rows:,} fact_contact rows into PostgreSQL ({size_mb:,.0f} MB as CSV), "
                        f"best of {rounds}")
    for heading in ("load", "seconds", "rows/s", "x plain COPY", "median s"):
        table.add_column(heading, justify="left" if heading == "load" else "right")
    medians = {"total": statistics.median(r["total"] for r in project),
               "copy": statistics.median(r["copy"] for r in project)}
    table.add_row("plain COPY (CSV file -> table)", f"{copy_best:.2f}", f"{rows / copy_best:,.0f}", "1.00",
                  f"{statistics.median(copies):.2f}")
    bare_best = min(bare)
    table.add_row("plain COPY, no indexes (same columns)", f"{bare_best:.2f}", f"{rows / bare_best:,.0f}",
                  f"{bare_best / copy_best:.2f}", f"{statistics.median(bare):.2f}")
    total = best["total"]
    table.add_row("project: DELETE + repeat flags + COPY", f"{total:.2f}", f"{rows / total:,.0f}",
                  f"{total / copy_best:.2f}", f"{medians['total']:.2f}")
    table.add_row("  of which repeat flags (DuckDB, spool + history)", f"{best['flag']:.2f}", "", "", "")
    table.add_row("  of which COPY of the flagged parquet", f"{best['copy']:.2f}",
                  f"{rows / best['copy']:,.0f}", f"{best['copy'] / copy_best:.2f}", f"{medians['copy']:.2f}")
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
