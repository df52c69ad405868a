"""round activity: a finished round keeps the counts of the work that fed it

A round's activity (fields decided by people and auto-accepted, fields per person-hour, the
audited accuracy) is counted over its window, from the previous round's start to its own; the
window is closed once it starts, so the counts never change. `GET .../rounds` counted every
round's window on every call, seconds per round at 1,000,000 subjects (docs/PERFORMANCE.md);
a finished round now stores them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 08:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rounds") as batch:
        batch.add_column(
            sa.Column("activity", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("rounds") as batch:
        batch.drop_column("activity")
