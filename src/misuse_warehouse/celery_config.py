"""Celery settings for the Airflow workers: a lost worker's tasks come back in about a minute, warm imports.

Enabled by `AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=misuse_warehouse.celery_config.CELERY_CONFIG`; the
scheduler (which publishes tasks) and every worker (which consumes them) import it. Why each
setting, and why a visibility timeout shorter than a dbt build is safe, is in docs/operations.md,
"Workers and lost tasks". In short:

- A worker reserves only the tasks it is running (`worker_prefetch_multiplier` 1, `task_acks_late`,
  and Celery 5.6's `worker_disable_prefetch`), so no task waits behind another on a worker that may
  die. A message stays unacknowledged in Redis until its task has ended.
- Redis hands an unacknowledged message to another worker once it is `visibility_timeout` seconds
  old; a surviving worker looks for such messages every `unacked_restore_interval` seconds (kombu
  scans only every tenth look by default: `unacked_restore_throttle` 1 makes it every look).
- Airflow's `[scheduler] task_queued_timeout` must leave the broker time to do that first, or the
  scheduler revokes and requeues the task itself, which it does twice at most before failing it.
  `redelivery.check_timeouts` refuses, at start, a combination where it would not.

Airflow forks a process for every task and parses the DAG file in it; the file imports pandas,
Cosmos and the pipeline modules, and each ingest imports Great Expectations: seconds of CPU every
time (on the 2-core machine an ingest took about 20 s, most of it importing GX). Importing them in
the worker before Celery forks its pool (the `worker_init` signal, which only workers send) makes
every task start warm.
"""

from __future__ import annotations

from typing import Any

from airflow.configuration import conf
from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import task_prerun, worker_init

from misuse_warehouse import faults, redelivery
from misuse_warehouse.hostname import worker_hostname

_TRANSPORT = redelivery.transport_options(
    DEFAULT_CELERY_CONFIG["broker_transport_options"],
    conf.has_option(redelivery.TRANSPORT_SECTION, "visibility_timeout"),
)
redelivery.check_timeouts(_TRANSPORT, conf.getfloat("scheduler", "task_queued_timeout"))

CELERY_CONFIG: dict[str, Any] = {
    **DEFAULT_CELERY_CONFIG,
    # one task per pool process, acknowledged when it has ended (Airflow's defaults, pinned here)
    "worker_prefetch_multiplier": 1,
    "task_acks_late": True,
    # no message is taken while every pool process is busy (Redis only; Celery 5.6)
    "worker_disable_prefetch": True,
    # a task that failed or timed out is acknowledged: Airflow retries it itself, as a new try
    "task_acks_on_failure_or_timeout": True,
    # a pool process that died (OOM killer, segfault) puts its message back at once instead of
    # acknowledging it as failed: a task not started yet runs elsewhere without spending a retry
    "task_reject_on_worker_lost": True,
    "broker_transport_options": _TRANSPORT,
}


@worker_init.connect
def _warm_imports(**_: Any) -> None:
    import cosmos  # noqa: F401
    import great_expectations  # noqa: F401
    import pendulum  # noqa: F401

    from misuse_warehouse import orchestration, pipeline  # noqa: F401


@task_prerun.connect
def _park_for_crash_test(task_id: str, **_: Any) -> None:
    """`make test-distributed` parks one received task here, before Airflow starts it, then kills the worker."""
    faults.park(faults.WORKER_RECEIVED, worker_hostname(), task_id)
