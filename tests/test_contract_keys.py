"""macros/keys_after_load.sql: what an enforced contract puts on a table, by materialization.

Real dbt on the embedded Postgres, on a copy of the project with two scratch models of the same
contract. A table model is created without keys and keyed after it is filled (the post-hook); an
incremental model keeps dbt-postgres' own creation, constraints included (the override once
created it with none), and gets its not-null constraints again after each build, so a table
built before them gains them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import psycopg

from misuse_warehouse import orchestration, settings

CONTRACT = """version: 2
models:
  - name: {name}
    config: {{contract: {{enforced: true}}}}
    columns:
      - name: scratch_id
        data_type: bigint
        constraints: [{{type: primary_key}}]
      - name: label
        data_type: text
        constraints: [{{type: not_null}}]
"""
SELECT = "select 1::bigint as scratch_id, 'a'::text as label\n"
MODELS = {
    "scratch_table": SELECT,
    "scratch_incremental": (
        "{{ config(materialized='incremental', unique_key='scratch_id', on_schema_change='append_new_columns') }}\n"
    )
    + SELECT,
}


def constraints(conn: psycopg.Connection, table: str) -> set[str]:
    rows = conn.execute(
        "select pg_get_constraintdef(oid) from pg_constraint where conrelid = %s::regclass", (f"intermediate.{table}",)
    ).fetchall()
    return {definition for (definition,) in rows}


def _dbt_run(project: Path, tmp_path: Path, warehouse_url: str) -> subprocess.CompletedProcess:
    return orchestration.run_dbt(["run", "--select", *MODELS], tmp_path / "target", project, warehouse_url)


def test_enforced_contract_constraints_by_materialization(
    db: psycopg.Connection, warehouse_url: str, tmp_path: Path
) -> None:
    """Both scratch models carry the contract's primary key and not-null constraints."""
    project = tmp_path / "dbt_project"
    shutil.copytree(settings.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    for name, sql in MODELS.items():
        (project / "models" / "intermediate" / f"{name}.sql").write_text(sql)
        (project / "models" / "intermediate" / f"{name}.yml").write_text(CONTRACT.format(name=name))
    done = _dbt_run(project, tmp_path, warehouse_url)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]

    expected = {"PRIMARY KEY (scratch_id)", "NOT NULL scratch_id", "NOT NULL label"}
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        assert constraints(conn, "scratch_table") == expected
        assert constraints(conn, "scratch_incremental") == expected

        # an incremental table from before its contract said `not_null` gains the constraint
        conn.execute("alter table intermediate.scratch_incremental alter column label drop not null")
        done = _dbt_run(project, tmp_path, warehouse_url)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        assert constraints(conn, "scratch_incremental") == expected

        # and a null from a later build fails it, naming the column
        incremental = project / "models" / "intermediate" / "scratch_incremental.sql"
        incremental.write_text(incremental.read_text().replace("'a'::text", "null::text"))
        done = _dbt_run(project, tmp_path, warehouse_url)
        assert done.returncode != 0
        assert 'null value in column "label"' in done.stdout
        conn.execute(f"drop table {', '.join(f'intermediate.{name}' for name in MODELS)}")


CHILD_CONTRACT = """version: 2
models:
  - name: scratch_child
    config: {contract: {enforced: true}}
    columns:
      - name: scratch_child_id
        data_type: bigint
        constraints: [{type: primary_key}]
      - name: scratch_id
        data_type: bigint
        constraints: [{type: foreign_key, to: ref('scratch_table'), to_columns: [scratch_id]}]
"""


def test_a_tables_foreign_key_is_validated_and_an_orphan_fails_it(
    db: psycopg.Connection, warehouse_url: str, tmp_path: Path
) -> None:
    """The post-hooks leave the table analysed with its foreign key validated; an orphan key fails the model."""
    project = tmp_path / "dbt_project"
    shutil.copytree(settings.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    intermediate = project / "models" / "intermediate"
    (intermediate / "scratch_table.sql").write_text(SELECT)
    (intermediate / "scratch_table.yml").write_text(CONTRACT.format(name="scratch_table"))
    child = intermediate / "scratch_child.sql"
    child.write_text("select 10::bigint as scratch_child_id, 1::bigint as scratch_id from {{ ref('scratch_table') }}\n")
    (intermediate / "scratch_child.yml").write_text(CHILD_CONTRACT)

    def run() -> subprocess.CompletedProcess:
        return orchestration.run_dbt(
            ["run", "--select", "scratch_table", "scratch_child"], tmp_path / "target", project, warehouse_url
        )

    done = run()
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        assert conn.execute(
            "select convalidated, pg_get_constraintdef(oid) from pg_constraint "
            "where conrelid = 'intermediate.scratch_child'::regclass and contype = 'f'"
        ).fetchall() == [(True, "FOREIGN KEY (scratch_id) REFERENCES intermediate.scratch_table(scratch_id)")]
        assert conn.execute(
            "select count(*) from pg_stats where schemaname = 'intermediate' and tablename = 'scratch_child'"
        ).fetchone() == (2,)

        child.write_text(child.read_text().replace("1::bigint as scratch_id", "2::bigint as scratch_id"))
        done = run()
        assert done.returncode != 0
        assert "scratch_child_scratch_id_fkey" in done.stdout
        conn.execute("drop table intermediate.scratch_child, intermediate.scratch_table")
