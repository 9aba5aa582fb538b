"""ingest: alert and vulnerability ingest

Revision ID: 0003_ingest
Revises: 0002_incidents
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0003_ingest'
down_revision = '0002_incidents'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
