"""One GX context per process serves every suite in turn, as under dag.test() and the demo."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from feeds import treatment_row, write_treatment_file

from misuse_warehouse import gate
from misuse_warehouse.file_checks import read_file


def test_suites_in_turn_keep_each_others_assets(landing: Path) -> None:
    parsed = read_file(write_treatment_file(landing, "P0001", "2025-03", [treatment_row()]))
    assert gate.check_file(parsed, "run-1").success
    marts_frame = pd.DataFrame(
        {
            "area_code": ["E06000035"],
            "month": [pd.Timestamp("2025-03-01")],
            "kpi_code": ["T1"],
            "breakdown": ["all"],
            "numerator": [10.0],
            "denominator": [None],
            "value": [10.0],
            "ci_lower": [None],
            "ci_upper": [None],
            "is_suppressed": [False],
            "is_provisional": [False],
            "england_value": [None],
            "comparison": [None],
        }
    )
    assert gate.run_suite("marts_kpi_monthly", marts_frame, "marts.kpi_monthly", "run-1").success
    # the raw suite again, after another suite registered its asset
    assert gate.check_file(parsed, "run-2").success


def test_data_docs_render_one_runs_validations(landing: Path) -> None:
    parsed = read_file(write_treatment_file(landing, "P0002", "2025-03", [treatment_row(provider_code="P0002")]))
    gate.check_file(parsed, "docs-run")
    index = gate.build_data_docs("docs-run")
    assert index.exists()
    pages = list(index.parent.glob("validations/raw_treatment/docs-run/**/*.html"))
    assert pages, "the run's validation page is rendered"
