"""ingest: alert and vulnerability ingest

Revision ID: 0003_ingest
Revises: 0002_incidents
"""
from alembic import op
import sqlalchemy as sa

revision = '0003_ingest'
down_revision = '0002_incidents'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('description', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('cvss', sa.Float(), nullable=True))
        batch_op.create_index('ix_findings_org_service', ['org_id', 'service_id'], unique=False)


def downgrade():
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.drop_index('ix_findings_org_service')
        batch_op.drop_column('cvss')
        batch_op.drop_column('description')
