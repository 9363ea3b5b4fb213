"""A lost worker's tasks: the Celery settings workers run with, the timeouts, and the crash test's parking.

The whole story (a worker SIGKILLed mid-run on a real CeleryExecutor, its stranded task redelivered
by Redis) is `make test-distributed`; these are its parts that need no Airflow services: what
`celery_config` hands Celery, the refusal of a queued-task timeout that would race the broker (in a
real worker start-up import), and the parking that lets the rig strand a task on purpose, run in real
processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from misuse_warehouse import faults, redelivery

PARK = (
    "import sys\n"
    "from misuse_warehouse import faults\n"
    "faults.park(faults.WORKER_RECEIVED, 'worker-x', sys.argv[1])\n"
    "print('went on', flush=True)\n"
)


def test_workers_take_one_task_per_process_and_give_back_what_they_lose() -> None:
    from misuse_warehouse.celery_config import CELERY_CONFIG

    assert CELERY_CONFIG["worker_prefetch_multiplier"] == 1
    assert CELERY_CONFIG["task_acks_late"] is True
    assert CELERY_CONFIG["worker_disable_prefetch"] is True
    assert CELERY_CONFIG["task_acks_on_failure_or_timeout"] is True
    assert CELERY_CONFIG["task_reject_on_worker_lost"] is True
    options = CELERY_CONFIG["broker_transport_options"]
    # no visibility timeout configured here: ours, not the Celery provider's 24 hours
    assert options["visibility_timeout"] == redelivery.VISIBILITY_TIMEOUT == 60
    assert options["unacked_restore_interval"] == 10 and options["unacked_restore_throttle"] == 1
    assert redelivery.redelivery_seconds(options) == 70
    # Airflow's own settings still reach Celery
    assert CELERY_CONFIG["task_default_queue"] == "default" and CELERY_CONFIG["broker_url"]


def test_a_configured_visibility_timeout_is_kept() -> None:
    provider = {"visibility_timeout": 86400, "unacked_restore_interval": 5}
    assert redelivery.transport_options(provider, visibility_configured=False) == {
        "visibility_timeout": 60,
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 1,
    }
    kept = redelivery.transport_options({"visibility_timeout": 90}, visibility_configured=True)
    assert kept["visibility_timeout"] == 90
    assert redelivery.redelivery_seconds({**kept, "unacked_restore_throttle": 10}) == 90 + 10 * 10


def test_the_queued_timeout_must_leave_the_broker_time_to_redeliver() -> None:
    redelivery.check_timeouts(redelivery.DEFAULT_OPTIONS, redelivery.QUEUED_TIMEOUT)
    redelivery.check_timeouts(redelivery.DEFAULT_OPTIONS, 140)  # twice the 70 s redelivery
    with pytest.raises(ValueError, match=r"task_queued_timeout is 139 s .* at least 140 s"):
        redelivery.check_timeouts(redelivery.DEFAULT_OPTIONS, 139)


def test_a_worker_refuses_to_start_with_a_queued_timeout_that_races_the_broker() -> None:
    """The import a worker and the scheduler do at start fails, naming both settings."""
    env = os.environ | {
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import misuse_warehouse.celery_config"], env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "task_queued_timeout is 600 s but Redis may take 21610 s" in result.stderr
    assert "visibility_timeout" in result.stderr.splitlines()[-1]


def _park(task_id: str) -> subprocess.Popen[str]:
    env = os.environ | {faults.HOLD_ENV: faults.WORKER_RECEIVED}
    return subprocess.Popen([sys.executable, "-c", PARK, task_id], env=env, stdout=subprocess.PIPE, text=True)


def _wait_for(path: Path, seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} not written")


def test_an_armed_worker_parks_one_task_until_let_go() -> None:
    armed = faults.armed(faults.WORKER_RECEIVED, "worker-x")
    parked = faults.parked(faults.WORKER_RECEIVED, "worker-x")
    armed.parent.mkdir(parents=True, exist_ok=True)
    parked.unlink(missing_ok=True)

    unarmed = _park("task-0")  # nothing armed: goes on at once
    assert unarmed.communicate(timeout=60)[0] == "went on\n"

    armed.touch()
    first, second = _park("task-1"), _park("task-2")
    try:
        detail = _wait_for(parked)
        assert not armed.exists(), "one arming parks one task"
        goes_on = second if detail == "task-1" else first
        assert goes_on.communicate(timeout=60)[0] == "went on\n"
        held = first if detail == "task-1" else second
        time.sleep(1)
        assert held.poll() is None, "the parked task waits"
        parked.unlink()
        assert held.communicate(timeout=30)[0] == "went on\n"
    finally:
        for process in (first, second):
            process.kill()
            process.wait()
