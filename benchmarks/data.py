"""One nightly day of source data at a chosen size, written in the sources' own formats.

The demo world (``pipelines.demo``) is built for realism over weeks of history; a
benchmark needs one day with millions of rows, so this writes the same file formats
(the contracts in ``schemas/sources``) straight from numpy columns. About 0.5 % of
rows carry a fault so validation and quarantine do real work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
import yaml

from pipelines.demo.writers import cases_table
from pipelines.settings import REPO_ROOT, Settings

BAD_SHARE = 0.005


@dataclass(frozen=True)
class Size:
    contacts: int
    survey_responses: int
    case_updates: int

    @property
    def feedback(self) -> int:
        return max(self.contacts // 16, 10)

    @property
    def web_pages(self) -> int:
        return max(self.contacts // 5000, 14)

    def scaled(self, factor: float) -> Size:
        return Size(*(max(int(v * factor), 10) for v in (self.contacts, self.survey_responses,
                                                          self.case_updates)))


SIZES = {
    "default": Size(contacts=5_000_000, survey_responses=1_000_000, case_updates=500_000),
    "smoke": Size(contacts=5_000, survey_responses=1_000, case_updates=500),
}


def _catalog() -> dict:
    return yaml.safe_load((REPO_ROOT / "schemas" / "catalog.yaml").read_text())


def _pick(rng: np.random.Generator, values: list, n: int) -> np.ndarray:
    return np.asarray(values, dtype=object)[rng.integers(0, len(values), n)]


def _stamps(rng: np.random.Generator, day: date, n: int) -> np.ndarray:
    start = np.datetime64(datetime.combine(day, time()), "s")
    return start + rng.integers(0, 86_400, n).astype("timedelta64[s]")


def _iso(stamps: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(stamps, unit="s").astype(str), "Z")


def _spoil(rng: np.random.Generator, column: np.ndarray, bad_value: str) -> np.ndarray:
    column = column.astype(object)
    column[rng.random(len(column)) < BAD_SHARE / 3] = bad_value
    return column


def write_contacts(path: Path, day: date, n: int, rng: np.random.Generator, catalog: dict) -> Path:
    queues = [code for s in catalog["services"] for code in s["codes"]["queue"]]
    customers = rng.integers(1, max(n // 3, 2), n)
    abandoned = rng.random(n) < 0.07
    table = pa.table({
        "contact_id": _spoil(rng, np.char.add("K", np.arange(n).astype(str)), ""),
        "customer_ref": np.char.add("C", np.char.zfill(customers.astype(str), 8)),
        "case_number": np.char.add("FBA", np.char.zfill(rng.integers(0, 10**9, n).astype(str), 10)),
        "queue": _pick(rng, queues, n),
        "channel": _pick(rng, ["phone", "phone", "chat", "email"], n),
        "reason": _pick(rng, ["how_to_apply", "status_inquiry", "documents", "decision", "delivery",
                              "other"], n),
        "start_time": _spoil(rng, _iso(_stamps(rng, day, n)), "not-a-time"),
        "wait_seconds": _spoil(rng, rng.integers(0, 1800, n).astype(str), "abc"),
        "handle_seconds": np.where(abandoned, 0, rng.integers(30, 1500, n)).astype(str),
        "resolved_first_contact": np.where(~abandoned & (rng.random(n) < 0.7), "true", "false"),
        "transferred": np.where(rng.random(n) < 0.12, "true", "false"),
        "abandoned": np.where(abandoned, "true", "false"),
        "customer_type": _pick(rng, ["individual", "individual", "business", "veteran"], n),
        "language": _pick(rng, ["en", "en", "en", "es", "zh", "vi"], n),
        "region": _pick(rng, ["northeast", "southeast", "midwest", "southwest", "west"], n),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(table, path)
    return path


def write_case_db(url: str, day: date, n: int, rng: np.random.Generator, catalog: dict) -> None:
    """Cases updated during ``day``: received earlier or today, some decided today."""
    forms = [(code, s["standard_days"]) for s in catalog["services"] for code in s["codes"]["form_type"]]
    form_index = rng.integers(0, len(forms), n)
    updated = _stamps(rng, day, n)
    age_days = rng.integers(0, 200, n).astype("timedelta64[D]")
    received = updated - age_days
    decided = rng.random(n) < 0.4
    status = np.where(decided, np.where(rng.random(n) < 0.9, "approved", "denied"),
                      np.where(age_days > np.timedelta64(3, "D"), "in_process", "received"))
    channel = _spoil(rng, _pick(rng, ["online", "paper", "in_person"], n), "fax")
    rows = [{
        "case_number": f"FBA{i:010d}", "form_type": forms[f][0], "product_line": "initial",
        "office": f"office_{i % 40:02d}", "channel": ch, "customer_ref": f"C{i % 10**8:08d}",
        "customer_type": "individual", "language": "en", "region": "west",
        "received_at": r.astype(datetime), "decided_at": u.astype(datetime) if d else None,
        "status": s, "updated_at": u.astype(datetime),
    } for i, (f, ch, r, u, d, s) in enumerate(zip(form_index, channel, received, updated, decided, status,
                                                   strict=True))]
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    table = cases_table(metadata)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with engine.begin() as conn:
        for start in range(0, n, 50_000):
            conn.execute(table.insert(), rows[start:start + 50_000])
    engine.dispose()


def write_survey_store(path: Path, day: date, n: int, rng: np.random.Generator, catalog: dict) -> Path:
    forms = [code for s in catalog["services"] for code in s["codes"]["survey_form"]]
    created = _iso(_stamps(rng, day, n))
    scores = rng.integers(1, 6, (n, 8)).astype(str).astype(object)
    scores[rng.random(n) < BAD_SHARE, 1] = "9"
    form = _pick(rng, forms, n)
    order = np.argsort(created, kind="stable")
    records = []
    for i in order:
        answers = {f"answer_{k + 1:02d}": scores[i, k] for k in range(8)}
        answers.update(answer_09="Waited too long for a decision." if i % 7 == 0 else None,
                       answer_10=f"FBA{i:010d}", answer_11="online", answer_12="individual",
                       answer_13="west")
        records.append({"id": f"{i + 1:010d}", "form_uuid": form[i], "attributes": {
            "created_at": created[i][:-1] + ".000Z", "updated_at": created[i][:-1] + ".000Z",
            "language": "en", "aasm_state": "received", **answers}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records))
    return path


def write_feedback(path: Path, day: date, n: int, rng: np.random.Generator, catalog: dict) -> Path:
    hints = [h for s in catalog["services"] for h in s["codes"]["feedback_hint"]] + [None]
    stamps = _iso(_stamps(rng, day, n))
    channel = _spoil(rng, _pick(rng, ["app_review", "email", "social"], n), "fax")
    hint = _pick(rng, hints, n)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for i in range(n):
            out.write(json.dumps({
                "feedback_id": f"F{i:09d}", "channel": channel[i], "received_at": stamps[i],
                "service_hint": hint[i], "rating": int(i % 5) + 1 if channel[i] == "app_review" else None,
                "text": "The status page never updates." if i % 3 else "Quick and easy, thank you.",
                "language": "en", "customer_type": "individual", "region": "west"}) + "\n")
    return path


def write_web(path: Path, day: date, pages: int, rng: np.random.Generator, catalog: dict) -> Path:
    prefixes = [p for s in catalog["services"] for p in s["codes"]["web_path"]]
    suffixes = list(catalog["web_path_stage"])
    rows = []
    for i in range(pages):
        path_name = prefixes[i % len(prefixes)] + suffixes[(i // len(prefixes)) % len(suffixes)]
        if i >= len(prefixes) * len(suffixes):
            path_name += f"/p{i}"
        sessions = int(rng.integers(10, 5000))
        rows.append({"date": day.isoformat(), "page_path": path_name, "sessions": sessions,
                     "task_starts": sessions // 2, "task_completions": sessions // 3, "status_checks": 0})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"date": day.isoformat(), "property": "bench", "rows": rows}))
    return path


@dataclass(frozen=True)
class BenchDay:
    day: date
    size: Size
    contacts_csv: Path
    feedback_jsonl: Path
    web_json: Path
    survey_store: Path

    @property
    def interval(self) -> tuple[datetime, datetime]:
        start = datetime.combine(self.day, time(), tzinfo=UTC)
        return start, start + timedelta(days=1)


def generate(settings: Settings, day: date, size: Size, seed: int = 1) -> BenchDay:
    catalog = _catalog()
    rng = np.random.default_rng(seed)
    land = settings.landing_dir
    stamp = day.isoformat()
    contacts = write_contacts(land / "contact_center" / f"contacts_{stamp}.csv", day, size.contacts, rng,
                              catalog)
    feedback = write_feedback(land / "feedback" / f"feedback_{stamp}.jsonl", day, size.feedback, rng, catalog)
    web = write_web(land / "web_analytics" / f"web_{stamp}.json", day, size.web_pages, rng, catalog)
    survey = write_survey_store(land / "survey" / "responses.json", day, size.survey_responses, rng, catalog)
    Path(settings.case_db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    write_case_db(settings.case_db_url, day, size.case_updates, rng, catalog)
    return BenchDay(day, size, contacts, feedback, web, survey)
