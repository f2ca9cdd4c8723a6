"""The demo agency's world: every case, contact, survey answer, page view and review.

Everything is generated from ``(seed, day, source)`` with its own random stream
(``numpy.random.default_rng([seed, day.toordinal(), stream])``), so a day's data never
depends on which range was asked for: the world for days 1-10 and the world for days
5-6 hold identical data for day 5. A day that needs older data (a contact about an
open case, a survey about a decision) reads cases received in a fixed window before
it, and the world always generates cases from ``CASE_LEAD_DAYS`` before its start.

The relationships a real analysis should find are planted on purpose and their
parameters are the constants below, so that tests can reason about them:

* cycle times are lognormal around each service's ``standard_days``
  (``ServiceProfile.cycle_median_ratio``, ``cycle_sigma``), capped at ``MAX_CYCLE_DAYS``;
* survey scores fall when the surveyed case ran over its standard (``SCORE_MEANS``);
* services without online status draw more contacts per open case, more status
  inquiries and more repeat contacts (``OPEN_CASE_CONTACT_WEIGHT``,
  ``STATUS_INQUIRY_SHARE``, ``REPEAT_PROB``);
* first-contact resolution varies by service and falls on transfer.

Every day also gets a few bad rows of known kinds (``planted_bad_rows``) and a few
valid rows whose code maps to no service (``unmapped_rows``).

All timestamps are UTC. A moment ``as_of`` sees what happened strictly before it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from pipelines.settings import REPO_ROOT

DEFAULT_SEED = 7
SOURCES = ("case_db", "contact_center", "survey", "web_analytics", "feedback")

# Random streams: one per (seed, day, stream), see the module docstring.
_CUSTOMERS, _CASES, _CONTACTS, _CONTACT_DAY, _SURVEY, _WEB, _FEEDBACK = range(7)
_CONTACT_NOTES = 7  # its own stream: adding notes changed no other value of the world

# --- cases -----------------------------------------------------------------------------
CASE_LEAD_DAYS = 210  # cases are generated from this many days before the world's start
MAX_CYCLE_DAYS = 180  # no case takes longer, so every decision in the window has its case
CASE_CHANNELS = ("online", "paper", "in_person")
CHANNEL_CYCLE_FACTOR = {"online": 0.95, "paper": 1.15, "in_person": 1.0}
IN_PROCESS_DAYS = (1, 14)  # days from receipt to in_process (inclusive range)
WITHDRAWN_RATE = 0.03  # withdrawn cases have no decided_at: they were never decided
N_CUSTOMERS = 250_000
CUSTOMER_TYPES = ("individual", "business", "veteran")
CUSTOMER_TYPE_SHARE = (0.80, 0.08, 0.12)
LANGUAGES = ("en", "es", "zh", "vi", "fr", "ko")
LANGUAGE_SHARE = (0.80, 0.14, 0.02, 0.02, 0.01, 0.01)
REGIONS = ("northeast", "southeast", "midwest", "southwest", "west")
REGION_SHARE = (0.22, 0.24, 0.18, 0.16, 0.20)
OFFICES = {
    "northeast": ("BOS", "NYC"),
    "southeast": ("ATL", "MIA"),
    "midwest": ("CHI", "DET"),
    "southwest": ("DAL", "PHX"),
    "west": ("SFR", "SEA"),
}

# --- surveys ---------------------------------------------------------------------------
SURVEY_RESPONSE_RATE = 0.38  # share of decided (approved/denied) cases with a response
SURVEY_DELAY_DAYS = 3.0  # responses arrive 0-3 days after the decision
SURVEY_ITEMS = (
    "trust", "satisfaction", "effectiveness", "ease",
    "efficiency", "transparency", "humanity", "employee",
)
# Latent means (on time, over standard) before person/item noise, rounding and clipping
# to 1..5; they give observed satisfaction means near 4.1 on time and 2.6 over.
SCORE_MEANS = {
    "trust": (4.3, 2.9),
    "satisfaction": (4.3, 2.7),
    "effectiveness": (4.4, 3.3),
    "ease": (4.2, 3.3),
    "efficiency": (4.3, 2.1),
    "transparency": (4.3, 3.4),
    "humanity": (4.6, 3.9),
    "employee": (4.5, 3.7),
}
DENIED_SCORE_SHIFT = -0.6
SCORE_PERSON_SD = 0.7
SCORE_ITEM_SD = 0.55
COMMENT_RATE = 0.45
PII_RATE = 0.05  # share of free texts that carry a phone number, e-mail or name

# --- contacts --------------------------------------------------------------------------
CONTACT_LOOKBACK_DAYS = 200  # contacts are about cases received at most this long ago
RECENTLY_CLOSED_DAYS = 30  # closed cases still draw contacts (decision, delivery) this long
PROSPECT_SHARE = 0.15  # contacts from people without a case (how to apply)
# Weight of an open case in the draw of who calls, by the service's online_status.
OPEN_CASE_CONTACT_WEIGHT = {True: 1.0, False: 2.5}
OVERDUE_CONTACT_FACTOR = 2.0  # open cases already past their standard call twice as often
CLOSED_CASE_CONTACT_WEIGHT = 0.5
# Share of contacts about an open case that ask for its status, by online_status.
STATUS_INQUIRY_SHARE = {True: 0.30, False: 0.65}
# Chance a contact is followed by another from the same customer 1-6 days later.
REPEAT_PROB = {True: 0.06, False: 0.22}
REPEAT_PROB_UNRESOLVED_BONUS = 0.15
REPEAT_DAYS = (1, 6)  # always less than 7 days later
CONTACT_CHANNELS = ("phone", "chat", "email")
CONTACT_CHANNEL_SHARE = (0.70, 0.20, 0.10)
TRANSFER_RATE = 0.12
TRANSFER_RESOLUTION_FACTOR = 0.45  # transferred contacts are resolved this much less often
ABANDON_RATE = {"phone": 0.07, "chat": 0.04, "email": 0.0}
RECORDS_CASE_NUMBER = 0.9  # share of case contacts where the agent recorded the case
UNMAPPED_QUEUE = "LEGACY"

# --- web and feedback ------------------------------------------------------------------
WEB_PROPERTY = "fba.example.gov"
UNMAPPED_WEB_PATH = "/help"
STATUS_CHECKS_PER_OPEN_CASE = 0.12  # daily online status checks per open case
FEEDBACK_CHANNELS = ("app_review", "email", "social")
FEEDBACK_CHANNEL_SHARE = (0.45, 0.30, 0.25)
NULL_HINT_RATE = {"app_review": 0.03, "email": 0.10, "social": 0.25}
UNMAPPED_HINT = "unknown app"
FEEDBACK_KNOWN_CUSTOMER = 0.6

# --- planted bad rows: (kind, column) per source, planted once each per day --------------
BAD_ROW_KINDS = {
    "case_db": (("bad_channel", "channel"), ("missing_form_type", "form_type")),
    "contact_center": (
        ("unparseable_timestamp", "start_time"),
        ("non_integer", "wait_seconds"),
        ("missing_key", "contact_id"),
    ),
    "survey": (("out_of_range_score", "satisfaction"), ("missing_external_id", "external_id")),
    "web_analytics": (("negative_value", "sessions"),),
    "feedback": (("empty_text", "text"), ("bad_channel", "channel")),
}
BAD_ROWS_PER_KIND = {"contact_center": 2}  # others: 1 per kind per day
BAD_CHANNEL = "fax"
BAD_SCORES = ("0", "7", "8", "9")
UNMAPPED_ROWS_PER_DAY = {"contact_center": 2, "feedback": 1, "web_analytics": 1}


@dataclass(frozen=True)
class ServiceProfile:
    """How one service behaves; the catalog gives its standard and online status."""

    share: float  # share of cases received
    cycle_median_ratio: float  # median cycle time / standard_days (before the channel factor)
    cycle_sigma: float  # lognormal sigma of cycle time
    channel_mix: tuple[float, float, float]  # online, paper, in_person
    approval_rate: float  # of decided cases
    first_contact_resolution: float  # of answered, not transferred contacts
    phone_wait_median: float  # seconds
    score_shift: float  # added to every latent survey score
    feedback_negative: float  # share of unsolicited feedback that is negative
    product_lines: tuple[str, ...]


SERVICE_PROFILES: dict[str, ServiceProfile] = {
    "naturalization": ServiceProfile(
        0.26, 0.80, 0.30, (0.50, 0.42, 0.08), 0.88, 0.74, 240, 0.0, 0.45,
        ("initial", "military", "fee_waiver"),
    ),
    "work_permit": ServiceProfile(
        0.24, 0.79, 0.35, (0.60, 0.35, 0.05), 0.90, 0.58, 420, -0.2, 0.65,
        ("initial", "renewal", "replacement"),
    ),
    "veteran_pension": ServiceProfile(
        0.12, 0.76, 0.32, (0.30, 0.50, 0.20), 0.80, 0.66, 300, 0.1, 0.50,
        ("initial", "survivor"),
    ),
    "card_renewal": ServiceProfile(
        0.24, 0.75, 0.38, (0.70, 0.25, 0.05), 0.95, 0.80, 180, 0.0, 0.35,
        ("renewal", "replacement"),
    ),
    "travel_document": ServiceProfile(
        0.14, 0.72, 0.40, (0.55, 0.35, 0.10), 0.93, 0.82, 150, 0.1, 0.35,
        ("replacement", "reentry_permit"),
    ),
}


@dataclass(frozen=True)
class Volumes:
    """Rows per day (inclusive ranges); surveys follow from cases and SURVEY_RESPONSE_RATE."""

    cases: tuple[int, int] = (150, 250)
    contacts: tuple[int, int] = (360, 600)  # first contacts; repeats add about 15 %
    feedback: tuple[int, int] = (20, 40)


# --- phrase banks (small, combined for variety) ---------------------------------------
WAIT_PHRASES = (
    "It took far too long to get a decision.",
    "I waited months and nobody could tell me the status of my case.",
    "Checking the status was impossible, I had to call again and again.",
    "The wait was much longer than the processing time posted on the website.",
    "My case sat in processing for months without any update.",
    "Nobody answered when I asked about the status of my case.",
    "Too slow. I almost lost my job waiting for this.",
    "The processing time was unacceptable and the status page never changed.",
)
POSITIVE_PHRASES = (
    "Quick and easy, thank you.",
    "The process was clear and faster than I expected.",
    "Staff were helpful and respectful.",
    "Got my decision on time, great service.",
    "Simple online form, no problems at all.",
    "Everything was explained well.",
    "Much better than I feared, well done.",
    "The officer was kind and patient with my questions.",
)
MIXED_PHRASES = (
    "The form was confusing in places.",
    "The website was hard to navigate.",
    "I had to send the same documents twice.",
    "The instructions about fees were unclear.",
)
APP_NEGATIVE = (
    "App crashes when I upload documents.",
    "Cannot log in, the verification code never arrives.",
    "Useless app, it keeps logging me out.",
)
STATUS_NEGATIVE = (
    "There is no way to check my status online, I have to call every week.",
    "Still waiting after {months} months and no status update anywhere.",
    "Called three times about my case status and got three different answers.",
)
WAIT_NEGATIVE = (
    "Still waiting after {months} months, this is ridiculous.",
    "Way over the posted processing time. Nobody can tell me why.",
    "The wait is endless and the phone line is always busy.",
)
FEEDBACK_POSITIVE = (
    "Easy to use and my card arrived quickly.",
    "Great experience, the online form saved me a trip.",
    "Thank you to the staff who helped me, very professional.",
    "Fast decision, much appreciated.",
)
NOTE_RATE = 0.35  # share of contacts where the agent typed notes
NOTE_PHRASES = {
    "how_to_apply": ("Explained eligibility and the online form.", "Sent link to the application page."),
    "status_inquiry": ("Caller asked for status; case within posted processing time.",
                       "Status check, advised to use the online status tool."),
    "documents": ("Caller asked which evidence to upload.", "Explained how to send missing documents."),
    "decision": ("Explained the decision letter.", "Caller asked about appeal options."),
    "delivery": ("Card not received yet, address confirmed.", "Caller asked when the card will arrive."),
    "other": ("General question, answered.", "Transferred for a question outside our queue."),
}
FIRST_NAMES = ("Maria", "James", "Li", "Ahmed", "Olga", "Kwame", "Sofia", "Daniel")
LAST_NAMES = ("Garcia", "Smith", "Nguyen", "Khan", "Ivanova", "Mensah", "Rossi", "Cohen")


_CASE_TIMES = ("received_at", "in_process_at", "decided_at", "terminal_at", "response_at")


def _np_time(ts: pd.Timestamp) -> np.datetime64:
    """A UTC timestamp as naive numpy seconds, rounded up (case times are whole seconds)."""
    return np.datetime64(-(-ts.value // 1_000_000_000), "s")


def _utc(moment: datetime | pd.Timestamp) -> pd.Timestamp:
    """A moment as a UTC timestamp; naive moments are taken to be UTC already."""
    ts = pd.Timestamp(moment)
    return ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)


def day_start(day: date) -> pd.Timestamp:
    return pd.Timestamp(datetime.combine(day, time(), tzinfo=UTC))


def end_of_day(day: date) -> datetime:
    """The moment that sees all of ``day``: midnight UTC after it."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def _pick(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category per row from a (rows, k) array of probabilities."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), probs.shape[1] - 1)


def _seconds(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype="int64").astype("timedelta64[s]")


def _iso(ts: pd.Series, millis: bool = False) -> pd.Series:
    fmt = "%Y-%m-%dT%H:%M:%S.000Z" if millis else "%Y-%m-%dT%H:%M:%SZ"
    return ts.dt.strftime(fmt)


class DemoWorld:
    """The fictional agency between ``start`` and ``end`` (inclusive days of activity).

    ``cases`` holds every case's full timeline (also events after ``end``); the other
    sources are per day (``contacts(day)``, ``survey_responses(day)``, ``web_rows(day)``,
    ``feedback(day)``) as typed truth with extra columns, and as the exact records the
    writers put on disk (``contact_rows``, ``survey_records``, ``web_document``,
    ``feedback_records``), which include the planted faults.
    """

    def __init__(
        self,
        seed: int,
        start: date,
        end: date,
        volumes: Volumes | None = None,
        schemas_dir: Path | None = None,
    ) -> None:
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        self.seed = int(seed)
        self.start = start
        self.end = end
        self.volumes = volumes or Volumes()
        self.schemas_dir = Path(schemas_dir or REPO_ROOT / "schemas")
        self.catalog = yaml.safe_load((self.schemas_dir / "catalog.yaml").read_text())
        self._load_services()
        self._cache: dict[Any, Any] = {}
        self._customers = self._make_customers()
        self.cases = self._make_cases()

    # --- catalog -----------------------------------------------------------------------
    def _load_services(self) -> None:
        journeys = {j["journey_id"]: j for j in self.catalog["journeys"]}
        stage_path = {stage: path for path, stage in self.catalog["web_path_stage"].items()}
        self.services: list[dict[str, Any]] = []
        for svc in self.catalog["services"]:
            sid = svc["service_id"]
            if sid not in SERVICE_PROFILES:
                raise KeyError(f"catalog service {sid!r} has no demo ServiceProfile")
            journey = journeys[svc["journey_id"]]
            codes = svc["codes"]
            self.services.append(
                {
                    "service_id": sid,
                    "standard_days": int(svc["standard_days"]),
                    "online_status": bool(svc["online_status"]),
                    "form_type": codes["form_type"][0],
                    "queue": codes["queue"][0],
                    "survey_form": codes["survey_form"][0],
                    "web_path": codes["web_path"][0],
                    "feedback_hints": tuple(codes["feedback_hint"]),
                    "intake_page": stage_path[journey["case_received_stage"]],
                    "closing_page": stage_path[journey["case_decided_stage"]],
                    "status_page": stage_path["wait_and_track"],
                    "profile": SERVICE_PROFILES[sid],
                }
            )
        self.service_ids = [s["service_id"] for s in self.services]
        self._std = np.array([s["standard_days"] for s in self.services])
        self._online = np.array([s["online_status"] for s in self.services])
        shares = np.array([s["profile"].share for s in self.services])
        self._shares = shares / shares.sum()
        self._phone_wait = np.array([s["profile"].phone_wait_median for s in self.services])
        self._fcr = np.array([s["profile"].first_contact_resolution for s in self.services])

    def service(self, service_id: str) -> dict[str, Any]:
        return self.services[self.service_ids.index(service_id)]

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def _rng(self, day: date | None, stream: int) -> np.random.Generator:
        key = [self.seed, day.toordinal() if day else 0, stream]
        return np.random.default_rng(key)

    def _check_day(self, day: date) -> None:
        if not self.start <= day <= self.end:
            raise ValueError(f"{day} is outside the world's days {self.start}..{self.end}")

    def _cached(self, name: str, day: date, make: Callable[[date], Any]) -> Any:
        """Each day's data is made once per world (repeats read back up to 6 days)."""
        key = (name, day)
        if key not in self._cache:
            self._cache[key] = make(day)
        return self._cache[key]

    # --- customers ---------------------------------------------------------------------
    def _make_customers(self) -> dict[str, np.ndarray]:
        """A fixed pool: a customer's segment is the same in every source."""
        rng = self._rng(None, _CUSTOMERS)
        n = N_CUSTOMERS
        idx = np.arange(n, dtype="int64")
        refs = (idx * 48_271 + 10_315_237) % 100_000_000  # a bijection on 8 digits
        pool = {
            "customer_ref": np.array([f"C{r:08d}" for r in refs], dtype=object),
            "customer_type": np.array(CUSTOMER_TYPES, dtype=object)[
                rng.choice(3, n, p=CUSTOMER_TYPE_SHARE)
            ],
            "language": np.array(LANGUAGES, dtype=object)[
                rng.choice(len(LANGUAGES), n, p=LANGUAGE_SHARE)
            ],
            "region": np.array(REGIONS, dtype=object)[rng.choice(len(REGIONS), n, p=REGION_SHARE)],
        }
        self._veterans = np.flatnonzero(pool["customer_type"] == "veteran")
        return pool

    def customers(self) -> pd.DataFrame:
        """The customer pool (customer_ref, customer_type, language, region)."""
        return pd.DataFrame(self._customers)

    def _customer_columns(self, idx: np.ndarray, known: np.ndarray | None = None) -> dict:
        """Segment columns of customers ``idx`` (``None`` where not ``known``)."""
        out = {}
        for col, values in self._customers.items():
            picked = values[idx]
            if known is not None:
                picked = np.where(known, picked, None)
            out[col] = picked
        return out

    # --- cases -------------------------------------------------------------------------
    def _make_cases(self) -> pd.DataFrame:
        first = self.start - timedelta(days=CASE_LEAD_DAYS)
        days = [first + timedelta(days=i) for i in range((self.end - first).days + 1)]
        parts = [self._cases_received(d) for d in days]
        cx = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        self._cx = cx  # numpy columns for the hot paths; ``cases`` is the public view
        withdrawn = cx["outcome"] == "withdrawn"
        over = pd.array(cx["cycle_days"] > cx["standard_days"], dtype="boolean")
        over[withdrawn] = pd.NA
        cycle = pd.array(cx["cycle_days"], dtype="Int64")
        cycle[withdrawn] = pd.NA
        ts = {k: pd.to_datetime(cx[k]).tz_localize(UTC) for k in _CASE_TIMES}
        customers = self._customer_columns(cx["customer_idx"])
        return pd.DataFrame(
            {
                "case_number": cx["case_number"],
                "service_id": np.array(self.service_ids)[cx["svc"]],
                "form_type": cx["form_type"],
                "product_line": cx["product_line"],
                "office": cx["office"],
                "channel": cx["channel"],
                "true_channel": cx["true_channel"],
                "customer_idx": cx["customer_idx"],
                **customers,
                "received_at": ts["received_at"],
                "in_process_at": ts["in_process_at"],
                "decided_at": ts["decided_at"],
                "terminal_at": ts["terminal_at"],
                "outcome": cx["outcome"],
                "standard_days": cx["standard_days"],
                "cycle_days": cycle,
                "over_standard": over,
                "surveyed": cx["surveyed"],
                "response_at": ts["response_at"],
                "bad_kind": pd.Series(cx["bad_kind"], dtype=object),
            }
        )

    def _cases_received(self, day: date) -> dict[str, np.ndarray]:
        """Cases received on ``day`` with their whole future: depends on (seed, day) only."""
        rng = self._rng(day, _CASES)
        n = int(rng.integers(self.volumes.cases[0], self.volumes.cases[1] + 1))
        svc = rng.choice(len(self.services), n, p=self._shares)
        profiles = [self.services[i]["profile"] for i in svc]
        chan = _pick(rng, np.array([p.channel_mix for p in profiles]))
        channel = np.array(CASE_CHANNELS)[chan]
        # customers: veterans file the pension; anyone may file anything else
        cust = rng.integers(0, N_CUSTOMERS, n)
        vet_rows = np.array([self.service_ids[i] == "veteran_pension" for i in svc])
        cust[vet_rows] = self._veterans[rng.integers(0, len(self._veterans), n)][vet_rows]
        # receipt: online any time, paper and in person in office hours (13-22 UTC)
        office_secs = rng.integers(13 * 3600, 22 * 3600, n)
        any_secs = rng.integers(0, 86400, n)
        secs = np.where(channel == "online", any_secs, office_secs)
        base = np.datetime64(day.isoformat(), "s")
        received = base + _seconds(secs)
        # timeline in whole days after receipt, decisions in office hours
        inproc_days = rng.integers(IN_PROCESS_DAYS[0], IN_PROCESS_DAYS[1] + 1, n)
        inproc_days = inproc_days + np.where(channel == "paper", 4, 0)
        std = self._std[svc]
        ratio = np.array([p.cycle_median_ratio for p in profiles])
        sigma = np.array([p.cycle_sigma for p in profiles])
        factor = np.array([CHANNEL_CYCLE_FACTOR[c] for c in channel])
        cycle = np.rint(std * ratio * factor * np.exp(sigma * rng.standard_normal(n)))
        cycle = np.clip(cycle, inproc_days + 1, MAX_CYCLE_DAYS).astype("int64")
        # a decision exactly on the standard day is on time by any definition of "over"
        cycle = np.where(cycle == std, np.maximum(std - 1, inproc_days + 1), cycle)
        decide_secs = rng.integers(13 * 3600, 22 * 3600, n)
        decided = base + _seconds(cycle * 86400 + decide_secs)
        inproc_at = base + _seconds(inproc_days * 86400 + rng.integers(13 * 3600, 22 * 3600, n))
        u_outcome = rng.random(n)
        approve = np.array([p.approval_rate for p in profiles])
        withdrawn = u_outcome < WITHDRAWN_RATE
        approved = ~withdrawn & (rng.random(n) < approve)
        outcome = np.where(withdrawn, "withdrawn", np.where(approved, "approved", "denied"))
        withdraw_days = np.maximum(1, (rng.random(n) * cycle).astype("int64"))
        withdraw_at = base + _seconds(withdraw_days * 86400 + decide_secs)
        terminal = np.where(withdrawn, withdraw_at, decided)
        inproc_at = np.where(withdrawn & (withdraw_at <= inproc_at), np.datetime64("NaT"), inproc_at)
        decided = np.where(withdrawn, np.datetime64("NaT"), decided)
        surveyed = ~withdrawn & (rng.random(n) < SURVEY_RESPONSE_RATE)
        response_at = decided + _seconds(rng.integers(0, int(SURVEY_DELAY_DAYS * 86400), n))
        product = np.array(
            [p.product_lines[k % len(p.product_lines)] for p, k in
             zip(profiles, rng.integers(0, 1_000_000, n), strict=True)]
        )
        region = self._customers["region"][cust]
        office = np.array([OFFICES[r][k] for r, k in zip(region, rng.integers(0, 2, n), strict=True)])
        form_type = np.array([self.services[i]["form_type"] for i in svc], dtype=object)
        # planted faults: one case per kind per day, never surveyed
        bad_kind = np.full(n, None, dtype=object)
        bad_rows = rng.choice(n, size=len(BAD_ROW_KINDS["case_db"]), replace=False)
        for row, (kind, _column) in zip(bad_rows, BAD_ROW_KINDS["case_db"], strict=True):
            bad_kind[row] = kind
        written_channel = channel.astype(object)
        written_channel[bad_kind == "bad_channel"] = BAD_CHANNEL
        form_type[bad_kind == "missing_form_type"] = None
        surveyed = surveyed & np.array([k is None for k in bad_kind])
        offset = day.toordinal() - 700_000
        # receipt numbers are issued in order of receipt
        order = np.argsort(received, kind="stable")
        out = {
            "case_number": np.array([f"FBA{offset:05d}{i + 1:05d}" for i in range(n)], dtype=object),
            "svc": svc,
            "form_type": form_type,
            "product_line": product.astype(object),
            "office": office.astype(object),
            "channel": written_channel,
            "true_channel": channel.astype(object),
            "customer_idx": cust,
            "received_at": received,
            "in_process_at": inproc_at,
            "decided_at": decided,
            "terminal_at": terminal,
            "outcome": outcome.astype(object),
            "standard_days": std,
            "cycle_days": cycle,
            "surveyed": surveyed,
            "response_at": np.where(surveyed, response_at, np.datetime64("NaT")),
            "bad_kind": bad_kind,
        }
        return {k: v if k == "case_number" else v[order] for k, v in out.items()}

    def case_state(self, as_of: datetime) -> pd.DataFrame:
        """The ``cases`` table as the case system holds it at ``as_of`` (contract columns).

        Only cases received before ``as_of``; status, ``decided_at`` and ``updated_at``
        reflect the events before ``as_of`` only.
        """
        at = _utc(as_of)
        received = self._cx["received_at"]
        return self._state(self.cases.iloc[: np.searchsorted(received, _np_time(at))], at)

    @staticmethod
    def _state(c: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
        done = (c["terminal_at"] < at).to_numpy()
        started = (c["in_process_at"] < at).fillna(False).to_numpy()
        status = np.select([done, started], [c["outcome"].to_numpy(), "in_process"], "received")
        updated = c["received_at"].where(~started, c["in_process_at"])
        updated = updated.where(~done, c["terminal_at"])
        decided = c["decided_at"].where(done)
        return pd.DataFrame(
            {
                "case_number": c["case_number"],
                "form_type": c["form_type"],
                "product_line": c["product_line"],
                "office": c["office"],
                "channel": c["channel"],
                "customer_ref": c["customer_ref"],
                "customer_type": c["customer_type"],
                "language": c["language"],
                "region": c["region"],
                "received_at": c["received_at"],
                "decided_at": decided,
                "status": status,
                "updated_at": updated,
            }
        ).reset_index(drop=True)

    # --- contacts ----------------------------------------------------------------------
    def _contact_batch(self, day: date) -> dict[str, np.ndarray]:
        """First contacts on ``day`` plus their repeats on later days (column ``on_day``)."""
        rng = self._rng(day, _CONTACTS)
        d0 = _np_time(day_start(day))
        n = int(rng.integers(self.volumes.contacts[0], self.volumes.contacts[1] + 1))
        n_prospect = int(rng.binomial(n, PROSPECT_SHARE))
        n_case = n - n_prospect
        # who calls about a case: open cases (more for no online status, more when
        # overdue) and recently closed ones, received in a fixed window before the day
        cx = self._cx
        lo, hi = np.searchsorted(
            cx["received_at"], [d0 - np.timedelta64(CONTACT_LOOKBACK_DAYS, "D"), d0]
        )
        terminal = cx["terminal_at"][lo:hi]
        cand = lo + np.flatnonzero(terminal > d0 - np.timedelta64(RECENTLY_CLOSED_DAYS, "D"))
        svc_idx = cx["svc"][cand]
        is_open = cx["terminal_at"][cand] > d0
        age = (d0 - cx["received_at"][cand]) // np.timedelta64(1, "D")
        overdue = is_open & (age > self._std[svc_idx])
        w_open = np.where(self._online[svc_idx], OPEN_CASE_CONTACT_WEIGHT[True],
                          OPEN_CASE_CONTACT_WEIGHT[False])
        w = np.where(is_open, w_open * np.where(overdue, OVERDUE_CONTACT_FACTOR, 1.0),
                     CLOSED_CASE_CONTACT_WEIGHT)
        pick = rng.choice(len(cand), n_case, p=w / w.sum())
        chosen = cand[pick]
        c_svc = svc_idx[pick]
        c_open = is_open[pick]
        # reasons
        u = rng.random(n_case)
        p_status = np.where(self._online[c_svc], STATUS_INQUIRY_SHARE[True],
                            STATUS_INQUIRY_SHARE[False])
        open_reason = np.where(
            u < p_status, "status_inquiry",
            np.where(u < p_status + (1 - p_status) * 0.6, "documents", "other"),
        )
        decided_closed = cx["outcome"][chosen] != "withdrawn"
        closed_reason = np.where(
            decided_closed & (u < 0.45), "decision",
            np.where(decided_closed & (u < 0.80), "delivery", "other"),
        )
        case_reason = np.where(c_open, open_reason, closed_reason)
        recorded = rng.random(n_case) < RECORDS_CASE_NUMBER
        case_numbers = np.where(recorded, cx["case_number"][chosen], None)
        # prospects: anyone, asking how to apply
        p_svc = rng.choice(len(self.services), n_prospect, p=self._shares)
        p_cust = rng.integers(0, N_CUSTOMERS, n_prospect)
        p_reason = np.where(rng.random(n_prospect) < 0.85, "how_to_apply", "other")

        first = {
            "svc": np.concatenate([c_svc, p_svc]),
            "customer_idx": np.concatenate([cx["customer_idx"][chosen], p_cust]),
            "case_number": np.concatenate([case_numbers, np.full(n_prospect, None)]),
            "reason": np.concatenate([case_reason, p_reason]).astype(object),
            "channel": np.array(CONTACT_CHANNELS, dtype=object)[
                rng.choice(3, n, p=CONTACT_CHANNEL_SHARE)
            ],
        }
        first.update(self._contact_outcomes(rng, first["svc"], first["channel"], d0))
        first["on_day"] = np.full(n, 0)
        first["is_repeat"] = np.zeros(n, dtype=bool)
        # repeats: same customer, case, reason and channel 1-6 days later
        p_rep = np.where(self._online[first["svc"]], REPEAT_PROB[True], REPEAT_PROB[False])
        p_rep = p_rep + np.where(first["resolved_first_contact"], 0.0, REPEAT_PROB_UNRESOLVED_BONUS)
        repeat = rng.random(n) < p_rep
        later = rng.integers(REPEAT_DAYS[0], REPEAT_DAYS[1] + 1, n)[repeat]
        rep = {k: first[k][repeat] for k in ("svc", "customer_idx", "case_number", "reason",
                                             "channel")}
        rep.update(self._contact_outcomes(rng, rep["svc"], rep["channel"], d0))
        rep["start_time"] = rep["start_time"] + later.astype("timedelta64[D]")
        rep["on_day"] = later
        rep["is_repeat"] = np.ones(len(later), dtype=bool)
        out = {k: np.concatenate([first[k], rep[k]]) for k in first}
        out["on_day"] = day.toordinal() + out["on_day"]
        return out

    def _contact_outcomes(
        self, rng: np.random.Generator, svc: np.ndarray, channel: np.ndarray, d0: np.datetime64
    ) -> dict[str, np.ndarray]:
        """Time, wait, handling, transfer, abandonment and resolution of each contact."""
        n = len(svc)
        email = channel == "email"
        secs = np.where(email, rng.integers(0, 86400, n), rng.integers(12 * 3600, 23 * 3600, n))
        wait_median = np.where(channel == "phone", self._phone_wait[svc],
                               np.where(email, 4 * 3600, 90))
        wait = np.clip(wait_median * np.exp(0.8 * rng.standard_normal(n)), 0, 86400).astype(int)
        handle_median = np.where(channel == "chat", 720, np.where(email, 300, 480))
        handle = np.maximum(30, handle_median * np.exp(0.5 * rng.standard_normal(n))).astype(int)
        abandon_rate = np.select([channel == c for c in ABANDON_RATE], list(ABANDON_RATE.values()))
        p_abandon = abandon_rate * np.where(wait > 2 * wait_median, 2.0, 1.0)
        abandoned = rng.random(n) < p_abandon
        transferred = ~abandoned & (rng.random(n) < TRANSFER_RATE)
        fcr = self._fcr[svc]
        fcr = np.where(transferred, fcr * TRANSFER_RESOLUTION_FACTOR, fcr)
        resolved = ~abandoned & (rng.random(n) < fcr)
        return {
            "start_time": d0 + _seconds(secs),
            "wait_seconds": wait,
            "handle_seconds": np.where(abandoned, 0, handle),
            "resolved_first_contact": resolved,
            "transferred": transferred,
            "abandoned": abandoned,
        }

    def contacts(self, day: date) -> pd.DataFrame:
        """Contacts on ``day`` (typed truth, contract columns plus notes_pii, service_id,
        is_repeat, bad_kind, unmapped), in file order."""
        self._check_day(day)
        return self._cached("contacts", day, self._make_contacts)

    def _make_contacts(self, day: date) -> pd.DataFrame:
        parts = []
        for k in range(REPEAT_DAYS[1] + 1):
            batch = self._cached("contact_batch", day - timedelta(days=k), self._contact_batch)
            keep = batch["on_day"] == day.toordinal()
            parts.append({key: values[keep] for key, values in batch.items()})
        c = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        order = np.argsort(c["start_time"], kind="stable")
        c = {key: values[order] for key, values in c.items()}
        n = len(order)
        rng = self._rng(day, _CONTACT_DAY)
        kinds = [k for k, _ in BAD_ROW_KINDS["contact_center"]]
        per_kind = BAD_ROWS_PER_KIND.get("contact_center", 1)
        n_bad = len(kinds) * per_kind
        rows = rng.choice(n, size=n_bad + UNMAPPED_ROWS_PER_DAY["contact_center"], replace=False)
        bad_kind = np.full(n, None, dtype=object)
        bad_kind[rows[:n_bad]] = np.repeat(kinds, per_kind)
        unmapped = np.zeros(n, dtype=bool)
        unmapped[rows[n_bad:]] = True
        queues = np.array([s["queue"] for s in self.services], dtype=object)[c["svc"]]
        customers = self._customer_columns(c["customer_idx"])
        notes, notes_pii = self._notes(day, c["reason"], c["case_number"])
        return pd.DataFrame(
            {
                "contact_id": [f"CC{day:%Y%m%d}{i + 1:05d}" for i in range(n)],
                "customer_ref": customers["customer_ref"],
                "case_number": pd.Series(c["case_number"], dtype=object),
                "queue": np.where(unmapped, UNMAPPED_QUEUE, queues),
                "channel": c["channel"],
                "reason": c["reason"],
                "start_time": pd.to_datetime(c["start_time"]).tz_localize(UTC),
                "wait_seconds": c["wait_seconds"],
                "handle_seconds": c["handle_seconds"],
                "resolved_first_contact": c["resolved_first_contact"],
                "transferred": c["transferred"],
                "abandoned": c["abandoned"],
                "customer_type": customers["customer_type"],
                "language": customers["language"],
                "region": customers["region"],
                "notes": pd.Series(notes, dtype=object),
                "notes_pii": notes_pii,
                "service_id": np.array(self.service_ids)[c["svc"]],
                "is_repeat": c["is_repeat"],
                "bad_kind": pd.Series(bad_kind, dtype=object),
                "unmapped": unmapped,
            }
        )

    def _notes(self, day: date, reasons: np.ndarray, case_numbers: np.ndarray
               ) -> tuple[list[str | None], np.ndarray]:
        """Agent notes for some contacts; a few repeat personal data the caller gave."""
        rng = self._rng(day, _CONTACT_NOTES)
        n = len(reasons)
        has = rng.random(n) < NOTE_RATE
        pii = has & (rng.random(n) < PII_RATE)
        pick, pii_kind = rng.integers(0, 2, n), rng.integers(0, 3, n)
        names = rng.integers(0, len(FIRST_NAMES), (n, 2))
        out: list[str | None] = []
        for i in range(n):
            if not has[i]:
                out.append(None)
                continue
            text = NOTE_PHRASES[reasons[i]][pick[i]]
            if pii[i]:
                text += " Caller said: " + _pii_snippet(pii_kind[i], names[i], case_numbers[i])
            out.append(text)
        return out, pii

    def contact_rows(self, day: date) -> pd.DataFrame:
        """The day's CSV exactly as written: all text, ``None`` for empty cells."""
        c = self.contacts(day)
        out = pd.DataFrame(
            {
                "contact_id": c["contact_id"],
                "customer_ref": c["customer_ref"],
                "case_number": c["case_number"],
                "queue": c["queue"],
                "channel": c["channel"],
                "reason": c["reason"],
                "start_time": _iso(c["start_time"]),
                "wait_seconds": c["wait_seconds"].astype(str),
                "handle_seconds": c["handle_seconds"].astype(str),
                "resolved_first_contact": c["resolved_first_contact"].map({True: "true", False: "false"}),
                "transferred": c["transferred"].map({True: "true", False: "false"}),
                "abandoned": c["abandoned"].map({True: "true", False: "false"}),
                "customer_type": c["customer_type"],
                "language": c["language"],
                "region": c["region"],
                "notes": c["notes"],
            },
            dtype=object,
        )
        bad = c["bad_kind"]
        out.loc[bad == "unparseable_timestamp", "start_time"] = f"{day:%Y-%m}-30T25:00"
        out.loc[bad == "non_integer", "wait_seconds"] = "abc"
        out.loc[bad == "missing_key", "contact_id"] = None
        return out

    # --- surveys -----------------------------------------------------------------------
    def survey_responses(self, day: date) -> pd.DataFrame:
        """Survey responses submitted on ``day`` (typed truth: scores before faults)."""
        self._check_day(day)
        return self._cached("survey", day, self._make_survey)

    def _make_survey(self, day: date) -> pd.DataFrame:
        d0 = _np_time(day_start(day))
        response_at = self._cx["response_at"]
        idx = np.flatnonzero((response_at >= d0) & (response_at < d0 + np.timedelta64(1, "D")))
        idx = idx[np.lexsort((idx, response_at[idx]))]  # by time, then case number
        c = self.cases.iloc[idx].reset_index(drop=True)
        rng = self._rng(day, _SURVEY)
        n = len(c)
        over = c["over_standard"].to_numpy(dtype=bool)
        shift = np.array([SERVICE_PROFILES[s].score_shift for s in c["service_id"]])
        shift = shift + np.where(c["outcome"] == "denied", DENIED_SCORE_SHIFT, 0.0)
        person = SCORE_PERSON_SD * rng.standard_normal(n)
        scores = {}
        for item in SURVEY_ITEMS:
            on_mean, over_mean = SCORE_MEANS[item]
            latent = np.where(over, over_mean, on_mean) + shift + person
            latent = latent + SCORE_ITEM_SD * rng.standard_normal(n)
            scores[item] = np.clip(np.rint(latent), 1, 5).astype(int)
        comments, pii = self._comments(rng, over, scores["satisfaction"], c["case_number"])
        offset = day.toordinal() - 700_000
        form = {s["service_id"]: s["survey_form"] for s in self.services}
        frame = pd.DataFrame(
            {
                "response_id": [str(offset * 100_000 + i + 1) for i in range(n)],
                "form_uuid": c["service_id"].map(form).to_numpy(),
                "created_at": c["response_at"],
                "language": c["language"],
                **scores,
                "comment": pd.Series(comments, dtype=object),
                "external_id": c["case_number"],
                "channel": c["true_channel"],
                "customer_type": c["customer_type"],
                "region": c["region"],
                "service_id": c["service_id"],
                "over_standard": over,
                "cycle_days": c["cycle_days"],
                "has_pii": pii,
                "uuid": [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(n)],
                "bad_kind": pd.Series([None] * n, dtype=object),
                "bad_value": pd.Series([None] * n, dtype=object),
            }
        )
        kinds = [k for k, _ in BAD_ROW_KINDS["survey"]]
        rows = rng.choice(n, size=min(n, len(kinds)), replace=False)
        for row, kind in zip(rows, kinds, strict=False):
            frame.loc[row, "bad_kind"] = kind
            if kind == "out_of_range_score":
                frame.loc[row, "bad_value"] = str(rng.choice(BAD_SCORES))
        return frame

    def _comments(
        self,
        rng: np.random.Generator,
        over: np.ndarray,
        satisfaction: np.ndarray,
        case_numbers: pd.Series,
    ) -> tuple[list[str | None], np.ndarray]:
        """Waiting/status comments when over standard, positive (or mixed if low) otherwise."""
        n = len(over)
        has = rng.random(n) < COMMENT_RATE
        a, b, two = rng.integers(0, 1000, n), rng.integers(0, 1000, n), rng.random(n) < 0.4
        pii = has & (rng.random(n) < PII_RATE)
        pii_kind = rng.integers(0, 3, n)
        names = rng.integers(0, len(FIRST_NAMES), (n, 2))
        out: list[str | None] = []
        for i in range(n):
            if not has[i]:
                out.append(None)
                continue
            if over[i]:
                bank = WAIT_PHRASES
            elif satisfaction[i] >= 4:
                bank = POSITIVE_PHRASES
            else:
                bank = MIXED_PHRASES
            text = bank[a[i] % len(bank)]
            if two[i] and b[i] % len(bank) != a[i] % len(bank):
                text += " " + bank[b[i] % len(bank)]
            if pii[i]:
                text += " " + _pii_snippet(pii_kind[i], names[i], case_numbers.iloc[i])
            out.append(text)
        return out, pii

    def survey_records(self, day: date) -> list[dict[str, Any]]:
        """The day's responses as the survey platform stores them (Touchpoints shape)."""
        s = self.survey_responses(day)
        created = _iso(s["created_at"], millis=True)
        records = []
        for i, row in enumerate(s.itertuples(index=False)):
            answers: dict[str, str | None] = {
                f"answer_{k + 1:02d}": str(getattr(row, item)) for k, item in enumerate(SURVEY_ITEMS)
            }
            answers["answer_09"] = _none(row.comment)
            answers["answer_10"] = _none(row.external_id)
            answers["answer_11"] = _none(row.channel)
            answers["answer_12"] = _none(row.customer_type)
            answers["answer_13"] = _none(row.region)
            if row.bad_kind == "out_of_range_score":
                answers["answer_02"] = row.bad_value
            elif row.bad_kind == "missing_external_id":
                answers["answer_10"] = None
            records.append(
                {
                    "id": row.response_id,
                    "form_uuid": row.form_uuid,
                    "attributes": {
                        "created_at": created.iloc[i],
                        "updated_at": created.iloc[i],
                        "language": _none(row.language),
                        "aasm_state": "received",
                        "uuid": row.uuid,
                        **answers,
                    },
                }
            )
        return records

    # --- web analytics -----------------------------------------------------------------
    def web_rows(self, day: date) -> pd.DataFrame:
        """One row per page path for ``day`` (typed truth with service_id, bad_kind, unmapped)."""
        self._check_day(day)
        return self._cached("web", day, self._make_web)

    def _make_web(self, day: date) -> pd.DataFrame:
        rng = self._rng(day, _WEB)
        cx = self._cx
        d0 = _np_time(day_start(day))
        d1 = d0 + np.timedelta64(1, "D")
        k = len(self.services)
        lo, today, hi = np.searchsorted(
            cx["received_at"], [d0 - np.timedelta64(CONTACT_LOOKBACK_DAYS, "D"), d0, d1]
        )
        online = cx["true_channel"][today:hi] == "online"
        completions = np.bincount(cx["svc"][today:hi][online], minlength=k)
        is_open = cx["terminal_at"][lo:today] > d0
        open_count = np.bincount(cx["svc"][lo:today][is_open], minlength=k)
        closed = (cx["terminal_at"] >= d0) & (cx["terminal_at"] < d1)
        closed_count = np.bincount(cx["svc"][closed], minlength=k)
        rows = []
        for i, s in enumerate(self.services):
            sid, prefix = s["service_id"], s["web_path"]
            done = int(completions[i])
            starts = int(round(done / rng.uniform(0.55, 0.8)))
            rows.append((sid, prefix + s["intake_page"], int(round(starts * rng.uniform(2, 3))),
                         starts, done, 0))
            if s["online_status"]:
                checks = int(rng.poisson(STATUS_CHECKS_PER_OPEN_CASE * open_count[i]))
                lookups = checks + int(rng.poisson(0.15 * checks))
                sessions = int(round(lookups * rng.uniform(0.7, 0.9)))
                rows.append((sid, prefix + s["status_page"], sessions, lookups, checks, checks))
            closing = int(rng.poisson(0.8 * closed_count[i] + 5))
            rows.append((sid, prefix + s["closing_page"], closing, 0, 0, 0))
        rows.append((None, UNMAPPED_WEB_PATH, int(rng.poisson(400)), 0, 0, 0))
        frame = pd.DataFrame(
            rows,
            columns=["service_id", "page_path", "sessions", "task_starts", "task_completions",
                     "status_checks"],
        )
        frame.insert(0, "date", day)
        frame["unmapped"] = frame["service_id"].isna()
        frame["bad_kind"] = pd.Series([None] * len(frame), dtype=object)
        bad = int(rng.choice(np.flatnonzero(~frame["unmapped"].to_numpy())))
        frame.loc[bad, "bad_kind"] = "negative_value"
        return frame

    def web_document(self, day: date) -> dict[str, Any]:
        """The day's analytics export exactly as written."""
        w = self.web_rows(day)
        rows = []
        for r in w.itertuples(index=False):
            sessions = -max(1, r.sessions) if r.bad_kind == "negative_value" else r.sessions
            rows.append(
                {
                    "date": day.isoformat(),
                    "page_path": r.page_path,
                    "sessions": int(sessions),
                    "task_starts": int(r.task_starts),
                    "task_completions": int(r.task_completions),
                    "status_checks": int(r.status_checks),
                }
            )
        return {"date": day.isoformat(), "property": WEB_PROPERTY, "rows": rows}

    # --- feedback ----------------------------------------------------------------------
    def feedback(self, day: date) -> pd.DataFrame:
        """Unsolicited feedback received on ``day`` (typed truth)."""
        self._check_day(day)
        return self._cached("feedback", day, self._make_feedback)

    def _make_feedback(self, day: date) -> pd.DataFrame:
        rng = self._rng(day, _FEEDBACK)
        n = int(rng.integers(self.volumes.feedback[0], self.volumes.feedback[1] + 1))
        channel = np.array(FEEDBACK_CHANNELS)[rng.choice(3, n, p=FEEDBACK_CHANNEL_SHARE)]
        svc = rng.choice(len(self.services), n, p=self._shares)
        secs = rng.integers(0, 86400, n)
        negative = rng.random(n) < np.array(
            [self.services[i]["profile"].feedback_negative for i in svc]
        )
        u_hint, k_hint, k_text = rng.random(n), rng.integers(0, 1000, n), rng.integers(0, 1000, n)
        months = rng.integers(3, 10, n)
        known = rng.random(n) < FEEDBACK_KNOWN_CUSTOMER
        cust = self._customer_columns(rng.integers(0, N_CUSTOMERS, n), known)
        u_rating = rng.random(n)
        pii = rng.random(n) < PII_RATE
        pii_kind = rng.integers(0, 2, n)
        names = rng.integers(0, len(FIRST_NAMES), (n, 2))
        hints, texts, ratings, unmapped = [], [], [], []
        for i in range(n):
            s = self.services[svc[i]]
            if u_hint[i] < NULL_HINT_RATE[channel[i]]:
                hints.append(None)
                unmapped.append("missing_code")
            else:
                hints.append(s["feedback_hints"][k_hint[i] % len(s["feedback_hints"])])
                unmapped.append(None)
            if negative[i]:
                bank = (APP_NEGATIVE + WAIT_NEGATIVE) if channel[i] == "app_review" else WAIT_NEGATIVE
                if not s["online_status"]:
                    bank = STATUS_NEGATIVE
                text = bank[k_text[i] % len(bank)].format(months=months[i])
            else:
                text = FEEDBACK_POSITIVE[k_text[i] % len(FEEDBACK_POSITIVE)]
            if pii[i]:
                text += " " + _pii_snippet(pii_kind[i], names[i], None)
            texts.append(text)
            if channel[i] != "app_review":
                ratings.append(None)
            elif negative[i]:
                ratings.append(1 if u_rating[i] < 0.6 else 2)
            else:
                ratings.append(5 if u_rating[i] < 0.55 else (4 if u_rating[i] < 0.9 else 3))
        frame = pd.DataFrame(
            {
                "feedback_id": [f"FB{day:%Y%m%d}-{i + 1:04d}" for i in range(n)],
                "channel": channel,
                "received_at": day_start(day) + pd.to_timedelta(secs, unit="s"),
                "service_hint": pd.Series(hints, dtype=object),
                "rating": pd.array(ratings, dtype="Int64"),
                "text": texts,
                "language": np.where(known, cust["language"], "en"),
                "customer_type": cust["customer_type"],
                "region": cust["region"],
                "service_id": np.array(self.service_ids)[svc],
                "negative": negative,
                "has_pii": pii,
                "unmapped": pd.Series(unmapped, dtype=object),
                "bad_kind": pd.Series([None] * n, dtype=object),
            }
        )
        frame = frame.sort_values("received_at", kind="stable").reset_index(drop=True)
        frame["feedback_id"] = [f"FB{day:%Y%m%d}-{i + 1:04d}" for i in range(n)]
        # one unknown hint and one row per bad kind, all distinct and otherwise mapped
        mapped = np.flatnonzero(frame["unmapped"].isna().to_numpy())
        kinds = [k for k, _ in BAD_ROW_KINDS["feedback"]]
        n_unmapped = UNMAPPED_ROWS_PER_DAY["feedback"]
        rows = rng.choice(mapped, size=min(len(mapped), len(kinds) + n_unmapped), replace=False)
        for row in rows[:n_unmapped]:
            frame.loc[row, "service_hint"] = UNMAPPED_HINT
            frame.loc[row, "unmapped"] = "unknown_code"
        for row, kind in zip(rows[n_unmapped:], kinds, strict=False):
            frame.loc[row, "bad_kind"] = kind
        return frame

    def feedback_records(self, day: date) -> list[dict[str, Any]]:
        """The day's JSON Lines records exactly as written (contract column order)."""
        f = self.feedback(day)
        received = _iso(f["received_at"])
        records = []
        for i, r in enumerate(f.itertuples(index=False)):
            record = {
                "feedback_id": r.feedback_id,
                "channel": BAD_CHANNEL if r.bad_kind == "bad_channel" else r.channel,
                "received_at": received.iloc[i],
                "service_hint": _none(r.service_hint),
                "rating": None if pd.isna(r.rating) else int(r.rating),
                "text": "" if r.bad_kind == "empty_text" else r.text,
                "language": _none(r.language),
                "customer_type": _none(r.customer_type),
                "region": _none(r.region),
            }
            records.append(record)
        return records

    # --- planted rows ------------------------------------------------------------------
    def planted_bad_rows(
        self, source: str, day: date | None = None, as_of: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Rows planted with exactly one fault, as ``{"source", "day", "key", "kind",
        "column", "value", "origin", "row"}``.

        ``key`` is the row's key (``None`` when the fault is the key itself; then ``row``,
        the 1-based record number in ``origin``, finds it). For web_analytics the key is
        the page_path (the date is ``day``). ``day=None`` means every day of the world.

        For case_db, ``day`` is the day a nightly run would extract the row: its
        ``updated_at`` in the table written ``as_of`` (default: the end of ``day``) falls
        on ``day``. ``origin`` is the table and ``row`` is ``None``.
        """
        if source not in BAD_ROW_KINDS:
            raise KeyError(f"unknown source {source!r}; known: {list(BAD_ROW_KINDS)}")
        days = self.days if day is None else [day]
        out: list[dict[str, Any]] = []
        for d in days:
            self._check_day(d)
            out.extend(getattr(self, f"_bad_{source}")(d, as_of))
        return out

    def _bad_case_db(self, day: date, as_of: datetime | None) -> list[dict[str, Any]]:
        at = _utc(as_of or end_of_day(day))
        if "bad_cases" not in self._cache:
            self._cache["bad_cases"] = self.cases[self.cases["bad_kind"].notna()]
        bad = self._cache["bad_cases"]
        bad = bad[bad["received_at"] < at]
        state = self._state(bad, at)
        d0 = day_start(day)
        on_day = (state["updated_at"] >= d0) & (state["updated_at"] < d0 + pd.Timedelta(days=1))
        kinds = dict(zip(bad["case_number"], bad["bad_kind"], strict=True))
        columns = dict(BAD_ROW_KINDS["case_db"])
        out = []
        for r in state[on_day].itertuples(index=False):
            kind = kinds[r.case_number]
            column = columns[kind]
            out.append(_bad(
                "case_db", day, r.case_number, kind, column, getattr(r, column), "cases", None
            ))
        return out

    def _bad_contact_center(self, day: date, _as_of: object) -> list[dict[str, Any]]:
        c = self.contacts(day)
        rows = self.contact_rows(day)
        columns = dict(BAD_ROW_KINDS["contact_center"])
        name = f"contacts_{day.isoformat()}.csv"
        out = []
        for i in np.flatnonzero(c["bad_kind"].notna().to_numpy()):
            kind = c["bad_kind"].iloc[i]
            column = columns[kind]
            key = rows["contact_id"].iloc[i]
            out.append(_bad("contact_center", day, key, kind, column, rows[column].iloc[i],
                            name, int(i) + 1))
        return out

    def _bad_survey(self, day: date, _as_of: object) -> list[dict[str, Any]]:
        s = self.survey_responses(day)
        columns = dict(BAD_ROW_KINDS["survey"])
        out = []
        for r in s[s["bad_kind"].notna()].itertuples(index=False):
            out.append(_bad("survey", day, r.response_id, r.bad_kind, columns[r.bad_kind],
                            r.bad_value, "survey", None))
        return out

    def _bad_web_analytics(self, day: date, _as_of: object) -> list[dict[str, Any]]:
        doc = self.web_document(day)
        w = self.web_rows(day)
        name = f"web_{day.isoformat()}.json"
        out = []
        for i in np.flatnonzero(w["bad_kind"].notna().to_numpy()):
            row = doc["rows"][i]
            out.append(_bad("web_analytics", day, row["page_path"], "negative_value", "sessions",
                            row["sessions"], name, int(i) + 1))
        return out

    def _bad_feedback(self, day: date, _as_of: object) -> list[dict[str, Any]]:
        records = self.feedback_records(day)
        f = self.feedback(day)
        columns = dict(BAD_ROW_KINDS["feedback"])
        name = f"feedback_{day.isoformat()}.jsonl"
        out = []
        for i in np.flatnonzero(f["bad_kind"].notna().to_numpy()):
            kind = f["bad_kind"].iloc[i]
            rec = records[i]
            out.append(_bad("feedback", day, rec["feedback_id"], kind, columns[kind],
                            rec[columns[kind]], name, int(i) + 1))
        return out

    def unmapped_rows(self, source: str, day: date | None = None) -> list[dict[str, Any]]:
        """Valid rows whose code maps to no service: kept by the pipeline, reported as unmapped.

        Records are ``{"source", "day", "key", "kind", "column", "value"}`` where kind is
        ``unknown_code`` (a code the catalog does not know) or ``missing_code`` (null
        feedback hint). Sources without such rows return ``[]``.
        """
        if source not in SOURCES:
            raise KeyError(f"unknown source {source!r}; known: {list(SOURCES)}")
        days = self.days if day is None else [day]
        out: list[dict[str, Any]] = []
        for d in days:
            self._check_day(d)
            if source == "contact_center":
                c = self.contacts(d)
                for r in c[c["unmapped"]].itertuples(index=False):
                    out.append(_unmapped(source, d, r.contact_id, "unknown_code", "queue", r.queue))
            elif source == "feedback":
                f = self.feedback(d)
                for r in f[f["unmapped"].notna()].itertuples(index=False):
                    out.append(_unmapped(source, d, r.feedback_id, r.unmapped, "service_hint",
                                         r.service_hint))
            elif source == "web_analytics":
                w = self.web_rows(d)
                for r in w[w["unmapped"]].itertuples(index=False):
                    out.append(_unmapped(source, d, r.page_path, "unknown_code", "page_path",
                                         r.page_path))
        return out


def _none(value: Any) -> Any:
    """``None`` for every flavour of missing (None, NaN, NA, NaT), else the value."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value


def _bad(
    source: str, day: date, key: Any, kind: str, column: str, value: Any, origin: str,
    row: int | None,
) -> dict[str, Any]:
    value = _none(value)
    return {
        "source": source, "day": day.isoformat(), "key": key, "kind": kind, "column": column,
        "value": value, "origin": origin, "row": row,
    }


def _unmapped(source: str, day: date, key: str, kind: str, column: str, value: Any) -> dict:
    return {"source": source, "day": day.isoformat(), "key": key, "kind": kind,
            "column": column, "value": value}


def _pii_snippet(kind: int, names: np.ndarray, case_number: str | None) -> str:
    """A bit of personal data of the kind people write into free text."""
    first, last = FIRST_NAMES[names[0]], LAST_NAMES[names[1]]
    if kind == 0:
        return f"Call me at 202-555-01{(names[0] * 8 + names[1]) % 100:02d}."
    if kind == 1:
        return f"My email is {first.lower()}.{last.lower()}@example.com."
    if case_number:
        return f"My name is {first} {last}, case {case_number}."
    return f"My name is {first} {last}."
