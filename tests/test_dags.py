"""DAG integrity: every DAG imports, has no cycles, an owner and retries; tasks are per model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def dagbag(pipeline):  # noqa: ANN001, ANN201 - pipeline ensures the manifest and Airflow db
    from airflow.dag_processing.dagbag import DagBag

    from misuse_warehouse import settings

    return DagBag(str(settings.DAGS_DIR))


def test_every_dag_imports(dagbag) -> None:  # noqa: ANN001
    assert dagbag.import_errors == {}
    assert {"monthly_pipeline", "benchmarks", "retention", "feed_deadlines"} <= set(dagbag.dag_ids)


def test_every_dag_alerts_a_failed_run(dagbag) -> None:  # noqa: ANN001
    """Each DAG's own on_failure_callback (not a task's, which would alert once per failed task)."""
    from misuse_warehouse.alerts import RunFailureAlert

    for dag in dagbag.dags.values():
        assert isinstance(dag.on_failure_callback, RunFailureAlert), dag.dag_id
        for task in dag.tasks:  # (Cosmos' producer has a callback of its own)
            assert not any(isinstance(c, RunFailureAlert) for c in task.on_failure_callback or []), task.task_id


def test_late_feeds_are_checked_daily_and_after_a_failed_month(dagbag) -> None:  # noqa: ANN001
    from misuse_warehouse.alerts import LateFeedAlert

    check = dagbag.get_dag("monthly_pipeline").get_task("check_deadlines")
    assert check.trigger_rule == "all_done"
    assert [type(c) for c in check.on_success_callback] == [LateFeedAlert]
    daily = dagbag.get_dag("feed_deadlines")
    assert type(daily.timetable).__name__ == "CronTriggerTimetable"
    assert daily.timetable.expression == "0 7 * * *" and str(daily.timetable.timezone) == "Europe/London"
    assert daily.catchup is False and daily.max_active_runs == 1
    assert [type(c) for c in daily.get_task("check_open_months").on_success_callback] == [LateFeedAlert]


def test_parsing_the_dags_leaves_the_pipeline_unimported(pipeline) -> None:  # noqa: ANN001
    """The scheduler parses DAG files again and again: the pipeline, pandas, Arrow and GX load in tasks only."""
    from misuse_warehouse import settings

    probe = (
        "import pathlib, runpy, sys\n"
        f"for path in sorted(pathlib.Path({str(settings.DAGS_DIR)!r}).glob('*.py')): runpy.run_path(str(path))\n"
        "heavy = ['misuse_warehouse.pipeline', 'misuse_warehouse.file_checks', 'pandas', 'pyarrow',"
        " 'great_expectations']\n"
        "print([name for name in heavy if name in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout[-2000:]


def test_dags_have_owner_retries_and_no_cycles(dagbag) -> None:  # noqa: ANN001
    for dag in dagbag.dags.values():
        _assert_acyclic(dag)
        for task in dag.tasks:
            assert task.owner == "data-engineering", task.task_id
            assert task.retries is not None, task.task_id


def test_monthly_pipeline_shape(dagbag) -> None:  # noqa: ANN001
    dag = dagbag.get_dag("monthly_pipeline")
    ids = set(dag.task_ids)
    assert {"prepare", "discover", "ingest", "mart_gate", "publish", "report"} <= ids
    assert "transform.dbt_producer_watcher" in ids
    # dbt's debug file log would land in Cosmos' temporary project copy: never written
    assert dag.get_task("transform.dbt_producer_watcher").env["DBT_LOG_LEVEL_FILE"] == "none"
    # one task per dbt model, named after it: its build and its tests (misuse_warehouse.dbt_tasks)
    nodes = _manifest_nodes("model")
    assert "kpi_monthly" in nodes
    watchers = {i for i in ids if i.startswith("transform.") and not i.startswith("transform.dbt_producer_watcher")}
    assert watchers == {f"transform.{name}" for name in nodes}
    assert dag.get_task("transform.kpi_monthly").has_tests
    # seeds are no tasks of the build: loaded (and tested) before it when they changed
    producer = dag.get_task("transform.dbt_producer_watcher")
    assert producer.select == "resource_type:model"
    assert "load_reference_data" in producer.upstream_task_ids
    # model tasks report after a failed build too; the gate waits on the build itself
    assert "transform.dbt_producer_watcher_done" in dag.get_task("mart_gate").upstream_task_ids
    publish = dag.get_task("publish")
    assert "mart_gate" in publish.upstream_task_ids
    assert [a.name for a in publish.outlets] == ["misuse_warehouse_marts"]
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"


def test_benchmarks_shape(dagbag) -> None:  # noqa: ANN001
    dag = dagbag.get_dag("benchmarks")
    assert {"prepare", "benchmark_month", "pull_fingertips", "ingest", "announce", "report"} == set(dag.task_ids)
    assert dag.get_task("ingest").upstream_task_ids == {"pull_fingertips"}
    announce = dag.get_task("announce")
    assert [a.name for a in announce.outlets] == ["misuse_warehouse_benchmarks"]
    assert "ingest" in announce.upstream_task_ids
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.timetable.expression == "0 0 1 * *"
    # the exposures (scorecard, pack) are lineage in dbt docs, not tasks
    assert not [t for t in dagbag.get_dag("monthly_pipeline").task_ids if "exposure" in t or "performance_pack" in t]


def _manifest_nodes(*resource_types: str) -> set[str]:
    from misuse_warehouse import orchestration

    manifest = json.loads(orchestration.dbt_manifest().read_text())
    return {node["name"] for node in manifest["nodes"].values() if node["resource_type"] in resource_types}


def _assert_acyclic(dag) -> None:  # noqa: ANN001
    visiting, done = set(), set()

    def visit(task_id: str) -> None:
        assert task_id not in visiting, f"cycle through {task_id}"
        if task_id in done:
            return
        visiting.add(task_id)
        for child in dag.get_task(task_id).downstream_task_ids:
            visit(child)
        visiting.discard(task_id)
        done.add(task_id)

    for task_id in dag.task_ids:
        visit(task_id)
