"""Alert and vulnerability ingest: store what arrived, then open, fold, acknowledge or mitigate
incidents through the incidents service.

Transactions: one per request. Everything a request carries is normalized (and refused with 400)
before anything is written; then the org row is locked (PostgreSQL; SQLite transactions are
BEGIN IMMEDIATE), every alert or finding is applied, one audit record is written for the request,
and the whole request commits — or, on any failure, nothing of it does. Holding the org lock is
what makes dedupe exact under concurrent delivery: ``open_or_absorb`` sees every incident that
committed before it, and ``(org_id, open_dedupe_key)`` / ``(org_id, delivery_key)`` are unique
as a backstop. If a unique constraint still fires (a writer that skipped the lock), the request
is rolled back and applied once more, when the other delivery is visible and is answered as a
duplicate.

No Flask globals: the caller passes the org, the actor and the settings.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Callable, TypeVar

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from zentro.audit.service import Actor, record
from zentro.extensions import db
from zentro.incidents.models import ACTIVE_STATUSES, Alert, Incident
from zentro.incidents.service import add_event, find_active_by_key, lock_org, open_or_absorb, transition
from zentro.ingest.models import Finding
from zentro.ingest.normalizers import Ignored, NormalizedAlert
from zentro.ingest.scanners import NormalizedFinding
from zentro.ingest.scanners.base import is_ip
from zentro.platform.errors import ApiError
from zentro.platform.types import iso, utcnow
from zentro.reliability.models import Service

# SOC 2 CC7.2 (monitor system components for anomalies), ISO 27001:2022 A.8.16 (monitoring activities)
ALERT_TAGS = ("SOC2:CC7.2", "ISO27001:A.8.16")
# SOC 2 CC7.1 (detect vulnerabilities), ISO 27001:2022 A.8.8 (management of technical vulnerabilities)
FINDING_TAGS = ("SOC2:CC7.1", "ISO27001:A.8.8")
INCIDENT_SEVERITIES = ("critical", "high")  # findings at these severities open an incident
AUDIT_ID_LIMIT = 100  # ids listed in one audit record; the counts are always complete

T = TypeVar("T")


def _with_retry(apply: Callable[[], T]) -> T:
    """Run ``apply`` in a transaction and commit; on a unique-constraint race roll back and run it once more."""
    for attempt in (1, 2):
        try:
            result = apply()
            db.session.commit()
            return result
        except IntegrityError:
            db.session.rollback()
            if attempt == 2:
                raise ApiError(409, "A concurrent delivery of the same data conflicted twice; retry the request.") from None
        except Exception:
            db.session.rollback()
            raise
    raise AssertionError("unreachable")


# --- alerts -----------------------------------------------------------------------------------

def delivery_key(alert: NormalizedAlert, starts_at: dt.datetime) -> str:
    """The same alert delivered twice (source, key, status and start time alike) is stored once."""
    blob = json.dumps([alert.source, alert.dedupe_key, alert.status, iso(starts_at)], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class AlertResult:
    outcome: str  # created | deduped | resolved | acknowledged | no_active_incident | duplicate | ignored
    source: str
    alert_id: int | None = None
    incident_id: int | None = None
    incident_ref: str | None = None
    incident_status: str | None = None
    dedupe_key: str | None = None
    status: str | None = None
    detail: str | None = None

    def json(self) -> dict:
        return {"alert_id": self.alert_id, "incident_id": self.incident_id, "incident_ref": self.incident_ref,
                "incident_status": self.incident_status, "outcome": self.outcome, "source": self.source,
                "dedupe_key": self.dedupe_key, "status": self.status, "detail": self.detail}


@dataclass
class IngestReport:
    accepted: int
    results: list

    def json(self) -> dict:
        return {"accepted": self.accepted, "results": [r.json() for r in self.results]}


def _incidents(org_id: int, ids: set[int]) -> dict[int, Incident]:
    if not ids:
        return {}
    return {inc.id: inc for inc in db.session.scalars(
        select(Incident).where(Incident.org_id == org_id, Incident.id.in_(sorted(ids))))}


def services_by_name(org_id: int, names: set[str]) -> dict[str, int]:
    """{lower-cased name: service id} for the org's services with one of these names (case-insensitive)."""
    wanted = {n.lower() for n in names if n}
    if not wanted:
        return {}
    rows = db.session.execute(select(Service.id, Service.name).where(
        Service.org_id == org_id, func.lower(Service.name).in_(sorted(wanted))))
    return {name.lower(): sid for sid, name in rows}


def ingest_alerts(org_id: int, alerts: list[NormalizedAlert | Ignored], actor: Actor, *, source: str,
                  resolve_mitigates: bool, now: dt.datetime | None = None) -> IngestReport:
    """Store and act on one request's alerts, all or nothing. Commits."""
    now = now or utcnow()
    return _with_retry(lambda: _apply_alerts(org_id, alerts, actor, source, resolve_mitigates, now))


def _apply_alerts(org_id: int, alerts: list, actor: Actor, source: str, resolve_mitigates: bool,
                  now: dt.datetime) -> IngestReport:
    lock_org(org_id)  # first, so that everything read below is what committed before us
    real = [a for a in alerts if isinstance(a, NormalizedAlert)]
    keys = [delivery_key(a, a.starts_at or now) for a in real]
    existing: dict[str, Alert] = {}
    if keys:
        existing = {row.delivery_key: row for row in db.session.scalars(
            select(Alert).where(Alert.org_id == org_id, Alert.delivery_key.in_(sorted(set(keys)))))}
    known_incidents = _incidents(org_id, {a.incident_id for a in existing.values() if a.incident_id})
    services = services_by_name(org_id, {a.service for a in real})

    results: list[AlertResult] = []
    key_iter = iter(keys)
    for a in alerts:
        if isinstance(a, Ignored):
            results.append(AlertResult("ignored", a.source, detail=a.reason))
            continue
        dkey = next(key_iter)
        seen = existing.get(dkey)
        if seen is not None:
            inc = known_incidents.get(seen.incident_id) if seen.incident_id else None
            results.append(AlertResult("duplicate", a.source, seen.id, inc.id if inc else None, inc.ref if inc else None,
                                       inc.status if inc else None, a.dedupe_key, a.status,
                                       "already received; nothing changed"))
            continue
        row = Alert(org_id=org_id, source=a.source, dedupe_key=a.dedupe_key, delivery_key=dkey, status=a.status,
                    severity=a.severity, title=a.title, service_name=a.service, labels=a.labels, raw=a.raw,
                    starts_at=a.starts_at or now, ends_at=a.ends_at, received_at=now)
        db.session.add(row)
        db.session.flush()
        existing[dkey] = row  # the same alert twice in one request is a duplicate too
        if a.status == "firing":
            result = _fire(org_id, a, row, actor, services.get(a.service.lower()), now)
        elif a.status == "resolved":
            result = _resolve(org_id, a, row, actor, resolve_mitigates, now)
        else:
            result = _acknowledge(org_id, a, row, actor, now)
        if result.incident_id is not None:
            known_incidents[result.incident_id] = db.session.get(Incident, result.incident_id)
        results.append(result)

    outcomes = Counter(r.outcome for r in results)
    record(org_id, "alerts.ingested", actor, target_type="alert_source", target_id=source, control_tags=ALERT_TAGS,
           data={"source": source, "received": len(alerts), "outcomes": dict(sorted(outcomes.items())),
                 "alert_ids": [r.alert_id for r in results if r.alert_id][:AUDIT_ID_LIMIT],
                 "incident_ids": sorted({r.incident_id for r in results if r.incident_id})[:AUDIT_ID_LIMIT]},
           now=now)
    return IngestReport(sum(1 for r in results if r.outcome != "ignored"), results)


def _event_data(a: NormalizedAlert, row: Alert) -> dict:
    return {"alert_id": row.id, "source": a.source, "status": a.status, "severity": a.severity, "dedupe_key": a.dedupe_key}


def _fire(org_id: int, a: NormalizedAlert, row: Alert, actor: Actor, service_id: int | None,
          now: dt.datetime) -> AlertResult:
    folded = open_or_absorb(org_id, dedupe_key=a.dedupe_key, title=a.title, severity=a.severity, actor=actor,
                            source=a.source, service_id=service_id, data=_event_data(a, row),
                            started_at=a.starts_at or now, now=now)
    inc = folded.incident
    if folded.created and a.description and not inc.description:
        inc.description = a.description
    row.incident_id = inc.id
    return AlertResult("created" if folded.created else "deduped", a.source, row.id, inc.id, inc.ref, inc.status,
                       a.dedupe_key, a.status)


def _resolve(org_id: int, a: NormalizedAlert, row: Alert, actor: Actor, resolve_mitigates: bool,
             now: dt.datetime) -> AlertResult:
    inc = find_active_by_key(org_id, a.dedupe_key)
    if inc is None:
        return AlertResult("no_active_incident", a.source, row.id, None, None, None, a.dedupe_key, a.status,
                           "no active incident holds this dedupe key; the resolve was stored")
    row.incident_id = inc.id
    # the resolve closes every alert of this key folded into the incident
    db.session.execute(update(Alert).where(
        Alert.org_id == org_id, Alert.incident_id == inc.id, Alert.dedupe_key == a.dedupe_key, Alert.status == "firing",
    ).values(status="resolved", ends_at=a.ends_at or now))
    add_event(inc, "alert", f"Alert resolved: {a.title}", actor, _event_data(a, row), now)
    inc.last_seen_at = now
    still_firing = db.session.scalar(select(func.count()).select_from(Alert).where(
        Alert.org_id == org_id, Alert.incident_id == inc.id, Alert.status == "firing"))
    if resolve_mitigates and not still_firing and inc.status in ("open", "acknowledged"):
        transition(inc, "mitigated", actor, note="every alert of the incident has resolved", now=now)
    return AlertResult("resolved", a.source, row.id, inc.id, inc.ref, inc.status, a.dedupe_key, a.status)


def _acknowledge(org_id: int, a: NormalizedAlert, row: Alert, actor: Actor, now: dt.datetime) -> AlertResult:
    inc = find_active_by_key(org_id, a.dedupe_key)
    if inc is None:
        return AlertResult("no_active_incident", a.source, row.id, None, None, None, a.dedupe_key, a.status,
                           "no active incident holds this dedupe key; the acknowledgement was stored")
    row.incident_id = inc.id
    add_event(inc, "alert", f"Alert acknowledged in {a.source}: {a.title}", actor, _event_data(a, row), now)
    if inc.status == "open":
        transition(inc, "acknowledged", actor, note=f"acknowledged in {a.source}", now=now)
    return AlertResult("acknowledged", a.source, row.id, inc.id, inc.ref, inc.status, a.dedupe_key, a.status)


# --- vulnerability findings ------------------------------------------------------------------

@dataclass
class FindingResult:
    outcome: str  # created | updated | fixed | reopened
    finding: Finding
    incident: Incident | None = None
    incident_outcome: str | None = None  # created | deduped | mitigated | None

    def json(self) -> dict:
        f, inc = self.finding, self.incident
        return {"finding_id": f.id, "source": f.source, "finding_key": f.finding_key, "severity": f.severity,
                "status": f.status, "outcome": self.outcome, "service_id": f.service_id,
                "incident_id": inc.id if inc else f.incident_id, "incident_ref": inc.ref if inc else None,
                "incident_outcome": self.incident_outcome}


def asset_service_names(asset: str) -> list[str]:
    """The service names an asset may match: the whole name, then its first DNS label
    ("checkout-web.prod.internal" → "checkout-web"). IP addresses only ever match whole."""
    asset = asset.strip().lower()
    if not asset:
        return []
    names = [asset]
    if not is_ip(asset) and "." in asset:
        names.append(asset.split(".", 1)[0])
    return names


def _service_for(f: NormalizedFinding, services: dict[str, int]) -> int | None:
    if f.service:
        return services.get(f.service.lower())
    return next((services[n] for n in asset_service_names(f.asset) if n in services), None)


def ingest_findings(org_id: int, findings: list[NormalizedFinding], actor: Actor, *, source: str,
                    resolve_mitigates: bool, now: dt.datetime | None = None) -> IngestReport:
    """Upsert one request's findings and open (once) an incident for each open high/critical one.
    All or nothing. Commits."""
    now = now or utcnow()
    return _with_retry(lambda: _apply_findings(org_id, findings, actor, source, resolve_mitigates, now))


def _apply_findings(org_id: int, findings: list[NormalizedFinding], actor: Actor, source: str,
                    resolve_mitigates: bool, now: dt.datetime) -> IngestReport:
    lock_org(org_id)
    by_source: dict[str, set[str]] = {}
    for f in findings:
        by_source.setdefault(f.source, set()).add(f.finding_key)
    rows: dict[tuple[str, str], Finding] = {
        (r.source, r.finding_key): r for r in db.session.scalars(select(Finding).where(
            Finding.org_id == org_id,
            or_(*[(Finding.source == s) & Finding.finding_key.in_(sorted(keys)) for s, keys in by_source.items()])))}
    incidents = _incidents(org_id, {r.incident_id for r in rows.values() if r.incident_id})
    names = {n for f in findings for n in ([f.service] if f.service else asset_service_names(f.asset))}
    services = services_by_name(org_id, names)

    results: list[FindingResult] = []
    for f in findings:
        row = rows.get((f.source, f.finding_key))
        was_status = row.status if row is not None else None
        if row is None:
            row = Finding(org_id=org_id, source=f.source, finding_key=f.finding_key, incident_id=None,
                          first_seen_at=min(f.first_seen_at or now, now))
            db.session.add(row)
            rows[(f.source, f.finding_key)] = row
            outcome = "created"
        elif f.status != was_status:
            outcome = "fixed" if f.status == "fixed" else "reopened"
        else:
            outcome = "updated"
        if f.first_seen_at and row.first_seen_at and f.first_seen_at < row.first_seen_at:
            row.first_seen_at = f.first_seen_at
        row.title, row.severity, row.status, row.asset = f.title, f.severity, f.status, f.asset
        row.cve, row.description, row.cvss, row.raw = f.cve, f.description, f.cvss, f.raw
        row.last_seen_at = now
        row.fixed_at = (f.fixed_at or row.fixed_at or now) if f.status == "fixed" else None
        row.service_id = _service_for(f, services) or row.service_id
        db.session.flush()
        results.append(_finding_incident(org_id, f, row, outcome, incidents, actor, resolve_mitigates, now))

    outcomes = Counter(r.outcome for r in results)
    record(org_id, "findings.ingested", actor, target_type="finding_source", target_id=source, control_tags=FINDING_TAGS,
           data={"source": source, "received": len(findings), "outcomes": dict(sorted(outcomes.items())),
                 "finding_ids": [r.finding.id for r in results][:AUDIT_ID_LIMIT],
                 "incident_ids": sorted({r.incident.id for r in results if r.incident})[:AUDIT_ID_LIMIT]},
           now=now)
    return IngestReport(len(results), results)


def _finding_incident(org_id: int, f: NormalizedFinding, row: Finding, outcome: str, incidents: dict[int, Incident],
                      actor: Actor, resolve_mitigates: bool, now: dt.datetime) -> FindingResult:
    """An open high/critical finding opens one incident; its redeliveries fold into it while it is
    active, and nothing new opens once people have resolved it — unless the finding was fixed and
    came back (reopened), which is a new occurrence."""
    current = incidents.get(row.incident_id) if row.incident_id else None
    if row.incident_id and current is None:
        current = db.session.get(Incident, row.incident_id)
    if row.status == "open" and row.severity in INCIDENT_SEVERITIES:
        active = current is not None and current.status in ACTIVE_STATUSES
        if current is None or active or outcome == "reopened":
            where = f" on {row.asset}" if row.asset else ""
            folded = open_or_absorb(
                org_id, dedupe_key=f"vuln:{row.source}:{row.finding_key}", title=f"Vulnerability: {row.title}{where}"[:300],
                severity=row.severity, actor=actor, source=row.source, service_id=row.service_id,
                body=f"{row.source} reports {row.severity} finding {row.title}{where}" + (f" ({row.cve})" if row.cve else ""),
                data={"finding_id": row.id, "source": row.source, "finding_key": row.finding_key, "cve": row.cve},
                started_at=row.first_seen_at, now=now)
            inc = folded.incident
            if folded.created and row.description:
                inc.description = row.description[:10_000]
            row.incident_id = inc.id
            incidents[inc.id] = inc
            return FindingResult(outcome, row, inc, "created" if folded.created else "deduped")
        return FindingResult(outcome, row, current, None)
    if outcome == "fixed" and current is not None and current.status in ACTIVE_STATUSES:
        add_event(current, "finding", f"Finding fixed: {row.title}" + (f" on {row.asset}" if row.asset else ""), actor,
                  {"finding_id": row.id, "status": "fixed"}, now)
        if resolve_mitigates and current.status in ("open", "acknowledged"):
            transition(current, "mitigated", actor, note="the vulnerability finding was reported fixed", now=now)
            return FindingResult(outcome, row, current, "mitigated")
    return FindingResult(outcome, row, current, None)
