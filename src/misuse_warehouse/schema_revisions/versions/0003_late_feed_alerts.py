"""Which overdue files have been alerted, and when: a late feed is alerted once, then again after a week.

Revision 0003, after 0002. Forward only: a revision has no downgrade (docs/operations.md, "Schema migrations").
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- one row per overdue file ever alerted: when first, when last (a check's London date), how often
        create table ops.late_feed_alerts (
            expected_submission_id text primary key,
            first_alerted_on date not null,
            last_alerted_on date not null,
            previous_alerted_on date,
            alerts integer not null check (alerts > 0),
            dag_run_id text
        );
        """
    )


def downgrade() -> None:
    raise NotImplementedError("forward only: restore the backup taken before the upgrade")
