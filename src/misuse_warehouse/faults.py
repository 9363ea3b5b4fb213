"""Named stages where a crash test can park the pipeline and kill it for real.

Crash safety is proved by killing a real run with SIGKILL at each stage (tests/test_crash_safety.py).
To kill *during* a stage rather than near it, the process parks itself there when
`MISUSE_WAREHOUSE_HOLD_AT` names the stage: it writes a marker file (its pid) and sleeps until
killed. Unset, as in every real run, `hold()` does nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from misuse_warehouse import settings

HOLD_ENV = "MISUSE_WAREHOUSE_HOLD_AT"
STAGES = ("copy", "gate", "publish")
HOLD_SECONDS = 900


def marker(stage: str) -> Path:
    return settings.home() / "holds" / stage


def hold(stage: str) -> None:
    """Park here if a crash test asked for this stage; otherwise return at once."""
    if os.environ.get(HOLD_ENV) != stage:
        return
    path = marker(stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(os.getpid()))
    time.sleep(HOLD_SECONDS)


# A Celery worker process that has taken a task from the queue but not yet told Airflow it runs it:
# the task instance is still `queued` and its message unacknowledged in Redis. `make test-distributed`
# kills a worker holding one, to prove a lost worker strands nothing for long. The window is real but
# lasts a second or so; parking a task in it makes the kill land there every time.
WORKER_RECEIVED = "worker-received"
PARK_POLL_SECONDS = 0.2


def armed(stage: str, name: str) -> Path:
    """While this file exists, the next task `name` takes parks at `stage` (one task per arming)."""
    return settings.home() / "holds" / f"{stage}.{name}.armed"


def parked(stage: str, name: str) -> Path:
    """Written by the task that parked (its id); deleting it lets that task go on."""
    return settings.home() / "holds" / f"{stage}.{name}.parked"


def park(stage: str, name: str, detail: str) -> None:
    """Park here while a crash test has armed `stage` for `name`; otherwise return at once.

    The arm file is taken by renaming it (atomic), so of several processes only one parks. The parked
    process waits until the test deletes its marker (released: it goes on as if nothing happened) or
    kills it, at most HOLD_SECONDS.
    """
    if os.environ.get(HOLD_ENV) != stage:
        return
    marker_path = parked(stage, name)
    try:
        armed(stage, name).rename(marker_path)
    except FileNotFoundError:
        return
    marker_path.write_text(detail)
    deadline = time.monotonic() + HOLD_SECONDS
    while marker_path.exists() and time.monotonic() < deadline:
        time.sleep(PARK_POLL_SECONDS)
