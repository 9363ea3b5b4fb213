"""A quarter run by Airflow alone (`make test-unattended`, on demand: a real scheduler for about 20 minutes).

A real scheduler and api-server (LocalExecutor) with every DAG unpaused, and nobody starting a run.
Medway's files for January to March 2025 land as senders send them, on different days:

- January: treatment, funding and the grants first, the other feeds a "week" later;
- February: a treatment file that is refused (a column missing), every other feed but prison
  releases; the provider then sends the corrected file, and prison releases come after their due day,
  once the overdue alert has gone out;
- March: everything, while data.police.uk is down.

The landing watch starts every run. Each month publishes with no manual action. The refused file (a
failed run) and the overdue feed reach a local SMTP server and a local webhook receiver. March
publishes with Medway's street crime (C2) marked as missing its source, everything else as usual.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from misuse_warehouse import backfill, migrations, runtime, settings, warehouse
from misuse_warehouse.ports import free_port
from misuse_warehouse.simulate import police_api

pytestmark = pytest.mark.scheduler

AREA = "E06000035"
MONTHS = ("2025-01", "2025-02", "2025-03")
WAIT_SECONDS = 15 * 60
WEBHOOK_PATH = "/hooks/warehouse"
DAGS = ("landing_watch", "monthly_pipeline", "feed_deadlines", "retention", "benchmarks")


class Inbox:
    """aiosmtpd handler: every message the warehouse sent."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        from email import message_from_bytes, policy

        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def texts(self) -> list[str]:
        return [f"{m['subject']}\n{m.get_body(('plain', 'html')).get_content()}" for m in self.messages]


def _airflow(*args: str) -> None:
    subprocess.run([str(Path(sys.executable).parent / "airflow"), *args], check=True, capture_output=True, text=True)


def _airflow_runs(dag_id: str) -> list[tuple[str, str]]:
    db = sqlite3.connect(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///"), timeout=30)
    with db:
        return db.execute("select run_id, state from dag_run where dag_id = ? order by id", (dag_id,)).fetchall()


def _wait(what: str, done: Callable[[], bool], seconds: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(5)
    runs = _airflow_runs("monthly_pipeline")
    raise AssertionError(f"not within {seconds:.0f} s: {what}; monthly_pipeline runs: {runs}")


def _land(
    source: Path, landing: Path, relative: str, received: datetime | None = None, text: str | None = None
) -> Path:
    """A file arrives at the time it was received: the landing watch, looking all along, first saw it then.

    received_at is the watch's first sight (ops.landing_files), never the file's time, so the sighting
    is recorded before the file appears under its name (the watch skips hidden files).
    """
    target = landing / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    arriving = target.with_name(f".{target.name}.arriving")
    content = (source / relative).read_bytes() if text is None else text.encode()
    arriving.write_bytes(content)
    at = received.timestamp() if received else time.time() - 120  # settled: older than the watch's minute
    os.utime(arriving, (at, at))
    with warehouse.connect(autocommit=True) as conn:
        conn.execute(
            """insert into ops.landing_files
                   (landing_path, feed, reporting_month, file_bytes, modified_ns, file_sha256, first_seen_at)
               values (%s, %s, %s, %s, %s, %s, to_timestamp(%s))
               on conflict (landing_path) do update set
                   file_bytes = excluded.file_bytes, modified_ns = excluded.modified_ns,
                   file_sha256 = excluded.file_sha256, first_seen_at = excluded.first_seen_at,
                   triggered_dag_run_id = null, triggered_at = null, trigger_count = 0""",
            (
                relative,
                target.parent.parent.name,
                f"{target.parent.name}-01",
                len(content),
                arriving.stat().st_mtime_ns,
                hashlib.sha256(content).hexdigest(),
                at,
            ),
        )
    arriving.replace(target)
    return target


def _finished_runs() -> dict[str, str]:
    return {run_id: state for run_id, state in _airflow_runs("monthly_pipeline") if state in ("success", "failed")}


def test_a_quarter_runs_itself(pipeline, tmp_path: Path, make_httpserver) -> None:  # noqa: ANN001, PLR0915
    pipeline.reset()
    with warehouse.connect() as conn:
        migrations.migrate(conn)  # the warehouse a deployment's init leaves (the DAGs' runs migrate too)
    source, landing = tmp_path / "simulated", tmp_path / "landing"
    simulate = [sys.executable, "-m", "misuse_warehouse.cli", "simulate", "--months", f"{MONTHS[0]}:{MONTHS[-1]}"]
    subprocess.run([*simulate, "--out", str(source), "--areas", AREA], check=True, capture_output=True)

    inbox = Inbox()
    smtp_port = free_port(2525)
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    make_httpserver.clear()
    make_httpserver.expect_request(WEBHOOK_PATH, method="POST").respond_with_data("ok")
    outage = threading.Event()
    police_url, stop_police = police_api.start(latest=MONTHS[-1], outage=outage)
    environment = {
        "MISUSE_WAREHOUSE_LANDING": str(landing),
        "MISUSE_WAREHOUSE_LANDING_WATCH_CRON": "* * * * *",
        "MISUSE_WAREHOUSE_POLICE_API": police_url,
        "AIRFLOW_CONN_MISUSE_WAREHOUSE_SMTP": json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": smtp_port,
                "extra": {"from_email": "warehouse@partnership.example", "disable_ssl": True, "disable_tls": True},
            }
        ),
        "AIRFLOW_CONN_MISUSE_WAREHOUSE_WEBHOOK": json.dumps(
            {"conn_type": "http", "host": make_httpserver.url_for(WEBHOOK_PATH)}
        ),
        "MISUSE_WAREHOUSE_ALERT_TO": "data-team@partnership.example",
        "AIRFLOW__CORE__PARALLELISM": "2",
    }

    def webhook_texts() -> list[str]:
        return [json.loads(request.get_data())["text"] for request, _ in make_httpserver.log]

    def alerted(*needles: str) -> bool:
        mails = [t for t in inbox.texts() if all(n in t for n in needles)]
        posts = [t for t in webhook_texts() if all(n in t for n in needles)]
        return bool(mails) and bool(posts)

    with pytest.MonkeyPatch.context() as env:
        for name, value in environment.items():
            env.setenv(name, value)
        runtime.ensure_airflow_db()
        runtime.ensure_manifest()
        _airflow("dags", "reserialize")
        for dag_id in DAGS:
            _airflow("dags", "unpause", dag_id)
        try:
            with backfill.airflow_services(settings.home() / "airflow" / "unattended-logs", scheduled_runs=True):
                # January: the first senders, then the rest a few days later
                for relative in (
                    "treatment/2025-01/treatment_P4211_2025-01.csv",
                    "treatment/2025-01/treatment_P4212_2025-01.csv",
                    f"funding/2025-01/funding_{AREA}_2025-01.csv",
                    f"contracts/2025-01/contracts_{AREA}_2025-01.csv",
                    f"grants/2024-04/grants_{AREA}_2024-25.csv",
                ):
                    _land(source, landing, relative, datetime(2025, 2, 6, 9))
                _wait("January's first files published", lambda: _published_months(pipeline) >= {"2025-01"})
                first_runs = set(_finished_runs())
                for relative in (
                    f"cj-return/2025-01/cj-return_{AREA}_2025-01.csv",
                    f"prison-releases/2025-01/prison-releases_{AREA}_2025-01.csv",
                ):
                    _land(source, landing, relative, datetime(2025, 2, 13, 9))
                _wait("January's later files published", lambda: _landed_publications(pipeline, "2025-01") >= 2)
                assert set(_finished_runs()) > first_runs

                # February: one treatment file refused, prison releases not sent
                good = (source / "treatment/2025-02/treatment_P4212_2025-02.csv").read_text()
                broken = good.replace("episode_id", "episode_ref", 1)  # a required column missing
                refused = _land(
                    source, landing, "treatment/2025-02/treatment_P4212_2025-02.csv", datetime(2025, 3, 7), broken
                )
                for relative in (
                    "treatment/2025-02/treatment_P4211_2025-02.csv",
                    f"funding/2025-02/funding_{AREA}_2025-02.csv",
                    f"contracts/2025-02/contracts_{AREA}_2025-02.csv",
                    f"cj-return/2025-02/cj-return_{AREA}_2025-02.csv",
                ):
                    _land(source, landing, relative, datetime(2025, 3, 7))
                _wait("February published", lambda: _published_months(pipeline) >= {"2025-01", "2025-02"})
                _wait("the refused file alerted", lambda: alerted(refused.name))
                assert not refused.exists() and any(settings.quarantine_dir().rglob(refused.name))
                _wait("prison releases overdue alerted", lambda: alerted("prison-releases", "2025-02"))
                # the corrected file, then the late feed
                _land(source, landing, "treatment/2025-02/treatment_P4212_2025-02.csv", datetime(2025, 3, 10))
                _land(source, landing, f"prison-releases/2025-02/prison-releases_{AREA}_2025-02.csv")
                _wait(
                    "February restated with the corrected and the late file",
                    lambda: _loaded(pipeline, "2025-02") >= 6,
                )
                _wait("February's restatement published", lambda: _landed_publications(pipeline, "2025-02") >= 2)

                # March: every feed, while data.police.uk is down
                outage.set()
                for path in sorted(source.glob("*/2025-03/*")):
                    _land(source, landing, path.relative_to(source).as_posix(), datetime(2025, 4, 8))
                _wait("March published", lambda: _published_months(pipeline) >= set(MONTHS))
                outage.clear()
        finally:
            for dag_id in DAGS:
                _airflow("dags", "pause", dag_id)
            stop_police()
            smtp.stop()

    # every month published by runs the landing watch started; nobody started a run
    runs = _airflow_runs("monthly_pipeline")
    assert all(run_id.startswith(("landed__", "scheduled__")) for run_id, _ in runs), runs
    assert pipeline.query(
        "select count(distinct month) from marts.kpi_monthly where month between '2025-01-01' and '2025-03-01'"
    ) == [(3,)]
    # March's street crime for Medway is published as missing its source; the other figures as usual
    c2 = pipeline.query(
        """select quality_flag from marts.kpi_monthly
           where area_code = %s and month = '2025-03-01' and kpi_code like 'C2%%'""",
        (AREA,),
    )
    assert c2 and all(flag == "missing_source" for (flag,) in c2), c2
    treatment = pipeline.query(
        "select count(*) from marts.kpi_monthly where area_code = %s and month = '2025-03-01' and kpi_code = 'T1'",
        (AREA,),
    )
    assert treatment[0][0] > 0
    # writers never overlapped
    leases = pipeline.query("select acquired_at, released_at from ops.writer_leases order by acquired_at")
    assert all(earlier[1] <= later[0] for earlier, later in zip(leases, leases[1:], strict=False))


def _published_months(pipeline) -> set[str]:  # noqa: ANN001
    """Months a publication of a run the landing watch started has covered."""
    rows = pipeline.query(
        """select distinct to_char(reporting_month, 'YYYY-MM') from ops.publications
           where dag_run_id like 'landed__%%'"""
    )
    return {r[0] for r in rows}


def _landed_publications(pipeline, month: str) -> int:  # noqa: ANN001
    return pipeline.query(
        """select count(*) from ops.publications
           where dag_run_id like 'landed__%%' and to_char(reporting_month, 'YYYY-MM') = %s""",
        (month,),
    )[0][0]


def _loaded(pipeline, month: str) -> int:  # noqa: ANN001
    return pipeline.query(
        """select count(*) from raw.submissions
           where status = 'loaded' and to_char(period_start, 'YYYY-MM') = %s""",
        (month,),
    )[0][0]
