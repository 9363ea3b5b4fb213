"""Schemas and audit tables the pipeline needs before any file arrives. Idempotent."""

from __future__ import annotations

import psycopg

from misuse_warehouse import deadlines, observe
from misuse_warehouse.contracts import Contract, all_contracts

BASE_DDL = """
create schema if not exists raw;
create schema if not exists ops;
create schema if not exists marts;

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


def raw_table_ddl(contract: Contract) -> str:
    """The append-only raw table of a feed: contract columns, typed, plus provenance."""
    columns = ",\n    ".join(f"{c.name} {c.pg_type}" for c in contract.columns)
    pseudonym = ",\n    person_key text" if contract.attributor else ""
    return f"""
create table if not exists raw.{contract.table} (
    submission_id bigint not null references raw.submissions,
    source_row integer not null,
    {columns}{pseudonym},
    primary key (submission_id, source_row)
)"""


def migrate(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('misuse_warehouse.migrate'))")
        conn.execute(BASE_DDL)
        for contract in all_contracts().values():
            conn.execute(raw_table_ddl(contract))
        conn.execute(POLICE_DDL)
        conn.execute(observe.DDL)
        conn.execute(deadlines.DDL)
