"""Raw-zone retention: data as received (unredacted) is kept a fixed number of days, then deleted.

Two places hold what the sources sent before protection: the raw zone
(``<raw_dir>/<source>/date=<D>/run=<id>/batch-NNNNN.parquet``, identifiers in clear, free text
unredacted) and the staging area (``<home>/staging/<source>/<D>/``, the validated batch
waiting for the load). The nightly run deletes every partition of either whose day
``D`` lies ``retention_days`` or more before the last day of its data interval: it
keeps that day and the ``retention_days - 1`` before it.

Counting back from the data interval, not from the clock, makes the purge
deterministic: a rerun of a night deletes exactly what the first run did, and a
backfill of old days never deletes newer partitions. Each deleted partition is logged
and recorded in the warehouse table ``raw_purge`` (zone, source, day, files, bytes).
Only folders named like partitions are touched; anything else (and any symbolic link)
is left alone and logged.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pipelines import warehouse
from pipelines.contracts import SAFE_NAME
from pipelines.interval import Interval
from pipelines.model import raw_purge
from pipelines.privacy import load_privacy
from pipelines.settings import Settings

log = logging.getLogger(__name__)

RAW, STAGING = "raw", "staging"
_DAY = r"(\d{4}-\d{2}-\d{2})"
PARTITION_NAMES = {RAW: re.compile(rf"^date={_DAY}$"), STAGING: re.compile(rf"^{_DAY}$")}


@dataclass(frozen=True)
class ExpiredPartition:
    zone: str
    source: str
    partition_date: date
    path: Path
    files: int
    bytes: int


def retention_days(settings: Settings) -> int:
    """``XOFLOW_RAW_RETENTION_DAYS`` if set, else ``raw_zone.retention_days`` of privacy.yaml."""
    days = settings.raw_retention_days
    if days is None:
        return load_privacy(Path(settings.schemas_dir)).retention_days
    if days < 1:
        raise ValueError(f"raw retention must be at least 1 day, not {days}")
    return days


def zone_roots(settings: Settings) -> dict[str, Path]:
    return {RAW: Path(settings.raw_dir), STAGING: Path(settings.home) / "staging"}


def expired_partitions(settings: Settings, interval: Interval, days: int) -> list[ExpiredPartition]:
    """Partitions of the raw zone and staging whose day is ``days`` or more before the interval's last."""
    cutoff = interval.days[-1] - timedelta(days=days)
    found = []
    for zone, root in zone_roots(settings).items():
        if not root.is_dir():
            continue
        for source_dir in sorted(root.iterdir()):
            if source_dir.is_symlink() or not source_dir.is_dir() or not SAFE_NAME.match(source_dir.name):
                continue
            for part in sorted(source_dir.iterdir()):
                match = PARTITION_NAMES[zone].match(part.name)
                if not match:
                    continue
                if part.is_symlink() or not part.is_dir():
                    log.warning("retention: %s is not a plain folder; left alone", part)
                    continue
                try:
                    day = date.fromisoformat(match.group(1))
                except ValueError:
                    log.warning("retention: %s is not a day; left alone", part)
                    continue
                if day <= cutoff:
                    files = [f for f in part.rglob("*") if f.is_file() and not f.is_symlink()]
                    found.append(ExpiredPartition(zone, source_dir.name, day, part, len(files),
                                                  sum(f.stat().st_size for f in files)))
    return found


def purge_expired(
    start: datetime, end: datetime, run_id: str, settings: Settings | None = None,
    retention: int | None = None,
) -> dict[str, Any]:
    """Delete the raw-zone and staging partitions past retention; log and record each one.

    ``retention`` overrides the configured number of days (tests). Returns what was
    deleted, JSON-serialisable (the DAG task's XCom).
    """
    settings = settings or Settings.from_env()
    interval = Interval(start, end)
    days = retention if retention is not None else retention_days(settings)
    expired = expired_partitions(settings, interval, days)
    purged_at = datetime.now(UTC)
    for part in expired:
        shutil.rmtree(part.path)
        log.info("retention: deleted %s partition %s/%s (%d files, %d bytes), older than %d days "
                 "before %s", part.zone, part.source, part.partition_date, part.files, part.bytes, days,
                 interval.days[-1])
    if expired:
        _record(settings, expired, interval, run_id, days, purged_at)
    else:
        log.info("retention: nothing in the raw zone is %d days or more before %s", days, interval.days[-1])
    cutoff = interval.days[-1] - timedelta(days=days)
    return {
        "retention_days": days,
        "deleted_through": cutoff.isoformat(),
        "purged": [{"zone": p.zone, "source": p.source, "partition_date": p.partition_date.isoformat(),
                    "files": p.files, "bytes": p.bytes} for p in expired],
    }


def _record(settings: Settings, expired: list[ExpiredPartition], interval: Interval, run_id: str,
            days: int, purged_at: datetime) -> None:
    """One ``raw_purge`` row per deleted partition (a partition deleted again replaces its row)."""
    frame = pd.DataFrame([{k: v for k, v in asdict(p).items() if k != "path"} for p in expired])
    frame = frame.assign(run_id=run_id, interval_start=interval.start, retention_days=days,
                         purged_at=purged_at)
    engine = warehouse.engine_for(settings.warehouse_url)
    raw_purge.create(engine, checkfirst=True)
    keys = [sa.and_(raw_purge.c.zone == p.zone, raw_purge.c.source == p.source,
                    raw_purge.c.partition_date == p.partition_date) for p in expired]
    with engine.begin() as conn:
        warehouse.replace_where(conn, raw_purge, sa.or_(*keys), warehouse.to_arrow(frame, raw_purge))
