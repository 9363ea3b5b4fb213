"""Monthly pipeline: land → file checks → raw gate (per feed) → load → reference data (when changed) → dbt (one
task per model) → mart gate → publish → deadline check (late-feed alerts) and run report.

The reporting month is the run's data interval (a calendar month, Europe/London), never the
wall clock. The `landing` param points the run at any folder in the landing layout; `catch_up_from`
makes it a catch-up run, landing every month from that one to the run's own before one build.
Logic lives in `misuse_warehouse.pipeline`; this file only wires tasks.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode

from misuse_warehouse import dbt_tasks, orchestration, settings

orchestration.prepare_environment()

MARTS = Asset(orchestration.MARTS_ASSET_NAME)


@dag(
    dag_id="monthly_pipeline",
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone=orchestration.TIMEZONE),
    start_date=pendulum.datetime(2023, 4, 1, tz=orchestration.TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args=orchestration.DEFAULT_ARGS,
    params={
        "landing": Param(None, type=["null", "string"], description="landing folder"),
        "months": Param(
            None,
            type=["null", "array"],
            items={"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$"},
            description="months YYYY-MM whose files this run lands (set by landing_watch); the last is its month",
        ),
        "catch_up_from": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
            description="first month YYYY-MM of a catch-up run: every month from it to the run's month, one build",
        ),
    },
    tags=["misuse-warehouse", "monthly"],
    doc_md=__doc__,
)
def monthly_pipeline() -> None:
    # the pipeline (pandas, Arrow, the loader) is imported by each task when it runs, never at parse
    @task
    def prepare() -> dict:
        from misuse_warehouse import pipeline

        return pipeline.prepare()

    @task
    def reporting_month() -> str:
        context = get_current_context()
        if context["params"].get("months"):  # started by landing_watch for the months with new files
            return max(context["params"]["months"])
        start = context["data_interval_start"]
        return pendulum.instance(start).in_timezone(orchestration.TIMEZONE).strftime("%Y-%m")

    @task
    def discover(month: str) -> list[list[str]]:
        from misuse_warehouse import pipeline

        params = get_current_context()["params"]
        return pipeline.discover_feeds(params.get("landing"), month, params.get("catch_up_from"), params.get("months"))

    # one task per feed: its files are gated together (GX costs per run) and each loaded or refused alone
    @task(max_active_tis_per_dagrun=2, map_index_template="{{ feed }}", pool=orchestration.WRITER_POOL)
    def ingest(paths: list[str]) -> list[dict]:
        from misuse_warehouse import pipeline

        context = get_current_context()
        context["feed"] = pipeline.feed_of(paths)
        return pipeline.ingest_files(paths, context["run_id"])

    @task(pool=orchestration.WRITER_POOL)
    def pull_police(month: str) -> dict:
        from misuse_warehouse import pipeline

        context = get_current_context()
        params = context["params"]
        first = params.get("catch_up_from") or min(params.get("months") or [month])
        summary = pipeline.pull_police_recent(month, context["run_id"], first if first != month else None)
        if summary["turned_off"]:
            raise AirflowSkipException("the police pull is turned off (MISUSE_WAREHOUSE_POLICE_API=off)")
        if not summary["pulled"]:
            raise AirflowSkipException(f"data.police.uk has not published {', '.join(summary['not_available'])} yet")
        return summary

    @task(pool=orchestration.WRITER_POOL)
    def load_reference_data() -> dict:
        from misuse_warehouse import reference_data

        loaded = reference_data.load(get_current_context()["run_id"])
        if not loaded["loaded"]:  # skipped, not failed: the build after it still runs
            raise AirflowSkipException(f"reference seeds unchanged since their last load ({loaded['fingerprint'][:8]})")
        return loaded

    transform = DbtTaskGroup(
        group_id="transform",
        project_config=ProjectConfig(
            dbt_project_path=settings.DBT_PROJECT_DIR,
            manifest_path=orchestration.dbt_manifest(),
            install_dbt_deps=False,
            env_vars=orchestration.DBT_ENV,
        ),
        profile_config=ProfileConfig(
            profile_name="misuse_warehouse",
            target_name="warehouse",
            profiles_yml_filepath=settings.DBT_PROJECT_DIR / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=orchestration.DBT_EXECUTABLE,
        ),
        # one task per model, failed when it or any of its tests failed
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            emit_datasets=False,
            select=orchestration.BUILD_SELECT,
            node_converters=dbt_tasks.NODE_CONVERTERS,
        ),
        # a police month not published yet skips its task, unchanged seeds theirs; the build still runs
        default_args={"retries": 0, "trigger_rule": "none_failed"},
    )

    @task(retries=0, pool=orchestration.WRITER_POOL)
    def mart_gate() -> list[dict]:
        from misuse_warehouse import pipeline

        return pipeline.mart_gate(get_current_context()["run_id"])

    @task(outlets=[MARTS], retries=0, pool=orchestration.WRITER_POOL)
    def publish(month: str) -> dict:
        from misuse_warehouse import pipeline

        context = get_current_context()
        result = pipeline.publish_marts(context["run_id"], month)
        context["outlet_events"][MARTS].extra = {"month": month, **result}
        return result

    @task(on_success_callback=orchestration.alert_late_feeds)
    def check_deadlines(month: str) -> dict:
        from misuse_warehouse import pipeline

        return pipeline.check_deadlines(month, get_current_context()["run_id"])

    @task(retries=0)
    def report(outcomes: list[list[dict]]) -> dict:
        from misuse_warehouse import pipeline

        feeds = orchestration.mapped_results(outcomes)
        return pipeline.report([o for feed in feeds for o in feed], get_current_context()["run_id"])

    orchestration.watch_after_build(transform)
    orchestration.record_dbt_runs(transform)
    orchestration.build_in_writer_pool(transform)

    month = reporting_month()
    files = discover(month)
    prepared = prepare()
    prepared >> files
    outcomes = ingest.expand(paths=files)
    police = pull_police(month)
    prepared >> police
    seeds = load_reference_data()
    prepared >> seeds
    published = publish(month)
    [outcomes, police, seeds] >> transform >> mart_gate() >> published >> [report(outcomes), check_deadlines(month)]


monthly_pipeline()
