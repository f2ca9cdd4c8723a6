"""case_db: incremental SQL extract on updated_at within [start, end)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from pipelines.contracts import Contract, ContractError
from pipelines.interval import Interval
from pipelines.settings import Settings
from pipelines.sources import SourceUnavailable, case_db

CASE_COLUMNS = [
    "case_number", "form_type", "product_line", "office", "channel", "customer_ref",
    "customer_type", "language", "region", "received_at", "decided_at", "status", "updated_at",
]


def case(number: str, updated_at: str | None, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "case_number": number, "form_type": "N-400", "product_line": "initial",
        "office": "NYC", "channel": "online", "customer_ref": f"C-{number}",
        "customer_type": "individual", "language": "en", "region": "northeast",
        "received_at": "2026-01-15T09:00:00Z", "decided_at": None, "status": "in_process",
        "updated_at": updated_at,
    }
    row.update(overrides)
    return row


def make_case_db(url: str, rows: list[dict[str, object]], *, drop: str | None = None,
                 extra: str | None = None, timestamp_type: sa.types.TypeEngine | None = None
                 ) -> None:
    """A ``cases`` table as the case system would have it, all text unless told otherwise."""
    metadata = sa.MetaData()
    names = [c for c in CASE_COLUMNS if c != drop] + ([extra] if extra else [])
    table = sa.Table(
        "cases", metadata,
        *(sa.Column(n, timestamp_type if n == "updated_at" and timestamp_type else sa.Text)
          for n in names),
    )
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        metadata.create_all(connection)
        if rows:
            connection.execute(table.insert(), [{k: r.get(k) for k in names} for r in rows])
    engine.dispose()


def test_rows_at_start_are_included_and_rows_at_end_excluded(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    make_case_db(settings.case_db_url, [
        case("before-start", "2026-02-28T23:59:59.999+00:00"),
        case("at-start", "2026-03-01T00:00:00Z"),
        case("space-spelling", "2026-03-01 12:30:00"),
        case("offset-inside", "2026-03-02T01:00:00+02:00"),   # 23:00 UTC on 1 March
        case("offset-outside", "2026-03-01T01:00:00+02:00"),  # 23:00 UTC on 28 February
        case("last-ms", "2026-03-01T23:59:59.999Z"),
        case("at-end", "2026-03-02T00:00:00Z"),
        case("at-end-space", "2026-03-02 00:00:00"),
        case("no-watermark", None),
    ])

    batch = case_db.extract(contracts["case_db"], settings, march_first)

    frame = batch.frame
    assert set(frame["case_number"]) == {"at-start", "space-spelling", "offset-inside", "last-ms"}
    assert list(frame["_row"]) == [1, 2, 3, 4]
    assert list(frame["case_number"]) == ["at-start", "space-spelling", "offset-inside", "last-ms"]
    assert set(frame["_origin"]) == {"sqlite:cases"} and batch.origins == ["sqlite:cases"]
    assert list(frame.columns) == [*CASE_COLUMNS, "_origin", "_row"]
    # values exactly as stored, as str or None
    assert frame.loc[frame["case_number"] == "offset-inside", "updated_at"].item() == (
        "2026-03-02T01:00:00+02:00")
    assert frame["decided_at"].tolist() == [None] * 4
    values = {type(v) for c in CASE_COLUMNS for v in frame[c]}
    assert values <= {str, type(None)}


def test_native_datetime_column_written_by_sqlalchemy_is_compared_correctly(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    rows = [
        case("at-start", datetime(2026, 3, 1)),
        case("inside", datetime(2026, 3, 1, 18, 5, 1, 250000)),
        case("at-end", datetime(2026, 3, 2)),
        case("before", datetime(2026, 2, 28, 23, 59, 59, 999000)),
    ]
    make_case_db(settings.case_db_url, rows, timestamp_type=sa.DateTime())

    frame = case_db.extract(contracts["case_db"], settings, march_first).frame

    assert frame["case_number"].tolist() == ["at-start", "inside"]
    assert frame["updated_at"].tolist() == ["2026-03-01 00:00:00.000000", "2026-03-01 18:05:01.250000"]


def test_columns_outside_the_contract_never_leave_the_database(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    make_case_db(settings.case_db_url, [case("a", "2026-03-01T10:00:00Z", ssn="123-45-6789")],
                 extra="ssn")

    frame = case_db.extract(contracts["case_db"], settings, march_first).frame

    assert "ssn" not in frame.columns and len(frame) == 1


def test_missing_required_column_names_source_table_and_column(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    make_case_db(settings.case_db_url, [case("a", "2026-03-01T10:00:00Z")], drop="office")

    with pytest.raises(ContractError, match=r"case_db: table cases has no column office"):
        case_db.extract(contracts["case_db"], settings, march_first)


def test_missing_table_is_a_contract_error(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    make_case_db(settings.case_db_url, [])
    contract = replace(contracts["case_db"], location={"table": "case_history"})

    with pytest.raises(ContractError, match="table case_history not found"):
        case_db.extract(contract, settings, march_first)


def test_table_name_must_be_a_plain_identifier(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    contract = replace(contracts["case_db"], location={"table": "cases; drop table cases"})

    with pytest.raises(ContractError, match="location table"):
        case_db.extract(contract, settings, march_first)


def test_missing_sqlite_file_is_unavailable_and_not_created(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval, tmp_path: Path
) -> None:
    database = tmp_path / "not-yet.sqlite"
    settings = replace(settings, case_db_url=f"sqlite:///{database}")

    with pytest.raises(SourceUnavailable, match="not-yet.sqlite"):
        case_db.extract(contracts["case_db"], settings, march_first)
    assert not database.exists()


def test_unreachable_server_is_unavailable_without_the_password(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    password = "pw-Zq81x"
    url = f"postgresql+psycopg://etl:{password}@127.0.0.1:1/cases?connect_timeout=2"
    settings = replace(settings, case_db_url=url)

    with pytest.raises(SourceUnavailable) as raised:
        case_db.extract(contracts["case_db"], settings, march_first)

    message = str(raised.value)
    assert "etl:***@127.0.0.1:1/cases" in message
    assert password not in message and raised.value.__cause__ is None


@pytest.mark.parametrize(
    ("dialect", "declared", "expected_sql", "bound"),
    [
        (postgresql.dialect(), sa.DateTime(timezone=True),
         "updated_at >= %(start)s", datetime(2026, 3, 1, tzinfo=UTC)),
        (postgresql.dialect(), sa.DateTime(), "updated_at >= %(start)s", datetime(2026, 3, 1)),
        (postgresql.dialect(), sa.Text(),
         "CAST(updated_at AS TIMESTAMP WITH TIME ZONE) >= %(start)s",
         datetime(2026, 3, 1, tzinfo=UTC)),
        (mysql.dialect(), sa.DateTime(), "updated_at >= %s", datetime(2026, 3, 1)),
    ],
)
def test_other_dialects_compare_native_timestamps_with_matching_bounds(
    march_first: Interval, dialect: sa.Dialect, declared: sa.types.TypeEngine,
    expected_sql: str, bound: datetime,
) -> None:
    column = sa.column("updated_at")
    moment, start, end = case_db.watermark_bounds(dialect.name, column, declared, march_first)

    compiled = (moment >= start).compile(dialect=dialect)

    assert str(compiled).startswith(expected_sql)  # PostgreSQL may add a ::type cast
    assert compiled.params["start"] == bound
