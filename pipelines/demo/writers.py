"""Write the demo world in the form a real agency hands its data over.

Where each source lands (``landing`` is ``settings.landing_dir``; names follow the
contracts in ``schemas/sources``):

* case_db: table ``cases`` at ``settings.case_db_url`` (any SQLAlchemy URL: SQLite,
  PostgreSQL, MariaDB/MySQL; a server database must exist, the table is created),
  contract columns only. Timestamps are ``DateTime`` columns holding naive UTC
  (PostgreSQL ``timestamp``, MariaDB ``DATETIME(6)``, SQLite ISO text
  ``YYYY-MM-DD HH:MM:SS.ffffff``); nothing is NULL (``None``), never ``NaT`` or ``""``.
  The table holds the state *as of* a moment and each write replaces its contents in
  one transaction.
* contact_center: ``landing/contact_center/contacts_YYYY-MM-DD.csv``: UTF-8, header
  row in contract column order, booleans ``true``/``false``, empty cell for nothing,
  timestamps ``YYYY-MM-DDTHH:MM:SSZ``.
* web_analytics: ``landing/web_analytics/web_YYYY-MM-DD.json``:
  ``{"date", "property", "rows": [{"date", "page_path", "sessions", "task_starts",
  "task_completions", "status_checks"}, ...]}`` with integer counts.
* feedback: ``landing/feedback/feedback_YYYY-MM-DD.jsonl``: one object per line, keys in
  contract column order, ``null`` for nothing, ``rating`` an integer (app reviews only).

The survey platform's store (``landing/survey/responses.json``) is what the demo
Touchpoints server serves. It is one JSON array of submissions, sorted by
``attributes.created_at`` then ``id``, holding every form's responses created before
the store's ``as_of`` (and from the world's first day on)::

    {"id": "3976000001",              # submission id (digits, as a string), unique
     "form_uuid": "a1b2c3d4",         # the survey form (catalog codes.survey_form)
     "attributes": {
        "created_at": "2026-01-01T12:00:00.000Z", "updated_at": "...same...",
        "language": "en", "aasm_state": "received", "uuid": "<uuid4>",
        "answer_01": "4", ..., "answer_08": "5",   # A-11 items, strings "1".."5"
        "answer_09": "free text" | null,          # comment
        "answer_10": "FBA3976000012" | null,      # external_id: the case number
        "answer_11": "online", "answer_12": "individual", "answer_13": "west"}}

Read it with ``read_survey_store(path)``. Every file is written to a temporary name
and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from pipelines.contracts import load_contract
from pipelines.demo.world import DEFAULT_SEED, DemoWorld, Volumes, _utc, end_of_day
from pipelines.settings import Settings

CASES_TABLE = "cases"
# Naive UTC everywhere; MariaDB's plain DATETIME would drop fractions of a second.
CASE_TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
SURVEY_STORE = Path("survey") / "responses.json"


def cases_table(metadata: sa.MetaData) -> sa.Table:
    """The case system's table: portable types only (SQLite, PostgreSQL, MariaDB/MySQL).

    ``form_type`` is nullable here although the contract says otherwise: the source
    system is lax, which is why one planted bad row per day can lack it.
    """
    return sa.Table(
        CASES_TABLE,
        metadata,
        sa.Column("case_number", sa.String(20), primary_key=True),
        sa.Column("form_type", sa.String(20), nullable=True),
        sa.Column("product_line", sa.String(40), nullable=False),
        sa.Column("office", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("customer_ref", sa.String(20), nullable=False),
        sa.Column("customer_type", sa.String(20)),
        sa.Column("language", sa.String(8)),
        sa.Column("region", sa.String(20)),
        sa.Column("received_at", CASE_TIMESTAMP, nullable=False),
        sa.Column("decided_at", CASE_TIMESTAMP),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("updated_at", CASE_TIMESTAMP, nullable=False, index=True),
    )


def write_case_db(world: DemoWorld, url: str, as_of: datetime) -> int:
    """Replace the ``cases`` table with the world's state at ``as_of``; returns the row count."""
    state = world.case_state(as_of)
    columns = {}
    for name in state.columns:
        values = state[name]
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            naive = values.dt.tz_convert("UTC").dt.tz_localize(None)
            stamps = naive.array.to_pydatetime()
            stamps[naive.isna().to_numpy()] = None
            columns[name] = stamps.tolist()
        else:
            columns[name] = values.to_numpy(dtype=object, na_value=None).tolist()
    rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    sa_url = sa.engine.make_url(url)
    if sa_url.get_backend_name() == "sqlite" and sa_url.database not in (None, "", ":memory:"):
        Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(sa_url)
    try:
        metadata = sa.MetaData()
        table = cases_table(metadata)
        metadata.create_all(engine, checkfirst=True)
        with engine.begin() as conn:
            conn.execute(table.delete())
            if rows:
                conn.execute(table.insert(), rows)
    finally:
        engine.dispose()
    return len(rows)


def _atomic_write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _daily_path(world: DemoWorld, landing_dir: Path, source: str, day: date) -> Path:
    location = load_contract(world.schemas_dir, source).location
    return Path(landing_dir) / location["folder"] / location["file_pattern"].format(
        date=day.isoformat()
    )


def write_contact_file(world: DemoWorld, landing_dir: Path, day: date) -> Path:
    """The contact-center export for ``day``."""
    columns = load_contract(world.schemas_dir, "contact_center").column_names
    text = world.contact_rows(day)[columns].to_csv(index=False, lineterminator="\n")
    return _atomic_write(_daily_path(world, landing_dir, "contact_center", day), text)


def write_web_file(world: DemoWorld, landing_dir: Path, day: date) -> Path:
    """The web analytics export for ``day``."""
    text = json.dumps(world.web_document(day), indent=1) + "\n"
    return _atomic_write(_daily_path(world, landing_dir, "web_analytics", day), text)


def write_feedback_file(world: DemoWorld, landing_dir: Path, day: date) -> Path:
    """The feedback inbox's JSON Lines for ``day``."""
    lines = [json.dumps(r, ensure_ascii=False) for r in world.feedback_records(day)]
    text = "".join(line + "\n" for line in lines)
    return _atomic_write(_daily_path(world, landing_dir, "feedback", day), text)


def write_day_files(world: DemoWorld, landing_dir: Path, day: date) -> list[Path]:
    """The three daily files (contacts, web, feedback) for one day."""
    return [
        write_contact_file(world, landing_dir, day),
        write_web_file(world, landing_dir, day),
        write_feedback_file(world, landing_dir, day),
    ]


def survey_store_path(landing_dir: Path) -> Path:
    return Path(landing_dir) / SURVEY_STORE


def survey_store_records(world: DemoWorld, as_of: datetime) -> list[dict[str, Any]]:
    """Every response of the world's days created before ``as_of``, in store order."""
    at = _utc(as_of)
    records: list[dict[str, Any]] = []
    for day in world.days:
        if pd.Timestamp(day.isoformat(), tz="UTC") >= at:
            break
        created = world.survey_responses(day)["created_at"]
        keep = (created < at).to_numpy()
        records.extend(r for r, k in zip(world.survey_records(day), keep, strict=True) if k)
    records.sort(key=lambda r: (r["attributes"]["created_at"], r["id"]))
    return records


def write_survey_store(world: DemoWorld, path: Path, as_of: datetime) -> int:
    """Replace the survey platform's store with the responses created before ``as_of``."""
    records = survey_store_records(world, as_of)
    _atomic_write(Path(path), json.dumps(records, ensure_ascii=False) + "\n")
    return len(records)


def read_survey_store(path: Path) -> list[dict[str, Any]]:
    """The survey platform's submissions (format in the module docstring).

    Accepts the store file or the landing folder; a missing store is an empty platform.
    """
    path = Path(path)
    if path.is_dir():
        path = survey_store_path(path)
    if not path.exists():
        return []
    records = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(records, list):
        raise ValueError(f"{path}: survey store must be a JSON array of submissions")
    return records


def build_demo_sources(
    settings: Settings,
    start: date,
    end: date,
    seed: int = DEFAULT_SEED,
    as_of: datetime | None = None,
    volumes: Volumes | None = None,
) -> DemoWorld:
    """Write all five sources for days ``start..end``: daily files for every day, the
    case DB and survey store as of ``as_of`` (default: the end of ``end``, UTC)."""
    world = DemoWorld(seed=seed, start=start, end=end, volumes=volumes,
                      schemas_dir=settings.schemas_dir)
    for day in world.days:
        write_day_files(world, settings.landing_dir, day)
    _write_stateful(settings, world, as_of or end_of_day(end))
    return world


def advance_sources(settings: Settings, world: DemoWorld, as_of: datetime) -> DemoWorld:
    """Rewrite the case DB and survey store as of a later moment.

    When ``as_of`` reaches past the world's last day, the world is extended (same seed,
    so earlier days do not change), the new days' files are written, and the extended
    world is returned; otherwise ``world`` itself is returned.
    """
    last_day = (_utc(as_of) - pd.Timedelta(microseconds=1)).date()
    if last_day > world.end:
        old_end = world.end
        world = DemoWorld(seed=world.seed, start=world.start, end=last_day,
                          volumes=world.volumes, schemas_dir=world.schemas_dir)
        for day in _days(old_end + timedelta(days=1), last_day):
            write_day_files(world, settings.landing_dir, day)
    _write_stateful(settings, world, as_of)
    return world


def _write_stateful(settings: Settings, world: DemoWorld, as_of: datetime) -> None:
    write_case_db(world, settings.case_db_url, as_of)
    write_survey_store(world, survey_store_path(settings.landing_dir), as_of)


def _days(first: date, last: date) -> Iterable[date]:
    return (first + timedelta(days=i) for i in range((last - first).days + 1))
