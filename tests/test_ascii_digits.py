"""Months and area codes given to the CLI and the pulls are read in ASCII digits only.

Python's `\\d` and `int()` also take other scripts' digits: '٢٠٢٥-03' would pass as a month and
reach a URL or a query in a form no API or Postgres reads. Each entry point names it instead.
"""

from __future__ import annotations

import pytest

from misuse_warehouse import fingertips, police, report
from misuse_warehouse.months import parse_month

MONTH_IN_OTHER_DIGITS = "\u0662\u0660\u0662\u0665-03"  # 2025-03, its year in Arabic-Indic digits
AREA_IN_OTHER_DIGITS = "E\u0660\u0666\u0660\u0660\u0660\u0660\u0663\u0665"  # E06000035


def test_simulated_months_are_ascii() -> None:
    assert parse_month("2025-03") == 2025 * 12 + 2
    with pytest.raises(ValueError, match="not a YYYY-MM month"):
        parse_month(MONTH_IN_OTHER_DIGITS)


def test_pulls_refuse_a_month_in_other_digits() -> None:
    with pytest.raises(ValueError, match="not a YYYY-MM month"):
        police.pull(None, "E06000035", MONTH_IN_OTHER_DIGITS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a YYYY-MM month"):
        fingertips.pull(MONTH_IN_OTHER_DIGITS)


def test_the_pack_refuses_an_area_or_month_in_other_digits() -> None:
    with pytest.raises(report.PackError, match="not a GSS area code"):
        report.write_pack(None, AREA_IN_OTHER_DIGITS, "2025-03")  # type: ignore[arg-type]
    with pytest.raises(report.PackError, match="not a YYYY-MM month"):
        report.write_pack(None, "E06000035", MONTH_IN_OTHER_DIGITS)  # type: ignore[arg-type]
