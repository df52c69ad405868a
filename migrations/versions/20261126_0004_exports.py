"""exports: frozen snapshot subjects, prediction high-water, export parts

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-26 23:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prediction_high_water", _ID, server_default="0", nullable=False))
        batch_op.add_column(sa.Column("subject_count", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "snapshot_subjects",
        sa.Column("snapshot_id", _ID, nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("subject_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_snapshot_subjects_snapshot_id_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("snapshot_id", "position", name=op.f("pk_snapshot_subjects")),
    )
    op.create_table(
        "export_parts",
        sa.Column("export_id", _ID, nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("first", sa.Integer(), nullable=False),
        sa.Column("stop", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("files", _JSON, nullable=False),
        sa.Column("counts", _JSON, nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["export_id"], ["exports.id"], name=op.f("fk_export_parts_export_id_exports"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_parts")),
        sa.UniqueConstraint("export_id", "index", name=op.f("uq_export_parts_export_id_index")),
    )


def downgrade() -> None:
    op.drop_table("export_parts")
    op.drop_table("snapshot_subjects")
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.drop_column("subject_count")
        batch_op.drop_column("prediction_high_water")
