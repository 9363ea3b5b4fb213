"""Retention of the raw landing zone: what identifies a person is kept only as long as it is needed.

After the retention (settings.retention_months, counted from when a file was received) the plain
attributor (initials, date of birth) is blanked in the raw rows, which keep their pseudonym
`person_key` and the ages derived at load; archived and quarantined files, validation reports (of
refused files and of files loaded with warnings), GX's stored validation results and their Data
Docs pages are deleted, and so is a file left in landing that long (never taken: a feed without a
contract, a folder that is not a month). Every purge is recorded in ops.retention_purges. The
`retention` DAG runs this monthly.

A kept file's time is when it was received: the loader sets it on the archived and quarantined
file; reports and GX results are written when their file is checked. A landing file's own time is
the sender's, so there the inode's change time counts, which no sender can set back or forward.
"""

from __future__ import annotations

import calendar
import logging
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from misuse_warehouse import settings, writer_lease
from misuse_warehouse.contracts import all_contracts

log = logging.getLogger(__name__)
# what is written beside a quarantined file: its refusal reason and the validation report for the submitter
COMPANION_SUFFIXES = (".reason.json", ".reason.txt", ".report.csv", ".report.html")


def cutoff(reference: datetime, months: int) -> datetime:
    """`months` calendar months before `reference` (the 31st clips to the month's last day)."""
    index = reference.year * 12 + reference.month - 1 - months
    year, month = divmod(index, 12)
    day = min(reference.day, calendar.monthrange(year, month + 1)[1])
    return reference.replace(year=year, month=month + 1, day=day)


def _record(conn: psycopg.Connection, cut: datetime, dag_run_id: str | None, target: str, **counts: int) -> dict:
    conn.execute(
        """insert into ops.retention_purges (dag_run_id, cutoff, target, submission_count, row_count, file_count)
           values (%s, %s, %s, %s, %s, %s)""",
        (dag_run_id, cut, target, counts.get("submissions", 0), counts.get("rows", 0), counts.get("files", 0)),
    )
    return {"target": target, **counts}


def purge_attributors(conn: psycopg.Connection, cut: datetime, dag_run_id: str | None = None) -> list[dict[str, Any]]:
    """Blank initials and date of birth in raw rows of files received before `cut`; one transaction."""
    results = []
    with writer_lease.lease(f"retention raw ({dag_run_id})"), conn.transaction():
        for contract in all_contracts().values():
            columns = contract.plain_attributor
            if not columns:
                continue
            names = [sql.Identifier(c) for c in columns]
            query = sql.SQL(
                """with purged as (
                       update {table} as rows set {assignments}
                       from raw.submissions
                       where submissions.submission_id = rows.submission_id
                         and submissions.received_at < %s
                         and ({still_held})
                       returning rows.submission_id
                   )
                   select count(distinct submission_id), count(*) from purged"""
            ).format(
                table=sql.Identifier("raw", contract.table),
                assignments=sql.SQL(", ").join(sql.SQL("{} = null").format(n) for n in names),
                still_held=sql.SQL(" or ").join(sql.SQL("rows.{} is not null").format(n) for n in names),
            )
            submissions, rows = conn.execute(query, (cut,)).fetchone()
            target = f"raw.{contract.table}"
            results.append(_record(conn, cut, dag_run_id, target, submissions=submissions, rows=rows))
            log.info("retention: %s rows of %s submissions of %s lost their attributor", rows, submissions, target)
    return results


def purge_targets() -> list[tuple[str, Path, Callable[[os.stat_result], float]]]:
    """Every folder that can hold a plain attributor outside raw: (target, folder, a file's receipt time)."""
    gx_results, gx_pages = settings.gx_results_dirs()
    modified: Callable[[os.stat_result], float] = lambda stat: stat.st_mtime  # noqa: E731
    return [
        ("archive", settings.archive_dir(), modified),
        ("quarantine", settings.quarantine_dir(), modified),
        ("reports", settings.reports_dir(), modified),
        ("gx_validations", gx_results, modified),
        ("gx_data_docs", gx_pages, modified),
        ("landing", settings.landing_dir(), lambda stat: stat.st_ctime),
    ]


def purge_files(conn: psycopg.Connection, cut: datetime, dag_run_id: str | None = None) -> list[dict[str, Any]]:
    """Delete every kept file received before `cut` (purge_targets); the files kept are made private.

    The loader gives archived and quarantined files their receipt time, so a file's age is its
    arrival, not its last move, and never the time its sender gave it.
    """
    results = []
    with conn.transaction():
        for target, folder, received in purge_targets():
            deleted = _delete_older(folder, cut.timestamp(), received, private=target != "landing")
            results.append(_record(conn, cut, dag_run_id, target, files=deleted))
            log.info("retention: %s files deleted from %s (%s)", deleted, target, folder)
    return results


def _delete_older(
    folder: Path, before: float, received: Callable[[os.stat_result], float], private: bool = True
) -> int:
    """Files received before `before`, with what was written beside them; then empty folders.

    A companion (reason, report) goes with its file; one without its file beside it (the report of
    a file loaded with warnings: the file is in the archive) is judged by its own time. What is
    kept is made private (0600 files, 0700 folders) when `private`: folders written before this
    rule was kept keep no wider mode.
    """
    if not folder.exists():
        return 0
    deleted = 0
    for path in sorted(folder.rglob("*")):
        # a refused symbolic link is kept (and purged) as itself: its own times, never its target's
        if not path.is_symlink() and not path.is_file():
            continue
        main = _main_file(path)
        if (main is not None and (main.exists() or main.is_symlink())) or received(path.lstat()) >= before:
            if private and path.exists():
                settings.make_private(path)
            continue
        for reason in (path.with_name(path.name + suffix) for suffix in COMPANION_SUFFIXES):
            reason.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        deleted += 1
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if not path.is_dir() or path.is_symlink():
            continue
        if not any(path.iterdir()):
            path.rmdir()
        elif private:
            settings.make_private(path)
    return deleted


def _main_file(path: Path) -> Path | None:
    """The file a companion was written beside (`x.csv` of `x.csv.report.html`), None for a main file."""
    for suffix in COMPANION_SUFFIXES:
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            return path.with_name(path.name[: -len(suffix)])
    return None
