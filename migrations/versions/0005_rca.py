"""RCA runs

Revision ID: 0005_rca
Revises: 0004_incident_views
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0005_rca'
down_revision = '0004_incident_views'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
