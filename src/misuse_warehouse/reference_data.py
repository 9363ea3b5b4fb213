"""Reference data (the dbt seeds: area codes, successions, population, KPI lists) loaded when it changed.

The seeds change with a release, not with a month, yet the monthly `dbt build` reloaded all seven and
ran their 12 tests every month, each seed an Airflow task of its own. The monthly DAG now loads them
before its build only when the seed files (or dbt_project.yml, where their column types are) differ
from the last load recorded in `ops.reference_data_loads`, or a seed table is missing: `dbt build` of
the seeds and the tests that read only seeds, so a broken seed stops the run before any model reads
it. Tests relating a model to a seed stay in the monthly build (orchestration.BUILD_SELECT).
"""

from __future__ import annotations

import csv
import hashlib
import tempfile
from pathlib import Path
from typing import Any

import psycopg

from misuse_warehouse import orchestration, roles, settings, warehouse, writer_lease

SCHEMA = "reference"

DDL = """
create table if not exists ops.reference_data_loads (
    reference_data_load_id bigint generated always as identity primary key,
    fingerprint text not null,
    seed_names text[] not null,
    loaded_at timestamptz not null default now(),
    dag_run_id text
);
"""


class ReferenceDataError(RuntimeError):
    """The seeds did not load, or a test on them failed: nothing recorded, the run stops."""


def seed_names(project: Path = settings.DBT_PROJECT_DIR) -> list[str]:
    return sorted(path.stem for path in (project / "seeds").glob("*.csv"))


def fingerprint(project: Path = settings.DBT_PROJECT_DIR) -> str:
    """SHA-256 over every seed file (data and properties) and dbt_project.yml (the seeds' column types)."""
    digest = hashlib.sha256()
    for path in sorted((project / "seeds").iterdir()) + [project / "dbt_project.yml"]:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def is_current(conn: psycopg.Connection, current: str, project: Path = settings.DBT_PROJECT_DIR) -> bool:
    """The last recorded load is of the files with fingerprint `current`, and every seed table is still there."""
    last = conn.execute(
        "select fingerprint from ops.reference_data_loads order by reference_data_load_id desc limit 1"
    ).fetchone()
    if last is None or last[0] != current:
        return False
    names = [f"{SCHEMA}.{name}" for name in seed_names(project)]
    query = "select count(*) from unnest(%s::text[]) as n where to_regclass(n) is null"
    return conn.execute(query, (names,)).fetchone() == (0,)


def reshaped_seeds(conn: psycopg.Connection, project: Path = settings.DBT_PROJECT_DIR) -> list[str]:
    """Seeds whose table has other columns than the file: an upgrade added or dropped one.

    dbt reloads a seed into its existing table, so a new column fails the insert; these are
    recreated instead (`--full-refresh`). Only staging views could depend on a seed table, and the
    build that follows recreates them.
    """
    reshaped = []
    for name in seed_names(project):
        with (project / "seeds" / f"{name}.csv").open(newline="") as file:
            header = next(csv.reader(file), [])
        columns = [
            c
            for (c,) in conn.execute(
                "select column_name from information_schema.columns where table_schema = %s and table_name = %s",
                (SCHEMA, name),
            ).fetchall()
        ]
        if columns and sorted(columns) != sorted(h.strip() for h in header):
            reshaped.append(name)
    return reshaped


def load(run_id: str | None = None, project: Path = settings.DBT_PROJECT_DIR) -> dict[str, Any]:
    """Seeds loaded and tested unless already current; what was done, for the task's log and XCom."""
    current = fingerprint(project)
    with writer_lease.lease(f"reference data ({run_id})"):
        with warehouse.connect(role=roles.TRANSFORMER) as conn:
            if is_current(conn, current, project):
                return {"loaded": False, "fingerprint": current}
            reshaped = reshaped_seeds(conn, project)
        with tempfile.TemporaryDirectory(prefix="misuse-warehouse-seeds-") as target:
            # tests whose every parent is a seed; those that also read a model run in the monthly build
            command = ["build", "--select", "resource_type:seed", "--indirect-selection", "cautious"]
            done = orchestration.run_dbt(command + (["--full-refresh"] if reshaped else []), Path(target), project)
        if done.returncode != 0:
            raise ReferenceDataError(
                f"loading the reference seeds failed (dbt exit {done.returncode}); nothing was recorded:\n"
                + (done.stdout + done.stderr)[-4000:]
            )
        names = seed_names(project)
        with warehouse.connect(role=roles.TRANSFORMER) as conn:
            conn.execute(
                "insert into ops.reference_data_loads (fingerprint, seed_names, dag_run_id) values (%s, %s, %s)",
                (current, names, run_id),
            )
    return {"loaded": True, "fingerprint": current, "seeds": names, "recreated": reshaped}
