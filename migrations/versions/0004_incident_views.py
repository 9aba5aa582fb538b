"""incident pages, API and exports

Revision ID: 0004_incident_views
Revises: 0003_ingest
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0004_incident_views'
down_revision = '0003_ingest'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
