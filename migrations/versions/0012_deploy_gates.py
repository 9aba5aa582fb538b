"""deploy gates: per-service gate rules and recorded gate decisions

Revision ID: 0012_deploy_gates
Revises: 0011_integrations
Create Date: 2026-11-26 14:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_deploy_gates'
down_revision = '0011_integrations'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
