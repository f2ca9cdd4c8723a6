"""survey_api: paging, interval filter, retries and key handling against the demo server."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pandas as pd
import pytest

from pipelines.contracts import Contract, ContractError
from pipelines.demo.survey_api_server import SurveyApiServer, write_store
from pipelines.interval import Interval
from pipelines.settings import Settings
from pipelines.sources import SourceAuthError, SourceUnavailable, survey_api
from pipelines.sources.survey_api import ApiOptions

FAST = ApiOptions(page_size=2, timeout_seconds=2, attempts=3, backoff_seconds=0.01,
                  max_backoff_seconds=0.05)
CATALOG_FORMS = ["a1b2c3d4", "b2c3d4e5", "c3d4e5f6", "d4e5f6a7", "e5f6a7b8"]


def submission(number: int, form: str, created_at: str, **answers: object) -> dict:
    attributes = {"created_at": created_at, "updated_at": created_at, "language": "en",
                  "answer_01": "4", "answer_02": "5", "answer_10": f"N400-{number}",
                  "flagged": False, "tags": [], "user_id": None, **answers}
    return {"id": str(number), "form_uuid": form, "attributes": attributes}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Submissions around 1 March 2026 for two forms, some just outside the interval."""
    records = [
        submission(1, "a1b2c3d4", "2026-02-28T23:59:59.999Z"),  # the day before: out
        submission(2, "a1b2c3d4", "2026-03-01T00:00:00.000Z"),  # at start: in
        *(submission(n, "a1b2c3d4", f"2026-03-01T{n:02d}:15:00.000Z") for n in range(3, 9)),
        submission(9, "a1b2c3d4", "2026-03-02T00:00:00.000Z"),  # at end: out
        submission(10, "d4e5f6a7", "2026-03-01T23:59:59.999Z", answer_09="Fine"),  # in
        submission(11, "d4e5f6a7", "2026-02-27T12:00:00.000Z"),  # outside the days asked
    ]
    path = tmp_path / "landing" / "survey" / "responses.json"
    write_store(path, records)
    return path


@pytest.fixture
def server(store: Path, settings: Settings) -> Iterator[SurveyApiServer]:
    with SurveyApiServer(store, settings.survey_api_key, forms=CATALOG_FORMS) as running:
        yield running


def test_pages_are_followed_and_every_submission_in_the_interval_comes_once(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval,
    server: SurveyApiServer,
) -> None:
    settings = replace(settings, survey_api_url=server.url)

    batch = survey_api.extract_responses(contracts["survey"], settings, march_first, FAST)

    frame = batch.frame
    assert sorted(frame["id"], key=int) == ["2", "3", "4", "5", "6", "7", "8", "10"]
    assert frame.loc[frame["id"] == "10", "form_uuid"].item() == "d4e5f6a7"
    # form a1b2c3d4 returns 1..9 for 28 Feb..2 Mar in pages of two: five pages
    a1_origins = [o for o in batch.origins if "/forms/a1b2c3d4/" in o]
    assert len(a1_origins) == 5
    assert a1_origins[0] == (
        "/forms/a1b2c3d4/responses?start_date=2026-02-28&end_date=2026-03-02"
        "&page[number]=1&page[size]=2")
    row_2 = frame[frame["id"] == "2"].iloc[0]
    assert row_2["_origin"] == a1_origins[0] and row_2["_row"] == 2  # second on page 1
    assert server.request_count == len(batch.origins)


def test_submissions_are_flattened_to_text(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval,
    server: SurveyApiServer,
) -> None:
    settings = replace(settings, survey_api_url=server.url)

    frame = survey_api.extract_responses(contracts["survey"], settings, march_first, FAST).frame

    row = frame[frame["id"] == "10"].iloc[0]
    assert row["answer_01"] == "4" and row["answer_09"] == "Fine"
    assert row["answer_10"] == "N400-10" and row["created_at"] == "2026-03-01T23:59:59.999Z"
    assert row["flagged"] == "false" and row["tags"] == "[]" and pd.isna(row["user_id"])
    assert pd.isna(row["answer_13"])  # a contract column the API did not send
    assert {"id", "form_uuid", "created_at", "language"} <= set(frame.columns)
    text = frame.drop(columns=["_row"])
    assert all(dtype == pd.StringDtype("pyarrow") for dtype in text.dtypes)  # text, missing as <NA>


def test_503s_are_retried_until_the_api_answers(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval, store: Path
) -> None:
    with SurveyApiServer(store, settings.survey_api_key, fail_first=2) as server:
        settings = replace(settings, survey_api_url=server.url)
        batch = survey_api.extract_responses(contracts["survey"], settings, march_first, FAST)

    assert len(batch.frame) == 8
    assert server.request_count == len(batch.origins) + 2


def test_an_api_that_keeps_failing_is_unavailable(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval, store: Path
) -> None:
    with SurveyApiServer(store, settings.survey_api_key, fail_first=100) as server:
        settings = replace(settings, survey_api_url=server.url)
        with pytest.raises(SourceUnavailable, match="answered HTTP 503 3 times"):
            survey_api.extract_responses(contracts["survey"], settings, march_first, FAST)

    assert server.request_count == 3


def test_timeouts_are_retried_then_unavailable(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval, store: Path
) -> None:
    options = replace(FAST, timeout_seconds=0.05, attempts=2)
    with SurveyApiServer(store, settings.survey_api_key, delay_seconds=0.3) as server:
        settings = replace(settings, survey_api_url=server.url)
        with pytest.raises(SourceUnavailable, match="after 2 attempts: ReadTimeout"):
            survey_api.extract_responses(contracts["survey"], settings, march_first, options)


def test_no_server_is_unavailable(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval
) -> None:
    settings = replace(settings, survey_api_url="http://127.0.0.1:9")

    with pytest.raises(SourceUnavailable, match="ConnectError"):
        survey_api.extract_responses(contracts["survey"], settings, march_first, FAST)


def test_refused_key_fails_at_once_and_the_key_is_never_shown(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval, store: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_key = "wrong-key-41c0d2a9"
    with SurveyApiServer(store, "the-real-key") as server:
        settings = replace(settings, survey_api_url=server.url, survey_api_key=wrong_key)
        with pytest.raises(SourceAuthError) as raised:
            survey_api.extract_responses(contracts["survey"], settings, march_first, FAST)

    assert server.request_count == 1
    message = str(raised.value)
    assert "refused the API key (HTTP 401)" in message and "XOFLOW_SURVEY_API_KEY" in message
    shown = "".join(traceback.format_exception(raised.value)) + caplog.text
    assert wrong_key not in shown and "the-real-key" not in shown
    assert caplog.records  # the request was logged, without the key


def test_the_key_is_not_in_retry_logs_or_origins(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval, store: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with SurveyApiServer(store, settings.survey_api_key, fail_first=1) as server:
        settings = replace(settings, survey_api_url=server.url)
        batch = survey_api.extract_responses(contracts["survey"], settings, march_first, FAST)

    assert "retrying" in caplog.text
    assert settings.survey_api_key not in caplog.text
    assert not any(settings.survey_api_key in origin for origin in batch.origins)


def test_unknown_form_is_a_contract_error(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval,
    server: SurveyApiServer,
) -> None:
    settings = replace(settings, survey_api_url=server.url)
    contract = replace(contracts["survey"], location={"forms": ["0000beef"]})

    with pytest.raises(ContractError, match="/forms/0000beef/responses.* not found"):
        survey_api.extract_responses(contract, settings, march_first, FAST)


def test_forms_come_from_the_catalog(contracts: dict[str, Contract], settings: Settings) -> None:
    assert survey_api.survey_forms(contracts["survey"], settings) == CATALOG_FORMS


def test_a_next_link_to_another_host_is_not_followed(settings: Settings) -> None:
    seen_hosts: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen_hosts.append(request.url.host)
        return httpx.Response(200, json={
            "data": [], "links": {"next": "https://elsewhere.example/forms/x/responses?page=2"},
            "meta": {"current_page": 1, "total_pages": 2},
        })

    pages = survey_api._Api("survey", "http://api.test", settings.survey_api_key, FAST)
    client = httpx.Client(transport=httpx.MockTransport(api),
                          headers={"x-api-key": settings.survey_api_key})
    with client, pytest.raises(ContractError, match="leaves http://api.test"):
        list(pages.pages(client, "/forms/x/responses", {"page[number]": 1}))
    assert seen_hosts == ["api.test"]


def test_a_page_claiming_more_pages_without_a_next_link_is_a_contract_error(
    settings: Settings,
) -> None:
    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={
            "data": [], "links": {"next": None}, "meta": {"current_page": 1, "total_pages": 3},
        })

    pages = survey_api._Api("survey", "http://api.test", settings.survey_api_key, FAST)
    with httpx.Client(transport=httpx.MockTransport(api)) as client, pytest.raises(
        ContractError, match="page 1 of 3 but has no next link"
    ):
        list(pages.pages(client, "/forms/x/responses", {"page[number]": 1}))


def test_batches_cut_across_pages_give_the_same_rows_each_traceable_to_its_page(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval,
    server: SurveyApiServer,
) -> None:
    settings = replace(settings, survey_api_url=server.url)
    whole = survey_api.extract_responses(contracts["survey"], settings, march_first, FAST)

    # pages of two, batches of three: every other batch boundary falls inside a page
    batches = list(survey_api.response_batches(contracts["survey"], settings, march_first, FAST,
                                               batch_rows=3))

    assert [len(batch.frame) for batch in batches] == [3, 3, 2]
    joined = pd.concat([batch.frame for batch in batches], ignore_index=True)
    pd.testing.assert_frame_equal(joined[whole.frame.columns], whole.frame)
    for batch in batches:
        assert set(batch.frame["_origin"]) <= set(batch.origins)
    assert list(dict.fromkeys(o for batch in batches for o in batch.origins)) == whole.origins
    # _origin and _row name the page and the position on it, read back from the API itself
    with httpx.Client(base_url=server.url, headers={"x-api-key": settings.survey_api_key}) as client:
        for submission_id, origin, row in joined[["id", "_origin", "_row"]].itertuples(index=False):
            page = client.get(origin.replace("[", "%5B").replace("]", "%5D")).json()
            assert page["data"][row - 1]["id"] == submission_id


def test_extract_batches_reads_the_contract_options_and_yields_batches(
    contracts: dict[str, Contract], settings: Settings, march_first: Interval,
    server: SurveyApiServer,
) -> None:
    settings = replace(settings, survey_api_url=server.url)
    contract = replace(contracts["survey"], location={**contracts["survey"].location, "page_size": 3})

    batches = list(survey_api.extract_batches(contract, settings, march_first, batch_rows=5))

    assert [len(batch.frame) for batch in batches] == [5, 3]
    assert sorted((id_ for batch in batches for id_ in batch.frame["id"]), key=int) == [
        "2", "3", "4", "5", "6", "7", "8", "10"]
    assert all("page[size]=3" in origin for batch in batches for origin in batch.origins)
