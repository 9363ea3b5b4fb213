"""Airflow and Cosmos settings shared by the DAG files, kept cheap to import (DAG parse time)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from misuse_warehouse import settings, warehouse
from misuse_warehouse.writer_lease import WRITER_POOL

OWNER = "data-engineering"
TIMEZONE = "Europe/London"
MARTS_ASSET_NAME = "misuse_warehouse_marts"
# How often the landing watch looks for new files (misuse_warehouse.landing_watch); a cron expression.
LANDING_WATCH_CRON = os.environ.get("MISUSE_WAREHOUSE_LANDING_WATCH_CRON", "*/10 * * * *")
BENCHMARKS_ASSET_NAME = "misuse_warehouse_benchmarks"
MANIFEST = settings.DBT_PROJECT_DIR / "target" / "manifest.json"
# dbt in its own process: on 2 cores in-process dbtRunner shares the GIL with the task and its
# per-event callbacks (one month's build: 17.5 s in-process, 12.5 s as a subprocess). dbt's command
# line that keeps each thread's connection open between nodes (misuse_warehouse.dbt_cli).
DBT_EXECUTABLE = str(Path(sys.executable).parent / "misuse-warehouse-dbt")

# The monthly build: every model and each test that reads one (a test of seeds alone runs when they are
# loaded, misuse_warehouse.reference_data). Exposures (scorecard, performance pack) are lineage for dbt
# docs, not tasks; dbt runs the on-run-start hook whatever the selection.
BUILD_SELECT = ["resource_type:model"]

# dbt's debug file log goes to Cosmos' temporary copy of the project, deleted after the task: never read,
# and writing it cost 0.57 s a build (five alternating builds each way: 9.43 s -> 8.86 s)
DBT_ENV = {"DBT_LOG_LEVEL_FILE": "none"}


def run_dbt(
    command: list[str], target: Path, project: Path = settings.DBT_PROJECT_DIR, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """dbt as the DAG runs it (its command line, the warehouse's connection variables, no debug file log), quiet.

    Artifacts and logs go under `target`; the output is captured for the caller's error message.
    """
    target.mkdir(parents=True, exist_ok=True)
    args = [DBT_EXECUTABLE, *command, "--quiet", "--project-dir", str(project), "--profiles-dir", str(project)]
    args += ["--target-path", str(target), "--log-path", str(target)]
    env = os.environ | warehouse.dbt_env(url) | DBT_ENV
    if url:  # the writer lease dbt takes (misuse_warehouse.dbt_cli) is on the same warehouse
        env[settings.WAREHOUSE_URL_ENV] = url
    return subprocess.run(args, env=env, capture_output=True, text=True, cwd=target, check=False)


DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 1,
    "retry_delay": timedelta(seconds=20),
}


def prepare_environment() -> None:
    """Telemetry off and dbt's connection variables derived from the one warehouse setting."""
    settings.telemetry_off()
    for name, value in warehouse.dbt_env().items():
        os.environ.setdefault(name, value)


def dag_run_state(context: Any, dag_id: str, run_id: str) -> str | None:
    """The state of another DAG's run, from inside a task (Airflow's execution API); None when unknown."""
    try:
        return str(context["ti"].get_dagrun_state(dag_id, run_id))
    except Exception:  # noqa: BLE001 - a run Airflow no longer knows (deleted, or another metadata database)
        return None


def mapped_results(results: Any) -> list[Any]:
    """A mapped task's results, read by index up to their length.

    Iterating Airflow's lazy sequence asks for one past the end, which logs an `XCom not found` error.
    """
    return [results[i] for i in range(len(results))] if results else []


def dbt_manifest() -> Path:
    if not MANIFEST.exists():
        raise FileNotFoundError(f"{MANIFEST} is missing: run `make manifest` (dbt parse) before loading the DAGs")
    return MANIFEST


def watch_after_build(group: Any) -> None:
    """Let Cosmos' per-model watcher tasks start only once the single `dbt build` has finished.

    Watcher mode assumes producer and sensors run at the same time; `dag.test()` (our CLI and
    tests) runs one task at a time and would wait forever on a sensor scheduled first. After
    the build every sensor finds its model's status at once, so each model still gets its task.
    """
    producer_id = f"{group.group_id}.dbt_producer_watcher"
    members = {task.task_id: task for task in group.iter_tasks()}
    producer = members[producer_id]
    for task_id, task in members.items():
        inside = task.upstream_task_ids & members.keys()
        if task_id != producer_id and not inside:
            producer >> task


def build_in_writer_pool(group: Any) -> None:
    """The producer (the one `dbt build`) queues in the writer pool; its watchers read only and stay out of it.

    A watcher in a one-slot pool would hold the slot the producer it waits for needs.
    """
    producer = next(task for task in group.iter_tasks() if task.task_id.endswith(".dbt_producer_watcher"))
    producer.pool = WRITER_POOL


def record_dbt_runs(group: Any) -> None:
    """After a successful build, the producer files dbt's run_results (per model: rows, seconds) in ops.task_runs."""
    producer = next(task for task in group.iter_tasks() if task.task_id.endswith(".dbt_producer_watcher"))
    producer.callback = "misuse_warehouse.observe.record_dbt_run"


def alert_late_feeds(context: Any) -> None:
    """on_success_callback of check_deadlines: the overdue files it found, logged and posted."""
    from misuse_warehouse import deadlines

    ti = context["ti"]
    result = ti.xcom_pull(task_ids=ti.task_id) or {}
    deadlines.alert(result.get("overdue", []), result.get("month", "?"))
