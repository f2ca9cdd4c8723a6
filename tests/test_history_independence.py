"""A night's marts touch only the days and periods it loaded, whatever history lies beside them.

A warehouse holds six weeks of synthesized history (benchmarks.history: every fact, customers
who come back, cases decided weeks after receipt). Rebuilding the marts for one day must give
that day's, week's, month's and quarter's rows exactly as a rebuild of the whole history does,
leave every other row alone, and agree with figures computed here from the facts in pandas.
On PostgreSQL the facts' partition columns are indexed; on DuckDB they are not.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from benchmarks.history import Volume, synthesize_history
from pipelines import marts, warehouse
from pipelines.insight.marts import DAILY_INPUTS, PERIOD_MARTS, ensure_indexes, rebuild_period_marts
from pipelines.insight.periods import bounds_of
from pipelines.insight.tables import agg_contact_daily, agg_driver_daily, agg_likert_daily, mart_segment_daily
from pipelines.model import (
    PARTITION_INDEXES,
    fact_case,
    fact_contact,
    fact_survey_response,
    mart_journey_service_daily,
)
from pipelines.settings import Settings

FIRST = date(2026, 1, 19)
HISTORY = [FIRST + timedelta(days=i) for i in range(42)]  # to Sunday 1 March 2026
DAY = date(2026, 2, 22)  # a Sunday: its week's review date is the same in a full rebuild
VOLUME = Volume(contacts=300, customers=6_000)
MART_TABLES = [mart_journey_service_daily, *[m.table for m in PERIOD_MARTS.values()]]


@pytest.fixture(params=["duckdb", "postgresql"])
def loaded(request, tmp_path: Path) -> tuple[sa.Engine, Settings]:
    """A warehouse with the history and every mart built over all of it."""
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    else:
        url = request.getfixturevalue("server_database")("postgresql", "history")
    settings = replace(Settings.from_env(), warehouse_url=url)
    engine = warehouse.engine_for(url)
    warehouse.ensure_schema(engine, sql_dir=settings.warehouse_sql_dir)
    synthesize_history(engine, FIRST, len(HISTORY), VOLUME)
    with engine.begin() as conn:
        marts.rebuild_mart(conn, settings.warehouse_sql_dir, mart_journey_service_daily, HISTORY)
        rebuild_period_marts(conn, settings, HISTORY)
    yield engine, settings
    engine.dispose()


def rows_by_table(engine: sa.Engine) -> dict[str, list[tuple]]:
    def plain(value):  # 9 significant digits: sums may meet the rows in another order
        return float(f"{value:.9g}") if isinstance(value, float) else value

    with engine.connect() as conn:
        return {t.name: sorted((tuple(plain(v) for v in row) for row in conn.execute(sa.select(t))), key=repr)
                for t in MART_TABLES}


def period_column(table: sa.Table) -> sa.Column:
    return table.c.date_day if "date_day" in table.c else table.c.period_start


def test_rebuilding_a_day_rewrites_only_its_periods_and_equals_the_full_rebuild(loaded):
    engine, settings = loaded
    full = rows_by_table(engine)
    assert all(full[t.name] for t in MART_TABLES if t.name != "mart_emerging_terms")
    # Spoil every row: a rebuild of DAY must restore exactly the rows of DAY's periods. (Not the
    # daily inputs of longer periods: the weekly theme mart reads the other days of its week from
    # the text-theme bridge, the monthly cost mart the other days of its month from the contact
    # counts.)
    spoilt = [t for t in MART_TABLES if t.name not in (*DAILY_INPUTS, "mart_emerging_terms")]
    with engine.begin() as conn:
        for table in spoilt:
            conn.execute(sa.update(table).values(service_id="spoiled"))
    with engine.begin() as conn:
        marts.rebuild_mart(conn, settings.warehouse_sql_dir, mart_journey_service_daily, [DAY])
        rebuild_period_marts(conn, settings, [DAY])
    after = rows_by_table(engine)
    periods = {"mart_journey_service_daily": bounds_of(PERIOD_MARTS["fact_text_theme"].period, DAY)}
    periods |= {name: bounds_of(mart.period, DAY) for name, mart in PERIOD_MARTS.items()}
    with engine.connect() as conn:
        for table in spoilt:
            column = period_column(table)
            starts = [r[0] for r in conn.execute(sa.select(column).distinct())]
            spoiled = sa.select(sa.func.count()).select_from(table).where(table.c.service_id == "spoiled")
            rebuilt = [s for s in starts if conn.execute(spoiled.where(column == s)).scalar() == 0]
            assert rebuilt == [periods[table.name].start], table.name
    # The rebuilt period's rows are the full rebuild's rows.
    index = {t.name: [c.name for c in t.columns].index(period_column(t).name) for t in MART_TABLES}
    for table in MART_TABLES:
        if table.name == "mart_emerging_terms":
            continue  # it also rebuilds the later weeks whose baseline holds the day
        start = periods[table.name].start
        mine = [r for r in after[table.name] if r[index[table.name]] == start]
        assert mine == [r for r in full[table.name] if r[index[table.name]] == start], table.name


def test_a_days_marts_agree_with_the_facts(loaded):
    """Contacts per service and channel, and returning customers among them, counted in pandas."""
    engine, settings = loaded
    with engine.begin() as conn:
        marts.rebuild_mart(conn, settings.warehouse_sql_dir, mart_journey_service_daily, [DAY])
        rebuild_period_marts(conn, settings, [DAY])
    with engine.connect() as conn:
        contacts = pd.DataFrame(conn.execute(sa.select(
            fact_contact.c.contact_date, fact_contact.c.customer_key, fact_contact.c.case_key,
            fact_contact.c.service_id, fact_contact.c.channel, fact_contact.c.start_time)).all())
        cases = pd.DataFrame(conn.execute(sa.select(
            fact_case.c.case_key, fact_case.c.customer_key, fact_case.c.received_at)).all())
        daily = pd.DataFrame(conn.execute(sa.select(
            mart_journey_service_daily.c.service_id, mart_journey_service_daily.c.channel,
            mart_journey_service_daily.c.contacts).where(mart_journey_service_daily.c.date_day == DAY)).all())
        m = mart_segment_daily
        segments = pd.DataFrame(conn.execute(sa.select(m.c.service_id, m.c.segment, m.c.contacts).where(
            m.c.date_day == DAY, m.c.segment_kind == "customer_history")).all())
        a = agg_contact_daily
        counted = pd.DataFrame(conn.execute(sa.select(a.c.service_id, a.c.channel, a.c.customer_history,
                                                      a.c.contacts).where(a.c.date_day == DAY)).all())
    for frame in (contacts, cases):
        for column in ("start_time", "received_at"):
            if column in frame:
                frame[column] = pd.to_datetime(frame[column], utc=True)
    today = contacts[contacts["contact_date"] == DAY]
    expected = today.groupby(["service_id", "channel"]).size()
    got = daily[daily["contacts"] > 0].groupby(["service_id", "channel"])["contacts"].sum()
    assert got.to_dict() == expected.to_dict()

    first_at = first_activity(contacts, cases)
    received = cases.set_index("case_key")["received_at"]
    reference = today["case_key"].map(received).fillna(today["start_time"])
    returning = today["customer_key"].map(first_at) < reference
    history = pd.Series(returning.map({True: "returning", False: "first_time"}), index=today.index)
    expected = today.assign(segment=history).groupby(["service_id", "segment"]).size()
    got = segments[segments["contacts"] > 0].groupby(["service_id", "segment"])["contacts"].sum()
    assert got.to_dict() == expected.to_dict()
    expected = today.assign(segment=history).groupby(["service_id", "channel", "segment"]).size()
    got = counted.groupby(["service_id", "channel", "customer_history"])["contacts"].sum()
    assert got.to_dict() == expected.to_dict()
    assert set(history) == {"returning", "first_time"}  # the history really is met


def first_activity(contacts: pd.DataFrame, cases: pd.DataFrame) -> pd.Series:
    """Each customer's earliest case receipt or contact over the whole history."""
    activity = pd.concat([cases[["customer_key", "received_at"]].set_axis(["customer_key", "at"], axis=1),
                          contacts[["customer_key", "start_time"]].set_axis(["customer_key", "at"], axis=1)])
    return activity.dropna().groupby("customer_key")["at"].min()


def test_a_days_survey_responses_by_customer_history_agree_with_the_facts(loaded):
    """A response's customer history is its case's: returning when the case's customer was
    active before the case was received, unknown without a case or customer."""
    engine, settings = loaded
    with engine.begin() as conn:
        rebuild_period_marts(conn, settings, [DAY])
    with engine.connect() as conn:
        contacts = pd.DataFrame(conn.execute(sa.select(fact_contact.c.customer_key,
                                                       fact_contact.c.start_time)).all())
        cases = pd.DataFrame(conn.execute(sa.select(
            fact_case.c.case_key, fact_case.c.customer_key, fact_case.c.received_at)).all())
        r = fact_survey_response
        responses = pd.DataFrame(conn.execute(sa.select(r.c.service_id, r.c.case_key, r.c.trust).where(
            r.c.response_date == DAY)).all())
        m = mart_segment_daily
        segments = pd.DataFrame(conn.execute(sa.select(
            m.c.service_id, m.c.segment, m.c.survey_responses).where(
            m.c.date_day == DAY, m.c.segment_kind == "customer_history")).all())
        a = agg_likert_daily
        likert = pd.DataFrame(conn.execute(sa.select(
            a.c.service_id, a.c.customer_history, a.c.answered).where(
            a.c.date_day == DAY, a.c.item == "trust")).all())
    contacts["start_time"] = pd.to_datetime(contacts["start_time"], utc=True)
    cases["received_at"] = pd.to_datetime(cases["received_at"], utc=True)
    first_at = first_activity(contacts, cases)
    case = cases.set_index("case_key").reindex(responses["case_key"])
    returning = case["customer_key"].map(first_at).to_numpy() < case["received_at"].to_numpy()
    history = pd.Series(["unknown" if pd.isna(c) else "returning" if back else "first_time"
                         for c, back in zip(case["customer_key"], returning, strict=True)],
                        index=responses.index)
    responses = responses.assign(history=history)
    expected = responses.groupby(["service_id", "history"]).size()
    segments = segments[segments["survey_responses"] > 0]
    got = segments.groupby(["service_id", "segment"])["survey_responses"].sum()
    assert got.to_dict() == expected.to_dict()
    answered = responses[responses["service_id"] != "unmapped"].dropna(subset=["trust"])
    got = likert[likert["answered"] > 0].groupby(["service_id", "customer_history"])["answered"].sum()
    assert got.to_dict() == answered.groupby(["service_id", "history"]).size().to_dict()
    assert {"returning", "first_time"} <= set(history)  # the history really is met


def test_a_days_driver_links_agree_with_the_facts(loaded, tmp_path: Path):
    """Each response's contact bands come from the latest contact about its case that started
    before it within the window of drivers.yaml, here narrowed to 11 days so that it decides
    for some responses (the history's contacts name cases up to 90 days old), some of them by
    the hour, among the contacts of the first day the query reads."""
    engine, settings = loaded
    window = timedelta(days=11)
    schemas = tmp_path / "schemas"
    shutil.copytree(settings.schemas_dir, schemas)
    (schemas / "drivers.yaml").write_text(f"contact_window_days: {window.days}\n")
    with engine.begin() as conn:
        rebuild_period_marts(conn, replace(settings, schemas_dir=schemas), [DAY])
    r, c, a = fact_survey_response, fact_contact, agg_driver_daily
    with engine.connect() as conn:
        responses = pd.DataFrame(conn.execute(sa.select(
            r.c.response_id, r.c.service_id, r.c.case_key, r.c.created_at, r.c.satisfaction).where(
            r.c.response_date == DAY, r.c.service_id != "unmapped", r.c.case_key.is_not(None))).all())
        contacts = pd.DataFrame(conn.execute(sa.select(
            c.c.contact_key, c.c.case_key, c.c.start_time, c.c.contact_date, c.c.channel, c.c.wait_seconds,
            c.c.resolved_first_contact, c.c.transferred, c.c.abandoned).where(
            c.c.case_key.is_not(None))).all())
        got = pd.DataFrame(conn.execute(sa.select(
            a.c.service_id, a.c.driver, a.c.band, sa.func.sum(a.c.responses).label("responses"),
            sa.func.sum(a.c.sum_satisfaction).label("sum_satisfaction")).where(
            a.c.date_day == DAY, a.c.driver != "case_timeliness").group_by(
            a.c.service_id, a.c.driver, a.c.band)).all())
    for frame, column in ((responses, "created_at"), (contacts, "start_time")):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    pairs = responses.merge(contacts, on="case_key")
    before = pairs[pairs["start_time"] < pairs["created_at"]]
    latest = (before.sort_values(["start_time", "contact_key"], ascending=[False, True])
              .drop_duplicates("response_id"))
    within = latest["start_time"] >= latest["created_at"] - window
    linked = latest[within]
    assert 0 < len(linked) < len(latest)  # the window links some responses and turns others away
    # some turned away by the hour: on the first day the query reads (a day before the window)
    assert (~within & (latest["contact_date"] >= DAY - window - timedelta(days=1))).any()
    answered = linked[~linked["abandoned"].astype(bool)]
    bands = [
        linked[linked["channel"].isin(["phone", "chat"]) & linked["wait_seconds"].notna()].assign(
            driver="wait_time", band=lambda f: pd.cut(f["wait_seconds"], [-1, 119, 599, float("inf")],
                                                     labels=["under_2_min", "2_to_10_min", "over_10_min"])),
        answered[answered["resolved_first_contact"].notna()].assign(
            driver="first_contact_resolution",
            band=lambda f: f["resolved_first_contact"].map({True: "resolved", False: "not_resolved"})),
        answered[answered["transferred"].notna()].assign(
            driver="transfer",
            band=lambda f: f["transferred"].map({True: "transferred", False: "not_transferred"})),
    ]
    expected = (pd.concat([b.astype({"band": str}) for b in bands])
                .groupby(["service_id", "driver", "band"])["satisfaction"].agg(["size", "sum"]))
    got = got.set_index(["service_id", "driver", "band"]).sort_index()
    assert got["responses"].astype(int).to_dict() == expected["size"].to_dict()
    assert got["sum_satisfaction"].astype(int).to_dict() == expected["sum"].to_dict()


def test_partition_indexes_exist_on_postgresql_only(loaded):
    engine, _ = loaded
    tables = ("fact_contact", "contact_by_case", "contact_customer_day", "fact_case", "fact_survey_response",
              "fact_web_daily", "fact_feedback", "mart_journey_service_daily", "mart_segment_daily",
              "mart_cycle_time_weekly")
    found = set()
    if engine.dialect.name == "postgresql":
        inspector = sa.inspect(engine)
        found = {(t, tuple(i["column_names"])) for t in tables for i in inspector.get_indexes(t)}
    declared = {(i.table.name, tuple(c.name for c in i.columns)) for i in PARTITION_INDEXES}
    wanted = {("fact_contact", ("contact_date",)), ("contact_customer_day", ("customer_key", "first_start")),
              ("contact_by_case", ("case_key", "start_time")),
              ("fact_case", ("decided_date",)), ("fact_survey_response", ("response_date",)),
              ("mart_segment_daily", ("date_day",)), ("mart_cycle_time_weekly", ("period_start",))}
    if engine.dialect.name == "postgresql":
        assert wanted <= found
        assert {d for d in declared if d[0] in {t for t, _ in found}} <= found
    else:  # duckdb-engine does not reflect indexes: ask DuckDB itself
        with engine.connect() as conn:
            names = {r[0] for r in conn.execute(sa.text("SELECT index_name FROM duckdb_indexes()"))}
        assert names.isdisjoint(i.name for i in PARTITION_INDEXES)


def test_first_activity_is_computed_only_for_the_customers_a_night_can_name(loaded):
    """The run's customer_first_seen covers the customers of the day's periods, not all history."""
    from pipelines.insight.marts import FIRST_SEEN, drop_first_seen, fill_first_seen
    from pipelines.insight.periods import PeriodBounds

    engine, _ = loaded
    week = PeriodBounds(DAY, DAY + timedelta(days=1))  # the span of a night's daily marts
    with engine.begin() as conn:
        fill_first_seen(conn, week)
        table = pd.DataFrame(conn.execute(sa.text(f"SELECT customer_key, first_at FROM {FIRST_SEEN}")).all())
        contacts = pd.DataFrame(conn.execute(sa.select(fact_contact.c.customer_key, fact_contact.c.start_time,
                                                       fact_contact.c.contact_date)).all())
        cases = pd.DataFrame(conn.execute(sa.select(fact_case.c.customer_key, fact_case.c.received_at)).all())
        drop_first_seen(conn)
    contacts["start_time"] = pd.to_datetime(contacts["start_time"], utc=True)
    cases["received_at"] = pd.to_datetime(cases["received_at"], utc=True)
    in_span = set(contacts.loc[(contacts["contact_date"] >= week.start)
                               & (contacts["contact_date"] < week.end), "customer_key"])
    assert in_span <= set(table["customer_key"])
    first = pd.concat([contacts.set_index("customer_key")["start_time"],
                       cases.set_index("customer_key")["received_at"]]).groupby(level=0).min()
    assert len(table) < len(first)  # not every customer of the history
    got = pd.to_datetime(table.set_index("customer_key")["first_at"], utc=True)
    assert (got == first.reindex(got.index)).all()


def test_case_histories_cover_the_cases_of_the_spans_responses_and_of_the_text_spans_comments(loaded):
    """case_customer_history holds, for each case a response of the span names, and each case a
    comment of the text span (the emerging terms' four weeks before their week) names, the
    history the facts give: returning when the customer's first contact or case came before the
    case was received. Of the text span's responses without a comment it needs none."""
    from pipelines.insight.marts import CASE_HISTORY, FirstSeenSpan, drop_first_seen, fill_first_seen
    from pipelines.insight.periods import PeriodBounds

    engine, _ = loaded
    day = PeriodBounds(DAY, DAY + timedelta(days=1))
    texts = PeriodBounds(DAY - timedelta(weeks=4), DAY + timedelta(days=1))
    with engine.begin() as conn:
        fill_first_seen(conn, FirstSeenSpan(day, texts=texts))
        histories = sa.text(f"SELECT case_key, customer_history FROM {CASE_HISTORY}")
        got = pd.DataFrame(conn.execute(histories).all())
        responses = pd.DataFrame(conn.execute(sa.select(
            fact_survey_response.c.case_key, fact_survey_response.c.response_date,
            fact_survey_response.c.comment)).all())
        cases = pd.DataFrame(conn.execute(sa.select(fact_case.c.case_key, fact_case.c.customer_key,
                                                    fact_case.c.received_at)).all())
        contacts = pd.DataFrame(conn.execute(sa.select(fact_contact.c.customer_key,
                                                       fact_contact.c.start_time)).all())
        drop_first_seen(conn)
    cases["received_at"] = pd.to_datetime(cases["received_at"], utc=True)
    contacts["start_time"] = pd.to_datetime(contacts["start_time"], utc=True)
    first = pd.concat([contacts.set_index("customer_key")["start_time"],
                       cases.set_index("customer_key")["received_at"]]).groupby(level=0).min()
    in_day = (responses["response_date"] >= day.start) & (responses["response_date"] < day.end)
    commented = (responses["comment"].notna() & (responses["response_date"] >= texts.start)
                 & (responses["response_date"] < texts.end))
    named = cases[cases["customer_key"].notna()].set_index("case_key")
    needed = named.loc[named.index.intersection(responses.loc[in_day | commented, "case_key"].dropna())]
    expected = pd.Series(["returning" if first[customer] < received else "first_time"
                          for customer, received in zip(needed["customer_key"], needed["received_at"],
                                                        strict=True)], index=needed.index)
    assert not got["case_key"].duplicated().any()  # a join with it must not repeat a response
    got = got.set_index("case_key")["customer_history"]
    assert got.reindex(expected.index).to_dict() == expected.to_dict()
    # the text span decides: comments before the day name cases the day's responses do not
    before = named.index.intersection(responses.loc[commented & ~in_day, "case_key"].dropna())
    assert len(before.difference(responses.loc[in_day, "case_key"].dropna())) > 100
    assert set(expected) == {"first_time", "returning"}


@pytest.mark.parametrize("loaded", ["postgresql"], indirect=True)  # DuckDB has no visibility map
def test_postgresql_marts_vacuum_the_probed_facts_and_skip_one_the_night_holds_locked(loaded):
    """First-activity probes read only the index once VACUUM has marked the loaded pages
    all-visible; the marts run it on a connection of their own, which must not wait for a lock
    that their own transaction holds (it would wait forever)."""
    engine, settings = loaded
    with engine.connect() as conn:
        visible = dict(conn.execute(sa.text("SELECT relname, relallvisible FROM pg_class "
                                            "WHERE relname IN ('fact_case', 'fact_contact')")).all())
    assert visible["fact_case"] > 0 and visible["fact_contact"] > 0  # the fixture's marts vacuumed them
    with engine.begin() as conn:
        conn.execute(sa.text("LOCK TABLE fact_case IN SHARE MODE"))  # conflicts with VACUUM's lock
        counts = rebuild_period_marts(conn, settings, [DAY])
    assert counts["mart_segment_daily"] > 0


@pytest.mark.parametrize("loaded", ["postgresql"], indirect=True)  # DuckDB's is a temporary table
def test_postgresql_first_activity_tables_are_the_runs_own_and_gone_after_it(loaded):
    """customer_first_seen is a view of an unlogged table (so that the marts may run in
    parallel): two nights' marts at once must not wait on each other's table, and none is left."""
    from pipelines.insight.marts import FIRST_SEEN, drop_first_seen, fill_first_seen
    from pipelines.insight.periods import PeriodBounds

    engine, _ = loaded
    leftovers = sa.text("SELECT relname FROM pg_class WHERE relname LIKE :name")
    with engine.connect() as conn:
        assert conn.execute(leftovers, {"name": f"{FIRST_SEEN}%"}).all() == []  # after the fixture's marts
    day = PeriodBounds(DAY, DAY + timedelta(days=1))
    with engine.begin() as first, engine.begin() as second:
        second.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
        counts = [fill_first_seen(first, day), fill_first_seen(second, day)]
        customers = sa.text(f"SELECT customer_key FROM {FIRST_SEEN}")
        seen = [set(conn.execute(customers).scalars()) for conn in (first, second)]
        drop_first_seen(first)
        drop_first_seen(second)
    assert counts[0] == counts[1] == len(seen[0]) > 0 and seen[0] == seen[1]
    with engine.connect() as conn:
        assert conn.execute(leftovers, {"name": f"{FIRST_SEEN}%"}).all() == []


@pytest.mark.parametrize("loaded", ["postgresql"], indirect=True)  # DuckDB keeps no indexes on facts
def test_postgresql_day_indexes_are_brin_summarized_by_the_load_and_replace_older_indexes(loaded, tmp_path):
    """A day-partitioned fact's day column has a BRIN index, whose page ranges a load summarizes
    (else they would match every day's reads); an older warehouse's superseded indexes go."""
    engine, _ = loaded
    brin = "ix_fact_contact_contact_date_brin"

    def unsummarized(conn) -> int:  # summarizes what is left, returning how many ranges that was
        summarize = sa.text("SELECT brin_summarize_new_values(CAST(:i AS regclass))")
        return conn.execute(summarize, {"i": brin}).scalar()

    def as_new_day(day: date) -> sa.Select:  # every contact of the history again, as one new day:
        columns = [c.name for c in fact_contact.columns]  # pages enough for new ranges (128 pages each)
        return sa.select(*[sa.literal(day).label(n) if n == "contact_date" else fact_contact.c[n]
                           for n in columns]).where(fact_contact.c.contact_date <= HISTORY[-1])

    with engine.begin() as conn:
        conn.execute(sa.text("CREATE INDEX ix_fact_contact_contact_date ON fact_contact (contact_date)"))
        conn.execute(sa.text("CREATE INDEX ix_fact_contact_case_key ON fact_contact (case_key)"))
        conn.execute(sa.text("CREATE INDEX ix_fact_contact_case_key_start_time ON fact_contact "
                             "(case_key, start_time)"))
        ensure_indexes(conn)
        methods = dict(conn.execute(sa.text(
            "SELECT c.relname, a.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid IN "
            "('fact_contact'::regclass, 'contact_by_case'::regclass)")).all())
        assert methods[brin] == "brin" and methods["ix_contact_by_case_case_key_start_time"] == "btree"
        assert not {"ix_fact_contact_contact_date", "ix_fact_contact_case_key",
                    "ix_fact_contact_case_key_start_time"} & set(methods)
        unsummarized(conn)  # VACUUM leaves the last range, which inserts would then keep up to date
        plain = as_new_day(HISTORY[-1] + timedelta(days=30))
        conn.execute(sa.insert(fact_contact).from_select([c.name for c in fact_contact.columns], plain))
        assert unsummarized(conn) > 0  # a plain insert leaves its ranges to autovacuum
        schema = warehouse.arrow_schema(fact_contact)  # the load's bulk insert summarizes them
        day = pa.Table.from_batches(list(warehouse.export_batches(
            conn, as_new_day(HISTORY[-1] + timedelta(days=31)), schema)), schema)
        pq.write_table(day, tmp_path / "day.parquet")
        assert warehouse.insert_parquet(conn, fact_contact, tmp_path / "day.parquet") == day.num_rows > 0
        assert unsummarized(conn) == 0


@pytest.mark.parametrize("loaded", ["postgresql"], indirect=True)  # DuckDB keeps no planner statistics
def test_postgresql_marts_renew_only_the_statistics_a_night_made_stale(loaded):
    """ANALYZE reads 30,000 sampled rows from more pages as history grows, so the marts renew a
    table's statistics only once 50 rows plus 10% of it have changed (or it was never analyzed),
    and otherwise only a day column whose statistics end before the night's day."""
    from pipelines.insight.statistics import day_columns_behind, stale_tables

    engine, settings = loaded
    watched = ["fact_contact", "fact_case"]
    last_analyze = sa.text("SELECT relname, last_analyze FROM pg_stat_user_tables WHERE relname IN :names"
                           ).bindparams(sa.bindparam("names", expanding=True))

    def add_contacts(conn, day: date, of_days: sa.ColumnElement[bool]) -> int:
        """The contacts of ``of_days`` again as ``day``'s, under new keys."""
        columns = [c.name for c in fact_contact.columns]
        again = {"contact_date": sa.literal(day),
                 "contact_key": sa.func.md5(fact_contact.c.contact_key + day.isoformat())}
        rows = sa.select(*[again.get(n, fact_contact.c[n]).label(n) for n in columns]).where(of_days)
        added = conn.execute(sa.insert(fact_contact).from_select(columns, rows),
                             execution_options={"preserve_rowcount": True}).rowcount
        conn.execute(sa.text("SELECT pg_stat_force_next_flush()"))  # counted at commit, not up to 1 s later
        return added

    def stale() -> list[str]:
        with engine.connect() as conn:
            return stale_tables(conn, watched)

    # The fixture's sessions count their changes until they flush them (idle, or at exit): once
    # they are gone, an ANALYZE leaves nothing changed since.
    engine.dispose()
    others = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                     "AND pid <> pg_backend_pid()")
    with engine.begin() as conn:
        deadline = time.monotonic() + 30
        while conn.execute(others).scalar() and time.monotonic() < deadline:
            time.sleep(0.05)
        conn.execute(sa.text("ANALYZE fact_contact, fact_case"))
    assert stale() == []
    with engine.begin() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(fact_contact)).scalar()
        one_day = conn.execute(sa.delete(fact_contact).where(fact_contact.c.contact_date == DAY)).rowcount
        conn.execute(sa.text("SELECT pg_stat_force_next_flush()"))
    assert 0 < one_day < 0.1 * total - 50
    assert stale() == []
    with engine.connect() as conn:
        before = dict(conn.execute(last_analyze, {"names": watched}).all())
    with engine.begin() as conn:
        assert add_contacts(conn, HISTORY[-1] + timedelta(days=1),
                            fact_contact.c.contact_date <= HISTORY[-1]) > 0.1 * total + 50
    assert stale() == ["fact_contact"]
    with engine.begin() as conn:
        rebuild_period_marts(conn, settings, [DAY])
    with engine.connect() as conn:
        after = dict(conn.execute(last_analyze, {"names": watched}).all())
    assert after["fact_contact"] > before["fact_contact"] and after["fact_case"] == before["fact_case"]
    assert stale() == []
    # A night of a few rows past the statistics: the day column alone is renewed.
    later = HISTORY[-1] + timedelta(days=2)
    with engine.begin() as conn:
        assert 0 < add_contacts(conn, later, fact_contact.c.contact_date == HISTORY[-1]) < 0.1 * total - 50
    with engine.connect() as conn:
        assert stale_tables(conn, watched) == []
        assert day_columns_behind(conn, watched, later) == ["fact_contact"]
    with engine.begin() as conn:
        rebuild_period_marts(conn, settings, [later])
    with engine.connect() as conn:
        assert day_columns_behind(conn, watched, later) == []
        assert dict(conn.execute(last_analyze, {"names": watched}).all())["fact_case"] == before["fact_case"]


def test_a_short_history_holds_the_cases_a_long_one_does(tmp_path: Path):
    """The benchmark's 30 days of history must differ from 730 in history alone: the case
    source's first load brought every case changed before it, so both hold the same cases in
    process on the benchmark day, and every case that their contacts and responses name."""
    day = date(2024, 7, 1)

    def cases_seen(days: int) -> tuple[int, int, int]:
        engine = warehouse.engine_for(f"duckdb:///{tmp_path / f'{days}.duckdb'}")
        warehouse.ensure_schema(engine)
        synthesize_history(engine, day - timedelta(days=days), days, Volume(contacts=200, customers=2_000))
        with engine.connect() as conn:
            in_process = conn.execute(sa.select(sa.func.count()).select_from(fact_case).where(
                fact_case.c.status == "in_process")).scalar()
            unknown = [conn.execute(sa.select(sa.func.count()).select_from(facts).where(
                facts.c.case_key.is_not(None),
                facts.c.case_key.not_in(sa.select(fact_case.c.case_key)))).scalar()
                for facts in (fact_contact, fact_survey_response)]
        engine.dispose()
        return in_process, *unknown

    short, long = cases_seen(30), cases_seen(200)
    assert short[0] > 0 and short == long and short[1:] == (0, 0)
