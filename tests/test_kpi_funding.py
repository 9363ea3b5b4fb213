"""Funding KPIs F1-F5 end to end (../shared/kpis.md), with the contract register's history.

Hand-made ledger, register, grant and treatment files for Medway (and three persons in
Herefordshire) go through the real monthly DAG for 2024-04 (last year's grants),
2025-03, 2025-04 and 2025-05; then April's ledger and register are restated, and
finally a May ledger naming a contract the register never held must fail the gate and
leave the published marts as they were. Expected figures are worked out in comments.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from feeds import treatment_row, write_feed_file, write_treatment_file

from misuse_warehouse import alerts as alerts_module

MEDWAY = "E06000035"
HEREFORDSHIRE = "E06000019"


def ledger_line(line_id: str, stream: str, service_line: str, budget: str, actual: str, **fields: Any) -> dict:
    return {
        "line_id": line_id,
        "area_code": MEDWAY,
        "cost_centre": "DA100",
        "funding_stream": stream,
        "service_line": service_line,
        "budget_gbp": budget,
        "actual_gbp": actual,
        **fields,
    }


def write_ledger(landing: Path, month: str, lines: list[dict], area: str = MEDWAY) -> Path:
    rows = [{**line, "period_month": month, "area_code": area} for line in lines]
    return write_feed_file(landing, "funding", area, month, rows)


C01 = {
    "contract_id": "C01",
    "provider_code": "P0001",
    "provider_name": "Alpha Recovery",
    "area_code": MEDWAY,
    "service_line": "adult_community",
    "start_date": "2023-04-01",
    "end_date": "2025-09-30",
    "annual_value_gbp": "240000.00",
    "status": "active",
}
C01_EXTENDED = {**C01, "extension_end_date": "2026-03-31", "status": "extended"}
C02 = {
    "contract_id": "C02",
    "provider_code": "P0002",
    "provider_name": "Beta Care",
    "area_code": MEDWAY,
    "service_line": "young_people",
    "start_date": "2024-04-01",
    "end_date": "2026-03-31",
    "annual_value_gbp": "60000.00",
    "status": "active",
}
C02_NOVATED = {**C02, "provider_code": "P0003", "provider_name": "Gamma Trust"}


def write_register(landing: Path, month: str, contracts: list[dict]) -> Path:
    return write_feed_file(landing, "contracts", MEDWAY, month, contracts)


def write_grants(landing: Path, year: str, allocations: list[tuple[str, str, str | None]]) -> Path:
    rows = [
        {
            "financial_year": year,
            "area_code": MEDWAY,
            "funding_stream": stream,
            "allocation_gbp": allocation,
            "ring_fenced_gbp": ring_fenced,
        }
        for stream, allocation, ring_fenced in allocations
    ]
    return write_feed_file(landing, "grants", MEDWAY, year, rows, month_folder=f"{year[:4]}-04")


def people_in_treatment(area: str, count: int, alcohol: int, prefix: str) -> list[dict]:
    """`count` persons in treatment in March 2025, `alcohol` of them alcohol-only."""
    rows = []
    for n in range(count):
        substance = {"substance_group": "alcohol_only", "primary_substance": "alcohol"} if n < alcohol else {}
        rows.append(
            treatment_row(
                episode_id=f"{prefix}{n}",
                area_code=area,
                client_initials=f"{prefix}{chr(65 + n)}",
                referral_date="2025-03-01",
                first_intervention_date="2025-03-10",
                **substance,
            )
        )
    return rows


APRIL_LEDGER = [
    ledger_line(
        "L1", "public_health_grant", "adult_community", "20000.00", "21000.00", contract_id="C01", provider_code="P0001"
    ),
    ledger_line("L2", "datrig", "young_people", "5000.00", "4000.00", contract_id="C02", provider_code="P0003"),
    ledger_line("L3", "pcc", "criminal_justice", "3000.00", "-500.00"),
]


def write_months(landing: Path) -> None:
    write_grants(
        landing,
        "2024-25",
        [
            ("public_health_grant", "1000000.00", "400000.00"),
            ("ssmtrg", "200000.00", "200000.00"),
            ("pcc", "50000.00", None),
        ],
    )
    write_grants(
        landing,
        "2025-26",
        [
            ("public_health_grant", "1100000.00", "440000.00"),
            ("datrig", "175000.00", "175000.00"),
            ("pcc", "45000.00", None),
        ],
    )
    write_register(landing, "2025-03", [C01, C02])
    write_register(landing, "2025-04", [C01, C02_NOVATED])
    write_register(landing, "2025-05", [C01_EXTENDED, C02_NOVATED])
    write_ledger(
        landing,
        "2025-03",
        [
            ledger_line(
                "L1",
                "public_health_grant",
                "adult_community",
                "20000.00",
                "19500.50",
                contract_id="C01",
                provider_code="P0001",
            ),
            ledger_line("L2", "council_general", "prevention", "1000.00", "1200.00"),
        ],
    )
    write_ledger(landing, "2025-04", APRIL_LEDGER)
    write_ledger(
        landing,
        "2025-05",
        [
            ledger_line(
                "L1",
                "public_health_grant",
                "adult_community",
                "20000.00",
                "20000.00",
                contract_id="C01",
                provider_code="P0001",
            ),
            ledger_line("L2", "datrig", "young_people", "5000.00", "6000.00", contract_id="C02", provider_code="P0003"),
        ],
    )
    # treatment in April: 6 Medway persons (2 alcohol-only), 3 in Herefordshire
    write_treatment_file(
        landing,
        "P0001",
        "2025-04",
        people_in_treatment(MEDWAY, 6, 2, "M") + people_in_treatment(HEREFORDSHIRE, 3, 0, "H"),
    )
    write_ledger(
        landing,
        "2025-04",
        [ledger_line("H1", "public_health_grant", "adult_community", "9000.00", "9000.00")],
        area=HEREFORDSHIRE,
    )


def figures(pipeline: Any, area: str, month: str, prefix: str = "F") -> dict[tuple[str, str], dict[str, Any]]:
    rows = pipeline.query(
        """select kpi_code, breakdown, numerator, denominator, value, is_suppressed, is_provisional,
                  source_submissions
           from marts.kpi_monthly where area_code = %s and month = %s and kpi_code like %s""",
        (area, f"{month}-01", f"{prefix}%"),
    )
    names = ("numerator", "denominator", "value", "is_suppressed", "is_provisional", "source_submissions")
    return {(r[0], r[1]): dict(zip(names, r[2:], strict=True)) for r in rows}


def money(text: str) -> Decimal:
    return Decimal(text)


def f1(figs: dict, period: str, breakdown: str = "") -> tuple[Decimal, Decimal, Decimal, Decimal | None]:
    key = breakdown or "period=" + period
    pct = figs.get(("F1_variance_pct", key))
    return (
        figs[("F1_actual", key)]["value"],
        figs[("F1_budget", key)]["value"],
        figs[("F1_variance", key)]["value"],
        pct["value"] if pct else None,
    )


def contract_versions(pipeline: Any) -> list[tuple]:
    return pipeline.query(
        """select contract_id, provider_id, valid_from_month::text, valid_to_month::text, is_current, is_novation,
                  previous_provider_id, annual_value_gbp, effective_end_date::text
           from marts.dim_contract order by contract_id, valid_from_month"""
    )


@pytest.fixture(scope="class")
def funding(pipeline: Any, tmp_path_factory: pytest.TempPathFactory, make_httpserver: Any) -> dict[str, Any]:
    landing = tmp_path_factory.mktemp("funding")
    pipeline.reset()
    write_months(landing)
    # late-feed alerts go to a webhook (misuse_warehouse.alerts): a local one records them, run by run
    make_httpserver.clear()  # the session's server: other modules' requests and handlers
    make_httpserver.expect_request("/late-feeds", method="POST").respond_with_data("ok")
    webhook = {"conn_type": "http", "host": make_httpserver.url_for("/late-feeds")}
    alerts: dict[str, list[str]] = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv(f"AIRFLOW_CONN_{alerts_module.WEBHOOK_CONN_ID.upper()}", json.dumps(webhook))
        for month in ("2024-04", "2025-03", "2025-04", "2025-05"):
            posted = len(make_httpserver.log)
            pipeline.run_month(landing, month)
            alerts[month] = [
                json.loads(request.get_data())["text"]
                for request, _ in make_httpserver.log[posted:]
                if request.path == "/late-feeds"
            ]
    submission_status = pipeline.query(
        "select expected_submission_id, status, days_late, due_date from ops.submission_status order by 1"
    )
    before = {
        "april": figures(pipeline, MEDWAY, "2025-04"),
        "april_treatment": figures(pipeline, MEDWAY, "2025-04", prefix="T1"),
        "may": figures(pipeline, MEDWAY, "2025-05"),
        "march": figures(pipeline, MEDWAY, "2025-03"),
        "herefordshire": figures(pipeline, HEREFORDSHIRE, "2025-04"),
        "versions": contract_versions(pipeline),
        # F4 before disclosure control (published, it would give T1's hidden alcohol group away)
        "april_f4_computed": pipeline.query(
            "select value from intermediate.int_kpi__funding_unit_costs"
            " where area_code = %s and month = '2025-04-01' and kpi_code = 'F4'",
            (MEDWAY,),
        ),
    }
    # April restated: L1's actual corrected to 20,000.00 and L3 withdrawn; the register
    # for April restated to record C01's extension already then
    restated = tmp_path_factory.mktemp("restated")
    write_ledger(restated, "2025-04", [{**APRIL_LEDGER[0], "actual_gbp": "20000.00"}, APRIL_LEDGER[1]])
    write_register(restated, "2025-04", [C01_EXTENDED, C02_NOVATED])
    pipeline.run_month(restated, "2025-04")
    after = {
        "april": figures(pipeline, MEDWAY, "2025-04"),
        "may": figures(pipeline, MEDWAY, "2025-05"),
        "versions": contract_versions(pipeline),
        "ledger_lines": pipeline.query(
            "select count(*), sum(actual_gbp) from marts.fct_funding_ledger_lines where month_id = '2025-04-01' "
            "and area_id = %s",
            (MEDWAY,),
        )[0],
    }
    # a May ledger paying a contract the register never held: the gate stops publication
    bad = tmp_path_factory.mktemp("bad")
    write_ledger(
        bad,
        "2025-05",
        [
            ledger_line(
                "L1", "public_health_grant", "adult_community", "1.00", "1.00", contract_id="C99", provider_code="P0001"
            )
        ],
    )
    checksums = pipeline.checksums()
    failed = pipeline.run_month(bad, "2025-05", expect_success=False)
    shutil.rmtree(bad, ignore_errors=True)
    unknown_contracts = pipeline.query(
        "select contract_id from marts_next.fct_funding_ledger_lines where is_contract_missing_from_register"
    )
    return {
        "unknown_contracts": unknown_contracts,
        "before": before,
        "after": after,
        "failed": failed,
        "checksums_kept": pipeline.checksums() == checksums,
        "pipeline": pipeline,
        "alerts": alerts,
        "submission_status": submission_status,
    }


class TestFunding:
    def test_f1_month_and_year_to_date_across_april(self, funding: dict) -> None:
        march, april, may = (funding["before"][m] for m in ("march", "april", "may"))
        # March: 19,500.50 + 1,200.00 = 20,700.50 against 21,000.00: -299.50, -1.4%
        assert f1(march, "month") == (money("20700.50"), money("21000.00"), money("-299.50"), money("-1.4"))
        # March is month 12 of 2024-25 and April 2024 - February 2025 are not loaded: no year to date
        assert ("F1_actual", "period=fytd") not in march
        # April starts 2025-26: year to date is the month. 21,000 + 4,000 - 500 = 24,500 on 28,000
        assert f1(april, "month") == (money("24500.00"), money("28000.00"), money("-3500.00"), money("-12.5"))
        assert f1(april, "fytd") == f1(april, "month")
        # May: 26,000 on 25,000 (+4.0%); year to date 50,500 on 53,000: -2,500, -4.7%
        assert f1(may, "month") == (money("26000.00"), money("25000.00"), money("1000.00"), money("4.0"))
        assert f1(may, "fytd") == (money("50500.00"), money("53000.00"), money("-2500.00"), money("-4.7"))

    def test_f1_breakdowns(self, funding: dict) -> None:
        april, may = funding["before"]["april"], funding["before"]["may"]
        assert f1(april, "", "funding_stream=pcc;period=month") == (
            money("-500.00"),
            money("3000.00"),
            money("-3500.00"),
            money("-116.7"),
        )
        assert f1(may, "", "contract_id=C01;period=fytd")[0] == money("41000.00")
        assert f1(may, "", "contract_id=C02;period=fytd")[0] == money("10000.00")
        # criminal justice had a line in April only: in May's year to date, not in May's month
        assert f1(may, "", "period=fytd;service_line=criminal_justice")[0] == money("-500.00")
        assert ("F1_actual", "period=month;service_line=criminal_justice") not in may
        # lines without a contract stay out of the contract breakdown
        assert not [k for k in april if k[1].startswith("contract_id=;")]
        assert not april[("F1_actual", "period=month")]["is_suppressed"]

    def test_f1_is_provisional_until_a_later_month_loads(self, funding: dict) -> None:
        assert not funding["before"]["april"][("F1_actual", "period=month")]["is_provisional"]
        assert funding["before"]["may"][("F1_actual", "period=month")]["is_provisional"]

    def test_f2_allocation_change(self, funding: dict) -> None:
        april = funding["before"]["april"]
        # public health grant 1,100,000 on 1,000,000 = +10.0%; PCC 45,000 on 50,000 = -10.0%
        assert april[("F2", "funding_stream=public_health_grant")]["value"] == money("10.0")
        assert april[("F2", "funding_stream=public_health_grant")]["denominator"] == money("1000000.00")
        assert april[("F2", "funding_stream=pcc")]["value"] == money("-10.0")
        # SSMTRG has no allocation in 2025-26: no F2 of its own (decision 15)
        assert ("F2", "funding_stream=ssmtrg") not in april
        # 2024-25 has no previous year loaded
        assert not [k for k in funding["before"]["march"] if k[0] == "F2"]

    def test_f2_compares_a_new_stream_with_the_stream_it_replaced(self, funding: dict) -> None:
        april = funding["before"]["april"]
        # decision 22: DATRIG is new in 2025-26 and replaced SSMTRG (dim_funding_stream), which has no
        # 2025-26 allocation: 175,000 on SSMTRG's 200,000 of 2024-25 = -12.5%, under DATRIG's name
        datrig = april[("F2", "funding_stream=datrig")]
        assert (datrig["numerator"], datrig["denominator"], datrig["value"]) == (
            money("175000.00"),
            money("200000.00"),
            money("-12.5"),
        )
        # it rests on both years' grant files, and is provisional as every F2 of the month is
        grants = funding["pipeline"].query(
            "select submission_id::text from raw.submissions where feed = 'grants' and status = 'loaded' "
            "order by period_start"
        )
        assert datrig["source_submissions"] == [g for (g,) in grants]
        pcc = april[("F2", "funding_stream=pcc")]
        assert datrig["is_provisional"] == pcc["is_provisional"] is False
        assert datrig["source_submissions"] == pcc["source_submissions"]

    def test_f3_f4_are_provisional_while_the_treatment_figures_are(self, funding: dict) -> None:
        april = funding["before"]["april"]
        # decision 21: April's ledger is final (May's has loaded), but T1 at April is provisional
        # (April's treatment file is the only one: later files restate it): so are F3 and F4
        assert not april[("F1_actual", "period=fytd")]["is_provisional"]
        assert funding["before"]["april_treatment"][("T1", "all")]["is_provisional"]
        assert april[("F3_per_person", "all")]["is_provisional"]
        assert april[("F4", "all")]["is_provisional"]

    def test_f3_f4_unit_costs_and_social_return(self, funding: dict) -> None:
        april = funding["before"]["april"]
        # treatment lines year to date: 21,000 + 4,000 - 500 = 24,500 over 6 persons
        f3 = april[("F3_per_person", "all")]
        assert (f3["numerator"], f3["denominator"], f3["value"]) == (money("24500.00"), 6, money("4083.33"))
        # F4: 24,500 x (3 x 2 alcohol-only + 4 x 4 others) / 6 = 89,833.33, which gives the 2
        # alcohol-only persons back (6 x (4 - 89,833.33 / 24,500)): T1's alcohol group is hidden, so is F4
        assert funding["before"]["april_f4_computed"] == [(money("89833.33"),)]
        assert april[("F4", "all")]["is_suppressed"] and april[("F4", "all")]["value"] is None
        # no T4 yet (six months of cover needed): no cost per completion
        assert ("F3_per_completion", "all") not in april
        # May has no treatment figures (no May treatment file): no F3
        assert ("F3_per_person", "all") not in funding["before"]["may"]

    def test_f3_f4_rest_on_the_ledger_and_treatment_submissions(self, funding: dict) -> None:
        april = funding["before"]["april"]
        ledger = april[("F1_actual", "period=fytd")]["source_submissions"]
        treatment = funding["before"]["april_treatment"][("T1", "all")]["source_submissions"]
        expected = sorted(set(ledger) | set(treatment), key=int)
        assert set(treatment) - set(ledger), "the treatment file is a submission of its own"
        for kpi in ("F3_per_person", "F4"):
            assert april[(kpi, "all")]["source_submissions"] == expected

    def test_f3_f4_hidden_over_one_to_four_persons(self, funding: dict) -> None:
        herefordshire = funding["before"]["herefordshire"]
        for kpi in ("F3_per_person", "F4"):
            row = herefordshire[(kpi, "all")]
            assert row["is_suppressed"] and row["value"] is None and row["denominator"] is None, row
        # the money itself is published
        assert herefordshire[("F1_actual", "period=month")]["value"] == money("9000.00")

    def test_f5_contract_horizon(self, funding: dict) -> None:
        before = funding["before"]
        # C01 ends 30 September 2025: within March's and April's next six months
        assert before["march"][("F5", "contract_id=C01")]["value"] == money("240000.00")
        assert ("F5", "contract_id=C01") in before["april"]
        # May's register extends C01 to March 2026: off the horizon; C02 ends March 2026
        assert not [k for k in before["may"] if k[0] == "F5"]

    def test_register_history_and_novation(self, funding: dict) -> None:
        assert funding["before"]["versions"] == [
            ("C01", "P0001", "2025-03-01", "2025-04-01", False, False, None, money("240000.00"), "2025-09-30"),
            ("C01", "P0001", "2025-05-01", None, True, False, None, money("240000.00"), "2026-03-31"),
            ("C02", "P0002", "2025-03-01", "2025-03-01", False, False, None, money("60000.00"), "2026-03-31"),
            ("C02", "P0003", "2025-04-01", None, True, True, "P0002", money("60000.00"), "2026-03-31"),
        ]

    def test_restated_register_month(self, funding: dict) -> None:
        # April's register restated with C01's extension: the extension holds from April
        assert funding["after"]["versions"][:2] == [
            ("C01", "P0001", "2025-03-01", "2025-03-01", False, False, None, money("240000.00"), "2025-09-30"),
            ("C01", "P0001", "2025-04-01", None, True, False, None, money("240000.00"), "2026-03-31"),
        ]
        assert not [k for k in funding["after"]["april"] if k[0] == "F5"]

    def test_restated_ledger_month(self, funding: dict) -> None:
        after = funding["after"]
        # April replaced whole: 20,000 + 4,000 = 24,000 on 25,000 (L3 gone)
        assert after["ledger_lines"] == (2, money("24000.00"))
        assert f1(after["april"], "month") == (money("24000.00"), money("25000.00"), money("-1000.00"), money("-4.0"))
        # May's year to date follows: 50,000 on 50,000
        assert f1(after["may"], "fytd") == (money("50000.00"), money("50000.00"), money("0.00"), money("0.0"))
        assert after["april"][("F3_per_person", "all")]["value"] == money("4000.00")

    def test_unknown_contract_fails_the_gate_and_keeps_marts(self, funding: dict) -> None:
        failed = funding["failed"]
        assert not failed.succeeded
        # the dbt test on the ledger fact fails the one dbt build; nothing after it runs
        assert failed.task_states["transform.dbt_producer_watcher"] == "failed"
        # the model's own task fails on its test; models that do not read it stay green
        assert failed.task_states["transform.fct_funding_ledger_lines"] == "failed"
        assert failed.task_states["transform.dim_contract"] == failed.task_states["transform.kpi_monthly"] == "success"
        assert failed.task_states["mart_gate"] == failed.task_states["publish"] == "upstream_failed"
        # the build left its reason in the unpublished schema
        assert funding["unknown_contracts"] == [("C99",)]
        assert funding["checksums_kept"]
        assert "publish" not in [t for t, s in failed.task_states.items() if s == "success"]

    def test_expected_submissions_late_and_missing_files(self, funding: dict) -> None:
        # expected: Medway's ledger and register from 2025-03, Herefordshire's ledger from 2025-04,
        # and treatment from P0001 (C01, adult_community, live throughout) — P0003 holds C02 but
        # never sends treatment files. P0001 sent April only; Herefordshire's May ledger never came.
        pipeline = funding["pipeline"]
        expected = pipeline.query(
            "select feed, source_code, area_id, to_char(month, 'YYYY-MM'), due_date::text, is_received, is_late "
            "from marts.fct_expected_submissions order by 4, 1, 2, 3"
        )
        assert [row[:4] + (row[5],) for row in expected] == [
            ("contracts", MEDWAY, MEDWAY, "2025-03", True),
            ("funding", MEDWAY, MEDWAY, "2025-03", True),
            ("treatment", "P0001", MEDWAY, "2025-03", False),
            ("contracts", MEDWAY, MEDWAY, "2025-04", True),
            ("funding", HEREFORDSHIRE, HEREFORDSHIRE, "2025-04", True),
            ("funding", MEDWAY, MEDWAY, "2025-04", True),
            ("treatment", "P0001", MEDWAY, "2025-04", True),
            ("contracts", MEDWAY, MEDWAY, "2025-05", True),
            ("funding", HEREFORDSHIRE, HEREFORDSHIRE, "2025-05", False),
            ("funding", MEDWAY, MEDWAY, "2025-05", True),
            ("treatment", "P0001", MEDWAY, "2025-05", False),
        ]
        due = {(row[0], row[3]): row[4] for row in expected}
        # due on the seed's day of the following month
        assert due["treatment", "2025-03"] == "2025-04-15"
        assert due["funding", "2025-05"] == "2025-06-20"
        assert due["contracts", "2025-04"] == "2025-05-20"
        # the test's files landed today, long after their due dates
        assert all(row[6] for row in expected if row[5])
        completeness = pipeline.query(
            "select area_id, to_char(month, 'YYYY-MM'), expected_file_count, received_file_count, is_complete, "
            "missing_files from marts.fct_area_month_completeness order by 2, 1"
        )
        assert completeness == [
            (MEDWAY, "2025-03", 3, 2, False, "treatment P0001"),
            (HEREFORDSHIRE, "2025-04", 1, 1, True, None),
            (MEDWAY, "2025-04", 3, 3, True, None),
            (HEREFORDSHIRE, "2025-05", 1, 0, False, "funding E06000019"),
            (MEDWAY, "2025-05", 3, 2, False, "treatment P0001"),
        ]

    def test_overdue_files_raise_an_alert_naming_source_feed_month_and_days(self, funding: dict) -> None:
        today = datetime.now(ZoneInfo("Europe/London")).date()
        # the runs checked on their own day: a suite that passes midnight sees them a day behind
        late = (today - date(2025, 4, 15)).days
        days = {late, late - 1}
        status = {row[0]: row[1:] for row in funding["submission_status"]}
        march_treatment = status[f"treatment|P0001|{MEDWAY}|2025-03"]
        assert march_treatment[0] == "overdue"
        assert march_treatment[1] in days
        assert status[f"funding|{HEREFORDSHIRE}|{HEREFORDSHIRE}|2025-05"][0] == "overdue"
        assert status[f"contracts|{MEDWAY}|{MEDWAY}|2025-05"][0] == "late"
        # each run's check alerted the files it found overdue first, each file once (deadlines.claim_alerts):
        # March's treatment file is expected from April's run on, when P0001 first sent treatment
        posted = funding["alerts"]
        assert [len(posted[m]) for m in ("2024-04", "2025-03", "2025-04", "2025-05")] == [0, 0, 1, 1]
        april = [line for line in posted["2025-04"][0].splitlines() if " file from " in line]
        assert april in [
            [f"- treatment file from P0001 for 2025-03 (area {MEDWAY}) is {n} days late: due 2025-04-15, not received"]
            for n in days
        ]
        may = [line for line in posted["2025-05"][0].splitlines() if " file from " in line]
        assert "reporting months 2025-03 to 2025-05" in posted["2025-05"][0]
        assert len(may) == 2, "March's treatment file was alerted by April's run: not again"
        assert may[0].startswith(f"- funding file from {HEREFORDSHIRE} for 2025-05 (area {HEREFORDSHIRE}) is ")
        assert may[1].startswith(f"- treatment file from P0001 for 2025-05 (area {MEDWAY}) is ")
