"""Late and missing feeds: who owes which file, how late it is, and the alert that says so.

Who is expected and by when is decided in dbt (`ref_feed_deadlines`, `fct_expected_submissions`),
so the published marts and this check agree. What depends on today's date (how many days a
missing file is overdue) is not published; it lives in `ops.submission_status`, refreshed by
each run for its month and the two before it, and overdue files raise an alert.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

log = logging.getLogger(__name__)

WEBHOOK_ENV = "MISUSE_WAREHOUSE_ALERT_WEBHOOK"
LOOKBACK_MONTHS = 2
LONDON = ZoneInfo("Europe/London")


@dataclass(frozen=True)
class FileStatus:
    expected_submission_id: str
    feed: str
    source_code: str
    area_code: str
    reporting_month: date
    due_date: date
    status: str
    submission_id: int | None
    received_at: datetime | None
    days_late: int | None

    @property
    def message(self) -> str:
        month = self.reporting_month.strftime("%Y-%m")
        if self.status == "overdue":
            return (
                f"{self.feed} file from {self.source_code} for {month} (area {self.area_code}) is "
                f"{self.days_late} days late: due {self.due_date.isoformat()}, not received"
            )
        return (
            f"{self.feed} file from {self.source_code} for {month} (area {self.area_code}) came "
            f"{self.days_late} days late (due {self.due_date.isoformat()})"
        )


def _status(row: dict[str, Any], today: date) -> tuple[str, int | None]:
    if row["is_received"]:
        return ("late", row["days_late"]) if row["is_late"] else ("on_time", None)
    if today > row["due_date"]:
        return "overdue", (today - row["due_date"]).days
    return "not_due", None


def check(conn: psycopg.Connection, month: str, today: date | None = None) -> list[FileStatus]:
    """Refresh `ops.submission_status` for `month` and the two before it; return every file's status."""
    today = today or datetime.now(LONDON).date()
    exists = conn.execute("select to_regclass('marts.fct_expected_submissions')").fetchone()[0]
    if not exists:
        return []
    cursor = conn.cursor(row_factory=psycopg.rows.dict_row)
    rows = cursor.execute(
        """select * from marts.fct_expected_submissions
           where month between (%s::date - make_interval(months => %s)) and %s::date
           order by month, feed, source_code, area_id""",
        (f"{month}-01", LOOKBACK_MONTHS, f"{month}-01"),
    ).fetchall()
    statuses = []
    for row in rows:
        status, days = _status(row, today)
        statuses.append(
            FileStatus(
                row["expected_submission_id"],
                row["feed"],
                row["source_code"],
                row["area_id"],
                row["month"],
                row["due_date"],
                status,
                row["submission_id"],
                row["received_at"],
                days,
            )
        )
    with conn.transaction(), conn.cursor() as writer:
        writer.executemany(
            """insert into ops.submission_status (expected_submission_id, feed, source_code, area_code,
                   reporting_month, due_date, status, submission_id, received_at, days_late, checked_at)
               values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
               on conflict (expected_submission_id) do update set
                   status = excluded.status, submission_id = excluded.submission_id,
                   received_at = excluded.received_at, days_late = excluded.days_late,
                   due_date = excluded.due_date, checked_at = excluded.checked_at""",
            [
                (
                    s.expected_submission_id,
                    s.feed,
                    s.source_code,
                    s.area_code,
                    s.reporting_month,
                    s.due_date,
                    s.status,
                    s.submission_id,
                    s.received_at,
                    s.days_late,
                )
                for s in statuses
            ],
        )
    return statuses


def overdue(statuses: list[FileStatus]) -> list[FileStatus]:
    return [s for s in statuses if s.status == "overdue"]


def summary(statuses: list[FileStatus]) -> dict[str, Any]:
    """What the DAG task returns (XCom): counts per status and the alert lines."""
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.status] = counts.get(s.status, 0) + 1
    return {
        "counts": counts,
        "overdue": [s.message for s in overdue(statuses)],
        "late": [s.message for s in statuses if s.status == "late"],
    }


def alert(lines: list[str], month: str) -> None:
    """Log each overdue file; post them to the alert webhook (Teams, Slack, ...) when one is set."""
    if not lines:
        return
    for line in lines:
        log.warning("LATE FEED %s", line)
    webhook = os.environ.get(WEBHOOK_ENV)
    if webhook:
        import requests

        text = f"Misuse Warehouse, run for {month}: {len(lines)} file(s) overdue\n" + "\n".join(lines)
        response = requests.post(webhook, json={"text": text, "month": month, "overdue": lines}, timeout=10)
        response.raise_for_status()
