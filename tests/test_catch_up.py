"""Catch-up runs (decision 14): a backlog of months landed by one monthly DAG run, then one build."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from misuse_warehouse import pipeline as monthly_pipeline
from misuse_warehouse.months import run_months
from misuse_warehouse.simulate import write_feeds

AREA = "E06000035"  # Medway
MONTHS = ["2025-01", "2025-02", "2025-03"]
FIGURES = """select area_code, month, kpi_code, breakdown, numerator, denominator, value, ci_lower, ci_upper,
                    is_suppressed, is_provisional, england_value, comparison
             from marts.kpi_monthly"""


def test_a_run_lands_its_month_or_every_month_of_its_catch_up() -> None:
    assert run_months("2025-03") == ["2025-03"]
    assert run_months("2025-03", "2024-12") == ["2024-12", "2025-01", "2025-02", "2025-03"]
    with pytest.raises(ValueError, match="catch_up_from 2025-04 is after the run's reporting month 2025-03"):
        run_months("2025-03", "2025-04")


def test_the_cli_refuses_a_catch_up_that_starts_after_its_month() -> None:
    from typer.testing import CliRunner

    from misuse_warehouse.cli import app

    result = CliRunner().invoke(app, ["run", "--month", "2025-03", "--catch-up-from", "2025-13"])
    assert result.exit_code == 2
    assert "not a YYYY-MM month: '2025-13'" in result.output
    result = CliRunner().invoke(app, ["run", "--month", "2025-03", "--catch-up-from", "2025-04"])
    assert result.exit_code == 2
    assert "is after the run's reporting month 2025-03" in result.output


def test_a_catch_up_discovers_each_feed_oldest_month_first(tmp_path: Path) -> None:
    write_feeds(tmp_path, [AREA], MONTHS, seed=11)
    feeds = monthly_pipeline.discover_feeds(str(tmp_path), "2025-02", catch_up_from="2025-01")
    for paths in feeds:
        months = [Path(p).parent.name for p in paths]
        assert months == sorted(months), "a restatement is checked against the months before it"
        assert set(months) <= {"2025-01", "2025-02"}
    found = sorted(p for paths in feeds for p in paths)
    expected = sorted(
        monthly_pipeline.discover(str(tmp_path), "2025-01") + monthly_pipeline.discover(str(tmp_path), "2025-02")
    )
    assert found == expected


def ingested_files(pipeline, run_id: str) -> set[str]:  # noqa: ANN001
    return {
        name
        for (name,) in pipeline.query(
            "select target from ops.task_runs where dag_run_id = %s and task_id = 'ingest'", (run_id,)
        )
    }


def test_a_catch_up_run_publishes_what_monthly_runs_publish(pipeline, landing: Path, tmp_path: Path) -> None:  # noqa: ANN001
    sent = (
        tmp_path / "sent"
    )  # what the senders sent: landed afresh for each way of running it (taken files leave landing)
    write_feeds(sent, [AREA], MONTHS, seed=11)
    pipeline.reset()
    shutil.copytree(sent, landing, dirs_exist_ok=True)
    for month in MONTHS[:2]:
        pipeline.run_month(landing, month)
    monthly = set(pipeline.query(FIGURES))
    monthly_loaded = pipeline.query("select count(*) from raw.submissions where status = 'loaded'")
    assert {row[1].strftime("%Y-%m") for row in monthly} == set(MONTHS[:2])

    pipeline.reset()
    shutil.rmtree(landing)
    shutil.copytree(sent, landing)
    backlog = {Path(p).name for month in MONTHS[:2] for p in monthly_pipeline.discover(str(landing), month)}
    caught_up = pipeline.run_month(landing, MONTHS[1], catch_up_from=MONTHS[0])
    assert set(pipeline.query(FIGURES)) == monthly
    assert pipeline.query("select count(*) from raw.submissions where status = 'loaded'") == monthly_loaded
    assert pipeline.query("select count(*) from ops.publications") == [(1,)], "one build, one publication"
    assert ingested_files(pipeline, caught_up.run_id) == backlog

    # the next run is a monthly one again: its own month's files only (dag.test keeps a DAG's last params)
    own = {Path(p).name for p in monthly_pipeline.discover(str(landing), MONTHS[2])}
    after = pipeline.run_month(landing, MONTHS[2])
    assert ingested_files(pipeline, after.run_id) == own


def test_the_demo_catches_up_its_history_then_runs_the_last_months_alone() -> None:
    from misuse_warehouse.cli import _demo_runs

    months = ["2024-04", "2024-05", "2024-06", "2024-07", "2024-08"]
    assert _demo_runs(months, 3) == [("2024-05", "2024-04"), ("2024-06", None), ("2024-07", None), ("2024-08", None)]
    assert _demo_runs(months, 4) == [("2024-04", None), *((m, None) for m in months[1:])]
    assert _demo_runs(months, 5) == _demo_runs(months, 24) == [(m, None) for m in months]
    assert _demo_runs(months, 0) == [("2024-08", "2024-04")]
