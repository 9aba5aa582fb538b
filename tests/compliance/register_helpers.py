"""Helpers and fixtures for the register tests (attestations, exceptions, policies, vendors), plus the
tenant-isolation factories ``make_<model>(org_id) -> id`` (they add and flush; the caller commits).

Test modules import the fixtures by name (pytest picks up fixtures a test module imports)."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from zentro.audit.service import Actor, record
from zentro.extensions import db

T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
TEST_ACTOR = Actor("system", "", "test")
ATTESTATIONS = "/api/governance/compliance/attestations"
EXCEPTIONS = "/api/governance/compliance/exceptions"
POLICIES = "/api/governance/compliance/policies"
VENDORS = "/api/governance/third-party/vendors"


def iso(d: dt.datetime) -> str:
    return d.isoformat().replace("+00:00", "Z")


class Api:
    """A test client speaking JSON with an API key."""

    def __init__(self, client, key: str):
        self.client, self.headers = client, {"Authorization": f"Bearer {key}"}

    def __getattr__(self, method):
        def call(url, json=None, **kw):
            return self.client.open(url, method=method.upper(), json=json,
                                    headers={**self.headers, **kw.pop("headers", {})}, **kw)
        return call


def error_of(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["error_code"] == code and body["detail"], body
    return body


def tag_events(app, org_id: int, tags, at: dt.datetime, n: int = 1, action: str = "test.evidence") -> list[int]:
    """Record ``n`` audit events carrying ``tags`` at ``at``; returns their ids."""
    with app.app_context():
        ids = [record(org_id, action, TEST_ACTOR, control_tags=tags, now=at).id for _ in range(n)]
        db.session.commit()
        db.session.remove()
    return ids


def count_statements(engine, needle: str):
    """Context manager counting executed SQL statements that mention ``needle``."""
    import contextlib

    @contextlib.contextmanager
    def counting():
        seen: list[str] = []

        def listen(conn, cursor, statement, *args):
            if needle in statement:
                seen.append(statement)

        sa.event.listen(engine, "before_cursor_execute", listen)
        try:
            yield seen
        finally:
            sa.event.remove(engine, "before_cursor_execute", listen)

    return counting()


# --- fixtures -------------------------------------------------------------------------------------

@pytest.fixture
def owner(make_member):
    return make_member("acme", "owner", plan="enterprise")


@pytest.fixture
def admin(owner, make_member):
    return make_member("acme", "admin", plan="enterprise")


@pytest.fixture
def member(owner, make_member):
    return make_member("acme", "member", plan="enterprise")


@pytest.fixture
def viewer(owner, make_member):
    return make_member("acme", "viewer", plan="enterprise")


@pytest.fixture
def stranger(make_member):
    """The owner of another organisation."""
    return make_member("globex", "owner", plan="enterprise")


@pytest.fixture
def api(app, owner, make_api_key):
    return Api(app.test_client(), make_api_key(owner))


@pytest.fixture
def admin_api(app, admin, make_api_key):
    return Api(app.test_client(), make_api_key(admin))


@pytest.fixture
def member_api(app, member, make_api_key):
    return Api(app.test_client(), make_api_key(member))


@pytest.fixture
def viewer_api(app, viewer, make_api_key):
    return Api(app.test_client(), make_api_key(viewer))


@pytest.fixture
def other_api(app, stranger, make_api_key):
    return Api(app.test_client(), make_api_key(stranger))


@pytest.fixture
def rows(app):
    """rows(table, **equals) → count of matching rows."""

    def n(table: str, **where) -> int:
        with app.app_context():
            q = f'SELECT COUNT(*) FROM "{table}"'
            if where:
                q += " WHERE " + " AND ".join(f"{k} = :{k}" for k in where)
            return db.session.scalar(sa.text(q), where)

    return n


@pytest.fixture
def snapshot(app):
    """snapshot() → the register tables and the audit log as they are (to assert nothing changed)."""

    def take() -> dict:
        with app.app_context():
            out = {}
            for table in ("attestations", "control_exceptions", "policies", "vendors", "audit_events"):
                out[table] = [tuple(r) for r in db.session.execute(sa.text(f'SELECT * FROM "{table}" ORDER BY id'))]
            db.session.remove()
            return out

    return take


# --- tenant-isolation factories (tests/platform/test_isolation.py FACTORIES) ------------------------

MARK = "ALPHA-PRIVATE"  # the isolation harness looks for this string in other orgs' answers


def make_attestation(org_id: int, owner_id: int | None = None) -> int:
    """An attested attestation (so attest and reject both have something to act on)."""
    from zentro.compliance.models import Attestation
    from zentro.platform.types import utcnow

    now = utcnow()
    row = Attestation(org_id=org_id, control="SOC2:CC6.1", owner_id=owner_id, status="attested", due_at=now + 30 * DAY,
                      attested_at=now, attested_by_id=owner_id, valid_until=now + 90 * DAY, note=f"{MARK} note",
                      evidence=[{"kind": "url", "ref": "https://wiki.example.com/isolation-probe"}])
    db.session.add(row)
    db.session.flush()
    return row.id


def make_control_exception(org_id: int, approver_id: int | None = None) -> int:
    from zentro.compliance.models import ControlException
    from zentro.platform.types import utcnow

    row = ControlException(org_id=org_id, control="ISO27001:A.8.8", reason=f"{MARK} reason",
                           compensating_control=f"{MARK} compensating", approver_id=approver_id, status="open",
                           expires_at=utcnow() + 30 * DAY)
    db.session.add(row)
    db.session.flush()
    return row.id


def make_policy(org_id: int) -> int:
    from zentro.compliance.models import Policy

    row = Policy(org_id=org_id, name=f"{MARK} policy {uuid.uuid4().hex[:8]}", description=f"{MARK} description",
                 status="draft", control_tags="SOC2:CC6.2", actions=["revoke_access"])
    db.session.add(row)
    db.session.flush()
    return row.id


def make_vendor(org_id: int) -> int:
    from zentro.compliance.models import Vendor
    from zentro.compliance.vendors import load_rules
    from zentro.platform.types import utcnow

    now = utcnow()
    row = Vendor(org_id=org_id, name=f"{MARK} vendor {uuid.uuid4().hex[:8]}", category="cloud-infrastructure",
                 risk_tier="high", report_type="soc2-type-ii", report_expires_at=now + 200 * DAY,
                 inherited_controls=load_rules().inherited("cloud-infrastructure", "soc2-type-ii"),
                 next_review_at=now + 180 * DAY, notes=f"{MARK} notes", created_at=now)
    db.session.add(row)
    db.session.flush()
    return row.id
