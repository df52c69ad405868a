"""label-event and prediction ids drawn only once their transaction holds its id (Postgres)

An export's snapshot reads the highest label-event and prediction ids, then its own transaction
id; a part keeps what it reads only once every transaction up to that one has ended
(`snapshots.settles_after_xid`). A transaction gets its id at its first write, and an INSERT's
column default runs before the row is written: the first row a transaction inserts drew its id
from the sequence while the transaction had none. A snapshot taken in between, once a higher id
had committed, would not wait for it, and its row, below the snapshot's mark, could commit after
a part had read past it. The ids now come from `aa_id_after_transaction_id`, which gives the
transaction its id first. SQLite writes one transaction at a time and needs none of this.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 23:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("label_events", "predictions")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # CASE evaluates its condition first: the transaction id is given out before nextval runs.
    op.execute(
        """
        CREATE FUNCTION aa_id_after_transaction_id(sequence regclass) RETURNS bigint
        LANGUAGE sql VOLATILE AS
        $$ SELECT CASE WHEN pg_current_xact_id() IS NOT NULL THEN nextval(sequence) END $$
        """
    )
    for table in _TABLES:
        op.execute(
            f"ALTER TABLE {table} ALTER COLUMN id "
            f"SET DEFAULT aa_id_after_transaction_id('{table}_id_seq'::regclass)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{table}_id_seq'::regclass)")
    op.execute("DROP FUNCTION aa_id_after_transaction_id(regclass)")
