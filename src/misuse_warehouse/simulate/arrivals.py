"""When each simulated file lands: its modification time, and for the demo the landing watch's first sight.

Most files land a few days before their due day (`ref_feed_deadlines`); about one in thirty
lands late, by up to two weeks, so the demo's deadline check and `fct_expected_submissions`
have something to say. Deterministic by seed, so two demos publish the same marts.
A file is received when the pipeline first saw it, never at its modification time (a sender sets
that), so the demo, which lands two years of files at once, records each simulated landing time as
the watch's first sight of the file (`record_sightings`), as a watch running all along would have.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from misuse_warehouse import settings

from .rng import sub_seed

LONDON = ZoneInfo("Europe/London")
LATE_ONE_IN = 30
YEARLY_ARRIVAL_DAY = 10  # grant letters: the tenth of April


@cache
def due_days() -> dict[str, int]:
    path = settings.DBT_PROJECT_DIR / "seeds" / "ref_feed_deadlines.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["feed"]: int(row["due_day"]) for row in csv.DictReader(handle)}


def arrival(feed: str, folder: str, file_name: str, seed: int) -> datetime:
    """Landing time of a file in `<feed>/<folder>/`: before its due day, or now and then after it."""
    year, month = int(folder[:4]), int(folder[5:7])
    value = sub_seed("arrival", seed, feed, file_name)
    if feed not in due_days():
        return datetime(year, month, YEARLY_ARRIVAL_DAY, 9, tzinfo=LONDON)
    next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
    due = datetime(next_year, next_month, due_days()[feed], 9, tzinfo=LONDON)
    days = -(1 + value % 9) if (value // 9) % LATE_ONE_IN else 1 + value % 14
    return due + timedelta(days=days, minutes=value % 480)


def stamp(paths: Iterable[Path], seed: int) -> None:
    for path in paths:
        when = arrival(path.parent.parent.name, path.parent.name, path.name, seed).timestamp()
        os.utime(path, (when, when))


def record_sightings(conn: Any, landing: Path) -> int:
    """Each file in `<landing>/<feed>/<month>/` first seen at its (simulated) modification time.

    Written to `ops.landing_files` as the landing watch writes it; a path already seen with the
    same bytes keeps its first sight. Demo only: a real file is first seen when the watch sees it.
    """
    rows = []
    for path in sorted(p for p in landing.glob("*/*/*") if p.is_file() and not p.name.startswith(".")):
        info = path.stat()
        rows.append(
            (
                path.relative_to(landing).as_posix(),
                path.parent.parent.name,
                f"{path.parent.name}-01",
                info.st_size,
                info.st_mtime_ns,
                hashlib.sha256(path.read_bytes()).hexdigest(),
                datetime.fromtimestamp(info.st_mtime, UTC),
            )
        )
    with conn.cursor() as cursor:
        cursor.executemany(
            """insert into ops.landing_files
                   (landing_path, feed, reporting_month, file_bytes, modified_ns, file_sha256, first_seen_at)
               values (%s, %s, %s, %s, %s, %s, %s)
               on conflict (landing_path) do update set
                   file_bytes = excluded.file_bytes, modified_ns = excluded.modified_ns,
                   file_sha256 = excluded.file_sha256, first_seen_at = excluded.first_seen_at
               where landing_files.file_sha256 <> excluded.file_sha256""",
            rows,
        )
    return len(rows)
