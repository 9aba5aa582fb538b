"""Helpers for the deploy-gate tests: hand-built incidents, guardrails and rules at a fixed clock."""
from __future__ import annotations

import datetime as dt
import itertools

import sqlalchemy as sa

from zentro.audit.models import AuditEvent
from zentro.audit.service import SYSTEM
from zentro.automations.models import Guardrail
from zentro.extensions import db
from zentro.incidents.service import create_incident
from zentro.reliability.models import GateDecision, GateRule

# A Monday, noon UTC: the clock every gate test evaluates at.
NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)
HOUR = dt.timedelta(hours=1)
_names = itertools.count(1)


def add_incident(app, org_id: int, service_id: int | None, severity: str = "critical", *, status: str = "open",
                 started: dt.datetime = NOW - HOUR, ended: dt.datetime | None = None, title: str = "Errors") -> str:
    """An incident (status open unless given; resolved ones get resolved_at = ended). Returns INC-n."""
    with app.app_context():
        inc = create_incident(org_id, title=title, severity=severity, actor=SYSTEM, service_id=service_id,
                              started_at=started, now=started)
        inc.status = status
        if status in ("resolved", "closed"):
            inc.resolved_at = ended or started + dt.timedelta(minutes=10)
        db.session.commit()
        ref = inc.ref
        db.session.remove()
    return ref


def add_guardrail(app, org_id: int, kind: str, params: dict, service_id: int | None = None,
                  enabled: bool = True, name: str = "") -> int:
    with app.app_context():
        g = Guardrail(org_id=org_id, kind=kind, params=params, service_id=service_id, enabled=enabled,
                      name=f"{name or kind} #{next(_names)}")  # names are unique per org
        db.session.add(g)
        db.session.commit()
        gid = g.id
        db.session.remove()
    return gid


def freeze(app, org_id: int, starts: dt.datetime, ends: dt.datetime, service_id: int | None = None) -> int:
    iso = lambda d: d.isoformat().replace("+00:00", "Z")  # noqa: E731
    return add_guardrail(app, org_id, "change_freeze", {"starts_at": iso(starts), "ends_at": iso(ends),
                                                        "reason": "quarter close"}, service_id, name="Q1 freeze")


def window(app, org_id: int, weekdays: list[str], start: str, end: str, service_id: int | None = None) -> int:
    return add_guardrail(app, org_id, "maintenance_window",
                         {"weekdays": weekdays, "start": start, "end": end, "tz": "UTC", "block_outside": False},
                         service_id, name="deploy window")


def gate_rows(app, org_id: int) -> tuple[list[GateDecision], list[AuditEvent]]:
    """(stored decisions, gate.evaluated audit events) of the org, oldest first, detached."""
    with app.app_context():
        decisions = list(db.session.scalars(sa.select(GateDecision).where(GateDecision.org_id == org_id)
                                            .order_by(GateDecision.id)))
        events = list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.org_id == org_id,
                                                                     AuditEvent.action == "gate.evaluated")
                                         .order_by(AuditEvent.seq)))
        db.session.expunge_all()
        db.session.remove()
    return decisions, events


def rule_row(app, org_id: int, service_id: int) -> dict | None:
    with app.app_context():
        row = db.session.scalar(sa.select(GateRule).where(GateRule.org_id == org_id, GateRule.service_id == service_id))
        out = None if row is None else {c.name: getattr(row, c.name) for c in GateRule.__table__.columns}
        db.session.remove()
    return out


def audit_actions(app, org_id: int, prefix: str = "gate.") -> list[AuditEvent]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.org_id == org_id,
                                                                   AuditEvent.action.startswith(prefix))
                                       .order_by(AuditEvent.seq)))
        db.session.expunge_all()
        db.session.remove()
    return rows
