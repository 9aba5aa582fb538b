"""Demo incidents for the demo org: five realistic incidents in every state, created through the
incident service (so each has its timeline and audit rows). Idempotent: an org that already has any of
them is left alone. Services are not created here: an incident names a service only when the org
already has one by that name (the reliability demo's topology), so seed services first."""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Callable

from sqlalchemy import func, select, update

from zentro.audit.service import Actor
from zentro.extensions import db
from zentro.incidents import service
from zentro.incidents.models import Alert, Incident, TimelineEvent
from zentro.platform.types import utcnow

INGEST = Actor("system", "", "alert ingest (demo)")


def _at(inc: Incident, when: dt.datetime, call: Callable[[], object]) -> object:
    """Run a service call whose timeline event takes no ``now`` and date that event ``when``."""
    db.session.flush()
    last = db.session.scalar(select(func.max(TimelineEvent.id)).where(TimelineEvent.incident_id == inc.id)) or 0
    result = call()
    db.session.flush()
    db.session.execute(update(TimelineEvent).where(TimelineEvent.incident_id == inc.id, TimelineEvent.id > last)
                       .values(created_at=when))
    return result


def _alert(org_id: int, inc: Incident, *, source: str, key: str, title: str, severity: str, service_name: str,
           when: dt.datetime, status: str = "firing", labels: dict | None = None) -> None:
    delivery = hashlib.sha256(f"{source}|{key}|{status}|{when.isoformat()}".encode()).hexdigest()
    db.session.add(Alert(org_id=org_id, incident_id=inc.id, source=source, dedupe_key=key, delivery_key=delivery,
                         status=status, severity=severity, title=title, service_name=service_name,
                         labels=labels or {}, raw={"demo": True, "title": title, "status": status},
                         starts_at=when, received_at=when))


def _fold(org_id: int, *, key: str, title: str, severity: str, service_id: int | None, service_name: str,
          when: dt.datetime, source: str = "alertmanager", labels: dict | None = None) -> Incident:
    folded = service.open_or_absorb(org_id, dedupe_key=key, title=title, severity=severity, actor=INGEST, source=source,
                                    service_id=service_id, body=f"{source}: {title}", data={"labels": labels or {}},
                                    started_at=when, now=when)
    db.session.flush()
    _alert(org_id, folded.incident, source=source, key=key, title=title, severity=severity, service_name=service_name,
           when=when, labels=labels)
    return folded.incident


TITLES = (
    "payments-api p99 latency above 2 s",
    "Webhook deliveries failing (TLS handshake errors)",
    "Elevated 5xx rate on api-gateway",
    "Nightly database backup missed its window",
    "Partner portal CSV exports timing out for EU tenants",
)


def seed_incidents(org_id: int, now: dt.datetime | None = None) -> int:
    """Create the demo incidents; returns how many were created (0 when the org already has them)."""
    if db.session.scalar(select(Incident.id).where(Incident.org_id == org_id, Incident.title.in_(TITLES))
                         .limit(1)) is not None:
        return 0
    now = now or utcnow()
    ago = lambda **kw: now - dt.timedelta(**kw)  # noqa: E731
    members = service.org_members(org_id)
    by_role: dict[str, list] = {}
    for user, role in members:
        by_role.setdefault(role, []).append(user)
    responder = (by_role.get("member") or by_role.get("admin") or by_role.get("owner") or [None])[0]
    lead = (by_role.get("owner") or by_role.get("admin") or [responder])[0]
    resp_actor = Actor("user", str(responder.id), responder.email) if responder else INGEST
    lead_actor = Actor("user", str(lead.id), lead.email) if lead else INGEST
    services = {s.name: s for s in service.org_services(org_id)}

    def svc(*names: str) -> tuple[int | None, str]:
        for name in names:
            if name in services:
                return services[name].id, name
        return None, names[0]

    # 1. Acknowledged, alert-driven, three alerts folded in, commander assigned.
    sid, sname = svc("payments-api")
    key = "alertmanager:HighLatencyP99:payments-api"
    labels = {"alertname": "HighLatencyP99", "service": sname, "env": "production"}
    inc = _fold(org_id, key=key, title=TITLES[0], severity="high", service_id=sid,
                service_name=sname, when=ago(minutes=42), labels=labels)
    inc.description = ("p99 latency on POST /v1/payments climbed from 380 ms to 2.4 s.\n"
                       "Error rate is normal; customers see slow confirmations, not failures.")
    _fold(org_id, key=key, title=TITLES[0], severity="high", service_id=sid,
          service_name=sname, when=ago(minutes=37), labels=labels)
    if responder:
        _at(inc, ago(minutes=36), lambda: service.assign_commander(inc, responder.id, resp_actor))
    service.transition(inc, "acknowledged", resp_actor, now=ago(minutes=35))
    service.add_note(inc, "Latency started two minutes after payments-api deploy 2026.11.3 (connection-pool change). "
                          "Preparing a rollback.", resp_actor, now=ago(minutes=30))
    _fold(org_id, key=key, title=TITLES[0], severity="high", service_id=sid,
          service_name=sname, when=ago(minutes=25), labels=labels)

    # 2. Critical, mitigated: severity raised by a later alert.
    sid, sname = svc("notifications-worker")
    key = "datadog:monitor:48213"
    labels = {"monitor_id": "48213", "service": sname}
    inc = _fold(org_id, key=key, title=TITLES[1], severity="high",
                service_id=sid, service_name=sname, when=ago(hours=2, minutes=10), source="datadog", labels=labels)
    _fold(org_id, key=key, title=TITLES[1], severity="critical",
          service_id=sid, service_name=sname, when=ago(hours=2), source="datadog", labels=labels)
    _at(inc, ago(hours=1, minutes=58), lambda: service.assign_commander(inc, lead.id, lead_actor) if lead else None)
    service.transition(inc, "acknowledged", lead_actor, now=ago(hours=1, minutes=57))
    service.add_note(inc, "The provider rotated its intermediate certificate; our pinned bundle is out of date.",
                     resp_actor, now=ago(hours=1, minutes=40))
    service.add_note(inc, "Shipped the updated CA bundle to the webhook workers; retries are draining.",
                     resp_actor, now=ago(hours=1, minutes=5))
    service.transition(inc, "mitigated", lead_actor, now=ago(hours=1))

    # 3. Resolved and closed three days ago.
    sid, sname = svc("api-gateway")
    key = "alertmanager:Http5xxRate:api-gateway"
    labels = {"alertname": "Http5xxRate", "service": sname}
    start = ago(days=3, hours=5)
    inc = _fold(org_id, key=key, title=TITLES[2], severity="medium", service_id=sid,
                service_name=sname, when=start, labels=labels)
    _at(inc, start + dt.timedelta(minutes=6), lambda: service.assign_commander(inc, responder.id, resp_actor)
        if responder else None)
    service.transition(inc, "acknowledged", resp_actor, now=start + dt.timedelta(minutes=7))
    _at(inc, start + dt.timedelta(minutes=15), lambda: service.set_severity(inc, "high", resp_actor))
    service.add_note(inc, "Upstream connection pool exhausted after the auth-service failover; recycling gateway pods.",
                     resp_actor, now=start + dt.timedelta(minutes=22))
    service.transition(inc, "mitigated", resp_actor, now=start + dt.timedelta(minutes=31))
    service.transition(inc, "resolved", resp_actor, now=start + dt.timedelta(minutes=58))
    service.add_note(inc, "Follow-up: alert on pool saturation, not only on 5xx.", lead_actor,
                     now=start + dt.timedelta(hours=20))
    service.transition(inc, "closed", lead_actor, now=start + dt.timedelta(hours=20, minutes=5))

    # 4. Opened by hand a few minutes ago; nobody on it yet.
    sid, _ = svc("postgres-primary")
    inc = service.create_incident(org_id, title=TITLES[3], severity="low",
                                  actor=lead_actor, service_id=sid, now=ago(minutes=12),
                                  description="The 02:00 UTC snapshot job has not reported since yesterday.")

    # 5. Resolved yesterday, under legal hold (customer dispute).
    sid, _ = svc("partner-portal")
    start = ago(days=1, hours=7)
    inc = service.create_incident(org_id, title=TITLES[4], severity="medium",
                                  actor=resp_actor, service_id=sid, now=start,
                                  description="Support escalated three partner tickets about CSV exports never finishing.")
    service.transition(inc, "acknowledged", resp_actor, now=start + dt.timedelta(minutes=18))
    service.add_note(inc, "Export workers in eu-west-1 were scaled to zero by a mis-scoped autoscaling policy.",
                     resp_actor, now=start + dt.timedelta(minutes=40))
    service.transition(inc, "resolved", resp_actor, now=start + dt.timedelta(hours=1, minutes=12))
    _at(inc, start + dt.timedelta(hours=3), lambda: service.set_legal_hold(inc, True, lead_actor))
    service.add_note(inc, "Legal hold requested by counsel: a customer has disputed the SLA credit.", lead_actor,
                     now=start + dt.timedelta(hours=3, minutes=1))

    db.session.commit()
    return 5
