"""One settings object that says where everything lives; the rest of the code does not guess.

Embedded defaults put every file under one home folder (``XOFLOW_HOME``, default
``./.xoflow``): demo sources, raw extracts, the parquet lake and a DuckDB warehouse.
Production points the same names at real systems through environment variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    home: Path
    schemas_dir: Path = REPO_ROOT / "schemas"
    warehouse_sql_dir: Path = REPO_ROOT / "warehouse"
    warehouse_url: str = ""
    case_db_url: str = ""
    survey_api_url: str = "http://127.0.0.1:8765"
    survey_api_key: str = field(default="", repr=False)
    landing_dir: Path = Path()
    raw_dir: Path = Path()
    lake_dir: Path = Path()
    pseudonym_key: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read ``XOFLOW_*`` variables; anything unset falls back to the embedded default."""
        env = dict(os.environ if env is None else env)
        home = Path(env.get("XOFLOW_HOME", Path.cwd() / ".xoflow")).resolve()
        sources = home / "sources"
        return cls(
            home=home,
            schemas_dir=Path(env.get("XOFLOW_SCHEMAS_DIR", REPO_ROOT / "schemas")),
            warehouse_url=env.get("XOFLOW_WAREHOUSE_URL", f"duckdb:///{home / 'warehouse.duckdb'}"),
            case_db_url=env.get("XOFLOW_CASE_DB_URL", f"sqlite:///{sources / 'case_db.sqlite'}"),
            survey_api_url=env.get("XOFLOW_SURVEY_API_URL", "http://127.0.0.1:8765"),
            survey_api_key=env.get("XOFLOW_SURVEY_API_KEY", "demo-key"),
            landing_dir=Path(env.get("XOFLOW_LANDING_DIR", sources / "landing")),
            raw_dir=Path(env.get("XOFLOW_RAW_DIR", home / "raw")),
            lake_dir=Path(env.get("XOFLOW_LAKE_DIR", home / "lake")),
            pseudonym_key=env.get("XOFLOW_PSEUDONYM_KEY", "demo-pseudonym-key"),
        )
