"""dashboard: the stored figures of large projects, and an index the funnel needs

The funnel's "verified" stage counts subjects with a label a person decided: a partial index
on exactly those labels, by category (a project's labels are its taxonomy's categories) and
subject, answers it from the index alone. Even so the funnel of 100,000 subjects takes about a
second (bench/dashboard.py), so the beat computes it for large projects into
dashboard_figures and the page reads one row.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DECIDED = sa.text("state IN ('verified', 'gold')")


def upgrade() -> None:
    op.create_table(
        "dashboard_figures",
        sa.Column("project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=30), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_dashboard_figures_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "name", name=op.f("pk_dashboard_figures")),
    )
    op.create_index(
        "ix_labels_decided",
        "labels",
        ["category_id", "subject_id"],
        unique=False,
        postgresql_where=DECIDED,
        sqlite_where=DECIDED,
    )


def downgrade() -> None:
    op.drop_index("ix_labels_decided", table_name="labels")
    op.drop_table("dashboard_figures")
