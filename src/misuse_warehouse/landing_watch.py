"""What has landed and not been taken yet: the files that start a run of the monthly pipeline.

Feeds are due on the 10th-20th of the month after their reporting month (ref_feed_deadlines) and
arrive when their senders send them, some late, some restating an earlier month. The `landing_watch`
DAG looks at the landing area every few minutes and starts one `monthly_pipeline` run for every month
that has a new file, with the months and files it found in the run's conf and note.

A file is new when its bytes are in no submission (`raw.submissions.file_sha256`: loaded or refused;
resubmitted bytes are not new) and no run started for it is still queued or running. A file still
being written is left for the next look: it must be unchanged for SETTLE_SECONDS. What was seen and
which run was started for it is kept in `ops.landing_files`, so a restart of any Airflow component
forgets nothing and starts nothing twice. Its `first_seen_at`, the first time the watch saw those
bytes, is the file's `received_at` when it is loaded or refused (loader.first_seen); the file's own
modification time, which its sender sets, only tells the watch whether it is still being written.
A file taken leaves landing (archive or quarantine), so landing holds what is still to come.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

DAG_ID = "landing_watch"
PIPELINE_DAG_ID = "monthly_pipeline"
SETTLE_SECONDS = 60
# A file a finished run did not take (it failed before ingesting) is offered again, at most this often.
MAX_TRIGGERS = 3
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
FINISHED = frozenset({"success", "failed"})


@dataclass(frozen=True)
class LandedFile:
    """A file in `<landing>/<feed>/<YYYY-MM>/`, as the watch found it."""

    path: Path
    feed: str
    month: str
    size: int
    modified_ns: int

    def key(self, root: Path) -> str:
        return self.path.relative_to(root).as_posix()


def landed(root: Path, feeds: Iterable[str], now: float | None = None) -> tuple[list[LandedFile], list[Path]]:
    """Settled files in the month folders of feeds with a contract, and those still being written.

    Hidden files are skipped as `pipeline.discover` skips them; folders that are not months are logged.
    """
    now = time.time() if now is None else now
    settled: list[LandedFile] = []
    settling: list[Path] = []
    for feed in sorted(feeds):
        folder = root / feed
        if not folder.is_dir():
            continue
        for month_folder in sorted(p for p in folder.iterdir() if p.is_dir()):
            if not _MONTH.fullmatch(month_folder.name):
                log.warning("landing: %s is not a YYYY-MM folder: its files are not taken", month_folder)
                continue
            for path in sorted(month_folder.iterdir()):
                # a symbolic link is taken (the run refuses it) but never followed: lstat, and its digest is its own
                if not (path.is_symlink() or path.is_file()) or path.name.startswith("."):
                    continue
                stat = path.lstat()
                if now - stat.st_mtime < SETTLE_SECONDS:
                    settling.append(path)
                    continue
                settled.append(LandedFile(path, feed, month_folder.name, stat.st_size, stat.st_mtime_ns))
    return settled, settling


def _sha256(path: Path) -> str:
    from misuse_warehouse.file_checks import landed_digest  # pyarrow: only when a file is new to the watch

    return landed_digest(path)[0]


def new_files(
    conn: psycopg.Connection, root: Path, files: list[LandedFile], run_state: Callable[[str], str | None]
) -> list[LandedFile]:
    """The files a run should be started for now; `ops.landing_files` brought up to date.

    `run_state` gives the state of a monthly_pipeline run by id (None when Airflow does not know it).
    A file is hashed only when it is new to the watch or its size or time changed.
    """
    seen = {
        row[0]: row[1:]
        for row in conn.execute(
            """select landing_path, file_bytes, modified_ns, file_sha256, triggered_dag_run_id, trigger_count
               from ops.landing_files"""
        )
    }
    fresh: list[tuple[LandedFile, str]] = []
    for file in files:
        key = file.key(root)
        known = seen.get(key)
        if known and known[0] == file.size and known[1] == file.modified_ns:
            continue
        sha = _sha256(file.path)
        conn.execute(
            """insert into ops.landing_files
                   (landing_path, feed, reporting_month, file_bytes, modified_ns, file_sha256)
               values (%s, %s, %s, %s, %s, %s)
               on conflict (landing_path) do update set
                   file_bytes = excluded.file_bytes, modified_ns = excluded.modified_ns,
                   file_sha256 = excluded.file_sha256,
                   -- first sight of these bytes (received_at): touching a file does not move it
                   first_seen_at = case when landing_files.file_sha256 = excluded.file_sha256
                                        then landing_files.first_seen_at else now() end,
                   triggered_dag_run_id = null, triggered_at = null, trigger_count = 0""",
            (key, file.feed, f"{file.month}-01", file.size, file.modified_ns, sha),
        )
        fresh.append((file, sha))
    pending = conn.execute(
        """select landing.landing_path, landing.triggered_dag_run_id, landing.trigger_count
           from ops.landing_files as landing
           where landing.landing_path = any(%s)
             and not exists (select 1 from raw.submissions where submissions.file_sha256 = landing.file_sha256)""",
        ([f.key(root) for f in files],),
    ).fetchall()
    by_key = {f.key(root): f for f in files}
    wanted: list[LandedFile] = []
    for key, run_id, count in pending:
        if run_id is not None:
            state = run_state(run_id)
            if state not in FINISHED and state is not None:
                continue  # its run is queued or running: it takes the file
            if count >= MAX_TRIGGERS:
                log.error("landing: %s was offered to %d runs and none took it; see run %s", key, count, run_id)
                continue
        wanted.append(by_key[key])
    return wanted


def record_trigger(conn: psycopg.Connection, root: Path, files: list[LandedFile], dag_run_id: str) -> None:
    conn.execute(
        """update ops.landing_files set triggered_dag_run_id = %s, triggered_at = now(),
               trigger_count = trigger_count + 1
           where landing_path = any(%s)""",
        (dag_run_id, [f.key(root) for f in files]),
    )


def run_request(files: list[LandedFile], now: datetime | None = None) -> dict:
    """The monthly_pipeline run these files start: its id, conf (the months) and the note the UI shows."""
    now = now or datetime.now(UTC)
    months = sorted({f.month for f in files})
    per_feed = Counter((f.feed, f.month) for f in files)
    landed_text = ", ".join(f"{feed} {month} ({n})" for (feed, month), n in sorted(per_feed.items()))
    span = months[0] if len(months) == 1 else f"{months[0]}_{months[-1]}"
    return {
        "run_id": f"landed__{span}__{now:%Y%m%dT%H%M%S}",
        "conf": {"months": months},
        "note": f"Started by {DAG_ID}: {len(files)} new file(s) landed: {landed_text}. Months: {', '.join(months)}.",
    }


def look(run_state: Callable[[str], str | None], root: Path | None = None) -> dict | None:
    """One look at the landing area: the run to start (see `run_request`), or None when nothing is new.

    The files are recorded as started by that run before it exists: should starting it fail, they
    are offered again at the next look once Airflow does not know the run (`run_state` None).
    """
    from misuse_warehouse import migrations, roles, settings, warehouse
    from misuse_warehouse.contracts import all_contracts

    root = root or settings.landing_dir()
    with warehouse.connect(autocommit=True, role=roles.LOADER) as conn:
        migrated = conn.execute("select to_regclass('ops.landing_files')").fetchone()[0] is not None
    if not migrated:
        migrations.ensure_current()
    files, settling = landed(root, all_contracts(), time.time())
    if settling:
        log.info("landing: %d file(s) still being written, left for the next look", len(settling))
    with warehouse.connect(autocommit=True, role=roles.LOADER) as conn:
        wanted = new_files(conn, root, files, run_state)
        if not wanted:
            log.info("landing: %d file(s) in %s, none new", len(files), root)
            return None
        request = run_request(wanted)
        record_trigger(conn, root, wanted, request["run_id"])
    log.info("landing: %s", request["note"])
    return request
