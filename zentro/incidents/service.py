"""Incident lifecycle: open (or fold an alert into the active incident with the same key),
transitions, notes, severity, commander, legal hold. Every change appends to the timeline and
records in the audit log with incident-response control tags. No Flask globals: callers pass the
org id and the acting Actor."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select

from zentro.accounts.models import Membership, Org, User
from zentro.audit.service import Actor, record
from zentro.extensions import db
from zentro.incidents.models import ACTIVE_STATUSES, SEVERITIES, STATUSES, Incident, TimelineEvent
from zentro.platform.errors import ApiError, not_found
from zentro.platform.types import iso, utcnow

# SOC 2 CC7.3–CC7.5 (evaluate, respond, recover), ISO 27001:2022 A.5.24–A.5.27 (incident management).
IR_TAGS = ("SOC2:CC7.3", "SOC2:CC7.4", "ISO27001:A.5.24", "ISO27001:A.5.26")
RESOLVE_TAGS = ("SOC2:CC7.4", "SOC2:CC7.5", "ISO27001:A.5.26", "ISO27001:A.5.27")
# forward-only lifecycle; each status lists where it may go next
TRANSITIONS = {
    "open": ("acknowledged", "mitigated", "resolved"),
    "acknowledged": ("mitigated", "resolved"),
    "mitigated": ("resolved", "acknowledged"),
    "resolved": ("closed", "open"),
    "closed": (),
}
STAMP = {"acknowledged": "acknowledged_at", "mitigated": "mitigated_at", "resolved": "resolved_at", "closed": "closed_at"}


def lock_org(org_id: int) -> None:
    """Serialise writers of one org (PostgreSQL row lock; SQLite transactions are already IMMEDIATE)."""
    db.session.execute(select(Org.id).where(Org.id == org_id).with_for_update())


def get_incident(org_id: int, incident_id: int, *, for_update: bool = False) -> Incident:
    q = select(Incident).where(Incident.org_id == org_id, Incident.id == incident_id)
    if for_update:
        q = q.with_for_update()
    inc = db.session.scalar(q)
    if inc is None:
        raise not_found("Incident")
    return inc


def add_event(inc: Incident, kind: str, body: str, actor: Actor, data: dict | None = None,
              now: dt.datetime | None = None) -> TimelineEvent:
    ev = TimelineEvent(org_id=inc.org_id, incident_id=inc.id, kind=kind, body=body, data=data or {},
                       actor_type=actor.type, actor_label=actor.label, created_at=now or utcnow())
    db.session.add(ev)
    return ev


def _audit(inc: Incident, action: str, actor: Actor, data: dict | None = None, tags=IR_TAGS) -> None:
    record(inc.org_id, action, actor, target_type="incident", target_id=inc.id, control_tags=tags,
           data={"ref": inc.ref, **(data or {})})


def create_incident(org_id: int, *, title: str, severity: str, actor: Actor, service_id: int | None = None,
                    description: str = "", source: str = "manual", dedupe_key: str | None = None,
                    started_at: dt.datetime | None = None, now: dt.datetime | None = None) -> Incident:
    """Open a new incident. The caller commits. Raises IntegrityError if an active incident already
    holds dedupe_key (use open_or_absorb for alerts)."""
    if severity not in SEVERITIES:
        raise ApiError(400, f"severity must be one of {', '.join(SEVERITIES)}")
    now = now or utcnow()
    lock_org(org_id)
    number = (db.session.scalar(select(func.max(Incident.number)).where(Incident.org_id == org_id)) or 0) + 1
    inc = Incident(org_id=org_id, number=number, title=title[:300], description=description, severity=severity,
                   status="open", service_id=service_id, source=source, dedupe_key=dedupe_key,
                   open_dedupe_key=dedupe_key, started_at=started_at or now, last_seen_at=now,
                   created_at=now, updated_at=now)
    db.session.add(inc)
    db.session.flush()
    add_event(inc, "created", f"{inc.ref} opened ({severity}): {inc.title}", actor,
              {"source": source, "dedupe_key": dedupe_key}, now)
    _audit(inc, "incident.created", actor, {"severity": severity, "source": source})
    return inc


def find_active_by_key(org_id: int, dedupe_key: str) -> Incident | None:
    return db.session.scalar(select(Incident).where(Incident.org_id == org_id, Incident.open_dedupe_key == dedupe_key))


@dataclass
class Folded:
    incident: Incident
    created: bool


def open_or_absorb(org_id: int, *, dedupe_key: str, title: str, severity: str, actor: Actor, source: str,
                   service_id: int | None = None, body: str = "", data: dict | None = None,
                   started_at: dt.datetime | None = None, now: dt.datetime | None = None) -> Folded:
    """The one dedupe path (alerts, burn-rate alerts, findings): fold into the active incident with
    this key, or open one. Exact under concurrency because the org is locked first (and
    (org_id, open_dedupe_key) is unique as a backstop). The caller commits."""
    now = now or utcnow()
    lock_org(org_id)
    inc = find_active_by_key(org_id, dedupe_key)
    if inc is not None:
        inc.alert_count += 1
        inc.last_seen_at = now
        if SEVERITIES.index(severity) < SEVERITIES.index(inc.severity):
            add_event(inc, "severity", f"Severity raised {inc.severity} → {severity} by a new alert", actor,
                      {"from": inc.severity, "to": severity}, now)
            inc.severity = severity
        add_event(inc, "alert", body or f"Alert folded in: {title}", actor, data, now)
        return Folded(inc, False)
    inc = create_incident(org_id, title=title, severity=severity, actor=actor, service_id=service_id, source=source,
                          dedupe_key=dedupe_key, started_at=started_at, now=now)
    inc.alert_count = 1
    add_event(inc, "alert", body or f"Alert: {title}", actor, data, now)
    return Folded(inc, True)


def transition(inc: Incident, to: str, actor: Actor, note: str = "", now: dt.datetime | None = None) -> Incident:
    if to not in STATUSES:
        raise ApiError(400, f"status must be one of {', '.join(STATUSES)}")
    if to == inc.status:
        return inc
    if to not in TRANSITIONS[inc.status]:
        raise ApiError(409, f"{inc.ref} is {inc.status}; it cannot become {to}.")
    now = now or utcnow()
    frm, inc.status = inc.status, to
    if to in STAMP and getattr(inc, STAMP[to]) is None:
        setattr(inc, STAMP[to], now)
    if to == "open":  # reopened
        inc.resolved_at = inc.closed_at = None
    if to in ACTIVE_STATUSES:
        if inc.dedupe_key and find_active_by_key(inc.org_id, inc.dedupe_key) not in (None, inc):
            raise ApiError(409, f"Another active incident already holds dedupe key {inc.dedupe_key!r}.")
        inc.open_dedupe_key = inc.dedupe_key
    else:
        inc.open_dedupe_key = None
    inc.updated_at = now
    add_event(inc, "status", f"Status {frm} → {to}" + (f": {note}" if note else ""), actor, {"from": frm, "to": to}, now)
    _audit(inc, f"incident.{to}" if to != "open" else "incident.reopened", actor, {"from": frm, "note": note},
           RESOLVE_TAGS if to in ("resolved", "closed") else IR_TAGS)
    return inc


def add_note(inc: Incident, text: str, actor: Actor, now: dt.datetime | None = None) -> TimelineEvent:
    text = (text or "").strip()
    if not text or len(text) > 10_000:
        raise ApiError(400, "A note needs 1–10000 characters.")
    ev = add_event(inc, "note", text, actor, None, now)
    _audit(inc, "incident.note_added", actor, {"chars": len(text)})
    return ev


def set_severity(inc: Incident, severity: str, actor: Actor) -> Incident:
    if severity not in SEVERITIES:
        raise ApiError(400, f"severity must be one of {', '.join(SEVERITIES)}")
    if severity != inc.severity:
        add_event(inc, "severity", f"Severity {inc.severity} → {severity}", actor, {"from": inc.severity, "to": severity})
        _audit(inc, "incident.severity_changed", actor, {"from": inc.severity, "to": severity})
        inc.severity = severity
    return inc


def assign_commander(inc: Incident, user_id: int | None, actor: Actor) -> Incident:
    """The commander must be a member of the incident's org (else 404, not disclosed)."""
    if user_id is not None:
        ok = db.session.scalar(select(Membership.id).where(Membership.org_id == inc.org_id, Membership.user_id == user_id))
        if ok is None:
            raise not_found("User")
    if user_id != inc.commander_id:
        label = db.session.get(User, user_id).email if user_id else "nobody"
        add_event(inc, "commander", f"Commander set to {label}", actor, {"user_id": user_id})
        _audit(inc, "incident.commander_assigned", actor, {"user_id": user_id})
        inc.commander_id = user_id
    return inc


def set_legal_hold(inc: Incident, on: bool, actor: Actor) -> Incident:
    if on != inc.legal_hold:
        inc.legal_hold = on
        add_event(inc, "legal_hold", "Legal hold placed" if on else "Legal hold released", actor, {"on": on})
        _audit(inc, "incident.legal_hold_set" if on else "incident.legal_hold_released", actor, {"on": on},
               ("SOC2:CC7.4", "ISO27001:A.5.33"))
    return inc


def incident_json(inc: Incident) -> dict:
    return {
        "id": inc.id, "ref": inc.ref, "number": inc.number, "title": inc.title, "description": inc.description,
        "severity": inc.severity, "status": inc.status, "service_id": inc.service_id,
        "commander_id": inc.commander_id, "source": inc.source, "dedupe_key": inc.dedupe_key,
        "alert_count": inc.alert_count, "legal_hold": inc.legal_hold,
        "started_at": iso(inc.started_at), "last_seen_at": iso(inc.last_seen_at),
        "acknowledged_at": iso(inc.acknowledged_at), "mitigated_at": iso(inc.mitigated_at),
        "resolved_at": iso(inc.resolved_at), "closed_at": iso(inc.closed_at),
        "created_at": iso(inc.created_at), "updated_at": iso(inc.updated_at),
    }


def event_json(ev: TimelineEvent) -> dict:
    return {"id": ev.id, "kind": ev.kind, "body": ev.body, "data": ev.data, "actor_type": ev.actor_type,
            "actor": ev.actor_label, "created_at": iso(ev.created_at)}
