"""The ledger: per run and source, rows read = rows loaded + rows quarantined.

Written in the same transaction as the rows it describes, so it can never claim a
load that did not happen.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

from pipelines.interval import Interval
from pipelines.model import ledger
from pipelines.warehouse import replace_where, to_arrow


class LedgerImbalance(AssertionError):
    """Rows went missing between extract and load: a bug, never a data problem."""


@dataclass(frozen=True)
class LedgerEntry:
    source: str
    interval_start: datetime
    interval_end: datetime
    run_id: str
    status: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_unmapped: int
    message: str | None = None

    def check(self) -> None:
        if self.status == "loaded" and self.rows_read != self.rows_loaded + self.rows_quarantined:
            raise LedgerImbalance(
                f"{self.source} {self.interval_start:%Y-%m-%d}: read {self.rows_read} != "
                f"loaded {self.rows_loaded} + quarantined {self.rows_quarantined}")


def record(conn: sa.Connection, entry: LedgerEntry, now: datetime | None = None) -> None:
    entry.check()
    row = {**asdict(entry), "loaded_at": now or datetime.now(UTC)}
    frame = pd.DataFrame([row])
    where = sa.and_(ledger.c.source == entry.source, ledger.c.interval_start == entry.interval_start)
    replace_where(conn, ledger, where, to_arrow(frame, ledger))


def has_loaded(conn: sa.Connection, source: str, interval: Interval) -> bool:
    query = sa.select(sa.func.count()).select_from(ledger).where(
        ledger.c.source == source, ledger.c.interval_start == interval.start,
        ledger.c.status == "loaded")
    return bool(conn.execute(query).scalar())
