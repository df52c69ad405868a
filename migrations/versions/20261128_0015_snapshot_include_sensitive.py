"""snapshot include_sensitive: an export says sensitive categories as its project did when it began

An export read the project's `include_sensitive` at its plan, at every part and at its finish. A
lead who changed the setting while an export ran, or before a failed one was resumed, got shards
that disagreed with each other and a manifest that disagreed with some of them. The snapshot now
keeps the setting as of its start, beside its marks and filters.

Snapshots taken before this migration get their project's current setting: what their next
part or resumption would have read.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28 11:00:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (SQLite has it for a column with a constant default): no table copy.
    op.add_column(
        "snapshots", sa.Column("include_sensitive", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    connection = op.get_bind()
    projects = sa.table("projects", sa.column("id", sa.Integer()), sa.column("settings", sa.JSON()))
    snapshots = sa.table(
        "snapshots", sa.column("project_id", sa.Integer()), sa.column("include_sensitive", sa.Boolean())
    )
    opted_in = []
    for project_id, settings in connection.execute(sa.select(projects.c.id, projects.c.settings)):
        if isinstance(settings, str):  # SQLite may hand back the JSON text
            settings = json.loads(settings)
        if isinstance(settings, dict) and settings.get("include_sensitive") is True:
            opted_in.append(project_id)
    if opted_in:
        connection.execute(
            sa.update(snapshots).where(snapshots.c.project_id.in_(opted_in)).values(include_sensitive=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.drop_column("include_sensitive")
