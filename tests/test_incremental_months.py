"""The month-keyed incremental models (decision 11): a build recomputes the months new files restate.

Real dbt on the embedded Postgres, month by month over simulated treatment files. Each build is
checked against a full refresh of the same raw rows: the months from the earliest new file's S-11
on are exactly the full rebuild's, and the months before them are exactly what the previous build
left (they are final).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

from misuse_warehouse import orchestration, settings
from misuse_warehouse import pipeline as monthly_pipeline
from misuse_warehouse.simulate import write_feeds

AREAS = ["E06000035", "E06000019"]  # Medway, Herefordshire
MONTHS = ["2024-01", "2024-02"]
MODELS = ("int_treatment__person_months", "int_kpi__treatment_person_counts", "int_kpi__treatment")
STATE = ("built_through_submission_id", "build_fingerprint")


def dbt_build(url: str, target: Path, select: str = "+int_kpi__treatment") -> None:
    """The models up to the KPI rows (seeds and models, no tests), as the transformer."""
    command = ["build", "--select", select, "--resource-type", "seed", "--resource-type", "model"]
    done = orchestration.run_dbt(command, target, url=url)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def load_treatment(landing: Path, month: str) -> None:
    for paths in monthly_pipeline.discover_feeds(str(landing), month):
        if monthly_pipeline.feed_of(paths) == "treatment":
            for outcome in monthly_pipeline.ingest_files(paths, f"test_incremental__{month}"):
                assert outcome["status"] == "loaded", outcome


def columns(conn: psycopg.Connection, model: str) -> str:
    names = conn.execute(
        """select column_name from information_schema.columns
           where table_schema = 'intermediate' and table_name = %s order by ordinal_position""",
        (model,),
    ).fetchall()
    return ", ".join(name for (name,) in names if name not in STATE)


def snapshot(conn: psycopg.Connection) -> dict[str, set[tuple]]:
    """Every row of the month-keyed models, without the build state columns."""
    return {
        model: {
            tuple(tuple(v) if isinstance(v, list) else v for v in row)
            for row in conn.execute(f"select month, {columns(conn, model)} from intermediate.{model}")
        }
        for model in MODELS
    }


def rebuild_from(conn: psycopg.Connection) -> Any:
    """The first month the last build wrote (all its rows carry the newest submission id)."""
    return conn.execute(
        """select min(month) from intermediate.int_treatment__person_months
           where built_through_submission_id = (select max(submission_id) from raw.submissions)"""
    ).fetchone()[0]


def summarised_submissions(conn: psycopg.Connection) -> tuple[list[tuple], list[tuple]]:
    """int_treatment__submission_areas beside the same summary computed from every current row."""
    built = conn.execute(
        """select submission_id, area_code, submission_month, first_date, last_date, episode_row_count
           from intermediate.int_treatment__submission_areas order by 1, 2, 3"""
    ).fetchall()
    direct = conn.execute(
        """select submission_id, area_code, submission_month,
                  min(least(referral_date, triage_date, first_intervention_date, discharge_date)),
                  max(greatest(submission_month, referral_date, triage_date, first_intervention_date, discharge_date)),
                  count(*)
           from staging.stg_treatment__episode_versions group by 1, 2, 3 order by 1, 2, 3"""
    ).fetchall()
    return built, direct


LATEST_COLUMNS = (
    "treatment_episode_id, provider_code, episode_id, person_key, area_code, age_at_referral, sex, ethnicity, "
    "service_type, substance_group, primary_substance, injecting_status, referral_source, referral_date, "
    "triage_date, first_intervention_date, modality, discharge_date, discharge_reason, top_start_days_used, "
    "top_review_days_used, housing_problem"
)


def latest_versions(conn: psycopg.Connection) -> tuple[list[tuple], list[tuple]]:
    """int_treatment__latest_episode_versions beside each episode's latest version found by sorting every one."""
    built = conn.execute(
        f"""select {LATEST_COLUMNS}, latest_submission_id, latest_submission_month, first_submission_month,
                   version_count
            from intermediate.int_treatment__latest_episode_versions order by 1"""
    ).fetchall()
    direct = conn.execute(
        f"""select distinct on (treatment_episode_id) {LATEST_COLUMNS}, submission_id, submission_month,
                   min(submission_month) over episode, count(*) over episode
            from staging.stg_treatment__episode_versions
            window episode as (partition by treatment_episode_id)
            order by treatment_episode_id, submission_month desc"""
    ).fetchall()
    return built, direct


def split(rows: set[tuple], first_month: Any) -> tuple[set[tuple], set[tuple]]:
    return {r for r in rows if r[0] < first_month}, {r for r in rows if r[0] >= first_month}


@pytest.fixture(scope="module")
def landing(pipeline: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("incremental") / "landing"
    write_feeds(folder, AREAS, MONTHS, seed=7)
    pipeline.reset()
    return folder


def full_refresh_rows(url: str, target: Path) -> dict[str, set[tuple]]:
    """The rows a full refresh gives, computed in a copy so the incremental tables stay as they are."""
    with psycopg.connect(url, autocommit=True) as conn:
        for model in MODELS:
            conn.execute(f"drop table if exists intermediate.saved__{model}")
            conn.execute(f"alter table intermediate.{model} rename to saved__{model}")
    dbt_build(url, target, " ".join(MODELS))  # no table: a first build, every month
    with psycopg.connect(url, autocommit=True) as conn:
        rows = snapshot(conn)
        for model in MODELS:
            conn.execute(f"drop table intermediate.{model}")
            conn.execute(f"alter table intermediate.saved__{model} rename to {model}")
    return rows


@pytest.fixture(scope="module")
def monthly_builds(pipeline: Any, landing: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Each month's files loaded and built incrementally; what each build wrote beside a full refresh."""
    target = tmp_path_factory.mktemp("dbt")
    monthly_pipeline.prepare()
    builds = []
    for month in MONTHS:
        load_treatment(landing, month)
        dbt_build(pipeline.url, target)
        with psycopg.connect(pipeline.url, autocommit=True) as conn:
            built, first, summaries = snapshot(conn), rebuild_from(conn), summarised_submissions(conn)
            latest = latest_versions(conn)
        builds.append(
            {
                "month": month,
                "first": first,
                "built": built,
                "summaries": summaries,
                "latest": latest,
                "full": full_refresh_rows(pipeline.url, target),
            }
        )
    return builds


def test_each_build_recomputes_only_the_months_new_files_restate(monthly_builds: list[dict[str, Any]]) -> None:
    assert [b["first"].isoformat() for b in monthly_builds] == ["2023-02-01", "2023-03-01"]
    for previous, build in zip([None, *monthly_builds], monthly_builds, strict=False):
        for model in MODELS:
            kept, rebuilt = split(build["built"][model], build["first"])
            assert rebuilt == split(build["full"][model], build["first"])[1], f"{model} {build['month']}"
            assert kept == (split(previous["built"][model], build["first"])[0] if previous else set()), (
                f"{model} {build['month']}: a final month changed"
            )
    last = monthly_builds[-1]
    assert split(last["built"]["int_treatment__person_months"], last["first"])[0], "no month was kept final"


def test_each_build_summarises_the_new_submissions_and_keeps_the_others(monthly_builds: list[dict[str, Any]]) -> None:
    for build in monthly_builds:
        built, direct = build["summaries"]
        assert built == direct, build["month"]
    first, second = (build["summaries"][0] for build in monthly_builds)
    assert set(first) < set(second), "the first month's summaries were not kept"


def test_each_build_merges_the_new_files_into_the_latest_versions(monthly_builds: list[dict[str, Any]]) -> None:
    for build in monthly_builds:
        built, direct = build["latest"]
        assert built == direct, build["month"]
    first, second = (build["latest"][0] for build in monthly_builds)
    assert [row for row in second if row[-1] == 2], "no episode's second month was merged"
    assert {row[0] for row in first} < {row[0] for row in second}


def staging_test_reads(url: str, target: Path) -> dict[str, int]:
    """For each dbt test on stg_treatment__episode_versions, compiled now: how many rows it reads."""
    done = orchestration.run_dbt(
        ["compile", "--select", "stg_treatment__episode_versions,resource_type:test"], target, url=url
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    reads = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for path in (target / "compiled").rglob("stg_treatment__episode_versions.yml/*.sql"):
            subquery = re.search(r"from (\(select \* from .*?\) dbt_subquery)", path.read_text(), re.S)
            assert subquery, f"{path.name} reads the whole view"
            reads[path.name] = conn.execute(f"select count(*) from {subquery.group(1)}").fetchone()[0]
    return reads


def test_staging_tests_read_only_what_the_last_build_has_not(
    pipeline: Any, monthly_builds: list[dict[str, Any]], tmp_path: Path
) -> None:
    url = pipeline.url
    reads = staging_test_reads(url, tmp_path / "built")
    assert len(reads) == 9 and set(reads.values()) == {0}, reads
    # as if the last build had read only the first month's files
    with psycopg.connect(url, autocommit=True) as conn:
        first_through, last_through = conn.execute(
            """select max(submission_id) filter (where period_start = %s), max(submission_id)
               from raw.submissions where feed = 'treatment'""",
            (f"{MONTHS[0]}-01",),
        ).fetchone()
        second_rows, second_month_rows = conn.execute(
            """select count(*) filter (where submission_id > %s), count(*) filter (where submission_month = %s)
               from staging.stg_treatment__episode_versions""",
            (first_through, f"{MONTHS[1]}-01"),
        ).fetchone()
        conn.execute(
            """update intermediate.int_treatment__latest_episode_versions set built_through_submission_id = %s
               where built_through_submission_id = %s""",
            (first_through, last_through),
        )
    try:
        reads = staging_test_reads(url, tmp_path / "first")
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                """update intermediate.int_treatment__latest_episode_versions set built_through_submission_id = %s
                   where built_through_submission_id = %s""",
                (last_through, first_through),
            )
    combination = [name for name in reads if name.startswith("unique_combination")]
    assert len(combination) == 1 and reads.pop(combination[0]) == second_month_rows > 0
    assert set(reads.values()) == {second_rows} and second_rows > 0, reads


def test_a_key_rotation_or_an_old_resubmission_rebuilds_every_month(
    pipeline: Any, landing: Path, monthly_builds: list[dict[str, Any]], tmp_path: Path
) -> None:
    url = pipeline.url
    with psycopg.connect(url, autocommit=True) as conn:
        counts = conn.execute("select count(*) from intermediate.int_treatment__person_months").fetchone()
        state = conn.execute("select distinct built_through_submission_id from intermediate.int_kpi__treatment")
        through = state.fetchall()
    # nothing new: nothing rewritten
    dbt_build(url, tmp_path)
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("select count(*) from intermediate.int_treatment__person_months").fetchone() == counts
        again = conn.execute("select distinct built_through_submission_id from intermediate.int_kpi__treatment")
        assert again.fetchall() == through
        # a rotation of the pseudonymisation secret changes every person_id: every month is rebuilt
        conn.execute(
            """insert into ops.key_rotations (raw_table, rows_rekeyed, rows_mapped_from_purged,
               rows_unmatched_purged) values ('raw.treatment_episodes', 0, 0, 0)"""
        )
        fingerprints = conn.execute("select distinct build_fingerprint from intermediate.int_kpi__treatment")
        old_fingerprint = fingerprints.fetchall()
    dbt_build(url, tmp_path)
    with psycopg.connect(url, autocommit=True) as conn:
        for model in MODELS:
            new = conn.execute(f"select distinct build_fingerprint from intermediate.{model}").fetchall()
            assert len(new) == 1 and new != old_fingerprint, model
        built = snapshot(conn)
        latest, direct = latest_versions(conn)
        assert latest == direct
        assert conn.execute(
            "select count(distinct build_fingerprint) from intermediate.int_treatment__latest_episode_versions"
        ).fetchone() == (1,), "an episode was not read again"
    assert built == full_refresh_rows(url, tmp_path)

    # a corrected file for the latest month: the months from its S-11 are recomputed
    # the month's first file as sent, from the archive (a loaded file leaves landing): <sha16>_<name>
    archived = (settings.archive_dir() / "treatment" / MONTHS[-1]).glob("*.csv")
    latest_file = sorted(archived, key=lambda p: p.name.split("_", 1)[1])[0]
    corrected = tmp_path / "landing" / "treatment" / MONTHS[-1] / latest_file.name.split("_", 1)[1]
    corrected.parent.mkdir(parents=True)
    header, first_row, *rest = latest_file.read_text().splitlines(keepends=True)
    fields = first_row.split(",")
    fields[-2] = "0"  # the provider corrects the first episode's TOP review (days used)
    corrected.write_text("".join([header, ",".join(fields), *rest]))
    load_treatment(tmp_path / "landing", MONTHS[-1])
    with psycopg.connect(url, autocommit=True) as conn:
        # summaries written by other SQL are made again
        conn.execute(
            """update intermediate.int_treatment__submission_areas
               set build_fingerprint = 'older SQL', episode_row_count = 0"""
        )
    dbt_build(url, tmp_path)
    with psycopg.connect(url, autocommit=True) as conn:
        first_month, now = rebuild_from(conn), snapshot(conn)
    assert first_month.isoformat() == "2023-03-01"
    with psycopg.connect(url, autocommit=True) as conn:
        summarised, direct = summarised_submissions(conn)
    assert summarised == direct, "the corrected file's summary, without the submission it replaced"
    with psycopg.connect(url, autocommit=True) as conn:
        latest, direct = latest_versions(conn)
    assert latest == direct, "the restated file's episodes read again"
    corrected_episode = next(row for row in latest if row[0] == f"{fields[1]}:{fields[2]}")
    assert corrected_episode[20] == 0, "the corrected TOP review is the episode's latest version"
    full = full_refresh_rows(url, tmp_path)
    for model in MODELS:
        kept, rebuilt = split(now[model], first_month)
        assert kept == split(built[model], first_month)[0], f"{model}: a final month changed"
        assert rebuilt == split(full[model], first_month)[1], model


def test_intermediate_tables_emptied_by_a_crash_are_rebuilt_whole(
    pipeline: Any, monthly_builds: list[dict[str, Any]], tmp_path: Path
) -> None:
    url = pipeline.url
    with psycopg.connect(url, autocommit=True) as conn:
        persistence = conn.execute(
            """select distinct relpersistence from pg_class
               where relnamespace = 'intermediate'::regnamespace and relkind = 'r'"""
        ).fetchall()
        assert persistence == [("u",)], "intermediate tables are unlogged"
    full = full_refresh_rows(url, tmp_path)
    with psycopg.connect(url, autocommit=True) as conn:
        # what crash recovery does to an unlogged table
        incremental = conn.execute(
            """select string_agg(format('intermediate.%I', relname), ', ') from pg_class
               where relnamespace = 'intermediate'::regnamespace and relkind = 'r'"""
        ).fetchone()[0]
        conn.execute(f"truncate {incremental}")
    dbt_build(url, tmp_path)
    with psycopg.connect(url, autocommit=True) as conn:
        assert snapshot(conn) == full, "every month rebuilt, as a full refresh"
        latest, direct = latest_versions(conn)
        summarised, direct_summaries = summarised_submissions(conn)
    assert latest == direct and latest
    assert summarised == direct_summaries and summarised


def test_migration_drops_the_tables_of_models_dbt_no_longer_builds(db: psycopg.Connection) -> None:
    """int_treatment__person_ranges became a macro: an existing warehouse must not keep its old rows."""
    from misuse_warehouse import migrations

    db.execute("create schema if not exists intermediate")
    db.execute("create table intermediate.int_treatment__person_ranges (person_id text)")
    db.commit()
    migrations.migrate(db)
    assert db.execute("select to_regclass('intermediate.int_treatment__person_ranges')").fetchone() == (None,)
