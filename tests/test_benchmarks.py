"""B1, the partnership scorecard and the performance pack, end to end (../shared/kpis.md).

One benchmark DAG run (Fingertips from a local server answering like the API) and one monthly DAG
run (2025-03) - the two DAG runs this module costs - then many checks on what they published:
England's value and the comparison on T4 and C1 against Wilson intervals worked out by hand below,
the scorecard, and the pack rendered in headless Chromium.

Files of months before 2025-03 (treatment 2024-09, ledgers 2024-04 to 2025-02, an older
Fingertips pull) go through `pipeline.ingest` - the same checks, gate and loader the DAG task
calls - so that T4 (which needs 18 months of cover) and F1's year to date exist after one run.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy
import pytest
from feeds import treatment_row, write_feed_file
from fingertips_csv import DEPRIVATION, csv_answer, metadata_answer, row
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from misuse_warehouse import fingertips, report
from misuse_warehouse import pipeline as monthly_tasks

MEDWAY, HEREFORDSHIRE = "E06000035", "E06000019"
ENGLAND = ("E92000001", "England")
SOUTH_EAST = ("E12000008", "South East")
MONTH = "2025-03"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Hand-worked Wilson 95% intervals (kpis.md "Intervals"), z = 1.959964, k of n, p = k/n:
# centre = p + z²/2n, spread = z·sqrt(p(1-p)/n + z²/4n²), limits = (centre ∓ spread) / (1 + z²/n),
# published in % to one decimal place:
#   T4 opiate      k=5 n=43  p=11.63%  centre 0.16095 spread 0.10571 /1.08934 -> [5.0704, 24.4792] -> [5.1, 24.5]
#   T4 non-opiate  k=6 n=10  p=60.00%  centre 0.79207 spread 0.35929 /1.38415 -> [31.2674, 83.1820] -> [31.3, 83.2]
#   T4 alcohol     k=7 n=36  p=19.44%  centre 0.24780 spread 0.13986 /1.10671 -> [9.7531, 35.0280] -> [9.8, 35.0]
#   C1             k=5 n=20  p=25.00%  centre 0.34604 spread 0.21269 /1.19207 -> [11.1862, 46.8701] -> [11.2, 46.9]
# England's latest Fingertips values (served below) and what B1 makes of them:
#   opiate      5.1    exactly on the published lower limit: limits are inside -> similar
#   non-opiate  31.28  below the published lower limit 31.3 (inside the unrounded 31.2674) -> better
#   alcohol     35.0   exactly on the published upper limit -> similar
#   C1          48.1   above the upper limit 46.9 -> worse
# (numerator, denominator, value, ci_lower, ci_upper, england_value, comparison)
B1 = {
    ("T4", "kpi_group=opiate"): (5, 43, "11.6", "5.1", "24.5", "5.1", "similar"),
    ("T4", "kpi_group=non_opiate"): (6, 10, "60.0", "31.3", "83.2", "31.28", "better"),
    ("T4", "kpi_group=alcohol"): (7, 36, "19.4", "9.8", "35.0", "35.0", "similar"),
    ("C1", "all"): (5, 20, "25.0", "11.2", "46.9", "48.1", "worse"),
}

# --- treatment, releases and ledgers -------------------------------------------------------------

_letters = "ABCDEFGHIJKLMNOPQRSTUVWYZ"  # no X: XX means withheld
_initials = (a + b for a, b in itertools.product(_letters, repeat=2))
GROUPS = {
    "opiate": {"substance_group": "opiate", "primary_substance": "heroin"},
    "non_opiate": {"substance_group": "non_opiate_only", "primary_substance": "cannabis"},
    "alcohol": {"substance_group": "alcohol_only", "primary_substance": "alcohol"},
}
SUCCESS = {"opiate": "completed_drug_free", "non_opiate": "completed_drug_free", "alcohol": "completed_alcohol_free"}


def person() -> dict[str, str]:
    return {"client_initials": next(_initials), "client_dob": "1980-01-01", "client_sex": "m"}


def cohort(prefix: str, area: str, group: str, people: int, completed: int) -> list[dict[str, Any]]:
    """People in treatment from January 2024 (inside T4's W = 2023-10..2024-09); the first
    `completed` finish successfully in June 2024 and never come back."""
    episodes = []
    for i in range(people):
        done = i < completed
        episodes.append(
            treatment_row(
                episode_id=f"{prefix}{i}",
                area_code=area,
                referral_date="2024-01-05",
                first_intervention_date="2024-01-10",
                discharge_date="2024-06-14" if done else None,
                discharge_reason=SUCCESS[group] if done else None,
                **GROUPS[group],
                **person(),
            )
        )
    return episodes


IN_W = (
    cohort("O", MEDWAY, "opiate", 43, 5)
    + cohort("N", MEDWAY, "non_opiate", 10, 6)
    + cohort("A", MEDWAY, "alcohol", 36, 7)
    + cohort("H", HEREFORDSHIRE, "opiate", 3, 1)  # T4 1/3: suppressed, so not compared
)
RELEASED = [person() for _ in range(20)]
# C1: 20 released to Medway on 3 March 2025 with a need; 5 start treatment on 10 March -> 5/20
C1_STARTS = [
    treatment_row(episode_id=f"R{i}", referral_date="2025-03-04", first_intervention_date="2025-03-10", **RELEASED[i])
    for i in range(5)
]
RELEASES = [
    {
        "release_id": f"REL{i}",
        "release_date": "2025-03-03",
        "prison_code": "BWI",
        "area_code": MEDWAY,
        "treatment_need": "yes",
        "treated_in_custody": "yes",
        "referred_to_community": "yes",
        **who,
    }
    for i, who in enumerate(RELEASED)
]


def ledger(month: str, n: int) -> list[dict[str, str]]:
    return [
        {
            "period_month": month,
            "line_id": "L1",
            "area_code": MEDWAY,
            "cost_centre": "DA1",
            "funding_stream": "public_health_grant",
            "service_line": "adult_community",
            "budget_gbp": "30000.00",
            "actual_gbp": f"{28000 + 400 * n}.00",
        },
        {
            "period_month": month,
            "line_id": "L2",
            "area_code": MEDWAY,
            "cost_centre": "DA2",
            "funding_stream": "public_health_grant",
            "service_line": "prevention",
            "budget_gbp": "5000.00",
            "actual_gbp": "4500.00",
        },
    ]


LEDGER_MONTHS = [f"2024-{m:02d}" for m in range(4, 13)] + ["2025-01", "2025-02", "2025-03"]

# --- Fingertips, as a local server ---------------------------------------------------------------

NAMES = {
    90244: "Successful completion of drug treatment: opiate users",
    90245: "Successful completion of drug treatment: non-opiate users",
    92447: "Successful completion of alcohol treatment",
    92544: "Adults with substance misuse treatment need who successfully engage in community-based structured "
    "treatment following release from prison",
    92432: "Deaths from drug misuse",
    # the API describes 91414 as another indicator: refused, the other five load
    91414: "Admission episodes for alcohol-specific conditions (Narrow)",
}
UNITS = {92432: "per 100,000", 91414: "per 100,000"}
MISSING = "Value missing in source data"


def england_rows(iid: int, pull: str) -> list[dict[str, str]]:
    """England's headline values (and a breakdown) per indicator; the older pull said otherwise."""
    older = pull == "2025-01"
    values = {
        # 2024 is listed first and has no value: the latest period *with a value* is 2023
        90244: [("2024", "", MISSING), ("2023", "9.9" if older else "5.1", ""), ("2022", "5.0", "")],
        90245: [("2023", "31.28", ""), ("2022", "32.0", "")],
        92447: [("2023", "35.0", ""), ("2022", "36.6", "")],
        92544: [("2023/24", "48.1", ""), ("2022/23", "43.2", "")],
        92432: [("2021 - 23", "5.2", "")],
        91414: [("2023/24", "494.0", "")],
    }[iid]
    rows = [row(iid, NAMES[iid], *ENGLAND, p, v, note=n) for p, v, n in values]
    # a deprivation breakdown of a later period, with a value: never England's headline value
    rows.append(row(iid, NAMES[iid], *ENGLAND, "2025", "99.0", category=(DEPRIVATION, "Most deprived decile")))
    return rows


def local_rows(iid: int, area_type: int) -> list[dict[str, str]]:
    period = england_rows(iid, MONTH)[0]["Time period"] if iid != 90244 else "2023"
    if area_type == 6:
        return [row(iid, NAMES[iid], *SOUTH_EAST, period, "5.0", parent=ENGLAND)]
    if area_type == 502:
        medway = row(iid, NAMES[iid], MEDWAY, "Medway", period, "6.3", parent=SOUTH_EAST, lower="4.9", upper="8.0")
        if iid == 92432:  # 3 deaths in three years: our disclosure rule hides it in the marts
            medway = row(iid, NAMES[iid], MEDWAY, "Medway", period, "1.1", parent=SOUTH_EAST, lower="0.2",
                         upper="3.1", count="3", denominator="280000")  # fmt: skip
        return [medway, {**medway, "Parent Code": "", "Parent Name": ""}]  # listed twice
    return []


def fingertips_api(state: dict[str, str]) -> Any:
    def handler(request: Request) -> Response:
        ids = [int(i) for i in request.args["indicator_ids"].split(",")]
        if request.path.endswith("indicator_metadata/by_indicator_id"):
            body = metadata_answer({i: (NAMES[i], UNITS.get(i, "%")) for i in ids})
            return Response(body, content_type="application/json")
        [iid] = ids
        area_type = int(request.args["child_area_type_id"])
        body = csv_answer(england_rows(iid, state["pull"]) + local_rows(iid, area_type))
        return Response(body, content_type="text/csv")

    return handler


def kpis(pipeline_: Any, area: str) -> dict[tuple[str, str], dict[str, Any]]:
    rows = pipeline_.query(
        """select kpi_code, breakdown, numerator, denominator, value, ci_lower, ci_upper, is_suppressed,
                  england_value, comparison, source_submissions
           from marts.kpi_monthly where area_code = %s and month = %s""",
        (area, f"{MONTH}-01"),
    )
    names = ("numerator", "denominator", "value", "ci_lower", "ci_upper", "is_suppressed", "england", "comparison")
    return {(r[0], r[1]): dict(zip((*names, "sources"), r[2:], strict=True)) for r in rows}


def scorecard(pipeline_: Any, area: str, month: str = MONTH) -> dict[tuple[str, str], dict[str, Any]]:
    cursor_rows = pipeline_.query(
        "select * from marts.partnership_scorecard where area_id = %s and month_id = %s", (area, f"{month}-01")
    )
    columns = [r[0] for r in pipeline_.query(
        """select column_name from information_schema.columns
           where table_schema = 'marts' and table_name = 'partnership_scorecard' order by ordinal_position"""
    )]  # fmt: skip
    records = [dict(zip(columns, r, strict=True)) for r in cursor_rows]
    return {(r["kpi_code"], r["breakdown"]): r for r in records}


@pytest.fixture(scope="module")
def published(pipeline: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from misuse_warehouse import migrations, runner, warehouse

    pipeline.reset()
    with warehouse.connect() as conn:
        migrations.migrate(conn)
    earlier = tmp_path_factory.mktemp("earlier")
    landing = tmp_path_factory.mktemp("landing")
    state = {"pull": "2025-01"}
    server = HTTPServer()
    for path in ("/api/indicator_metadata/by_indicator_id", "/api/all_data/csv/by_indicator_id"):
        server.expect_request(path).respond_with_handler(fingertips_api(state))
    server.start()
    saved = os.environ.get(fingertips.BASE_URL_ENV)
    os.environ[fingertips.BASE_URL_ENV] = server.url_for("/api")
    try:
        # earlier months, through the checks, raw gate and loader the DAG's ingest task calls
        paths = [Path(p) for p in fingertips.pull("2025-01", out_dir=earlier).files]
        paths.append(write_feed_file(earlier, "treatment", "P0001", "2024-09", as_of(IN_W, "2024-09")))
        paths += [
            write_feed_file(earlier, "funding", MEDWAY, m, ledger(m, n)) for n, m in enumerate(LEDGER_MONTHS[:-1])
        ]
        ingested = [monthly_tasks.ingest(str(p), "test-earlier-months") for p in paths]
        assert {o["status"] for o in ingested} == {"loaded"}, ingested
        # the benchmark DAG for March (its pull replaces January's), then March's monthly run
        state["pull"] = MONTH
        benchmark_run = runner.run_benchmarks(MONTH)
        write_feed_file(landing, "treatment", "P0001", MONTH, as_of(IN_W + C1_STARTS, MONTH))
        write_feed_file(landing, "prison-releases", MEDWAY, MONTH, RELEASES)
        write_feed_file(landing, "funding", MEDWAY, MONTH, ledger(MONTH, len(LEDGER_MONTHS) - 1))
        monthly_run = pipeline.run_month(landing, MONTH)
    finally:
        server.stop()
        if saved is None:
            os.environ.pop(fingertips.BASE_URL_ENV, None)
        else:
            os.environ[fingertips.BASE_URL_ENV] = saved
    return {
        "pipeline": pipeline,
        "benchmark_run": benchmark_run,
        "monthly_run": monthly_run,
        "medway": kpis(pipeline, MEDWAY),
        "herefordshire": kpis(pipeline, HEREFORDSHIRE),
        "scorecard": scorecard(pipeline, MEDWAY),
        "herefordshire_scorecard": scorecard(pipeline, HEREFORDSHIRE),
        "fingertips_ids": dict(
            pipeline.query(
                """select source_code, max(submission_id)::text from raw.submissions
                   where feed = 'fingertips' and status = 'loaded' group by 1"""
            )
        ),
    }


def as_of(episodes: list[dict[str, Any]], month: str) -> list[dict[str, Any]]:
    """A provider's file for `month`: the episodes referred by then (every other date is earlier)."""
    return [{**e, "submission_month": month} for e in episodes if e["referral_date"][:7] <= month]


def table_row(page: str, label: str) -> str:
    """The scorecard table's row for a KPI label, as HTML."""
    match = re.search(rf"<tr><td>{re.escape(label)}</td>(.*?)</tr>", page, re.S)
    assert match, f"no scorecard row for {label!r}"
    return match.group(1)


class TestB1:
    def test_england_value_and_comparison_on_t4_and_c1(self, published: dict) -> None:
        for key, (numerator, denominator, value, lower, upper, england, comparison) in B1.items():
            figure = published["medway"][key]
            assert (figure["numerator"], figure["denominator"]) == (numerator, denominator), key
            assert (figure["value"], figure["ci_lower"], figure["ci_upper"]) == tuple(
                map(Decimal, (value, lower, upper))
            ), key
            assert (figure["england"], figure["comparison"]) == (Decimal(england), comparison), key

    def test_latest_pull_and_latest_period_with_a_headline_value(self, published: dict) -> None:
        # January's pull said 9.9 for 2023; March's pull (the benchmark DAG) says 5.1 and wins. England's
        # 2024 has no value (a note) and the 2025 deprivation breakdown (99.0) is not a headline value.
        assert published["medway"][("T4", "kpi_group=opiate")]["england"] == Decimal("5.1")
        stale = published["pipeline"].query(
            """select count(*) from staging.stg_fingertips__indicator_values
               where pulled_month <> '2025-03-01'"""
        )
        assert stale == [(0,)]

    def test_suppressed_row_keeps_england_but_is_not_compared(self, published: dict) -> None:
        hidden = published["herefordshire"][("T4", "kpi_group=opiate")]  # 1 of 3
        assert hidden["is_suppressed"] and hidden["value"] is None and hidden["ci_lower"] is None
        assert (hidden["england"], hidden["comparison"]) == (Decimal("5.1"), None)

    def test_only_t4_and_c1_carry_b1(self, published: dict) -> None:
        carrying = {k for k, v in published["medway"].items() if v["england"] is not None or v["comparison"]}
        assert carrying == set(B1)

    def test_compared_rows_name_the_fingertips_submission(self, published: dict) -> None:
        ids = published["fingertips_ids"]
        opiate = published["medway"][("T4", "kpi_group=opiate")]["sources"]
        assert ids["90244"] in opiate and ids["90245"] not in opiate
        assert opiate == sorted(opiate, key=int)
        assert ids["92544"] in published["medway"][("C1", "all")]["sources"]
        assert not set(ids.values()) & set(published["medway"][("T1", "all")]["sources"])

    def test_benchmark_dag_gates_loads_announces_and_reports_the_refusal(self, published: dict) -> None:
        run = published["benchmark_run"]
        states = run.task_states
        # 91414's metadata names another indicator: refused; the other five passed the raw gate and loaded
        assert run.state == "failed"
        assert states["pull_fingertips"] == "success"
        assert sorted(s for t, s in states.items() if t.startswith("ingest[")) == ["success"] * 5
        assert (states["announce"], states["report"]) == ("success", "failed")
        march = published["pipeline"].query(
            """select source_code, status, refusal_code from raw.submissions
               where feed = 'fingertips' and period_start = '2025-03-01' order by 1"""
        )
        assert march == [
            ("90244", "loaded", None),
            ("90245", "loaded", None),
            ("91414", "refused", "indicator_metadata_mismatch"),
            ("92432", "loaded", None),
            ("92447", "loaded", None),
            ("92544", "loaded", None),
        ]
        from airflow.models.asset import AssetEvent, AssetModel
        from airflow.utils.session import create_session

        with create_session() as session:
            events = (
                session.query(AssetEvent)
                .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .filter(AssetModel.name == "misuse_warehouse_benchmarks", AssetEvent.source_run_id == run.run_id)
                .all()
            )
            extras = [e.extra for e in events]
        assert len(extras) == 1
        assert extras[0]["current"] == ["90244", "90245", "92432", "92447", "92544"]
        assert extras[0]["month"] == MONTH
        # observed like the monthly pipeline: the pull and each file's ingest in ops.task_runs
        observed = published["pipeline"].query(
            """select task_id, status, rows_out > 0, detail->>'refused' from ops.task_runs
               where dag_run_id = %s order by task_id""",
            (run.run_id,),
        )
        assert observed == [("ingest", "loaded", True, None)] * 5 + [("pull_fingertips", "success", True, "1")]


class TestScorecard:
    def test_targets_england_and_comparison(self, published: dict) -> None:
        card = published["scorecard"]
        c1 = card[("C1", "all")]
        assert (c1["value"], c1["target_value"], c1["is_target_met"]) == (Decimal("25.0"), Decimal("75.0"), False)
        assert (c1["england_value"], c1["england_time_period"], c1["comparison"]) == (
            Decimal("48.1"),
            "2023/24",
            "worse",
        )
        # T3: the five March starts waited 6 days (referral 4 March, start 10 March); T3 has no default
        # target (decision 19), and Medway has none of its own
        wait = card[("T3_median_days", "all")]
        assert (wait["value"], wait["target_value"], wait["is_target_met"]) == (6, None, None)
        for (code, breakdown), expected in B1.items():
            row = card[(code, breakdown)]
            assert (row["england_value"], row["comparison"]) == (Decimal(expected[5]), expected[6])
        assert card[("T4", "kpi_group=alcohol")]["england_time_period"] == "2023"
        assert card[("T1", "all")]["target_value"] is None and card[("T1", "all")]["is_target_met"] is None

    def test_trend_needs_the_month_a_year_before(self, published: dict) -> None:
        t1 = published["scorecard"][("T1", "all")]
        # T1 is published from 2024-09 (its 12 months covered): 89 each month to February, then 94
        # with the five March starts. Least squares over x = 0..6: x̄ = 3, sum (x-x̄)² = 28,
        # sum (x-x̄)·y = 3·94 - 3·89 = 15: slope 15/28 = 0.536 a month - descriptive only. The label
        # compares M with M-12 (decision 20), and 2024-03 is not published: no comparison, no arrow.
        assert (t1["value"], t1["trend_points"], t1["trend_slope_per_month"]) == (94, 7, Decimal("0.536"))
        assert t1["value_12_months_ago"] is None and t1["change_on_12_months_ago"] is None
        assert (t1["trend_movement"], t1["trend_direction"], t1["trend_arrow"]) == (None, None, None)
        assert (t1["trend_test"], t1["trend_label"]) == ("byar", "no comparison")
        # one month of releases: too few points for a slope, and no year before
        c1 = published["scorecard"][("C1", "all")]
        assert (c1["trend_points"], c1["trend_slope_per_month"], c1["trend_direction"]) == (1, None, None)
        assert c1["trend_label"] == "no comparison"

    def test_spend_against_budget_year_to_date(self, published: dict) -> None:
        pipeline = published["pipeline"]
        money = dict(
            pipeline.query(
                """select kpi_code, value from marts.kpi_monthly where area_code = %s and month = '2025-03-01'
                   and breakdown = 'period=fytd' and kpi_code in ('F1_actual', 'F1_budget')""",
                (MEDWAY,),
            )
        )
        # budget 35,000 a month; actual 28,000 + 400 n (n = 0..11) + 4,500: 416,400 against 420,000
        assert money == {"F1_actual": Decimal("416400.00"), "F1_budget": Decimal("420000.00")}
        variance = published["scorecard"][("F1_variance_pct", "period=fytd")]
        assert variance["value"] < 0 and variance["polarity"] == "neither" and variance["trend_direction"] is None

    def test_suppressed_is_shown_as_suppressed(self, published: dict) -> None:
        t1 = published["herefordshire_scorecard"][("T1", "all")]  # 3 people
        assert (t1["is_suppressed"], t1["value"]) == (True, None)


class TestGovernance:
    NEW_MARTS = ("partnership_scorecard", "fct_benchmark_values")

    def test_new_marts_are_built_by_the_transformer_granted_and_row_secured(self, published: dict) -> None:
        pipeline = published["pipeline"]
        rows = pipeline.query(
            """select c.relname, pg_get_userbyid(c.relowner), c.relrowsecurity and c.relforcerowsecurity,
                      array_agg(p.polname order by p.polname),
                      has_table_privilege('bi_reader', c.oid, 'select'), has_table_privilege('analyst', c.oid, 'select')
               from pg_class c join pg_namespace n on n.oid = c.relnamespace
               left join pg_policy p on p.polrelid = c.oid
               where n.nspname = 'marts' and c.relname = any(%s) group by c.oid, c.relname order by 1""",
            (list(self.NEW_MARTS),),
        )
        assert rows == [
            (name, "transformer", True, ["analyst_areas", "every_area", "owner_reads"], True, True)
            for name in sorted(self.NEW_MARTS)
        ]

    def test_an_analyst_reads_its_areas_and_england_only(self, published: dict) -> None:
        from psycopg import connect

        with connect(published["pipeline"].url, autocommit=True) as conn:
            conn.execute("set role analyst_medway")
            scorecard = {r[0] for r in conn.execute("select distinct area_id from marts.partnership_scorecard")}
            benchmarks = {r[0] for r in conn.execute("select distinct area_id from marts.fct_benchmark_values")}
        assert scorecard == {MEDWAY}
        assert benchmarks == {MEDWAY, ENGLAND[0]}  # not the region, not other areas
        everyone = published["pipeline"].query("select distinct area_id from marts.fct_benchmark_values")
        assert {r[0] for r in everyone} == {MEDWAY, ENGLAND[0], SOUTH_EAST[0]}

    def test_fingertips_counts_of_1_to_4_are_not_published(self, published: dict) -> None:
        pipeline = published["pipeline"]
        deaths = pipeline.query(
            """select is_suppressed, value, ci_lower, ci_upper, count, denominator, value_note
               from marts.fct_benchmark_values where indicator_id = 92432 and area_id = %s""",
            (MEDWAY,),
        )
        assert deaths == [(True, None, None, None, None, None, None)]
        small = pipeline.query(
            "select count(*) from marts.fct_benchmark_values where count between 1 and 4 or denominator between 1 and 4"
        )
        assert small == [(0,)]
        # England's deaths for the same period are published, with England's own value beside Medway's row
        assert pipeline.query(
            """select value, england_value from marts.fct_benchmark_values
               where indicator_id = 92432 and area_id = %s""",
            (ENGLAND[0],),
        ) == [(Decimal("5.2"), Decimal("5.2"))]


@pytest.fixture(scope="module")
def packs(published: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("packs")
    with report.connect() as conn, warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # e.g. a chart whose layout collapsed
        medway = report.write_pack(conn, MEDWAY, MONTH, out)
        herefordshire = report.write_pack(conn, HEREFORDSHIRE, MONTH, out)
    return {"medway": medway, "herefordshire": herefordshire, "out": out}


class TestPerformancePack:
    def test_pack_is_one_self_contained_page_with_its_charts(self, packs: dict) -> None:
        from PIL import Image

        pack = packs["medway"]
        assert pack.html == packs["out"] / f"performance_pack_{MEDWAY}_{MONTH}.html"
        assert [p.name.removeprefix(f"performance_pack_{MEDWAY}_{MONTH}_") for p in pack.charts] == [
            "trends_rates.png",
            "england.png",
            "trends_activity.png",
            "spend.png",
        ]
        page = pack.html.read_text(encoding="utf-8")
        assert page.count("src='data:image/png;base64,") == 4
        assert not re.search(r"(src|href)=['\"]?(https?:|//|file:)", page), "nothing loaded from elsewhere"
        for chart in pack.charts:
            image = Image.open(chart).convert("RGB")
            assert image.width > 400 and image.height > 200
            assert len(image.getcolors(maxcolors=1 << 24)) > 50, f"{chart.name} is blank"
        assert "Performance pack: Medway" in page
        c1 = table_row(page, "Continuity of care after prison release")
        assert "25.0%" in c1 and "≥ 75.0%" in c1 and "not met" in c1 and "worse" in c1 and "2023/24" in c1
        opiate = table_row(page, "Successful completions without re-presentation: opiate")
        assert "11.6%" in opiate and "5.1% – 24.5%" in opiate and "similar" in opiate
        assert "better" in table_row(page, "Successful completions without re-presentation: non-opiate")
        people = table_row(page, "People in structured treatment (12 months)")
        assert "no comparison" in people and "improving" not in people and "▲" not in people
        assert "Financial year to date: actual £416,400.00 against a budget of £420,000.00" in page
        deaths = re.search(r"<tr><td>Deaths from drug misuse .*?</tr>", page, re.S)
        assert deaths and '<span class="suppressed">suppressed</span>' in deaths.group(0)  # 3 deaths: hidden
        assert "1.1" not in deaths.group(0)

    def test_suppressed_figures_are_shown_as_suppressed_not_zero(self, packs: dict) -> None:
        page = packs["herefordshire"].html.read_text(encoding="utf-8")
        people = table_row(page, "People in structured treatment (12 months)")
        assert '<span class="suppressed">suppressed</span>' in people and ">0<" not in people
        opiate = table_row(page, "Successful completions without re-presentation: opiate")
        assert "suppressed" in opiate and "not compared" in opiate and "5.1%" in opiate

    def test_pack_renders_in_headless_chromium(self, packs: dict, tmp_path: Path) -> None:
        from PIL import Image

        browser = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
        if not Path(browser).exists():  # a failure, not a skip: the pack must be seen rendered
            pytest.fail(
                f"no Chromium at {browser}: `make test` installs Debian's chromium (apt-get install chromium); "
                "or set CHROMIUM to a Chromium/Chrome binary"
            )
        pack = packs["medway"]
        flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
        screenshot = tmp_path / "pack.png"
        subprocess.run(
            [browser, *flags, f"--screenshot={screenshot}", "--window-size=1280,6000", pack.html.as_uri()],
            check=True,
            capture_output=True,
            timeout=180,
        )
        pixels = numpy.asarray(Image.open(screenshot).convert("RGB"))
        assert pixels.shape == (6000, 1280, 3)
        painted = int((pixels != 255).any(axis=2).sum())
        assert painted > 0.03 * 6000 * 1280, "the screenshot is blank"
        chart_blue = int((pixels == (0x1F, 0x4E, 0x79)).all(axis=2).sum())
        assert chart_blue > 1000, "no chart was painted (their line and bar colour is missing)"

        # each <img> decoded: a copy of the page marks, after load, how many images have a natural width
        probe = tmp_path / "probe.html"
        marker = (
            "<script>window.addEventListener('load', () => { const images = [...document.images];"
            " document.body.dataset.images = images.length;"
            " document.body.dataset.decoded = images.filter(i => i.complete && i.naturalWidth > 0).length; });"
            "</script></body>"
        )
        probe.write_text(pack.html.read_text(encoding="utf-8").replace("</body>", marker), encoding="utf-8")
        dom = subprocess.run(
            [browser, *flags, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
            check=True,
            capture_output=True,
            text=True,
            timeout=180,
        ).stdout
        body = re.search(r"<body[^>]*>", dom)
        assert body, dom[:500]
        assert 'data-images="4"' in body.group(0) and 'data-decoded="4"' in body.group(0), body.group(0)

    def test_report_command(self, published: dict, tmp_path: Path) -> None:
        from typer.testing import CliRunner

        from misuse_warehouse.cli import app

        ran = CliRunner().invoke(app, ["report", "--area", MEDWAY, "--month", MONTH, "--out", str(tmp_path)])
        assert ran.exit_code == 0, ran.output
        assert (tmp_path / f"performance_pack_{MEDWAY}_{MONTH}.html").exists()
        assert "performance_pack_E06000035_2025-03.html" in ran.output.replace("\n", "")
        missing = CliRunner().invoke(app, ["report", "--area", MEDWAY, "--month", "2023-01", "--out", str(tmp_path)])
        assert missing.exit_code == 2
        assert "nothing published for E06000035 in 2023-01" in missing.output


def test_scorecard_and_pack_are_dbt_exposures() -> None:
    """dbt docs show feed-to-chart lineage: both exposures in the parsed manifest, on the published marts."""
    import json

    from misuse_warehouse import orchestration, runtime

    runtime.ensure_manifest()
    manifest = json.loads(orchestration.MANIFEST.read_text())
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert set(exposures) >= {"board_scorecard", "performance_pack"}
    pack = set(exposures["performance_pack"]["depends_on"]["nodes"])
    assert {
        "model.misuse_warehouse.partnership_scorecard",
        "model.misuse_warehouse.kpi_monthly",
        "model.misuse_warehouse.fct_benchmark_values",
    } <= pack
    assert "model.misuse_warehouse.partnership_scorecard" in exposures["board_scorecard"]["depends_on"]["nodes"]
