"""The demo Touchpoints API: page shape, parameters, key check and live store reloads."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipelines.demo.survey_api_server import SurveyApiServer, write_store

KEY = "server-test-key"


def submission(number: int, created_at: str, form: str = "a1b2c3d4") -> dict:
    return {"id": str(number), "form_uuid": form,
            "attributes": {"created_at": created_at, "answer_01": "5"}}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "responses.json"
    # ids out of order and past 9, to see numeric ordering
    write_store(path, [
        submission(10, "2026-03-02T08:00:00.000Z"),
        submission(2, "2026-03-01T00:00:00.000Z"),
        submission(9, "2026-03-01T23:59:59.000Z"),
        submission(1, "2026-02-28T23:59:59.000Z"),
        submission(3, "2026-03-01T12:00:00.000Z", form="b2c3d4e5"),
    ])
    return path


@pytest.fixture
def api(store: Path) -> Iterator[tuple[SurveyApiServer, httpx.Client]]:
    with SurveyApiServer(store, KEY, forms=["a1b2c3d4", "b2c3d4e5", "c3d4e5f6"]) as server, \
            httpx.Client(base_url=server.url, headers={"x-api-key": KEY}) as client:
        yield server, client


def test_pages_follow_the_touchpoints_shape(api: tuple[SurveyApiServer, httpx.Client]) -> None:
    server, client = api

    body = client.get("/forms/a1b2c3d4/responses", params={"page[size]": 3}).json()

    assert [item["id"] for item in body["data"]] == ["1", "2", "9"]
    assert body["data"][0] == {"id": "1", "type": "submissions",
                               "attributes": {"created_at": "2026-02-28T23:59:59.000Z",
                                              "answer_01": "5"}}
    assert body["meta"] == {"current_page": 1, "page_size": 3, "total_pages": 2,
                            "total_count": 4}
    assert body["links"]["prev"] is None
    assert body["links"]["next"] == (
        f"{server.url}/forms/a1b2c3d4/responses?page%5Bnumber%5D=2&page%5Bsize%5D=3")
    last = client.get(body["links"]["next"]).json()
    assert [item["id"] for item in last["data"]] == ["10"] and last["links"]["next"] is None


def test_dates_are_inclusive_days_of_created_at(
    api: tuple[SurveyApiServer, httpx.Client],
) -> None:
    _, client = api
    params = {"start_date": "2026-03-01", "end_date": "2026-03-01"}

    body = client.get("/forms/a1b2c3d4/responses", params=params).json()

    assert [item["id"] for item in body["data"]] == ["2", "9"]
    assert "start_date=2026-03-01" in body["links"]["self"]


def test_page_size_defaults_to_500_and_is_capped_at_5000(
    api: tuple[SurveyApiServer, httpx.Client],
) -> None:
    _, client = api

    default = client.get("/forms/a1b2c3d4/responses").json()["meta"]["page_size"]
    capped = client.get("/forms/a1b2c3d4/responses", params={"page[size]": 9999}).json()

    assert default == 500 and capped["meta"]["page_size"] == 5000


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "nope"}])
def test_missing_or_wrong_key_is_401(
    api: tuple[SurveyApiServer, httpx.Client], headers: dict[str, str]
) -> None:
    server, _ = api

    response = httpx.get(f"{server.url}/forms/a1b2c3d4/responses", headers=headers)

    assert response.status_code == 401 and response.json()["errors"][0]["status"] == "401"


def test_unknown_form_is_404_and_a_known_form_without_responses_is_empty(
    api: tuple[SurveyApiServer, httpx.Client],
) -> None:
    _, client = api

    assert client.get("/forms/ffff0000/responses").status_code == 404
    empty = client.get("/forms/c3d4e5f6/responses").json()
    assert empty["data"] == [] and empty["meta"]["total_count"] == 0


@pytest.mark.parametrize("params", [{"page[size]": "0"}, {"page[number]": "x"},
                                    {"start_date": "03/01/2026"}, {"end_date": "2026-02-30"}])
def test_bad_parameters_are_400(
    api: tuple[SurveyApiServer, httpx.Client], params: dict[str, str]
) -> None:
    _, client = api

    assert client.get("/forms/a1b2c3d4/responses", params=params).status_code == 400


def test_the_store_is_reread_when_the_demo_advances_it(
    api: tuple[SurveyApiServer, httpx.Client], store: Path
) -> None:
    _, client = api
    assert client.get("/forms/b2c3d4e5/responses").json()["meta"]["total_count"] == 1

    write_store(store, [submission(3, "2026-03-01T12:00:00.000Z", form="b2c3d4e5"),
                        submission(4, "2026-03-02T12:00:00.000Z", form="b2c3d4e5")])

    assert client.get("/forms/b2c3d4e5/responses").json()["meta"]["total_count"] == 2


def test_a_half_written_store_is_503_until_it_parses(
    api: tuple[SurveyApiServer, httpx.Client], store: Path
) -> None:
    _, client = api
    complete = store.read_text()
    store.write_text(complete[: len(complete) // 2])

    assert client.get("/forms/a1b2c3d4/responses").status_code == 503

    store.write_text(complete)
    stat = store.stat()
    os.utime(store, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert client.get("/forms/a1b2c3d4/responses").status_code == 200


def test_injected_failures_come_first(store: Path) -> None:
    with SurveyApiServer(store, KEY, fail_first=2, fail_status=429) as server:
        statuses = [
            httpx.get(f"{server.url}/forms/a1b2c3d4/responses", headers={"x-api-key": KEY})
            .status_code for _ in range(3)
        ]

    assert statuses == [429, 429, 200]
