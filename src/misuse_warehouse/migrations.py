"""Schemas, audit tables, roles and grants the pipeline needs before any file arrives. Idempotent."""

from __future__ import annotations

import psycopg
from psycopg import sql

from misuse_warehouse import deadlines, landing_watch, observe, publish, reference_data, roles, writer_lease
from misuse_warehouse.contracts import Contract, all_contracts

BASE_DDL = """
create schema if not exists raw;
create schema if not exists ops;
create schema if not exists marts;
create schema if not exists marts_person;
-- analysts' own views on the marts: each publication recreates them on the new tables (publish.py)
create schema if not exists analysts;

create table if not exists raw.submissions (
    submission_id bigint generated always as identity primary key,
    feed text not null,
    source_code text not null,
    period_start date not null,
    file_name text not null,
    file_sha256 text not null,
    file_bytes bigint not null,
    received_at timestamptz not null,
    loaded_at timestamptz,
    row_count integer,
    status text not null check (status in ('loaded', 'refused')),
    refusal_code text,
    refusal_reason text,
    dag_run_id text
);
create index if not exists submissions_key
    on raw.submissions (feed, source_code, period_start, submission_id);

create table if not exists ops.publications (
    publication_id bigint generated always as identity primary key,
    published_at timestamptz not null default now(),
    dag_run_id text,
    reporting_month date,
    tables jsonb not null
);

-- What the retention DAG purged: one row per raw table (attributor columns) or file area.
create table if not exists ops.retention_purges (
    retention_purge_id bigint generated always as identity primary key,
    purged_at timestamptz not null default now(),
    dag_run_id text,
    cutoff timestamptz not null,
    target text not null,
    submission_count integer not null default 0,
    row_count integer not null default 0,
    file_count integer not null default 0
);

-- Re-keying after a rotation of the pseudonymisation secret (misuse-warehouse rekey).
create table if not exists ops.key_rotations (
    key_rotation_id bigint generated always as identity primary key,
    rekeyed_at timestamptz not null default now(),
    raw_table text not null,
    rows_rekeyed integer not null,
    rows_mapped_from_purged integer not null,
    rows_unmatched_purged integer not null
);
"""

POLICE_DDL = """
create table if not exists raw.police_crimes (
    submission_id bigint not null references raw.submissions,
    source_row integer not null,
    requested_category text not null check (requested_category in ('drugs', 'all-crime')),
    persistent_id text,
    api_id bigint,
    category text not null,
    month date not null,
    latitude numeric,
    longitude numeric,
    street_id bigint,
    street_name text,
    location_type text,
    context text,
    outcome_category text,
    outcome_month date,
    primary key (submission_id, source_row)
);
"""
"""Street crimes pulled from data.police.uk (police.py): not a file feed, so no contract drives it."""

RETIRED_TABLES = ("intermediate.int_treatment__person_ranges",)
"""Tables of models dbt no longer builds. dbt leaves them behind; person-level ones would keep old
pseudonyms past a key rotation, so they go (int_treatment__person_ranges became a macro, 2026-12-05)."""


def raw_table_ddl(contract: Contract) -> sql.Composed:
    """The append-only raw table of a feed: contract columns, typed, plus provenance.

    With an attributor: its pseudonym `person_key` and the ages derived from the date of birth
    (so the date of birth can be purged after retention and the models still have the age).
    Names come from the contract YAML, so they are quoted identifiers; types come from PG_TYPES.
    """
    columns = [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in contract.columns]
    if contract.attributor:
        columns.append(sql.SQL("person_key text"))
        columns += [sql.SQL("{} integer").format(sql.Identifier(age.name)) for age in contract.stored_ages]
    return sql.SQL(
        """
create table if not exists raw.{} (
    submission_id bigint not null references raw.submissions,
    source_row integer not null,
    {},
    primary key (submission_id, source_row)
)"""
    ).format(sql.Identifier(contract.table), sql.SQL(",\n    ").join(columns))


def add_stored_ages(conn: psycopg.Connection, contract: Contract) -> None:
    """Raw tables made before ages were stored: add the columns, fill them from the date of birth."""
    if not contract.attributor:
        return
    present = {
        r[0]
        for r in conn.execute(
            "select column_name from information_schema.columns where table_schema = 'raw' and table_name = %s",
            (contract.table,),
        )
    }
    table = sql.Identifier("raw", contract.table)
    for age in contract.stored_ages:
        if age.name in present:
            continue
        dob, on = age.args
        column = sql.Identifier(age.name)
        conn.execute(sql.SQL("alter table {} add column {} integer").format(table, column))
        conn.execute(
            sql.SQL("update {table} set {age} = extract(year from age({on}, {dob}))::integer").format(
                table=table, age=column, on=sql.Identifier(on), dob=sql.Identifier(dob)
            )
        )


def migrate(conn: psycopg.Connection) -> None:
    groups = roles.load_analyst_groups()  # a malformed file stops here, before anything changes
    contracts = all_contracts().values()
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('misuse_warehouse.migrate'))")
        conn.execute(BASE_DDL)
        for contract in contracts:
            conn.execute(raw_table_ddl(contract))
            add_stored_ages(conn, contract)
        conn.execute(POLICE_DDL)
        for table in RETIRED_TABLES:
            conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(*table.split("."))))
        conn.execute(observe.DDL)
        conn.execute(deadlines.DDL)
        conn.execute(reference_data.DDL)
        conn.execute(publish.DDL)
        conn.execute(writer_lease.DDL)
        conn.execute(landing_watch.DDL)
        roles.ensure_roles(conn, groups)
        roles.secure_zones(conn, {c.table: c.plain_attributor for c in contracts if c.plain_attributor}, groups)
        roles.limit_reader_sessions(conn)
