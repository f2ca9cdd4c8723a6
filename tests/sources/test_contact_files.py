"""contact_files: one CSV per day, every cell as text, unreadable files fail the source."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.contracts import Contract, ContractError
from pipelines.interval import Interval
from pipelines.settings import Settings
from pipelines.sources import SourceUnavailable, contact_files

HEADER = (
    "contact_id,customer_ref,case_number,queue,channel,reason,start_time,wait_seconds,"
    "handle_seconds,resolved_first_contact,transferred,abandoned,customer_type,language,region"
)


def drop(settings: Settings, day: str, body: str | bytes) -> Path:
    """Land one day's contact-center file."""
    path = Path(settings.landing_dir) / "contact_center" / f"contacts_{day}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(body, str):
        path.write_text(body, encoding="utf-8")
    else:
        path.write_bytes(body)
    return path


def test_every_cell_is_text_and_empty_cells_are_none(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    drop(settings, "2026-03-01", "\n".join([
        HEADER,
        'K-1,007,,NATZ,phone,status_inquiry,2026-03-01T08:00:00Z,abc,0042,true,false,"",'
        'individual,NA,"west, coast"',
        "K-2,C-2,N400-1,EAD,chat,other,2026-03-01T09:00:00Z,12,30,1,0,0,,en,west",
    ]) + "\n")

    batch = contact_files.extract(contracts["contact_center"], settings, march_first)

    first, second = batch.frame.to_dict("records")
    assert first["customer_ref"] == "007"
    assert first["wait_seconds"] == "abc" and first["handle_seconds"] == "0042"
    assert first["case_number"] is None and first["abandoned"] is None
    assert first["language"] == "NA" and first["region"] == "west, coast"
    assert second["customer_type"] is None and second["resolved_first_contact"] == "1"
    assert [first["_row"], second["_row"]] == [1, 2]
    assert {first["_origin"], second["_origin"]} == {"contacts_2026-03-01.csv"}
    assert batch.origins == ["contacts_2026-03-01.csv"]
    assert list(batch.frame.columns) == [*HEADER.split(","), "_origin", "_row"]


def test_each_day_of_the_interval_is_read_in_order_with_rows_numbered_per_file(
    contracts: dict[str, Contract], settings: Settings
) -> None:
    row = "{id},C,,NATZ,phone,other,2026-03-0{d}T08:00:00Z,1,2,true,false,false,,,"
    drop(settings, "2026-03-01", "\n".join([HEADER, row.format(id="a", d=1),
                                           row.format(id="b", d=1)]))
    # another day may order its columns differently; a header with a UTF-8 BOM is fine
    reordered = ",".join(reversed(HEADER.split(",")))
    values = ",".join(reversed(row.format(id="c", d=2).split(",")))
    drop(settings, "2026-03-02", "\ufeff" + reordered + "\n" + values + "\n")
    two_days = Interval(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))

    frame = contact_files.extract(contracts["contact_center"], settings, two_days).frame

    assert frame["contact_id"].tolist() == ["a", "b", "c"]
    assert frame["_row"].tolist() == [1, 2, 1]
    assert frame["_origin"].tolist() == ["contacts_2026-03-01.csv"] * 2 + [
        "contacts_2026-03-02.csv"]
    assert frame.loc[2, "queue"] == "NATZ"


def test_header_only_file_gives_no_rows(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    drop(settings, "2026-03-01", HEADER + "\n")

    batch = contact_files.extract(contracts["contact_center"], settings, march_first)

    assert len(batch.frame) == 0 and "contact_id" in batch.frame.columns


def test_missing_file_is_unavailable_and_names_the_path(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    expected = Path(settings.landing_dir) / "contact_center" / "contacts_2026-03-01.csv"

    with pytest.raises(SourceUnavailable, match="file not found") as raised:
        contact_files.extract(contracts["contact_center"], settings, march_first)
    assert str(expected) in str(raised.value)


def test_binary_garbage_is_a_contract_error_naming_the_file(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    noise = bytes(random.Random(7).randrange(256) for _ in range(2000))
    drop(settings, "2026-03-01", noise)

    with pytest.raises(ContractError, match=r"contact_center: file contacts_2026-03-01\.csv"):
        contact_files.extract(contracts["contact_center"], settings, march_first)


def test_bad_encoding_names_file_and_line(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    ok = "K-1,C,,NATZ,phone,other,2026-03-01T08:00:00Z,1,2,true,false,false,,,"
    body = (HEADER + "\n" + ok + "\n").encode() + "K-2,Jos\u00e9".encode("latin-1") + b"\n"
    drop(settings, "2026-03-01", body)

    with pytest.raises(ContractError, match=r"contacts_2026-03-01\.csv line 3: not valid utf-8"):
        contact_files.extract(contracts["contact_center"], settings, march_first)


def test_ragged_rows_name_file_and_line_but_not_the_row_contents(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    ok = "K-1,C,,NATZ,phone,other,2026-03-01T08:00:00Z,1,2,true,false,false,,,"
    drop(settings, "2026-03-01", "\n".join([HEADER, ok, "K-2,secret-ref,NATZ", ok]) + "\n")

    with pytest.raises(ContractError) as raised:
        contact_files.extract(contracts["contact_center"], settings, march_first)

    message = str(raised.value)
    assert "contacts_2026-03-01.csv" in message and "line 3 has 3 fields, expected 15" in message
    assert "secret-ref" not in message


def test_header_without_a_required_column_is_a_contract_error(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    header = HEADER.replace("queue,", "")
    drop(settings, "2026-03-01", header + "\n")

    with pytest.raises(ContractError, match=r"contacts_2026-03-01\.csv has no column queue"):
        contact_files.extract(contracts["contact_center"], settings, march_first)


def test_empty_file_is_a_contract_error(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    drop(settings, "2026-03-01", "")

    with pytest.raises(ContractError, match="empty file"):
        contact_files.extract(contracts["contact_center"], settings, march_first)
