"""RCA runs: summary (inputs and what was examined) and updated_at (worker heartbeat)

Revision ID: 0005_rca
Revises: 0004_incident_views
"""
from alembic import op
import sqlalchemy as sa

revision = '0005_rca'
down_revision = '0004_incident_views'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('rca_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('summary', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('rca_runs', schema=None) as batch_op:
        batch_op.drop_column('updated_at')
        batch_op.drop_column('summary')
