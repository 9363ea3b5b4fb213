"""The disclosure audit on hand-made publications: each leak issue 34 found is caught, safe tables pass.

No database: the rows are what a role would read from kpi_monthly.
"""

from __future__ import annotations

import math
from datetime import date

from misuse_warehouse.disclosure_audit import Row, audit_area, audit_rows, is_disclosed

AREA = "E06000035"


def _month(index: int) -> date:
    return date(2024 + (index - 1) // 12, (index - 1) % 12 + 1, 1)


def _count(month: int, kpi: str, breakdown: str, value: int | None) -> Row:
    """A count cell; None means suppressed."""
    shown = None if value is None else float(value)
    return Row(AREA, _month(month), kpi, breakdown, shown, None, shown, value is None)


def _rate(month: int, kpi: str, breakdown: str, numerator: int | None, denominator: int | None) -> Row:
    if numerator is None:
        return Row(AREA, _month(month), kpi, breakdown, None, None, None, True)
    return Row(AREA, _month(month), kpi, breakdown, numerator, denominator, 100 * numerator / denominator, False)


def _money(month: int, kpi: str, numerator: float, denominator: float | None, value: float) -> Row:
    return Row(AREA, _month(month), kpi, "all", numerator, denominator, value, False)


def _t1(month: int, total: int, groups: tuple, services: tuple = (None, None)) -> list[Row]:
    opiate, non_opiate, alcohol = groups
    adult, young = services
    return [
        _count(month, "T1", "all", total),
        _count(month, "T1", "kpi_group=opiate", opiate),
        _count(month, "T1", "kpi_group=non_opiate", non_opiate),
        _count(month, "T1", "kpi_group=alcohol", alcohol),
        _count(month, "T1", "service_type=adult", total if adult is None else adult),
        _count(month, "T1", "service_type=young_people", 0 if young is None else young),
    ]


def _findings(rows: list[Row]) -> dict[str, tuple[int, float]]:
    _, _, findings = audit_area(rows)
    return {f.cell: (f.lowest, f.highest) for f in findings}


def test_the_criterion_spans_five_values_or_exactly_the_rules_own_1_to_4() -> None:
    assert is_disclosed(3, 3)
    assert is_disclosed(1, 2)
    assert is_disclosed(2, 5)
    assert not is_disclosed(1, 4)
    assert not is_disclosed(1, 5)
    assert not is_disclosed(1, math.inf)
    assert not is_disclosed(0, 0), "a count known to be 0 gives nobody away"


def test_a_death_recovered_by_subtracting_rolling_totals_is_caught() -> None:
    # T7_month(M) = T7_12m(M) - T7_12m(M-1) + T7_month(M-12): Medway 2025-05 in the issue, 1 death
    deaths = [0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    rows = [_count(m, "T7_month", "all", None if 1 <= d <= 4 else d) for m, d in enumerate(deaths, 1)]
    rows += [_count(m, "T7_12m", "all", sum(deaths[m - 12 : m])) for m in range(12, 25)]
    found = _findings(rows)
    assert found[f"{AREA} 2025-06 T7_month all"] == (1, 1)
    assert found[f"{AREA} 2024-06 T7_month all"] == (3, 3)


def test_a_death_month_hidden_with_its_rolling_totals_is_safe() -> None:
    deaths = [0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    hidden = {m for m, d in enumerate(deaths, 1) if 1 <= d <= 4}
    rows = [_count(m, "T7_month", "all", None if m in hidden else d) for m, d in enumerate(deaths, 1)]
    rows += [
        _count(m, "T7_12m", "all", None if hidden & set(range(m - 11, m + 1)) else sum(deaths[m - 12 : m]))
        for m in range(12, 25)
    ]
    checked, _, findings = audit_area(rows)
    assert checked == 3 + 13  # three months and every window holding one
    assert findings == []


def test_f4_gives_the_alcohol_group_away_when_t1_all_is_shown() -> None:
    # F4 = spend x (4 - alcohol / T1): alcohol = T1 x (4 - value / spend)
    rows = _t1(1, 200, (150, None, None))  # non-opiate 47 and alcohol 3 hidden: 50 between them
    spend = 100_000.0
    rows.append(_money(1, "F4", spend, 200, round(spend * (4 - 3 / 200), 2)))
    found = _findings(rows)
    assert found[f"{AREA} 2024-01 T1 kpi_group=alcohol"] == (3, 3)
    assert found[f"{AREA} 2024-01 T1 kpi_group=non_opiate"] == (47, 47)


def test_a_hidden_t4_numerator_comes_back_through_f3_per_completion() -> None:
    rows = [
        _rate(1, "T4", "kpi_group=opiate", 20, 80),
        _rate(1, "T4", "kpi_group=non_opiate", 30, 60),
        _rate(1, "T4", "kpi_group=alcohol", None, None),
        _money(1, "F3_per_completion", 90_000.0, 52, round(90_000 / 52, 2)),
    ]
    found = _findings(rows)
    assert found[f"{AREA} 2024-01 T4 kpi_group=alcohol numerator"] == (2, 2)


def test_f3_per_completion_without_its_denominator_still_gives_it_away_through_the_value() -> None:
    rows = [
        _rate(1, "T4", "kpi_group=opiate", 20, 80),
        _rate(1, "T4", "kpi_group=non_opiate", 30, 60),
        _rate(1, "T4", "kpi_group=alcohol", None, None),
        _money(1, "F3_per_completion", 90_000.0, None, round(90_000 / 52, 2)),
    ]
    assert f"{AREA} 2024-01 T4 kpi_group=alcohol numerator" in _findings(rows)


def test_t4_denominator_undoes_t1s_secondary_suppression_six_months_later() -> None:
    rows = _t1(1, 100, (60, None, None))  # non-opiate 37 hidden as secondary beside alcohol 3
    rows.append(_rate(7, "T4", "kpi_group=non_opiate", 10, 37))
    found = _findings(rows)
    assert found[f"{AREA} 2024-01 T1 kpi_group=non_opiate = {AREA} 2024-07 T4 kpi_group=non_opiate denominator"] == (
        37,
        37,
    )
    assert f"{AREA} 2024-01 T1 kpi_group=alcohol" in found


def test_a_visible_sibling_of_five_pins_the_secondary_and_so_the_primary() -> None:
    # hidden 2 and 5 beside a visible 5: the cheapest-first rule says both are at most 5
    rows = _t1(1, 12, (5, None, None))
    found = _findings(rows)
    assert found[f"{AREA} 2024-01 T1 kpi_group=non_opiate"] == (2, 5)


def test_two_hidden_cells_summing_to_two_are_both_one() -> None:
    rows = _t1(1, 52, (50, None, None))
    found = _findings(rows)
    assert found[f"{AREA} 2024-01 T1 kpi_group=non_opiate"] == (1, 1)
    assert found[f"{AREA} 2024-01 T1 kpi_group=alcohol"] == (1, 1)


def test_the_only_candidate_for_primary_suppression_is_at_most_4() -> None:
    # service types may overlap, so only the rule narrows: adult hidden with T1 all 60 and young
    # people hidden too; T2 shows young people at least 9, so adult is the only candidate: 1..4
    rows = [
        _count(1, "T1", "all", 60),
        _count(1, "T1", "service_type=adult", None),
        _count(1, "T1", "service_type=young_people", None),
        _count(1, "T2", "all", 9),
        _count(1, "T2", "service_type=adult", 0),
        _count(1, "T2", "service_type=young_people", 9),
    ]
    checked, narrowest, findings = audit_area(rows)
    assert checked == 2 and findings == []
    assert narrowest == (f"{AREA} 2024-01 T1 service_type=adult", 1, 4)


def test_hidden_cells_with_room_pass_and_the_narrowest_range_is_reported() -> None:
    rows = _t1(1, 100, (None, None, None))  # all three groups hidden: 100 shared among three cells
    rows += [_count(2, "T7_month", "all", None)]
    result = audit_rows("bi_reader", rows)
    assert result.success
    assert result.cells_checked == 4
    # the lone death month is its financial year's only hidden cell: the primary, 1..4 and no narrower
    assert result.narrowest == (f"{AREA} 2024-02 T7_month all", 1, 4)


def test_a_lone_suppressed_rate_passes_but_a_rate_that_shows_a_hidden_count_is_caught() -> None:
    rows = [_rate(1, "T5", "all", None, None)]
    assert audit_area(rows)[2] == []
    # C1 shows its denominator 12; C1_unlinked hidden: 1..12 spans twelve values, safe
    rows = [_rate(1, "C1", "all", 9, 12), _count(1, "C1_unlinked", "all", None)]
    assert audit_area(rows)[2] == []


def test_young_peoples_referrals_rising_on_a_year_ago_are_not_a_contradiction() -> None:
    """Found at national volume: T8_change_pct compares M with M-12, so its numerator may exceed its
    denominator. Read as a proportion, a T8 of 1-4 after a year of none (0) had no solution."""
    cell = "referral_source=children_and_family_services"
    rows = [
        _count(1, "T8", cell, 0),
        _count(13, "T8", cell, None),
        Row(AREA, _month(13), "T8_change_pct", cell, None, None, None, True),
    ]
    checked, narrowest, findings = audit_area(rows)
    assert checked == 1 and findings == []
    assert narrowest[0] == f"{AREA} 2025-01 T8 {cell}" and narrowest[1] == 1
