"""compliance revisions: a per-org value that database triggers change with every write to the source rows of
derived compliance data, so a cache of that data can tell in one indexed read whether it is still current

Revision ID: 0009_compliance_revisions
Revises: 0008_compliance_analytics
Create Date: 2026-11-26 05:11:46.315504

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_compliance_revisions'
down_revision = '0008_compliance_analytics'
branch_labels = None
depends_on = None

# Keep in step with zentro.compliance.derived_cache.WATCHED_TABLES.
WATCHED_TABLES = ("attestations", "vendors", "audit_checkpoints", "evidence_requests", "policies",
                  "control_exceptions")
EVENTS = (("insert", "NEW"), ("update", "NEW"), ("delete", "OLD"))

# PostgreSQL: one statement-level trigger per table and event, reading the changed rows' orgs from the transition
# table (a bulk INSERT of 60k rows touches the revision row once, not 60k times).
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION zentro_touch_compliance_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO compliance_revisions (org_id, revision)
    SELECT o, floor(random() * 4e18)::bigint FROM (SELECT DISTINCT org_id AS o FROM changed_rows) AS orgs
    ON CONFLICT (org_id) DO UPDATE SET revision = EXCLUDED.revision;
    RETURN NULL;
END $$
"""


def _name(table: str, event: str) -> str:
    return f"zentro_rev_{table}_{event}"


def upgrade():
    op.create_table('compliance_revisions',
    sa.Column('org_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('revision', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('org_id', name=op.f('pk_compliance_revisions'))
    )
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(PG_FUNCTION)
        for table in WATCHED_TABLES:
            for event, side in EVENTS:
                op.execute(f"CREATE TRIGGER {_name(table, event)} AFTER {event.upper()} ON {table} "
                           f"REFERENCING {side} TABLE AS changed_rows FOR EACH STATEMENT "
                           f"EXECUTE FUNCTION zentro_touch_compliance_revision()")
        random_value = "floor(random() * 4e18)::bigint"
    elif dialect == "sqlite":
        for table in WATCHED_TABLES:
            for event, side in EVENTS:
                op.execute(f"CREATE TRIGGER {_name(table, event)} AFTER {event.upper()} ON {table} BEGIN "
                           f"INSERT INTO compliance_revisions (org_id, revision) VALUES ({side}.org_id, random()) "
                           f"ON CONFLICT (org_id) DO UPDATE SET revision = excluded.revision; END")
        random_value = "random()"
    else:  # pragma: no cover - Zentro runs on SQLite and PostgreSQL only
        raise RuntimeError(f"no compliance revision triggers for {dialect}")
    # Orgs with data from before the triggers get a revision now (a missing row means "never written").
    op.execute(f"INSERT INTO compliance_revisions (org_id, revision) SELECT id, {random_value} FROM orgs")


def downgrade():
    dialect = op.get_bind().dialect.name
    for table in WATCHED_TABLES:
        for event, _ in EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS {_name(table, event)}" + (f" ON {table}" if dialect == "postgresql" else ""))
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS zentro_touch_compliance_revision()")
    op.drop_table('compliance_revisions')
