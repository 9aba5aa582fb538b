"""Helpers for the automations core tests: a services+edges builder, the tenant-isolation factories
``make_<model>(org_id, ...) -> id`` (they add and flush inside the caller's app context; the caller
commits) and small API helpers.

The factories mark their rows with MARK so the isolation harness can spot a leak to another org."""
from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select

from zentro.audit.service import Actor
from zentro.automations import service
from zentro.automations.models import Approval, DryRun, Guardrail, Playbook, Remediation
from zentro.extensions import db
from zentro.platform.types import utcnow
from zentro.reliability.models import ChangeEvent, Service, ServiceDependency

MARK = "ALPHA-PRIVATE"
T0 = dt.datetime(2026, 3, 4, 12, 0, tzinfo=dt.timezone.utc)  # a Wednesday
MINUTE = dt.timedelta(minutes=1)
ACTOR = Actor("system", "", "automation tests")
DRY_RUN = "/api/automations/dry-run"
EXECUTE = "/api/automations/execute"
REMEDIATE = "/api/automations/remediate"
PLAYBOOKS = "/api/v1/playbooks"
GUARDRAILS = "/api/v1/guardrails"
APPROVALS = "/api/v1/approvals"
REMEDIATIONS = "/api/v1/remediations"


def make_services(org_id: int, tiers: dict[str, int], edges: list[tuple[str, str]] = ()) -> dict[str, int]:
    """Services by name with their tiers, and edges (a, b) meaning a depends on b. Returns {name: id}."""
    ids = {}
    for name, tier in tiers.items():
        svc = Service(org_id=org_id, name=name, tier=tier)
        db.session.add(svc)
        db.session.flush()
        ids[name] = svc.id
    for a, b in edges:
        db.session.add(ServiceDependency(org_id=org_id, service_id=ids[a], depends_on_id=ids[b]))
    db.session.flush()
    return ids


def add_deploy(org_id: int, service_id: int, ref: str, at: dt.datetime) -> None:
    db.session.add(ChangeEvent(org_id=org_id, service_id=service_id, kind="deploy", summary=f"deploy {ref}", ref=ref,
                               occurred_at=at))
    db.session.flush()


def _a_service(org_id: int) -> int:
    sid = db.session.scalar(select(Service.id).where(Service.org_id == org_id).order_by(Service.id).limit(1))
    if sid is None:
        sid = make_services(org_id, {f"{MARK}-svc-{uuid.uuid4().hex[:6]}": 2})
        sid = next(iter(sid.values()))
    return sid


def make_playbook(org_id: int, steps: list[dict] | None = None, name: str | None = None) -> int:
    """A restart of the org's first service (one is created if it has none) unless ``steps`` are given."""
    steps = steps or [{"action": "restart", "service_id": _a_service(org_id), "params": {}}]
    pb = Playbook(org_id=org_id, name=name or f"{MARK} playbook {uuid.uuid4().hex[:8]}", description=f"{MARK} description",
                  steps=service.validate_steps(steps))
    db.session.add(pb)
    db.session.flush()
    return pb.id


def make_guardrail(org_id: int, kind: str = "tier_protection", params: dict | None = None,
                   service_id: int | None = None, name: str | None = None) -> int:
    g = Guardrail(org_id=org_id, kind=kind, service_id=service_id, name=name or f"{MARK} guardrail {uuid.uuid4().hex[:8]}",
                  params=params if params is not None else {"max_tier": 0})
    db.session.add(g)
    db.session.flush()
    return g.id


def make_dry_run(org_id: int, playbook_id: int | None = None, *, verdict: str = "pass", checks: list | None = None,
                 now: dt.datetime | None = None, ttl: dt.timedelta = dt.timedelta(minutes=15),
                 user_id: int | None = None) -> int:
    """A stored dry-run of the playbook's real plan (a fresh playbook if none), with the given verdict."""
    playbook_id = playbook_id or make_playbook(org_id)
    plan = service.plan_from(org_id, playbook_id=playbook_id)
    now = now or utcnow()
    checks = checks if checks is not None else ([] if verdict == "pass" else [
        {"guardrail_id": 0, "name": f"{MARK} rule", "kind": "tier_protection", "service_id": None, "verdict": verdict,
         "reason": f"{MARK} reason"}])
    row = DryRun(org_id=org_id, playbook_id=playbook_id, plan=plan, plan_hash=service.plan_hash(plan),
                 blast_radius=service.blast_radius(org_id, plan), slo_impact=[], checks=checks, verdict=verdict,
                 created_by_id=user_id, created_at=now, expires_at=now + ttl)
    db.session.add(row)
    db.session.flush()
    return row.id


def make_approval(org_id: int, dry_run_id: int | None = None, *, status: str = "pending",
                  requested_by_id: int | None = None) -> int:
    dry = db.session.get(DryRun, dry_run_id or make_dry_run(org_id, verdict="needs_approval"))
    a = Approval(org_id=org_id, dry_run_id=dry.id, playbook_id=dry.playbook_id, plan_hash=dry.plan_hash,
                 action_key=service.plan_action_key(dry.plan), summary=f"{MARK} {service.plan_summary(dry.plan)}",
                 reason=f"{MARK} reason", status=status, requested_by_id=requested_by_id)
    db.session.add(a)
    db.session.flush()
    return a.id


def make_remediation(org_id: int, created_by_id: int | None = None, *, preview: bool = True) -> int:
    """A proposed remediation of a restart playbook, with a fresh stored preview unless ``preview`` is false."""
    playbook_id = make_playbook(org_id)
    r = Remediation(org_id=org_id, playbook_id=playbook_id, title=f"{MARK} remediation", rationale=f"{MARK} rationale",
                    created_by_id=created_by_id,
                    dry_run_id=make_dry_run(org_id, playbook_id) if preview else None)
    db.session.add(r)
    db.session.flush()
    return r.id


def block_of(resp) -> str:
    """The reason_code of a 409 POLICY_BLOCKED answer."""
    assert resp.status_code == 409, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["error_code"] == "POLICY_BLOCKED", body
    return body["errors"][0]["reason_code"]
