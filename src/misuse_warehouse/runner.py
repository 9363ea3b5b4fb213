"""Run the monthly DAG for one reporting month through Airflow's own `dag.test()`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from misuse_warehouse import runtime

DAG_ID = "monthly_pipeline"
BENCHMARKS_DAG_ID = "benchmarks"


@dataclass(frozen=True)
class RunResult:
    month: str
    run_id: str
    state: str
    task_states: dict[str, str]

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


_dag_cache: dict[str, object] = {}


def load_dag(dag_id: str = DAG_ID):  # noqa: ANN201 - airflow's DAG type is heavy to import
    if dag_id not in _dag_cache:
        from airflow.dag_processing.dagbag import DagBag

        from misuse_warehouse import settings

        bag = DagBag(str(settings.DAGS_DIR))
        if bag.import_errors:
            raise RuntimeError(f"DAG import errors: {bag.import_errors}")
        _dag_cache[dag_id] = bag.get_dag(dag_id)
    return _dag_cache[dag_id]


def run_month(
    month: str, landing: Path | None = None, catch_up_from: str | None = None, months: list[str] | None = None
) -> RunResult:
    """One reporting month, landing folder optional; returns the run's final state per task.

    With `catch_up_from` the run is a catch-up run: it lands every month from that one to `month`.
    With `months` it lands those months, as a run the landing watch starts (the last is its month).
    """
    # every param named: dag.test() keeps a cached DAG's params from the run before
    conf = {
        "landing": str(Path(landing).resolve()) if landing else None,
        "catch_up_from": catch_up_from,
        "months": months,
    }
    return _run(DAG_ID, month, conf)


def run_benchmarks(month: str) -> RunResult:
    """The benchmark DAG for the data interval of `month`: Fingertips pulled, gated and loaded."""
    return _run(BENCHMARKS_DAG_ID, month, {})


def _run(dag_id: str, month: str, conf: dict) -> RunResult:
    import pendulum

    runtime.configure()
    runtime.ensure_airflow_db()
    runtime.ensure_manifest()
    dag = load_dag(dag_id)
    due = runtime.run_after(month)
    logical = pendulum.datetime(due.year, due.month, due.day, tz="Europe/London")
    run = dag.test(logical_date=logical, run_conf=conf)
    # a mapped task by the label its template rendered (the ingest task's feed), else its index
    states = {
        (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.rendered_map_index or ti.map_index}]"): str(ti.state)
        for ti in run.get_task_instances()
    }
    return RunResult(month, run.run_id, str(run.state), states)
