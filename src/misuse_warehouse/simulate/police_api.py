"""A local stand-in for data.police.uk's street-crime API, so the demo and tests run offline.

It answers the three endpoints the connector uses, in the API's shape and with its refusals, so
the same connector code runs against it as against the real API:

- `GET /api/crimes-street-dates`: the published months, newest first, up to `latest`;
- `GET|POST /api/crimes-street/{category}?poly=...&date=YYYY-MM`: the simulated crimes of that
  month inside the polygon (POST takes `poly` and `date` form-encoded in the body);
- 503 when the answer would be over `max_crimes` (10,000 as the real API), 400 for a GET URL over
  4,094 characters or a bad polygon, 429 over 15 requests a second (burst 30), 404 for a month
  not published;
- while the `outage` event passed to `start` is set, 503 with an error page to every request, as a
  proxy in front of a failing API answers (tests of the warehouse running through an outage).

Crimes are invented per area and month from the seed alone (the same seed gives the same bytes),
at plausible volumes (all-crime about 1,500 to 8,000 a month scaled by adult population, drugs 20
to 150), placed at street points inside the area's configured polygon (police_areas.yaml) so a
split polygon finds every one of them. Only the area list and populations are read from the feed
simulator; nothing here depends on its people or journeys.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from misuse_warehouse import police
from misuse_warehouse.months import month_text, parse_month
from misuse_warehouse.simulate import serving
from misuse_warehouse.simulate.areas import AREAS

MAX_CRIMES = 10_000
FIRST_MONTH = "2010-12"
"""The API's street-level data starts in December 2010."""

_OTHER_CATEGORIES = (
    ("violent-crime", 0.34),
    ("anti-social-behaviour", 0.20),
    ("public-order", 0.09),
    ("criminal-damage-arson", 0.08),
    ("shoplifting", 0.07),
    ("other-theft", 0.06),
    ("vehicle-crime", 0.05),
    ("burglary", 0.04),
    ("other-crime", 0.02),
    ("theft-from-the-person", 0.01),
    ("bicycle-theft", 0.01),
    ("robbery", 0.01),
    ("possession-of-weapons", 0.01),
)
_DRUGS_OUTCOMES = (
    ("Offender given a drugs possession warning", 0.25),
    ("Offender given penalty notice", 0.15),
    ("Local resolution", 0.15),
    ("Under investigation", 0.15),
    ("Awaiting court outcome", 0.10),
    ("Unable to prosecute suspect", 0.08),
    ("Investigation complete; no suspect identified", 0.04),
    ("Court result unavailable", 0.04),
    ("Offender sent to prison", 0.04),
)
_OTHER_OUTCOMES = (
    ("Under investigation", 0.30),
    ("Investigation complete; no suspect identified", 0.30),
    ("Unable to prosecute suspect", 0.20),
    ("Local resolution", 0.06),
    ("Awaiting court outcome", 0.06),
    ("Court result unavailable", 0.03),
    ("Offender sent to prison", 0.03),
    ("Offender given penalty notice", 0.02),
)
_STREET_WORDS = (
    "High", "Station", "Church", "Mill", "Park", "Victoria", "Queen", "King", "London", "Castle",
    "Bridge", "Market", "Green", "Manor", "School", "New", "Albert", "York", "North", "South",
)  # fmt: skip
_STREET_KINDS = ("Street", "Road", "Lane", "Avenue", "Close", "Way", "Drive", "Place")


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([v for v, _ in table], [w for _, w in table])[0]


def inside(point: police.Point, polygon: police.Polygon) -> bool:
    """Crossing-number test; parts of a split polygon share edges, and each point falls in one of them."""
    lat, lng = point
    result = False
    for (lat1, lng1), (lat2, lng2) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (lat1 > lat) != (lat2 > lat) and lng < lng1 + (lat - lat1) * (lng2 - lng1) / (lat2 - lat1):
            result = not result
    return result


@lru_cache(maxsize=8)
def _streets(
    seed: int, area_code: str, polygons: tuple[police.Polygon, ...]
) -> tuple[tuple[int, str, float, float], ...]:
    """(street id, name, lat, lng) snap points: the API publishes crimes at anonymised street points."""
    rng = _rng(seed, area_code, "streets")
    streets = []
    base = int(hashlib.sha256(area_code.encode()).hexdigest()[:5], 16) * 1000
    for i in range(600):
        polygon = polygons[i % len(polygons)]
        south, west, north, east = police.bounding_box(polygon)
        while True:
            point = (round(rng.uniform(south, north), 6), round(rng.uniform(west, east), 6))
            if inside(point, polygon):
                break
        name = f"On or near {rng.choice(_STREET_WORDS)} {rng.choice(_STREET_KINDS)}"
        streets.append((base + i, name, *point))
    return tuple(streets)


@lru_cache(maxsize=16)
def _month_crimes(
    seed: int, area: police.PoliceArea, month: str, latest: str
) -> tuple[tuple[float, float, str, str], ...]:
    """(lat, lng, category, compact JSON) of every crime of the area-month, in a stable order."""
    index = parse_month(month)
    rng = _rng(seed, area.code, month, "crimes")
    adults = AREAS[area.code].adults if area.code in AREAS else 200_000
    season = 1 + 0.08 * math.cos(2 * math.pi * ((index % 12) - 6) / 12)
    all_crime = min(8000, max(1500, round(adults * 0.0095 * season * rng.uniform(0.9, 1.1))))
    drugs = min(150, max(20, round(all_crime * rng.uniform(0.012, 0.025))))
    streets = _streets(seed, area.code, area.polygons)
    last = parse_month(latest)
    first_id = 1_000_000_000 + (int(area.code[1:]) % 10) * 100_000_000 + (index % 9000) * 10_000
    crimes = []
    for i in range(all_crime):
        category = "drugs" if i < drugs else _pick(rng, _OTHER_CATEGORIES)
        street_id, street_name, lat, lng = rng.choice(streets)
        btp = rng.random() < 0.01
        if category == "anti-social-behaviour":
            persistent_id, outcome = "", None
        else:
            persistent_id = hashlib.sha256(f"{seed}|{area.code}|{month}|{i}".encode()).hexdigest()
            text = _pick(rng, _DRUGS_OUTCOMES if category == "drugs" else _OTHER_OUTCOMES)
            outcome = {"category": text, "date": month_text(min(last, index + rng.choice((0, 0, 1, 2, 3))))}
        record = {
            "category": category,
            "location_type": "BTP" if btp else "Force",
            "location": {
                "latitude": f"{lat:.6f}",
                "street": {"id": street_id, "name": street_name},
                "longitude": f"{lng:.6f}",
            },
            "context": "",
            "outcome_status": outcome,
            "persistent_id": persistent_id,
            "id": first_id + i,
            "location_subtype": "STATION" if btp else "",
            "month": month,
        }
        crimes.append((lat, lng, category, json.dumps(record, separators=(",", ":"))))
    rng.shuffle(crimes)
    return tuple(crimes)


def crimes_for(area_code: str, month: str, seed: int = 42, latest: str | None = None) -> list[dict]:
    """The simulated crimes of one area-month as the API would list them (for tests and checks)."""
    area = police.load_config().area(area_code)
    return [json.loads(c[3]) for c in _month_crimes(seed, area, month, latest or month)]


class _Bucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst, self.tokens, self.last = rate, burst, float(burst), time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True


def start(
    port: int = 0,
    *,
    seed: int = 42,
    latest: str | None = None,
    max_crimes: int = MAX_CRIMES,
    rate_limit: bool = True,
    config: police.PoliceConfig | None = None,
    outage: threading.Event | None = None,
) -> tuple[str, Callable[[], None]]:
    """Serve on 127.0.0.1 in a daemon thread; returns (base URL ending in /api, stop).

    `latest` is the newest published month (default: two months before today, as the real lag).
    `outage`, while set, makes the stand-in answer like a failing API (503 with an error page).
    """
    if latest is None:
        today = time.gmtime()
        latest = month_text(today.tm_year * 12 + today.tm_mon - 1 - 2)
    published = [month_text(i) for i in range(parse_month(FIRST_MONTH), parse_month(latest) + 1)]
    areas = tuple((config or police.load_config()).areas.values())
    bucket = _Bucket(15, 30) if rate_limit else None

    def dates_body() -> bytes:
        forces = ["avon-and-somerset", "kent", "nottinghamshire", "west-mercia"]
        return json.dumps([{"date": m, "stop-and-search": forces} for m in reversed(published)]).encode()

    def crimes_body(category: str, params: dict[str, list[str]]) -> tuple[int, bytes]:
        month = (params.get("date") or [""])[0]
        if month not in published:
            return 404, b'{"error": "no data for this date"}'
        try:
            pairs = [p.split(",") for p in params["poly"][0].split(":")]
            polygon = tuple((float(lat), float(lng)) for lat, lng in pairs)
        except (KeyError, ValueError):
            return 400, b"poly must be lat,lng:lat,lng:..."
        if len(polygon) < 3:
            return 400, b"poly needs three points or more"
        return answer(category, polygon, month)

    # the same question gets the same bytes: each run asks again for the two months before M. Room for
    # five areas x two categories x three months (the demo); at national scale it only costs memory.
    @lru_cache(maxsize=40)
    def answer(category: str, polygon: police.Polygon, month: str) -> tuple[int, bytes]:
        south, west, north, east = police.bounding_box(polygon)
        found = []
        for area in areas:
            a_south, a_west, a_north, a_east = (
                min(b[0] for b in map(police.bounding_box, area.polygons)),
                min(b[1] for b in map(police.bounding_box, area.polygons)),
                max(b[2] for b in map(police.bounding_box, area.polygons)),
                max(b[3] for b in map(police.bounding_box, area.polygons)),
            )
            if a_north < south or a_south > north or a_east < west or a_west > east:
                continue
            for lat, lng, crime_category, body in _month_crimes(seed, area, month, latest):
                if category in ("all-crime", crime_category) and inside((lat, lng), polygon):
                    found.append(body)
                    if len(found) > max_crimes:
                        return 503, b""
        return 200, ("[" + ",".join(found) + "]").encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            if status == 429:
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(body)

        def _route(self, params: dict[str, list[str]]) -> None:
            if outage is not None and outage.is_set():
                return self._answer(503, b"<html><body><h1>503 Service Unavailable</h1></body></html>")
            if bucket and not bucket.take():
                return self._answer(429, b"Too Many Requests")
            path = urlsplit(self.path).path.rstrip("/")
            if path == "/api/crimes-street-dates":
                return self._answer(200, dates_body())
            prefix = "/api/crimes-street/"
            if path.startswith(prefix):
                return self._answer(*crimes_body(path[len(prefix) :], params))
            return self._answer(404, b"not found")

        def do_GET(self) -> None:  # http.server's naming
            if len(self.path) > police.MAX_URL:
                return self._answer(400, b"Request-URI Too Long: POST the polygon instead")
            self._route(parse_qs(urlsplit(self.path).query))

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            self._route(parse_qs(urlsplit(self.path).query) | parse_qs(body))

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the demo's console is for the pipeline."""

    return serving.serve(Handler, port, "fake-police-api")
