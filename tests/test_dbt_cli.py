"""misuse_warehouse.dbt_cli: one session per dbt thread, as the profile's role, whatever ran before.

Real dbt on the embedded Postgres, a scratch project of three chained table models with a test
between them, on one thread: every model records the server process and role that built it, and
whether a temporary table of an earlier node is still there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg

from misuse_warehouse import orchestration, settings, warehouse

PROJECT = """name: scratch_sessions
version: "1.0"
profile: misuse_warehouse
models:
  scratch_sessions:
    +materialized: table
"""
MODEL = (
    "select pg_backend_pid() as backend_pid, current_user::text as built_as,"
    " to_regclass('pg_temp.scratch_session_temp') is not null as sees_temp_table{source}\n"
)
MODELS = {
    # a temporary table, as an incremental model's staging table, gone before the next node
    "scratch_session_a": "{{ config(pre_hook='create temporary table scratch_session_temp (x int)') }}\n"
    + MODEL.format(source=""),
    "scratch_session_b": MODEL.format(source=" from {{ ref('scratch_session_a') }} limit 1"),
    "scratch_session_c": MODEL.format(source=" from {{ ref('scratch_session_b') }} limit 1"),
}
# select-only nodes end in a rollback, which would also undo the `set role` of the session's start
TESTS = """version: 2
models:
  - name: scratch_session_a
    columns:
      - name: backend_pid
        data_tests: [not_null]
  - name: scratch_session_b
    columns:
      - name: built_as
        data_tests: [not_null]
"""


def test_build_keeps_one_session_per_thread_as_the_role(
    db: psycopg.Connection, warehouse_url: str, tmp_path: Path
) -> None:
    project = tmp_path / "scratch_sessions"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(PROJECT)
    shutil.copy(settings.DBT_PROJECT_DIR / "profiles.yml", project / "profiles.yml")
    for name, sql in MODELS.items():
        (project / "models" / f"{name}.sql").write_text(sql)
    (project / "models" / "scratch_sessions.yml").write_text(TESTS)
    done = orchestration.run_dbt(["build", "--threads", "1"], tmp_path / "target", project, warehouse_url)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]

    role = warehouse.dbt_env(warehouse_url)["WAREHOUSE_ROLE"]
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        built = {
            name: conn.execute(f"select backend_pid, built_as, sees_temp_table from staging.{name}").fetchone()
            for name in MODELS
        }
        owners = dict(
            conn.execute(
                "select tablename, tableowner from pg_tables where schemaname = 'staging' and tablename = any(%s)",
                (list(MODELS),),
            ).fetchall()
        )
        for name in MODELS:
            conn.execute(f"drop table staging.{name}")
    assert len({pid for pid, _, _ in built.values()}) == 1, built
    assert {user for _, user, _ in built.values()} == {role}
    assert {name: temp for name, (_, _, temp) in built.items()} == {
        "scratch_session_a": True,
        "scratch_session_b": False,
        "scratch_session_c": False,
    }
    assert owners == dict.fromkeys(MODELS, role)
