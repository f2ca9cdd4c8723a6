"""Conformed dimensions, rebuilt from the catalog on every run (small, so replaced whole)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from pipelines.conform.catalog import UNMAPPED, Catalog

CALENDAR = (date(2015, 1, 1), date(2035, 12, 31))


def dim_service(catalog: Catalog) -> pd.DataFrame:
    agency = catalog.raw["agency"]["agency_id"]
    rows = [{
        "service_id": s["service_id"], "agency_id": agency, "service_name": s["name"],
        "journey_id": s["journey_id"], "hisp": bool(s.get("hisp", False)),
        "standard_days": s["standard_days"], "online_status": bool(s.get("online_status", False)),
    } for s in catalog.services]
    rows.append({"service_id": UNMAPPED, "agency_id": agency,
                 "service_name": "Not in the catalog yet", "journey_id": UNMAPPED, "hisp": False,
                 "standard_days": None, "online_status": False})
    return pd.DataFrame(rows).astype({"standard_days": "Int64"})


def dim_journey(catalog: Catalog) -> pd.DataFrame:
    rows = []
    for journey in catalog.journeys:
        for order, stage in enumerate(journey["stages"], start=1):
            rows.append({
                "journey_id": journey["journey_id"], "stage": stage,
                "journey_name": journey["name"], "stage_order": order,
                "is_case_received_stage": stage == journey.get("case_received_stage"),
                "is_case_decided_stage": stage == journey.get("case_decided_stage"),
            })
    rows.append({"journey_id": UNMAPPED, "stage": UNMAPPED, "journey_name": "Not in the catalog yet",
                 "stage_order": 0, "is_case_received_stage": False, "is_case_decided_stage": False})
    return pd.DataFrame(rows)


def dim_channel(catalog: Catalog) -> pd.DataFrame:
    return pd.DataFrame([{"channel_id": c["channel_id"], "channel_name": c["name"],
                          "channel_kind": c["kind"]} for c in catalog.raw["channels"]])


def dim_date(first: date = CALENDAR[0], last: date = CALENDAR[1]) -> pd.DataFrame:
    days = pd.date_range(first, last, freq="D")
    fiscal_year = days.year + (days.month >= 10).astype(int)
    return pd.DataFrame({
        "date_day": days.date,
        "year": days.year,
        "month": days.month,
        "week_start": (days - pd.to_timedelta(days.dayofweek, unit="D")).date,
        "day_of_week": days.dayofweek + 1,
        "fiscal_year": fiscal_year,
        "fiscal_quarter": ((days.month - 10) % 12) // 3 + 1,
    })
