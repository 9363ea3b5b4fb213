"""Real components, really started: an embedded Postgres and Airflow home per test session.

Airflow reads its configuration at import, so the environment is set here, at collection,
before any test module imports airflow. Under pytest-xdist (`make test`) every worker is its own
session: its own home, Postgres and stand-in APIs.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SESSION_HOME = Path(tempfile.mkdtemp(prefix="misuse-warehouse-test-"))
atexit.register(shutil.rmtree, SESSION_HOME, ignore_errors=True)
os.environ["MISUSE_WAREHOUSE_HOME"] = str(SESSION_HOME)
os.environ["MISUSE_WAREHOUSE_PSEUDONYM_KEY"] = "test-only-pseudonymisation-key-of-32-bytes-or-more"
os.environ.pop("WAREHOUSE_URL", None)
os.environ.pop("AIRFLOW_CONN_WAREHOUSE", None)
for name in list(os.environ):
    if name.startswith("AIRFLOW__") or name == "AIRFLOW_HOME":
        os.environ.pop(name)
sys.path.insert(0, str(Path(__file__).parent))

from misuse_warehouse import runtime  # noqa: E402
from misuse_warehouse.simulate import fingertips_api, police_api  # noqa: E402

runtime.configure()

# A local stand-in for data.police.uk that has published nothing yet: every run's police pull
# skips as "not available" (no internet in CI). Tests of C2 point the variable at their own server.
POLICE_API_URL, _stop_police_api = police_api.start(latest="2010-01")
os.environ["MISUSE_WAREHOUSE_POLICE_API"] = POLICE_API_URL
# Fingertips likewise never leaves the machine: the demo's stand-in, unless a test serves its own answers.
FINGERTIPS_API_URL, _stop_fingertips_api = fingertips_api.start()
os.environ["MISUSE_WAREHOUSE_FINGERTIPS_API"] = FINGERTIPS_API_URL

import psycopg  # noqa: E402

from misuse_warehouse import publish, settings, warehouse  # noqa: E402

SCHEMAS = (
    "raw",
    "staging",
    "intermediate",
    "reference",
    *(s for p in publish.PUBLICATIONS for s in (p.published, p.next)),
    "analysts",
    "ops",
)


class Pipeline:
    """The warehouse as the tests drive it: through the real DAG, then plain SQL."""

    def __init__(self, url: str) -> None:
        self.url = url

    def reset(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            retired = conn.execute(
                "select nspname from pg_namespace where nspname like any(%s)",
                ([f"{p.retired}%" for p in publish.PUBLICATIONS],),
            ).fetchall()
            for schema in [*SCHEMAS, *(r[0] for r in retired)]:
                conn.execute(f"drop schema if exists {schema} cascade")
        for folder in (settings.quarantine_dir(), settings.archive_dir()):
            shutil.rmtree(folder, ignore_errors=True)

    def run_month(
        self, landing: Path, month: str, expect_success: bool = True, catch_up_from: str | None = None
    ) -> Any:
        from misuse_warehouse import runner

        result = runner.run_month(month, landing, catch_up_from)
        if expect_success and not result.succeeded:
            raise AssertionError(f"run for {month} ended {result.state}: {result.task_states}")
        return result

    def load_month(self, landing: Path, month: str) -> None:
        """Land a month's files without building: the ingest the DAG's `ingest` task runs, feed by feed.

        For fixtures that need many months loaded but read figures at a few: each month through
        the DAG costs about 40 s, and the marts are rebuilt whole from raw at the next DAG run.
        """
        from misuse_warehouse import pipeline

        pipeline.prepare()
        for paths in pipeline.discover_feeds(str(landing), month):
            for outcome in pipeline.ingest_files(paths, f"load_month__{month}"):
                if outcome["status"] == "refused":
                    raise AssertionError(f"{outcome['file']} refused: {outcome['message']}")

    def query(self, sql: str, params: tuple | dict = ()) -> list[tuple]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(sql, params).fetchall()

    def checksums(self) -> dict[str, str]:
        with psycopg.connect(self.url) as conn:
            return publish.table_checksums(conn, publish.PUBLISHED)


@pytest.fixture(scope="session")
def warehouse_url() -> Iterator[str]:
    pg = warehouse.embedded()
    url = pg.start()
    yield url
    pg.stop()
    shutil.rmtree(SESSION_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def pipeline(warehouse_url: str) -> Pipeline:
    runtime.ensure_airflow_db()
    runtime.ensure_manifest()
    return Pipeline(warehouse_url)


@pytest.fixture
def db(warehouse_url: str) -> Iterator[psycopg.Connection]:
    """A connection to a freshly migrated, empty warehouse."""
    from misuse_warehouse import migrations

    Pipeline(warehouse_url).reset()
    with psycopg.connect(warehouse_url) as conn:
        migrations.migrate(conn)
        yield conn


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


# Modules that run months through the DAG, longest first (`pytest --durations`, 2026-12-02): under
# pytest-xdist's --dist loadfile the two workers take whole modules in collection order, so the long
# ones start first and the short ones fill in at the end instead of one worker finishing minutes alone.
LONGEST_FIRST = (
    "test_kpi_funding.py",
    "test_pipeline.py",
    "test_alerts.py",
    "test_police_outage_dag.py",
    "test_crash_safety.py",
    "test_kpi_treatment.py",
    "test_kpi_criminal_justice.py",
    "test_incremental_months.py",
    "test_catch_up.py",
    "test_bad_files_dag.py",
    "test_benchmarks.py",
    "test_governance.py",
    "test_landing_watch.py",
    "test_connection_strings.py",
    "test_schema_migrations.py",
    "test_writer_lease.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)
