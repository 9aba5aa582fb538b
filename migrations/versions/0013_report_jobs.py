"""generated reports: report jobs and their stored artifacts

Revision ID: 0013_report_jobs
Revises: 0012_deploy_gates
Create Date: 2026-11-26 14:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013_report_jobs'
down_revision = '0012_deploy_gates'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
