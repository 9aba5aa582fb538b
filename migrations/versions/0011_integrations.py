"""integrations: provider connections (configuration, encrypted secrets, health, ingest token link)

Revision ID: 0011_integrations
Revises: 0010_notifications
Create Date: 2026-11-26 14:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_integrations'
down_revision = '0010_notifications'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
