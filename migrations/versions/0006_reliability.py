"""services, SLOs, graphs

Revision ID: 0006_reliability
Revises: 0005_rca
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0006_reliability'
down_revision = '0005_rca'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
