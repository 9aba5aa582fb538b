"""Incident lifecycle: open (or fold an alert into the active incident with the same key),
transitions, notes, severity, commander, legal hold. Every change appends to the timeline and
records in the audit log with incident-response control tags. No Flask globals: callers pass the
org id and the acting Actor."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import bindparam, func, literal, or_, select, union_all

from zentro.accounts.models import Membership, Org, User
from zentro.audit.models import AuditEvent
from zentro.audit.service import Actor, lock_org, record
from zentro.extensions import db
from zentro.incidents.models import ACTIVE_STATUSES, SEVERITIES, STATUSES, Alert, Incident, RcaRun, TimelineEvent
from zentro.notify import events
from zentro.platform.errors import ApiError, not_found
from zentro.platform.types import iso, utcnow
from zentro.reliability.models import Service

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
    events.emit(org_id, "incident.opened", {"incident": incident_json(inc)}, now=now)
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
    if to == "resolved":
        events.emit(inc.org_id, "incident.resolved", {"incident": incident_json(inc), "from": frm}, now=now)
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


# --- Queries for the incident pages, the API and the exports (read-only unless noted) -------------------

LIST_STATUS_FILTERS = ("active", "all", *STATUSES)  # what a list's ``status`` filter may name
_REF_QUERY = re.compile(r"^\s*(?:inc-?)?\s*(\d{1,9})\s*$", re.IGNORECASE)


def statuses_for(status_filter: str | None) -> tuple[str, ...]:
    """``active`` (open, acknowledged, mitigated), ``all``, or one status."""
    if status_filter in (None, "", "all"):
        return STATUSES
    if status_filter == "active":
        return ACTIVE_STATUSES
    if status_filter not in STATUSES:
        raise ApiError(400, f"status must be one of {', '.join(LIST_STATUS_FILTERS)}")
    return (status_filter,)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_incidents(org_id: int, *, statuses: tuple[str, ...] = STATUSES, severity: str | None = None,
                   service_id: int | None = None, q: str | None = None, before_id: int | None = None,
                   limit: int = 50) -> tuple[list[Incident], int | None]:
    """One keyset page of the org's incidents, newest (highest id) first.

    Returns (incidents, next_before_id); next_before_id is None on the last page. Every query is a
    backward range scan of an index, never an OFFSET or a full count: one query per wanted status on
    (org_id, status, id), each stopping after limit + 1 matches, merged in Python; or, when every
    status is wanted and a service is named, one query on (org_id, service_id, id). Free text matches
    the title (case-insensitive substring) or, when it looks like a ref (INC-42, 42), the number."""
    if severity is not None and severity not in SEVERITIES:
        raise ApiError(400, f"severity must be one of {', '.join(SEVERITIES)}")
    extra = []
    if severity:
        extra.append(Incident.severity == severity)
    if service_id is not None:
        extra.append(Incident.service_id == service_id)
    if q and q.strip():
        text = q.strip()
        cond = Incident.title.ilike(f"%{_like_escape(text)}%", escape="\\")
        ref = _REF_QUERY.match(text)
        if ref:
            cond = or_(cond, Incident.number == int(ref.group(1)))
        extra.append(cond)
    if before_id is not None:
        extra.append(Incident.id < before_id)

    def scan(*conds):
        return (select(Incident.id).where(Incident.org_id == org_id, *conds, *extra)
                .order_by(Incident.id.desc()).limit(limit + 1))

    if set(statuses) == set(STATUSES):
        query = scan()  # one backward scan (of the primary key, or of (org_id, service_id, id))
    else:  # one backward scan of (org_id, status, id) per status, merged by the database in one statement
        parts = [select(sub.c.id) for sub in (scan(Incident.status == s).subquery() for s in dict.fromkeys(statuses))]
        merged = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
        query = select(merged.c.id).order_by(merged.c.id.desc()).limit(limit + 1)
    found = list(db.session.scalars(query))
    more = len(found) > limit
    found = found[:limit]
    rows = []
    if found:
        # by primary key only: with org_id in the WHERE, SQLite's planner picks the (org_id, number)
        # index and walks the whole org; the ids came from org-filtered queries, checked again here.
        # Plain rows, not ORM entities: a list page needs no identity map, and hydrating 50 incidents
        # with their service and commander cost more than the queries themselves.
        by_id = {r.id: IncidentListItem(*r) for r in db.session.execute(_LIST_ROWS, {"ids": found}) if r.org_id == org_id}
        rows = [by_id[i] for i in found if i in by_id]
    return rows, (found[-1] if more else None)


_LIST_FIELDS = ("id", "org_id", "number", "title", "description", "severity", "status", "service_id", "commander_id",
                "source", "dedupe_key", "alert_count", "legal_hold", "started_at", "last_seen_at", "acknowledged_at",
                "mitigated_at", "resolved_at", "closed_at", "created_at", "updated_at")
_LIST_ROWS = (select(*(getattr(Incident, f) for f in _LIST_FIELDS),
                     Service.name.label("service_name"), User.email.label("commander_email"))
              .outerjoin(Service, Service.id == Incident.service_id)
              .outerjoin(User, User.id == Incident.commander_id)
              .where(Incident.id.in_(bindparam("ids", expanding=True))))


@dataclass(slots=True)
class IncidentListItem:
    """One row of an incident list: the incident's columns plus its service name and commander email."""

    id: int
    org_id: int
    number: int
    title: str
    description: str
    severity: str
    status: str
    service_id: int | None
    commander_id: int | None
    source: str
    dedupe_key: str | None
    alert_count: int
    legal_hold: bool
    started_at: dt.datetime
    last_seen_at: dt.datetime
    acknowledged_at: dt.datetime | None
    mitigated_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    service_name: str | None
    commander_email: str | None

    @property
    def ref(self) -> str:
        return f"INC-{self.number}"


def status_counts(org_id: int, statuses: tuple[str, ...] = ACTIVE_STATUSES, cap: int = 1000) -> dict[str, int]:
    """How many incidents are in each status, counting at most ``cap`` per status (an index range each;
    callers show ``cap`` as "cap+")."""
    query = _COUNT_QUERIES.get((statuses, cap))
    if query is None:  # one statement (a UNION ALL of capped range counts), built once per shape
        parts = []
        for s in statuses:
            sub = (select(Incident.id).where(Incident.org_id == bindparam("org_id"), Incident.status == s)
                   .limit(cap).subquery())
            parts.append(select(literal(s).label("status"), func.count().label("n")).select_from(sub))
        query = _COUNT_QUERIES[(statuses, cap)] = union_all(*parts)
    found = dict(db.session.execute(query, {"org_id": org_id}).all())
    return {s: found.get(s, 0) for s in statuses}


_COUNT_QUERIES: dict = {}


def timeline_query(org_id: int, incident_id: int):
    """The incident's timeline events (for cursor pagination by id)."""
    return select(TimelineEvent).where(TimelineEvent.org_id == org_id, TimelineEvent.incident_id == incident_id)


def timeline_count(org_id: int, incident_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(TimelineEvent).where(
        TimelineEvent.org_id == org_id, TimelineEvent.incident_id == incident_id)) or 0


def timeline(org_id: int, incident_id: int, *, last: int | None = None) -> list[TimelineEvent]:
    """The timeline oldest first (by time, then id); with ``last``, only the latest ``last`` events."""
    query = timeline_query(org_id, incident_id)
    if last is not None:
        newest = list(db.session.scalars(query.order_by(TimelineEvent.id.desc()).limit(last)))
        return sorted(newest, key=lambda e: (e.created_at, e.id))
    return list(db.session.scalars(query.order_by(TimelineEvent.created_at, TimelineEvent.id)))


def incident_alerts(org_id: int, incident_id: int, *, limit: int | None = None) -> list[Alert]:
    """Alerts folded into the incident, most recently received first."""
    query = (select(Alert).where(Alert.org_id == org_id, Alert.incident_id == incident_id)
             .order_by(Alert.received_at.desc(), Alert.id.desc()))
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def alert_row_count(org_id: int, incident_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Alert).where(
        Alert.org_id == org_id, Alert.incident_id == incident_id)) or 0


def rca_runs(org_id: int, incident_id: int) -> list[RcaRun]:
    return list(db.session.scalars(select(RcaRun).where(RcaRun.org_id == org_id, RcaRun.incident_id == incident_id)
                                   .order_by(RcaRun.id)))


def incident_audit_rows(org_id: int, inc: Incident) -> list[AuditEvent]:
    """Audit-log rows whose target is this incident, in chain order. The scan starts at the incident's
    creation on (org_id, created_at)."""
    return list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.org_id == org_id, AuditEvent.created_at >= inc.created_at,
                                 AuditEvent.target_type == "incident", AuditEvent.target_id == str(inc.id))
        .order_by(AuditEvent.seq)))


def org_members(org_id: int) -> list[tuple[User, str]]:
    """(user, role) of every member of the org, by email."""
    rows = db.session.execute(select(User, Membership.role).join(Membership, Membership.user_id == User.id)
                              .where(Membership.org_id == org_id).order_by(User.email))
    return [(user, role) for user, role in rows]


def org_services(org_id: int) -> list[Service]:
    return list(db.session.scalars(select(Service).where(Service.org_id == org_id).order_by(Service.name)))


def get_service(org_id: int, service_id: int) -> Service:
    svc = db.session.scalar(select(Service).where(Service.org_id == org_id, Service.id == service_id))
    if svc is None:
        raise not_found("Service")
    return svc


def update_details(inc: Incident, actor: Actor, *, title: str | None = None, description: str | None = None,
                   now: dt.datetime | None = None) -> Incident:
    """Change the title and/or description; a timeline event and an audit row record what changed
    (the old title, and the description's length, since it may be long). The caller commits."""
    changes: dict = {}
    if title is not None:
        title = title.strip()
        if not 1 <= len(title) <= 300:
            raise ApiError(400, "A title needs 1–300 characters.")
        if title != inc.title:
            changes["title"] = {"from": inc.title, "to": title}
    if description is not None:
        if len(description) > 10_000:
            raise ApiError(400, "A description may have at most 10000 characters.")
        if description != inc.description:
            changes["description"] = {"from_chars": len(inc.description or ""), "to_chars": len(description)}
    if not changes:
        return inc
    now = now or utcnow()
    parts = []
    if "title" in changes:
        parts.append(f"Title changed from “{inc.title}” to “{title}”")
        inc.title = title
    if "description" in changes:
        parts.append("Description updated")
        inc.description = description
    inc.updated_at = now
    add_event(inc, "details", "; ".join(parts), actor, changes, now)
    _audit(inc, "incident.details_changed", actor, changes)
    return inc
