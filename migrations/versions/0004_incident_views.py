"""incident pages, API and exports: an (org_id, id) index for newest-first lists over every status

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
    op.create_index("ix_incidents_org_id", "incidents", ["org_id", "id"])


def downgrade():
    op.drop_index("ix_incidents_org_id", table_name="incidents")
