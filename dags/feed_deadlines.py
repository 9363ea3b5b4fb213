"""Feed deadlines: every morning, the open reporting months checked for files past due; newly overdue ones alerted.

A due date is checked on the day after it whether or not a monthly run happened: the monthly
pipeline checks its own months when it runs, this DAG checks the three reporting months before
today's month at 07:00 Europe/London (after files landed overnight, before the working day).
"Today" is the run's logical date in London, so a run for a past morning checks as of that morning.
An overdue file is alerted once, then every 7 days while it is missing (misuse_warehouse.deadlines).
Logic lives in `misuse_warehouse.deadlines` and `misuse_warehouse.alerts`; this file only wires tasks.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from misuse_warehouse import alerts, orchestration


@dag(
    dag_id="feed_deadlines",
    schedule=CronTriggerTimetable("0 7 * * *", timezone=orchestration.TIMEZONE),
    start_date=pendulum.datetime(2023, 4, 1, tz=orchestration.TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=orchestration.DEFAULT_ARGS,
    on_failure_callback=alerts.RunFailureAlert(),
    tags=["misuse-warehouse", "deadlines"],
    doc_md=__doc__,
)
def feed_deadlines() -> None:
    @task(on_success_callback=alerts.LateFeedAlert())
    def check_open_months() -> dict:
        from misuse_warehouse import deadlines, migrations, observe, roles, warehouse

        context = get_current_context()
        moment = context.get("logical_date") or context["dag_run"].run_after
        today = pendulum.instance(moment).in_timezone(orchestration.TIMEZONE).date()
        months = deadlines.open_months(today)
        migrations.ensure_current()
        with (
            warehouse.connect(role=roles.TRANSFORMER) as conn,
            observe.task_run(conn, context["run_id"], "check_open_months", "ops", today.isoformat()) as run,
        ):
            result = deadlines.check_and_claim(conn, months, today, context["run_id"])
            run.rows_out, run.detail = result["rows"], result["counts"]
        return result

    check_open_months()


feed_deadlines()
