"""Late and missing feeds: who owes which file, how late it is, and which of them to alert about now.

Who is expected and by when is decided in dbt (`ref_feed_deadlines`, `fct_expected_submissions`),
so the published marts and this check agree. Two things are read live instead, because an alert
must not wait for a publication: whether the file has come (`raw.submissions`, so a file loaded by
a run whose gate then failed is not called missing), and the months no file has reached yet (the
mart only knows months something arrived for; a month past the newest published one expects what
that newest month expected, its due dates moved on a month each). What depends on today's date
(how many days a missing file is overdue) is not published; it lives in `ops.submission_status`.

An overdue file is alerted once when a check first finds it overdue, then again every
`REMIND_AFTER_DAYS` days while checks still find it missing (`ops.late_feed_alerts` remembers).
The claim is taken here, in the check task; the notifier that sends the alert gives it back when
no channel could deliver it, so the next check tries again (misuse_warehouse.alerts).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from misuse_warehouse.months import first_day, month_of, month_text, parse_month

LOOKBACK_MONTHS = 2  # a monthly run checks its month and the two before it
OPEN_MONTHS = 3  # the daily check: the three reporting months before today's month
REMIND_AFTER_DAYS = 7
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
    alert_number: int = 0  # 1 when this check alerts it first, 2 for the first reminder, ...

    @property
    def message(self) -> str:
        month = self.reporting_month.strftime("%Y-%m")
        days = f"{self.days_late} day{'' if self.days_late == 1 else 's'}"
        if self.status == "overdue":
            return (
                f"{self.feed} file from {self.source_code} for {month} (area {self.area_code}) is "
                f"{days} late: due {self.due_date.isoformat()}, not received"
            )
        return (
            f"{self.feed} file from {self.source_code} for {month} (area {self.area_code}) came "
            f"{days} late (due {self.due_date.isoformat()})"
        )


def today_in_london() -> date:
    return datetime.now(LONDON).date()


def run_window(month: str) -> list[str]:
    """A monthly run's months: its own and the `LOOKBACK_MONTHS` before it, oldest first."""
    index = parse_month(month)
    return [month_text(i) for i in range(index - LOOKBACK_MONTHS, index + 1)]


def open_months(today: date) -> list[str]:
    """The reporting months whose files are still coming in on `today`: the three before its month.

    A month's files are due on the 10th-20th of the month after it; three months back leaves
    time for the latest deadline and the reminders after it.
    """
    index = month_of(today)
    return [month_text(i) for i in range(index - OPEN_MONTHS, index)]


# Expected files of the months asked for: the mart's rows, and for a month past its newest one,
# that month's rows moved on (same feeds, sources and areas; due the same day of the month after).
# Receipt is the submission in force in raw now, as the mart takes it (the latest loaded file).
_EXPECTED = """
with published as (
    select expected_submission_id, feed, source_code, area_id, month, due_date
    from marts.fct_expected_submissions
),

newest as (
    select max(month) as month from published
),

expected as (
    select * from published where month = any(%(months)s::date[])
    union all
    select
        published.feed || '|' || published.source_code || '|' || published.area_id
            || '|' || to_char(asked.month, 'YYYY-MM'),
        published.feed,
        published.source_code,
        published.area_id,
        asked.month,
        ((asked.month + interval '1 month')::date + (published.due_date - (published.month + interval '1 month')::date))
    from published
    inner join newest on published.month = newest.month
    cross join unnest(%(months)s::date[]) as asked (month)
    where asked.month > newest.month
),

in_force as (
    select distinct on (feed, source_code, period_start) feed, source_code, period_start, submission_id, received_at
    from raw.submissions
    where status = 'loaded' and period_start = any(%(months)s::date[])
    order by feed, source_code, period_start, submission_id desc
)

select
    expected.expected_submission_id,
    expected.feed,
    expected.source_code,
    expected.area_id,
    expected.month,
    expected.due_date,
    in_force.submission_id,
    in_force.received_at,
    (in_force.received_at at time zone 'Europe/London')::date as received_date
from expected
left join in_force
    on in_force.feed = expected.feed
    and in_force.source_code = expected.source_code
    and in_force.period_start = expected.month
order by expected.month, expected.feed, expected.source_code, expected.area_id
"""


def _status(row: dict[str, Any], today: date) -> tuple[str, int | None]:
    if row["submission_id"] is not None:
        late = (row["received_date"] - row["due_date"]).days
        return ("late", late) if late > 0 else ("on_time", None)
    if today > row["due_date"]:
        return "overdue", (today - row["due_date"]).days
    return "not_due", None


def check(conn: psycopg.Connection, months: list[str], today: date | None = None) -> list[FileStatus]:
    """Refresh `ops.submission_status` for `months`; return every expected file's status on `today`.

    A file due on the 15th is overdue from the 16th (London): the whole due day is the submitter's.
    Before any publication there is nothing expected yet, and nothing is checked.
    """
    today = today or today_in_london()
    exists = conn.execute("select to_regclass('marts.fct_expected_submissions')").fetchone()[0]
    if not exists or not months:
        return []
    cursor = conn.cursor(row_factory=psycopg.rows.dict_row)
    rows = cursor.execute(_EXPECTED, {"months": [first_day(parse_month(m)) for m in months]}).fetchall()
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


def claim_alerts(
    conn: psycopg.Connection, statuses: list[FileStatus], today: date, dag_run_id: str | None
) -> list[FileStatus]:
    """The overdue files to alert now, each marked as alerted on `today` by this run.

    New ones, and those last alerted `REMIND_AFTER_DAYS` or more days before `today`. One statement
    claims them: two checks at once (the daily DAG beside a monthly run) alert a file once.
    """
    late = {s.expected_submission_id: s for s in overdue(statuses)}
    if not late:
        return []
    with conn.transaction():
        claimed = conn.execute(
            """insert into ops.late_feed_alerts as a (expected_submission_id, first_alerted_on, last_alerted_on,
                   alerts, dag_run_id)
               select id, %(today)s, %(today)s, 1, %(run)s from unnest(%(ids)s::text[]) as ids (id)
               on conflict (expected_submission_id) do update set
                   previous_alerted_on = a.last_alerted_on, last_alerted_on = excluded.last_alerted_on,
                   alerts = a.alerts + 1, dag_run_id = excluded.dag_run_id
               where a.last_alerted_on <= %(today)s::date - %(remind)s
               returning expected_submission_id, alerts""",
            {"today": today, "run": dag_run_id, "ids": sorted(late), "remind": REMIND_AFTER_DAYS},
        ).fetchall()
    return sorted(
        (replace(late[key], alert_number=number) for key, number in claimed),
        key=lambda s: (s.reporting_month, s.feed, s.source_code, s.area_code),
    )


def release_alerts(conn: psycopg.Connection, expected_submission_ids: list[str], dag_run_id: str | None) -> int:
    """Give back this run's claims of alerts no channel delivered: the next check sends them again."""
    with conn.transaction():
        deleted = conn.execute(
            """delete from ops.late_feed_alerts
               where expected_submission_id = any(%s) and dag_run_id is not distinct from %s and alerts = 1""",
            (expected_submission_ids, dag_run_id),
        ).rowcount
        restored = conn.execute(
            """update ops.late_feed_alerts set alerts = alerts - 1, last_alerted_on = previous_alerted_on,
                   previous_alerted_on = null, dag_run_id = null
               where expected_submission_id = any(%s) and dag_run_id is not distinct from %s and alerts > 1""",
            (expected_submission_ids, dag_run_id),
        ).rowcount
    return deleted + restored


def summary(statuses: list[FileStatus], alerted: list[FileStatus]) -> dict[str, Any]:
    """What a check task returns (XCom): counts per status, every overdue and late line, and the alert's files."""
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.status] = counts.get(s.status, 0) + 1
    return {
        "counts": counts,
        "overdue": [s.message for s in overdue(statuses)],
        "late": [s.message for s in statuses if s.status == "late"],
        "alert": [
            {"id": s.expected_submission_id, "message": s.message, "alert_number": s.alert_number} for s in alerted
        ],
    }


def check_and_claim(conn: psycopg.Connection, months: list[str], today: date, dag_run_id: str | None) -> dict[str, Any]:
    """The check both DAGs run: statuses refreshed for `months`, overdue files claimed for the alert."""
    statuses = check(conn, months, today)
    alerted = claim_alerts(conn, statuses, today, dag_run_id)
    return summary(statuses, alerted) | {"months": months, "today": today.isoformat(), "rows": len(statuses)}
