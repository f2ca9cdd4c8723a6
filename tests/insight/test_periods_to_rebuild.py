"""Which periods a night rebuilds: those its days touch, and the later ones whose rows read them.

The emerging-terms mart compares a week with the four before it, so a reloaded week changes the
four after it, each rebuilt when it has texts. Whether it has is asked of those weeks' days only,
not of the last day of every response ever loaded.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from pipelines import warehouse
from pipelines.insight.marts import PERIOD_MARTS, periods_to_rebuild
from pipelines.insight.periods import Period, bounds_of
from pipelines.model import fact_feedback, fact_survey_response

MONDAY = date(2026, 3, 2)
EMERGING = PERIOD_MARTS["mart_emerging_terms"]


def week(offset: int):
    return bounds_of(Period.WEEK, MONDAY + timedelta(weeks=offset))


@pytest.fixture
def engine(tmp_path):
    engine = warehouse.engine_for(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    warehouse.ensure_schema(engine)
    yield engine
    engine.dispose()


def add_texts(engine, responses: list[date], feedback: list[date]) -> None:
    with engine.begin() as conn:
        for number, day in enumerate(responses):
            conn.execute(sa.insert(fact_survey_response).values(
                response_id=f"r{number}", response_date=day, service_id="passport", comment="slow"))
        for number, day in enumerate(feedback):
            conn.execute(sa.insert(fact_feedback).values(
                feedback_id=f"f{number}", feedback_date=day, service_id="passport", text="slow"))


def test_a_reloaded_week_rebuilds_the_later_weeks_that_have_texts(engine):
    assert EMERGING.later_periods == 4
    # texts in weeks 1 (a response) and 3 (feedback), none in weeks 2 and 4, more in week 6
    add_texts(engine, [MONDAY + timedelta(days=1), MONDAY + timedelta(weeks=1, days=2),
                       MONDAY + timedelta(weeks=6)], [MONDAY + timedelta(weeks=3, days=4)])
    with engine.connect() as conn:
        rebuilt = periods_to_rebuild(conn, EMERGING, [MONDAY + timedelta(days=1)])
    # weeks 1-3 read week 0 and lie before its fourth follower's last text; week 4 has none,
    # and week 6's texts do not read week 0
    assert rebuilt == [week(0), week(1), week(2), week(3)]


def test_a_night_with_no_later_texts_rebuilds_its_own_week(engine):
    add_texts(engine, [MONDAY - timedelta(weeks=30), MONDAY], [MONDAY - timedelta(days=1)])
    with engine.connect() as conn:
        assert periods_to_rebuild(conn, EMERGING, [MONDAY]) == [week(0)]


def test_the_last_follower_counts_when_it_alone_has_texts(engine):
    add_texts(engine, [], [MONDAY + timedelta(weeks=4, days=6)])
    with engine.connect() as conn:
        rebuilt = periods_to_rebuild(conn, EMERGING, [MONDAY])
    assert rebuilt == [week(n) for n in range(5)]
