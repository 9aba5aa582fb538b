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
    op.create_table('billing_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_key', sa.String(length=64), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=True),
    sa.Column('event_name', sa.String(length=64), nullable=False),
    sa.Column('webhook_id', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=40), nullable=False),
    sa.Column('object_id', sa.String(length=64), nullable=False),
    sa.Column('object_updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('detail', sa.String(length=500), nullable=False),
    sa.Column('test_mode', sa.Boolean(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_billing_events_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_events')),
    sa.UniqueConstraint('event_key', name=op.f('uq_billing_events_event_key'))
    )
    with op.batch_alter_table('billing_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_events_org_id'), ['org_id'], unique=False)

    op.create_table('billing_payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('ls_invoice_id', sa.String(length=64), nullable=False),
    sa.Column('ls_subscription_id', sa.String(length=64), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('billing_reason', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=True),
    sa.Column('currency', sa.String(length=8), nullable=False),
    sa.Column('amount_formatted', sa.String(length=40), nullable=False),
    sa.Column('invoice_url', sa.Text(), nullable=False),
    sa.Column('ls_updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_billing_payments_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_payments')),
    sa.UniqueConstraint('ls_invoice_id', name=op.f('uq_billing_payments_ls_invoice_id'))
    )
    with op.batch_alter_table('billing_payments', schema=None) as batch_op:
        batch_op.create_index('ix_billing_payments_org_created', ['org_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_billing_payments_org_id'), ['org_id'], unique=False)

    op.create_table('billing_subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('ls_subscription_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('variant_id', sa.String(length=64), nullable=False),
    sa.Column('plan', sa.String(length=20), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('user_email', sa.String(length=320), nullable=False),
    sa.Column('product_name', sa.String(length=200), nullable=False),
    sa.Column('variant_name', sa.String(length=200), nullable=False),
    sa.Column('renews_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('trial_ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('portal_url', sa.Text(), nullable=False),
    sa.Column('update_payment_url', sa.Text(), nullable=False),
    sa.Column('ls_updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_event', sa.String(length=64), nullable=False),
    sa.Column('payment_state', sa.String(length=20), nullable=False),
    sa.Column('payment_state_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_billing_subscriptions_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_subscriptions')),
    sa.UniqueConstraint('ls_subscription_id', name=op.f('uq_billing_subscriptions_ls_subscription_id'))
    )
    with op.batch_alter_table('billing_subscriptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_subscriptions_org_id'), ['org_id'], unique=False)


def downgrade():
    with op.batch_alter_table('billing_subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billing_subscriptions_org_id'))

    op.drop_table('billing_subscriptions')
    with op.batch_alter_table('billing_payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billing_payments_org_id'))
        batch_op.drop_index('ix_billing_payments_org_created')

    op.drop_table('billing_payments')
    with op.batch_alter_table('billing_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billing_events_org_id'))

    op.drop_table('billing_events')
