"""Plain helpers for the assessor-access, retention and governance tests (no fixtures, so nothing
collides with another package's conftest)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from zentro.audit.models import AuditEvent, AuditTag, PurgeCheckpoint
from zentro.audit.service import SYSTEM, Actor, record
from zentro.extensions import db
from zentro.incidents import service as incidents
from zentro.incidents.models import Incident

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
TEST_ACTOR = Actor("system", "", "test")


def make_assessor_token(org_id: int) -> int:
    """Isolation-harness factory (needs an app context): an active assessor token of the org."""
    from zentro.compliance.assessor import create_token

    tok, _ = create_token(org_id, "ALPHA-PRIVATE assessor", ["crosswalk", "evidence-export"], 30, SYSTEM)
    return tok.id


def new_token(app, org_id: int, resources: list[str], days: int = 30, name: str = "Audit firm") -> tuple[int, str]:
    from zentro.compliance.assessor import create_token

    with app.app_context():
        tok, plaintext = create_token(org_id, name, resources, days, SYSTEM)
        tok_id = tok.id
        db.session.remove()
    return tok_id, plaintext


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def audit_at(org_id: int, when: dt.datetime, action: str = "test.event", *, target_type: str = "", target_id: object = "",
             tags: tuple[str, ...] = ("SOC2:CC7.2",), data: dict | None = None) -> AuditEvent:
    """One audit row with an injected time (app context; the caller commits)."""
    return record(org_id, action, TEST_ACTOR, target_type=target_type, target_id=target_id, control_tags=tags,
                  data=data, now=when)


def incident(org_id: int, when: dt.datetime, *, status: str = "open", hold: bool = False, title: str = "Checkout 5xx",
             dedupe_key: str | None = None) -> Incident:
    """An incident opened at ``when`` and walked to ``status`` at ``when`` (app context; caller commits)."""
    inc = incidents.create_incident(org_id, title=title, severity="high", actor=TEST_ACTOR, dedupe_key=dedupe_key, now=when)
    for to in {"open": [], "resolved": ["resolved"], "closed": ["resolved", "closed"]}[status]:
        incidents.transition(inc, to, TEST_ACTOR, now=when)
    if hold:
        incidents.set_legal_hold(inc, True, TEST_ACTOR)
    db.session.flush()
    return inc


def seqs(org_id: int) -> list[int]:
    return list(db.session.scalars(select(AuditEvent.seq).where(AuditEvent.org_id == org_id).order_by(AuditEvent.seq)))


def checkpoints(org_id: int) -> list[tuple[int, int, str, int]]:
    return [(c.from_seq, c.to_seq, c.last_hash, c.purged_events) for c in db.session.scalars(
        select(PurgeCheckpoint).where(PurgeCheckpoint.org_id == org_id).order_by(PurgeCheckpoint.from_seq))]


def tag_rows(event_ids: list[int]) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditTag).where(AuditTag.event_id.in_(event_ids))) or 0


def actions(org_id: int, action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.org_id == org_id, AuditEvent.action == action)
                                   .order_by(AuditEvent.seq)))
