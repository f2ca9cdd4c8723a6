"""The ``xoflow`` command: the demo the README opens with, a backfill, and a failing night."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.demo import build_demo_sources
from pipelines.demo.survey_api_server import SurveyApiServer
from pipelines.model import ledger
from pipelines.settings import Settings

runner = CliRunner()


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("XOFLOW_HOME", str(tmp_path))
    for name in ("XOFLOW_WAREHOUSE_URL", "XOFLOW_CASE_DB_URL", "XOFLOW_LANDING_DIR",
                 "XOFLOW_SURVEY_API_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def ledger_rows(settings: Settings) -> list[dict]:
    engine = sa.create_engine(settings.warehouse_url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(ledger)).mappings()]
    finally:
        engine.dispose()


def test_demo_builds_sources_runs_each_night_and_prints_a_balanced_ledger(home):
    result = runner.invoke(app, ["demo", "2"], terminal_width=150)
    assert result.exit_code == 0, result.output
    assert "Ledger: rows read = loaded + quarantined" in result.output
    rows = ledger_rows(Settings.from_env())
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    assert {r["interval_start"].date() for r in rows} == {yesterday - timedelta(days=1), yesterday}
    assert len(rows) == 10 and all(r["status"] == "loaded" for r in rows)
    assert all(r["rows_read"] == r["rows_loaded"] + r["rows_quarantined"] for r in rows)


def test_backfill_loads_every_day_then_a_night_without_files_exits_non_zero(home, monkeypatch):
    settings = Settings.from_env()
    first, last = date(2026, 3, 1), date(2026, 3, 3)
    build_demo_sources(settings, first, last, seed=3,
                       as_of=datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC))
    with SurveyApiServer(settings.landing_dir / "survey" / "responses.json",
                         settings.survey_api_key) as server:
        monkeypatch.setenv("XOFLOW_SURVEY_API_URL", server.url)
        result = runner.invoke(app, ["backfill", "--start", "2026-03-01", "--end", "2026-03-03"],
                               terminal_width=150)
        assert result.exit_code == 0, result.output
        assert "3 days" in result.output and "rows/s" in result.output
        assert len(ledger_rows(settings)) == 15
        # no contact-center, web or feedback drop exists for the next day
        result = runner.invoke(app, ["run", "--date", "2026-03-04"], terminal_width=150)
    assert result.exit_code == 1
    failed = {r["source"]: r for r in ledger_rows(settings)
              if r["interval_start"].date() == date(2026, 3, 4) and r["status"] == "failed"}
    assert set(failed) == {"contact_center", "web_analytics", "feedback"}
    assert "contacts_2026-03-04.csv" in failed["contact_center"]["message"]
