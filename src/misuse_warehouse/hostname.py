"""Airflow's `[core] hostname_callable` for several workers on one host.

Airflow records the worker that ran each task instance by hostname. Workers on separate hosts
(or containers) differ by FQDN already; several workers on one host need a name each, given in
`MISUSE_WAREHOUSE_WORKER_NAME`. Kept free of heavy imports: every task process calls it.
"""

from __future__ import annotations

import os
import socket

WORKER_NAME_ENV = "MISUSE_WAREHOUSE_WORKER_NAME"


def worker_hostname() -> str:
    return os.environ.get(WORKER_NAME_ENV) or socket.getfqdn()
