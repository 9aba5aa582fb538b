"""Automations core: playbooks, guardrails, dry-runs, guarded execution and remediation, policy blocks.

No Flask request globals: every function takes the org id, the acting user's id and the audit Actor,
validates before it changes anything, audits with the change-management control tags and commits.
Lookups are by (org_id, id); a miss is 404. ``now`` is injectable everywhere.

Plan: the resolved steps ``{"action", "service_id", "service", "params"}`` as they will run (a rollback
without ``to_ref`` resolves to the service's previous deploy ref). ``plan_hash`` = SHA-256 of the plan's
canonical JSON (sorted keys, no spaces). A step's key is ``"{action}:{service name}"``; the plan's
``action_key`` is the sorted, de-duplicated step keys joined by ",".

Blast radius: the touched services plus every transitive downstream dependent (a service whose
``depends_on`` is in the radius), each with its tier and depth.

Predicted SLO impact (an estimate, stated in every row's ``assumption``): each action is assumed to cost
a number of fully-bad minutes on the service it touches (ACTION_RISK) and the same minutes on every
service that depends on it, directly or not. The cost as a share of the 30-day error budget is
``minutes / (30 days in minutes × (1 − target))``; the prediction subtracts it from the budget remaining
now (reliability's 30-day window: SLI samples, else derived from incidents; no data = full budget).

Execute/remediate refuse, each time committing a PolicyBlock first and answering 409 POLICY_BLOCKED with
its reason_code: dry_run_not_successful, plan_changed, dry_run_stale, dry_run_used,
missing_approval_note, missing_rollback_plan, approval_required and (remediate) no_accepted_policy.
"""
from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import ipaddress
import json
from collections import deque
from typing import Annotated, Literal, Union

from flask import current_app
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, RootModel, StrictBool, StringConstraints,
                      TypeAdapter, ValidationError)
from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError

from zentro.accounts.models import Membership, Org, Role, User
from zentro.audit.service import Actor, lock_org, record
from zentro.automations import guardrails as rails
from zentro.automations import robot
from zentro.automations.models import (Approval, DryRun, Execution, Guardrail, Playbook, PolicyBlock, Remediation)
from zentro.compliance.attestations import Id, Text, validated
from zentro.compliance.models import Policy
from zentro.extensions import db
from zentro.incidents import service as incidents
from zentro.platform.errors import ApiError, not_found
from zentro.platform.types import iso, utcnow
from zentro.reliability import slo
from zentro.reliability.models import ChangeEvent, Service, ServiceDependency
from zentro.reliability.schemas import JsonInt

CHANGE_TAGS = ("SOC2:CC8.1", "ISO27001:A.8.32", "PCIDSS:6.5")  # change management
MAX_STEPS = 50
MAX_TEXT = 4000
MONTH_MINUTES = 30 * 24 * 60
# Assumed fully-bad minutes per action on the touched service and its dependents (module docstring).
ACTION_RISK = {
    "restart": (1.0, "a restart makes the service briefly unavailable (assumed ≈1 minute of failed requests)"),
    "scale": (0.5, "scaling moves traffic while instances join or leave (assumed ≈30 seconds of errors)"),
    "rollback_deploy": (5.0, "a rollback is a deploy of an earlier build and carries deploy risk (assumed ≈5 "
                             "minutes degraded)"),
    "toggle_flag": (0.5, "a flag flip changes behaviour at once, without a restart (assumed ≈30 seconds of "
                         "errors if the flagged path misbehaves)"),
    "block_address": (0.0, "blocking an address range drops only that traffic (no budget cost assumed; clients "
                           "inside the range fail)"),
    "run_command": (5.0, "an arbitrary command has unknown impact and is treated like a deploy (assumed ≈5 "
                         "minutes degraded)"),
}


class PolicyBlocked(ApiError):
    """A refused execute/remediate/apply: its PolicyBlock row is committed before this is raised."""

    def __init__(self, reason_code: str, reason: str, block_id: int | None = None):
        super().__init__(409, reason, error_code="POLICY_BLOCKED",
                         errors=[{"loc": [], "msg": reason, "type": "policy_block", "reason_code": reason_code,
                                  "policy_block_id": block_id}])
        self.reason_code = reason_code
        self.block_id = block_id


# --- input models (the API and the pages validate with these) ------------------------------------

NAME = r"^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]{0,118}[^\x00-\x20\x7f])?$"  # one line, no outer spaces
Name = Annotated[str, StringConstraints(min_length=1, max_length=120, pattern=NAME)]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[!-~]+$")]
FlagName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}$")]
Command = Annotated[str, StringConstraints(min_length=1, max_length=500,
                                           pattern=r"^[\t ]*[^\x00-\x20\x7f][^\x00-\x08\x0a-\x1f\x7f]*$")]


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError("cidr must be an IPv4 or IPv6 address or network, e.g. 203.0.113.0/24") from None


Cidr = Annotated[str, StringConstraints(min_length=2, max_length=64, pattern=r"^[0-9A-Fa-f.:/]+$"),
                 AfterValidator(_network)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RestartParams(_Strict):
    pass


class ScaleParams(_Strict):
    replicas: JsonInt = Field(ge=1, le=1000)


class RollbackParams(_Strict):
    to_ref: Ref | None = Field(None, description="Deploy ref to roll back to; default: the service's previous deploy.")


class ToggleFlagParams(_Strict):
    flag: FlagName
    on: StrictBool


class BlockAddressParams(_Strict):
    cidr: Cidr = Field(description="An IPv4/IPv6 address or network (host bits are cleared).")


class RunCommandParams(_Strict):
    command: Command = Field(description="One line, at most 500 characters, run on the robot backend.")


class _Step(_Strict):
    service_id: Id = Field(description="A service of this organisation (else 404).")


class RestartStep(_Step):
    action: Literal["restart"]
    params: RestartParams = Field(default_factory=RestartParams)


class ScaleStep(_Step):
    action: Literal["scale"]
    params: ScaleParams


class RollbackDeployStep(_Step):
    action: Literal["rollback_deploy"]
    params: RollbackParams = Field(default_factory=RollbackParams)


class ToggleFlagStep(_Step):
    action: Literal["toggle_flag"]
    params: ToggleFlagParams


class BlockAddressStep(_Step):
    action: Literal["block_address"]
    params: BlockAddressParams


class RunCommandStep(_Step):
    action: Literal["run_command"]
    params: RunCommandParams


Step = Annotated[Union[RestartStep, ScaleStep, RollbackDeployStep, ToggleFlagStep, BlockAddressStep, RunCommandStep],
                 Field(discriminator="action")]
Steps = Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)]
_STEPS = TypeAdapter(Steps)


class PlaybookIn(_Strict):
    name: Name = Field(description="Unique in the organisation (a clash is 409).")
    description: Text = ""
    steps: Steps = Field(description="1–50 ordered steps; each names an action, a service and its parameters.")
    enabled: StrictBool = True


class PlaybookPatchIn(_Strict):
    """Only the fields present change."""

    name: Name = None
    description: Text = None
    steps: Steps = None
    enabled: StrictBool = None


class _GuardrailIn(_Strict):
    name: Name = Field(description="Unique in the organisation (a clash is 409).")
    service_id: Id | None = Field(None, description="The service it guards; absent or null: the whole organisation.")
    enabled: StrictBool = True


class MaintenanceWindowIn(_GuardrailIn):
    kind: Literal["maintenance_window"]
    params: rails.MaintenanceWindowParams


class TierProtectionIn(_GuardrailIn):
    kind: Literal["tier_protection"]
    params: rails.TierProtectionParams


class MaxBlastRadiusIn(_GuardrailIn):
    kind: Literal["max_blast_radius"]
    params: rails.MaxBlastRadiusParams


class RequiredApproversIn(_GuardrailIn):
    kind: Literal["required_approvers"]
    params: rails.RequiredApproversParams


class ChangeFreezeIn(_GuardrailIn):
    kind: Literal["change_freeze"]
    params: rails.ChangeFreezeParams


class GuardrailIn(RootModel):
    root: Annotated[Union[MaintenanceWindowIn, TierProtectionIn, MaxBlastRadiusIn, RequiredApproversIn, ChangeFreezeIn],
                    Field(discriminator="kind")]


class GuardrailPatchIn(_Strict):
    """Only the fields present change; ``params`` is validated against the guardrail's kind (which cannot change)."""

    name: Name = None
    service_id: Id | None = Field(None, description="null: the whole organisation.")
    enabled: StrictBool = None
    params: dict = Field(None, description="The kind's parameters, complete (see the create body).")


def _validation_error(exc: ValidationError, prefix: str = "") -> ApiError:
    errors = [{"loc": [prefix, *[str(x) for x in e["loc"]]] if prefix else [str(x) for x in e["loc"]],
               "msg": e["msg"], "type": e["type"]}
              for e in exc.errors(include_url=False, include_context=False, include_input=False)]
    first = errors[0]
    return ApiError(400, f"Invalid {'.'.join(first['loc']) or 'input'}: {first['msg']}", errors=errors)


# --- lookups --------------------------------------------------------------------------------------

def _get(model, org_id: int, row_id: int, label: str, *, for_update: bool = False):
    q = select(model).where(model.org_id == org_id, model.id == row_id)
    row = db.session.scalar(q.with_for_update() if for_update else q)
    if row is None:
        raise not_found(label)
    return row


def get_playbook(org_id: int, playbook_id: int) -> Playbook:
    return _get(Playbook, org_id, playbook_id, "Playbook")


def get_guardrail(org_id: int, guardrail_id: int) -> Guardrail:
    return _get(Guardrail, org_id, guardrail_id, "Guardrail")


def get_dry_run(org_id: int, dry_run_id: int) -> DryRun:
    return _get(DryRun, org_id, dry_run_id, "Dry-run")


def get_execution(org_id: int, execution_id: int) -> Execution:
    return _get(Execution, org_id, execution_id, "Execution")


def _services(org_id: int, ids) -> dict[int, Service]:
    ids = sorted(set(ids))
    found = {s.id: s for s in db.session.scalars(select(Service).where(Service.org_id == org_id, Service.id.in_(ids)))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise ApiError(404, f"Service {missing[0]} not found in this organisation.",
                       errors=[{"loc": ["service_id"], "msg": f"service {missing[0]} not found", "type": "not_found"}])
    return found


def user_emails(ids) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.email).where(User.id.in_(ids))).all())


# --- plans ----------------------------------------------------------------------------------------

def validate_steps(steps) -> list[dict]:
    """Steps as stored: validated (400 naming the step) and normalised to plain dicts."""
    try:
        parsed = _STEPS.validate_python([s.model_dump() if isinstance(s, BaseModel) else s for s in steps or []])
    except ValidationError as exc:
        raise _validation_error(exc, "steps") from None
    return [{"action": s.action, "service_id": s.service_id, "params": s.params.model_dump()} for s in parsed]


def _previous_deploy_ref(org_id: int, service_id: int) -> str | None:
    """The ref of the deploy before the latest one (what a rollback goes back to), or None."""
    refs = db.session.scalars(select(ChangeEvent.ref).where(
        ChangeEvent.org_id == org_id, ChangeEvent.service_id == service_id, ChangeEvent.kind == "deploy",
        ChangeEvent.ref != "").order_by(ChangeEvent.occurred_at.desc(), ChangeEvent.id.desc()).limit(2)).all()
    return refs[1] if len(refs) == 2 else None


def _one_source(playbook_id: int | None, steps) -> None:
    if (playbook_id is None) == (steps is None):
        raise ApiError(400, "Give exactly one of playbook_id or steps.",
                       errors=[{"loc": ["playbook_id"], "msg": "exactly one of playbook_id or steps", "type": "value_error"}])


def plan_from(org_id: int, *, playbook_id: int | None = None, steps=None) -> list[dict]:
    """The resolved plan of a playbook (404 if not in the org) or of ad-hoc steps (400 when invalid;
    404 for a service not in the org)."""
    _one_source(playbook_id, steps)
    raw = get_playbook(org_id, playbook_id).steps if playbook_id is not None else steps
    clean = validate_steps(raw)
    services = _services(org_id, [s["service_id"] for s in clean])
    plan = []
    for s in clean:
        params = dict(s["params"])
        if s["action"] == "rollback_deploy" and not params.get("to_ref"):
            params["to_ref"] = _previous_deploy_ref(org_id, s["service_id"])
        plan.append({"action": s["action"], "service_id": s["service_id"], "service": services[s["service_id"]].name,
                     "params": params})
    return plan


def plan_hash(plan: list[dict]) -> str:
    canonical = json.dumps(plan, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def step_keys(plan: list[dict]) -> list[str]:
    return sorted({f"{s['action']}:{s['service']}" for s in plan})


def plan_action_key(plan: list[dict]) -> str:
    return ",".join(step_keys(plan))


def plan_summary(plan: list[dict]) -> str:
    """One line for people: "restart checkout; scale api to 6"."""
    def one(s: dict) -> str:
        p = s["params"]
        detail = {"scale": lambda: f" to {p['replicas']} replicas",
                  "rollback_deploy": lambda: f" to {p['to_ref'] or 'its previous deploy (none recorded)'}",
                  "toggle_flag": lambda: f" flag {p['flag']} {'on' if p['on'] else 'off'}",
                  "block_address": lambda: f" from {p['cidr']}",
                  "run_command": lambda: f": {p['command'][:60]}"}.get(s["action"], lambda: "")()
        return f"{s['action'].replace('_', ' ')} {s['service']}{detail}"
    text = "; ".join(one(s) for s in plan)
    return text if len(text) <= 500 else text[:499] + "…"


def policy_covering(org_id: int, plan: list[dict]) -> Policy | None:
    """The first accepted policy whose action patterns (fnmatch) match every step key of the plan."""
    keys = step_keys(plan)
    for pol in db.session.scalars(select(Policy).where(Policy.org_id == org_id, Policy.status == "accepted")
                                  .order_by(Policy.id)):
        patterns = [str(a) for a in (pol.actions or [])]
        if keys and all(any(fnmatch.fnmatchcase(k, pat) for pat in patterns) for k in keys):
            return pol
    return None


# --- blast radius and SLO impact ------------------------------------------------------------------

def _dependents_graph(org_id: int) -> dict[int, list[int]]:
    """depends_on_id → [service ids that depend on it]."""
    graph: dict[int, list[int]] = {}
    for service_id, depends_on_id in db.session.execute(
            select(ServiceDependency.service_id, ServiceDependency.depends_on_id)
            .where(ServiceDependency.org_id == org_id)):
        graph.setdefault(depends_on_id, []).append(service_id)
    return graph


def _reach(graph: dict[int, list[int]], start: set[int]) -> dict[int, int]:
    """Breadth-first over dependents: {service id: depth} (0 for the start set)."""
    depth = {s: 0 for s in start}
    queue = deque(start)
    while queue:
        node = queue.popleft()
        for nxt in graph.get(node, ()):
            if nxt not in depth:
                depth[nxt] = depth[node] + 1
                queue.append(nxt)
    return depth


def blast_radius(org_id: int, plan: list[dict]) -> dict:
    graph = _dependents_graph(org_id)
    touched = {s["service_id"] for s in plan}
    depth = _reach(graph, touched)
    services = _services(org_id, depth)
    rows = sorted(({"service_id": sid, "name": services[sid].name, "tier": services[sid].tier, "depth": d,
                    "role": "touched" if d == 0 else "dependent"} for sid, d in depth.items()),
                  key=lambda r: (r["depth"], r["tier"], r["name"]))
    by_tier: dict[str, int] = {}
    for r in rows:
        by_tier[str(r["tier"])] = by_tier.get(str(r["tier"]), 0) + 1
    return {"services": rows, "touched": len(touched), "dependents": len(rows) - len(touched), "total": len(rows),
            "by_tier": by_tier, "most_critical_tier": min(r["tier"] for r in rows)}


def slo_impact(org_id: int, plan: list[dict], radius: dict, now: dt.datetime) -> list[dict]:
    """Per service of the radius: budget remaining now, the assumed cost of the plan, the prediction."""
    graph = _dependents_graph(org_id)
    minutes: dict[int, float] = {}
    actions: dict[int, set[str]] = {}
    for step in plan:
        risk = ACTION_RISK[step["action"]][0]
        for sid in _reach(graph, {step["service_id"]}):
            minutes[sid] = max(minutes.get(sid, 0.0), risk)
            actions.setdefault(sid, set()).add(step["action"])
    ids = [r["service_id"] for r in radius["services"]]
    services = _services(org_id, ids)
    month = slo.windows_for(org_id, list(services.values()), {"30d": slo.SLO_WINDOWS["30d"]}, now)
    out = []
    for row in radius["services"]:
        svc = services[row["service_id"]]
        window = month[svc.id]["30d"]
        remaining = window.remaining_ratio if window.has_data else 1.0
        budget_minutes = MONTH_MINUTES * slo.budget_fraction(svc.slo_target)
        cost = round(minutes[svc.id] / budget_minutes, 6) if budget_minutes > 0 else 0.0
        predicted = round(remaining - cost, 6)
        why = "; ".join(ACTION_RISK[a][1] for a in sorted(actions[svc.id]))
        if row["role"] == "dependent":
            why = f"depends on a touched service, so it is assumed to feel the same minutes: {why}"
        out.append({
            "service_id": svc.id, "name": svc.name, "tier": svc.tier, "role": row["role"], "slo_target": svc.slo_target,
            "budget_source": window.source, "remaining_ratio_30d": remaining, "risk_minutes": minutes[svc.id],
            "predicted_budget_cost": cost, "predicted_remaining_ratio": predicted,
            "status": "exhausted" if predicted <= 0 else "at_risk" if predicted < slo.WARNING_REMAINING else "ok",
            "assumption": why + ("" if window.has_data else " (no SLI data or incidents: a full budget is assumed)"),
        })
    return out


def _checks(org_id: int, radius: dict, now: dt.datetime) -> list[dict]:
    guards = db.session.scalars(select(Guardrail).where(Guardrail.org_id == org_id, Guardrail.enabled.is_(True))
                                .order_by(Guardrail.id)).all()
    scope = [rails.RadiusService(r["service_id"], r["name"], r["tier"], r["role"] == "touched")
             for r in radius["services"]]
    return rails.evaluate(guards, scope, now)


# --- dry-run --------------------------------------------------------------------------------------

def dry_run(org_id: int, *, actor: Actor, user_id: int | None, playbook_id: int | None = None, steps=None,
            incident_id: int | None = None, persist: bool = True, now: dt.datetime | None = None) -> DryRun:
    """Compute what the plan would do and which guardrails apply. With ``persist`` the dry-run is
    stored, audited and put on the incident's timeline; otherwise the returned row is transient (no id)
    and cannot be executed."""
    now = now or utcnow()
    _one_source(playbook_id, steps)
    if playbook_id is not None and not get_playbook(org_id, playbook_id).enabled:
        raise ApiError(409, "This playbook is disabled; enable it before dry-running it.")
    inc = incidents.get_incident(org_id, incident_id) if incident_id is not None else None
    plan = plan_from(org_id, playbook_id=playbook_id, steps=steps)
    radius = blast_radius(org_id, plan)
    checks = _checks(org_id, radius, now)
    row = DryRun(org_id=org_id, playbook_id=playbook_id, incident_id=incident_id, plan=plan, plan_hash=plan_hash(plan),
                 blast_radius=radius, slo_impact=slo_impact(org_id, plan, radius, now), checks=checks,
                 verdict=rails.overall(checks), created_by_id=user_id, created_at=now,
                 expires_at=now + dt.timedelta(minutes=current_app.config["ZENTRO_DRY_RUN_TTL_MINUTES"]))
    if not persist:
        return row
    db.session.add(row)
    db.session.flush()
    record(org_id, "automation.dry_run", actor, target_type="dry_run", target_id=row.id, control_tags=CHANGE_TAGS,
           now=now, data={"plan_hash": row.plan_hash, "verdict": row.verdict, "playbook_id": playbook_id,
                          "incident_id": incident_id, "services": radius["total"], "summary": plan_summary(plan)})
    if inc is not None:
        incidents.add_event(inc, "dry_run", f"Dry-run #{row.id} ({row.verdict.replace('_', ' ')}): {plan_summary(plan)}",
                            actor, {"dry_run_id": row.id, "plan_hash": row.plan_hash, "verdict": row.verdict}, now)
    db.session.commit()
    return row


# --- execute / remediate --------------------------------------------------------------------------

def _block(org_id: int, operation: str, code: str, reason: str, *, actor: Actor, user_id: int | None,
           dry: DryRun | None, now: dt.datetime) -> PolicyBlocked:
    """Discard the attempt, commit the PolicyBlock (audited, on the incident's timeline), return the error."""
    db.session.rollback()
    row = PolicyBlock(org_id=org_id, user_id=user_id, operation=operation, reason_code=code, reason=reason,
                      plan_hash=dry.plan_hash if dry else "", dry_run_id=dry.id if dry else None,
                      playbook_id=dry.playbook_id if dry else None, incident_id=dry.incident_id if dry else None,
                      created_at=now)
    db.session.add(row)
    db.session.flush()
    record(org_id, "automation.blocked", actor, target_type="policy_block", target_id=row.id, control_tags=CHANGE_TAGS,
           now=now, data={"operation": operation, "reason_code": code, "reason": reason,
                          "dry_run_id": row.dry_run_id, "plan_hash": row.plan_hash})
    if dry is not None and dry.incident_id is not None:
        inc = incidents.get_incident(org_id, dry.incident_id)
        incidents.add_event(inc, "policy_block", f"{operation.capitalize()} of dry-run #{dry.id} blocked: {reason}",
                            actor, {"policy_block_id": row.id, "reason_code": code, "dry_run_id": dry.id}, now)
    db.session.commit()
    return PolicyBlocked(code, reason, row.id)


def _lost_race(org_id: int, operation: str, dry_run_id: int, *, actor: Actor, user_id: int | None,
               now: dt.datetime) -> PolicyBlocked:
    """The unique dry_run_id refused this execution: another one of the same dry-run committed first."""
    db.session.rollback()
    return _block(org_id, operation, "dry_run_used", f"Dry-run #{dry_run_id} was already executed.",
                  actor=actor, user_id=user_id, dry=get_dry_run(org_id, dry_run_id), now=now)


def _execution_of(dry_run_id: int) -> Execution | None:
    return db.session.scalar(select(Execution).where(Execution.dry_run_id == dry_run_id))


def _unused(approval: Approval) -> bool:
    return not db.session.scalar(select(exists().where(Execution.approval_id == approval.id)))


def _approval_refusal(org_id: int, dry: DryRun, approval_id: int | None) -> tuple[Approval | None, str]:
    """The approved, unused approval of this plan that the execution consumes, or why there is none."""
    needed = "; ".join(c["reason"] for c in dry.checks if c["verdict"] == "needs_approval")
    if approval_id is not None:
        candidates = [_get(Approval, org_id, approval_id, "Approval")]
        if candidates[0].plan_hash != dry.plan_hash:
            return None, f"Approval #{approval_id} is for another plan; this plan needs its own ({needed})."
    else:
        candidates = db.session.scalars(select(Approval).where(
            Approval.org_id == org_id, Approval.plan_hash == dry.plan_hash)
            .order_by((Approval.dry_run_id == dry.id).desc(), Approval.id.desc())).all()
    for a in candidates:
        if a.status == "approved" and _unused(a):
            return a, ""
    if not candidates:
        return None, f"A guardrail requires an approval and none was requested for this plan ({needed})."
    a = candidates[0]
    if a.status == "pending":
        return None, f"Approval #{a.id} for this plan is still pending ({needed})."
    if a.status == "rejected":
        who = user_emails([a.decided_by_id]).get(a.decided_by_id, "someone")
        return None, f"Approval #{a.id} for this plan was rejected by {who}."
    return None, f"Approval #{a.id} for this plan was already used by an execution; request a new one."


def _refusal(org_id: int, dry: DryRun, *, plan_hash_given: str, approval_note: str, rollback_plan: str,
             approval_id: int | None, require_policy: bool, now: dt.datetime):
    """(reason_code, reason) of the first rule the attempt breaks, else (None, (approval, policy))."""
    if dry.verdict == "blocked":
        blocked = "; ".join(c["reason"] for c in dry.checks if c["verdict"] == "blocked")
        return ("dry_run_not_successful", f"The dry-run was blocked by a guardrail: {blocked}"), None
    if plan_hash_given != dry.plan_hash:
        return ("plan_changed", "The plan hash sent differs from the dry-run's; dry-run the plan you mean to run."), None
    if dry.playbook_id is not None:
        try:
            current = plan_hash(plan_from(org_id, playbook_id=dry.playbook_id))
        except ApiError as exc:
            return ("plan_changed", f"The playbook can no longer be planned ({exc.detail}); dry-run it again."), None
        if current != dry.plan_hash:
            return ("plan_changed", "The playbook (or what it resolves to, such as the previous deploy) changed "
                                    "since the dry-run; dry-run it again."), None
    if now >= dry.expires_at:
        return ("dry_run_stale", f"The dry-run expired at {iso(dry.expires_at)}; dry-runs are valid for "
                                 f"{current_app.config['ZENTRO_DRY_RUN_TTL_MINUTES']} minutes. Dry-run again."), None
    used = _execution_of(dry.id)
    if used is not None:
        return ("dry_run_used", f"Dry-run #{dry.id} was already executed (execution #{used.id})."), None
    if not approval_note.strip():
        return ("missing_approval_note", "An approval note is required: say why this change is being made."), None
    if not rollback_plan.strip():
        return ("missing_rollback_plan", "A rollback plan is required: say how to undo this change."), None
    approval = None
    if dry.verdict == "needs_approval":
        approval, why = _approval_refusal(org_id, dry, approval_id)
        if approval is None:
            return ("approval_required", why), None
    elif approval_id is not None:
        _get(Approval, org_id, approval_id, "Approval")
    policy = None
    if require_policy:
        policy = policy_covering(org_id, dry.plan)
        if policy is None:
            return ("no_accepted_policy", f"No accepted policy covers {plan_action_key(dry.plan)}: a remediation runs "
                                          "only actions an accepted policy allows."), None
    return None, (approval, policy)


def _guarded(org_id: int, *, kind: str, operation: str, actor: Actor, user_id: int | None, dry_run_id: int,
             plan_hash: str, approval_note: str, rollback_plan: str, approval_id: int | None,
             now: dt.datetime | None) -> Execution:
    now = now or utcnow()
    dry = get_dry_run(org_id, dry_run_id)
    lock_org(org_id)  # one guarded run per org at a time: the checks below see every earlier execution
    db.session.refresh(dry)
    refused, ok = _refusal(org_id, dry, plan_hash_given=plan_hash, approval_note=approval_note,
                           rollback_plan=rollback_plan, approval_id=approval_id, require_policy=kind == "remediate",
                           now=now)
    if refused:
        raise _block(org_id, operation, *refused, actor=actor, user_id=user_id, dry=dry, now=now)
    approval, policy = ok
    ex = Execution(org_id=org_id, kind=kind, dry_run_id=dry.id, playbook_id=dry.playbook_id,
                   incident_id=dry.incident_id, approval_id=approval.id if approval else None,
                   policy_id=policy.id if policy else None, plan_hash=dry.plan_hash, approval_note=approval_note,
                   rollback_plan=rollback_plan, mode="robot" if robot.configured() else "manual", status="recorded",
                   detail="Sending to the robot backend." if robot.configured() else robot.MANUAL_DETAIL,
                   created_by_id=user_id, created_at=now)
    db.session.add(ex)
    try:
        db.session.flush()
    except IntegrityError:  # a concurrent execute of the same dry-run won the unique dry_run_id
        raise _lost_race(org_id, operation, dry_run_id, actor=actor, user_id=user_id, now=now) from None
    summary = plan_summary(dry.plan)
    record(org_id, "automation.executed" if kind == "execute" else "automation.remediated", actor,
           target_type="execution", target_id=ex.id, control_tags=CHANGE_TAGS, now=now,
           data={"dry_run_id": dry.id, "plan_hash": dry.plan_hash, "mode": ex.mode, "approval_id": ex.approval_id,
                 "policy_id": ex.policy_id, "approval_note": approval_note, "rollback_plan": rollback_plan,
                 "summary": summary})
    inc = incidents.get_incident(org_id, dry.incident_id) if dry.incident_id is not None else None
    if inc is not None:
        incidents.add_event(inc, "execution", f"{'Remediation' if kind == 'remediate' else 'Execution'} #{ex.id} "
                            f"({ex.mode}): {summary}. Rollback: {rollback_plan[:200]}", actor,
                            {"execution_id": ex.id, "dry_run_id": dry.id, "mode": ex.mode}, now)
    try:
        db.session.commit()
    except IntegrityError:
        raise _lost_race(org_id, operation, dry_run_id, actor=actor, user_id=user_id, now=now) from None
    if ex.mode == "robot":
        _dispatch(ex, dry, actor=actor, inc_id=dry.incident_id, now=now)
    return ex


def _dispatch(ex: Execution, dry: DryRun, *, actor: Actor, inc_id: int | None, now: dt.datetime) -> None:
    """Send the committed execution to the robot backend and record its answer (after the commit, so a
    slow backend holds no lock and the unique dry-run guard already stands)."""
    org = db.session.get(Org, ex.org_id)
    requested_by = user_emails([ex.created_by_id]).get(ex.created_by_id, actor.label)
    ok, status, detail = robot.send({"org": org.slug, "execution_id": ex.id, "kind": ex.kind, "plan": dry.plan,
                                     "plan_hash": ex.plan_hash, "rollback_plan": ex.rollback_plan,
                                     "approval_note": ex.approval_note, "requested_by": requested_by,
                                     "incident_id": inc_id})
    ex.status = "succeeded" if ok else "failed"
    ex.robot_status = status
    ex.robot_response = {"http_status": status, "detail": detail}
    ex.detail = (f"Accepted by the robot backend ({detail})." if ok
                 else f"The robot backend did not accept the execution: {detail}")
    record(ex.org_id, "automation.robot_dispatch", actor, target_type="execution", target_id=ex.id,
           control_tags=CHANGE_TAGS, now=now, data={"status": ex.status, "http_status": status, "detail": detail})
    if inc_id is not None:
        incidents.add_event(incidents.get_incident(ex.org_id, inc_id), "execution",
                            f"Execution #{ex.id}: {ex.detail}", actor, {"execution_id": ex.id, "status": ex.status}, now)
    db.session.commit()


def execute(org_id: int, *, actor: Actor, user_id: int | None, dry_run_id: int, plan_hash: str, approval_note: str,
            rollback_plan: str, approval_id: int | None = None, now: dt.datetime | None = None) -> Execution:
    """Record (and, with a robot backend, send) the dry-run's plan under every guardrail rule."""
    return _guarded(org_id, kind="execute", operation="execute", actor=actor, user_id=user_id, dry_run_id=dry_run_id,
                    plan_hash=plan_hash, approval_note=approval_note, rollback_plan=rollback_plan,
                    approval_id=approval_id, now=now)


def remediate(org_id: int, *, actor: Actor, user_id: int | None, dry_run_id: int, plan_hash: str, approval_note: str,
              rollback_plan: str, approval_id: int | None = None, now: dt.datetime | None = None,
              operation: str = "remediate") -> Execution:
    """As execute, and an accepted policy must cover every action of the plan."""
    return _guarded(org_id, kind="remediate", operation=operation, actor=actor, user_id=user_id,
                    dry_run_id=dry_run_id, plan_hash=plan_hash, approval_note=approval_note,
                    rollback_plan=rollback_plan, approval_id=approval_id, now=now)


# --- playbook and guardrail CRUD ------------------------------------------------------------------

def _flush_unique(label: str, name: str) -> None:
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise ApiError(409, f"A {label} named {name!r} already exists in this organisation.") from None


def _name_taken(model, org_id: int, name: str, exclude_id: int | None = None) -> bool:
    q = select(model.id).where(model.org_id == org_id, func.lower(model.name) == name.lower())
    if exclude_id is not None:
        q = q.where(model.id != exclude_id)
    return db.session.scalar(q.limit(1)) is not None


def _check_name(model, label: str, org_id: int, name: str, exclude_id: int | None = None) -> None:
    lock_org(org_id)
    if _name_taken(model, org_id, name, exclude_id):
        raise ApiError(409, f"A {label} named {name!r} already exists in this organisation.")


def playbooks_query(org_id: int):
    return select(Playbook).where(Playbook.org_id == org_id)


def list_playbooks(org_id: int) -> list[Playbook]:
    return list(db.session.scalars(playbooks_query(org_id).order_by(Playbook.name)))


def create_playbook(org_id: int, data: PlaybookIn | dict, *, actor: Actor, user_id: int | None,
                    now: dt.datetime | None = None) -> Playbook:
    now = now or utcnow()
    data = data if isinstance(data, PlaybookIn) else validated(PlaybookIn, data, {})
    steps = validate_steps(data.steps)
    _services(org_id, [s["service_id"] for s in steps])
    _check_name(Playbook, "playbook", org_id, data.name)
    pb = Playbook(org_id=org_id, name=data.name, description=data.description, steps=steps, enabled=data.enabled,
                  created_by_id=user_id, created_at=now, updated_at=now)
    db.session.add(pb)
    _flush_unique("playbook", data.name)
    record(org_id, "playbook.created", actor, target_type="playbook", target_id=pb.id, control_tags=CHANGE_TAGS,
           now=now, data={"name": pb.name, "steps": steps, "enabled": pb.enabled})
    db.session.commit()
    return pb


def _given_fields(model: type, changes: dict, nullable: tuple[str, ...] = ()) -> dict:
    """The fields a PATCH body sets (validated with ``model``); null is refused except for ``nullable`` ones."""
    data = validated(model, changes, {})
    given = {k: getattr(data, k) for k in data.model_fields_set}
    nulls = [k for k, v in given.items() if v is None and k not in nullable]
    if nulls:
        raise ApiError(400, "Fields may not be null.", errors=[{"loc": [k], "msg": "may not be null", "type": "value_error"}
                                                              for k in nulls])
    return given


def _apply_changes(org_id: int, row, label: str, given: dict, *, actor: Actor, now: dt.datetime,
                   audit: dict) -> None:
    """Set the fields that differ, check the name stays unique and audit ``<label>.updated`` with from/to and
    ``audit`` (change-management tags); a no-op records nothing."""
    given = {k: v for k, v in given.items() if getattr(row, k) != v}
    if not given:
        return
    if "name" in given:
        _check_name(type(row), label, org_id, given["name"], row.id)
    before = {k: getattr(row, k) for k in given}
    for k, v in given.items():
        setattr(row, k, v)
    row.updated_at = now
    _flush_unique(label, row.name)
    record(org_id, f"{label}.updated", actor, target_type=label, target_id=row.id, control_tags=CHANGE_TAGS,
           now=now, data={"name": row.name, **audit, "from": before, "to": given})
    db.session.commit()


def update_playbook(org_id: int, playbook_id: int, changes: dict, *, actor: Actor,
                    now: dt.datetime | None = None) -> Playbook:
    """Change the fields given (a PlaybookPatchIn dump); a no-op records nothing."""
    now = now or utcnow()
    pb = get_playbook(org_id, playbook_id)
    given = _given_fields(PlaybookPatchIn, changes)
    if "steps" in given:
        given["steps"] = validate_steps(given["steps"])
        _services(org_id, [s["service_id"] for s in given["steps"]])
    _apply_changes(org_id, pb, "playbook", given, actor=actor, now=now, audit={})
    return pb


def delete_playbook(org_id: int, playbook_id: int, *, actor: Actor, now: dt.datetime | None = None) -> dict:
    pb = get_playbook(org_id, playbook_id)
    snapshot = playbook_json(pb)
    db.session.delete(pb)
    record(org_id, "playbook.deleted", actor, target_type="playbook", target_id=playbook_id, control_tags=CHANGE_TAGS,
           now=now, data={"name": pb.name})
    db.session.commit()
    return snapshot


def guardrails_query(org_id: int):
    return select(Guardrail).where(Guardrail.org_id == org_id)


def list_guardrails(org_id: int) -> list[Guardrail]:
    return list(db.session.scalars(guardrails_query(org_id).order_by(Guardrail.name)))


def _guardrail_params(org_id: int, kind: str, params) -> dict:
    """Validated params for ``kind`` as stored (JSON); approvers must be members who may decide."""
    model = rails.PARAMS[kind]
    try:
        parsed = params if isinstance(params, model) else model.model_validate(params)
    except ValidationError as exc:
        raise _validation_error(exc, "params") from None
    out = parsed.model_dump(mode="json")
    if kind == "change_freeze" and parsed.ends_at <= parsed.starts_at:
        raise ApiError(400, "A change freeze must end after it starts.",
                       errors=[{"loc": ["params", "ends_at"], "msg": "must be after starts_at", "type": "value_error"}])
    if kind == "required_approvers":
        emails = [e.lower() for e in out["approvers"]]
        roles = dict(db.session.execute(select(func.lower(User.email), Membership.role)
                                        .join(Membership, Membership.user_id == User.id)
                                        .where(Membership.org_id == org_id, func.lower(User.email).in_(emails))).all())
        missing = [e for e in emails if e not in roles]
        if missing:
            raise ApiError(404, f"Approver {missing[0]} is not a member of this organisation.",
                           errors=[{"loc": ["params", "approvers"], "msg": "not a member", "type": "not_found"}])
        viewers = [e for e in emails if roles[e] == Role.viewer.value]
        if viewers:
            raise ApiError(409, f"Approver {viewers[0]} is a viewer; viewers cannot decide approvals.")
        out["approvers"] = list(dict.fromkeys(emails))
    return out


def create_guardrail(org_id: int, data: GuardrailIn | dict, *, actor: Actor, user_id: int | None,
                     now: dt.datetime | None = None) -> Guardrail:
    now = now or utcnow()
    data = (data if isinstance(data, GuardrailIn) else validated(GuardrailIn, data, {})).root
    if data.service_id is not None:
        _services(org_id, [data.service_id])
    params = _guardrail_params(org_id, data.kind, data.params)
    _check_name(Guardrail, "guardrail", org_id, data.name)
    g = Guardrail(org_id=org_id, service_id=data.service_id, name=data.name, kind=data.kind, params=params,
                  enabled=data.enabled, created_by_id=user_id, created_at=now, updated_at=now)
    db.session.add(g)
    _flush_unique("guardrail", data.name)
    record(org_id, "guardrail.created", actor, target_type="guardrail", target_id=g.id, control_tags=CHANGE_TAGS,
           now=now, data={"name": g.name, "kind": g.kind, "service_id": g.service_id, "params": params})
    db.session.commit()
    return g


def update_guardrail(org_id: int, guardrail_id: int, changes: dict, *, actor: Actor,
                     now: dt.datetime | None = None) -> Guardrail:
    now = now or utcnow()
    g = get_guardrail(org_id, guardrail_id)
    given = _given_fields(GuardrailPatchIn, changes, nullable=("service_id",))
    if given.get("service_id") is not None:
        _services(org_id, [given["service_id"]])
    if "params" in given:
        given["params"] = _guardrail_params(org_id, g.kind, given["params"])
    _apply_changes(org_id, g, "guardrail", given, actor=actor, now=now, audit={"kind": g.kind})
    return g


def delete_guardrail(org_id: int, guardrail_id: int, *, actor: Actor, now: dt.datetime | None = None) -> dict:
    g = get_guardrail(org_id, guardrail_id)
    snapshot = guardrail_json(g)
    db.session.delete(g)
    record(org_id, "guardrail.deleted", actor, target_type="guardrail", target_id=guardrail_id,
           control_tags=CHANGE_TAGS, now=now, data={"name": g.name, "kind": g.kind})
    db.session.commit()
    return snapshot


# --- remediation proposals -----------------------------------------------------------------------

Title = Annotated[str, StringConstraints(min_length=1, max_length=300, pattern=r"^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]{0,298}[^\x00-\x20\x7f])?$")]


class RemediationIn(_Strict):
    title: Title
    rationale: Text = ""
    playbook_id: Id = Field(description="The playbook that carries out the fix (of this organisation, else 404).")
    incident_id: Id | None = Field(None, description="The incident it remediates (of this organisation, else 404).")
    source: Literal["manual"] = "manual"


def get_remediation(org_id: int, remediation_id: int, *, for_update: bool = False) -> Remediation:
    return _get(Remediation, org_id, remediation_id, "Remediation", for_update=for_update)


def remediations_query(org_id: int, status: str | None = None):
    q = select(Remediation).where(Remediation.org_id == org_id)
    return q.where(Remediation.status == status) if status else q


def _remediation_audit(r: Remediation, action: str, actor: Actor, now: dt.datetime, **data) -> None:
    record(r.org_id, f"remediation.{action}", actor, target_type="remediation", target_id=r.id,
           control_tags=CHANGE_TAGS, now=now, data={"title": r.title, "status": r.status, **data})


def _open_remediation(org_id: int, remediation_id: int, doing: str) -> Remediation:
    lock_org(org_id)
    r = get_remediation(org_id, remediation_id)
    db.session.refresh(r)
    if r.status not in ("proposed", "approved"):
        raise ApiError(409, f"This remediation is {r.status}; it cannot be {doing}.")
    return r


def create_remediation(org_id: int, data: RemediationIn | dict, *, actor: Actor, user_id: int | None,
                       now: dt.datetime | None = None) -> Remediation:
    now = now or utcnow()
    data = data if isinstance(data, RemediationIn) else validated(RemediationIn, data, {})
    get_playbook(org_id, data.playbook_id)
    if data.incident_id is not None:
        incidents.get_incident(org_id, data.incident_id)
    r = Remediation(org_id=org_id, playbook_id=data.playbook_id, incident_id=data.incident_id, title=data.title,
                    rationale=data.rationale, source=data.source, status="proposed", created_by_id=user_id,
                    created_at=now, updated_at=now)
    db.session.add(r)
    db.session.flush()
    _remediation_audit(r, "proposed", actor, now, playbook_id=r.playbook_id, incident_id=r.incident_id)
    db.session.commit()
    return r


def preview_remediation(org_id: int, remediation_id: int, *, actor: Actor, user_id: int | None,
                        now: dt.datetime | None = None) -> Remediation:
    """Dry-run the remediation's playbook (persisted) and keep it as the preview. A preview of another
    plan than the one approved sends the remediation back to proposed."""
    now = now or utcnow()
    r = _open_remediation(org_id, remediation_id, "previewed")
    if r.playbook_id is None:
        raise ApiError(409, "The remediation's playbook was deleted; propose a new remediation.")
    dry = dry_run(org_id, actor=actor, user_id=user_id, playbook_id=r.playbook_id, incident_id=r.incident_id,
                  persist=True, now=now)
    r = get_remediation(org_id, remediation_id)
    r.dry_run_id = dry.id
    approval = db.session.get(Approval, r.approval_id) if r.approval_id else None
    if r.status == "approved" and (approval is None or approval.plan_hash != dry.plan_hash):
        r.status, r.approval_id = "proposed", None
    r.updated_at = now
    _remediation_audit(r, "previewed", actor, now, dry_run_id=dry.id, verdict=dry.verdict, plan_hash=dry.plan_hash)
    db.session.commit()
    return r


def approve_remediation(org_id: int, remediation_id: int, *, actor: Actor, user_id: int | None, note: str = "",
                        via: str = "api", now: dt.datetime | None = None) -> Remediation:
    """Approve the previewed plan (owner/admin; not the proposer): records an approved Approval of the
    preview's plan, which apply then uses where a guardrail demands one."""
    now = now or utcnow()
    r = _open_remediation(org_id, remediation_id, "approved")
    if r.status == "approved":
        who = user_emails([r.decided_by_id]).get(r.decided_by_id, "someone")
        raise ApiError(409, f"This remediation was already approved by {who}.")
    if r.created_by_id is not None and r.created_by_id == user_id:
        raise ApiError(403, "You proposed this remediation; someone else has to approve it.")
    dry = db.session.get(DryRun, r.dry_run_id) if r.dry_run_id else None
    if dry is None:
        raise ApiError(409, "Preview the remediation first, so that the approval is for a checked plan.")
    if dry.verdict == "blocked":
        raise ApiError(409, "The preview was blocked by a guardrail; a blocked plan cannot be approved.")
    a = Approval(org_id=org_id, dry_run_id=dry.id, playbook_id=dry.playbook_id, incident_id=dry.incident_id,
                 plan_hash=dry.plan_hash, action_key=plan_action_key(dry.plan)[:200], summary=plan_summary(dry.plan),
                 reason=f"Remediation #{r.id}: {r.title}", status="approved", requested_by_id=r.created_by_id,
                 decided_by_id=user_id, decided_via=via, decision_note=note, decided_at=now, created_at=now)
    db.session.add(a)
    db.session.flush()
    r.status, r.approval_id, r.decided_by_id, r.decision_note, r.updated_at = "approved", a.id, user_id, note, now
    record(org_id, "approval.approved", actor, target_type="approval", target_id=a.id, control_tags=CHANGE_TAGS,
           now=now, data={"via": via, "note": note, "plan_hash": a.plan_hash, "action_key": a.action_key,
                          "remediation_id": r.id})
    _remediation_audit(r, "approved", actor, now, approval_id=a.id, note=note)
    if r.incident_id is not None:
        incidents.add_event(incidents.get_incident(org_id, r.incident_id), "approval",
                            f"Remediation #{r.id} approved: {r.title}", actor,
                            {"remediation_id": r.id, "approval_id": a.id}, now)
    db.session.commit()
    return r


def reject_remediation(org_id: int, remediation_id: int, *, actor: Actor, user_id: int | None, note: str,
                       now: dt.datetime | None = None) -> Remediation:
    now = now or utcnow()
    if not note.strip():
        raise ApiError(400, "A note is required: say why the remediation is rejected.",
                       errors=[{"loc": ["note"], "msg": "required", "type": "value_error"}])
    r = _open_remediation(org_id, remediation_id, "rejected")
    r.status, r.decided_by_id, r.decision_note, r.updated_at = "rejected", user_id, note, now
    _remediation_audit(r, "rejected", actor, now, note=note)
    if r.incident_id is not None:
        incidents.add_event(incidents.get_incident(org_id, r.incident_id), "approval",
                            f"Remediation #{r.id} rejected: {note}", actor, {"remediation_id": r.id}, now)
    db.session.commit()
    return r


def apply_remediation(org_id: int, remediation_id: int, *, actor: Actor, user_id: int | None, approval_note: str,
                      rollback_plan: str, now: dt.datetime | None = None) -> Remediation:
    """Remediate with the latest preview (every execute rule, plus an accepted policy covering the plan)."""
    now = now or utcnow()
    r = _open_remediation(org_id, remediation_id, "applied")
    dry = db.session.get(DryRun, r.dry_run_id) if r.dry_run_id else None
    if dry is None:
        raise _block(org_id, "apply", "dry_run_missing", f"Remediation #{r.id} has no preview: preview it, then apply.",
                     actor=actor, user_id=user_id, dry=None, now=now)
    ex = remediate(org_id, actor=actor, user_id=user_id, dry_run_id=dry.id, plan_hash=dry.plan_hash,
                   approval_note=approval_note, rollback_plan=rollback_plan, approval_id=r.approval_id, now=now,
                   operation="apply")
    r = get_remediation(org_id, remediation_id)
    r.status = "failed" if ex.status == "failed" else "applied"
    r.execution_id, r.updated_at = ex.id, now
    _remediation_audit(r, "applied", actor, now, execution_id=ex.id, execution_status=ex.status)
    db.session.commit()
    return r


# --- JSON -----------------------------------------------------------------------------------------

def playbook_json(pb: Playbook) -> dict:
    return {"id": pb.id, "name": pb.name, "description": pb.description, "steps": list(pb.steps or []),
            "enabled": pb.enabled, "created_at": iso(pb.created_at), "updated_at": iso(pb.updated_at)}


def guardrail_json(g: Guardrail) -> dict:
    return {"id": g.id, "name": g.name, "kind": g.kind, "service_id": g.service_id, "scope": "service" if
            g.service_id is not None else "org", "params": dict(g.params or {}), "enabled": g.enabled,
            "created_at": iso(g.created_at), "updated_at": iso(g.updated_at)}


def dry_run_json(d: DryRun, now: dt.datetime | None = None) -> dict:
    now = now or utcnow()
    return {"id": d.id, "persisted": d.id is not None, "playbook_id": d.playbook_id, "incident_id": d.incident_id,
            "plan": d.plan, "plan_hash": d.plan_hash, "action_key": plan_action_key(d.plan),
            "summary": plan_summary(d.plan), "blast_radius": d.blast_radius, "slo_impact": d.slo_impact,
            "checks": d.checks, "verdict": d.verdict, "created_at": iso(d.created_at), "expires_at": iso(d.expires_at),
            "fresh": now < d.expires_at}


def execution_json(ex: Execution) -> dict:
    return {"id": ex.id, "kind": ex.kind, "dry_run_id": ex.dry_run_id, "playbook_id": ex.playbook_id,
            "incident_id": ex.incident_id, "approval_id": ex.approval_id, "policy_id": ex.policy_id,
            "plan_hash": ex.plan_hash, "approval_note": ex.approval_note, "rollback_plan": ex.rollback_plan,
            "mode": ex.mode, "status": ex.status, "robot_status": ex.robot_status, "detail": ex.detail,
            "created_by": user_emails([ex.created_by_id]).get(ex.created_by_id), "created_at": iso(ex.created_at)}


def approval_json(a: Approval) -> dict:
    emails = user_emails([a.requested_by_id, a.decided_by_id])
    return {"id": a.id, "dry_run_id": a.dry_run_id, "playbook_id": a.playbook_id, "incident_id": a.incident_id,
            "plan_hash": a.plan_hash, "action_key": a.action_key, "summary": a.summary, "reason": a.reason,
            "status": a.status, "requested_by": emails.get(a.requested_by_id),
            "decided_by": emails.get(a.decided_by_id), "decided_via": a.decided_via or None,
            "decision_note": a.decision_note, "decided_at": iso(a.decided_at), "slack_status": a.slack_status,
            "created_at": iso(a.created_at)}


def policy_block_json(b: PolicyBlock) -> dict:
    return {"id": b.id, "operation": b.operation, "reason_code": b.reason_code, "reason": b.reason,
            "plan_hash": b.plan_hash, "dry_run_id": b.dry_run_id, "playbook_id": b.playbook_id,
            "incident_id": b.incident_id, "created_at": iso(b.created_at)}


def remediation_json(r: Remediation, now: dt.datetime | None = None) -> dict:
    dry = db.session.get(DryRun, r.dry_run_id) if r.dry_run_id else None
    ex = db.session.get(Execution, r.execution_id) if r.execution_id else None
    emails = user_emails([r.decided_by_id, r.created_by_id])
    return {"id": r.id, "title": r.title, "rationale": r.rationale, "source": r.source, "status": r.status,
            "playbook_id": r.playbook_id, "incident_id": r.incident_id, "approval_id": r.approval_id,
            "preview": dry_run_json(dry, now) if dry else None, "execution": execution_json(ex) if ex else None,
            "decided_by": emails.get(r.decided_by_id), "decision_note": r.decision_note,
            "created_by": emails.get(r.created_by_id), "created_at": iso(r.created_at),
            "updated_at": iso(r.updated_at)}
