"""export refresh marks: the beat's refresh reads what changed since its last complete one

The refresh of kept export documents asked, for every subject of a project on every beat,
whether it had a label and a current document: about 9 us a subject, seconds a beat for a
million. It now keeps, per project and document variant, the marks of its last complete walk;
as of them every labelled subject had a document that stood for them, and only label events and
predictions since can change that, so the next refresh reads those subjects alone.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "export_refresh_marks",
        sa.Column("project_id", _ID, nullable=False),
        sa.Column("variant", sa.String(length=200), nullable=False),
        sa.Column("label_event_high_water", _ID, nullable=False),
        sa.Column("prediction_high_water", _ID, nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_export_refresh_marks_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "variant", name=op.f("pk_export_refresh_marks")),
    )


def downgrade() -> None:
    op.drop_table("export_refresh_marks")
