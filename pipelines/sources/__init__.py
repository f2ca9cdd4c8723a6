"""Connectors: one module per kind of source system.

Every connector has the same shape::

    extract(contract: Contract, settings: Settings, interval: Interval) -> RawBatch

and returns the records exactly as received, as text, so that validation (not the
connector) decides what is a bad value and can quarantine it with a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pandas as pd

from pipelines.contracts import Contract
from pipelines.interval import Interval
from pipelines.settings import Settings

ORIGIN_COLUMN = "_origin"
ROW_COLUMN = "_row"


class SourceUnavailable(RuntimeError):
    """The source could not be reached or its data for the interval is not there yet (retryable)."""


class SourceAuthError(RuntimeError):
    """The source refused our credentials: retrying will not help."""


@dataclass
class RawBatch:
    """Records as received: every value is text or missing (``str``/``None``, or ``string[pyarrow]``).

    ``frame`` holds the source's own column names (before any contract rename)
    plus ``_origin`` (file name, table or page URL without secrets) and ``_row``
    (1-based record number within that origin, header excluded), so that every
    error and quarantined row can be traced back to where it came from.
    """

    source: str
    frame: pd.DataFrame
    origins: list[str] = field(default_factory=list)


Connector = Callable[[Contract, Settings, Interval], RawBatch]
# Yields the interval's records in batches of at most ``batch_rows`` (keyword): the job
# validates, stages and loads batch by batch, so its memory does not grow with the day.
BatchConnector = Callable[..., Iterator[RawBatch]]

# Records per batch from extract to load. 250k contact rows hold about 150 MB as Arrow text.
BATCH_ROWS = 250_000


def connector_for(kind: str) -> Connector:
    """The extract function for a contract's ``kind``."""
    from pipelines.sources import case_db, contact_files, feedback_files, survey_api, web_analytics

    connectors: dict[str, Connector] = {
        "sql": case_db.extract,
        "csv_files": contact_files.extract,
        "touchpoints_api": survey_api.extract,
        "json_files": web_analytics.extract,
        "jsonl_files": feedback_files.extract,
    }
    if kind not in connectors:
        raise ValueError(f"no connector for source kind {kind!r}; known: {sorted(connectors)}")
    return connectors[kind]


def batches_for(kind: str) -> BatchConnector:
    """The streaming extract of a contract's ``kind``: its ``extract_batches``, or one whole batch."""
    from pipelines.sources import case_db, contact_files, feedback_files, survey_api, web_analytics

    modules = {"sql": case_db, "csv_files": contact_files, "touchpoints_api": survey_api,
               "json_files": web_analytics, "jsonl_files": feedback_files}
    streaming = getattr(modules.get(kind), "extract_batches", None)
    if streaming is not None:
        return streaming
    whole = connector_for(kind)

    def one_batch(contract: Contract, settings: Settings, interval: Interval,
                  batch_rows: int = BATCH_ROWS) -> Iterator[RawBatch]:
        yield whole(contract, settings, interval)

    return one_batch
