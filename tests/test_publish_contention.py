"""Publication under lock contention: a blocked swap rolls back whole and is tried again.

Seen in the demo: autovacuum of a table dbt had just built deadlocked with the publication's
`alter table ... enable row level security`. Here a reader holds a lock on a next table for
longer than the publication's lock timeout; the first attempt fails, nothing changes, and the
second attempt publishes.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
from psycopg import sql

from misuse_warehouse import migrations, publish, roles, warehouse


def _build_next_schemas() -> None:
    with warehouse.connect(autocommit=True, role=roles.TRANSFORMER) as conn:
        for schema in publish.NEXT_SCHEMAS:
            name = sql.Identifier(schema)
            conn.execute(sql.SQL("create schema {}").format(name))
            conn.execute(sql.SQL("create table {}.tally (tally_id int, area_code text)").format(name))
            conn.execute(sql.SQL("insert into {}.tally values (1, 'E06000035')").format(name))


def _hold_lock(seconds: float, locked: threading.Event) -> None:
    with warehouse.connect() as conn:
        conn.execute("select * from marts_next.tally")  # access share, until the transaction ends
        locked.set()
        time.sleep(seconds)
        conn.rollback()


def test_a_blocked_publication_is_retried_and_publishes(
    pipeline,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipeline.reset()
    with warehouse.connect(autocommit=True) as conn:
        migrations.migrate(conn)
    _build_next_schemas()
    monkeypatch.setattr(publish, "LOCK_TIMEOUT", "1s")
    locked = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(2.0, locked))
    holder.start()
    assert locked.wait(30)
    with caplog.at_level(logging.WARNING, logger=publish.__name__), warehouse.connect(role=roles.TRANSFORMER) as conn:
        result = publish.publish(conn, "contention-test", "2025-03")
    holder.join()
    assert any("LockNotAvailable" in r.getMessage() for r in caplog.records), "the first attempt was blocked"
    assert result["tables"] == 2
    assert pipeline.query("select tally_id, area_code from marts.tally") == [(1, "E06000035")]
    assert pipeline.query(
        "select count(*) from pg_namespace where nspname = any(%s)", (list(publish.NEXT_SCHEMAS),)
    ) == [(0,)]
    assert pipeline.query("select count(*) from ops.publications where dag_run_id = 'contention-test'") == [(1,)]
