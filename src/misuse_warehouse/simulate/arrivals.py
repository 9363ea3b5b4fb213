"""When each simulated file lands: its modification time, which the loader records as received.

Most files land a few days before their due day (`ref_feed_deadlines`); about one in thirty
lands late, by up to two weeks, so the demo's deadline check and `fct_expected_submissions`
have something to say. Deterministic by seed, so two demos publish the same marts.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
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
