"""Fixtures for the connector tests: the repo's contracts and settings under ``tmp_path``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.contracts import Contract, load_contracts
from pipelines.interval import Interval
from pipelines.settings import REPO_ROOT, Settings

API_KEY = "test-key-7f3a9c1e5b"


@pytest.fixture
def contracts() -> dict[str, Contract]:
    return load_contracts(REPO_ROOT / "schemas")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path,
        schemas_dir=REPO_ROOT / "schemas",
        case_db_url=f"sqlite:///{tmp_path / 'case_db.sqlite'}",
        survey_api_url="http://127.0.0.1:9",
        survey_api_key=API_KEY,
        landing_dir=tmp_path / "landing",
        raw_dir=tmp_path / "raw",
        lake_dir=tmp_path / "lake",
    )


@pytest.fixture
def march_first() -> Interval:
    """The interval a nightly run for 2026-03-01 loads."""
    return Interval(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))

