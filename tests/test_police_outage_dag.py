"""data.police.uk down for one area in one month, through the real monthly DAG (dag.test()).

March 2025 pulls while the API answers; at April's run the API fails for Medway's polygon
(503 with an error page, as a proxy in front of a failing API answers) and answers for every
other area. The April run must publish everything, keep Medway's March street crime from its
March pull, and say so on C2: stale_source for March, missing_source for April (never pulled).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from feeds import treatment_row, write_treatment_file
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from misuse_warehouse import pipeline as tasks
from misuse_warehouse import police

MEDWAY = "E06000035"
PUBLISHED = ("2025-03", "2025-04")


def _crime(n: int, month: str) -> dict[str, Any]:
    return {
        "category": "drugs",
        "location_type": "Force",
        "location": {
            "latitude": "51.38",
            "street": {"id": 1000 + n, "name": "On or near High Street"},
            "longitude": "0.52",
        },
        "context": "",
        "outcome_status": {"category": "Under investigation", "date": month},
        "persistent_id": f"{n:064x}",
        "id": 90000000 + n,
        "location_subtype": "",
        "month": month,
    }


class FlakyPoliceApi:
    """Answers like data.police.uk: 13 drugs crimes a month in Medway, none elsewhere; `down` fails Medway."""

    def __init__(self) -> None:
        self.down = False
        self.medway = police.poly_param(police.load_config().areas[MEDWAY].polygons[0])

    def __call__(self, request: Request) -> Response:
        if request.path.endswith("/crimes-street-dates"):
            return Response(json.dumps([{"date": m} for m in reversed(PUBLISHED)]), content_type="application/json")
        month = request.values["date"]
        if request.values.get("poly") != self.medway:
            return Response("[]", content_type="application/json")
        if self.down:
            page = "<html><head><title>503 Service Unavailable</title></head><body>upstream down</body></html>"
            return Response(page, status=503, content_type="text/html")
        return Response(json.dumps([_crime(n, month) for n in range(13)]), content_type="application/json")


@pytest.fixture(scope="module")
def outage(pipeline: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    landing = tmp_path_factory.mktemp("police_outage")
    pipeline.reset()
    for month in PUBLISHED:
        rows = [treatment_row(episode_id=f"E{i}", client_initials=f"A{chr(65 + i)}") for i in range(6)]
        write_treatment_file(landing, "P0001", month, rows)
    api = FlakyPoliceApi()
    server = HTTPServer()
    for path in ("/api/crimes-street-dates", "/api/crimes-street/drugs", "/api/crimes-street/all-crime"):
        server.expect_request(path).respond_with_handler(api)
    server.start()
    saved = os.environ["MISUSE_WAREHOUSE_POLICE_API"]
    os.environ["MISUSE_WAREHOUSE_POLICE_API"] = server.url_for("/api")
    try:
        march = pipeline.run_month(landing, "2025-03")
        api.down = True
        april = pipeline.run_month(landing, "2025-04")
    finally:
        os.environ["MISUSE_WAREHOUSE_POLICE_API"] = saved
        server.stop()
    yield {"march": march, "april": april, "pipeline": pipeline}


def _c2(pipeline: Any, month: str) -> dict[str, tuple]:
    rows = pipeline.query(
        """select kpi_code || ' ' || breakdown, value, is_provisional, quality_flag, quality_note, source_submissions
           from marts.kpi_monthly where area_code = %s and month = %s and kpi_code like 'C2%%'""",
        (MEDWAY, f"{month}-01"),
    )
    return {r[0]: r[1:] for r in rows}


def test_the_month_publishes_with_the_api_down_for_one_area(outage: dict[str, Any]) -> None:
    april = outage["april"]
    assert april.succeeded, april.task_states
    assert april.task_states["pull_police"] == "success"  # success, with a warning per gap in its log
    assert april.task_states["publish"] == "success" and april.task_states["report"] == "success"
    pipeline = outage["pipeline"]
    # every other figure of April is published from this run
    assert pipeline.query(
        "select value from marts.kpi_monthly where area_code = %s and month = '2025-04-01' and kpi_code = 'T1'"
        " and breakdown = 'all'",
        (MEDWAY,),
    ) == [(6,)]
    assert pipeline.query("select reporting_month::text from ops.publications order by 1") == [
        ("2025-03-01",),
        ("2025-04-01",),
    ]


def test_c2_from_the_march_pull_is_flagged_stale(outage: dict[str, Any]) -> None:
    pipeline = outage["pipeline"]
    (march_pull,) = pipeline.query(
        "select submission_id::text from raw.submissions where feed = 'police' and source_code = %s"
        " and period_start = '2025-03-01'",
        (MEDWAY,),
    )
    c2 = _c2(pipeline, "2025-03")
    value, provisional, flag, note, sources = c2["C2 all"]
    assert (value, provisional, flag, sources) == (13, True, "stale_source", [march_pull[0]])
    assert note.startswith("data.police.uk was unavailable at the pull of ")
    assert "HTTP 503 SERVICE UNAVAILABLE" in note and "C2 from the earlier pull of " in note
    assert note.endswith(f"(submission {march_pull[0]})")
    assert c2["C2 outcome=Under investigation"][2] == "stale_source"
    assert c2["C2_per_10k all"][2] == "stale_source"


def test_c2_of_april_is_published_missing_not_absent(outage: dict[str, Any]) -> None:
    c2 = _c2(outage["pipeline"], "2025-04")
    assert set(c2) == {"C2 all", "C2_per_10k all"}
    value, provisional, flag, note, sources = c2["C2 all"]
    assert (value, provisional, flag, sources) == (None, True, "missing_source", [])
    assert note.endswith("; no earlier pull is in force: C2 missing")
    # the other areas answered (no crimes): nothing flagged there, nothing else in the marts flagged
    assert outage["pipeline"].query(
        "select distinct area_code, kpi_code from marts.kpi_monthly where quality_flag is not null order by 1, 2"
    ) == [(MEDWAY, "C2"), (MEDWAY, "C2_per_10k")]


def test_the_run_report_lists_the_gaps(outage: dict[str, Any]) -> None:
    pipeline, run_id = outage["pipeline"], outage["april"].run_id
    logged = pipeline.query(
        "select target, status from ops.task_runs where dag_run_id = %s and task_id = 'pull_police'"
        " and status in ('refused', 'unavailable') order by target",
        (run_id,),
    )
    assert logged == [(f"police {MEDWAY} 2025-03", "unavailable"), (f"police {MEDWAY} 2025-04", "unavailable")]
    gaps = tasks.report([], run_id)["police_gaps"]
    assert [g.split(":")[0] for g in gaps] == [f"{MEDWAY} 2025-03 unavailable", f"{MEDWAY} 2025-04 unavailable"]
    assert gaps[0].endswith("stays in force") and gaps[1].endswith("no pull in force, C2 missing")
    # the March run had no gap
    assert "police_gaps" not in tasks.report([], outage["march"].run_id)
