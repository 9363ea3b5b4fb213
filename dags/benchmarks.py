"""Benchmarks: Fingertips metadata check → CSV pulls → raw gate (GX) → load → Asset event.

Fingertips updates irregularly, so this runs on its own monthly schedule (data interval, Europe/
London, like the monthly pipeline); the monthly pipeline's dbt build reads the latest benchmarks
loaded. Logic lives in `misuse_warehouse.benchmarks`; this file only wires tasks.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, dag, get_current_context, task

from misuse_warehouse import orchestration

BENCHMARKS = Asset(orchestration.BENCHMARKS_ASSET_NAME)


@dag(
    dag_id="benchmarks",
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone=orchestration.TIMEZONE),
    start_date=pendulum.datetime(2023, 4, 1, tz=orchestration.TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=orchestration.DEFAULT_ARGS,
    tags=["misuse-warehouse", "benchmarks"],
    doc_md=__doc__,
)
def benchmarks() -> None:
    # the steps (pandas, Arrow, the loader) are imported by each task when it runs, never at parse
    @task
    def prepare() -> dict:
        from misuse_warehouse import benchmarks as steps

        return steps.prepare()

    @task
    def benchmark_month() -> str:
        start = get_current_context()["data_interval_start"]
        return pendulum.instance(start).in_timezone(orchestration.TIMEZONE).strftime("%Y-%m")

    @task(pool=orchestration.WRITER_POOL)
    def pull_fingertips(month: str) -> list[str]:
        from misuse_warehouse import benchmarks as steps

        return steps.pull(month, get_current_context()["run_id"])

    @task(max_active_tis_per_dagrun=2, pool=orchestration.WRITER_POOL)
    def ingest(path: str) -> dict:
        from misuse_warehouse import pipeline

        return pipeline.ingest(path, get_current_context()["run_id"])

    @task(outlets=[BENCHMARKS], retries=0, trigger_rule="none_failed")
    def announce(outcomes: list[dict], month: str) -> dict:
        from misuse_warehouse import benchmarks as steps

        context = get_current_context()
        summary = steps.announce(orchestration.mapped_results(outcomes), month)
        context["outlet_events"][BENCHMARKS].extra = summary
        return summary

    @task(retries=0, trigger_rule="none_failed")
    def report() -> dict:
        from misuse_warehouse import benchmarks as steps

        return steps.report(get_current_context()["run_id"])

    month = benchmark_month()
    files = pull_fingertips(month)
    prepare() >> files
    outcomes = ingest.expand(path=files)
    announce(outcomes, month) >> report()


benchmarks()
