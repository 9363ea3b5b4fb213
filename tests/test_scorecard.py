"""The scorecard and the pack tell the truth (kpis.md v2, decisions 19 and 20), end to end.

Thirteen monthly treatment files (2024-03 to 2025-03) go through the loader and the monthly DAG
builds and publishes once, at 2025-03: M = 2025-03 is compared with M-12 = 2024-03, whose 12-month
windows do not overlap. Medway's figures move by chance-sized steps, Herefordshire's clearly; a
local T3 target for Herefordshire is added as reference data. Every expected figure and interval is
worked out below, independently of the SQL.

- Medway: 40 people start in March 2024 (30 after 14 days, 10 after 29) and finish that month;
  46 start in March 2025 (38 after 13 days, 8 after 28). T1 and T2 40 -> 46, T3 over 21 days
  10/40 -> 8/46, median wait 14 -> 13 days.
- Herefordshire: 10 start in March 2024 after 7 days and finish; 60 start in March 2025, 30 after
  7 days and 30 after 34. T1 and T2 10 -> 60, T3 over 21 days 0/10 -> 30/60, median 7 -> 20.5.
"""

from __future__ import annotations

import math
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from feeds import treatment_row, write_treatment_file

from misuse_warehouse import reference_data, report

MEDWAY, HEREFORDSHIRE = "E06000035", "E06000019"
MONTH, YEAR_AGO = "2025-03", "2024-03"
MONTHS = [f"2024-{m:02d}" for m in range(3, 13)] + ["2025-01", "2025-02", "2025-03"]
LOCAL_T3_TARGET = Decimal("14.0")

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVW"  # no X: XX means withheld
BIRTH_DATES = {"A": "1980-01-01", "B": "1981-01-01", "C": "1982-01-01", "D": "1983-01-01"}  # a person per cohort


def cohort(prefix: str, area: str, starts: list[tuple[str, str]], discharge: str | None) -> list[dict[str, Any]]:
    """One person per (referral, first intervention); all finish successfully on `discharge`, or stay."""
    rows = []
    for n, (referral, start) in enumerate(starts):
        rows.append(
            treatment_row(
                episode_id=f"{prefix}{n}",
                area_code=area,
                client_initials=_LETTERS[n // len(_LETTERS)] + _LETTERS[n % len(_LETTERS)],
                client_dob=BIRTH_DATES[prefix],
                referral_date=referral,
                first_intervention_date=start,
                discharge_date=discharge,
                discharge_reason="completed_drug_free" if discharge else None,
            )
        )
    return rows


MEDWAY_EPISODES = cohort(
    "A", MEDWAY, [("2024-02-20", "2024-03-05")] * 30 + [("2024-02-20", "2024-03-20")] * 10, "2024-03-28"
) + cohort("B", MEDWAY, [("2025-02-20", "2025-03-05")] * 38 + [("2025-02-20", "2025-03-20")] * 8, None)
HEREFORDSHIRE_EPISODES = cohort("C", HEREFORDSHIRE, [("2024-02-26", "2024-03-04")] * 10, "2024-03-28") + cohort(
    "D", HEREFORDSHIRE, [("2025-02-25", "2025-03-04")] * 30 + [("2025-02-25", "2025-03-31")] * 30, None
)


def as_submitted(row: dict[str, Any], month: str) -> dict[str, Any] | None:
    """The row of a file for `month`: known by the month's end, open in the 12 months ending it."""
    first = date(int(month[:4]), int(month[5:]), 1)
    end = (date(first.year + first.month // 12, first.month % 12 + 1, 1) - timedelta(days=1)).isoformat()
    window_start = date(first.year - (first.month < 12), (first.month % 12) + 1, 1).isoformat()
    if row["referral_date"] > end or (row["discharge_date"] and row["discharge_date"] < window_start):
        return None
    row = dict(row)
    if row["first_intervention_date"] > end:
        row["first_intervention_date"] = row["modality"] = None
    if row["discharge_date"] and row["discharge_date"] > end:
        row["discharge_date"] = row["discharge_reason"] = None
    return row


def wilson(k: int, n: int) -> tuple[Decimal, Decimal]:
    """Wilson score 95% limits in %, one decimal place (kpis.md "Intervals")."""
    z, p = 1.959964, k / n
    centre, spread = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return tuple(Decimal(f"{100 * (centre + s * spread) / (1 + z * z / n):.1f}") for s in (-1, 1))  # type: ignore[return-value]


def byar(x: int) -> tuple[Decimal, Decimal]:
    """Byar's approximation to the Poisson 95% interval of a count x (kpis.md decision 20), one decimal place."""
    lower = 0.0 if x == 0 else x * (1 - 1 / (9 * x) - 1.96 / (3 * math.sqrt(x))) ** 3
    upper = (x + 1) * (1 - 1 / (9 * (x + 1)) + 1.96 / (3 * math.sqrt(x + 1))) ** 3
    return Decimal(f"{lower:.1f}"), Decimal(f"{upper:.1f}")


# The intervals the trend test compares (worked by the functions above):
#   Medway T1, T2    40 -> [28.6, 54.5]   46 -> [33.7, 61.4]   overlap: no significant change
#   Medway T3 >21d   10/40 = 25.0% [14.2, 40.2]   8/46 = 17.4% [9.1, 30.7]   overlap
#   Herefordshire T1 10 -> [4.8, 18.4]    60 -> [45.8, 77.2]   apart, up: improving (more is better)
#   Herefordshire T3 >21d 0/10 = 0.0% [0.0, 27.8]   30/60 = 50.0% [37.7, 62.3]   apart, up: worsening
#   T3 median (days): not a proportion or a count: the change is shown, not tested


@pytest.fixture(scope="module")
def scorecard_months(pipeline: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    landing = tmp_path_factory.mktemp("scorecard")
    pipeline.reset()
    for month in MONTHS:
        for provider, episodes in (("P0001", MEDWAY_EPISODES), ("P0002", HEREFORDSHIRE_EPISODES)):
            rows = [as_submitted(e, month) for e in episodes]
            write_treatment_file(landing, provider, month, [r for r in rows if r is not None])
    for month in MONTHS[:-1]:
        pipeline.load_month(landing, month)
    # a partnership's own target (decision 19): a row of the reference data with its area code
    reference_data.load("test_scorecard")
    with psycopg.connect(pipeline.url) as conn:
        conn.execute(
            """insert into reference.ref_kpi_targets (kpi_code, breakdown, area_code, target_value, polarity, source)
               values ('T3_median_days', 'all', %s, %s, 'lower', 'Herefordshire CDP: median wait two weeks')""",
            (HEREFORDSHIRE, LOCAL_T3_TARGET),
        )
    pipeline.run_month(landing, MONTH)
    out = tmp_path_factory.mktemp("packs")
    with report.connect() as conn:
        packs = {
            area: report.write_pack(conn, area, MONTH, out).html.read_text("utf-8") for area in (MEDWAY, HEREFORDSHIRE)
        }
    return {"pipeline": pipeline, "packs": packs}


def card(pipeline: Any, area: str, month: str = MONTH) -> dict[tuple[str, str], dict[str, Any]]:
    with psycopg.connect(pipeline.url) as conn:
        cursor = conn.execute(
            "select * from marts.partnership_scorecard where area_id = %s and month_id = %s", (area, f"{month}-01")
        )
        names = [c.name for c in cursor.description]
        return {(r["kpi_code"], r["breakdown"]): r for r in (dict(zip(names, row, strict=True)) for row in cursor)}


def trend(row: dict[str, Any]) -> tuple:
    """Movement and direction (columns the scorecard has long had), then the arrow and the label shown."""
    movement = (row["trend_movement"], row["trend_direction"])
    return (*movement, row.get("trend_arrow", "no such column"), row.get("trend_label", "no such column"))


def table_row(page: str, label: str) -> str:
    match = re.search(rf"<tr><td>{re.escape(label)}</td>(.*?)</tr>", page, re.S)
    assert match, f"no scorecard row for {label!r}"
    return match.group(1)


PEOPLE, WAITS_OVER, MEDIAN = (
    "People in structured treatment (12 months)",
    "Waits over three weeks",
    "Median wait from referral to first intervention",
)


class TestTrend:
    def test_a_noisy_count_is_no_significant_change(self, scorecard_months: dict) -> None:
        medway = card(scorecard_months["pipeline"], MEDWAY)
        for code in ("T1", "T2"):
            row = medway[(code, "all")]
            assert (row["value"], row["value_12_months_ago"], row["change_on_12_months_ago"]) == (46, 40, 6), code
            assert trend(row) == ("no significant change", "no significant change", "►", "no significant change")
            assert row["trend_test"] == "byar"
            assert (row["trend_ci_lower"], row["trend_ci_upper"]) == byar(46)
            assert (row["trend_ci_lower_12_months_ago"], row["trend_ci_upper_12_months_ago"]) == byar(40)
        people = table_row(scorecard_months["packs"][MEDWAY], PEOPLE)
        assert "► no significant change" in people and "+6 on Mar 2024" in people
        assert "improving" not in people

    def test_a_noisy_proportion_is_no_significant_change(self, scorecard_months: dict) -> None:
        row = card(scorecard_months["pipeline"], MEDWAY)[("T3_pct_over_21d", "all")]
        assert (row["value"], row["value_12_months_ago"]) == (Decimal("17.4"), Decimal("25.0"))
        assert row["change_on_12_months_ago"] == Decimal("-7.6")
        assert trend(row) == ("no significant change", "no significant change", "►", "no significant change")
        assert row["trend_test"] == "wilson"
        assert (row["trend_ci_lower"], row["trend_ci_upper"]) == wilson(8, 46) == (row["ci_lower"], row["ci_upper"])
        assert (row["trend_ci_lower_12_months_ago"], row["trend_ci_upper_12_months_ago"]) == wilson(10, 40)
        waits = table_row(scorecard_months["packs"][MEDWAY], WAITS_OVER)
        assert "► no significant change" in waits and "-7.6 points on Mar 2024" in waits
        assert "improving" not in waits

    def test_a_clear_change_agrees_in_arrow_label_and_figure(self, scorecard_months: dict) -> None:
        herefordshire = card(scorecard_months["pipeline"], HEREFORDSHIRE)
        # more waits over three weeks is worse: up, and worsening
        waits = herefordshire[("T3_pct_over_21d", "all")]
        assert (waits["value"], waits["value_12_months_ago"], waits["change_on_12_months_ago"]) == (
            Decimal("50.0"),
            Decimal("0.0"),
            Decimal("50.0"),
        )
        assert (waits["trend_ci_lower"], waits["trend_ci_upper_12_months_ago"]) == (wilson(30, 60)[0], wilson(0, 10)[1])
        assert trend(waits) == ("increasing", "worsening", "▲", "worsening")
        people = herefordshire[("T1", "all")]
        assert (people["value"], people["value_12_months_ago"], people["change_on_12_months_ago"]) == (60, 10, 50)
        assert trend(people) == ("increasing", "improving", "▲", "improving")
        assert (people["trend_ci_lower"], people["trend_ci_upper_12_months_ago"]) == (byar(60)[0], byar(10)[1])
        page = scorecard_months["packs"][HEREFORDSHIRE]
        people_cell, waits_cell = table_row(page, PEOPLE), table_row(page, WAITS_OVER)
        assert "▲ improving" in people_cell and "+50 on Mar 2024" in people_cell
        assert "▲ worsening" in waits_cell and "+50.0 points on Mar 2024" in waits_cell

    def test_a_median_is_not_tested_and_a_missing_year_is_not_compared(self, scorecard_months: dict) -> None:
        median = card(scorecard_months["pipeline"], MEDWAY)[("T3_median_days", "all")]
        assert (median["value"], median["value_12_months_ago"], median["change_on_12_months_ago"]) == (13, 14, -1)
        assert trend(median) == (None, None, None, "not tested")
        assert median["trend_test"] == "none"
        cell = table_row(scorecard_months["packs"][MEDWAY], MEDIAN)
        assert "not tested" in cell and "(-1 days on Mar 2024)" in cell and "►" not in cell
        # T4 needs six months more cover than the first file gives: nothing published for M-12
        t4 = card(scorecard_months["pipeline"], MEDWAY)[("T4", "kpi_group=opiate")]
        assert t4["value"] == Decimal("100.0") and t4["value_12_months_ago"] is None
        assert trend(t4) == (None, None, None, "no comparison")

    def test_arrow_label_and_figure_never_disagree(self, scorecard_months: dict) -> None:
        rows = scorecard_months["pipeline"].query(
            """select trend_arrow, trend_movement, sign(change_on_12_months_ago), count(*)
               from marts.partnership_scorecard where trend_arrow in ('▲', '▼') group by 1, 2, 3"""
        )
        assert {(arrow, movement, sign) for arrow, movement, sign, _ in rows} <= {
            ("▲", "increasing", 1),
            ("▼", "decreasing", -1),
        }


class TestTargets:
    def test_t3_has_no_default_target(self, scorecard_months: dict) -> None:
        medway = card(scorecard_months["pipeline"], MEDWAY)
        for code in ("T3_median_days", "T3_pct_over_21d"):
            row = medway[(code, "all")]
            assert (row["target_value"], row["is_target_met"]) == (None, None), code
        median = table_row(scorecard_months["packs"][MEDWAY], MEDIAN)
        assert "met" not in median and "21" not in median
        targets = scorecard_months["pipeline"].query("select kpi_code, area_id, target_value from marts.dim_kpi_target")
        assert ("C1", None, Decimal("75.0")) in targets
        assert not [t for t in targets if t[0].startswith("T3") and t[1] is None]

    def test_a_local_t3_target_from_reference_data_is_met_or_not(self, scorecard_months: dict) -> None:
        pipeline = scorecard_months["pipeline"]
        # Medway has no target of its own and there is no general one
        assert card(pipeline, MEDWAY)[("T3_median_days", "all")]["target_value"] is None
        now = card(pipeline, HEREFORDSHIRE)[("T3_median_days", "all")]
        assert (now["value"], now["target_value"], now["target_polarity"], now["is_target_met"]) == (
            Decimal("20.5"),
            LOCAL_T3_TARGET,
            "lower",
            False,
        )
        assert now["target_source"] == "Herefordshire CDP: median wait two weeks"
        year_ago = card(pipeline, HEREFORDSHIRE, YEAR_AGO)[("T3_median_days", "all")]
        assert (year_ago["value"], year_ago["is_target_met"]) == (7, True)
        median = table_row(scorecard_months["packs"][HEREFORDSHIRE], MEDIAN)
        assert "≤ 14 days" in median and "not met" in median
