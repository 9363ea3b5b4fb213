"""Retention: monthly, blank the plain attributor in raw rows and delete kept files past the retention.

Kept files: archived and quarantined landing files, validation reports, GX's stored validation
results and Data Docs pages, and files left in landing (misuse_warehouse.retention.purge_targets).

The retention (MISUSE_WAREHOUSE_RETENTION_MONTHS, default 24, or the `retention_months` param) counts
from when a file was received; the reference date is the run's logical date. Rows keep `person_key`.
Logic lives in `misuse_warehouse.retention`; this file only wires tasks.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, task

from misuse_warehouse import alerts, orchestration


@dag(
    dag_id="retention",
    schedule=CronTriggerTimetable("0 4 2 * *", timezone=orchestration.TIMEZONE),
    start_date=pendulum.datetime(2023, 4, 1, tz=orchestration.TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=orchestration.DEFAULT_ARGS,
    on_failure_callback=alerts.RunFailureAlert(),
    params={"retention_months": Param(None, type=["null", "integer"], minimum=1, description="override")},
    tags=["misuse-warehouse", "retention"],
    doc_md=__doc__,
)
def retention() -> None:
    @task
    def cutoff() -> str:
        """Warehouse migrated (roles, ops tables); the moment before which files are past retention."""
        from misuse_warehouse import migrations, settings
        from misuse_warehouse import retention as purge

        context = get_current_context()
        migrations.ensure_current()
        reference = context.get("logical_date") or context["dag_run"].run_after
        months = context["params"].get("retention_months") or settings.retention_months()
        return purge.cutoff(pendulum.instance(reference), months).isoformat()

    @task(pool=orchestration.WRITER_POOL)
    def purge_raw_attributors(cut: str) -> list[dict]:
        from misuse_warehouse import retention as purge
        from misuse_warehouse import roles, warehouse

        with warehouse.connect(role=roles.LOADER) as conn:
            return purge.purge_attributors(conn, pendulum.parse(cut), get_current_context()["run_id"])

    @task
    def purge_landing_files(cut: str) -> list[dict]:
        from misuse_warehouse import retention as purge
        from misuse_warehouse import roles, warehouse

        with warehouse.connect(role=roles.LOADER) as conn:
            return purge.purge_files(conn, pendulum.parse(cut), get_current_context()["run_id"])

    cut = cutoff()
    purge_raw_attributors(cut) >> purge_landing_files(cut)


retention()
