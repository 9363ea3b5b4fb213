"""One Airflow task per dbt model: the model built and every test on it passed.

Cosmos' AFTER_EACH rendering gives each node two tasks (`<node>.run` and `<node>.test`). In
watcher mode both only read what the one `dbt build` reported, and each Airflow task costs
about 0.2 s of the run's own bookkeeping whatever it does (dag.test, 100 no-op tasks: 19 s),
so the pair is folded into one task named after the node: it fails when the node failed or
any of its tests did, and its log says which of the two. Registered as Cosmos node converters, so the
rest of the group (dependencies, the producer) is Cosmos' own.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowSkipException
from cosmos.airflow.graph import _get_dbt_dag_task_group_identifier, create_task_metadata
from cosmos.config import RenderConfig
from cosmos.constants import DbtResourceType, TestBehavior
from cosmos.core.airflow import get_airflow_task
from cosmos.operators._watcher.aggregation import get_tests_status_xcom_key
from cosmos.operators._watcher.state import ProducerTaskState, get_xcom_val, is_producer_task_terminated
from cosmos.operators.watcher import DbtRunWatcherOperator

_AFTER_EACH = RenderConfig(test_behavior=TestBehavior.AFTER_EACH)


class _NodeAndTests:
    """Done when the node succeeded and, if it has tests, when they all passed.

    Polls without deferring: the DAG starts these tasks only once the build has finished
    (`orchestration.watch_after_build`), so every status is already there. They run whatever
    the build's outcome (trigger rule all_done), so after a failed build each node says its
    own: green where dbt built and tested it, red where it or a test failed or dbt skipped
    it for an upstream failure. Publication still waits on the build itself.
    """

    # a cleared task re-runs its node with its tests, as the build did
    base_cmd = ["build"]
    _rebuilt = False

    @property
    def has_tests(self) -> bool:
        return bool(self.extra_context.get("dbt_node_config", {}).get("has_test"))

    def _handle_no_dbt_node_status(self, producer_task_state: str | None, try_number: int, context: Any) -> bool:
        # Cosmos would run dbt for this one node here; after a failed build that hides the failure
        if producer_task_state == ProducerTaskState.UPSTREAM_FAILED:
            raise AirflowSkipException("no dbt build ran in this run: the tasks before it failed")
        if producer_task_state in (ProducerTaskState.FAILED, ProducerTaskState.SUCCESS):
            raise AirflowException(
                f"the dbt build ({producer_task_state}) never reported '{self.model_unique_id}': "
                f"it stopped before it, see the log of '{self.producer_task_id}'"
            )
        return super()._handle_no_dbt_node_status(producer_task_state, try_number, context)

    def _log_startup_events(self, ti: Any) -> None:
        # Cosmos pulls dbt's startup lines in every node's task to log them at debug level: one
        # execution-API call a task for nothing (they are in the producer's log)
        return None

    def _fallback_to_non_watcher_run(self, try_number: int, context: Any) -> bool:
        self._rebuilt = super()._fallback_to_non_watcher_run(try_number, context)
        return self._rebuilt

    def poke(self, context: Any) -> bool:
        if not super().poke(context):
            return False
        if self._rebuilt or not self.has_tests:
            return True
        verdict = get_xcom_val(context["ti"], self.producer_task_id, get_tests_status_xcom_key(self.model_unique_id))
        if verdict == "pass":
            return True
        if verdict is None and not is_producer_task_terminated(self._get_producer_task_status(context)):
            return False
        outcome = "did not all report" if verdict is None else "failed"
        raise AirflowException(
            f"tests on '{self.model_unique_id}' {outcome}: the log of '{self.producer_task_id}' names each "
            "failing test and its failing rows' count"
        )


class DbtModelWatcherOperator(_NodeAndTests, DbtRunWatcherOperator):
    """A dbt model's task in the watcher group: built and tested."""


_OPERATORS = {
    DbtResourceType.MODEL: DbtModelWatcherOperator,
}


def node_with_tests(*, dag: Any, task_group: Any, node: Any, task_args: dict, execution_mode: Any, **_: Any) -> Any:
    """Cosmos node converter: the node's one task, `<group>.<node name>`."""
    meta = create_task_metadata(
        node=node,
        execution_mode=execution_mode,
        args={**task_args, "deferrable": False, "trigger_rule": "all_done"},
        dbt_dag_task_group_identifier=_get_dbt_dag_task_group_identifier(dag, task_group),
        render_config=_AFTER_EACH,
    )
    operator = _OPERATORS[node.resource_type]
    meta.id = node.name
    meta.operator_class = f"{operator.__module__}.{operator.__qualname__}"
    return get_airflow_task(meta, dag, task_group)


NODE_CONVERTERS = dict.fromkeys(_OPERATORS, node_with_tests)
