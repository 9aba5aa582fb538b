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
    op.create_table('gate_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('block_severities', sa.JSON(), nullable=False),
    sa.Column('include_dependencies', sa.Boolean(), nullable=False),
    sa.Column('error_budget', sa.Boolean(), nullable=False),
    sa.Column('min_remaining_percent', sa.Float(), nullable=False),
    sa.Column('freeze', sa.Boolean(), nullable=False),
    sa.Column('require_maintenance_window', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_gate_rules_org_id_orgs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_gate_rules_service_id_services'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gate_rules')),
    sa.UniqueConstraint('org_id', 'service_id', name=op.f('uq_gate_rules_org_id_service_id'))
    )
    with op.batch_alter_table('gate_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gate_rules_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_gate_rules_service_id'), ['service_id'], unique=False)

    op.create_table('gate_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=True),
    sa.Column('service_name', sa.String(length=100), nullable=False),
    sa.Column('decision', sa.String(length=10), nullable=False),
    sa.Column('checks', sa.JSON(), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.Column('actor_type', sa.String(length=20), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=False),
    sa.Column('actor_label', sa.String(length=320), nullable=False),
    sa.Column('audit_event_id', sa.Integer(), nullable=True),
    sa.Column('evaluated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_gate_decisions_org_id_orgs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_gate_decisions_service_id_services'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gate_decisions'))
    )
    with op.batch_alter_table('gate_decisions', schema=None) as batch_op:
        batch_op.create_index('ix_gate_decisions_org_service', ['org_id', 'service_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_gate_decisions_org_id'), ['org_id'], unique=False)


def downgrade():
    with op.batch_alter_table('gate_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gate_decisions_org_id'))
        batch_op.drop_index('ix_gate_decisions_org_service')
    op.drop_table('gate_decisions')
    with op.batch_alter_table('gate_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gate_rules_service_id'))
        batch_op.drop_index(batch_op.f('ix_gate_rules_org_id'))
    op.drop_table('gate_rules')
