"""case_db on SQLite, PostgreSQL and MariaDB: the same demo world gives the same batches.

The demo case system is written to each database with ``write_case_db`` (its real
types: naive UTC timestamps, NULLs, the planted bad rows), moved on by a day, and
extracted for the same windows: the initial ``all_history`` window, the two nights, and
an interval whose bounds are watermarks that rows actually carry. Every batch is compared
with the answer computed here from the world's own case table (filter, sort and format
in plain pandas), so the three databases agree with it and with each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date
from pathlib import Path

import pandas as pd
import pytest

from pipelines.contracts import Contract, load_contract
from pipelines.demo import DemoWorld, Volumes, write_case_db
from pipelines.demo.world import BAD_CHANNEL, end_of_day
from pipelines.interval import Interval
from pipelines.nightly import HISTORY_START, _extraction_window
from pipelines.settings import Settings
from pipelines.sources import RawBatch, case_db

DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 3)
AS_OF = {DAY1: end_of_day(DAY1), DAY2: end_of_day(DAY2)}
COLUMNS = [
    "case_number", "form_type", "product_line", "office", "channel", "customer_ref",
    "customer_type", "language", "region", "received_at", "decided_at", "status", "updated_at",
]
TIMESTAMPS = ("received_at", "decided_at", "updated_at")
DIALECTS = ("sqlite", "postgresql", "mariadb")


@dataclass
class Extracted:
    dialect: str
    url: str
    windows: dict[str, Interval]
    batches: dict[str, RawBatch]
    state: dict[str, pd.DataFrame]  # the case table the window was read from


@pytest.fixture(scope="module")
def world() -> DemoWorld:
    return DemoWorld(seed=23, start=DAY1, end=DAY2, volumes=Volumes(cases=(20, 30)))


def edge_window(state: pd.DataFrame) -> Interval:
    """From a watermark that several rows share to a later one that a row carries exactly."""
    day2 = state[state["updated_at"].dt.date == DAY2]
    counts = day2["updated_at"].value_counts()
    shared = counts[counts > 1].index.min() if (counts > 1).any() else day2["updated_at"].min()
    later = sorted(t for t in day2["updated_at"].unique() if t > shared)
    end = later[len(later) // 2]
    return Interval(shared.to_pydatetime(), end.to_pydatetime())


@pytest.fixture(scope="module", params=DIALECTS)
def extracted(request, world, server_database, tmp_path_factory) -> Extracted:
    dialect = request.param
    home = tmp_path_factory.mktemp(f"case_db_{dialect}")
    if dialect == "sqlite":
        url = f"sqlite:///{home / 'case_db.sqlite'}"
    else:
        url = server_database(dialect, "case_db")
    settings = Settings.from_env({"XOFLOW_HOME": str(home), "XOFLOW_CASE_DB_URL": url})
    contract = _contract(settings)

    # night 1: the first load of a snapshot source takes all history before the night ends
    write_case_db(world, url, AS_OF[DAY1])
    initial = _extraction_window(settings, "case_db", contract.location, Interval.for_day(DAY1))
    windows = {"initial": initial, "day1": Interval.for_day(DAY1)}
    batches = {name: case_db.extract(contract, settings, windows[name]) for name in windows}
    state = dict.fromkeys(windows, world.case_state(AS_OF[DAY1]))

    # night 2: the case system has moved on; cases decided today carry a new watermark
    write_case_db(world, url, AS_OF[DAY2])
    state2 = world.case_state(AS_OF[DAY2])
    for name, window in (("day2", Interval.for_day(DAY2)), ("edges", edge_window(state2))):
        windows[name], state[name] = window, state2
        batches[name] = case_db.extract(contract, settings, window)
    return Extracted(dialect, url, windows, batches, state)


def _contract(settings: Settings) -> Contract:
    return load_contract(settings.schemas_dir, "case_db")


def expected_batch(state: pd.DataFrame, window: Interval, origin: str) -> pd.DataFrame:
    """The rows changed in [start, end), by watermark then case number, as canonical text."""
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    rows = state[(state["updated_at"] >= start) & (state["updated_at"] < end)]
    rows = rows.sort_values(["updated_at", "case_number"], kind="stable").reset_index(drop=True)
    def text(name: str, value: object) -> str | None:
        if pd.isna(value):
            return None
        if name in TIMESTAMPS:
            return value.tz_convert(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return str(value)

    text_dtype = pd.StringDtype("pyarrow")
    columns = {name: pd.Series([text(name, v) for v in rows[name]], dtype=text_dtype) for name in COLUMNS}
    columns["_origin"] = pd.Series([origin] * len(rows), dtype=text_dtype)
    columns["_row"] = pd.Series(range(1, len(rows) + 1), dtype="int64")
    return pd.DataFrame(columns)


@pytest.mark.parametrize("window", ["initial", "day1", "day2", "edges"])
def test_batch_is_the_rows_changed_in_the_window_in_canonical_text(
    extracted: Extracted, window: str
) -> None:
    origin = f"{extracted.dialect}:cases"
    batch = extracted.batches[window]

    expected = expected_batch(extracted.state[window], extracted.windows[window], origin)

    assert len(expected) > 0
    assert batch.origins == [origin]
    pd.testing.assert_frame_equal(batch.frame, expected)


def test_first_night_reads_all_history_and_later_nights_only_their_day(extracted: Extracted) -> None:
    assert extracted.windows["initial"] == Interval(HISTORY_START, end_of_day(DAY1))
    initial = extracted.batches["initial"].frame
    day1 = extracted.batches["day1"].frame
    assert len(initial) == len(extracted.state["initial"])  # every case the system held
    assert len(day1) < len(initial)
    assert set(day1["case_number"]) <= set(initial["case_number"])
    # cases that changed on night 2 come again, with their new state
    day2 = extracted.batches["day2"].frame.set_index("case_number")
    moved_on = day2.index.intersection(initial["case_number"])
    assert len(moved_on) > 0
    before = initial.set_index("case_number").loc[moved_on, "updated_at"]
    assert (day2.loc[moved_on, "updated_at"] > before).all()


def test_interval_edges_start_included_end_excluded(extracted: Extracted) -> None:
    window = extracted.windows["edges"]
    state = extracted.state["edges"]
    frame = extracted.batches["edges"].frame
    at_start = set(state.loc[state["updated_at"] == pd.Timestamp(window.start), "case_number"])
    at_end = set(state.loc[state["updated_at"] == pd.Timestamp(window.end), "case_number"])

    assert at_start and at_end
    assert at_start <= set(frame["case_number"])
    assert not at_end & set(frame["case_number"])
    assert frame["updated_at"].iloc[0] == window.start.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_planted_bad_rows_and_nulls_arrive_as_stored(extracted: Extracted, world: DemoWorld) -> None:
    frame = extracted.batches["day1"].frame.set_index("case_number")
    planted = world.cases.set_index("case_number")["bad_kind"]
    planted = planted[planted.notna() & planted.index.isin(frame.index)]

    assert set(planted) == {"bad_channel", "missing_form_type"}
    for number, kind in planted.items():
        if kind == "bad_channel":
            assert frame.loc[number, "channel"] == BAD_CHANNEL
        else:
            assert pd.isna(frame.loc[number, "form_type"])
    undecided = frame[frame["status"].isin(["received", "in_process"])]
    assert len(undecided) > 0 and undecided["decided_at"].isna().all()


def test_rerun_of_a_window_reads_the_same_batch(extracted: Extracted, tmp_path: Path) -> None:
    """Extracting is read-only: the same window on the same state gives the same rows."""
    settings = Settings.from_env({"XOFLOW_HOME": str(tmp_path), "XOFLOW_CASE_DB_URL": extracted.url})
    again = case_db.extract(_contract(settings), settings, extracted.windows["day2"])

    pd.testing.assert_frame_equal(again.frame, extracted.batches["day2"].frame)
