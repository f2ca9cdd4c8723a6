"""case_db: incremental SQL extract on updated_at within [start, end).

Tests marked with the ``case_source`` fixture run on SQLite, PostgreSQL and MariaDB.
The PostgreSQL test database's default time zone is Pacific/Auckland (UTC+13 in March),
so a connector that let the server's zone decide would read naive text 13 hours off.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from pipelines.contracts import Contract, ContractError
from pipelines.demo.writers import CASE_TIMESTAMP
from pipelines.interval import Interval
from pipelines.settings import Settings
from pipelines.sources import SourceUnavailable, case_db

SERVER_ZONE = "Pacific/Auckland"

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
        metadata.drop_all(connection)
        metadata.create_all(connection)
        if rows:
            connection.execute(table.insert(), [{k: r.get(k) for k in names} for r in rows])
    engine.dispose()


@pytest.fixture(scope="module")
def server_case_dbs(server_database) -> dict[str, str]:
    """One database per server for this module, created when a test first needs it."""
    urls: dict[str, str] = {}

    def url_for(dialect: str) -> str:
        if dialect not in urls:
            urls[dialect] = server_database(dialect, "case_db_unit")
            if dialect == "postgresql":
                engine = sa.create_engine(urls[dialect], isolation_level="AUTOCOMMIT")
                with engine.connect() as conn:
                    name = sa.make_url(urls[dialect]).database
                    conn.execute(sa.text(f"ALTER DATABASE {name} SET timezone TO '{SERVER_ZONE}'"))
                engine.dispose()
        return urls[dialect]

    return url_for  # type: ignore[return-value]


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def case_source(request, settings: Settings, server_case_dbs) -> Settings:
    """Settings whose case DB is a SQLite file, or a database on the PostgreSQL or MariaDB server."""
    if request.param == "sqlite":
        return settings
    return replace(settings, case_db_url=server_case_dbs(request.param))


def dialect_of(settings: Settings) -> str:
    return sa.make_url(settings.case_db_url).get_backend_name()


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
    # values exactly as stored: Arrow text, missing as <NA>
    assert frame.loc[frame["case_number"] == "offset-inside", "updated_at"].item() == (
        "2026-03-02T01:00:00+02:00")
    assert frame["decided_at"].isna().all()
    assert all(frame[c].dtype == pd.StringDtype("pyarrow") for c in [*CASE_COLUMNS, "_origin"])


def test_native_datetime_column_gives_canonical_utc_text_on_every_database(
    contracts: dict[str, Contract], case_source: Settings, march_first: Interval
) -> None:
    rows = [
        case("at-start", datetime(2026, 3, 1)),
        case("inside", datetime(2026, 3, 1, 18, 5, 1, 250000)),
        case("last-us", datetime(2026, 3, 1, 23, 59, 59, 999999)),
        case("at-end", datetime(2026, 3, 2)),
        case("before", datetime(2026, 2, 28, 23, 59, 59, 999000)),
    ]
    make_case_db(case_source.case_db_url, rows, timestamp_type=CASE_TIMESTAMP)

    batch = case_db.extract(contracts["case_db"], case_source, march_first)

    frame = batch.frame
    assert frame["case_number"].tolist() == ["at-start", "inside", "last-us"]
    assert frame["updated_at"].tolist() == [
        "2026-03-01T00:00:00.000000Z", "2026-03-01T18:05:01.250000Z", "2026-03-01T23:59:59.999999Z"]
    assert batch.origins == [f"{dialect_of(case_source)}:cases"]


def test_text_watermark_in_utc_spellings_is_compared_as_a_time_on_every_database(
    contracts: dict[str, Contract], case_source: Settings, march_first: Interval
) -> None:
    make_case_db(case_source.case_db_url, [
        case("before-start", "2026-02-28 23:59:59.999"),
        case("at-start", "2026-03-01 00:00:00"),
        case("t-spelling", "2026-03-01T12:30:00"),
        case("fraction", "2026-03-01 23:59:59.5"),
        case("at-end", "2026-03-02 00:00:00"),
        case("no-watermark", None),
    ])

    frame = case_db.extract(contracts["case_db"], case_source, march_first).frame

    assert frame["case_number"].tolist() == ["at-start", "t-spelling", "fraction"]
    assert frame["updated_at"].tolist() == ["2026-03-01 00:00:00", "2026-03-01T12:30:00",
                                            "2026-03-01 23:59:59.5"]  # a text column: as stored


def test_rows_with_the_same_watermark_come_in_byte_order_of_the_key_on_every_database(
    contracts: dict[str, Contract], case_source: Settings, march_first: Interval
) -> None:
    """Server collations (locale, case-insensitive) must not change the order or ``_row``."""
    numbers = ["a10", "B-2", "a-1", "A-3", "b1"]
    make_case_db(case_source.case_db_url, [case(n, datetime(2026, 3, 1, 9)) for n in numbers],
                 timestamp_type=CASE_TIMESTAMP)

    frame = case_db.extract(contracts["case_db"], case_source, march_first).frame

    assert frame["case_number"].tolist() == sorted(numbers, key=lambda n: n.encode())
    assert frame["_row"].tolist() == [1, 2, 3, 4, 5]


def test_postgresql_text_watermark_with_offsets_and_zone_free_text_read_as_utc(
    contracts: dict[str, Contract], server_case_dbs, settings: Settings, march_first: Interval
) -> None:
    settings = replace(settings, case_db_url=server_case_dbs("postgresql"))
    make_case_db(settings.case_db_url, [
        case("offset-inside", "2026-03-02T01:00:00+02:00"),   # 23:00 UTC on 1 March
        case("offset-outside", "2026-03-01T01:00:00+02:00"),  # 23:00 UTC on 28 February
        case("zone-free", "2026-03-01 12:30:00"),             # UTC, not the server's zone
        case("z-suffix", "2026-03-01T00:00:00Z"),
        case("z-at-end", "2026-03-02T00:00:00Z"),
    ])

    frame = case_db.extract(contracts["case_db"], settings, march_first).frame

    assert frame["case_number"].tolist() == ["z-suffix", "zone-free", "offset-inside"]


def test_postgresql_timestamptz_is_read_in_utc_whatever_zone_wrote_it(
    contracts: dict[str, Contract], server_case_dbs, settings: Settings, march_first: Interval
) -> None:
    settings = replace(settings, case_db_url=server_case_dbs("postgresql"))
    make_case_db(settings.case_db_url, [], timestamp_type=sa.DateTime(timezone=True))
    engine = sa.create_engine(settings.case_db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("SET TIME ZONE 'America/New_York'"))  # UTC-5 in early March
        for number, local in [("inside-late", "2026-03-01 18:30:00"), ("inside-early", "2026-02-28 19:30:00"),
                              ("before", "2026-02-28 18:59:59"), ("at-end", "2026-03-01 19:00:00")]:
            conn.execute(sa.text(
                "INSERT INTO cases (case_number, office, updated_at) VALUES (:n, 'NYC', :t)"
            ), {"n": number, "t": local})
    engine.dispose()

    frame = case_db.extract(contracts["case_db"], settings, march_first).frame

    assert frame["case_number"].tolist() == ["inside-early", "inside-late"]
    assert frame["updated_at"].tolist() == ["2026-03-01T00:30:00.000000Z", "2026-03-01T23:30:00.000000Z"]


def test_postgresql_text_watermark_that_is_no_time_stops_the_source_with_a_clear_error(
    contracts: dict[str, Contract], server_case_dbs, settings: Settings, march_first: Interval
) -> None:
    settings = replace(settings, case_db_url=server_case_dbs("postgresql"))
    make_case_db(settings.case_db_url, [case("ok", "2026-03-01T10:00:00Z"), case("bad", "yesterday-ish")])

    with pytest.raises(ContractError, match=r"case_db: cannot read watermark updated_at of cases"):
        case_db.extract(contracts["case_db"], settings, march_first)


def test_mariadb_timestamp_column_is_read_in_utc_whatever_zone_wrote_it(
    contracts: dict[str, Contract], server_case_dbs, settings: Settings, march_first: Interval
) -> None:
    settings = replace(settings, case_db_url=server_case_dbs("mariadb"))
    make_case_db(settings.case_db_url, [], timestamp_type=mysql.TIMESTAMP(fsp=6))
    engine = sa.create_engine(settings.case_db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("SET time_zone = '+05:00'"))
        for number, local in [("inside", "2026-03-02 04:00:00.25"), ("at-end", "2026-03-02 05:00:00"),
                              ("before", "2026-03-01 04:59:59")]:
            conn.execute(sa.text(
                "INSERT INTO cases (case_number, office, updated_at) VALUES (:n, 'NYC', :t)"
            ), {"n": number, "t": local})
    engine.dispose()

    frame = case_db.extract(contracts["case_db"], settings, march_first).frame

    assert frame["case_number"].tolist() == ["inside"]
    assert frame["updated_at"].tolist() == ["2026-03-01T23:00:00.250000Z"]


def test_batches_from_the_cursor_are_the_one_batch_cut_in_order_on_every_database(
    contracts: dict[str, Contract], case_source: Settings, march_first: Interval
) -> None:
    # 23 changed rows (minutes apart, so the order is known), two outside the interval
    inside = [case(f"C{n:03d}", datetime(2026, 3, 1, 1, n), decided_at=None if n % 4 else "2026-03-01")
              for n in range(23)]
    outside = [case("early", datetime(2026, 2, 28, 23)), case("late", datetime(2026, 3, 2, 0, 1))]
    make_case_db(case_source.case_db_url, [*outside, *inside], timestamp_type=CASE_TIMESTAMP)
    origin = f"{dialect_of(case_source)}:cases"

    batches = list(case_db.extract_batches(contracts["case_db"], case_source, march_first, batch_rows=5))

    assert [len(batch.frame) for batch in batches] == [5, 5, 5, 5, 3]
    assert all(batch.origins == [origin] for batch in batches)
    joined = pd.concat([batch.frame for batch in batches], ignore_index=True)
    pd.testing.assert_frame_equal(joined, case_db.extract(contracts["case_db"], case_source,
                                                          march_first).frame)
    assert joined["case_number"].tolist() == [row["case_number"] for row in inside]
    assert joined["_row"].tolist() == list(range(1, 24))  # numbered across batch boundaries
    assert joined["decided_at"].notna().tolist() == [n % 4 == 0 for n in range(23)]


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
