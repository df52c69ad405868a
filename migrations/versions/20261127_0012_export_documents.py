"""export documents: each subject's labels kept encoded as exports write them

An export spent most of its time reading every label as of its snapshot and encoding it
(docs/PERFORMANCE.md). A subject's encoded labels are now kept per export variant (taxonomy
version, label states, sensitive categories) with the high-water marks they were read at; an
export re-encodes only the subjects with a label event or prediction since. A snapshot also
notes, on Postgres, the id of the transaction that took it: documents are kept only once every
transaction up to it has ended (a lower label-event id may commit after a higher one).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.add_column(sa.Column("settles_after_xid", sa.BigInteger(), nullable=True))
    op.create_table(
        "export_documents",
        sa.Column("subject_id", _ID, nullable=False),
        sa.Column("variant", sa.String(length=200), nullable=False),
        sa.Column("label_event_high_water", _ID, nullable=False),
        sa.Column("prediction_high_water", _ID, nullable=False),
        sa.Column("states", sa.Text(), nullable=False),
        sa.Column("person_type", sa.String(length=200), nullable=True),
        sa.Column("caption", sa.Text(), nullable=False),
        sa.Column("aa_text", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subjects.id"],
            name=op.f("fk_export_documents_subject_id_subjects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subject_id", "variant", name=op.f("pk_export_documents")),
    )


def downgrade() -> None:
    op.drop_table("export_documents")
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("settles_after_xid")
