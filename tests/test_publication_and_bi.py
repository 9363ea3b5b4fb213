"""Publication and BI stay out of each other's way, and publication publishes only what the gate checked.

- A BI session idle in a transaction on the published marts: the publication succeeds at its first
  attempt, and a reader querying throughout never waits more than a lock timeout.
- The retired schema that session still reads is dropped by a later publication, not waited for.
- An analyst's view on the marts is recreated on the new tables, as its owner, grants kept; one that no
  longer fits is kept in ops.analyst_views with the reason; a materialized view stops the publication.
- Next marts that changed after the gate checked them are refused.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from psycopg import sql

from misuse_warehouse import migrations, publish, roles, warehouse


def _build_next(value: int, extra_column: bool = True) -> None:
    """Next schemas as dbt leaves them: one table each; `value` tells publications apart."""
    with warehouse.connect(autocommit=True, role=roles.TRANSFORMER) as conn:
        for schema in publish.NEXT_SCHEMAS:
            name = sql.Identifier(schema)
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(name))
            conn.execute(sql.SQL("create schema {}").format(name))
            columns = "tally_id int, area_code text" + (", tally int" if extra_column else "")
            conn.execute(sql.SQL("create table {}.tally ({})").format(name, sql.SQL(columns)))
            values = f"(1, 'E06000035'{f', {value}' if extra_column else ''})"
            conn.execute(sql.SQL("insert into {}.tally values {}").format(name, sql.SQL(values)))


def _publish(month: str = "2025-03", gate_checksums: dict | None = None) -> dict:
    with warehouse.connect(role=roles.TRANSFORMER) as conn:
        return publish.publish(conn, "bi-test", month, gate_checksums=gate_checksums)


@pytest.fixture
def published(pipeline):  # noqa: ANN001, ANN201
    pipeline.reset()
    with warehouse.connect(autocommit=True) as conn:
        migrations.migrate(conn)
        conn.execute("drop schema if exists analysts cascade")
        migrations.migrate(conn)
    _build_next(1)
    _publish()
    return pipeline


def test_an_idle_bi_transaction_neither_blocks_publication_nor_makes_readers_queue(published) -> None:  # noqa: ANN001
    bi = psycopg.connect(published.url)
    assert bi.execute("select tally from marts.tally").fetchall() == [(1,)]  # idle in transaction from here
    waits: list[float] = []
    stop = threading.Event()

    def read() -> None:
        with psycopg.connect(published.url, autocommit=True) as reader:
            while not stop.is_set():
                started = time.monotonic()
                reader.execute("select count(*) from marts.tally").fetchone()
                waits.append(time.monotonic() - started)
                time.sleep(0.02)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        _build_next(2)
        started = time.monotonic()
        result = _publish()
        took = time.monotonic() - started
    finally:
        stop.set()
        reader.join()
    assert published.query("select tally from marts.tally") == [(2,)]
    # the old schema the idle session still reads is kept, not waited for
    retired = f"{publish.RETIRED}_{result['publication_id']}"
    assert published.query("select count(*) from pg_namespace where nspname = %s", (retired,)) == [(1,)]
    assert took < float(publish.RETIRED_DROP_LOCK_TIMEOUT.rstrip("s")) * 3 + 5, f"publication took {took:.1f} s"
    assert waits and max(waits) < float(publish.LOCK_TIMEOUT.rstrip("s")) + 1, f"a reader waited {max(waits):.1f} s"
    # the session sees the new publication at its next statement, and ends its transaction
    assert bi.execute("select tally from marts.tally").fetchall() == [(2,)]
    bi.close()
    _build_next(3)
    later = _publish()
    assert retired in later["retired_dropped"]
    assert published.query("select count(*) from pg_namespace where nspname like 'marts%%retired%%'") == [(0,)]


def _analyst_login(conn: psycopg.Connection, login: str) -> None:
    conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(login)))
    conn.execute(sql.SQL("create role {} login").format(sql.Identifier(login)))
    group = next(iter(roles.load_analyst_groups().groups))
    conn.execute(sql.SQL("grant {} to {}").format(sql.Identifier(group), sql.Identifier(login)))


def test_analysts_views_are_recreated_on_the_new_marts_or_kept_with_the_reason(published) -> None:  # noqa: ANN001
    with psycopg.connect(published.url, autocommit=True) as admin:
        _analyst_login(admin, "ann_analyst")
        admin.execute("set role ann_analyst")
        admin.execute("create view analysts.my_tally as select area_code, tally from marts.tally")
        admin.execute("create view analysts.my_ids as select tally_id from marts.tally")
        admin.execute("create view analysts.on_my_tally as select tally * 10 as tally_x10 from analysts.my_tally")
        admin.execute("comment on view analysts.my_tally is 'Ann''s view'")
        admin.execute(f"grant select on analysts.my_tally to {roles.PUBLIC_HEALTH}")
        admin.execute("reset role")
    _build_next(2)
    result = _publish()
    assert result["views_recreated"] == ["analysts.my_ids", "analysts.my_tally"]
    assert result["views_not_recreated"] == {}
    assert published.query("select tally from analysts.my_tally") == [(2,)]
    assert published.query("select tally_x10 from analysts.on_my_tally") == [(20,)]
    assert published.query(
        """select pg_get_userbyid(c.relowner), obj_description(c.oid), has_table_privilege(%s, c.oid, 'select')
           from pg_class c where c.oid = 'analysts.my_tally'::regclass""",
        (roles.PUBLIC_HEALTH,),
    ) == [("ann_analyst", "Ann's view", True)]

    _build_next(3, extra_column=False)  # the new marts no longer have `tally`
    result = _publish()
    assert result["views_recreated"] == ["analysts.my_ids"]
    assert list(result["views_not_recreated"]) == ["analysts.my_tally"]
    assert "tally" in result["views_not_recreated"]["analysts.my_tally"]
    kept = published.query(
        """select view_owner, definition, is_recreated, reason from ops.analyst_views
           where view_name = 'my_tally' order by analyst_view_id desc limit 1"""
    )
    assert kept[0][0] == "ann_analyst" and "marts.tally" in kept[0][1] and kept[0][2] is False
    assert published.query("select count(*) from pg_class where oid = to_regclass('analysts.my_ids')") == [(1,)]
    assert published.query("select to_regclass('analysts.my_tally')") == [(None,)]


def test_a_materialized_view_on_the_marts_stops_publication_naming_it(published) -> None:  # noqa: ANN001
    with psycopg.connect(published.url, autocommit=True) as admin:
        admin.execute("create materialized view analysts.snapshot as select * from marts.tally")
    before = published.checksums()
    _build_next(2)
    with pytest.raises(publish.DependentObjects, match="analysts.snapshot"):
        _publish()
    assert published.checksums() == before
    with psycopg.connect(published.url, autocommit=True) as admin:
        admin.execute("drop materialized view analysts.snapshot")


def test_next_marts_changed_after_the_gate_are_not_published(published) -> None:  # noqa: ANN001
    _build_next(2)
    with warehouse.connect(role=roles.TRANSFORMER) as conn:
        checked = publish.next_checksums(conn)
    with warehouse.connect(autocommit=True, role=roles.TRANSFORMER) as conn:
        conn.execute("update marts_next.tally set tally = 99")  # another build, after the gate
    before = published.checksums()
    with pytest.raises(publish.MartsChangedSinceGate, match="tally"):
        _publish(gate_checksums=checked)
    assert published.checksums() == before
    _build_next(2)
    assert _publish(gate_checksums=checked)["tables"] == 2
    assert published.query("select tally from marts.tally") == [(2,)]


def test_reader_logins_get_an_idle_transaction_timeout(published) -> None:  # noqa: ANN001
    with psycopg.connect(published.url, autocommit=True) as admin:
        admin.execute("drop role if exists superset_login")
        admin.execute(f"create role superset_login login in role {roles.BI_READER}")
        migrations.migrate(admin)
        config = admin.execute("select rolconfig from pg_roles where rolname = 'superset_login'").fetchone()[0]
    assert f"idle_in_transaction_session_timeout={roles.READER_IDLE_TIMEOUT}" in config
