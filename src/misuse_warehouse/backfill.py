"""`misuse-warehouse backfill`: a range of months through Airflow's own backfill, resumable.

Airflow 3 backfills are run by the scheduler: we create one (`airflow backfill create`, one
run per month, oldest first, one at a time, re-running failed months but not completed ones),
then run a scheduler and an api-server (the task runner's execution API) until the backfill
completes, and stop them. Interrupted, the same command resumes the backfill that is still
active rather than starting another; months that succeeded are not run again, failed months
are run again as fresh runs (see `forget_failed_runs`).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from misuse_warehouse import runtime, settings
from misuse_warehouse.months import first_day, parse_month
from misuse_warehouse.orchestration import TIMEZONE
from misuse_warehouse.ports import free_port

DAG_ID = "monthly_pipeline"
POLL_SECONDS = 2.0
LONDON = ZoneInfo(TIMEZONE)


@dataclass(frozen=True)
class MonthState:
    month: str
    state: str  # queued, running, success, failed, or skipped (with Airflow's reason)


@dataclass(frozen=True)
class BackfillResult:
    backfill_id: int
    resumed: bool
    months: list[MonthState]

    @property
    def succeeded(self) -> bool:
        # Airflow skips a month whose run already succeeded ("skipped: already exists")
        return all(m.state == "success" or m.state.startswith("skipped") for m in self.months)


def _airflow(*args: str, **kwargs) -> subprocess.CompletedProcess:  # noqa: ANN003
    binary = str(Path(sys.executable).parent / "airflow")
    return subprocess.run([binary, *args], check=True, capture_output=True, text=True, **kwargs)


def _db() -> sqlite3.Connection:
    """Airflow's SQLite metadata, read-only: the backfill's progress without importing Airflow's ORM."""
    conn_str = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if not conn_str.startswith("sqlite:///"):
        raise RuntimeError("backfill progress is read from the local SQLite metadata database")
    return sqlite3.connect(f"file:{conn_str.removeprefix('sqlite:///')}?mode=ro", uri=True, timeout=30)


def active_backfill() -> int | None:
    with _db() as db:
        row = db.execute(
            "select id from backfill where dag_id = ? and completed_at is null order by id desc limit 1", (DAG_ID,)
        ).fetchone()
    return row[0] if row else None


def month_states(backfill_id: int) -> list[MonthState]:
    with _db() as db:
        rows = db.execute(
            """select b.logical_date, coalesce(r.state, 'skipped: ' || b.exception_reason)
               from backfill_dag_run b left join dag_run r on r.id = b.dag_run_id
               where b.backfill_id = ? order by b.sort_ordinal""",
            (backfill_id,),
        ).fetchall()
    return [MonthState(_london_month(logical), state) for logical, state in rows]


def _london_month(logical_date: str) -> str:
    """Airflow stores UTC; a month's interval starts at midnight in London (23:00 UTC in summer)."""
    moment = datetime.fromisoformat(logical_date)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(LONDON).strftime("%Y-%m")


def _is_paused() -> bool:
    with _db() as db:
        row = db.execute("select is_paused from dag where dag_id = ?", (DAG_ID,)).fetchone()
    return bool(row[0]) if row else True


def _completed(backfill_id: int) -> bool:
    with _db() as db:
        return db.execute("select completed_at is not null from backfill where id = ?", (backfill_id,)).fetchone()[0]


def _london_start(month_index: int) -> datetime:
    """Midnight at the start of a month in London, in UTC (as Airflow stores logical dates)."""
    first = first_day(month_index)
    return datetime(first.year, first.month, 1, tzinfo=LONDON).astimezone(UTC)


def forget_failed_runs(first: str, last: str) -> list[str]:
    """Delete the failed runs of the range from Airflow's metadata, so the backfill runs them afresh.

    Airflow re-runs a failed run by clearing it: every task's next try. Cosmos' watcher producer
    skips a second try (it will not run `dbt build` twice) and its per-model tasks fall back to
    one dbt invocation each, a different and far slower path. A fresh run takes the normal path:
    one `dbt build`. Task logs stay on disk and the run stays in `ops.task_runs`.
    """
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        failed = session.scalars(
            select(DagRun).where(
                DagRun.dag_id == DAG_ID,
                DagRun.state == "failed",
                DagRun.logical_date >= _london_start(parse_month(first)),
                DagRun.logical_date < _london_start(parse_month(last) + 1),
            )
        ).all()
        forgotten = [run.run_id for run in failed]
        for run in failed:
            session.delete(run)
    return forgotten


def create(first: str, last: str, landing: Path | None) -> int:
    """Serialize the DAGs into the metadata database, then ask Airflow for the backfill."""
    _airflow("dags", "reserialize")
    forget_failed_runs(first, last)
    conf = json.dumps({"landing": str(Path(landing).resolve())} if landing else {})
    _airflow(
        "backfill",
        "create",
        "--dag-id",
        DAG_ID,
        "--from-date",
        f"{first}-01",
        "--to-date",
        f"{last}-01",
        "--reprocess-behavior",
        "failed",
        "--max-active-runs",
        "1",
        "--dag-run-conf",
        conf,
    )
    backfill_id = active_backfill()
    if backfill_id is None:
        raise RuntimeError("Airflow created no backfill: is the range inside the DAG's schedule?")
    return backfill_id


@contextmanager
def airflow_services(log_dir: Path, scheduled_runs: bool = False) -> Iterator[None]:
    """A scheduler and an api-server, each in its own process group, stopped whatever happens.

    Without `scheduled_runs` the scheduler runs backfill (and triggered) runs only, never creating
    the DAGs' scheduled ones while they are unpaused; with them a DAG processor runs too, as in a
    deployment (Airflow 3 runs DAG-level callbacks, the failed-run alert among them, there).
    """
    port = free_port()
    os.environ["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = str(scheduled_runs)
    os.environ["AIRFLOW__API__PORT"] = str(port)
    os.environ["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://127.0.0.1:{port}/execution/"
    binary = str(Path(sys.executable).parent / "airflow")
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = []
    try:
        services = [("api-server", ["api-server", "--port", str(port)]), ("scheduler", ["scheduler"])]
        if scheduled_runs:  # DAG-level callbacks (the failed-run alert) run in the DAG processor
            services.append(("dag-processor", ["dag-processor"]))
        for name, args in services:
            log = (log_dir / f"{name}.log").open("ab")
            processes.append(
                subprocess.Popen([binary, *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            )
        yield
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def run(
    first: str,
    last: str,
    landing: Path | None = None,
    progress: Callable[[list[MonthState]], None] | None = None,
    timeout_seconds: float = 6 * 3600,
) -> BackfillResult:
    """Create (or resume) the backfill and run Airflow until it completes."""
    runtime.configure(parallelism=2)
    runtime.ensure_airflow_db()
    runtime.ensure_manifest()
    resumed = active_backfill()
    backfill_id = resumed or create(first, last, landing)
    deadline = time.monotonic() + timeout_seconds
    was_paused = _is_paused()
    _airflow("dags", "unpause", DAG_ID)  # Airflow's scheduler skips the runs of paused DAGs, backfills too
    try:
        with airflow_services(settings.home() / "airflow" / "backfill-logs"):
            while not _completed(backfill_id):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"backfill {backfill_id} not complete after {timeout_seconds:.0f} s")
                if progress:
                    progress(month_states(backfill_id))
                time.sleep(POLL_SECONDS)
    finally:
        if was_paused:
            _airflow("dags", "pause", DAG_ID)
    states = month_states(backfill_id)
    if progress:
        progress(states)
    return BackfillResult(backfill_id, resumed is not None, states)
