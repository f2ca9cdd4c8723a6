"""A job home for tests that run the nightly job on the demo sources without a survey API."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipelines.settings import REPO_ROOT, Settings

SOURCES_WITHOUT_SURVEY = ("case_db", "contact_center", "web_analytics", "feedback")


def home_without_survey(home: Path, pseudonym_key: str,
                        **env: str) -> tuple[Settings, Settings, dict[str, str]]:
    """The job's settings for ``home``, whose contracts leave out the survey (no API serves it);
    the settings to build the demo sources with (the repository's own contracts); the environment."""
    schemas = home / "schemas"
    shutil.copytree(REPO_ROOT / "schemas", schemas)
    for path in (schemas / "sources").glob("*.yaml"):
        if path.stem not in SOURCES_WITHOUT_SURVEY:
            path.unlink()
    env = {"XOFLOW_HOME": str(home), "XOFLOW_SCHEMAS_DIR": str(schemas), "XOFLOW_SURVEY_API_KEY": "unused",
           "XOFLOW_PSEUDONYM_KEY": pseudonym_key, **env}
    demo = Settings.from_env(env | {"XOFLOW_SCHEMAS_DIR": str(REPO_ROOT / "schemas")})
    return Settings.from_env(env), demo, env
