"""A Touchpoints-shaped survey API on loopback, so the survey connector talks real HTTP.

Serves ``GET /forms/{uuid}/responses`` the way the Touchpoints API v1 does (see
``/work/shared/reference/touchpoints/openapi.yml``): JSON:API pages
``{"data": [{"id", "type": "submissions", "attributes"}], "links": {self, first, prev,
next, last}, "meta": {current_page, page_size, total_pages, total_count}}``,
``page[number]`` (1-based), ``page[size]`` (default 500, larger values capped at 5000),
``start_date``/``end_date`` (``YYYY-MM-DD``, inclusive, on the UTC date of
``created_at``), submissions ordered by id. The key is checked in the ``x-api-key``
header: missing or wrong gives 401; an unknown form gives 404; a bad parameter 400.

The store is the JSON file the demo generator writes (``store_path(settings)``): a list
of ``{"id": str, "form_uuid": str, "attributes": {"created_at": "...Z", "answer_01":
..., ...}}``. It is re-read whenever its modification time or size changes, so the
demo can advance it day by day while the server runs; write it with ``write_store``
(atomic replace), otherwise a half-written file is answered with 503 until it parses.

Fault injection for tests (constructor options):

- ``fail_first=N``: answer the first N requests with ``fail_status`` (default 503,
  ``Retry-After: 0``) before any other check, as an overloaded gateway would.
- ``delay_seconds``: sleep this long before answering every request (timeouts).
- ``forms``: the form uuids the API knows (others get 404). Default ``None`` knows
  every form, so a form without responses yet is an empty list, not an error.

``request_count`` and ``requests`` (the last 1000 paths with queries, never headers)
let tests see what the client did. Run standalone with
``python -m pipelines.demo.survey_api_server --store PATH --port 8765``; the key is
read from ``XOFLOW_SURVEY_API_KEY`` (default ``demo-key``, as ``Settings``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hmac
import json
import logging
import math
import os
import re
import tempfile
import threading
import time
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, date, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson
import yaml

from pipelines.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 5000
MATCHING_CACHE = 64  # date ranges whose matching submissions are kept listed
RESPONSES_PATH = re.compile(r"^/forms/(?P<form>[A-Za-z0-9_-]+)/responses/?$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def store_path(settings: Settings) -> Path:
    """Where the demo generator writes the survey store and the server reads it."""
    return Path(settings.landing_dir) / "survey" / "responses.json"


def write_store(path: Path, submissions: Iterable[Mapping[str, Any]]) -> None:
    """Write the store atomically, so a running server never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False,
        encoding="utf-8",
    ) as handle:
        json.dump(list(submissions), handle, ensure_ascii=False)
    os.replace(handle.name, path)


class StoreNotReady(RuntimeError):
    """The store file exists but cannot be read as a list of submissions (yet)."""


class ResponseStore:
    """Submissions by form, ordered by id, re-read when the file changes.

    The submissions matching a date range are listed once per range and kept (not
    once per page request): paging through a range is then linear in its size.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._signature: tuple[int, int] | None = None
        self._by_form: dict[str, list[tuple[date | None, dict[str, Any]]]] = {}
        self._matching: dict[tuple[str, date | None, date | None], list[dict[str, Any]]] = {}

    def by_form(self) -> dict[str, list[tuple[date | None, dict[str, Any]]]]:
        """``{form: [(UTC date of created_at, submission), ...]}`` as of the file's last change."""
        with self._lock:
            return self._current()

    def matching(self, form: str, start: date | None, end: date | None) -> list[dict[str, Any]]:
        """The form's submissions whose ``created_at`` day lies in [start, end], by id."""
        with self._lock:
            by_form = self._current()
            key = (form, start, end)
            found = self._matching.get(key)
            if found is None:
                if len(self._matching) >= MATCHING_CACHE:
                    self._matching.clear()
                found = self._matching[key] = [
                    item for day, item in by_form.get(form, []) if _covers(start, end, day)
                ]
            return found

    def _current(self) -> dict[str, list[tuple[date | None, dict[str, Any]]]]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._signature, self._by_form, self._matching = None, {}, {}
            return self._by_form
        signature = (stat.st_mtime_ns, stat.st_size)
        if signature != self._signature:
            # Reading builds a container per submission, all kept and none cyclic: without
            # the cyclic collector's repeated walks over them the read takes half the time.
            collecting = gc.isenabled()
            gc.disable()
            try:
                self._by_form = self._load()
            finally:
                if collecting:
                    gc.enable()
            self._signature, self._matching = signature, {}
        return self._by_form

    def _load(self) -> dict[str, list[tuple[date | None, dict[str, Any]]]]:
        try:
            records = json.loads(self.path.read_bytes())
        except (OSError, ValueError) as exc:
            raise StoreNotReady(f"{self.path.name} is not readable JSON yet: {exc}") from None
        if not isinstance(records, list):
            raise StoreNotReady(f"{self.path.name} must hold a list of submissions")
        by_form: dict[str, list[tuple[date | None, dict[str, Any]]]] = {}
        for record in records:
            if not isinstance(record, dict) or "id" not in record or "form_uuid" not in record:
                raise StoreNotReady(f"{self.path.name}: every submission needs id and form_uuid")
            attributes = dict(record.get("attributes") or {})
            submission = {"id": str(record["id"]), "type": "submissions", "attributes": attributes}
            by_form.setdefault(str(record["form_uuid"]), []).append(
                (_utc_date(attributes.get("created_at")), submission)
            )
        for submissions in by_form.values():
            submissions.sort(key=lambda item: _id_order(item[1]["id"]))
        return by_form


class SurveyApiServer:
    """The demo Touchpoints API in a background thread; use as a context manager."""

    def __init__(
        self,
        store_path: Path | str,
        api_key: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        forms: Collection[str] | None = None,
        fail_first: int = 0,
        fail_status: int = 503,
        delay_seconds: float = 0.0,
    ) -> None:
        if not api_key:
            raise ValueError("the survey API server needs an API key")
        self.store = ResponseStore(Path(store_path))
        self.api_key = api_key
        self.host = host
        self.port = port
        self.forms = frozenset(forms) if forms is not None else None
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.delay_seconds = delay_seconds
        self.requests: deque[str] = deque(maxlen=1000)
        self._requests_served = 0
        self._count_lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` once started (the port is chosen by the OS when 0)."""
        if self._httpd is None:
            raise RuntimeError("the survey API server is not started")
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    @property
    def request_count(self) -> int:
        """Requests received since start, failed and refused ones included."""
        return self._requests_served

    def start(self) -> SurveyApiServer:
        httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        httpd.daemon_threads = True
        httpd.api = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
            name="survey-api-server", daemon=True,
        )
        self._thread.start()
        log.info("survey API serving %s at %s", self.store.path, self.url)
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the command-line entry point)."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout=0.5)
        finally:
            self.stop()

    def __enter__(self) -> SurveyApiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _count(self, path: str) -> int:
        with self._count_lock:
            self.requests.append(path)
            self._requests_served += 1
            return self._requests_served

    def answer(self, path: str, headers: Mapping[str, str]) -> tuple[int, bytes, dict]:
        """``(status, JSON body, extra headers)`` for one GET."""
        number = self._count(path)
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if number <= self.fail_first:
            return self.fail_status, _errors(self.fail_status, "injected failure"), {
                "Retry-After": "0"
            }
        given = headers.get("x-api-key") or ""
        if not hmac.compare_digest(given.encode(), self.api_key.encode()):
            return 401, _errors(401, "missing or invalid x-api-key header"), {}
        parts = urlsplit(path)
        route = RESPONSES_PATH.match(parts.path)
        if route is None:
            return 404, _errors(404, "no such endpoint"), {}
        form = route["form"]
        try:
            self.store.by_form()
        except StoreNotReady as exc:
            return 503, _errors(503, str(exc)), {"Retry-After": "1"}
        if self.forms is not None and form not in self.forms:
            return 404, _errors(404, f"form {form} not found"), {}
        try:
            query = _Query.parse(parts.query)
        except ValueError as exc:
            return 400, _errors(400, str(exc)), {}
        try:
            matching = self.store.matching(form, query.start, query.end)
        except StoreNotReady as exc:  # replaced again between the two reads
            return 503, _errors(503, str(exc)), {"Retry-After": "1"}
        return 200, self._page(parts.path, matching, query), {}

    def _page(self, path: str, matching: list[dict[str, Any]], query: _Query) -> bytes:
        """The page as JSON (encoded in one call: the page, not the store, is what costs)."""
        total_pages = max(1, math.ceil(len(matching) / query.size))
        first = (query.number - 1) * query.size

        def link(number: int) -> str:
            return f"{self.url}{path}?{urlencode(query.params(number))}"

        return _dumps({
            "data": matching[first : first + query.size],
            "links": {
                "self": link(query.number),
                "first": link(1),
                "prev": link(query.number - 1) if 1 < query.number <= total_pages + 1 else None,
                "next": link(query.number + 1) if query.number < total_pages else None,
                "last": link(total_pages),
            },
            "meta": {
                "current_page": query.number,
                "page_size": query.size,
                "total_pages": total_pages,
                "total_count": len(matching),
            },
        })


class _Query:
    """The query parameters of ``/forms/{uuid}/responses``, checked."""

    def __init__(self, number: int, size: int, start: date | None, end: date | None) -> None:
        self.number, self.size, self.start, self.end = number, size, start, end

    @classmethod
    def parse(cls, raw: str) -> _Query:
        values = {name: found[-1] for name, found in parse_qs(raw, keep_blank_values=True).items()}
        number = _positive(values.get("page[number]"), "page[number]", default=1)
        size = min(_positive(values.get("page[size]"), "page[size]", DEFAULT_PAGE_SIZE),
                   MAX_PAGE_SIZE)
        return cls(number, size, _day(values.get("start_date"), "start_date"),
                   _day(values.get("end_date"), "end_date"))

    def params(self, number: int) -> dict[str, str]:
        params = {"page[number]": str(number), "page[size]": str(self.size)}
        if self.start is not None:
            params["start_date"] = self.start.isoformat()
        if self.end is not None:
            params["end_date"] = self.end.isoformat()
        return params


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms ACK stall
    server_version = "xoflow-demo-touchpoints/1"

    def do_GET(self) -> None:
        api: SurveyApiServer = self.server.api  # type: ignore[attr-defined]
        status, payload, headers = api.answer(self.path, self.headers)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout test, say): nothing left to answer.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        # The request line only: headers (and with them the key) are never logged.
        log.debug("survey API %s: " + format, self.address_string(), *args)


def _errors(status: int, detail: str) -> bytes:
    return _dumps({"errors": [{"status": str(status), "title": HTTPStatus(status).phrase,
                               "detail": detail}]})


def _dumps(value: Any) -> bytes:
    """JSON bytes: orjson's (fast), or the standard library's for what orjson refuses (huge integers)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False).encode()


def _covers(start: date | None, end: date | None, day: date | None) -> bool:
    """Whether a ``created_at`` day lies in the inclusive range (no range: every submission)."""
    if start is None and end is None:
        return True
    if day is None:
        return False
    return (start is None or day >= start) and (end is None or day <= end)


def _positive(text: str | None, name: str, default: int) -> int:
    if text is None or text == "":
        return default
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{name} must be a positive integer")
    return int(text)


def _day(text: str | None, name: str) -> date | None:
    if text is None or text == "":
        return None
    if not ISO_DATE.match(text):
        raise ValueError(f"{name} must be YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} must be a real date, YYYY-MM-DD") from None


def _utc_date(created_at: Any) -> date | None:
    try:
        moment = datetime.fromisoformat(str(created_at))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).date()


def _id_order(submission_id: str) -> tuple[int, int, str]:
    """Numeric ids in number order (as Touchpoints' integer ids), then any others."""
    if submission_id.isdigit():
        return 0, int(submission_id), ""
    return 1, 0, submission_id


def _catalog_forms(catalog: Path) -> list[str]:
    services = (yaml.safe_load(catalog.read_text()) or {}).get("services") or []
    return [form for service in services for form in service["codes"].get("survey_form", [])]


def main(argv: list[str] | None = None) -> None:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=store_path(settings))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--catalog", type=Path, default=Path(settings.schemas_dir) / "catalog.yaml",
        help="serve the catalog's survey forms (404 for others, even before any response)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    forms = _catalog_forms(args.catalog) if args.catalog.is_file() else None
    server = SurveyApiServer(
        args.store, settings.survey_api_key, host=args.host, port=args.port, forms=forms
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
