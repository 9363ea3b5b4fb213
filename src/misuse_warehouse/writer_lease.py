"""One writer at a time: the warehouse-wide lease every path that writes raw, builds or publishes holds.

A run's tasks, a CLI run (`dag.test()`), a backfill, the benchmarks DAG, retention and `rekey` can
all start at once. Without a lease a build could read raw while a file loads, or the gate check one
build while another rewrites `marts_next`. The lease is a Postgres session advisory lock on a
connection of its own, held for the whole step: a process that dies (SIGKILL included) loses its
connection and with it the lease, so nothing is ever left locked. Airflow's own paths also sit in the
pool `WRITER_POOL` (one slot), so their tasks queue in Airflow rather than wait inside a worker.

The lease is re-entrant within a process and passes to the processes it starts (a step that loads
the seeds runs dbt as a child: the child must not wait for its parent). Every holding is a row of
`ops.writer_leases`: who held it, when, and whom they waited for.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

log = logging.getLogger(__name__)

LOCK_NAME = "misuse_warehouse.writer"
WRITER_POOL = "misuse_warehouse_writer"
WRITER_POOL_DESCRIPTION = "One writer of the warehouse at a time (raw loads, dbt builds, gate, publication)"
# How long a step waits for the lease before failing: a month's whole build and publication at
# national volume take a few minutes; a writer still holding the lease after this is stuck.
WAIT_ENV = "MISUSE_WAREHOUSE_WRITER_WAIT_SECONDS"
DEFAULT_WAIT_SECONDS = 3600
POLL_SECONDS = 0.5


class LeaseTimeout(RuntimeError):
    """Another writer held the lease for longer than this step may wait."""


# Set while this process holds the lease, so the processes it starts (dbt) know their parent holds it.
HELD_ENV = "MISUSE_WAREHOUSE_WRITER_LEASE_HELD"
_depth = 0  # how many nested lease() blocks of this process are open


def wait_seconds() -> float:
    return float(os.environ.get(WAIT_ENV) or DEFAULT_WAIT_SECONDS)


def _holder_text(conn: psycopg.Connection) -> str | None:
    """The application name of the session holding the lease now (who we are waiting for)."""
    row = conn.execute(
        """select a.application_name from pg_locks l join pg_stat_activity a on a.pid = l.pid
           where l.locktype = 'advisory' and l.granted and l.objid = hashtext(%s)::oid and l.objsubid = 1
             and l.pid <> pg_backend_pid()
           limit 1""",
        (LOCK_NAME,),
    ).fetchone()
    return row[0] if row else None


@contextmanager
def lease(holder: str, url: str | None = None) -> Iterator[None]:
    """Hold the warehouse's writer lease for the block, waiting for the writer that has it.

    `holder` says who writes (e.g. `monthly_pipeline/<run id>/ingest`); it is what another writer's
    log says it waits for. Raises LeaseTimeout after wait_seconds().
    """
    global _depth
    if _depth or os.environ.get(HELD_ENV):
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    from misuse_warehouse import warehouse

    label = f"misuse_warehouse writer: {holder}"[:63]
    conn = psycopg.connect(url or warehouse.url(), autocommit=True, application_name=label)
    try:
        requested = conn.execute("select now()").fetchone()[0]
        waited_for = _acquire(conn, holder)
        lease_id = None
        if conn.execute("select to_regclass('ops.writer_leases')").fetchone()[0] is not None:
            lease_id = conn.execute(
                """insert into ops.writer_leases (holder, host, pid, requested_at, acquired_at, waited_for)
                   values (%s, %s, %s, %s, clock_timestamp(), %s) returning writer_lease_id""",
                (holder, socket.gethostname(), os.getpid(), requested, waited_for),
            ).fetchone()[0]
        else:  # a warehouse not migrated yet (dbt on a bare database): the lock holds, unrecorded
            log.warning("%s holds the writer lease unrecorded: ops.writer_leases does not exist yet", holder)
        _depth = 1
        os.environ[HELD_ENV] = f"{socket.gethostname()}:{os.getpid()}"
        try:
            yield
        finally:
            _depth = 0
            os.environ.pop(HELD_ENV, None)
            if lease_id is not None:
                conn.execute(
                    "update ops.writer_leases set released_at = clock_timestamp() where writer_lease_id = %s",
                    (lease_id,),
                )
            conn.execute("select pg_advisory_unlock(hashtext(%s))", (LOCK_NAME,))
    finally:
        conn.close()


def _acquire(conn: psycopg.Connection, holder: str) -> str | None:
    """Take the lock, polling so the wait is logged and bounded; returns whom we waited for, if anyone."""
    if conn.execute("select pg_try_advisory_lock(hashtext(%s))", (LOCK_NAME,)).fetchone()[0]:
        return None
    other = _holder_text(conn) or "another writer"
    log.warning("%s waits for the writer lease, held by %s", holder, other)
    deadline = time.monotonic() + wait_seconds()
    while time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        if conn.execute("select pg_try_advisory_lock(hashtext(%s))", (LOCK_NAME,)).fetchone()[0]:
            log.info("%s has the writer lease after waiting for %s", holder, other)
            return other
        other = _holder_text(conn) or other
    raise LeaseTimeout(
        f"{holder} waited {wait_seconds():.0f} s for the writer lease, still held by {other}; nothing written"
    )
