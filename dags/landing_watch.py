"""Landing watch: every few minutes, start a monthly_pipeline run for the months that have new files.

Feeds arrive on different days after month end (due the 10th-20th), some late, some restating an
earlier month. This DAG looks at the landing area and, when it finds settled files whose bytes the
warehouse has not taken yet, starts one run of `monthly_pipeline` for every month they belong to
(run id `landed__<months>__<time>`, the months in its conf, the files in its note). A look that finds
nothing new ends skipped. Logic lives in `misuse_warehouse.landing_watch`.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from misuse_warehouse import alerts, orchestration

orchestration.prepare_environment()


class StartMonthlyRun(TriggerDagRunOperator):
    """Airflow's trigger, with the run's note (which files started it) taken from the look's result too."""

    template_fields = (*TriggerDagRunOperator.template_fields, "note")


@dag(
    dag_id="landing_watch",
    schedule=CronTriggerTimetable(orchestration.LANDING_WATCH_CRON, timezone=orchestration.TIMEZONE),
    start_date=pendulum.datetime(2023, 4, 1, tz=orchestration.TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=orchestration.DEFAULT_ARGS,
    on_failure_callback=alerts.RunFailureAlert(),  # a look that fails (warehouse down, landing unreadable)
    tags=["misuse-warehouse", "landing"],
    doc_md=__doc__,
)
def landing_watch() -> None:
    @task(multiple_outputs=True, retries=0)
    def find_new_files() -> dict:
        from misuse_warehouse import landing_watch as watch

        context = get_current_context()
        found = watch.look(lambda run_id: orchestration.dag_run_state(context, watch.PIPELINE_DAG_ID, run_id))
        if found is None:
            raise AirflowSkipException("no new files in the landing area")
        return found

    found = find_new_files()
    StartMonthlyRun(
        task_id="start_monthly_pipeline",
        trigger_dag_id="monthly_pipeline",
        trigger_run_id=found["run_id"],
        conf=found["conf"],
        note=found["note"],
        retries=0,
    )


landing_watch()
