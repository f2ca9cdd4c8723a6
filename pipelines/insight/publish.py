"""After the marts: the run's GX Data Docs, its journey health report and the quarter's A-11 files.

Called by the DAG's ``publish_report`` task and by ``xoflow run`` / ``xoflow report``.
Writes under ``XOFLOW_HOME``:

- ``data_docs/``: the GX Data Docs site (``index.html``, one page per validated source);
- ``reports/journey_health_<day>__<run>.html`` (self-contained, about 5 MB: plotly.js is
  inline so that it opens offline) and ``reports/latest.html``, a redirect to the newest;
- ``exports/a11/FY<year>_Q<quarter>/``: the A-11 files of the fiscal quarter the run's last
  day falls in, rewritten every night, so that they are final once the quarter's last day
  is loaded (``xoflow a11`` writes any quarter on demand).
"""

from __future__ import annotations

import html
import logging
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pipelines import warehouse
from pipelines.insight import a11
from pipelines.insight.data_docs import build_data_docs, latest_run_id
from pipelines.insight.periods import fiscal_year_quarter
from pipelines.insight.report import safe_name, write_report
from pipelines.interval import Interval
from pipelines.model import ledger
from pipelines.settings import Settings

log = logging.getLogger(__name__)

# Fact tables whose schema drift stops only their own source (as in pipelines.nightly).
FACT_TABLE_NAMES = ("fact_case", "fact_contact", "fact_survey_response", "fact_web_daily", "fact_feedback")


def reports_dir(settings: Settings) -> Path:
    return settings.home / "reports"


def _warehouse_missing(settings: Settings) -> bool:
    """An embedded warehouse that was never created: nothing has been loaded to report on."""
    url = sa.make_url(settings.warehouse_url)
    return url.get_backend_name() == "duckdb" and url.database not in (None, "", ":memory:") and not Path(
        url.database).exists()


def latest_loaded_day(settings: Settings) -> date | None:
    """The last day any source was loaded for (the ledger), if any."""
    if _warehouse_missing(settings):
        return None
    with warehouse.engine_for(settings.warehouse_url).connect() as conn:
        last = conn.execute(sa.select(sa.func.max(ledger.c.interval_start)).where(
            ledger.c.status == "loaded")).scalar()
    return None if last is None else pd.Timestamp(last).tz_convert(UTC).date()


def report_for_day(settings: Settings, day: date, run_id: str | None) -> dict[str, Any]:
    """Data Docs of the run's validations of ``day`` and the report as of ``day``.

    Without ``run_id`` (``xoflow report``), the latest run that validated ``day`` is used.
    ``reports/latest.html`` redirects to the newest report.
    """
    run_id = run_id or latest_run_id(settings, day) or "report"
    docs = build_data_docs(settings, day, run_id)
    engine = warehouse.engine_for(settings.warehouse_url)
    name = f"journey_health_{day.isoformat()}__{safe_name(run_id)}.html"
    path = reports_dir(settings) / name
    with engine.connect() as conn:
        write_report(conn, path, day, run_id, docs)
    latest = reports_dir(settings) / "latest.html"
    latest.write_text(LATEST.format(name=html.escape(name, quote=True)), encoding="utf-8")
    return {"report": str(path), "latest": str(latest), "data_docs": str(docs.index) if docs else None}


LATEST = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0; url={name}">
<title>Latest journey health report</title></head>
<body><p><a href="{name}">Latest journey health report</a></p></body></html>
"""


def publish(start: datetime, end: datetime, run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """The nightly step after ``build_marts`` for the data interval [start, end)."""
    settings = settings or Settings.from_env()
    if _warehouse_missing(settings):
        log.warning("no warehouse at %s yet: nothing to report", settings.warehouse_url)
        return {"report": None, "reason": "no warehouse yet"}
    interval = Interval(start, end)
    day = interval.days[-1]
    warehouse.ensure_schema(warehouse.engine_for(settings.warehouse_url), per_source=FACT_TABLE_NAMES,
                            sql_dir=settings.warehouse_sql_dir)
    fiscal_year, quarter = fiscal_year_quarter(day)
    export = a11.export_quarter(settings, fiscal_year, quarter,
                                generated_at=datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC))
    result = report_for_day(settings, day, run_id)
    result["a11"] = {"folder": str(export.folder), "details": export.details, "responses": export.responses}
    return result
