"""GX Data Docs of one run's validations, as a static site beside the report.

Each extract task keeps GX's validation result next to its staged rows
(``staging/<source>/<day>/gx_validation.json``, tagged with the run id, written by
``pipelines.nightly.extract_and_validate``). Here the results of one run go into an
in-memory GX context whose only Data Docs site is ``<home>/data_docs``; GX renders one
page per source and an index of the run's validations. Pages of earlier runs stay (their
paths carry the run id); the index lists the latest build.

Sample values GX keeps for failed checks are dropped for columns the contract flags as
personal data (``pii``), so Data Docs never show a case number or a comment.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pipelines.contracts import load_contract
from pipelines.settings import Settings

log = logging.getLogger(__name__)

SITE_NAME = "xoflow"
VALUE_KEYS = ("partial_unexpected_list", "unexpected_list", "partial_unexpected_counts",
              "unexpected_index_query")
BULKY_KEYS = ("unexpected_list", "unexpected_index_list")  # the partial lists are what Data Docs show


@dataclass
class DataDocs:
    index: Path
    pages: dict[str, Path] = field(default_factory=dict)  # source -> its validation page
    statistics: dict[str, dict[str, Any]] = field(default_factory=dict)
    success: dict[str, bool] = field(default_factory=dict)


def site_dir(settings: Settings) -> Path:
    return settings.home / "data_docs"


def staged_validations(settings: Settings, day: date, run_id: str) -> dict[str, dict[str, Any]]:
    """GX results the extract tasks of run ``run_id`` kept for ``day``, by source."""
    found = {}
    for path in sorted((settings.home / "staging").glob(f"*/{day.isoformat()}/gx_validation.json")):
        kept = json.loads(path.read_text())
        if kept.get("run_id") == run_id:
            found[path.parent.parent.name] = kept["result"]
    return found


def latest_run_id(settings: Settings, day: date) -> str | None:
    """The run that most recently validated a source for ``day``."""
    kept = sorted((settings.home / "staging").glob(f"*/{day.isoformat()}/gx_validation.json"),
                  key=lambda p: p.stat().st_mtime)
    return json.loads(kept[-1].read_text()).get("run_id") if kept else None


def _pii_columns(settings: Settings, source: str) -> set[str]:
    try:
        return {c.name for c in load_contract(settings.schemas_dir, source).columns if c.pii}
    except Exception:  # a source without a contract keeps no samples at all
        return {"*"}


def without_personal_data(result: dict[str, Any], pii_columns: set[str]) -> dict[str, Any]:
    """The result without sample values of personal-data columns (and without full value lists)."""
    cleaned = json.loads(json.dumps(result))
    for item in cleaned.get("results", []):
        kwargs = (item.get("expectation_config") or {}).get("kwargs") or {}
        columns = {kwargs.get("column"), *(kwargs.get("column_list") or [])} - {None}
        details = item.get("result") or {}
        for key in BULKY_KEYS:
            details.pop(key, None)
        if "*" in pii_columns or columns & pii_columns:
            for key in VALUE_KEYS:
                details.pop(key, None)
    return cleaned


def _context(site: Path):
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    context.add_data_docs_site(SITE_NAME, {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    return context


def _local_path(url: str) -> Path:
    return Path(unquote(urlparse(url).path))


def build_data_docs(settings: Settings, day: date, run_id: str) -> DataDocs | None:
    """Render the run's validations of ``day``; ``None`` when the run kept none."""
    results = staged_validations(settings, day, run_id)
    if not results:
        return None
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    site = site_dir(settings)
    context = _context(site)
    run = RunIdentifier(run_name=re.sub(r"[^A-Za-z0-9_.-]", "_", run_id),
                        run_time=datetime.combine(day, time(), tzinfo=UTC))
    keys = {}
    docs = DataDocs(index=site / "index.html")
    for source, raw in results.items():
        cleaned = without_personal_data(raw, _pii_columns(settings, source))
        result = ExpectationSuiteValidationResult(**cleaned)
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=raw["suite_name"]),
            run_id=run, batch_identifier=source)
        context.validation_results_store.set(key, result)
        keys[source] = key
        docs.statistics[source] = dict(raw.get("statistics") or {})
        docs.success[source] = bool(raw.get("success"))
    urls = context.build_data_docs(site_names=[SITE_NAME])
    docs.index = _local_path(urls[SITE_NAME])
    for source, key in keys.items():
        for entry in context.get_docs_sites_urls(resource_identifier=key, site_name=SITE_NAME):
            docs.pages[source] = _local_path(entry["site_url"])
    log.info("Data Docs for run %s: %s", run_id, docs.index)
    return docs
