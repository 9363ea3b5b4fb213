"""Atomic publication: the schema dbt built and the gate passed replaces `marts` in one transaction.

BI tools always see either the previous publication or the new one, never a mix.
Grants are applied to the next schema before the swap, so no window opens without them.
"""

from __future__ import annotations

import hashlib
import json

import psycopg
from psycopg import sql

from misuse_warehouse import faults

PUBLISHED = "marts"
NEXT = "marts_next"
RETIRED = "marts_retired"
READER_ROLE = "bi_reader"


def ensure_reader_role(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(
            """do $$ begin
                 if not exists (select from pg_roles where rolname = 'bi_reader') then
                   create role bi_reader nologin;
                 end if;
               end $$"""
        )


def table_checksums(conn: psycopg.Connection, schema: str) -> dict[str, str]:
    """Content checksum of every table in `schema`, independent of row order."""
    tables = [
        r[0]
        for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = %s order by 1",
            (schema,),
        )
    ]
    sums = {}
    for table in tables:
        query = sql.SQL(
            "select coalesce(md5(string_agg(md5(t::text), '' order by md5(t::text))), '') from {}.{} t"
        ).format(sql.Identifier(schema), sql.Identifier(table))
        sums[table] = conn.execute(query).fetchone()[0]
    return sums


def publish(conn: psycopg.Connection, dag_run_id: str | None, reporting_month: str | None) -> dict:
    """Swap `marts_next` into `marts`; record what was published. Raises if nothing was built."""
    ensure_reader_role(conn)
    with conn.transaction():
        conn.execute("set local lock_timeout = '60s'")
        conn.execute("select pg_advisory_xact_lock(hashtext('misuse_warehouse.publish'))")
        built = conn.execute("select 1 from pg_namespace where nspname = %s", (NEXT,)).fetchone()
        if not built:
            raise RuntimeError(f"schema {NEXT} does not exist: dbt has not built the marts")
        conn.execute(
            sql.SQL("grant usage on schema {} to {}").format(sql.Identifier(NEXT), sql.Identifier(READER_ROLE))
        )
        conn.execute(
            sql.SQL("grant select on all tables in schema {} to {}").format(
                sql.Identifier(NEXT), sql.Identifier(READER_ROLE)
            )
        )
        checksums = table_checksums(conn, NEXT)
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(RETIRED)))
        if conn.execute("select 1 from pg_namespace where nspname = %s", (PUBLISHED,)).fetchone():
            conn.execute(
                sql.SQL("alter schema {} rename to {}").format(sql.Identifier(PUBLISHED), sql.Identifier(RETIRED))
            )
        faults.hold("publish")
        conn.execute(sql.SQL("alter schema {} rename to {}").format(sql.Identifier(NEXT), sql.Identifier(PUBLISHED)))
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(RETIRED)))
        month = f"{reporting_month}-01" if reporting_month else None
        publication_id = conn.execute(
            """insert into ops.publications (dag_run_id, reporting_month, tables)
               values (%s, %s, %s) returning publication_id""",
            (dag_run_id, month, json.dumps(checksums)),
        ).fetchone()[0]
    digest = hashlib.sha256(json.dumps(checksums, sort_keys=True).encode()).hexdigest()
    return {"publication_id": publication_id, "tables": len(checksums), "checksum": digest}
