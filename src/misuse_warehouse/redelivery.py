"""How soon a lost worker's tasks come back: Redis' visibility timeout and Airflow's queued-task timeout.

A worker acknowledges a task's message only once the task has ended, so a worker that dies leaves
its messages unacknowledged in Redis. Redis (kombu's Redis transport) hands such a message to
another worker once it is `visibility_timeout` seconds old; the surviving workers look for them every
`unacked_restore_interval` seconds, but scan only every `unacked_restore_throttle`-th look (10 by
default: a 100 s sweep), so the throttle is set to 1. Meanwhile Airflow's scheduler revokes and
requeues a task `queued` longer than `[scheduler] task_queued_timeout` (twice at most, then fails it)
and gives each queued task a token to start with that lives that long, so that timeout must leave the
broker time to redeliver first. Kept free of Airflow imports: the `make test-distributed` rig and the
tests read these numbers without configuring Airflow. docs/operations.md, "Workers and lost tasks".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TRANSPORT_SECTION = "celery_broker_transport_options"
# Seconds an unacknowledged message waits before Redis gives it to another worker, unless
# `[celery_broker_transport_options] visibility_timeout` says otherwise (Airflow's own default is 24 h).
VISIBILITY_TIMEOUT = 60
# Seconds between a worker's looks for such messages (kombu's default); every look a real scan.
RESTORE_INTERVAL = 10
RESTORE_THROTTLE = 1
# The queued-task timeout we ship (compose, the rig): five minutes, over twice the broker's worst case.
QUEUED_TIMEOUT = 300
# The scheduler's timeout must be at least this many times the broker's redelivery time: room for the
# redelivered task to wait for a free worker process and start.
QUEUED_TIMEOUT_FACTOR = 2

DEFAULT_OPTIONS: dict[str, Any] = {
    "visibility_timeout": VISIBILITY_TIMEOUT,
    "unacked_restore_interval": RESTORE_INTERVAL,
    "unacked_restore_throttle": RESTORE_THROTTLE,
}


def transport_options(configured: Mapping[str, Any], visibility_configured: bool) -> dict[str, Any]:
    """The broker transport options with ours wherever the deployment left one unset.

    `configured` is Airflow's parsed `[celery_broker_transport_options]`, where the Celery provider has
    already put its own 24-hour visibility timeout when none was configured; whether one was is
    `visibility_configured`, read from Airflow's config by the caller.
    """
    options = dict(configured)
    if not visibility_configured:
        options["visibility_timeout"] = VISIBILITY_TIMEOUT
    options.setdefault("unacked_restore_interval", RESTORE_INTERVAL)
    options.setdefault("unacked_restore_throttle", RESTORE_THROTTLE)
    return options


def redelivery_seconds(options: Mapping[str, Any]) -> float:
    """The longest a lost worker's unacknowledged message waits before another worker can take it."""
    throttle = max(int(options["unacked_restore_throttle"]), 1)
    return float(options["visibility_timeout"]) + float(options["unacked_restore_interval"]) * throttle


def check_timeouts(options: Mapping[str, Any], queued_timeout: float) -> None:
    """Refuse a queued-task timeout that would race the broker's redelivery: a clear error at start."""
    redelivery = redelivery_seconds(options)
    needed = QUEUED_TIMEOUT_FACTOR * redelivery
    if queued_timeout < needed:
        raise ValueError(
            f"[scheduler] task_queued_timeout is {queued_timeout:g} s but Redis may take {redelivery:g} s to "
            f"hand a lost worker's task to another worker (visibility_timeout {options['visibility_timeout']} s "
            f"plus one restore sweep): set task_queued_timeout to at least {needed:g} s or lower "
            f"[{TRANSPORT_SECTION}] visibility_timeout (docs/operations.md, 'Workers and lost tasks')"
        )
