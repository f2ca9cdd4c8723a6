"""Survey responses from a Touchpoints-shaped API (contract kind ``touchpoints_api``).

For each survey form of the catalog (``codes.<location["forms_from_catalog"]>`` of every
service, or an explicit ``location["forms"]`` list) the connector reads
``GET /forms/{uuid}/responses`` page by page (JSON:API: ``links.next`` until null,
checked against ``meta.total_pages``) and flattens each submission to ``id``,
``form_uuid`` and every attribute, values as text (``as_text``).

The API filters by whole days (``start_date``/``end_date``, inclusive, in the API's own
time zone), so the request covers the interval's UTC days plus ``date_margin_days`` on
each side and the connector keeps only submissions whose ``created_at`` lies in
[start, end). A submission without a readable ``created_at`` is kept, so validation
quarantines it rather than it vanishing. A submission repeated on two pages (the data
moved while paging) is kept once.

Errors: timeouts, network errors, HTTP 429 and 5xx are retried with exponential
backoff (``Retry-After`` honoured, capped) and end in ``SourceUnavailable``; 401/403
raise ``SourceAuthError`` at once; 404 (unknown form), redirects, other 4xx and pages
that are not Touchpoints JSON raise ``ContractError``. The API key travels only in the
``x-api-key`` header, is never sent to another host (redirects are not followed and a
``next`` link must stay on the API's host) and never appears in a message, log line
or ``_origin``. ``_origin`` is the page's path and query; ``_row`` the 1-based position
of the submission in that page.

Options (``ApiOptions``) come from the contract's location (same names) or, in tests,
from the caller: page size (default the API's maximum, 5000: fewest round trips),
timeout, attempts and backoff.

``extract_batches`` streams: pages are gathered into ``RawBatch``es of at most
``batch_rows`` submissions (a page may straddle two batches), so memory holds one page
and one batch. A page is parsed with the standard library's C decoder and turned into
columns an attribute at a time (``record_columns``), then into Arrow text; the cyclic
garbage collector is paused over each page, whose objects are freed by reference count.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import pyarrow as pa
import yaml
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from pipelines.contracts import Contract, ContractError
from pipelines.interval import Interval
from pipelines.settings import Settings
from pipelines.sources import BATCH_ROWS, RawBatch, SourceAuthError, SourceUnavailable
from pipelines.sources._common import (
    ARROW_TEXT,
    UNBOUNDED,
    TextBatches,
    as_text,
    collector_paused,
    one_batch,
    record_columns,
    source_column_names,
    text_array,
)
from pipelines.sources.seen_ids import SeenIds

log = logging.getLogger(__name__)

KEY_SETTING = "XOFLOW_SURVEY_API_KEY"
MAX_PAGE_SIZE = 5000
FORM_UUID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SECRET_QUERY_NAMES = re.compile(r"key|token|secret|password|signature", re.IGNORECASE)
DEFAULT_PORTS = {"http": 80, "https": 443}
TRANSIENT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class ApiOptions:
    """How hard and how fast to ask the API; tests shrink the waits."""

    page_size: int = MAX_PAGE_SIZE  # the API's cap: fewest round trips
    timeout_seconds: float = 30.0
    attempts: int = 5
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    date_margin_days: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, not {self.page_size}")
        if self.attempts < 1 or self.date_margin_days < 0:
            raise ValueError("attempts must be >= 1 and date_margin_days >= 0")

    @classmethod
    def from_location(cls, location: Mapping[str, Any]) -> ApiOptions:
        """Defaults, overridden by any option the contract's location sets."""
        overrides = {f.name: location[f.name] for f in fields(cls) if f.name in location}
        return replace(cls(), **overrides)


class _RetryableStatus(Exception):
    """An HTTP answer worth asking again (429, 5xx), with the server's Retry-After if any."""

    def __init__(self, status: int, where: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status} from {where}")
        self.status = status
        self.retry_after = retry_after


def extract(contract: Contract, settings: Settings, interval: Interval) -> RawBatch:
    """Every form's submissions created within the interval, flattened to text, in one batch."""
    return one_batch(contract.source, extract_batches(contract, settings, interval, batch_rows=UNBOUNDED))


def extract_batches(
    contract: Contract, settings: Settings, interval: Interval, batch_rows: int = BATCH_ROWS
) -> Iterator[RawBatch]:
    """``extract`` as batches of at most ``batch_rows`` submissions, read page by page."""
    return response_batches(
        contract, settings, interval, ApiOptions.from_location(contract.location), batch_rows
    )


def extract_responses(
    contract: Contract, settings: Settings, interval: Interval, options: ApiOptions
) -> RawBatch:
    """``extract`` with explicit options (page size, timeout, retry policy)."""
    return one_batch(contract.source, response_batches(contract, settings, interval, options, UNBOUNDED))


def response_batches(
    contract: Contract,
    settings: Settings,
    interval: Interval,
    options: ApiOptions,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[RawBatch]:
    """The submissions in batches: pages are gathered until ``batch_rows`` (a page may be split).

    Memory holds one page of parsed JSON and one batch of Arrow text, whatever the
    day's size, plus the ids already seen of the form being read (to drop repeats).
    """
    key = settings.survey_api_key
    if not key:
        raise SourceAuthError(f"{contract.source}: no survey API key; set {KEY_SETTING}")
    base_url = settings.survey_api_url.rstrip("/")
    api = _Api(contract.source, base_url, key, options)
    first_day = interval.days[0] - timedelta(days=options.date_margin_days)
    last_day = interval.days[-1] + timedelta(days=options.date_margin_days)

    batches = TextBatches(contract.source, source_column_names(contract), batch_rows)
    counts = _Counts()
    pages = 0
    with httpx.Client(
        headers={"x-api-key": key, "accept": "application/json"},
        timeout=options.timeout_seconds,
        follow_redirects=False,
    ) as client:
        for form in survey_forms(contract, settings):
            query = {
                "start_date": first_day.isoformat(),
                "end_date": last_day.isoformat(),
                "page[number]": 1,
                "page[size]": options.page_size,
            }
            seen = SeenIds()  # ids are per form: a repeat can only come from the same form

            def columns_of(origin: str, submissions: list[Any], form: str = form,
                           seen: SeenIds = seen) -> tuple[dict[str, Any], list[int]]:
                return _page_columns(contract.source, form, submissions, origin, interval, seen, counts)

            for origin, (columns, rows) in api.pages(client, f"/forms/{form}/responses", query,
                                                     columns_of):
                pages += 1
                if rows:
                    yield from batches.add(columns, origin=origin, rows=rows)
                else:
                    batches.note(origin)
    yield from batches.finish()
    log.info(
        "%s: %d submissions in %s from %d pages in %d batches (%d outside the interval, "
        "%d repeated, %d without a readable created_at)",
        contract.source, batches.rows, interval, pages, batches.batches, counts.outside,
        counts.repeated, counts.undated,
    )


@dataclass
class _Counts:
    """Submissions the API sent that the batch leaves out (or keeps undated), for the log."""

    outside: int = 0
    repeated: int = 0
    undated: int = 0


def survey_forms(contract: Contract, settings: Settings) -> list[str]:
    """The form uuids to read: the contract's own list, else every service's catalog code."""
    forms = contract.location.get("forms")
    if forms is None:
        code = contract.location.get("forms_from_catalog", "survey_form")
        catalog_path = Path(settings.schemas_dir) / "catalog.yaml"
        try:
            catalog = yaml.safe_load(catalog_path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ContractError(f"{contract.source}: cannot read {catalog_path}: {exc}") from None
        forms = [
            form
            for service in catalog.get("services") or []
            for form in (service.get("codes") or {}).get(code) or []
        ]
    forms = list(dict.fromkeys(str(form) for form in forms))
    if not forms:
        raise ContractError(f"{contract.source}: no survey forms configured")
    bad = [form for form in forms if not FORM_UUID.match(form)]
    if bad:
        raise ContractError(f"{contract.source}: not form uuids: {bad}")
    return forms


class _Api:
    """Paging, retries and status handling for one API, with secrets kept out of messages."""

    def __init__(self, source: str, base_url: str, key: str, options: ApiOptions) -> None:
        self.source = source
        self.base_url = base_url
        self.key = key
        self.options = options
        self.home = self.host_of(base_url)
        self.safe_base = self.safe(base_url)

    def pages(
        self,
        client: httpx.Client,
        path: str,
        query: dict[str, Any],
        convert: Callable[[str, list[Any]], Any] = lambda origin, data: data,
    ) -> Iterator[tuple[str, Any]]:
        """``(origin, convert(origin, submissions))`` per page, following ``links.next`` on the same host.

        The page is parsed and converted with the cyclic garbage collector paused, and
        nothing of the parsed JSON outlives that: its tens of thousands of containers are
        freed by reference count instead of being walked (and promoted) by collections.
        """
        url = f"{self.base_url}{path}?{urlencode(query)}"
        visited: set[str] = set()
        while True:
            visited.add(url)
            response = self.get(client, url)
            origin = self.origin(str(response.url))
            with collector_paused():
                data, next_url, current, total = self.parse_page(response, origin)
                converted = convert(origin, data)
                del data
            yield origin, converted
            if not next_url:
                if current < total:
                    raise ContractError(
                        f"{self.source}: {origin} is page {current} of {total} but has no next link"
                    )
                return
            if current >= total:
                log.warning("%s: %s is the last page (%d) yet links onward", self.source, origin,
                            total)
                return
            url = urljoin(str(response.url), next_url)
            if self.host_of(url) != self.home:
                raise ContractError(
                    f"{self.source}: next link of {origin} leaves {self.safe_base}; "
                    "not sending the API key there"
                )
            if url in visited:
                raise ContractError(f"{self.source}: next link of {origin} loops back")

    def get(self, client: httpx.Client, url: str) -> httpx.Response:
        """One GET, retried while the failure is transient; raises the pipeline's errors."""
        where = self.origin(url)
        retrying = Retrying(
            stop=stop_after_attempt(self.options.attempts),
            wait=self.wait,
            retry=retry_if_exception_type((*TRANSIENT_ERRORS, _RetryableStatus)),
            before_sleep=self.log_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = client.get(url)
                    if response.status_code == 429 or response.status_code >= 500:
                        raise _RetryableStatus(
                            response.status_code, where, _retry_after(response)
                        )
        except _RetryableStatus as exc:
            raise SourceUnavailable(
                f"{self.source}: {self.safe_base}{where} answered HTTP {exc.status} "
                f"{self.options.attempts} times"
            ) from None
        except TRANSIENT_ERRORS as exc:
            raise SourceUnavailable(
                f"{self.source}: cannot reach {self.safe_base} ({where}) after "
                f"{self.options.attempts} attempts: {type(exc).__name__}: {self.safe(str(exc))}"
            ) from None
        self.check_status(response, where)
        return response

    def check_status(self, response: httpx.Response, where: str) -> None:
        status = response.status_code
        if status in (401, 403):
            raise SourceAuthError(
                f"{self.source}: the survey API at {self.safe_base} refused the API key "
                f"(HTTP {status}); the key comes from {KEY_SETTING} (Settings.survey_api_key)"
            )
        if status == 404:
            raise ContractError(f"{self.source}: {where} not found (HTTP 404): unknown form?")
        if 300 <= status < 400:
            raise ContractError(
                f"{self.source}: {where} redirects (HTTP {status}); redirects are not followed "
                "so the API key stays with the configured host; fix XOFLOW_SURVEY_API_URL"
            )
        if status != 200:
            body = self.safe(response.text[:200])
            raise ContractError(f"{self.source}: {where} answered HTTP {status}: {body}")

    def parse_page(
        self, response: httpx.Response, origin: str
    ) -> tuple[list[Any], str | None, int, int]:
        """``(data, links.next, meta.current_page, meta.total_pages)`` of a JSON:API page."""
        try:
            body = json.loads(response.content)
            data = body["data"]
            next_url = (body.get("links") or {}).get("next")
            current = int(body["meta"]["current_page"])
            total = int(body["meta"]["total_pages"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ContractError(
                f"{self.source}: {origin} is not a Touchpoints page "
                "(needs data, links.next, meta.current_page and meta.total_pages)"
            ) from None
        if not isinstance(data, list) or not (next_url is None or isinstance(next_url, str)):
            raise ContractError(f"{self.source}: {origin}: data must be a list, next a URL")
        return data, next_url, current, total

    def wait(self, state: RetryCallState) -> float:
        """Exponential backoff with a little jitter, or the server's Retry-After (capped)."""
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _RetryableStatus) and error.retry_after is not None:
            return min(error.retry_after, self.options.max_backoff_seconds)
        backoff = wait_exponential(
            multiplier=self.options.backoff_seconds, max=self.options.max_backoff_seconds
        ) + wait_random(0, self.options.backoff_seconds / 2)
        return backoff(state)

    def log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        reason = f"{type(error).__name__}: {self.safe(str(error))}" if error else "no answer"
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s: attempt %d of %d failed (%s); retrying in %.2fs",
            self.source, state.attempt_number, self.options.attempts, reason, wait,
        )

    def origin(self, url: str) -> str:
        """The page's path and query, readable and without secrets."""
        parts = urlsplit(self.safe(url))
        return unquote(parts.path + (f"?{parts.query}" if parts.query else ""))

    def safe(self, text: str) -> str:
        """A URL or message fit for logs: no user info, no secret query values, no key."""
        if text.startswith(("http://", "https://")):
            parts = urlsplit(text)
            netloc = parts.netloc.rsplit("@", 1)[-1]
            query = [
                (name, "***" if SECRET_QUERY_NAMES.search(name) else value)
                for name, value in parse_qsl(parts.query, keep_blank_values=True)
            ]
            text = urlunsplit(
                (parts.scheme, netloc, parts.path, urlencode(query, safe="*"), parts.fragment)
            )
        return text.replace(self.key, "***") if self.key else text

    @staticmethod
    def host_of(url: str) -> tuple[str, str | None, int | None]:
        """Scheme, host and port (default ports spelled out) to compare origins."""
        parts = urlsplit(url)
        return parts.scheme, parts.hostname, parts.port or DEFAULT_PORTS.get(parts.scheme)


def _page_columns(
    source: str,
    form: str,
    submissions: list[Any],
    origin: str,
    interval: Interval,
    seen: SeenIds,
    counts: _Counts,
) -> tuple[dict[str, Any], list[int]]:
    """One page as Arrow text columns: ``id``, ``form_uuid``, every attribute; and the kept positions.

    Keeps the submissions created within the interval (or without a readable
    ``created_at``) that were not on an earlier page. Columns are built one attribute at
    a time over the page, not one record at a time: the per-record work is only the
    shape check and the interval filter.
    """
    ids: list[Any] = []
    kept: list[dict[str, Any]] = []
    rows: list[int] = []
    start, end = interval.start, interval.end
    for position, submission in enumerate(submissions, start=1):
        attributes = submission.get("attributes") if isinstance(submission, dict) else None
        if not isinstance(attributes, dict):
            raise ContractError(f"{source}: {origin} item {position} is not a submission object")
        received_id = submission.get("id")
        if received_id is None:
            raise ContractError(f"{source}: {origin} item {position} has no id")
        created_at = attributes.get("created_at")
        created = _timestamp(created_at if isinstance(created_at, str) else as_text(created_at))
        if created is None:
            counts.undated += 1
        elif not start <= created < end:
            counts.outside += 1
            continue
        ids.append(received_id if isinstance(received_id, str) else as_text(received_id))
        kept.append(attributes)
        rows.append(position)
    new = seen.keep_new(ids)
    if not new.all():
        counts.repeated += int((~new).sum())
        ids, kept, rows = ([item for item, keep in zip(items, new, strict=True) if keep]
                           for items in (ids, kept, rows))
    columns: dict[str, Any] = {"id": ids, "form_uuid": pa.repeat(pa.scalar(form, ARROW_TEXT), len(rows))}
    for name, values in record_columns(kept).items():
        columns.setdefault(name, values)  # ``id`` and ``form_uuid`` are the submission's own
    return {name: text_array(values) if isinstance(values, list | tuple) else values
            for name, values in columns.items()}, rows


def _timestamp(text: str | None) -> datetime | None:
    """An ISO 8601 instant (``Z`` or offset; naive means UTC), or ``None`` if unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a numeric ``Retry-After`` header (HTTP dates fall back to backoff)."""
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None
