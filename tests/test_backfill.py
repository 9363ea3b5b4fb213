"""Backfill through Airflow's own scheduler, and resuming it (`make test-backfill`, not in `make test`).

It starts a real scheduler and api-server (LocalExecutor) for several minutes, so it runs on
demand: `make test-backfill`. Two months go through the backfill; the second holds a file that
is refused, so its run fails loudly. First the backfill is created and the command "interrupted"
before any run (the state a Ctrl-C right after creation leaves): running the command again
resumes that backfill rather than starting another. Then the file is corrected and the same
command re-runs the failed month only, as a fresh run; the month that succeeded is not run again.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from feeds import treatment_row, write_treatment_file

from misuse_warehouse import backfill, runtime

pytestmark = pytest.mark.scheduler

MONTHS = ("2025-01", "2025-02")


def _rows(month: str, n: int) -> list[dict]:
    """n new people starting treatment on the 5th of the month."""
    day = f"{month}-05"
    person = chr(65 + MONTHS.index(month))
    return [
        treatment_row(
            episode_id=f"B{month}-{i}",
            client_initials=f"{person}{chr(65 + i)}",
            referral_date=day,
            first_intervention_date=day,
        )
        for i in range(n)
    ]


def _cli_backfill(landing: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "misuse_warehouse.cli", "backfill", "--from", MONTHS[0], "--to", MONTHS[-1]]
    return subprocess.run(
        [*command, "--landing", str(landing)], env=os.environ, capture_output=True, text=True, timeout=3600
    )


def _airflow_db() -> sqlite3.Connection:
    return sqlite3.connect(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///"))


def _latest_backfill() -> int:
    with _airflow_db() as db:
        return db.execute("select max(id) from backfill where dag_id = ?", (backfill.DAG_ID,)).fetchone()[0]


def _runs() -> dict[str, tuple[str, str]]:
    """Each backfilled month's DAG run: (state, end date)."""
    with _airflow_db() as db:
        rows = db.execute(
            "select logical_date, state, end_date from dag_run where dag_id = ? and run_type = 'backfill'",
            (backfill.DAG_ID,),
        ).fetchall()
    return {backfill._london_month(logical): (state, ended) for logical, state, ended in rows}


def test_backfill_runs_months_through_the_scheduler_and_resumes(pipeline, landing: Path) -> None:  # noqa: ANN001
    pipeline.reset()
    for month in MONTHS:
        write_treatment_file(landing, "P0001", month, _rows(month, 6))
    broken = landing / "treatment" / MONTHS[1] / "treatment_P0001_2025-02.csv"
    good = broken.read_bytes()
    broken.write_bytes(good.replace(b"2025-02-05", b"2025-02-31", 1))  # an impossible date: refused

    runtime.configure(parallelism=2)
    runtime.ensure_airflow_db()
    runtime.ensure_manifest()
    created = backfill.create(MONTHS[0], MONTHS[-1], landing)  # ...and the command is interrupted here

    first = _cli_backfill(landing)
    assert first.returncode == 1, first.stdout + first.stderr
    assert f"backfill {created} (resumed)" in first.stdout
    states = {s.month: s.state for s in backfill.month_states(created)}
    assert states == {"2025-01": "success", "2025-02": "failed"}
    assert backfill.active_backfill() is None
    # a failed month publishes what arrived and fails loudly; the refused file is quarantined
    assert pipeline.query("select count(*) from ops.publications")[0][0] == 2

    before = _runs()
    broken.write_bytes(good)
    second = _cli_backfill(landing)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "(resumed)" not in second.stdout
    states = {s.month: s.state for s in backfill.month_states(_latest_backfill())}
    assert states == {"2025-01": "skipped: already exists", "2025-02": "success"}
    after = _runs()
    assert after["2025-01"] == before["2025-01"], "a month that succeeded is not run again"
    assert after["2025-02"][0] == "success" and after["2025-02"][1] > before["2025-02"][1]
    t1 = pipeline.query(
        "select month, value from marts.kpi_monthly where area_code = 'E06000035' and kpi_code = 'T1' "
        "and breakdown = 'all' and month between '2025-01-01' and '2025-02-01' order by month"
    )
    assert [(m.strftime("%Y-%m"), v) for m, v in t1] == [("2025-01", 6), ("2025-02", 12)]
