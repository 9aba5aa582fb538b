"""billing: Lemon Squeezy subscriptions and processed webhook events

Revision ID: 0014_billing
Revises: 0013_report_jobs
Create Date: 2026-11-26 14:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014_billing'
down_revision = '0013_report_jobs'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
