"""One settings object that says where everything lives; the rest of the code does not guess.

Embedded defaults put every file under one home folder (``XOFLOW_HOME``, default
``./.xoflow``): demo sources, raw extracts, the parquet lake and a DuckDB warehouse.
Production points the same names at real systems through environment variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pipelines import secrets

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    home: Path
    schemas_dir: Path = REPO_ROOT / "schemas"
    warehouse_sql_dir: Path = REPO_ROOT / "warehouse"
    warehouse_url: str = field(default="", repr=False)  # URLs may carry a database password
    case_db_url: str = field(default="", repr=False)
    survey_api_url: str = "http://127.0.0.1:8765"
    survey_api_key: str = field(default="", repr=False)
    landing_dir: Path = Path()
    raw_dir: Path = Path()
    lake_dir: Path = Path()
    pseudonym_key: str = field(default="", repr=False)
    raw_retention_days: int | None = None  # None: schemas/privacy.yaml raw_zone.retention_days

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read ``XOFLOW_*`` variables; anything unset falls back to the embedded default.

        Secrets (keys, database passwords) have no default: they come from the environment
        or Airflow connections (``pipelines.secrets``); ``xoflow demo`` sets its own.
        """
        source = os.environ if env is None else env
        env = dict(source)
        survey_api_url, survey_api_key = secrets.survey_api(source)
        home = Path(env.get("XOFLOW_HOME", Path.cwd() / ".xoflow")).resolve()
        sources = home / "sources"
        return cls(
            home=home,
            schemas_dir=Path(env.get("XOFLOW_SCHEMAS_DIR", REPO_ROOT / "schemas")),
            warehouse_url=secrets.database_url(source, "XOFLOW_WAREHOUSE_URL", secrets.WAREHOUSE_CONNECTION)
            or f"duckdb:///{home / 'warehouse.duckdb'}",
            case_db_url=secrets.database_url(source, "XOFLOW_CASE_DB_URL", secrets.CASE_DB_CONNECTION)
            or f"sqlite:///{sources / 'case_db.sqlite'}",
            survey_api_url=survey_api_url or "http://127.0.0.1:8765",
            survey_api_key=survey_api_key,
            landing_dir=Path(env.get("XOFLOW_LANDING_DIR", sources / "landing")),
            raw_dir=Path(env.get("XOFLOW_RAW_DIR", home / "raw")),
            lake_dir=Path(env.get("XOFLOW_LAKE_DIR", home / "lake")),
            pseudonym_key=secrets.secret(source, secrets.PSEUDONYM_KEY_ENV, secrets.PSEUDONYM_KEY_CONNECTION),
            raw_retention_days=int(env["XOFLOW_RAW_RETENTION_DAYS"]) if env.get("XOFLOW_RAW_RETENTION_DAYS")
            else None,
        )
