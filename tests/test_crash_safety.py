"""Crash safety with real kills: a run killed by SIGKILL at any stage changes nothing published.

A month is published first. Then a restatement is run in a subprocess (`misuse-warehouse run`,
the same dag.test path as the CLI) and killed, process group and all, during the COPY, during
the dbt build, during the mart gate and inside the publication transaction. After each kill the
published checksums are those of the first publication; the next run completes and publishes
the restatement.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from feeds import treatment_row, write_treatment_file

from misuse_warehouse import faults

MONTH = "2025-03"
START_TIMEOUT = 300


def _rows(n: int) -> list[dict]:
    return [treatment_row(episode_id=f"E{i}", client_initials=f"A{chr(65 + i)}") for i in range(n)]


def _t1(pipeline) -> int:  # noqa: ANN001
    return pipeline.query(
        "select value from marts.kpi_monthly where area_code = 'E06000035' "
        "and month = '2025-03-01' and kpi_code = 'T1' and breakdown = 'all'"
    )[0][0]


def _run_and_kill(landing: Path, hold_at: str | None, ready: Callable[[], bool]) -> float:
    """Start `misuse-warehouse run` in its own process group, SIGKILL it once `ready()`; seconds to kill."""
    env = os.environ | ({faults.HOLD_ENV: hold_at} if hold_at else {})
    command = [sys.executable, "-m", "misuse_warehouse.cli", "run", "--month", MONTH, "--landing", str(landing)]
    started = time.monotonic()
    process = subprocess.Popen(
        command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while not ready():
            if process.poll() is not None:
                raise AssertionError(f"the run ended ({process.returncode}) before the stage was reached")
            if time.monotonic() - started > START_TIMEOUT:
                raise AssertionError("the stage was not reached in time")
            time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return time.monotonic() - started


def _held(stage: str) -> Callable[[], bool]:
    return faults.marker(stage).exists


def test_a_run_killed_at_any_stage_leaves_the_published_marts_and_the_next_run_completes(
    pipeline,  # noqa: ANN001
    landing: Path,
) -> None:
    pipeline.reset()
    for stage in faults.STAGES:
        faults.marker(stage).unlink(missing_ok=True)
    write_treatment_file(landing, "P0001", MONTH, _rows(6))
    pipeline.run_month(landing, MONTH)
    published = pipeline.checksums()
    publications = pipeline.query("select count(*) from ops.publications")
    assert _t1(pipeline) == 6

    # a restatement: 8 people instead of 6
    write_treatment_file(landing, "P0001", MONTH, _rows(8))

    def unchanged() -> None:
        assert pipeline.checksums() == published
        assert pipeline.query("select count(*) from ops.publications") == publications
        assert _t1(pipeline) == 6

    # 1. during the COPY: rows written, transaction open
    _run_and_kill(landing, "copy", _held("copy"))
    unchanged()
    assert pipeline.query("select count(*), sum(row_count) from raw.submissions") == [(1, 6)]
    assert pipeline.query("select count(*) from raw.treatment_episodes") == [(6,)]

    # 2. during the dbt build: some marts tables built in marts_next, not all
    def some_marts_built() -> bool:
        return (
            pipeline.query("select count(*) from information_schema.tables where table_schema = 'marts_next'")[0][0] > 0
        )

    _run_and_kill(landing, None, some_marts_built)
    unchanged()
    built_at_kill = pipeline.query("select count(*) from information_schema.tables where table_schema = 'marts_next'")
    assert built_at_kill[0][0] < len(published), "the kill came after dbt had built every mart"
    # the restatement itself was committed before dbt ran: raw is append-only
    assert pipeline.query("select count(*) from raw.submissions where status = 'loaded'") == [(2,)]

    # 3. during the mart gate, 4. inside the publication transaction
    for stage in ("gate", "publish"):
        _run_and_kill(landing, stage, _held(stage))
        unchanged()
        assert pipeline.query("select count(*) from pg_namespace where nspname = 'marts_retired'") == [(0,)]

    # the next run completes and publishes the restatement
    result = pipeline.run_month(landing, MONTH)
    assert result.succeeded
    assert _t1(pipeline) == 8
    assert pipeline.checksums() != published
    assert pipeline.query("select count(*) from raw.submissions") == [(2,)], "no submission lost or doubled"
    archived = list((Path(os.environ["MISUSE_WAREHOUSE_HOME"]) / "archive").rglob("*"))
    assert not [p for p in archived if p.name.endswith(".partial")]


@pytest.fixture(autouse=True)
def _no_stale_markers() -> None:
    for stage in faults.STAGES:
        faults.marker(stage).unlink(missing_ok=True)
