"""${message}

Revision ${up_revision}, after ${down_revision | comma,n}, written ${create_date}.
Forward only: a revision has no downgrade (docs/operations.md, "Schema migrations").
"""

from __future__ import annotations

from alembic import op

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    # lowercase SQL, e.g. op.execute('alter table raw.treatment_episodes add column "new_column" text')
    raise NotImplementedError("revision ${up_revision}: write its SQL")


def downgrade() -> None:
    raise NotImplementedError("forward only: restore the backup taken before the upgrade")
