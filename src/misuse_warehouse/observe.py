"""Run observability in the warehouse itself: what each task did, every gate check, rows per layer.

Airflow's UI shows task states and logs; a data engineer asking "how many rows did the
treatment files bring in March, and which checks failed" wants SQL. Every task of the monthly
DAG writes a row to `ops.task_runs` (seconds, rows in and out), every expectation of either gate
a row to `ops.gate_results` (with its quality dimension), and each run ends with a snapshot of
rows per layer in `ops.layer_rows`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg


@dataclass
class TaskRun:
    """Filled in by the task while it runs; written when it ends, whatever the outcome."""

    task_id: str
    layer: str
    target: str | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    status: str = "success"
    detail: dict[str, Any] = field(default_factory=dict)


@contextmanager
def task_run(
    conn: psycopg.Connection, dag_run_id: str | None, task_id: str, layer: str, target: str | None = None
) -> Iterator[TaskRun]:
    """Time a task and record it in `ops.task_runs`, also when it raises (status `failed`)."""
    run = TaskRun(task_id, layer, target)
    started = datetime.now(UTC)
    clock = time.monotonic()
    try:
        yield run
    except BaseException:
        run.status = "failed"
        raise
    finally:
        record_task_runs(conn, dag_run_id, [(run, started, time.monotonic() - clock)])


def record_task_runs(
    conn: psycopg.Connection, dag_run_id: str | None, runs: list[tuple[TaskRun, datetime, float]]
) -> None:
    """Each (task run, started at, seconds) as a row of `ops.task_runs`."""
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(
            """insert into ops.task_runs (dag_run_id, task_id, layer, target, status, started_at, ended_at,
                   seconds, rows_in, rows_out, detail)
               values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            [
                (
                    dag_run_id,
                    run.task_id,
                    run.layer,
                    run.target,
                    run.status,
                    started,
                    started + timedelta(seconds=seconds),
                    round(seconds, 3),
                    run.rows_in,
                    run.rows_out,
                    json.dumps(run.detail, default=str) if run.detail else None,
                )
                for run, started, seconds in runs
            ],
        )


def record_gate_results(
    conn: psycopg.Connection,
    dag_run_id: str | None,
    gate: str,
    suite: str,
    target: str,
    checks: list[dict[str, Any]],
    submission_id: int | None = None,
) -> None:
    """One row per expectation evaluated, passed or failed."""
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(
            """insert into ops.gate_results (dag_run_id, gate, suite, target, submission_id, expectation, rule,
                   dimension, columns, is_success, element_count, unexpected_count, unexpected_percent)
               values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            [
                (
                    dag_run_id,
                    gate,
                    suite,
                    target,
                    submission_id,
                    c["expectation"],
                    c["rule"],
                    c["dimension"],
                    c["columns"],
                    c["success"],
                    c["element_count"],
                    c["unexpected_count"],
                    c["unexpected_percent"],
                )
                for c in checks
            ],
        )


def record_disclosure_audits(conn: psycopg.Connection, dag_run_id: str | None, results: list[Any]) -> None:
    """Each role's audit (disclosure_audit.AuditResult): cells checked, the narrowest range, what failed."""
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(
            """insert into ops.disclosure_audits (dag_run_id, role_name, areas, cells_checked, cells_disclosed,
                   narrowest_cell, narrowest_lowest, narrowest_highest, findings)
               values (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            [
                (
                    dag_run_id,
                    r.role,
                    r.areas,
                    r.cells_checked,
                    len(r.findings),
                    r.narrowest[0] if r.narrowest else None,
                    r.narrowest[1] if r.narrowest else None,
                    None if not r.narrowest or r.narrowest[2] == float("inf") else int(r.narrowest[2]),
                    json.dumps([f.text() for f in r.findings]),
                )
                for r in results
            ],
        )


def record_layer_rows(conn: psycopg.Connection, dag_run_id: str, counts: list[tuple[str, str, int]]) -> None:
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute("delete from ops.layer_rows where dag_run_id = %s", (dag_run_id,))
        cursor.executemany(
            "insert into ops.layer_rows (dag_run_id, layer, table_name, row_count) values (%s, %s, %s, %s)",
            [(dag_run_id, layer, table, rows) for layer, table, rows in counts],
        )


def dbt_node_runs(run_results: dict[str, Any]) -> list[tuple[TaskRun, datetime, float]]:
    """Each model, seed and test of one `dbt build` as a task run: layer from the node's path."""
    runs = []
    for result in run_results.get("results", []):
        unique_id: str = result["unique_id"]
        kind, _, name = unique_id.split(".", 2)
        rows = (result.get("adapter_response") or {}).get("rows_affected")
        layer = "dbt_test" if kind == "test" else _layer(name.rsplit(".", 1)[-1])
        timing = next((t for t in result.get("timing", []) if t.get("name") == "execute"), None)
        started = _timestamp(timing.get("started_at")) if timing else None
        run = TaskRun(
            task_id=unique_id,
            layer=layer,
            target=name.rsplit(".", 1)[-1],
            rows_out=rows if isinstance(rows, int) and rows >= 0 and kind != "test" else None,
            status=str(result.get("status")),
            detail={"failures": result["failures"]} if result.get("failures") else {},
        )
        runs.append((run, started or datetime.now(UTC), float(result.get("execution_time") or 0)))
    return runs


def _layer(model: str) -> str:
    for prefix, layer in (("stg_", "staging"), ("int_", "intermediate"), ("ref_", "reference")):
        if model.startswith(prefix):
            return layer
    return "marts"


def _timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def record_dbt_run(project_dir: str, context: Any = None, **_: Any) -> None:
    """Cosmos producer callback: the build's run_results.json into `ops.task_runs`."""
    from misuse_warehouse import warehouse

    path = Path(project_dir) / "target" / "run_results.json"
    if not path.exists():
        return
    # not context["run_id"]: Cosmos overwrites it with the operator's first run when one process runs it twice
    dag_run_id = context["ti"].run_id if context else None
    with warehouse.connect() as conn:
        record_task_runs(conn, dag_run_id, dbt_node_runs(json.loads(path.read_text())))
