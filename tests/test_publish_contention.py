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


def test_table_checksums_see_content_not_row_order(pipeline) -> None:  # noqa: ANN001
    """What ops.publications records and the tests compare: equal content, equal checksum, whatever the order."""
    with warehouse.connect(autocommit=True) as conn:
        conn.execute("drop schema if exists checksum_a cascade; drop schema if exists checksum_b cascade")
        for schema, order in (("checksum_a", "asc"), ("checksum_b", "desc")):
            conn.execute(f"create schema {schema}")
            conn.execute(
                f"""create table {schema}.rows as
                    select n, 'E0600003' || n % 10 as code from generate_series(1, 500) as n order by n {order}"""
            )
            conn.execute(f"create table {schema}.nothing (n int)")
        same = publish.table_checksums(conn, "checksum_a")
        assert same == publish.table_checksums(conn, "checksum_b")
        assert same["nothing"] == "0:0" and same["rows"].startswith("500:")
        conn.execute("update checksum_b.rows set code = 'E06000035' where n = 7")
        assert publish.table_checksums(conn, "checksum_b")["rows"] != same["rows"]
        conn.execute("update checksum_b.rows set code = 'E06000037' where n = 7")  # back as it was
        assert publish.table_checksums(conn, "checksum_b") == same
        conn.execute("insert into checksum_b.rows values (7, 'E06000037')")  # the same row twice
        assert publish.table_checksums(conn, "checksum_b")["rows"] != same["rows"]
        conn.execute("drop schema checksum_a cascade; drop schema checksum_b cascade")
