"""Celery settings for the Airflow workers: Airflow's defaults, and the DAG's heavy imports done once.

Airflow forks a process for every task and parses the DAG file in it; the file imports pandas,
Cosmos and the pipeline modules, and each ingest imports Great Expectations: seconds of CPU every
time (on the 2-core machine an ingest took about 20 s, most of it importing GX). Importing them in
the worker before Celery forks its pool (the `worker_init` signal, which only workers send) makes
every task start warm. Enabled by `AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=misuse_warehouse.celery_config.CELERY_CONFIG`.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import worker_init

CELERY_CONFIG: dict[str, Any] = dict(DEFAULT_CELERY_CONFIG)


@worker_init.connect
def _warm_imports(**_: Any) -> None:
    import cosmos  # noqa: F401
    import great_expectations  # noqa: F401
    import pendulum  # noqa: F401

    from misuse_warehouse import orchestration, pipeline  # noqa: F401
