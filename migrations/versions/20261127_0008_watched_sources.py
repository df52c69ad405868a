"""watched sources: an interval per source, a run's trigger, an item's fingerprint

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("watch_every_seconds", sa.Integer(), nullable=True))
    with op.batch_alter_table("ingest_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("trigger", sa.String(length=20), server_default="manual", nullable=False)
        )
    with op.batch_alter_table("ingest_items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fingerprint", sa.String(length=200), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("ingest_items", schema=None) as batch_op:
        batch_op.drop_column("fingerprint")
    with op.batch_alter_table("ingest_runs", schema=None) as batch_op:
        batch_op.drop_column("trigger")
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("watch_every_seconds")
