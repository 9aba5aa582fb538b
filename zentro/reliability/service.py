"""Services, dependency edges, change events and SLI samples; SLO views and burn-rate alerting.

No Flask globals: every function takes the org id and (for mutations) the acting Actor, validates
everything before it changes anything, records the change in the audit log and commits. Lookups are
by (org_id, id) and a miss is 404, so other organisations' ids are not disclosed."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from zentro.audit.service import Actor, record
from zentro.extensions import db
from zentro.incidents import service as incidents
from zentro.incidents.models import ACTIVE_STATUSES, Incident
from zentro.ingest.models import Finding
from zentro.platform.errors import ApiError, not_found
from zentro.platform.types import iso, utcnow
from zentro.reliability import slo
from zentro.reliability.models import ChangeEvent, Service, ServiceDependency, SliSample
from zentro.reliability.schemas import ServiceIn, SliSampleIn

INVENTORY_TAGS = ("SOC2:CC6.1", "ISO27001:A.5.9")  # asset inventory
CHANGE_TAGS = ("SOC2:CC8.1", "ISO27001:A.8.32")  # change management
MONITORING_TAGS = ("SOC2:CC7.2", "ISO27001:A.8.16")  # monitoring for anomalies
CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_SLI_WINDOW = dt.timedelta(days=31)
SLO_ACTOR = Actor("system", "slo-burn", "SLO burn-rate alerting")
EDITABLE = ("name", "description", "tier", "environment", "internet_facing", "owner", "runbook_url", "slo_target")


def bad_input(detail: str, field_name: str | None = None) -> ApiError:
    errors = [{"loc": [field_name], "msg": detail, "type": "value_error"}] if field_name else None
    return ApiError(400, detail, errors=errors)


# --- services -------------------------------------------------------------------------------------

def get_service(org_id: int, service_id: int) -> Service:
    svc = db.session.scalar(select(Service).where(Service.org_id == org_id, Service.id == service_id))
    if svc is None:
        raise not_found("Service")
    return svc


def services_query(org_id: int):
    return select(Service).where(Service.org_id == org_id)


def all_services(org_id: int) -> list[Service]:
    return list(db.session.scalars(services_query(org_id).order_by(Service.tier, Service.name)))


def _name_taken(org_id: int, name: str, exclude_id: int | None = None) -> bool:
    q = select(Service.id).where(Service.org_id == org_id, func.lower(Service.name) == name.lower())
    if exclude_id is not None:
        q = q.where(Service.id != exclude_id)
    return db.session.scalar(q.limit(1)) is not None


def _conflict_name(name: str) -> ApiError:
    return ApiError(409, f"A service named {name!r} already exists in this organisation.")


def _commit_or_conflict(conflict: ApiError) -> None:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise conflict from None


def create_service(org_id: int, data: ServiceIn, actor: Actor) -> Service:
    incidents.lock_org(org_id)  # serialise name checks of one org
    if _name_taken(org_id, data.name):
        raise _conflict_name(data.name)
    svc = Service(org_id=org_id, **data.model_dump())
    db.session.add(svc)
    db.session.flush()
    record(org_id, "service.created", actor, target_type="service", target_id=svc.id, control_tags=INVENTORY_TAGS,
           data=data.model_dump())
    _commit_or_conflict(_conflict_name(data.name))
    return svc


def update_service(org_id: int, service_id: int, changes: dict, actor: Actor) -> Service:
    """Apply the given fields (already validated by ServicePatch/ServiceIn); a no-op records nothing."""
    svc = get_service(org_id, service_id)
    changes = {k: v for k, v in changes.items() if k in EDITABLE and getattr(svc, k) != v}
    if not changes:
        return svc
    if "name" in changes:
        incidents.lock_org(org_id)
        if _name_taken(org_id, changes["name"], exclude_id=svc.id):
            raise _conflict_name(changes["name"])
    before = {k: getattr(svc, k) for k in changes}
    for k, v in changes.items():
        setattr(svc, k, v)
    record(org_id, "service.updated", actor, target_type="service", target_id=svc.id, control_tags=INVENTORY_TAGS,
           data={"name": svc.name, "from": before, "to": changes})
    _commit_or_conflict(_conflict_name(changes.get("name", svc.name)))
    return svc


def delete_service(org_id: int, service_id: int, actor: Actor) -> dict:
    """Delete a service with its edges, SLI samples and change events; incidents and findings keep
    their rows and lose the link. Returns the service as it was."""
    svc = get_service(org_id, service_id)
    snapshot = service_json(svc)
    counts = {
        "sli_samples": db.session.scalar(select(func.count()).select_from(SliSample)
                                         .where(SliSample.org_id == org_id, SliSample.service_id == svc.id)),
        "change_events": db.session.scalar(select(func.count()).select_from(ChangeEvent)
                                           .where(ChangeEvent.org_id == org_id, ChangeEvent.service_id == svc.id)),
    }
    for model, column in ((SliSample, SliSample.service_id), (ChangeEvent, ChangeEvent.service_id)):
        db.session.execute(delete(model).where(model.org_id == org_id, column == svc.id))
    db.session.execute(delete(ServiceDependency).where(
        ServiceDependency.org_id == org_id,
        (ServiceDependency.service_id == svc.id) | (ServiceDependency.depends_on_id == svc.id)))
    for model in (Incident, Finding):
        db.session.execute(update(model).where(model.org_id == org_id, model.service_id == svc.id)
                           .values(service_id=None).execution_options(synchronize_session=False))
    db.session.delete(svc)
    record(org_id, "service.deleted", actor, target_type="service", target_id=service_id, control_tags=INVENTORY_TAGS,
           data={"name": snapshot["name"], **counts})
    db.session.commit()
    return snapshot


def depends_on_ids(org_id: int, service_ids: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    if service_ids:
        for sid, dep in db.session.execute(
                select(ServiceDependency.service_id, ServiceDependency.depends_on_id)
                .where(ServiceDependency.org_id == org_id, ServiceDependency.service_id.in_(service_ids))
                .order_by(ServiceDependency.depends_on_id)):
            out[sid].append(dep)
    return out


def service_json(svc: Service, depends_on: list[int] | None = None) -> dict:
    if depends_on is None:
        depends_on = depends_on_ids(svc.org_id, [svc.id]).get(svc.id, [])
    return {"id": svc.id, "name": svc.name, "description": svc.description, "tier": svc.tier,
            "environment": svc.environment, "internet_facing": svc.internet_facing, "owner": svc.owner,
            "runbook_url": svc.runbook_url, "slo_target": svc.slo_target, "depends_on": depends_on,
            "created_at": iso(svc.created_at)}


def open_incident_counts(org_id: int, service_ids: list[int] | None = None) -> dict[int, int]:
    q = (select(Incident.service_id, func.count()).where(Incident.org_id == org_id, Incident.service_id.is_not(None),
                                                         Incident.status.in_(ACTIVE_STATUSES))
         .group_by(Incident.service_id))
    if service_ids is not None:
        q = q.where(Incident.service_id.in_(service_ids))
    return {sid: n for sid, n in db.session.execute(q)}


def open_incidents(org_id: int, service_id: int, limit: int = 20) -> list[Incident]:
    return list(db.session.scalars(
        select(Incident).where(Incident.org_id == org_id, Incident.service_id == service_id,
                               Incident.status.in_(ACTIVE_STATUSES)).order_by(Incident.id.desc()).limit(limit)))


def open_finding_counts(org_id: int) -> dict[int, int]:
    return {sid: n for sid, n in db.session.execute(
        select(Finding.service_id, func.count()).where(Finding.org_id == org_id, Finding.status == "open",
                                                       Finding.service_id.is_not(None)).group_by(Finding.service_id))}


# --- dependency edges -----------------------------------------------------------------------------

def edges(org_id: int) -> list[tuple[int, int]]:
    return [(a, b) for a, b in db.session.execute(
        select(ServiceDependency.service_id, ServiceDependency.depends_on_id)
        .where(ServiceDependency.org_id == org_id).order_by(ServiceDependency.id))]


def path_exists(adjacency: dict[int, list[int]], start: int, goal: int) -> list[int] | None:
    """A path start →* goal along the edges, as a list of ids, or None."""
    parent: dict[int, int | None] = {start: None}
    stack = [start]
    while stack:
        node = stack.pop()
        if node == goal:
            path = [node]
            while parent[path[-1]] is not None:
                path.append(parent[path[-1]])
            return path[::-1]
        for nxt in adjacency.get(node, ()):
            if nxt not in parent:
                parent[nxt] = node
                stack.append(nxt)
    return None


def add_dependency(org_id: int, service_id: int, depends_on_id: int, actor: Actor) -> ServiceDependency:
    """service → depends_on. Both must be in the org (404). Refused with 409: a self-edge, an edge that
    exists, or one that would close a cycle (the graph stays acyclic, so layering and attack-path
    search are well defined)."""
    svc = get_service(org_id, service_id)
    target = get_service(org_id, depends_on_id)
    incidents.lock_org(org_id)  # two concurrent edges could otherwise close a cycle together
    if svc.id == target.id:
        raise ApiError(409, f"{svc.name} cannot depend on itself.")
    existing = edges(org_id)
    if (svc.id, target.id) in existing:
        raise ApiError(409, f"{svc.name} already depends on {target.name}.")
    adjacency: dict[int, list[int]] = defaultdict(list)
    for a, b in existing:
        adjacency[a].append(b)
    back = path_exists(adjacency, target.id, svc.id)
    if back is not None:
        names = {s.id: s.name for s in all_services(org_id)}
        chain = " → ".join(names.get(i, str(i)) for i in [*back, target.id])
        raise ApiError(409, f"Refused: {svc.name} → {target.name} would create a dependency cycle ({svc.name} → {chain}).")
    edge = ServiceDependency(org_id=org_id, service_id=svc.id, depends_on_id=target.id)
    db.session.add(edge)
    db.session.flush()
    record(org_id, "service.dependency_added", actor, target_type="service", target_id=svc.id,
           control_tags=INVENTORY_TAGS, data={"service": svc.name, "depends_on": target.name, "depends_on_id": target.id})
    _commit_or_conflict(ApiError(409, f"{svc.name} already depends on {target.name}."))
    return edge


def remove_dependency(org_id: int, service_id: int, depends_on_id: int, actor: Actor) -> dict:
    svc = get_service(org_id, service_id)
    target = get_service(org_id, depends_on_id)
    edge = db.session.scalar(select(ServiceDependency).where(
        ServiceDependency.org_id == org_id, ServiceDependency.service_id == svc.id,
        ServiceDependency.depends_on_id == target.id))
    if edge is None:
        raise not_found("Dependency")
    out = dependency_json(edge)
    db.session.delete(edge)
    record(org_id, "service.dependency_removed", actor, target_type="service", target_id=svc.id,
           control_tags=INVENTORY_TAGS, data={"service": svc.name, "depends_on": target.name, "depends_on_id": target.id})
    db.session.commit()
    return out


def dependency_json(edge: ServiceDependency) -> dict:
    return {"id": edge.id, "service_id": edge.service_id, "service_name": edge.service.name,
            "depends_on_id": edge.depends_on_id, "depends_on_name": edge.depends_on.name,
            "created_at": iso(edge.created_at)}


def neighbours(org_id: int, service_id: int) -> tuple[list[Service], list[Service]]:
    """(services this one depends on, services that depend on it), by name."""
    calls = db.session.scalars(select(Service).join(ServiceDependency, ServiceDependency.depends_on_id == Service.id)
                               .where(ServiceDependency.org_id == org_id, ServiceDependency.service_id == service_id)
                               .order_by(Service.name)).all()
    callers = db.session.scalars(select(Service).join(ServiceDependency, ServiceDependency.service_id == Service.id)
                                 .where(ServiceDependency.org_id == org_id, ServiceDependency.depends_on_id == service_id)
                                 .order_by(Service.name)).all()
    return list(calls), list(callers)


# --- change events --------------------------------------------------------------------------------

def record_change(org_id: int, service_id: int, *, kind: str, summary: str, ref: str = "",
                  occurred_at: dt.datetime | None, actor: Actor, now: dt.datetime | None = None) -> ChangeEvent:
    svc = get_service(org_id, service_id)
    now = now or utcnow()
    occurred_at = occurred_at or now
    if occurred_at > now + CLOCK_SKEW:
        raise bad_input("occurred_at is in the future (more than 5 minutes ahead of the server clock).", "occurred_at")
    summary = summary.strip()
    if not summary:
        raise bad_input("A summary needs 1–300 characters.", "summary")
    ev = ChangeEvent(org_id=org_id, service_id=svc.id, kind=kind, summary=summary, ref=ref.strip(),
                     occurred_at=occurred_at.astimezone(dt.timezone.utc), created_at=now)
    db.session.add(ev)
    db.session.flush()
    record(org_id, "service.change_recorded", actor, target_type="service", target_id=svc.id, control_tags=CHANGE_TAGS,
           data={"service": svc.name, "change_id": ev.id, "kind": kind, "summary": summary, "ref": ev.ref,
                 "occurred_at": iso(ev.occurred_at)})
    db.session.commit()
    return ev


def changes_query(org_id: int, service_id: int):
    return select(ChangeEvent).where(ChangeEvent.org_id == org_id, ChangeEvent.service_id == service_id)


def recent_changes(org_id: int, service_id: int, limit: int = 10) -> list[ChangeEvent]:
    return list(db.session.scalars(changes_query(org_id, service_id)
                                   .order_by(ChangeEvent.occurred_at.desc(), ChangeEvent.id.desc()).limit(limit)))


def change_json(ev: ChangeEvent) -> dict:
    return {"id": ev.id, "service_id": ev.service_id, "kind": ev.kind, "summary": ev.summary, "ref": ev.ref,
            "occurred_at": iso(ev.occurred_at), "created_at": iso(ev.created_at)}


# --- SLI samples and burn-rate alerting -----------------------------------------------------------

@dataclass
class SliRecorded:
    service: Service
    stored: int
    replaced: int
    results: list[slo.BurnResult]
    incidents: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"service_id": self.service.id, "stored": self.stored, "replaced": self.replaced,
                "rules": [r.as_dict() for r in self.results], "incidents": self.incidents}


def validate_samples(samples: list[SliSampleIn], now: dt.datetime) -> None:
    for i, s in enumerate(samples):
        where = f"samples[{i}]" if len(samples) > 1 else "sample"
        if s.good > s.total:
            raise bad_input(f"{where}: good ({s.good}) cannot exceed total ({s.total}).", "good")
        if s.window_end <= s.window_start:
            raise bad_input(f"{where}: window_end must be after window_start.", "window_end")
        if s.window_end - s.window_start > MAX_SLI_WINDOW:
            raise bad_input(f"{where}: a sample window may span at most 31 days.", "window_end")
        if s.window_end > now + CLOCK_SKEW:
            raise bad_input(f"{where}: the window ends in the future; post counts for windows that have ended.",
                            "window_end")


def record_sli(org_id: int, service_id: int, samples: list[SliSampleIn] | None, actor: Actor,
               now: dt.datetime | None = None) -> SliRecorded:
    """Store SLI samples (a sample for exactly the window of a stored one replaces its counts), then
    evaluate the burn-rate rules at ``now`` and open or fold an incident for each rule that fires,
    through the one dedupe path (zentro.incidents.service.open_or_absorb). One transaction."""
    svc = get_service(org_id, service_id)
    now = now or utcnow()
    if not samples:
        raise bad_input("Send one sample (window_start, window_end, good, total) or {\"samples\": [...]}, not both.")
    validate_samples(samples, now)
    incidents.lock_org(org_id)  # serialise replace-by-window and the alert decision
    starts = {s.window_start.astimezone(dt.timezone.utc) for s in samples}
    existing = {(row.window_start, row.window_end): row for row in db.session.scalars(
        select(SliSample).where(SliSample.org_id == org_id, SliSample.service_id == svc.id,
                                SliSample.window_start.in_(starts)))}
    batch: dict[tuple[dt.datetime, dt.datetime], SliSample] = {}
    replaced_keys = set()
    for s in samples:  # the request's own samples (at most MAX_SAMPLES), not stored rows
        key = (s.window_start.astimezone(dt.timezone.utc), s.window_end.astimezone(dt.timezone.utc))
        row = existing.get(key) or batch.get(key)
        if row is not None:  # the same window again: the latest counts win
            row.good, row.total = s.good, s.total
            if key in existing:
                replaced_keys.add(key)
            continue
        row = SliSample(org_id=org_id, service_id=svc.id, window_start=key[0], window_end=key[1], good=s.good,
                        total=s.total, created_at=now)
        db.session.add(row)
        batch[key] = row
    stored, replaced = len(batch), len(replaced_keys)
    db.session.flush()
    record(org_id, "service.sli_recorded", actor, target_type="service", target_id=svc.id,
           control_tags=MONITORING_TAGS,
           data={"service": svc.name, "stored": stored, "replaced": replaced,
                 "from": iso(min(s.window_start for s in samples)), "to": iso(max(s.window_end for s in samples)),
                 "good": sum(s.good for s in samples), "total": sum(s.total for s in samples)})
    result = SliRecorded(svc, stored, replaced, slo.evaluate_burn(svc.slo_target, slo.sql_counts(org_id, svc.id), now))
    for r in result.results:
        if not r.fired:
            continue
        folded = incidents.open_or_absorb(
            org_id, dedupe_key=f"slo-burn:{svc.id}:{r.rule}", title=f"{svc.name}: {r.title}", severity=r.severity,
            actor=SLO_ACTOR, source="slo", service_id=svc.id,
            body=f"{svc.name} (SLO {svc.slo_target:g} %): {r.title}.", data={"rule": r.rule, **r.as_dict()}, now=now)
        result.incidents.append({"rule": r.rule, "incident_id": folded.incident.id, "ref": folded.incident.ref,
                                 "created": folded.created, "severity": folded.incident.severity})
    db.session.commit()
    return result


# --- SLO views ------------------------------------------------------------------------------------

def slo_report(org_id: int, service_id: int, now: dt.datetime | None = None) -> dict:
    """Service profile, 7d and 30d windows, status, and the burn-rate rules as they stand at ``now``."""
    svc = get_service(org_id, service_id)
    now = now or utcnow()
    spans = {**slo.SLO_WINDOWS, **slo.SUMMARY_WINDOWS}
    windows = slo.windows_for(org_id, [svc], spans, now)[svc.id]
    status, reasons = slo.status_of(windows)
    rules = slo.evaluate_burn(svc.slo_target, slo.sql_counts(org_id, svc.id), now)
    profile = service_json(svc) | {"open_incidents": open_incident_counts(org_id, [svc.id]).get(svc.id, 0)}
    return {
        "service": profile,
        "target": svc.slo_target,
        "error_budget_fraction": slo.budget_fraction(svc.slo_target),
        "status": status,
        "status_reasons": reasons,
        "windows": [_window_json(windows[n]) for n in slo.SLO_WINDOWS],
        "burn_rules": [r.as_dict() for r in rules],
        "derivation": ("Windows with SLI samples use them (source \"sli\"). Without samples, a window is derived "
                       "from incidents: total = the window's minutes, bad = minutes covered by critical or high "
                       "incidents on the service (start → mitigated/resolved, or now while open); source "
                       "\"derived_from_incidents\". With neither samples nor any incident on record: \"no_data\"."),
    }


def _window_json(w: slo.Window) -> dict:
    d = w.as_dict()
    d["start"], d["end"] = iso(w.start), iso(w.end)
    return d


def budget_summary(org_id: int, now: dt.datetime | None = None) -> dict:
    now = now or utcnow()
    services = all_services(org_id)
    windows = slo.windows_for(org_id, services, slo.SUMMARY_WINDOWS, now)
    rows, counts, used = [], {"critical": 0, "warning": 0, "ok": 0, "no_data": 0}, []
    for svc in services:
        w = windows[svc.id]
        status, reasons = slo.status_of(w)
        counts[status] += 1
        month = w["30d"]
        budget_used = None
        if month.has_data:
            budget_used = round(1 - month.remaining_ratio, 6)
            used.append(budget_used)
        rows.append({
            "service_id": svc.id, "name": svc.name, "tier": svc.tier, "environment": svc.environment,
            "target": svc.slo_target, "source": month.source,
            "burn_rate_1h": w["1h"].burn_rate, "burn_rate_6h": w["6h"].burn_rate,
            "remaining_ratio_30d": month.remaining_ratio, "budget_used_30d": budget_used,
            "status": status, "reasons": reasons,
        })
    order = {"critical": 0, "warning": 1, "ok": 2, "no_data": 3}
    rows.sort(key=lambda r: (order[r["status"]], -(r["burn_rate_1h"] or 0), r["name"]))
    return {
        "generated_at": iso(now), "services": rows, "counts": counts,
        "critical": counts["critical"], "warning": counts["warning"], "services_with_data": len(used),
        "average_budget_used": round(sum(used) / len(used), 6) if used else None,
        "rules": slo.STATUS_RULES,
    }


def list_rows(org_id: int, now: dt.datetime | None = None) -> list[dict]:
    """What the services page shows per service: the service, its 30-day window and open incidents."""
    services = all_services(org_id)
    month = slo.windows_for(org_id, services, {"30d": slo.SLO_WINDOWS["30d"]}, now)
    open_counts = open_incident_counts(org_id)
    return [{"service": s, "month": month[s.id]["30d"], "open_incidents": open_counts.get(s.id, 0)} for s in services]


# --- dependency graph -----------------------------------------------------------------------------

def layers(node_ids: list[int], edge_list: list[tuple[int, int]]) -> dict[int, int]:
    """Longest-path layering: a node's depth is the most hops from any node nothing depends on
    (entry points at 0), so every edge points to a deeper layer. Nodes on a cycle (only possible in
    data written around the API) go one layer past the deepest node."""
    incoming: dict[int, int] = {n: 0 for n in node_ids}
    out: dict[int, list[int]] = defaultdict(list)
    for a, b in edge_list:
        if a in incoming and b in incoming:
            out[a].append(b)
            incoming[b] += 1
    depth = {n: 0 for n in node_ids}
    ready = [n for n in node_ids if incoming[n] == 0]
    seen = set()
    while ready:
        n = ready.pop()
        seen.add(n)
        for m in out[n]:
            depth[m] = max(depth[m], depth[n] + 1)
            incoming[m] -= 1
            if incoming[m] == 0:
                ready.append(m)
    deepest = max(depth.values(), default=0)
    for n in node_ids:
        if n not in seen:
            depth[n] = deepest + 1
    return depth


def dependency_graph(org_id: int) -> dict:
    services = all_services(org_id)
    edge_list = edges(org_id)
    depth = layers([s.id for s in services], edge_list)
    incidents_open = open_incident_counts(org_id)
    findings_open = open_finding_counts(org_id)
    return {
        "nodes": [{"id": s.id, "name": s.name, "tier": s.tier, "environment": s.environment,
                   "internet_facing": s.internet_facing, "open_incidents": incidents_open.get(s.id, 0),
                   "open_findings": findings_open.get(s.id, 0), "depth": depth[s.id]} for s in services],
        "edges": [{"source": a, "target": b} for a, b in edge_list],
        "direction": "source depends on target: traffic flows source → target",
    }
