"""Issue 35's ops tables and the analysts' schema, first written in the unversioned style.

Revision 0002, after 0001. Forward only: a revision has no downgrade (docs/operations.md, "Schema migrations").

`if not exists` throughout: the unversioned code of main between 86b29f4 and the merge of versioned
migrations created these in the demo and test warehouses, and the writer lease still creates its
table at the first lease in a warehouse migrated before it existed.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- analysts' own views on the marts: each publication recreates them on the new tables (publish.py)
        create schema if not exists analysts;

        -- views outside the marts that read them, as each publication found and recreated them
        create table if not exists ops.analyst_views (
            analyst_view_id bigint generated always as identity primary key,
            publication_id bigint not null,
            view_schema text not null,
            view_name text not null,
            view_owner text not null,
            definition text not null,
            is_recreated boolean not null,
            reason text,
            recorded_at timestamptz not null default now()
        );

        -- every holding of the one-writer lease (misuse_warehouse.writer_lease)
        create table if not exists ops.writer_leases (
            writer_lease_id bigint generated always as identity primary key,
            holder text not null,
            host text not null,
            pid integer not null,
            requested_at timestamptz not null,
            acquired_at timestamptz not null,
            released_at timestamptz,
            waited_for text
        );
        create index if not exists writer_leases_acquired on ops.writer_leases (acquired_at);

        -- files the landing watch has seen, and the monthly_pipeline run it started for each (landing_watch.py)
        create table if not exists ops.landing_files (
            landing_path text primary key,
            feed text not null,
            reporting_month date not null,
            file_bytes bigint not null,
            modified_ns bigint not null,
            file_sha256 text not null,
            first_seen_at timestamptz not null default now(),
            triggered_dag_run_id text,
            triggered_at timestamptz,
            trigger_count integer not null default 0
        );
        """
    )


def downgrade() -> None:
    raise NotImplementedError("forward only: restore the backup taken before the upgrade")
