"""One GX context per process serves every suite in turn, as under dag.test() and the demo."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
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
            "quality_flag": [None],
            "quality_note": [None],
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


def test_mart_arrays_reach_gx_as_rows_pandas_can_hash() -> None:
    """GX fingerprints every batch with pandas' row hash and pickles the whole frame when a cell is a list."""
    frame = pd.DataFrame(
        {"area_code": ["E06000035", "E06000019"], "source_submissions": [["1", "2"], None], "value": [1.0, None]}
    )
    with pytest.raises(TypeError):
        pd.util.hash_pandas_object(frame)
    hashable = gate._arrays_as_tuples(frame)
    assert pd.util.hash_pandas_object(hashable).size == 2
    assert hashable["source_submissions"].tolist() == [("1", "2"), None]
    assert hashable[["area_code", "value"]].equals(frame[["area_code", "value"]])
