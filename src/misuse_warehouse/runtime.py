"""Process environment for running the DAGs locally: Airflow home, DAG folder, telemetry off.

Airflow reads its configuration when first imported, so callers run `configure()` before
importing anything from airflow.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from misuse_warehouse import settings


def configure(parallelism: int = 4) -> Path:
    settings.telemetry_off()
    airflow_home = settings.home() / "airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)
    defaults = {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.DAGS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        # The producer has no retries; Cosmos' retry backup rewrites every XCom into a Variable per push.
        "AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(settings.cosmos_cache_dir()),
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    return airflow_home


def ensure_airflow_db() -> None:
    """Airflow's metadata database migrated, and the writer pool in it (a task of a missing pool never runs)."""
    from misuse_warehouse.writer_lease import WRITER_POOL, WRITER_POOL_DESCRIPTION

    home = Path(os.environ["AIRFLOW_HOME"])
    marker = home / ".migrated"
    if not marker.exists():
        subprocess.run([_bin("airflow"), "db", "migrate"], check=True, stdout=subprocess.DEVNULL)
        marker.touch()
    pool_marker = home / ".writer_pool"
    if not pool_marker.exists():
        pool = [_bin("airflow"), "pools", "set", WRITER_POOL, "1", WRITER_POOL_DESCRIPTION]
        subprocess.run(pool, check=True, stdout=subprocess.DEVNULL)
        pool_marker.touch()


def ensure_manifest() -> None:
    """Cosmos reads dbt's manifest instead of running `dbt ls` at every DAG parse."""
    from misuse_warehouse.orchestration import MANIFEST

    sources = [
        *settings.DBT_PROJECT_DIR.rglob("*.sql"),
        *settings.DBT_PROJECT_DIR.rglob("*.yml"),
        *settings.DBT_PROJECT_DIR.rglob("*.csv"),
    ]
    newest = max((p.stat().st_mtime for p in sources if "target" not in p.parts), default=0)
    if MANIFEST.exists() and MANIFEST.stat().st_mtime >= newest:
        return
    project = str(settings.DBT_PROJECT_DIR)
    subprocess.run(
        [_bin("dbt"), "parse", "--project-dir", project, "--profiles-dir", project, "--quiet"],
        check=True,
    )


def run_after(month: str) -> date:
    """The moment a month's run is due: the first day of the next month."""
    year, number = int(month[:4]), int(month[5:7])
    return date(year + number // 12, number % 12 + 1, 1)


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)
