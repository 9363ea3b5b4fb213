"""Baseline: the warehouse schema exactly as the unversioned migrations.py made it (main at 86b29f4, 2026-12-07).

Frozen: the raw tables are written out here as the contracts of that day made them, so a later
contract change needs a revision of its own (tests/test_schema_migrations.py fails until it has one).

Every statement is idempotent (`if not exists`) on purpose. The unversioned code ran this same DDL
before every run, so a warehouse it made is recognised (migrations.migrate), taken through this
revision and stamped: on a warehouse of 86b29f4 nothing is created or altered (the tests compare
table oids and checksums), and a warehouse of an earlier unversioned vintage gets what that code
would have added (ops.disclosure_audits, ops.reference_data_loads, the stored ages). Roles, grants
and the analyst area look-up are not here: they are re-applied after every upgrade (roles.py).
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ZONES = """
create schema if not exists raw;
create schema if not exists ops;
create schema if not exists marts;
create schema if not exists marts_person;
"""

BASE = """create table if not exists raw.submissions (
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

# One raw table per feed contract, provenance first: the contracts of 2026-12-07 (migrations.raw_table_ddl).
RAW_TABLES = """
create table if not exists raw."cj_returns" (
    submission_id bigint not null references raw.submissions,
    source_row integer not null,
    "period_month" date,
    "area_code" text,
    "agency" text,
    "measure" text,
    "value" integer,
    primary key (submission_id, source_row)
);

create table if not exists raw."contract_register_rows" (
    submission_id bigint not null references raw.submissions,
    source_row integer not null,
    "contract_id" text,
    "provider_code" text,
    "provider_name" text,
    "area_code" text,
    "service_line" text,
    "start_date" date,
    "end_date" date,
    "extension_end_date" date,
    "annual_value_gbp" numeric(14, 2),
    "status" text,
    primary key (submission_id, source_row)
);

create table if not exists raw."fingertips_values" (
    submission_id bigint not null references raw.submissions,
    source_row integer not null,
    "indicator_id" text,
    "indicator_name" text,
    "unit_label" text,
    "child_area_type_id" integer,
    "area_code" text,
    "area_name" text,
    "area_type" text,
    "parent_code" text,
    "parent_name" text,
    "sex" text,
    "age" text,
    "category_type" text,
    "category" text,
    "time_period" text,
    "time_period_sortable" integer,
    "time_period_range" text,
    "value" numeric,
    "lower_ci_95" numeric,
    "upper_ci_95" numeric,
    "lower_ci_99_8" numeric,
    "upper_ci_99_8" numeric,
    "count" numeric,
    "denominator" numeric,
    "value_note" text,
    "recent_trend" text,
    "compared_to_england" text,
    "compared_to_parent" text,
    "parent_comparison_label" text,
    "compared_to_goal" text,
    "new_data" text,
    primary key (submission_id, source_row)
);

create table if not exists raw."funding_ledger_lines" (
    submission_id bigint not null references raw.submissions,
    source_row integer not null,
    "period_month" date,
    "line_id" text,
    "area_code" text,
    "cost_centre" text,
    "contract_id" text,
    "provider_code" text,
    "funding_stream" text,
    "service_line" text,
    "budget_gbp" numeric(14, 2),
    "actual_gbp" numeric(14, 2),
    primary key (submission_id, source_row)
);

create table if not exists raw."grant_allocations" (
    submission_id bigint not null references raw.submissions,
    source_row integer not null,
    "financial_year" text,
    "area_code" text,
    "funding_stream" text,
    "allocation_gbp" numeric(14, 2),
    "ring_fenced_gbp" numeric(14, 2),
    primary key (submission_id, source_row)
);

create table if not exists raw."prison_releases" (
    submission_id bigint not null references raw.submissions,
    source_row integer not null,
    "release_id" text,
    "release_date" date,
    "prison_code" text,
    "area_code" text,
    "client_initials" text,
    "client_dob" date,
    "client_sex" text,
    "treatment_need" text,
    "treated_in_custody" text,
    "referred_to_community" text,
    person_key text,
    "age_at_release" integer,
    primary key (submission_id, source_row)
);

create table if not exists raw."treatment_episodes" (
    submission_id bigint not null references raw.submissions,
    source_row integer not null,
    "submission_month" date,
    "provider_code" text,
    "episode_id" text,
    "area_code" text,
    "client_initials" text,
    "client_dob" date,
    "client_sex" text,
    "ethnicity" text,
    "service_type" text,
    "substance_group" text,
    "primary_substance" text,
    "injecting_status" text,
    "referral_source" text,
    "referral_date" date,
    "triage_date" date,
    "first_intervention_date" date,
    "modality" text,
    "discharge_date" date,
    "discharge_reason" text,
    "top_start_days_used" integer,
    "top_review_days_used" integer,
    "housing_problem" text,
    person_key text,
    "age_at_referral" integer,
    primary key (submission_id, source_row)
);
"""

# Street crimes pulled from data.police.uk (police.py): not a file feed, so no contract drives it.
POLICE = """create table if not exists raw.police_crimes (
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

# Run observability (observe.py), late and missing feeds (deadlines.py), seed loads (reference_data.py).
OPERATIONS = """create table if not exists ops.task_runs (
    task_run_id bigint generated always as identity primary key,
    dag_run_id text,
    task_id text not null,
    layer text not null,
    target text,
    status text not null,
    started_at timestamptz not null,
    ended_at timestamptz not null,
    seconds numeric(12, 3) not null,
    rows_in bigint,
    rows_out bigint,
    detail jsonb
);
create index if not exists task_runs_run on ops.task_runs (dag_run_id);

create table if not exists ops.gate_results (
    gate_result_id bigint generated always as identity primary key,
    dag_run_id text,
    checked_at timestamptz not null default now(),
    gate text not null check (gate in ('raw', 'marts')),
    suite text not null,
    target text not null,
    submission_id bigint,
    expectation text not null,
    rule text not null,
    dimension text,
    columns text[] not null,
    is_success boolean not null,
    element_count bigint,
    unexpected_count bigint,
    unexpected_percent numeric
);
create index if not exists gate_results_run on ops.gate_results (dag_run_id);

create table if not exists ops.layer_rows (
    dag_run_id text not null,
    measured_at timestamptz not null default now(),
    layer text not null,
    table_name text not null,
    row_count bigint not null,
    primary key (dag_run_id, layer, table_name)
);

-- The mart gate's disclosure audit, one row per role audited (misuse_warehouse.disclosure_audit).
create table if not exists ops.disclosure_audits (
    disclosure_audit_id bigint generated always as identity primary key,
    dag_run_id text,
    audited_at timestamptz not null default now(),
    role_name text not null,
    areas integer not null,
    cells_checked integer not null,
    cells_disclosed integer not null,
    narrowest_cell text,
    narrowest_lowest integer,
    narrowest_highest integer,
    findings jsonb not null
);
create index if not exists disclosure_audits_run on ops.disclosure_audits (dag_run_id);
create table if not exists ops.submission_status (
    expected_submission_id text primary key,
    feed text not null,
    source_code text not null,
    area_code text not null,
    reporting_month date not null,
    due_date date not null,
    status text not null check (status in ('on_time', 'late', 'not_due', 'overdue')),
    submission_id bigint,
    received_at timestamptz,
    days_late integer,
    checked_at timestamptz not null default now()
);
create table if not exists ops.reference_data_loads (
    reference_data_load_id bigint generated always as identity primary key,
    fingerprint text not null,
    seed_names text[] not null,
    loaded_at timestamptz not null default now(),
    dag_run_id text
);
"""

# Ages derived from the date of birth, stored so the date of birth can be purged after retention:
# (raw table, age column, as at, date of birth). Raw tables made before 2026-11-24 lack them.
STORED_AGES = [
    ("prison_releases", "age_at_release", "release_date", "client_dob"),
    ("treatment_episodes", "age_at_referral", "referral_date", "client_dob"),
]


def upgrade() -> None:
    for ddl in (ZONES, BASE, RAW_TABLES, POLICE, OPERATIONS):
        op.execute(ddl)
    for table, age, on, dob in STORED_AGES:
        op.execute(
            f"""
            do $$ begin
                if not exists (select from information_schema.columns
                               where table_schema = 'raw' and table_name = '{table}' and column_name = '{age}') then
                    alter table raw.{table} add column {age} integer;
                    update raw.{table} set {age} = extract(year from age({on}, {dob}))::integer;
                end if;
            end $$
            """
        )


def downgrade() -> None:
    raise NotImplementedError("forward only: restore the backup taken before the upgrade")
