"""review queue rank, assignee and gold answers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 15:31:43.618788
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('gold_answers',
    sa.Column('project_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('assignment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subject_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('category_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('value', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('gold_value', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('correct', sa.Boolean(), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], name=op.f('fk_gold_answers_assignment_id_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['category_id'], ['taxonomy_categories.id'], name=op.f('fk_gold_answers_category_id_taxonomy_categories'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_gold_answers_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subject_id'], ['subjects.id'], name=op.f('fk_gold_answers_subject_id_subjects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_gold_answers_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gold_answers')),
    sa.UniqueConstraint('assignment_id', 'category_id', name=op.f('uq_gold_answers_assignment_id_category_id'))
    )
    with op.batch_alter_table('gold_answers', schema=None) as batch_op:
        batch_op.create_index('ix_gold_answers_project_user', ['project_id', 'user_id'], unique=False)

    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('queue_rank', sa.Integer(), nullable=False, server_default='2'))
        batch_op.add_column(sa.Column('assignee_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.drop_index(batch_op.f('ix_assignments_queue'))
        batch_op.create_index('ix_assignments_queue', ['project_id', 'status', 'queue_rank', 'priority', 'id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_assignments_assignee_id_users'), 'users', ['assignee_id'], ['id'], ondelete='CASCADE')



def downgrade() -> None:
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_assignments_assignee_id_users'), type_='foreignkey')
        batch_op.drop_index('ix_assignments_queue')
        batch_op.create_index(batch_op.f('ix_assignments_queue'), ['project_id', 'status', 'kind', 'priority'], unique=False)
        batch_op.drop_column('assignee_id')
        batch_op.drop_column('queue_rank')

    with op.batch_alter_table('gold_answers', schema=None) as batch_op:
        batch_op.drop_index('ix_gold_answers_project_user')

    op.drop_table('gold_answers')
