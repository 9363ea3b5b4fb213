"""Criminal-justice KPIs C1-C5 end to end (../shared/kpis.md).

Hand-made prison releases, partnership returns, treatment files and police API
responses (served by a local HTTP server, as the real API would) go through the real
monthly DAG for 2025-03 and then 2025-04. Expected figures are worked out in comments.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from feeds import treatment_row, write_feed_file, write_treatment_file
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from misuse_warehouse import police

MEDWAY = "E06000035"
HEREFORDSHIRE = "E06000019"


def who(initials: str, born: str = "1985-01-01", sex: str = "m") -> dict[str, str]:
    return {"client_initials": initials, "client_dob": born, "client_sex": sex}


def release(release_id: str, day: str, person: dict[str, str], need: str = "yes") -> dict[str, Any]:
    return {
        "release_id": release_id,
        "release_date": day,
        "prison_code": "BWI",
        "area_code": MEDWAY,
        "treatment_need": need,
        "treated_in_custody": "yes",
        "referred_to_community": need,
        **person,
    }


def initials(group: str, n: int) -> str:
    return group + "ABCDE"[n]


# March 2025 releases to Medway, 25 with a need (kpis.md C1):
#   5 released 31 March who start treatment on 21 April (day 21: linked)
#   5 released 31 March who start on 22 April (day 22: not linked)
#   5 released 10 March who start that same day (day 0: linked)
#   5 with initials XX (cannot be linked: C1_unlinked)
#   5 released 5 March whose treatment started before release (not linked)
# and 5 more without a need (not counted). C1 = 10 / 25 = 40.0% once April's treatment
# files are in; in March's run the day-21 starts are not known yet: 5 / 25 = 20.0%.
RELEASES = (
    [release(f"D21{n}", "2025-03-31", who(initials("K", n))) for n in range(5)]
    + [release(f"D22{n}", "2025-03-31", who(initials("L", n))) for n in range(5)]
    + [release(f"D00{n}", "2025-03-10", who(initials("M", n))) for n in range(5)]
    + [release(f"XX{n}", "2025-03-15", who("XX", born=f"198{n}-02-02")) for n in range(5)]
    + [release(f"BEF{n}", "2025-03-05", who(initials("N", n))) for n in range(5)]
    + [release(f"NON{n}", "2025-03-20", who(initials("P", n)), need="no") for n in range(5)]
)


def episode(episode_id: str, person: dict[str, str], referral: str, start: str | None, **fields: Any) -> dict:
    return treatment_row(
        episode_id=episode_id,
        referral_date=referral,
        first_intervention_date=start,
        modality="pharmacological" if start else None,
        **person,
        **fields,
    )


def treatment_episodes(month: str) -> list[dict]:
    """Episodes as the provider knows them at the end of `month` (starts after it not yet known)."""
    rows = (
        [episode(f"T21{n}", who(initials("K", n)), "2025-03-31", "2025-04-21") for n in range(5)]
        + [episode(f"T22{n}", who(initials("L", n)), "2025-03-31", "2025-04-22") for n in range(5)]
        + [episode(f"T00{n}", who(initials("M", n)), "2025-03-01", "2025-03-10") for n in range(5)]
        + [episode(f"TBF{n}", who(initials("N", n)), "2025-01-10", "2025-02-01") for n in range(5)]
    )
    # C4: of the 20 referrals above, those of K and L came from prison (cj_prison); 10 / 20 = 50.0%
    for row in rows:
        if row["episode_id"].startswith(("T21", "T22")):
            row["referral_source"] = "cj_prison"
        if month == "2025-03" and row["first_intervention_date"] > "2025-03-31":
            row["first_intervention_date"] = None
            row["modality"] = None
    return rows


def return_rows(area: str, month: str, measures: dict[str, int | None]) -> list[dict]:
    agencies = {
        "dtoa_tests": "police",
        "dtoa_positive": "police",
        "required_assessments": "police",
        "required_assessments_attended": "police",
        "arrests_drug_offences": "police",
        "drr_starts": "probation",
        "drr_completions": "probation",
        "atr_starts": "probation",
        "atr_completions": "probation",
        "releases_total": "prison",
    }
    return [
        {"period_month": month, "area_code": area, "agency": agencies[m], "measure": m, "value": v}
        for m, v in measures.items()
    ]


def write_month(landing: Path, month: str) -> None:
    write_treatment_file(landing, "P0001", month, treatment_episodes(month))
    if month == "2025-03":
        write_feed_file(landing, "prison-releases", MEDWAY, month, RELEASES)
        write_feed_file(
            landing,
            "cj-return",
            MEDWAY,
            month,
            return_rows(
                MEDWAY,
                month,
                {
                    # C3: 14 positive of 40 tests = 35.0%; 7 of 10 assessments attended = 70.0%
                    "dtoa_tests": 40,
                    "dtoa_positive": 14,
                    "required_assessments": 10,
                    "required_assessments_attended": 7,
                    # C5: DRR 7 started, 5 completed; ATR 0 started, completions not reported
                    "drr_starts": 7,
                    "drr_completions": 5,
                    "atr_starts": 0,
                    "releases_total": 30,
                },
            ),
        )
        # Herefordshire reports completions but no tests: no C3_positivity (decision 13)
        write_feed_file(
            landing,
            "cj-return",
            HEREFORDSHIRE,
            month,
            return_rows(HEREFORDSHIRE, month, {"dtoa_positive": 3, "drr_starts": 6}),
        )


# data.police.uk, as a local server: March 2025 is published (April not yet), and Medway's
# polygon holds 13 drugs crimes: 5 under investigation, 4 closed with no suspect (an outcome
# text with a ';'), 3 with no outcome yet, 1 with an outcome text the contract does not list.
OUTCOMES = (
    ["Under investigation"] * 5
    + ["Investigation complete; no suspect identified"] * 4
    + [None] * 3
    + ["Offender given a caution"]
)


def crime(n: int, category: str, outcome: str | None) -> dict[str, Any]:
    return {
        "category": category,
        "location_type": "Force",
        "location": {
            "latitude": "51.38",
            "street": {"id": 1000 + n, "name": "On or near High Street"},
            "longitude": "0.52",
        },
        "context": "",
        "outcome_status": {"category": outcome, "date": "2025-03"} if outcome else None,
        "persistent_id": f"{n:064x}",
        "id": 90000000 + n,
        "location_subtype": "",
        "month": "2025-03",
    }


DRUGS_CRIMES = [crime(n, "drugs", outcome) for n, outcome in enumerate(OUTCOMES)]
OTHER_CRIMES = [crime(100 + n, "burglary", None) for n in range(7)]


def police_api(request: Request) -> Response:
    if request.path.endswith("/crimes-street-dates"):
        return Response(json.dumps([{"date": "2025-03", "stop-and-search": []}]), content_type="application/json")
    month = request.values.get("date")
    if month != "2025-03":
        return Response("not published", status=404)
    medway = police.poly_param(police.load_config().areas[MEDWAY].polygons[0])
    crimes: list[dict] = []
    if request.values.get("poly") == medway:
        crimes = DRUGS_CRIMES + (OTHER_CRIMES if request.path.endswith("/all-crime") else [])
    return Response(json.dumps(crimes), content_type="application/json")


def figures(pipeline: Any, area: str, month: str) -> dict[tuple[str, str], dict[str, Any]]:
    rows = pipeline.query(
        """select kpi_code, breakdown, numerator, denominator, value, ci_lower, ci_upper, is_suppressed,
                  is_provisional
           from marts.kpi_monthly where area_code = %s and month = %s and kpi_code like 'C%%'""",
        (area, f"{month}-01"),
    )
    names = ("numerator", "denominator", "value", "ci_lower", "ci_upper", "is_suppressed", "is_provisional")
    return {(r[0], r[1]): dict(zip(names, r[2:], strict=True)) for r in rows}


@pytest.fixture(scope="class")
def criminal_justice(pipeline: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    landing = tmp_path_factory.mktemp("criminal_justice")
    pipeline.reset()
    for month in ("2025-03", "2025-04"):
        write_month(landing, month)
    server = HTTPServer()
    server.expect_request("/api/crimes-street-dates").respond_with_handler(police_api)
    server.expect_request("/api/crimes-street/drugs").respond_with_handler(police_api)
    server.expect_request("/api/crimes-street/all-crime").respond_with_handler(police_api)
    server.start()
    saved = os.environ["MISUSE_WAREHOUSE_POLICE_API"]
    os.environ["MISUSE_WAREHOUSE_POLICE_API"] = server.url_for("/api")
    try:
        pipeline.run_month(landing, "2025-03")
        march_as_first_published = figures(pipeline, MEDWAY, "2025-03")
        april = pipeline.run_month(landing, "2025-04")
    finally:
        os.environ["MISUSE_WAREHOUSE_POLICE_API"] = saved
        server.stop()
    yield {
        "april_run": april,
        "police_submissions": pipeline.query(
            "select source_code, period_start::text, row_count from raw.submissions where feed = 'police' order by 1, 2"
        ),
        "first": march_as_first_published,
        "final": figures(pipeline, MEDWAY, "2025-03"),
        "herefordshire": figures(pipeline, HEREFORDSHIRE, "2025-03"),
        "april": figures(pipeline, MEDWAY, "2025-04"),
        "pipeline": pipeline,
    }


class TestCriminalJustice:
    def test_c1_provisional_then_final(self, criminal_justice: dict) -> None:
        first, final = criminal_justice["first"][("C1", "all")], criminal_justice["final"][("C1", "all")]
        # March's run: only the day-0 starts are known; April's treatment file is still to come
        assert (first["numerator"], first["denominator"], first["value"]) == (5, 25, Decimal("20.0"))
        assert first["is_provisional"]
        # after April's files: day 21 counts, day 22 does not; XX and earlier starts never link
        assert (final["numerator"], final["denominator"], final["value"]) == (10, 25, Decimal("40.0"))
        assert not final["is_provisional"]
        assert final["ci_lower"] < final["value"] < final["ci_upper"]

    def test_c1_unlinked(self, criminal_justice: dict) -> None:
        unlinked = criminal_justice["final"][("C1_unlinked", "all")]
        assert (unlinked["value"], unlinked["is_suppressed"]) == (5, False)

    def test_c1_target_is_published_beside_it(self, criminal_justice: dict) -> None:
        targets = criminal_justice["pipeline"].query(
            "select target_value, polarity from marts.dim_kpi_target where kpi_code = 'C1' and breakdown = 'all'"
        )
        assert targets == [(Decimal("75.0"), "higher")]

    def test_c3_drug_testing_on_arrest(self, criminal_justice: dict) -> None:
        march = criminal_justice["final"]
        assert (march[("C3_positivity", "all")]["numerator"], march[("C3_positivity", "all")]["value"]) == (
            14,
            Decimal("35.0"),
        )
        assert march[("C3_attendance", "all")]["value"] == Decimal("70.0")
        # Herefordshire: positives without tests, so no positivity; 3 is never published alone
        assert ("C3_positivity", "all") not in criminal_justice["herefordshire"]

    def test_c4_criminal_justice_route_into_treatment(self, criminal_justice: dict) -> None:
        c4 = criminal_justice["april"][("C4", "all")]
        assert (c4["numerator"], c4["denominator"], c4["value"]) == (10, 20, Decimal("50.0"))

    def test_c5_community_sentences(self, criminal_justice: dict) -> None:
        march = criminal_justice["final"]
        assert march[("C5_starts", "requirement=drr")]["value"] == 7
        assert march[("C5_completions", "requirement=drr")]["value"] == 5
        # zero is published as zero; a measure not reported is not published
        assert march[("C5_starts", "requirement=atr")]["value"] == 0
        assert ("C5_completions", "requirement=atr") not in march
        # Herefordshire's 6 DRR starts are published; no completions reported
        assert criminal_justice["herefordshire"][("C5_starts", "requirement=drr")]["value"] == 6

    def test_c2_drug_offences_from_the_police_api(self, criminal_justice: dict) -> None:
        march = criminal_justice["final"]
        assert march[("C2", "all")]["value"] == 13
        assert march[("C2", "outcome=Under investigation")]["value"] == 5
        # ';' in an outcome text would break the name=value breakdown: written as ','
        assert march[("C2", "outcome=Investigation complete, no suspect identified")]["value"] == 4
        assert march[("C2", "outcome=No outcome recorded")]["value"] == 3
        # an outcome the contract does not list is kept as it is, never refused
        assert march[("C2", "outcome=Offender given a caution")]["value"] == 1
        # per 10,000 residents: 13 x 10,000 / 286,800 (Medway, ONS mid-2023) = 0.45
        per_10k = march[("C2_per_10k", "all")]
        assert (per_10k["numerator"], per_10k["denominator"], per_10k["value"]) == (13, 286800, Decimal("0.45"))

    def test_police_month_not_published_is_tried_again_not_failed(self, criminal_justice: dict) -> None:
        # every area's March pull is one submission; April (not published) was skipped, not failed
        assert [s[:2] for s in criminal_justice["police_submissions"]] == [
            (code, "2025-03-01") for code in sorted(police.load_config().areas)
        ]
        assert criminal_justice["april_run"].task_states["pull_police"] == "success"  # March re-pulled: duplicate
        assert ("C2", "all") not in criminal_justice["april"]
