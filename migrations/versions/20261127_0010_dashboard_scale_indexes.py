"""dashboard at scale: two indexes the dashboard's reads need at 1,000,000 subjects

Measured by bench/scale.py (1,000,000 subjects x 20 categories; docs/PERFORMANCE.md):

- The dashboard's annotators table, its work chart and the queue stats aggregate every
  assignment of a project; they read the whole table by a sequential scan (wide rows: category
  ids, lease and skip columns), 0.6 to 1.2 s each. An index on (project, status, kind) that
  carries the few columns those aggregates read answers them from the index alone (Postgres;
  SQLite has no INCLUDE and keeps the key columns).
- The flywheel panel's audit accuracy looks for the audits of auto-accepted fields among all
  label events (26,000,000 rows: one per pre-label and decision), 1.4 s by a sequential scan.
  A partial index on the events that moved an auto-accepted label (audits and re-routes, a
  small share) finds them directly and costs nothing on the other writes.

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-27 07:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CARRIED = ["submitted_by_id", "submitted_at", "created_at", "lead_time_ms", "changed_fields", "subject_id"]
FROM_AUTO_ACCEPTED = sa.text("from_state = 'auto_accepted'")


def upgrade() -> None:
    op.create_index(
        "ix_assignments_project_status_kind",
        "assignments",
        ["project_id", "status", "kind"],
        unique=False,
        postgresql_include=CARRIED,
    )
    op.create_index(
        "ix_label_events_from_auto_accepted",
        "label_events",
        ["reason", "subject_id"],
        unique=False,
        postgresql_where=FROM_AUTO_ACCEPTED,
        sqlite_where=FROM_AUTO_ACCEPTED,
    )


def downgrade() -> None:
    op.drop_index("ix_label_events_from_auto_accepted", table_name="label_events")
    op.drop_index("ix_assignments_project_status_kind", table_name="assignments")
