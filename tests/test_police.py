"""The data.police.uk connector against local HTTP servers that answer like the API.

Scripted sequences (pytest-httpserver) cover the API's refusals; the real August 2014 answer is the
fixture; the last tests run the DAG's task function against the demo's simulated API.
"""

from __future__ import annotations

import functools
import json
import math
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from misuse_warehouse import pipeline, police, settings
from misuse_warehouse.simulate import police_api

FIXTURE = Path(__file__).parent / "fixtures" / "police" / "crimes-street_all-crime_2014-08.json"
FIXTURE_BYTES = FIXTURE.read_bytes()
FIXTURE_CRIMES = json.loads(FIXTURE_BYTES)
AREA = "E09000030"
MONTH = "2014-08"
BOX = ((51.48, -0.03), (51.48, 0.04), (51.52, 0.04), (51.52, -0.03))
"""Around the fixture's crimes (east London)."""
FAST = police.RetryPolicy(timeout=2.0, attempts=3, backoff=0.01, max_wait=0.05)


def _config(server_url: str, polygon: police.Polygon = BOX) -> police.PoliceConfig:
    area = police.PoliceArea(AREA, "Tower Hamlets (test box)", (polygon,), approximate=True)
    return police.PoliceConfig(server_url.rstrip("/"), {AREA: area})


def _pull(db: psycopg.Connection, server_url: str, waits: list[float] | None = None, **kwargs: Any) -> dict[str, Any]:
    client = police.PoliceClient(server_url, FAST, sleep=(waits.append if waits is not None else lambda _: None))
    config = kwargs.pop("config", None) or _config(server_url)
    return police.pull(db, AREA, MONTH, "test-run", client=client, config=config, **kwargs)


def _dates(httpserver: HTTPServer, *months: str) -> None:
    httpserver.expect_request("/api/crimes-street-dates").respond_with_json(
        [{"date": m, "stop-and-search": []} for m in sorted(months, reverse=True)]
    )


def _serve(httpserver: HTTPServer, category: str, body: bytes | list, status: int = 200) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    httpserver.expect_request(f"/api/crimes-street/{category}").respond_with_data(
        data, status=status, content_type="application/json"
    )


def _serve_fixture(httpserver: HTTPServer) -> bytes:
    """The real answer as all-crime; for drugs the same crimes filtered, as the API would answer."""
    _dates(httpserver, "2014-07", MONTH)
    _serve(httpserver, "all-crime", FIXTURE_BYTES)
    drugs = json.dumps([c for c in FIXTURE_CRIMES if c["category"] == "drugs"]).encode()
    _serve(httpserver, "drugs", drugs)
    return drugs


def _crime(persistent_id: str, api_id: int, lat: float, lng: float, **fields: Any) -> dict[str, Any]:
    crime = {
        "category": "drugs",
        "location_type": "Force",
        "location": {
            "latitude": f"{lat:.6f}",
            "street": {"id": 1000 + api_id, "name": "On or near X"},
            "longitude": f"{lng:.6f}",
        },
        "context": "",
        "outcome_status": {"category": "Under investigation", "date": MONTH},
        "persistent_id": persistent_id,
        "id": api_id,
        "location_subtype": "",
        "month": MONTH,
    }
    return crime | fields


# --- the real answer -------------------------------------------------------------------------


def test_fixture_loads_374_crimes_and_the_9_drugs(db: psycopg.Connection, httpserver: HTTPServer) -> None:
    drugs_body = _serve_fixture(httpserver)
    result = _pull(db, httpserver.url_for("/api"))

    assert result["status"] == "loaded"
    assert result["crimes"] == {"drugs": 9, "all-crime": 374}
    assert result["rows"] == 383
    audit = db.execute(
        "select feed, source_code, period_start::text, status, row_count, length(file_sha256), file_bytes, dag_run_id"
        " from raw.submissions"
    ).fetchall()
    assert audit == [
        ("police", AREA, "2014-08-01", "loaded", 383, 64, len(FIXTURE_BYTES) + len(drugs_body), "test-run")
    ]

    counts = dict(db.execute("select requested_category, count(*) from raw.police_crimes group by 1").fetchall())
    assert counts == {"all-crime": 374, "drugs": 9}
    outcomes = db.execute(
        "select outcome_category, count(*) from raw.police_crimes where requested_category = 'all-crime' group by 1"
    ).fetchall()
    assert dict(outcomes) == Counter((c["outcome_status"] or {}).get("category") for c in FIXTURE_CRIMES)
    categories = dict(
        db.execute(
            "select category, count(*) from raw.police_crimes where requested_category = 'all-crime' group by 1"
        ).fetchall()
    )
    assert categories == Counter(c["category"] for c in FIXTURE_CRIMES)
    assert db.execute(
        "select count(*) from raw.police_crimes where requested_category = 'all-crime' and persistent_id is null"
    ).fetchone() == (sum(1 for c in FIXTURE_CRIMES if not c["persistent_id"]),)
    first = db.execute(
        """select source_row, persistent_id, api_id, category, month::text, latitude, longitude, street_id, street_name,
                  location_type, context, outcome_category, outcome_month
           from raw.police_crimes where api_id = 35006227"""
    ).fetchone()
    assert first[1:] == (
        None, 35006227, "anti-social-behaviour", "2014-08-01", Decimal("51.499798"), Decimal("-0.012859"),
        954369, "On or near Marsh Wall", "Force", None, None, None,
    )  # fmt: skip
    drug = db.execute(
        "select outcome_category, outcome_month::text from raw.police_crimes"
        " where requested_category = 'drugs' and outcome_category = 'Offender given penalty notice' limit 1"
    ).fetchone()
    assert drug == ("Offender given penalty notice", "2014-08-01")
    # Eight persistent_ids come twice in the real answer (different ids): distinct records, both kept.
    assert db.execute(
        """select count(*) from (select persistent_id from raw.police_crimes where requested_category = 'all-crime'
           and persistent_id is not null group by 1 having count(*) > 1) twice"""
    ).fetchone() == (8,)
    # The real answer has an outcome text the contract does not list: kept, and reported.
    assert result["unknown_outcomes"] == {"all-crime": {"Offender given a caution": 3}}


def test_archive_holds_every_answer_byte_for_byte(db: psycopg.Connection, httpserver: HTTPServer) -> None:
    drugs_body = _serve_fixture(httpserver)
    result = _pull(db, httpserver.url_for("/api"))
    folder = Path(result["archive"])
    assert folder == police.archive_folder(AREA, MONTH) and folder.parts[-3:] == ("police", AREA, MONTH)
    bodies = {p.name.split("_")[0]: p.read_bytes() for p in folder.glob("*.json") if not p.name.startswith("pull_")}
    assert bodies == {"all-crime": FIXTURE_BYTES, "drugs": drugs_body}
    (manifest,) = folder.glob("pull_*.json")
    assert [r["category"] for r in json.loads(manifest.read_text())["responses"]] == ["drugs", "all-crime"]


def test_answer_is_archived_before_it_is_parsed(db: psycopg.Connection, httpserver: HTTPServer) -> None:
    _dates(httpserver, MONTH)
    broken = b'[{"category": "drugs", "persistent_id": "ab'  # cut off mid-answer
    _serve(httpserver, "drugs", broken)
    _serve(httpserver, "all-crime", FIXTURE_BYTES)  # answers are parsed once all have come
    result = _pull(db, httpserver.url_for("/api"))
    assert result["status"] == "refused" and result["refusal_code"] == "police_not_json"
    assert result["reason"].startswith("drugs: answer is not JSON")
    (archived,) = police.archive_folder(AREA, MONTH).glob("drugs_*.json")
    assert archived.read_bytes() == broken
    assert str(archived) in result["reason"]
    # recorded as a refused submission with its reason, and nothing loaded
    assert db.execute("select status, refusal_code, row_count from raw.submissions").fetchall() == [
        ("refused", "police_not_json", None)
    ]
    assert db.execute("select count(*) from raw.police_crimes").fetchone() == (0,)


def test_the_same_pull_twice_changes_nothing(db: psycopg.Connection, httpserver: HTTPServer) -> None:
    _serve_fixture(httpserver)
    first = _pull(db, httpserver.url_for("/api"))
    second = _pull(db, httpserver.url_for("/api"))
    assert second["status"] == "duplicate" and second["submission_id"] == first["submission_id"]
    assert second["crimes"] is None, "answers byte for byte the current submission's are not parsed again"
    assert db.execute("select count(*) from raw.submissions").fetchone() == (1,)
    assert db.execute("select count(*) from raw.police_crimes").fetchone() == (383,)

    httpserver.clear()  # the API restates the month: one crime fewer
    _dates(httpserver, MONTH)
    _serve(httpserver, "all-crime", FIXTURE_CRIMES[1:])
    _serve(httpserver, "drugs", [c for c in FIXTURE_CRIMES if c["category"] == "drugs"])
    third = _pull(db, httpserver.url_for("/api"))
    assert third["status"] == "loaded" and f"supersedes {first['submission_id']}" in third["message"]
    assert third["crimes"] == {"drugs": 9, "all-crime": 373}


def test_unknown_outcome_text_and_missing_location_are_kept(db: psycopg.Connection, httpserver: HTTPServer) -> None:
    _dates(httpserver, MONTH)
    odd = "Offender given a stern talking-to"
    crimes = [
        _crime("a" * 64, 1, 51.50, 0.00, outcome_status={"category": odd, "date": "2014-09"}),
        _crime("b" * 64, 2, 51.50, 0.00, location=None, outcome_status=None),
    ]
    _serve(httpserver, "drugs", crimes)
    _serve(httpserver, "all-crime", crimes)
    result = _pull(db, httpserver.url_for("/api"))
    assert result["unknown_outcomes"] == {"drugs": {odd: 1}, "all-crime": {odd: 1}}
    rows = db.execute(
        "select persistent_id, outcome_category, outcome_month::text, latitude, street_id from raw.police_crimes"
        " where requested_category = 'drugs' order by source_row"
    ).fetchall()
    assert rows == [("a" * 64, odd, "2014-09-01", Decimal("51.500000"), 1001), ("b" * 64, None, None, None, None)]


# --- the API's refusals ----------------------------------------------------------------------

SQUARE = ((51.0, 0.0), (51.0, 1.0), (52.0, 1.0), (52.0, 0.0))
"""Cut at 51.5 and 0.5."""


def test_503_splits_the_polygon_without_counting_crimes_on_the_cut_twice(
    db: psycopg.Connection, httpserver: HTTPServer
) -> None:
    crimes = [
        _crime("a" * 64, 1, 51.2, 0.2),  # south-west
        _crime("b" * 64, 2, 51.8, 0.8),  # north-east
        _crime("c" * 64, 3, 51.5, 0.2),  # on the east-west cut: south-west and north-west both return it
        _crime("", 4, 51.5, 0.3, category="anti-social-behaviour", outcome_status=None),  # same, no persistent_id
        _crime("e" * 64, 5, 51.2, 0.8),  # twice in one part under one persistent_id, as the real API does
        _crime("e" * 64, 6, 51.2, 0.8, category="public-order"),
        _crime("f" * 64, 7, 51.5, 0.5),  # the centre: all four parts return it
    ]

    def answer(request: Request) -> Response:
        points = [tuple(map(float, p.split(","))) for p in request.args["poly"].split(":")]
        south, west, north, east = police.bounding_box(tuple(points))
        if (south, west, north, east) == (51.0, 0.0, 52.0, 1.0):
            return Response("", status=503)
        category = request.path.rsplit("/", 1)[1]
        found = [
            c
            for c in crimes
            if south <= float(c["location"]["latitude"]) <= north
            and west <= float(c["location"]["longitude"]) <= east
            and category in ("all-crime", c["category"])
        ]
        return Response(json.dumps(found), content_type="application/json")

    _dates(httpserver, MONTH)
    httpserver.expect_request("/api/crimes-street/drugs").respond_with_handler(answer)
    httpserver.expect_request("/api/crimes-street/all-crime").respond_with_handler(answer)
    result = _pull(db, httpserver.url_for("/api"), config=_config(httpserver.url_for("/api"), SQUARE))

    assert result["responses"] == {"drugs": 4, "all-crime": 4} and result["requests"] == 10
    assert result["crimes"] == {"drugs": 5, "all-crime": 7}
    assert result["split_line_repeats_dropped"] == {"drugs": 4, "all-crime": 5}
    keys = db.execute(
        "select coalesce(persistent_id, 'id ' || api_id), count(*) from raw.police_crimes"
        " where requested_category = 'all-crime' group by 1 order by 1"
    ).fetchall()
    assert keys == [("a" * 64, 1), ("b" * 64, 1), ("c" * 64, 1), ("e" * 64, 2), ("f" * 64, 1), ("id 4", 1)]
    parts = sorted(p.name.split("_")[1] for p in police.archive_folder(AREA, MONTH).glob("all-crime_*.json"))
    assert parts == ["p00", "p01", "p02", "p03"]


def test_503_at_every_depth_fails_after_the_last_split(db: psycopg.Connection, httpserver: HTTPServer) -> None:
    _dates(httpserver, MONTH)
    httpserver.expect_request("/api/crimes-street/drugs").respond_with_data("", status=503)
    client = police.PoliceClient(httpserver.url_for("/api"), police.RetryPolicy(max_split_depth=2))
    with pytest.raises(police.PoliceApiError, match=r"month 2014-08: drugs: still over 10,000 crimes .* 2 times"):
        police.pull(db, AREA, MONTH, client=client, config=_config(httpserver.url_for("/api"), SQUARE))
    assert client.requests_made == 4  # dates, the polygon, one quarter, one sixteenth: depth first, fails fast


def test_429_backs_off_and_retries(db: psycopg.Connection, httpserver: HTTPServer) -> None:
    _dates(httpserver, MONTH)
    answers = [Response("slow down", status=429, headers={"Retry-After": "0.04"}), Response("[]")]
    httpserver.expect_request("/api/crimes-street/drugs").respond_with_handler(lambda _: answers.pop(0))
    _serve(httpserver, "all-crime", FIXTURE_BYTES)
    waits: list[float] = []
    result = _pull(db, httpserver.url_for("/api"), waits)
    assert result["status"] == "loaded" and result["crimes"] == {"drugs": 0, "all-crime": 374}
    assert waits == [0.04]  # Retry-After (longer than the policy's first backoff) was honoured
    assert result["requests"] == 3


def test_429_until_the_attempts_run_out_fails_clearly(db: psycopg.Connection, httpserver: HTTPServer) -> None:
    _dates(httpserver, MONTH)
    _serve(httpserver, "drugs", b"slow down", status=429)
    waits: list[float] = []
    with pytest.raises(police.PoliceApiError, match=r"gave up after 3 attempts, last: HTTP 429"):
        _pull(db, httpserver.url_for("/api"), waits)
    assert waits == [0.01, 0.02]  # exponential


def test_rate_limiter_keeps_to_15_a_second_after_a_burst_of_30() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = police.RateLimiter(15, 30, clock=lambda: now[0], sleep=sleep)
    for _ in range(30):
        limiter.acquire()
    assert slept == []
    for _ in range(15):
        limiter.acquire()
    assert slept == pytest.approx([1 / 15] * 15) and now[0] == pytest.approx(1.0)


def test_long_polygon_is_posted(db: psycopg.Connection, httpserver: HTTPServer) -> None:
    circle = tuple(
        (51.5 + 0.02 * math.sin(i / 50 * math.pi), 0.005 + 0.03 * math.cos(i / 50 * math.pi)) for i in range(300)
    )
    assert len(f"{httpserver.url_for('/api')}/crimes-street/drugs?poly={police.poly_param(circle)}") > police.MAX_URL
    seen: list[tuple[str, int, str]] = []

    def answer(request: Request) -> Response:
        seen.append((request.method, len(request.form["poly"].split(":")), request.form["date"]))
        return Response("[]", content_type="application/json")

    _dates(httpserver, MONTH)
    for category in police.CATEGORIES:
        httpserver.expect_request(f"/api/crimes-street/{category}", method="POST").respond_with_handler(answer)
    result = _pull(db, httpserver.url_for("/api"), config=_config(httpserver.url_for("/api"), circle))
    assert result["status"] == "loaded"
    assert seen == [("POST", 300, MONTH), ("POST", 300, MONTH)]
    assert [request.method for request, _ in httpserver.log if "/crimes-street/" in request.path] == ["POST", "POST"]


@pytest.fixture
def slow_server() -> Iterator[HTTPServer]:
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def test_timeouts_retry_then_fail_naming_area_month_and_url(db: psycopg.Connection, slow_server: HTTPServer) -> None:
    def too_slow(request: Request) -> Response:
        time.sleep(0.5)
        return Response("[]", content_type="application/json")

    _dates(slow_server, MONTH)
    slow_server.expect_request("/api/crimes-street/drugs").respond_with_handler(too_slow)
    url = slow_server.url_for("/api")
    policy = police.RetryPolicy(timeout=0.1, attempts=3, backoff=0.01)
    client = police.PoliceClient(url, policy, sleep=lambda _: None)
    with pytest.raises(police.PoliceApiError) as error:
        police.pull(db, AREA, MONTH, client=client, config=_config(url))
    message = str(error.value)
    assert "area E09000030, month 2014-08: drugs: gave up after 3 attempts, last: ReadTimeout" in message
    assert f"{url}/crimes-street/drugs?poly=51.480000,-0.030000:" in message and "&date=2014-08" in message
    assert client.requests_made == 1 + 3


def test_connection_errors_retry_then_fail_naming_the_url(db: psycopg.Connection) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    client = police.PoliceClient(url, FAST, sleep=lambda _: None)
    with pytest.raises(police.PoliceApiError, match=r"gave up after 3 attempts, last: ConnectionError") as error:
        police.pull(db, AREA, MONTH, client=client, config=_config(url), available=[MONTH])
    assert f"{url}/crimes-street/drugs?poly=" in str(error.value) and client.requests_made == 3


def test_a_4xx_fails_at_once_and_clearly(db: psycopg.Connection, httpserver: HTTPServer) -> None:
    _dates(httpserver, MONTH)
    _serve(httpserver, "drugs", b"no", status=400)
    client = police.PoliceClient(httpserver.url_for("/api"), FAST)
    with pytest.raises(
        police.PoliceApiError, match=r"month 2014-08: drugs: HTTP 400 BAD REQUEST \('no'\) — http://"
    ) as error:
        police.pull(db, AREA, MONTH, client=client, config=_config(httpserver.url_for("/api")))
    assert "/crimes-street/drugs?poly=" in str(error.value) and client.requests_made == 2  # not retried


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_5xx_is_retried_then_fails_clearly(db: psycopg.Connection, httpserver: HTTPServer, status: int) -> None:
    _dates(httpserver, MONTH)
    _serve(httpserver, "drugs", b"<html>upstream trouble</html>", status=status)
    waits: list[float] = []
    client = police.PoliceClient(httpserver.url_for("/api"), FAST, sleep=waits.append)
    with pytest.raises(police.PoliceApiError, match=rf"gave up after 3 attempts, last: HTTP {status} "):
        police.pull(db, AREA, MONTH, client=client, config=_config(httpserver.url_for("/api")))
    assert client.requests_made == 1 + 3 and waits == [0.01, 0.02]


# --- months not published yet ----------------------------------------------------------------


def test_unpublished_month_is_not_available(db: psycopg.Connection, httpserver: HTTPServer) -> None:
    _dates(httpserver, "2014-06", "2014-07")
    result = _pull(db, httpserver.url_for("/api"))
    assert result["status"] == "not_available" and "newest published: 2014-07" in result["message"]
    assert [r.path for r, _ in httpserver.log] == ["/api/crimes-street-dates"]
    assert db.execute("select count(*) from raw.submissions").fetchone() == (0,)


def test_pull_police_says_not_available_for_every_area(
    db: psycopg.Connection, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dates(httpserver, "2025-01")
    monkeypatch.setenv(police.BASE_URL_ENV, httpserver.url_for("/api"))
    summary = pipeline.pull_police("2025-02", "test-run")
    assert summary["status"] == "not_available" and summary["not_available"] is True
    assert summary["latest_published"] == "2025-01"
    assert {a["status"] for a in summary["areas"].values()} == {"not_available"}
    assert set(summary["areas"]) == {"E06000035", "E06000019", "E10000034", "E06000022", "E06000018"}


def test_a_run_asks_for_the_published_months_once(
    db: psycopg.Connection, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run for M tries M and the months before it; the list of published months serves them all."""
    _dates(httpserver, "2025-01")
    monkeypatch.setenv(police.BASE_URL_ENV, httpserver.url_for("/api"))
    summary = pipeline.pull_police_recent("2025-04", "test-run")
    assert summary["not_available"] == ["2025-02", "2025-03", "2025-04"] and summary["pulled"] == []
    assert [r.path for r, _ in httpserver.log] == ["/api/crimes-street-dates"]


# --- configuration and the demo's simulated API ----------------------------------------------


def test_config_areas_are_the_demo_areas_labelled_approximate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(police.BASE_URL_ENV, raising=False)
    config = police.load_config()
    assert config.base_url == "https://data.police.uk/api"
    assert set(config.areas) == {"E06000035", "E06000019", "E10000034", "E06000022", "E06000018"}
    assert all(a.approximate and len(a.polygons[0]) >= 5 for a in config.areas.values())
    assert "APPROXIMATE DEMO POLYGONS" in police.AREAS_FILE.read_text()
    monkeypatch.setenv(police.BASE_URL_ENV, "http://127.0.0.1:1/api/")
    assert police.load_config().base_url == "http://127.0.0.1:1/api"


def test_split_parts_cover_the_polygon_exactly() -> None:
    concave = ((51.0, 0.0), (52.0, 0.0), (52.0, 1.0), (51.9, 1.0), (51.9, 0.1), (51.0, 0.1))  # an L
    parts = police.split(concave)
    assert len(parts) == 3  # the L misses one quadrant
    assert sum(abs(police._area(p)) for p in parts) == pytest.approx(abs(police._area(concave)))


def test_pull_police_against_the_simulated_api(
    db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = yaml.safe_load(police.AREAS_FILE.read_text())
    config["areas"] = {"E10000034": config["areas"]["E10000034"]}  # one area-month
    areas_file = tmp_path / "police_areas.yaml"
    areas_file.write_text(yaml.safe_dump(config))
    monkeypatch.setattr(police, "AREAS_FILE", areas_file)
    url, stop = police_api.start(seed=7, latest="2025-06", max_crimes=1000)  # lower ceiling: forces splits
    monkeypatch.setenv(police.BASE_URL_ENV, url)
    try:
        first = pipeline.pull_police("2025-06", "test-run")
        again = pipeline.pull_police("2025-06", "test-run")
        late = pipeline.pull_police("2025-07", "test-run")
    finally:
        stop()
    simulated = police_api.crimes_for("E10000034", "2025-06", seed=7, latest="2025-06")
    drugs = sum(c["category"] == "drugs" for c in simulated)
    assert 1500 <= len(simulated) <= 8000 and 20 <= drugs <= 150

    result = first["areas"]["E10000034"]
    assert first["status"] == "pulled" and first["loaded"] == 1
    assert result["crimes"] == {"drugs": drugs, "all-crime": len(simulated)}
    assert result["responses"]["all-crime"] > 4  # split, and split again
    assert again["duplicate"] == 1 and again["areas"]["E10000034"]["submission_id"] == result["submission_id"]
    assert late["status"] == "not_available"
    loaded = db.execute(
        "select count(*), count(distinct persistent_id), count(*) filter (where persistent_id is null)"
        " from raw.police_crimes where requested_category = 'all-crime'"
    ).fetchone()
    asb = sum(c["category"] == "anti-social-behaviour" for c in simulated)
    assert loaded == (len(simulated), len(simulated) - asb, asb)
    assert first["unknown_outcome_texts"] == []


def test_the_pull_can_be_turned_off_and_an_unreachable_api_says_so(
    db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warehouse on a closed network sets MISUSE_WAREHOUSE_POLICE_API=off; until then each run names the
    setting, and goes on: every area-month of the window is unavailable and keeps what it had."""
    monkeypatch.setenv(police.BASE_URL_ENV, police.TURNED_OFF)
    assert pipeline.pull_police_recent("2025-03") == {
        "months": {},
        "pulled": [],
        "not_available": [],
        "gaps": [],
        "turned_off": True,
    }
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv(police.BASE_URL_ENV, f"http://127.0.0.1:{port}/api")  # nothing listens there
    monkeypatch.setattr(police, "PoliceClient", functools.partial(police.PoliceClient, sleep=lambda _: None))
    one = pipeline.pull_police("2025-03", "run-1")
    assert one["status"] == "unavailable" and len(one["gaps"]) == 5
    assert all("turn the pull off with MISUSE_WAREHOUSE_POLICE_API=off" in g["reason"] for g in one["gaps"])
    recent = pipeline.pull_police_recent("2025-03", "run-2")
    assert recent["pulled"] == [] and list(recent["months"]) == ["2025-01", "2025-02", "2025-03"]
    assert {(g["month"], g["status"]) for g in recent["gaps"]} == {
        (m, "unavailable") for m in ("2025-01", "2025-02", "2025-03")
    }
    assert len(recent["gaps"]) == 15
    # each area-month a row of the run log, which the build and the run report read
    logged = db.execute(
        "select dag_run_id, count(*), min(status), max(status) from ops.task_runs"
        " where task_id = 'pull_police' group by 1 order by 1"
    ).fetchall()
    assert logged == [("run-1", 5, "unavailable", "unavailable"), ("run-2", 15, "unavailable", "unavailable")]


# --- failing soft: an outage or a wrong answer keeps the last good pull -------------------------

OTHER = "E09000025"
OTHER_BOX = ((51.52, -0.03), (51.52, 0.04), (51.56, 0.04), (51.56, -0.03))
"""North of BOX (Newham, as a test box): an area the API answers for while BOX's is down."""


def _two_areas(server_url: str) -> police.PoliceConfig:
    return police.PoliceConfig(
        server_url.rstrip("/"),
        {
            AREA: police.PoliceArea(AREA, "Tower Hamlets (test box)", (BOX,), approximate=True),
            OTHER: police.PoliceArea(OTHER, "Newham (test box)", (OTHER_BOX,), approximate=True),
        },
    )


def _pull_both(server_url: str, run_id: str, **kwargs: Any) -> dict[str, Any]:
    client = police.PoliceClient(server_url, FAST, sleep=lambda _: None)
    return pipeline.pull_police(
        MONTH, run_id, config=_two_areas(server_url), client=client, published=[MONTH], **kwargs
    )


def _logged(db: psycopg.Connection, run_id: str) -> dict[str, tuple]:
    rows = db.execute(
        """select detail->>'area', status, (detail->>'in_force_submission_id')::bigint, detail->>'reason'
           from ops.task_runs where task_id = 'pull_police' and dag_run_id = %s""",
        (run_id,),
    ).fetchall()
    return {area: rest for area, *rest in rows}


def test_an_outage_for_one_area_keeps_its_last_pull_while_the_others_load(
    db: psycopg.Connection, httpserver: HTTPServer
) -> None:
    box = police.poly_param(BOX)
    down = [False]

    def answer(request: Request) -> Response:
        if down[0] and request.args["poly"] == box:  # the API fails for this area's requests only
            return Response("<html><body>502 Bad Gateway</body></html>", status=502, content_type="text/html")
        crimes = FIXTURE_CRIMES if request.args["poly"] == box else FIXTURE_CRIMES[:10]
        if request.path.endswith("/drugs"):
            crimes = [c for c in crimes if c["category"] == "drugs"]
        return Response(json.dumps(crimes), content_type="application/json")

    for category in police.CATEGORIES:
        httpserver.expect_request(f"/api/crimes-street/{category}").respond_with_handler(answer)
    url = httpserver.url_for("/api")
    first = _pull_both(url, "run-1")
    assert first["loaded"] == 2 and first["gaps"] == []
    kept = first["areas"][AREA]["submission_id"]

    down[0] = True
    second = _pull_both(url, "run-2")
    outage = second["areas"][AREA]
    assert outage["status"] == "unavailable" and outage["in_force"]["submission_id"] == kept
    assert "gave up after 3 attempts, last: HTTP 502 BAD GATEWAY" in outage["reason"]
    assert f"submission {kept} of " in outage["message"] and "stays in force" in outage["message"]
    assert second["status"] == "pulled" and second["areas"][OTHER]["status"] == "duplicate"
    assert second["gaps"] == [
        {
            "area": AREA,
            "month": MONTH,
            "status": "unavailable",
            "reason": outage["reason"],
            "in_force": outage["in_force"],
        }
    ]
    # the pull in force is untouched: no submission added, its crimes still there
    assert db.execute("select count(*), max(submission_id) from raw.submissions").fetchone() == (
        2,
        first["areas"][OTHER]["submission_id"],
    )
    assert db.execute("select count(*) from raw.police_crimes where submission_id = %s", (kept,)).fetchone() == (383,)
    # each area-month a row of the run log: what the build flags C2 from
    logged = _logged(db, "run-2")
    assert logged[OTHER][:2] == ["duplicate", None]
    assert logged[AREA][:2] == ["unavailable", kept] and "HTTP 502" in logged[AREA][2]
    assert pipeline.police_gaps(db) == [(AREA, MONTH)]

    down[0] = False  # back: the next pull clears the gap
    assert _pull_both(url, "run-3")["gaps"] == []
    assert pipeline.police_gaps(db) == []


def test_an_empty_answer_after_crimes_is_refused_but_a_first_empty_answer_loads(
    db: psycopg.Connection, httpserver: HTTPServer
) -> None:
    _serve_fixture(httpserver)
    first = _pull(db, httpserver.url_for("/api"))
    httpserver.clear()
    _dates(httpserver, MONTH)
    _serve(httpserver, "drugs", [])
    _serve(httpserver, "all-crime", [])
    refused = _pull(db, httpserver.url_for("/api"))
    assert refused["status"] == "refused" and refused["refusal_code"] == "police_empty_after_crimes"
    assert refused["reason"].startswith(
        f"drugs: empty answer, where submission {first['submission_id']} in force has 9"
    )
    assert refused["in_force"]["submission_id"] == first["submission_id"]
    again = _pull(db, httpserver.url_for("/api"))  # the API still answers [] at the next run
    assert again["status"] == "refused" and again["submission_id"] == refused["submission_id"]
    assert "the same answer as before" in again["message"]
    assert db.execute(
        "select status, refusal_code, left(refusal_reason, 19) from raw.submissions order by submission_id"
    ).fetchall() == [("loaded", None, None), ("refused", "police_empty_after_crimes", "drugs: empty answer")]
    # C2 still reads the pull with crimes: it is the loaded submission in force
    assert police.in_force(db, AREA, MONTH)["submission_id"] == first["submission_id"]

    # an area-month never pulled before: nothing says it had crimes, so [] is plausible and loaded
    httpserver.clear()
    _dates(httpserver, "2014-07", MONTH)
    _serve(httpserver, "drugs", [])
    _serve(httpserver, "all-crime", [])
    client = police.PoliceClient(httpserver.url_for("/api"), FAST)
    quiet = police.pull(db, AREA, "2014-07", client=client, config=_config(httpserver.url_for("/api")))
    assert quiet["status"] == "loaded" and quiet["crimes"] == {"drugs": 0, "all-crime": 0}


def test_crimes_of_another_month_refuse_the_answer(db: psycopg.Connection, httpserver: HTTPServer) -> None:
    _dates(httpserver, MONTH)
    crimes = [_crime("a" * 64, 1, 51.50, 0.00), _crime("b" * 64, 2, 51.50, 0.00, month="2014-07")]
    crimes += [_crime("c" * 64, 3, 51.50, 0.00, month="2014-07"), _crime("d" * 64, 4, 51.5, 0.0, month="2014-09")]
    _serve(httpserver, "drugs", crimes[:1])
    _serve(httpserver, "all-crime", crimes)
    result = _pull(db, httpserver.url_for("/api"))
    assert result["status"] == "refused" and result["refusal_code"] == "police_wrong_month"
    assert result["reason"].startswith("all-crime: 3 crime(s) not of 2014-08 (2014-07: 2, 2014-09: 1)")
    assert db.execute("select status, refusal_code from raw.submissions").fetchall() == [
        ("refused", "police_wrong_month")
    ]
    assert db.execute("select count(*) from raw.police_crimes").fetchone() == (0,)


def test_a_503_with_an_error_page_is_an_outage_retried_not_split(
    db: psycopg.Connection, httpserver: HTTPServer
) -> None:
    _dates(httpserver, MONTH)
    page = "<html><head><title>503 Service Temporarily Unavailable</title></head></html>"
    httpserver.expect_request("/api/crimes-street/drugs").respond_with_data(page, status=503)
    waits: list[float] = []
    client = police.PoliceClient(httpserver.url_for("/api"), FAST, sleep=waits.append)
    with pytest.raises(police.PoliceApiError, match=r"gave up after 3 attempts, last: HTTP 503 SERVICE UNAVAILABLE"):
        police.pull(db, AREA, MONTH, client=client, config=_config(httpserver.url_for("/api"), SQUARE))
    polygons = {r.args["poly"] for r, _ in httpserver.log if "/crimes-street/" in r.path}
    assert polygons == {police.poly_param(SQUARE)}, "the polygon as configured, never a part of it"
    assert client.requests_made == 1 + 3 and waits == [0.01, 0.02]


def test_an_empty_503_with_retry_after_is_an_outage_too(db: psycopg.Connection, httpserver: HTTPServer) -> None:
    _dates(httpserver, MONTH)
    answers = [Response("", status=503, headers={"Retry-After": "0.03"}), Response("[]")]
    httpserver.expect_request("/api/crimes-street/drugs").respond_with_handler(lambda _: answers.pop(0))
    _serve(httpserver, "all-crime", [])
    waits: list[float] = []
    result = _pull(db, httpserver.url_for("/api"), waits, config=_config(httpserver.url_for("/api"), SQUARE))
    assert result["status"] == "loaded" and result["responses"] == {"drugs": 1, "all-crime": 1}
    assert waits == [0.03]  # waited as told, then the whole polygon again


def test_an_outage_answering_like_too_many_crimes_costs_a_bounded_number_of_requests(
    db: psycopg.Connection, httpserver: HTTPServer
) -> None:
    """Empty 503s at every part: split depth first to the bound, then the area-month is unavailable."""
    _dates(httpserver, MONTH)
    httpserver.expect_request("/api/crimes-street/drugs").respond_with_data("", status=503)
    config = _config(httpserver.url_for("/api"), SQUARE)
    client = police.PoliceClient(
        httpserver.url_for("/api"), police.RetryPolicy(max_split_depth=3), sleep=lambda _: None
    )
    summary = pipeline.pull_police(MONTH, "run-1", config=config, client=client, published=[MONTH])
    (gap,) = summary["gaps"]
    assert gap["status"] == "unavailable" and "after splitting the polygon 3 times" in gap["reason"]
    assert client.requests_made == 4  # the polygon, a quarter, a sixteenth, a sixty-fourth


def test_a_client_stops_asking_after_three_requests_gave_up(db: psycopg.Connection) -> None:
    """An API down for the whole run costs three requests' retries, not every area-month's."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    client = police.PoliceClient(url, FAST, sleep=lambda _: None)
    config = _two_areas(url)
    for month in ("2014-06", "2014-07", "2014-08"):
        summary = pipeline.pull_police(month, "run-1", config=config, client=client, published=[month])
        assert summary["status"] == "unavailable"
    assert client.requests_made == 3 * 3  # three requests of three attempts each, then none
    reasons = [
        r[2]
        for r in db.execute(
            "select detail->>'month', detail->>'area', detail->>'reason' from ops.task_runs"
            " where task_id = 'pull_police' order by task_run_id"
        ).fetchall()
    ]
    assert len(reasons) == 6 and all("ConnectionError" in r for r in reasons[:3])
    assert all(r.startswith("drugs: not asked: 3 requests in a row gave up this run") for r in reasons[3:])


def test_a_gap_outside_the_window_is_asked_again_until_it_loads(
    db: psycopg.Connection, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = yaml.safe_load(police.AREAS_FILE.read_text())
    config["areas"] = {AREA: {"name": "test box", "approximate": True, "polygons": [[list(p) for p in BOX]]}}
    areas_file = tmp_path / "police_areas.yaml"
    areas_file.write_text(yaml.safe_dump(config))
    monkeypatch.setattr(police, "AREAS_FILE", areas_file)
    monkeypatch.setenv(police.BASE_URL_ENV, httpserver.url_for("/api"))
    _dates(httpserver, "2014-05", "2014-06", "2014-07", MONTH)
    page = Response("<html>maintenance</html>", status=503)
    httpserver.expect_request("/api/crimes-street/drugs").respond_with_response(page)
    monkeypatch.setattr(
        police, "PoliceClient", functools.partial(police.PoliceClient, policy=FAST, sleep=lambda _: None)
    )
    down = pipeline.pull_police_recent("2014-06", "run-1")  # 2014-04 not published; 05 and 06 unavailable
    assert [(g["month"], g["status"]) for g in down["gaps"]] == [("2014-05", "unavailable"), ("2014-06", "unavailable")]

    httpserver.clear()
    _dates(httpserver, "2014-05", "2014-06", "2014-07", MONTH)
    _serve(httpserver, "drugs", [])
    _serve(httpserver, "all-crime", [])
    later = pipeline.pull_police_recent(MONTH, "run-2")  # window 2014-06..08; 2014-05 is the gap left behind
    assert later["retried"] == {"2014-05": [AREA]}
    assert list(later["months"]) == ["2014-05", "2014-06", "2014-07", "2014-08"] and later["gaps"] == []
    assert pipeline.police_gaps(db) == []


def test_the_simulated_api_can_be_taken_down_and_brought_back(
    db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The demo's stand-in fails like the real API behind a proxy, for tests that live through an outage."""
    config = yaml.safe_load(police.AREAS_FILE.read_text())
    config["areas"] = {"E06000035": config["areas"]["E06000035"]}
    areas_file = tmp_path / "police_areas.yaml"
    areas_file.write_text(yaml.safe_dump(config))
    monkeypatch.setattr(police, "AREAS_FILE", areas_file)
    monkeypatch.setattr(
        police, "PoliceClient", functools.partial(police.PoliceClient, policy=FAST, sleep=lambda _: None)
    )
    outage = threading.Event()
    url, stop = police_api.start(seed=7, latest="2025-06", outage=outage)
    monkeypatch.setenv(police.BASE_URL_ENV, url)
    try:
        outage.set()
        down = pipeline.pull_police_recent("2025-06", "run-1")
        outage.clear()
        back = pipeline.pull_police_recent("2025-06", "run-2")
    finally:
        stop()
    assert down["pulled"] == [] and [g["month"] for g in down["gaps"]] == ["2025-04", "2025-05", "2025-06"]
    assert all("HTTP 503" in g["reason"] and "Service Unavailable" in g["reason"] for g in down["gaps"])
    assert back["pulled"] == ["2025-04", "2025-05", "2025-06"] and back["gaps"] == []
    assert pipeline.police_gaps(db) == []


def test_an_answer_over_the_byte_limit_is_refused_unread_and_the_last_pull_stays(
    db: psycopg.Connection, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tracemalloc

    _serve_fixture(httpserver)
    first = _pull(db, httpserver.url_for("/api"))
    assert first["status"] == "loaded"
    monkeypatch.setenv(settings.MAX_ANSWER_BYTES_ENV, str(2**20))  # the fixture's answer (220 kB) fits
    crime = (json.dumps(_crime("e" * 64, 5, 51.50, 0.00)) + ",").encode() * 200
    runaway = 64 * 2**20

    def endless(request: Request) -> Response:
        def pieces() -> Any:
            yield b"["
            for _ in range(runaway // len(crime)):
                yield crime

        return Response(pieces(), content_type="application/json")

    httpserver.clear()
    _dates(httpserver, MONTH)
    _serve(httpserver, "drugs", [c for c in FIXTURE_CRIMES if c["category"] == "drugs"])
    httpserver.expect_request("/api/crimes-street/all-crime").respond_with_handler(endless)
    tracemalloc.start()
    try:
        result = _pull(db, httpserver.url_for("/api"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result["status"] == "refused" and result["refusal_code"] == "police_answer_too_large"
    assert "over the limit of 1,048,576 bytes (MISUSE_WAREHOUSE_MAX_ANSWER_BYTES)" in result["reason"]
    assert result["in_force"]["submission_id"] == first["submission_id"], "the last good pull stays in force"
    assert peak < 16 * 2**20, f"{peak:,} bytes traced: the answer was held whole"
    assert len([r for r in httpserver.log if "all-crime" in r[0].path]) == 1, "refused, not retried"
    audit = db.execute("select status, refusal_code from raw.submissions order by submission_id").fetchall()
    assert audit == [("loaded", None), ("refused", "police_answer_too_large")]
    # the same answer next run adds no second refusal
    again = _pull(db, httpserver.url_for("/api"))
    assert again["status"] == "refused" and again["submission_id"] == result["submission_id"]
