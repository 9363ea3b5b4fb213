"""Treatment KPIs T1-T8 end to end (../shared/kpis.md).

Hand-made provider files go through the real monthly pipeline (files, checks, raw
gate, load, dbt, mart gate, publish) and the figures published in
`marts.kpi_monthly` are checked against arithmetic worked out by hand in the
comments. Two feeds are built, each loaded once per class:

- `TestOneMonth`: one reporting month (2025-03) for T1, T2, T3, T6, T7, T8,
  disclosure control, coverage and provenance.
- `TestThirteenMonths`: 2024-04 to 2025-04 (every month loaded, the DAG publishing at
  2025-01 and 2025-04) for T4, T5, T8's change, coverage
  gating, provisional flags and a discharge restated by a later file.

Each month's file restates every episode open in the 12 months ending that
month, as the provider knows it then (`as_submitted`).
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, getcontext
from pathlib import Path
from typing import Any

import pytest
from feeds import treatment_row, write_feed_file, write_treatment_file

MEDWAY = "E06000035"
HEREFORDSHIRE = "E06000019"
WORCESTERSHIRE = "E10000034"


# Building feeds ---------------------------------------------------------------

_serial = itertools.count()
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVW"  # no X: XX means withheld


def person(born: str = "1980-01-01", sex: str = "m", initials: str | None = None) -> dict[str, str]:
    """A new attributor (distinct initials), or XX when asked: XX cannot be linked."""
    if initials is None:
        n = next(_serial)
        initials = _LETTERS[n // len(_LETTERS) % len(_LETTERS)] + _LETTERS[n % len(_LETTERS)]
    return {"client_initials": initials, "client_dob": born, "client_sex": sex}


def young_person() -> dict[str, str]:
    return person(born="2010-01-01", sex="f")


def episode(
    provider: str,
    episode_id: str,
    who: dict[str, str],
    referral: str,
    first_intervention: str | None = None,
    discharge: str | None = None,
    reason: str | None = None,
    area: str = MEDWAY,
    reported_from: dict[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An episode as its provider finally knows it; `reported_from` delays fields to a later file."""
    row = treatment_row(
        episode_id=episode_id,
        area_code=area,
        referral_date=referral,
        first_intervention_date=first_intervention,
        modality="pharmacological" if first_intervention else None,
        discharge_date=discharge,
        discharge_reason=reason,
        **who,
    )
    row.update(fields)
    row["_provider"] = provider
    row["_reported_from"] = reported_from or {}
    return row


def young_people_episode(provider: str, episode_id: str, referral: str, **fields: Any) -> dict[str, Any]:
    """A young person's episode (alcohol unless said otherwise); fields as in the contract."""
    young = {"service_type": "young_people", "substance_group": "alcohol_only", "primary_substance": "alcohol"}
    return episode(provider, episode_id, young_person(), referral, **(young | fields))


def _month_start(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), 1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def as_submitted(spec: dict[str, Any], month: str) -> dict[str, Any] | None:
    """The row a provider's file for `month` holds: fields known by the month's end, only
    for an episode open at some time in the 12 months ending the month."""
    end = (_add_months(_month_start(month), 1) - timedelta(days=1)).isoformat()
    window_start = _add_months(_month_start(month), -11).isoformat()
    row = {k: v for k, v in spec.items() if not k.startswith("_")}
    for field, first_month in spec["_reported_from"].items():
        if month < first_month:
            row[field] = None
    if row["referral_date"] > end:
        return None
    for field, companions in (
        ("triage_date", ()),
        ("first_intervention_date", ("modality",)),
        ("discharge_date", ("discharge_reason",)),
    ):
        if row.get(field) and row[field] > end:
            row[field] = None
            for companion in companions:
                row[companion] = None
    if row.get("discharge_date") and row["discharge_date"] < window_start:
        return None
    return row


def months_between(first: str, last: str) -> list[str]:
    months, day = [], _month_start(first)
    while day <= _month_start(last):
        months.append(day.strftime("%Y-%m"))
        day = _add_months(day, 1)
    return months


def write_feed(landing: Path, months: list[str], episodes: list[dict[str, Any]]) -> None:
    """One file per provider per month (possibly with no rows)."""
    providers = sorted({e["_provider"] for e in episodes})
    for month in months:
        for provider in providers:
            rows = [as_submitted(e, month) for e in episodes if e["_provider"] == provider]
            write_treatment_file(landing, provider, month, [r for r in rows if r is not None])


# Reading figures ----------------------------------------------------------------


def published(pipeline: Any, area: str, month: str) -> dict[tuple[str, str], dict[str, Any]]:
    rows = pipeline.query(
        """select kpi_code, breakdown, numerator, denominator, value, ci_lower, ci_upper,
                  is_suppressed, is_provisional, source_submissions
           from marts.kpi_monthly where area_code = %s and month = %s""",
        (area, f"{month}-01"),
    )
    names = (
        "numerator",
        "denominator",
        "value",
        "ci_lower",
        "ci_upper",
        "is_suppressed",
        "is_provisional",
        "source_submissions",
    )
    return {(r[0], r[1]): dict(zip(names, r[2:], strict=True)) for r in rows}


def wilson(numerator: int, denominator: int) -> tuple[Decimal, Decimal]:
    """Wilson score 95% limits in %, one decimal place (independent of the SQL macro)."""
    getcontext().prec = 40
    z, n, p = Decimal("1.959964"), Decimal(denominator), Decimal(numerator) / Decimal(denominator)
    centre = p + z * z / (2 * n)
    spread = z * (p * (1 - p) / n + z * z / (4 * n * n)).sqrt()
    scale = 1 + z * z / n
    one_place = Decimal("0.1")
    return (
        (100 * (centre - spread) / scale).quantize(one_place, ROUND_HALF_UP),
        (100 * (centre + spread) / scale).quantize(one_place, ROUND_HALF_UP),
    )


def assert_count(figures: dict, kpi: str, breakdown: str, expected: int) -> None:
    row = figures[(kpi, breakdown)]
    assert not row["is_suppressed"], (kpi, breakdown, row)
    assert row["value"] == expected and row["numerator"] == expected, (kpi, breakdown, row)


def assert_rate(figures: dict, kpi: str, breakdown: str, numerator: int, denominator: int, value: str) -> None:
    row = figures[(kpi, breakdown)]
    assert not row["is_suppressed"], (kpi, breakdown, row)
    assert (row["numerator"], row["denominator"]) == (numerator, denominator), (kpi, breakdown, row)
    assert row["value"] == Decimal(value), (kpi, breakdown, row)
    assert (row["ci_lower"], row["ci_upper"]) == wilson(numerator, denominator), (kpi, breakdown, row)


def assert_suppressed(figures: dict, kpi: str, breakdown: str) -> None:
    row = figures[(kpi, breakdown)]
    assert row["is_suppressed"], (kpi, breakdown, row)
    assert (row["numerator"], row["denominator"], row["value"], row["ci_lower"], row["ci_upper"]) == (
        None,
        None,
        None,
        None,
        None,
    )


# One reporting month: 2025-03 ------------------------------------------------------
# T1's window is 2024-04-01 .. 2025-03-31. Medway (MEDWAY) unless said otherwise.

p = {name: person() for name in ("p1", "p2", "p3", "p4", "p5", "p6", "p8", "p9", "p10", "p13", "p14")}
p["p12"] = person(born="2006-06-15")  # 17 on 2024-05-01, 18 on 2024-08-01
withheld = person(initials="XX", born="1990-01-01")  # two episodes, two persons
n = [person() for _ in range(4)]
y = [young_person() for _ in range(5)]
deaths = [person() for _ in range(6)]

ONE_MONTH = [
    # p1-p5: adults, opiate, first intervention in March after waits of 0, 7, 21, 22, 30
    # days; TOP start/review 20/10, 20/11, 0/0, 10/0, 15/15
    episode("P0001", "A1", p["p1"], "2025-03-03", "2025-03-03", top_start_days_used=20, top_review_days_used=10),
    episode("P0001", "A2", p["p2"], "2025-03-01", "2025-03-08", top_start_days_used=20, top_review_days_used=11),
    episode("P0001", "A3", p["p3"], "2025-02-20", "2025-03-13", top_start_days_used=0, top_review_days_used=0),
    episode("P0001", "A4", p["p4"], "2025-02-20", "2025-03-14", top_start_days_used=10, top_review_days_used=0),
    episode("P0001", "A5", p["p5"], "2025-02-14", "2025-03-16", top_start_days_used=15, top_review_days_used=15),
    # p6: a person with two providers, both open; the later referral (P0002,
    # non-opiate, TOP 20/2) decides their substance group and TOP progress
    episode("P0001", "A6", p["p6"], "2024-06-01", "2024-06-10", top_start_days_used=20, top_review_days_used=20),
    episode(
        "P0002",
        "B6",
        p["p6"],
        "2024-09-01",
        "2024-09-05",
        substance_group="non_opiate_only",
        primary_substance="cocaine",
        top_start_days_used=20,
        top_review_days_used=2,
    ),
    # XX initials: two episodes of "the same" attributor are two persons; A7 starts
    # in March after 14 days, B7 ran August to November
    episode("P0001", "A7", withheld, "2025-02-26", "2025-03-12"),
    episode("P0002", "B7", withheld, "2024-07-20", "2024-08-01", "2024-12-01", "dropped_out"),
    # p8: transferred from P0001 to P0002 on 4 March, starts there on the 5th (wait 1
    # day): in treatment the day before, so not a new presentation
    episode("P0001", "A8", p["p8"], "2024-05-01", "2024-05-10", "2025-03-04", "transferred_not_in_custody"),
    episode("P0002", "B8", p["p8"], "2025-03-04", "2025-03-05"),
    # p9: referred, no first intervention: never in structured treatment
    episode("P0001", "A9", p["p9"], "2025-02-01"),
    # p10: open across the window's start, died on its first day; TOP not in March
    episode(
        "P0001",
        "A10",
        p["p10"],
        "2023-05-01",
        "2023-06-01",
        "2024-04-01",
        "died",
        top_start_days_used=28,
        top_review_days_used=0,
    ),
    # p12: young people's episode at 17 (alcohol, GP referral), adult one at 18 (non-opiate)
    episode(
        "P0001",
        "A12Y",
        p["p12"],
        "2024-05-01",
        "2024-05-10",
        "2024-07-01",
        "completed_alcohol_free",
        service_type="young_people",
        substance_group="alcohol_only",
        primary_substance="alcohol",
        referral_source="gp",
    ),
    episode(
        "P0001",
        "A12",
        p["p12"],
        "2024-08-01",
        "2024-08-10",
        substance_group="non_opiate_only",
        primary_substance="cannabis",
    ),
    # p13: in treatment in Herefordshire since December, starts in Medway in March
    # after 25 days: not a new presentation (look-ups search every area)
    episode("P0002", "B13", p["p13"], "2024-11-20", "2024-12-01", area=HEREFORDSHIRE),
    episode("P0001", "A13", p["p13"], "2025-02-13", "2025-03-10"),
    # p14: completed in January, back in March (wait 10 days): a new presentation
    episode("P0001", "A14", p["p14"], "2024-09-20", "2024-10-01", "2025-01-15", "completed_drug_free"),
    episode("P0001", "A14B", p["p14"], "2025-03-10", "2025-03-20"),
    # n1-n4: adults, non-opiate and alcohol, in treatment since July
    *[
        episode(
            "P0001",
            f"N{i}",
            who,
            "2024-06-20",
            "2024-07-01",
            substance_group="non_opiate_and_alcohol",
            primary_substance="cocaine",
        )
        for i, who in enumerate(n, 1)
    ],
    # y1-y5: young people, alcohol, referred by education, starting in March after
    # 1, 2, 3, 40, 50 days; y1 has a TOP start only, y2 TOP 10/5
    young_people_episode(
        "P0001",
        "Y1",
        "2025-03-01",
        first_intervention_date="2025-03-02",
        modality="psychosocial",
        referral_source="education",
        top_start_days_used=10,
    ),
    young_people_episode(
        "P0001",
        "Y2",
        "2025-03-01",
        first_intervention_date="2025-03-03",
        modality="psychosocial",
        referral_source="education",
        top_start_days_used=10,
        top_review_days_used=5,
    ),
    young_people_episode(
        "P0001",
        "Y3",
        "2025-03-01",
        first_intervention_date="2025-03-04",
        modality="psychosocial",
        referral_source="education",
    ),
    young_people_episode(
        "P0001",
        "Y4",
        "2025-02-01",
        first_intervention_date="2025-03-13",
        modality="psychosocial",
        referral_source="education",
    ),
    young_people_episode(
        "P0001",
        "Y5",
        "2025-01-20",
        first_intervention_date="2025-03-11",
        modality="psychosocial",
        referral_source="education",
    ),
    # deaths of people never in structured treatment: five in March, one in December
    *[
        episode("P0001", f"D{i}", who, "2025-01-10", None, f"2025-03-1{i}", "died")
        for i, who in enumerate(deaths[:5], 1)
    ],
    episode("P0001", "D6", deaths[5], "2024-11-01", None, "2024-12-10", "died"),
]

# Worcestershire (P0003): 7 opiate and 5 alcohol adults, 2 young people (cannabis,
# referred by education), all in treatment since September; three have both TOP values
WORCESTERSHIRE_FEED = [
    *[
        episode(
            "P0003",
            f"W{i}",
            person(),
            "2024-08-25",
            "2024-09-01",
            area=WORCESTERSHIRE,
            top_start_days_used=10 if i <= 3 else None,
            top_review_days_used=2 if i <= 3 else None,
        )
        for i in range(1, 8)
    ],
    *[
        episode(
            "P0003",
            f"WA{i}",
            person(),
            "2024-08-25",
            "2024-09-01",
            area=WORCESTERSHIRE,
            substance_group="alcohol_only",
            primary_substance="alcohol",
        )
        for i in range(1, 6)
    ],
    *[
        young_people_episode(
            "P0003",
            f"WY{i}",
            "2024-08-25",
            first_intervention_date="2024-09-01",
            modality="psychosocial",
            area_code=WORCESTERSHIRE,
            referral_source="education",
            substance_group="non_opiate_only",
            primary_substance="cannabis",
        )
        for i in range(1, 3)
    ],
]


@pytest.fixture(scope="class")
def one_month(pipeline: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    landing = tmp_path_factory.mktemp("one_month")
    pipeline.reset()
    write_feed(landing, ["2025-03"], ONE_MONTH + WORCESTERSHIRE_FEED)
    pipeline.run_month(landing, "2025-03")
    return pipeline


class TestOneMonth:
    def test_t1_persons_in_treatment(self, one_month: Any) -> None:
        figures = published(one_month, MEDWAY, "2025-03")
        # opiate: p1-p5 (5) + two XX persons (2) + p8 (one person across the transfer)
        #   + p10 (in treatment on 2024-04-01) + p13 + p14 = 11
        # non-opiate: p6 (latest referral B6 is non-opiate) + p12 (adult episode is
        #   the later referral) + n1-n4 = 6
        # alcohol: y1-y5 = 5; p9 never started; the deaths never started
        assert_count(figures, "T1", "kpi_group=opiate", 11)
        assert_count(figures, "T1", "kpi_group=non_opiate", 6)
        assert_count(figures, "T1", "kpi_group=alcohol", 5)
        assert_count(figures, "T1", "all", 11 + 6 + 5)
        # service types: p12 counts under both (decision 4): adult 22 - 5 = 17, YP 5 + 1 = 6
        assert_count(figures, "T1", "service_type=adult", 17)
        assert_count(figures, "T1", "service_type=young_people", 6)
        # Herefordshire: p13 alone: 1 is hidden, and a total of 1-4 is not broken down at all, its
        # zeros included (which groups are 0 would narrow the total: data dictionary, disclosure control)
        hereford = published(one_month, HEREFORDSHIRE, "2025-03")
        assert_suppressed(hereford, "T1", "all")
        for breakdown in ("service_type=adult", "service_type=young_people", "kpi_group=opiate", "kpi_group=alcohol"):
            assert_suppressed(hereford, "T1", breakdown)

    def test_t2_new_presentations(self, one_month: Any) -> None:
        figures = published(one_month, MEDWAY, "2025-03")
        # first interventions in March: p1-p5, y1-y5, A7 (XX, unlinkable), p14 (back after
        # January) are new = 12; B8 (transfer, A8 open on 4 March) and A13 (p13 in
        # treatment in Herefordshire) are not
        assert_count(figures, "T2", "all", 12)
        assert_count(figures, "T2", "service_type=adult", 7)
        assert_count(figures, "T2", "service_type=young_people", 5)

    def test_t3_waiting_times(self, one_month: Any) -> None:
        figures = published(one_month, MEDWAY, "2025-03")
        # 14 first interventions in March; waits sorted:
        # y1 1, y2 2, y3 3, p1 0, B8 1, p2 7, A14B 10, A7 14, p3 21, p4 22, A13 25, p5 30, y4 40, y5 50
        # -> 0 1 1 2 3 7 10 | 14 21 22 25 30 40 50: median = (10 + 14) / 2 = 12
        median = figures[("T3_median_days", "all")]
        assert median["value"] == 12 and not median["is_suppressed"]
        # over 21 days (strictly): 22, 25, 30, 40, 50 = 5 of 14 = 35.7%
        assert_rate(figures, "T3_pct_over_21d", "all", 5, 14, "35.7")

    def test_t6_treatment_progress(self, one_month: Any) -> None:
        figures = published(one_month, MEDWAY, "2025-03")
        # both TOP values on an episode in treatment in March:
        # p1 20->10 yes (half), p2 20->11 no, p3 0->0 yes (review 0), p4 10->0 yes,
        # p5 15->15 no, p6 decided by B6 (latest referral) 20->2 yes, y2 10->5 yes;
        # p10 left in April 2024 and y1 has no review: 5 of 7 = 71.4%
        assert_rate(figures, "T6", "all", 5, 7, "71.4")

    def test_t7_deaths_in_treatment(self, one_month: Any) -> None:
        figures = published(one_month, MEDWAY, "2025-03")
        # died in March: D1-D5 = 5; in the 12 months: + D6 (December) + A10 (1 April 2024) = 7
        assert_count(figures, "T7_month", "all", 5)
        assert_count(figures, "T7_12m", "all", 7)

    def test_t8_young_people_referral_sources(self, one_month: Any) -> None:
        figures = published(one_month, MEDWAY, "2025-03")
        # young people's episodes referred 2024-04 .. 2025-03: education y1-y5 = 5, gp A12Y = 1
        assert_count(figures, "T8", "referral_source=education", 5)
        assert_suppressed(figures, "T8", "referral_source=gp")
        assert {b for (k, b) in figures if k == "T8"} == {"referral_source=education", "referral_source=gp"}
        # the change needs the 12 months before as well: not covered yet
        assert not [key for key in figures if key[0] == "T8_change_pct"]

    def test_disclosure_control(self, one_month: Any) -> None:
        figures = published(one_month, WORCESTERSHIRE, "2025-03")
        # all 14 shown; young people 2 hidden (primary), so the next smallest
        # service type, adult 12, is hidden too (secondary)
        assert_count(figures, "T1", "all", 14)
        assert_suppressed(figures, "T1", "service_type=young_people")
        assert_suppressed(figures, "T1", "service_type=adult")
        # KPI groups: non-opiate 2 hidden, next smallest alcohol 5 hidden, opiate 7 shown
        assert_suppressed(figures, "T1", "kpi_group=non_opiate")
        assert_suppressed(figures, "T1", "kpi_group=alcohol")
        assert_count(figures, "T1", "kpi_group=opiate", 7)
        # no new presentations: zeros are published, not hidden
        for breakdown in ("all", "service_type=adult", "service_type=young_people"):
            assert_count(figures, "T2", breakdown, 0)
        # a rate on 3 persons is hidden
        assert_suppressed(figures, "T6", "all")
        # no first interventions in March: no waiting-time figures at all
        assert ("T3_median_days", "all") not in figures

    def test_coverage_provenance_and_no_attributor(self, one_month: Any) -> None:
        figures = published(one_month, MEDWAY, "2025-03")
        # the first month covers the 12 months before it: T4 (6 months on), T5 (3 months
        # on) and T8's change (12 months on) wait; C4 (referrals in the 12 months) does not
        assert {k for k, _ in figures} == {
            "C4",
            "T1",
            "T2",
            "T3_median_days",
            "T3_pct_over_21d",
            "T6",
            "T7_month",
            "T7_12m",
            "T8",
        }
        # one month loaded: every figure can still be restated
        assert all(row["is_provisional"] for row in figures.values())
        ids = dict(
            one_month.query("select source_code, submission_id::text from raw.submissions where status = 'loaded'")
        )
        assert figures[("T1", "all")]["source_submissions"] == sorted([ids["P0001"], ids["P0002"]], key=int)
        assert published(one_month, WORCESTERSHIRE, "2025-03")[("T1", "all")]["source_submissions"] == [ids["P0003"]]
        # initials and dates of birth never leave raw
        leaked = one_month.query(
            """select table_schema, table_name, column_name from information_schema.columns
               where table_schema in ('staging', 'intermediate', 'marts', 'marts_person')
                 and column_name in ('client_initials', 'client_dob', 'initials', 'dob')"""
        )
        assert leaked == []
        # the episode fact carries the pseudonymous person only (person-level schema)
        persons = one_month.query(
            "select count(distinct person_id) from marts_person.fct_treatment_episodes where area_id = %s", (MEDWAY,)
        )
        # 11 named persons + p12 + 4 n + 5 y + 6 deaths + 2 XX = 29 (p13 counted once)
        assert persons == [(29,)]


# Thirteen months: 2024-04 .. 2025-04 ------------------------------------------------
# T4 at 2025-04 looks at W = 2023-11-01 .. 2024-10-31 (the 12 months ending M-6).

s = {f"s{i}": person() for i in range(1, 15)}
s["s12"] = person(initials="XX", born="1975-05-05")
alcohol = [person() for _ in range(6)]
late_deaths = [person() for _ in range(5)]

T4_FEED = [
    # s1-s5: successful discharge in March 2024, never back: numerator
    *[
        episode("P0001", f"S{i}", s[f"s{i}"], "2023-10-01", "2023-10-10", "2024-03-15", "completed_drug_free")
        for i in range(1, 6)
    ],
    # s6: success 2024-07-01, referred again on day 184 = 2025-01-01 = exactly six
    # calendar months later: a re-presentation, so denominator only
    episode("P0001", "S6", s["s6"], "2023-12-01", "2023-12-10", "2024-07-01", "completed_drug_free"),
    episode("P0001", "S6B", s["s6"], "2025-01-01"),
    # s7: success 2024-08-31; six months on clips to 2025-02-28, so a referral on
    # day 184 (2025-03-03) is not a re-presentation: numerator
    episode("P0001", "S7", s["s7"], "2023-12-01", "2023-12-10", "2024-08-31", "completed_drug_free"),
    episode("P0001", "S7B", s["s7"], "2025-03-03"),
    # s8: success 2024-09-15, referred again the next day: denominator only
    episode("P0001", "S8", s["s8"], "2023-12-01", "2023-12-10", "2024-09-15", "completed_drug_free"),
    episode("P0001", "S8B", s["s8"], "2024-09-16", None, "2024-09-30", "declined_treatment"),
    # s9: success 2024-10-10 and a referral the same day (not strictly after): numerator
    episode("P0001", "S9", s["s9"], "2024-01-05", "2024-01-10", "2024-10-10", "completed_drug_free"),
    episode("P0001", "S9B", s["s9"], "2024-10-10", None, "2024-10-20", "declined_treatment"),
    # s10: in treatment throughout, never discharged: denominator only
    episode("P0001", "S10", s["s10"], "2023-09-01", "2023-09-05"),
    # s11: transferred P0001 -> P0002 in June, completes at P0002 in October: numerator
    episode("P0001", "S11", s["s11"], "2024-02-01", "2024-02-05", "2024-06-30", "transferred_not_in_custody"),
    episode("P0002", "S11B", s["s11"], "2024-07-01", "2024-07-05", "2024-10-20", "completed_drug_free"),
    # s12: XX initials, success in June; another XX referral in July cannot be linked
    episode("P0001", "S12", s["s12"], "2023-11-01", "2023-11-05", "2024-06-15", "completed_drug_free"),
    episode("P0002", "S12B", s["s12"], "2024-07-01"),
    # s13: success after W (2024-11-05): denominator only
    episode("P0001", "S13", s["s13"], "2024-01-10", "2024-01-15", "2024-11-05", "completed_drug_free"),
    # s14, two providers: P0001 success 2024-05-10 is followed by a P0002 referral
    # within six months, but the P0002 success 2024-10-25 is not: numerator
    episode("P0001", "S14", s["s14"], "2023-12-01", "2023-12-05", "2024-05-10", "completed_drug_free"),
    episode("P0002", "S14B", s["s14"], "2024-09-01", "2024-09-05", "2024-10-25", "completed_drug_free"),
    # alcohol: five complete in June 2024, one still in treatment
    *[
        episode(
            "P0001",
            f"AL{i}",
            who,
            "2024-01-01",
            "2024-01-10",
            "2024-06-01" if i <= 5 else None,
            "completed_alcohol_free" if i <= 5 else None,
            substance_group="alcohol_only",
            primary_substance="alcohol",
        )
        for i, who in enumerate(alcohol, 1)
    ],
    # five deaths in January 2025 that P0001 reports only in its February file
    *[
        episode(
            "P0001",
            f"R{i}",
            who,
            "2024-11-01",
            "2024-11-05",
            f"2025-01-2{i}",
            "died",
            reported_from={"discharge_date": "2025-02", "discharge_reason": "2025-02"},
        )
        for i, who in enumerate(late_deaths, 1)
    ],
]

# T5 in Herefordshire at 2025-04: first interventions 2024-02-01 .. 2025-01-31
T5_FEED = [
    episode("P0002", f"E{i}", person(), start, start, end, reason, area=HEREFORDSHIRE)
    for i, (start, end, reason) in enumerate(
        [
            ("2024-03-01", "2024-05-24", "dropped_out"),  # e1 day 84: counts
            ("2024-04-01", "2024-04-11", "died"),  # e2 counts (decision 9)
            ("2024-05-01", "2024-06-01", "retained_in_custody"),  # e3 counts
            ("2024-06-01", "2024-06-15", "declined_treatment"),  # e4 counts
            ("2024-07-01", "2024-08-01", "withdrawn_by_provider"),  # e5 counts
            ("2024-03-01", "2024-05-25", "dropped_out"),  # e6 day 85: denominator only
            ("2024-08-01", "2024-08-11", "transferred_in_custody"),  # e7 transfer: denominator only
            ("2024-09-01", "2024-10-31", "completed_drug_free"),  # e8 success: denominator only
            ("2024-10-01", None, None),  # e9 open: denominator only
            ("2024-01-31", "2024-02-05", "dropped_out"),  # e10 starts before the window
            ("2025-01-31", "2025-02-05", "dropped_out"),  # e11 last day of the window: counts
            ("2025-02-01", "2025-02-10", "dropped_out"),  # e12 starts after the window
        ],
        1,
    )
]

# T8 in Worcestershire at 2025-04: young people's referrals in the 12 months ending
# 2025-04 (current) and in 2023-05 .. 2024-04 (previous), by source
T8_COUNTS = {  # source: (previous, current)
    "education": (5, 6),
    "gp": (10, 5),
    "self": (6, 2),
    "hospital": (5, 0),
    "social_care": (0, 5),
}


def _t8_feed() -> list[dict[str, Any]]:
    episodes = []
    for source, (previous, current) in T8_COUNTS.items():
        days = [date(2023, 5, 1) + timedelta(days=30 * k) for k in range(previous)]
        days += [date(2024, 5, 1) + timedelta(days=30 * k) for k in range(current)]
        for k, day in enumerate(days):
            episodes.append(
                young_people_episode(
                    "P0003",
                    f"{source.replace('_', '-')}-{k}",
                    day.isoformat(),
                    area_code=WORCESTERSHIRE,
                    referral_source=source,
                    discharge_date=(day + timedelta(days=14)).isoformat(),
                    discharge_reason="declined_treatment",
                )
            )
    # referred the day before the previous window: in no window
    episodes.append(
        young_people_episode(
            "P0003",
            "before",
            "2023-04-30",
            area_code=WORCESTERSHIRE,
            referral_source="education",
            discharge_date="2023-05-10",
            discharge_reason="declined_treatment",
        )
    )
    return episodes


MONTHS = months_between("2024-04", "2025-04")

# Medway's ledger for April 2025, so that F3's cost per completion meets T4 (issue 4)
APRIL_2025_LEDGER = [
    {
        "period_month": "2025-04",
        "line_id": "L1",
        "area_code": MEDWAY,
        "cost_centre": "DA1",
        "funding_stream": "public_health_grant",
        "service_line": "adult_community",
        "budget_gbp": "30000.00",
        "actual_gbp": "30000.00",
    },
    {
        "period_month": "2025-04",
        "line_id": "L2",
        "area_code": MEDWAY,
        "cost_centre": "DA2",
        "funding_stream": "public_health_grant",
        "service_line": "prevention",
        "budget_gbp": "5000.00",
        "actual_gbp": "5000.00",
    },
]


@pytest.fixture(scope="class")
def thirteen_months(pipeline: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    landing = tmp_path_factory.mktemp("thirteen_months")
    pipeline.reset()
    write_feed(landing, MONTHS, T4_FEED + T5_FEED + _t8_feed())
    write_feed_file(landing, "funding", MEDWAY, "2025-04", APRIL_2025_LEDGER)
    snapshots = {}
    # every month's files are loaded in turn; the DAG builds and publishes at 2025-01 (the
    # snapshot the restatement test compares with) and at 2025-04, the month the tests read
    for month in MONTHS:
        if month in ("2025-01", MONTHS[-1]):
            pipeline.run_month(landing, month)
        else:
            pipeline.load_month(landing, month)
        if month == "2025-01":
            snapshots["january_as_first_published"] = published(pipeline, MEDWAY, "2025-01")
    return {"pipeline": pipeline, **snapshots}


class TestThirteenMonths:
    def test_t4_successful_completions_without_re_presentation(self, thirteen_months: dict) -> None:
        figures = published(thirteen_months["pipeline"], MEDWAY, "2025-04")
        # opiate, in treatment in W: s1-s14 = 14 persons (S12B never started)
        # numerator: s1-s5, s7 (day 184 is past the clipped six months), s9 (same-day
        # referral), s11 (after the transfer), s12 (XX), s14 (second provider) = 10
        # not: s6 (day 184 = six months), s8 (day 1), s10 (open), s13 (after W)
        assert_rate(figures, "T4", "kpi_group=opiate", 10, 14, "71.4")
        # alcohol: 5 of 6 completed in June 2024 = 83.3%
        assert_rate(figures, "T4", "kpi_group=alcohol", 5, 6, "83.3")
        # nobody in the non-opiate group: nothing to publish
        assert ("T4", "kpi_group=non_opiate") not in figures

    def test_f3_cost_per_successful_completion(self, thirteen_months: dict) -> None:
        figures = published(thirteen_months["pipeline"], MEDWAY, "2025-04")
        # treatment spend April 2025 (prevention is not treatment): 30,000.00, over the T4
        # numerators of every group: 10 opiate + 5 alcohol = 15 -> 2,000.00 a completion
        row = figures[("F3_per_completion", "all")]
        assert (row["numerator"], row["denominator"], row["value"]) == (Decimal("30000.00"), 15, Decimal("2000.00"))

    def test_t4_waits_for_six_months_of_cover(self, thirteen_months: dict) -> None:
        pipeline = thirteen_months["pipeline"]
        # first file 2024-04 covers 2023-05 on; W for M needs M-17 >= 2023-05: M >= 2024-10
        assert not [k for k in published(pipeline, MEDWAY, "2024-09") if k[0] == "T4"]
        assert ("T4", "kpi_group=opiate") in published(pipeline, MEDWAY, "2024-10")

    def test_t5_early_unplanned_exits(self, thirteen_months: dict) -> None:
        pipeline = thirteen_months["pipeline"]
        figures = published(pipeline, HEREFORDSHIRE, "2025-04")
        # first interventions 2024-02 .. 2025-01: e1-e9 and e11 = 10 episodes;
        # unplanned exits within 84 days: e1, e2, e3, e4, e5, e11 = 6 -> 60.0%
        assert_rate(figures, "T5", "all", 6, 10, "60.0")
        # M-14 must be covered (2023-05 on): first published 2024-07
        assert ("T5", "all") not in published(pipeline, HEREFORDSHIRE, "2024-06")
        assert ("T5", "all") in published(pipeline, HEREFORDSHIRE, "2024-07")

    def test_t8_change_on_the_previous_12_months(self, thirteen_months: dict) -> None:
        pipeline = thirteen_months["pipeline"]
        figures = published(pipeline, WORCESTERSHIRE, "2025-04")
        assert_count(figures, "T8", "referral_source=education", 6)
        assert_count(figures, "T8", "referral_source=gp", 5)
        assert_suppressed(figures, "T8", "referral_source=self")  # 2
        assert_count(figures, "T8", "referral_source=hospital", 0)  # fell from 5
        assert_count(figures, "T8", "referral_source=social_care", 5)

        def change(source: str) -> dict:
            return figures[("T8_change_pct", f"referral_source={source}")]

        # education (6 - 5) / 5 = +20.0%; gp (5 - 10) / 10 = -50.0%; hospital -100.0%
        education = change("education")
        assert (education["numerator"], education["denominator"], education["value"]) == (6, 5, Decimal("20.0"))
        assert change("gp")["value"] == Decimal("-50.0")
        assert change("hospital")["value"] == Decimal("-100.0")
        assert change("self")["is_suppressed"]  # rests on a count of 2
        # no previous referrals from social care: no change to publish
        assert ("T8_change_pct", "referral_source=social_care") not in figures
        # the previous 12 months are covered from 2025-04 only (M-23 >= 2023-05)
        assert not [k for k in published(pipeline, WORCESTERSHIRE, "2025-03") if k[0] == "T8_change_pct"]

    def test_restated_discharge_changes_earlier_month(self, thirteen_months: dict) -> None:
        before = thirteen_months["january_as_first_published"]
        after = published(thirteen_months["pipeline"], MEDWAY, "2025-01")
        # the January file showed R1-R5 open; February's file reports them dead in January
        assert_count(before, "T7_month", "all", 0)
        assert_count(after, "T7_month", "all", 5)
        assert before[("T7_month", "all")]["is_provisional"]

    def test_provisional_until_the_last_restating_file(self, thirteen_months: dict) -> None:
        pipeline = thirteen_months["pipeline"]
        # 2025-04 is loaded: months up to 2024-05 (2024-05 + 11) can no longer be restated
        assert not published(pipeline, MEDWAY, "2024-05")[("T1", "all")]["is_provisional"]
        assert published(pipeline, MEDWAY, "2024-06")[("T1", "all")]["is_provisional"]
        months = pipeline.query(
            "select distinct month from marts.kpi_monthly where area_code = %s order by month", (MEDWAY,)
        )
        assert [m.strftime("%Y-%m") for (m,) in months] == MONTHS
