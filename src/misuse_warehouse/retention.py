"""Retention of the raw landing zone: what identifies a person is kept only as long as it is needed.

After the retention (settings.retention_months, counted from when a file was received) the plain
attributor (initials, date of birth) is blanked in the raw rows, which keep their pseudonym
`person_key` and the ages derived at load; archived and quarantined files and validation reports
are deleted. Every purge is recorded in ops.retention_purges. The `retention` DAG runs this monthly.
"""

from __future__ import annotations

import calendar
import logging
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


def purge_files(conn: psycopg.Connection, cut: datetime, dag_run_id: str | None = None) -> list[dict[str, Any]]:
    """Delete archived and quarantined landing files, and validation reports, received before `cut`.

    File times are kept at archiving, so a file's age is its arrival, not its last move.
    """
    results = []
    with conn.transaction():
        for target, folder in (
            ("archive", settings.archive_dir()),
            ("quarantine", settings.quarantine_dir()),
            ("reports", settings.reports_dir()),
        ):
            deleted = _delete_older(folder, cut.timestamp())
            results.append(_record(conn, cut, dag_run_id, target, files=deleted))
            log.info("retention: %s files deleted from %s (%s)", deleted, target, folder)
    return results


def _delete_older(folder: Path, before: float) -> int:
    """Files modified before `before`, with what was written beside them; then empty folders."""
    if not folder.exists():
        return 0
    deleted = 0
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name.endswith(COMPANION_SUFFIXES) or path.stat().st_mtime >= before:
            continue
        for reason in (path.with_name(path.name + suffix) for suffix in COMPANION_SUFFIXES):
            reason.unlink(missing_ok=True)
        path.unlink()
        deleted += 1
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return deleted
