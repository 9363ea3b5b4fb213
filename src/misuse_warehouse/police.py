"""Street-level crimes from the data.police.uk API: pull, archive as received, load into raw.

One pull is one area and month, both requested categories (`drugs`, and `all-crime` for context
rates), registered in `raw.submissions` as feed `police` like a file would be: the archived response
bodies are its bytes, so a re-pull that returns the same bytes as the current submission changes
nothing, and one that returns different bytes is a new submission that supersedes it.

The API's real behaviour (shared/feeds/criminal_justice.md §1) shapes the client:

- more than 10,000 crimes in a response is refused with 503: the polygon is cut into quadrants of
  its bounding box (each clipped to the polygon) and the parts asked in turn, depth first, again
  if a part is still too big. A crime on a cut line can come back from both sides, so a crime
  belongs to the first part that returned it: later parts drop records whose key an earlier part
  already returned. The key is `persistent_id`; anti-social behaviour has none, and for it the
  API's `id` stands in, within this one pull only (`id` is renumbered between publications, which
  is why it is never a key anywhere else). The same key twice in *one* response is kept twice:
  the real API does that (the August 2014 fixture has eight persistent_ids on two records each, with
  different ids and sometimes different categories or outcomes), and they are distinct records.
- a 503 is also what an outage looks like (a proxy or load balancer in front of the API). The
  documentation gives the too-many-crimes 503 no body, and clients in the wild cannot tell the
  two apart by status alone, so: a 503 with an empty body (and no Retry-After) is "too large" and
  is split, at most `max_split_depth` times, depth first, so an outage that answers every part
  the same way costs a handful of requests; a 503 with a body (an error page) or a Retry-After is
  an outage and is retried like any 5xx.
- 429 over 15 requests a second (burst 30): requests go through a token bucket at that rate, and
  a 429 all the same (another process pulling) backs off, honouring Retry-After, and retries.
- a URL over 4,094 characters is refused with 400: a polygon that would make one is POSTed.
- timeouts, connection errors and 5xx are retried a bounded number of times with backoff
  (tenacity); then, and for any other status, the area-month is *unavailable* (PoliceApiError
  naming area, month and URL): the caller keeps the last good pull in force and flags it.
- an answer that came but cannot be right is *refused* (AnswerRefused, recorded in raw.submissions
  with its reason, never loaded): not JSON, an unreadable crime, a crime whose own `month` is not
  the month asked for, or an empty answer for a category where the pull in force had crimes. An
  empty answer for an area-month never pulled before is plausible (a quiet area) and loaded.
- `crimes-street-dates` lists the published months; a month not listed is not available yet,
  which is a result (the DAG task skips), not an error.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
import requests
import yaml
from psycopg import sql
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from misuse_warehouse import settings
from misuse_warehouse.http_limits import Answer, AnswerTooLarge, read_capped
from misuse_warehouse.months import parse_month

log = logging.getLogger(__name__)

FEED = "police"
CATEGORIES = ("drugs", "all-crime")
AREAS_FILE = Path(__file__).with_name("police_areas.yaml")
BASE_URL_ENV = "MISUSE_WAREHOUSE_POLICE_API"
# Its value for a warehouse that cannot reach the API (a closed network): runs publish without police data.
TURNED_OFF = "off"
GAPS = ("refused", "unavailable")
"""Pull results that leave the last good pull in force and flag C2 of the area-month."""
MAX_URL = 4094
"""The API answers 400 to a longer GET URL."""

KNOWN_OUTCOMES = frozenset(
    {
        "Under investigation",
        "Offender given a drugs possession warning",
        "Offender given penalty notice",
        "Investigation complete; no suspect identified",
        "Unable to prosecute suspect",
        "Local resolution",
        "Awaiting court outcome",
        "Offender sent to prison",
        "Court result unavailable",
    }
)
"""The outcome texts the contract lists. Any other text is loaded as it is and reported, never refused."""

Point = tuple[float, float]
"""(latitude, longitude), WGS84."""
Polygon = tuple[Point, ...]

COLUMNS = (
    "submission_id",
    "source_row",
    "requested_category",
    "persistent_id",
    "api_id",
    "category",
    "month",
    "latitude",
    "longitude",
    "street_id",
    "street_name",
    "location_type",
    "context",
    "outcome_category",
    "outcome_month",
)
_OUTCOME = COLUMNS.index("outcome_category") - 2
"""Where outcome_category sits in a parsed row (which starts after submission_id and source_row)."""


class PoliceApiError(RuntimeError):
    """The API did not give a usable answer: the message names area, month and URL."""

    def __init__(self, area: str, month: str, url: str, problem: str) -> None:
        super().__init__(f"police API, area {area}, month {month}: {problem} — {url}")
        self.area, self.month, self.url, self.problem = area, month, url, problem


class AnswerRefused(PoliceApiError):
    """The API answered, but the answer cannot be right: recorded as a refused submission, not loaded.

    `code` is the raw.submissions refusal_code (REFUSAL_CODES), the message says what was wrong.
    """

    def __init__(self, area: str, month: str, url: str, code: str, problem: str) -> None:
        super().__init__(area, month, url, problem)
        self.code = code


REFUSAL_CODES = {
    "police_not_json": "an answer is not JSON, or not an array of crimes",
    "police_unreadable_crime": "a crime lacks a field the warehouse reads, or holds one it cannot read",
    "police_wrong_month": "crimes of another month than the one asked for",
    "police_empty_after_crimes": "an empty answer where the pull in force had crimes",
    "police_answer_too_large": "an answer over the byte limit (MISUSE_WAREHOUSE_MAX_ANSWER_BYTES): not read, not kept",
}
"""Why a police answer was refused (raw.submissions.refusal_code)."""


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PoliceArea:
    code: str
    name: str
    polygons: tuple[Polygon, ...]
    approximate: bool


@dataclass(frozen=True)
class PoliceConfig:
    base_url: str
    areas: dict[str, PoliceArea]

    def area(self, code: str) -> PoliceArea:
        try:
            return self.areas[code]
        except KeyError:
            known = ", ".join(sorted(self.areas))
            raise KeyError(f"no police polygon configured for {code!r} (configured: {known})") from None


def load_config(path: Path | None = None) -> PoliceConfig:
    """Base URL and area polygons from the YAML (default AREAS_FILE); the environment variable it names wins."""
    path = path or AREAS_FILE
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    base_url = os.environ.get(data.get("base_url_env") or BASE_URL_ENV) or data["base_url"]
    areas = {}
    for code, spec in data["areas"].items():
        polygons = tuple(tuple((float(lat), float(lng)) for lat, lng in polygon) for polygon in spec["polygons"])
        if not polygons or any(len(p) < 3 for p in polygons):
            raise ValueError(f"{path}: area {code} needs polygons of three points or more")
        areas[code] = PoliceArea(code, spec.get("name", code), polygons, bool(spec.get("approximate", False)))
    return PoliceConfig(base_url.rstrip("/"), areas)


# --- polygons --------------------------------------------------------------------------------


def poly_param(polygon: Polygon) -> str:
    """The API's `lat,lng:lat,lng:...` form (the ring closes itself)."""
    return ":".join(f"{lat:.6f},{lng:.6f}" for lat, lng in polygon)


def bounding_box(polygon: Polygon) -> tuple[float, float, float, float]:
    lats, lngs = [p[0] for p in polygon], [p[1] for p in polygon]
    return min(lats), min(lngs), max(lats), max(lngs)


def split(polygon: Polygon) -> list[Polygon]:
    """The polygon cut by its bounding box's mid lines into up to four parts (SW, SE, NW, NE).

    Each part is the polygon clipped to a quadrant, so together the parts cover exactly the
    polygon: a split asks for no crime outside it. Empty parts (a concave polygon can miss a
    quadrant) are left out.
    """
    south, west, north, east = bounding_box(polygon)
    mid_lat, mid_lng = (south + north) / 2, (west + east) / 2
    boxes = (
        (south, west, mid_lat, mid_lng),
        (south, mid_lng, mid_lat, east),
        (mid_lat, west, north, mid_lng),
        (mid_lat, mid_lng, north, east),
    )
    parts = [_clip(polygon, box) for box in boxes]
    return [p for p in parts if len(p) >= 3 and abs(_area(p)) > 1e-12]


def _clip(polygon: Polygon, box: tuple[float, float, float, float]) -> Polygon:
    """Sutherland–Hodgman clip against an axis-aligned box (south, west, north, east)."""
    south, west, north, east = box
    edges: list[tuple[int, float, bool]] = [(0, south, True), (0, north, False), (1, west, True), (1, east, False)]
    points = list(polygon)
    for axis, bound, keep_above in edges:
        if not points:
            break

        def inside(p: Point, axis: int = axis, bound: float = bound, keep_above: bool = keep_above) -> bool:
            return p[axis] >= bound if keep_above else p[axis] <= bound

        def cross(a: Point, b: Point, axis: int = axis, bound: float = bound) -> Point:
            t = (bound - a[axis]) / (b[axis] - a[axis])
            other = a[1 - axis] + t * (b[1 - axis] - a[1 - axis])
            return (bound, other) if axis == 0 else (other, bound)

        clipped: list[Point] = []
        for i, current in enumerate(points):
            previous = points[i - 1]
            if inside(current):
                if not inside(previous):
                    clipped.append(cross(previous, current))
                clipped.append(current)
            elif inside(previous):
                clipped.append(cross(previous, current))
        points = clipped
    deduped = [p for i, p in enumerate(points) if p != points[i - 1]] if len(points) > 1 else points
    return tuple(deduped)


def _area(polygon: Polygon) -> float:
    return sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(polygon, polygon[1:] + polygon[:1], strict=True)) / 2


# --- the HTTP client -------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    timeout: float | tuple[float, float] = (10.0, 120.0)
    """(connect, read) seconds: a big all-crime answer takes a while to build."""
    attempts: int = 5
    """Tries per request for timeouts, connection errors and 429 (the first one included)."""
    backoff: float = 1.0
    """First wait in seconds; doubles each retry up to `max_wait`."""
    max_wait: float = 30.0
    rate: float = 15.0
    burst: int = 30
    max_split_depth: int = 4
    """A polygon cut four times is 256 parts, 2.5 million crimes a month: more than any force has."""
    give_up_after: int = 3
    """Requests that ran out of attempts in a row before the client stops asking for this run: an API
    that is down costs three requests' retries, not every area-month's."""


class RateLimiter:
    """Token bucket at the API's documented limit, so a pull does not provoke its own 429s."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate, self.burst, self._clock, self._sleep = rate, burst, clock, sleep
        self._tokens, self._last = float(burst), clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now

    def acquire(self) -> float:
        """Take one request's token, sleeping until there is one; returns the seconds slept."""
        self._refill()
        waited = 0.0
        if self._tokens < 1:
            waited = (1 - self._tokens) / self.rate
            self._sleep(waited)
            self._refill()
            self._tokens = max(self._tokens, 1.0)
        self._tokens -= 1
        return waited


class _Retryable(Exception):
    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.retry_after = retry_after


class _TooMany(Exception):
    """503 with no body: the answer would be over 10,000 crimes."""


def _too_many_crimes(response: Answer) -> bool:
    """The API's own too-many-crimes answer: 503 with an empty body and no Retry-After.

    data.police.uk documents only the status for it; an outage's 503 comes from whatever stands in
    front of the API and carries an error page, or a Retry-After. Splitting is bounded either way.
    """
    return response.status_code == 503 and not response.content.strip() and "Retry-After" not in response.headers


def _status_text(response: Answer) -> str:
    body = response.content[:80].decode("utf-8", "replace").strip()
    body = " ".join(body.split())
    return f"HTTP {response.status_code} {response.reason}" + (f" ({body!r})" if body else "")


@dataclass(frozen=True)
class _Where:
    area: str
    month: str
    category: str = ""

    def error(self, url: str, problem: str) -> PoliceApiError:
        what = f"{self.category}: {problem}" if self.category else problem
        return PoliceApiError(self.area, self.month, url, what)

    def refused(self, url: str, code: str, problem: str) -> AnswerRefused:
        what = f"{self.category}: {problem}" if self.category else problem
        return AnswerRefused(self.area, self.month, url, code, what)


class PoliceClient:
    """HTTP against the API (or anything at `base_url` that answers like it)."""

    def __init__(
        self,
        base_url: str,
        policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", "misuse-warehouse (data.police.uk connector)")
        self.sleep = sleep
        self.limiter = RateLimiter(self.policy.rate, self.policy.burst, sleep=sleep)
        self.requests_made = 0
        self.gave_up_in_a_row = 0

    def available_months(self, where: _Where | None = None) -> list[str]:
        """The months `crimes-street-dates` lists as published, oldest first."""
        url = f"{self.base_url}/crimes-street-dates"
        where = where or _Where("(all areas)", "(any)")
        response = self._send("GET", url, None, where)
        if response.status_code != 200:
            raise where.error(url, f"HTTP {response.status_code} {response.reason}")
        try:
            return sorted(str(entry["date"]) for entry in response.json())
        except (ValueError, TypeError, KeyError) as error:
            raise where.error(url, f"crimes-street-dates is not a list of {{date: ...}}: {error}") from None

    def crimes(self, category: str, polygon: Polygon, month: str, where: _Where) -> tuple[str, str, bytes]:
        """(method, url, body) of one successful answer; GET unless the URL would be too long.

        Raises _TooMany on the API's too-many-crimes 503 (the caller splits) and PoliceApiError for
        anything else.
        """
        url = f"{self.base_url}/crimes-street/{category}"
        query = urlencode({"poly": poly_param(polygon), "date": month}, safe=",:")
        get_url = f"{url}?{query}"
        if len(get_url) <= MAX_URL:
            method, target, data = "GET", get_url, None
        else:
            method, target, data = "POST", url, query
        response = self._send(method, target, data, where)
        if _too_many_crimes(response):
            raise _TooMany()
        shown = target if method == "GET" else f"{target} (POST, polygon of {len(polygon)} points in the body)"
        if response.status_code != 200:
            raise where.error(shown, _status_text(response))
        return method, shown, response.content

    def _send(self, method: str, url: str, data: str | None, where: _Where) -> Answer:
        """One request, retried on timeouts, connection errors, 429 and 5xx (not the too-many-crimes 503).

        The body is read as a stream up to `settings.max_answer_bytes()` (http_limits): an answer
        over it is refused (`police_answer_too_large`), not retried and not held whole.
        """
        policy = self.policy
        shown = url if data is None else f"{url} (POST)"
        if self.gave_up_in_a_row >= policy.give_up_after:
            raise where.error(shown, f"not asked: {self.gave_up_in_a_row} requests in a row gave up this run")
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if data is not None else None
        retrying = Retrying(
            stop=stop_after_attempt(policy.attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self.sleep,
            reraise=True,
            before_sleep=lambda state: log.warning(
                "%s %s: %s; retrying (attempt %d of %d)",
                where.area,
                where.month,
                state.outcome.exception() if state.outcome else "?",
                state.attempt_number + 1,
                policy.attempts,
            ),
        )
        try:
            for attempt in retrying:
                with attempt:
                    self.limiter.acquire()
                    self.requests_made += 1
                    try:
                        response = read_capped(
                            self.session.request(
                                method, url, data=data, headers=headers, timeout=policy.timeout, stream=True
                            )
                        )
                    except (requests.Timeout, requests.ConnectionError) as error:
                        raise _Retryable(f"{type(error).__name__}: {error}") from error
                    except AnswerTooLarge as error:
                        self.gave_up_in_a_row = 0  # the API answered
                        raise where.refused(shown, "police_answer_too_large", str(error)) from None
                    if response.status_code == 429:
                        raise _Retryable("HTTP 429 Too Many Requests", _retry_after(response))
                    if response.status_code >= 500 and not _too_many_crimes(response):
                        raise _Retryable(_status_text(response), _retry_after(response))
                    self.gave_up_in_a_row = 0
                    return response
        except _Retryable as gave_up:
            self.gave_up_in_a_row += 1
            raise where.error(shown, f"gave up after {policy.attempts} attempts, last: {gave_up}") from gave_up
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff; never shorter than the server's Retry-After."""
        policy = self.policy
        wait = min(policy.max_wait, policy.backoff * 2 ** (state.attempt_number - 1))
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Retryable) and error.retry_after is not None:
            wait = max(wait, min(error.retry_after, policy.max_wait))
        return wait


def _retry_after(response: Answer) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


# --- one area-month --------------------------------------------------------------------------


@dataclass
class _Fetched:
    """The answers for one requested category, and (once parsed) its crimes after dropping split-line repeats."""

    category: str
    responses: list[dict[str, Any]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    dropped: int = 0


@functools.lru_cache(maxsize=1024)
def _month_start(text: str) -> date:
    """`YYYY-MM` (or a longer date) as the first of its month; anything else is a ValueError.

    Cached: a month's crimes repeat a handful of months, and strptime was a fifth of a pull's time.
    """
    return datetime.strptime(text[:7], "%Y-%m").date()


def archive_folder(area_code: str, month: str) -> Path:
    return settings.archive_dir() / FEED / area_code / month


def _archive(folder: Path, name: str, body: bytes) -> Path:
    """Write the body as it arrived, named by its checksum so a re-pull of the same bytes adds nothing."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if not target.exists():
        partial = target.with_suffix(".partial")
        partial.write_bytes(body)
        partial.replace(target)
    return target


def _record_key(record: dict[str, Any]) -> str | None:
    persistent_id = record.get("persistent_id") or ""
    if persistent_id:
        return persistent_id
    api_id = record.get("id")
    return None if api_id in (None, "") else f"id:{api_id}"


def _fetch(
    client: PoliceClient, area: PoliceArea, month: str, category: str, folder: Path, policy: RetryPolicy
) -> _Fetched:
    """Every configured polygon of the area, split depth first while the API says 503; each answer archived."""
    where = _Where(area.code, month, category)
    fetched = _Fetched(category)

    def visit(label: str, polygon: Polygon, depth: int) -> None:
        try:
            method, url, body = client.crimes(category, polygon, month, where)
        except _TooMany:
            if depth >= policy.max_split_depth:
                raise where.error(
                    f"{client.base_url}/crimes-street/{category}?poly={poly_param(polygon)}&date={month}",
                    f"still over 10,000 crimes (503) after splitting the polygon {depth} times:"
                    " the API is failing, or the area is denser than any force",
                ) from None
            parts = split(polygon)
            log.info("%s %s %s part %s: 503, split into %d", area.code, month, category, label, len(parts))
            for i, part in enumerate(parts):
                visit(f"{label}{i}", part, depth + 1)
            return
        sha = hashlib.sha256(body).hexdigest()
        path = _archive(folder, f"{category}_{label}_{sha[:16]}.json", body)  # before any parsing
        fetched.responses.append(
            {"part": label, "method": method, "url": url, "file": path.name, "sha256": sha, "bytes": len(body)}
        )
        fetched.bodies.append(body)

    for i, polygon in enumerate(area.polygons):
        visit(f"p{i}", polygon, 0)
    return fetched


def _parse(fetched: _Fetched, area_code: str, month: str, folder: Path) -> None:
    """The crimes of every answer, in the order they came; a crime two parts returned (on a cut line) once.

    Only for answers not loaded before: bytes equal to the current submission's parsed when it loaded.
    Raises AnswerRefused for an answer that cannot be right, crimes of another month included: the
    API files a crime under the month it was recorded in, so one of another month means the answer
    is not the month asked for (a cache or a publication in progress), and none of it is loaded.
    """
    where = _Where(area_code, month, fetched.category)
    owner: dict[str, str] = {}
    other_months: Counter[str] = Counter()
    for response, body in zip(fetched.responses, fetched.bodies, strict=True):
        label, url, path = response["part"], response["url"], folder / response["file"]
        try:
            records = json.loads(body)
        except ValueError as error:
            raise where.refused(url, "police_not_json", f"answer is not JSON ({error}); kept at {path}") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise where.refused(url, "police_not_json", f"answer is not a JSON array of crimes; kept at {path}")
        for record in records:
            key = _record_key(record)
            if key is not None:
                first = owner.setdefault(key, label)
                if first != label:  # an earlier part already returned it: on a cut line
                    fetched.dropped += 1
                    continue
            crime_month = str(record.get("month") or "")[:7]
            if crime_month != month:
                other_months[crime_month or "(none)"] += 1
            try:
                row = _row(record, fetched.category)
            except ValueError as error:
                problem = f"unreadable crime {record.get('id')!r} ({error}); kept at {path}"
                raise where.refused(url, "police_unreadable_crime", problem) from None
            fetched.rows.append(row)
            outcome = row[_OUTCOME]
            if outcome is not None:
                fetched.outcomes[outcome] += 1
    if other_months:
        seen = ", ".join(f"{m}: {n}" for m, n in sorted(other_months.items()))
        total = sum(other_months.values())
        problem = f"{total} crime(s) not of {month} ({seen}); answers kept in {folder}"
        raise where.refused(f"{fetched.category} answers", "police_wrong_month", problem)


def _row(record: dict[str, Any], category: str) -> tuple[Any, ...]:
    """The raw.police_crimes columns after submission_id and source_row. Empty strings are NULL."""
    try:
        location = record.get("location") or {}
        street = location.get("street") or {}
        outcome = record.get("outcome_status") or {}
        outcome_date = outcome.get("date") or ""
        return (
            category,
            record.get("persistent_id") or None,
            _int(record.get("id")),
            str(record["category"]),
            _month_start(str(record["month"])),
            _decimal(location.get("latitude")),
            _decimal(location.get("longitude")),
            _int(street.get("id")),
            street.get("name") or None,
            record.get("location_type") or None,
            record.get("context") or None,
            outcome.get("category") or None,
            _month_start(outcome_date) if outcome_date else None,
        )
    except (KeyError, ValueError, TypeError, InvalidOperation, AttributeError) as error:
        raise ValueError(repr(error)) from None


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _decimal(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def available_months(client: PoliceClient | None = None) -> list[str]:
    """Published months, from `crimes-street-dates`; an unreachable API's error says how to turn the pull off."""
    try:
        return (client or PoliceClient(load_config().base_url)).available_months()
    except PoliceApiError as error:
        hint = f"without access to the API, turn the pull off with {BASE_URL_ENV}={TURNED_OFF}"
        raise PoliceApiError(error.area, error.month, error.url, f"{error.problem}; {hint}") from error


def not_available(area_code: str, month: str, latest: str | None = None) -> dict[str, Any]:
    """The result for a month the API has not published yet: tried again next run, not a failure."""
    newest = f" (newest published: {latest})" if latest else ""
    return {
        "area": area_code,
        "month": month,
        "status": "not_available",
        "submission_id": None,
        "rows": 0,
        "crimes": {},
        "unknown_outcomes": {},
        "message": f"{month} is not published by the police API yet{newest}",
    }


def _current_submission(conn: psycopg.Connection, area_code: str, period_start: date) -> tuple[int, str] | None:
    """The loaded submission in force for the area-month: (submission_id, sha256 of its answers)."""
    return conn.execute(
        """select submission_id, file_sha256 from raw.submissions
           where feed = %s and source_code = %s and period_start = %s and status = 'loaded'
           order by submission_id desc limit 1""",
        (FEED, area_code, period_start),
    ).fetchone()


def in_force(conn: psycopg.Connection, area_code: str, month: str) -> dict[str, Any] | None:
    """The pull in force for the area-month (submission id and when it was received), or None: what
    a failed or refused pull leaves standing."""
    row = conn.execute(
        """select submission_id, received_at from raw.submissions
           where feed = %s and source_code = %s and period_start = %s and status = 'loaded'
           order by submission_id desc limit 1""",
        (FEED, area_code, _month_start(month)),
    ).fetchone()
    return {"submission_id": row[0], "received_at": row[1].isoformat()} if row else None


def _crimes_in_force(conn: psycopg.Connection, submission_id: int) -> dict[str, int]:
    """Crimes per requested category of a loaded submission."""
    return dict(
        conn.execute(
            "select requested_category, count(*) from raw.police_crimes where submission_id = %s group by 1",
            (submission_id,),
        ).fetchall()
    )


def _unchanged(submission_id: int) -> dict[str, Any]:
    """A pull whose answers are the current submission's, byte for byte: counted and checked when it loaded."""
    return {
        "status": "duplicate",
        "submission_id": submission_id,
        "rows": 0,
        "crimes": None,
        "split_line_repeats_dropped": None,
        "unknown_outcomes": {},
        "message": f"same answers as submission {submission_id}: nothing changed",
    }


def unavailable(area_code: str, month: str, error: PoliceApiError, standing: dict[str, Any] | None) -> dict[str, Any]:
    """The result for an area-month the API could not give: the pull in force (if any) stays, flagged."""
    kept = (
        f"submission {standing['submission_id']} of {standing['received_at'][:10]} stays in force"
        if standing
        else "no pull of it in force: C2 missing"
    )
    return {
        "area": area_code,
        "month": month,
        "status": "unavailable",
        "submission_id": None,
        "in_force": standing,
        "rows": 0,
        "crimes": {},
        "unknown_outcomes": {},
        "reason": error.problem,
        "url": error.url,
        "message": f"data.police.uk unavailable ({error.problem}); {kept}",
    }


def _refuse(
    conn: psycopg.Connection,
    refusal: AnswerRefused,
    period_start: date,
    sha256: str,
    file_bytes: int,
    received_at: datetime,
    dag_run_id: str | None,
) -> tuple[int, bool]:
    """Record a refused answer in raw.submissions (its bytes stay in the archive); (submission_id, new).

    The same refused bytes again (the API still answering wrongly at the next run) add no row.
    """
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"{FEED}|{refusal.area}|{period_start}",))
        same = conn.execute(
            """select submission_id from raw.submissions
               where feed = %s and source_code = %s and period_start = %s and status = 'refused'
                 and file_sha256 = %s order by submission_id desc limit 1""",
            (FEED, refusal.area, period_start, sha256),
        ).fetchone()
        if same:
            return same[0], False
        submission_id = conn.execute(
            """insert into raw.submissions (feed, source_code, period_start, file_name, file_sha256,
                   file_bytes, received_at, status, refusal_code, refusal_reason, dag_run_id)
               values (%s, %s, %s, %s, %s, %s, %s, 'refused', %s, %s, %s) returning submission_id""",
            (
                FEED,
                refusal.area,
                period_start,
                f"crimes-street {'+'.join(CATEGORIES)} {refusal.area} {refusal.month} (refused, not loaded)",
                sha256,
                file_bytes,
                received_at,
                refusal.code,
                refusal.problem,
                dag_run_id,
            ),
        ).fetchone()[0]
    return submission_id, True


def _refused(
    conn: psycopg.Connection,
    refusal: AnswerRefused,
    period_start: date,
    sha256: str,
    file_bytes: int,
    received_at: datetime,
    dag_run_id: str | None,
) -> dict[str, Any]:
    """Record the refused answer (`_refuse`) and say what stays in force: the outcome of `pull`."""
    submission_id, new = _refuse(conn, refusal, period_start, sha256, file_bytes, received_at, dag_run_id)
    standing = in_force(conn, refusal.area, refusal.month)
    kept = f"submission {standing['submission_id']} stays in force" if standing else "no pull in force"
    again = "" if new else " (the same answer as before)"
    log.warning("%s %s: answer REFUSED (%s)%s: %s", refusal.area, refusal.month, refusal.code, again, refusal.problem)
    return {
        "status": "refused",
        "submission_id": submission_id,
        "in_force": standing,
        "rows": 0,
        "crimes": None,
        "split_line_repeats_dropped": None,
        "unknown_outcomes": {},
        "refusal_code": refusal.code,
        "reason": refusal.problem,
        "message": f"answer refused ({refusal.code}) as submission {submission_id}{again}: {kept}",
    }


def pull(
    conn: psycopg.Connection,
    area_code: str,
    month: str,
    dag_run_id: str | None = None,
    *,
    client: PoliceClient | None = None,
    config: PoliceConfig | None = None,
    available: Collection[str] | None = None,
) -> dict[str, Any]:
    """Pull, archive and load one area-month (both categories); `available` skips asking crimes-street-dates.

    Returns status `loaded`, `duplicate` (same bytes as the current submission: nothing changed, and
    nothing parsed: the months before M are pulled again every run, and most come back unchanged),
    `refused` (the answer came but cannot be right: recorded in raw.submissions with its reason,
    not loaded, the pull in force stays) or `not_available`. Raises PoliceApiError when the API
    cannot give the month (unreachable, timeouts, 5xx after retries, another status).
    """
    parse_month(month)  # a ValueError names anything but YYYY-MM
    config = config or load_config()
    area = config.area(area_code)
    client = client or PoliceClient(config.base_url)
    if available is None:
        available = client.available_months(_Where(area_code, month))
    if month not in available:
        return not_available(area_code, month, max(available, default=None))

    folder = archive_folder(area_code, month)
    received_at = datetime.now(UTC)
    started = client.requests_made
    try:
        fetched = [_fetch(client, area, month, category, folder, client.policy) for category in CATEGORIES]
    except AnswerRefused as refusal:  # an answer over the byte limit: nothing of it was kept to name it by
        sha256 = hashlib.sha256(f"{refusal.code} {refusal.url}".encode()).hexdigest()
        summary = {
            "area": area_code,
            "month": month,
            "responses": {},
            "requests": client.requests_made - started,
            "archive": str(folder),
            "sha256": sha256,
        }
        return summary | _refused(conn, refusal, _month_start(month), sha256, 0, received_at, dag_run_id)
    responses = [{"category": f.category, **r} for f in fetched for r in f.responses]
    manifest = "".join(f"{r['category']} {r['part']} {r['sha256']}\n" for r in responses)
    sha256 = hashlib.sha256(manifest.encode()).hexdigest()
    pull_record = {"area": area_code, "month": month, "received_at": received_at.isoformat(), "responses": responses}
    _archive(folder, f"pull_{sha256[:16]}.json", json.dumps(pull_record, indent=2).encode())

    period_start = _month_start(month)
    file_bytes = sum(r["bytes"] for r in responses)
    summary = {
        "area": area_code,
        "month": month,
        "responses": {f.category: len(f.responses) for f in fetched},
        "requests": client.requests_made - started,
        "archive": str(folder),
        "sha256": sha256,
    }
    # the same answers as the current submission (most re-pulls of the months before M): not parsed again
    with conn.transaction():
        current = _current_submission(conn, area_code, period_start)
    if current and current[1] == sha256:
        return summary | _unchanged(current[0])

    try:
        for f in fetched:
            _parse(f, area_code, month, folder)
        if current:
            before = _crimes_in_force(conn, current[0])
            for f in fetched:
                if not f.rows and before.get(f.category):
                    problem = (
                        f"{f.category}: empty answer, where submission {current[0]} in force has"
                        f" {before[f.category]} crime(s); answers kept in {folder}"
                    )
                    raise AnswerRefused(area_code, month, f"{f.category} answers", "police_empty_after_crimes", problem)
    except AnswerRefused as refusal:
        return summary | _refused(conn, refusal, period_start, sha256, file_bytes, received_at, dag_run_id)
    rows = [row for f in fetched for row in f.rows]
    unknown = {
        f.category: dict(sorted((t, n) for t, n in f.outcomes.items() if t not in KNOWN_OUTCOMES)) for f in fetched
    }
    unknown = {category: texts for category, texts in unknown.items() if texts}
    for category, texts in unknown.items():
        log.warning("%s %s %s: outcome texts not in the contract, kept: %s", area_code, month, category, texts)

    result = summary | {
        "crimes": {f.category: len(f.rows) for f in fetched},
        "split_line_repeats_dropped": {f.category: f.dropped for f in fetched},
        "unknown_outcomes": unknown,
    }
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"{FEED}|{area_code}|{period_start}",))
        current = _current_submission(conn, area_code, period_start)  # again, under the lock
        if current and current[1] == sha256:
            return summary | _unchanged(current[0])
        submission_id = conn.execute(
            """insert into raw.submissions (feed, source_code, period_start, file_name, file_sha256,
                   file_bytes, received_at, status, dag_run_id)
               values (%s, %s, %s, %s, %s, %s, %s, 'loaded', %s) returning submission_id""",
            (
                FEED,
                area_code,
                period_start,
                f"crimes-street {'+'.join(CATEGORIES)} {area_code} {month} ({len(responses)} responses)",
                sha256,
                file_bytes,
                received_at,
                dag_run_id,
            ),
        ).fetchone()[0]
        copy = sql.SQL("copy raw.police_crimes ({}) from stdin").format(
            sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
        )
        with conn.cursor().copy(copy) as writer:
            for source_row, values in enumerate(rows, start=1):
                writer.write_row((submission_id, source_row, *values))
        conn.execute(
            "update raw.submissions set loaded_at = now(), row_count = %s where submission_id = %s",
            (len(rows), submission_id),
        )
    superseded = f" (supersedes {current[0]})" if current else ""
    counts = ", ".join(f"{n} {c}" for c, n in result["crimes"].items())
    return result | {
        "status": "loaded",
        "submission_id": submission_id,
        "rows": len(rows),
        "message": f"{counts} loaded as submission {submission_id}{superseded}",
    }
