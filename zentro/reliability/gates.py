"""Deploy gates: a pass/fail answer for a CI/CD pipeline about to deploy a service, with its reasons.

Rules per service (a GateRule row; without one, DEFAULT_RULES apply):

* ``enabled``: a disabled gate always passes, and the answer says that it is disabled.
* ``block_severities`` (default critical, high): an active incident (status open, acknowledged or
  mitigated, as on the service page) of one of these severities on the service fails check
  ``incidents``; on a service it depends on, directly or transitively, fails ``dependency_incidents``
  (skipped when ``include_dependencies`` is off).
* ``error_budget`` (on) with ``min_remaining_percent`` (0): the service's 30-day error budget as the
  SLO page shows it (zentro.reliability.slo.windows_for). With 0 the check fails once the budget is
  exhausted (bad events spent it all, like the SLO status "30-day error budget exhausted"); with p > 0
  it fails when less than p % of the budget remains. No SLI samples and no incidents: skipped, said so.
* ``freeze`` (on): an enabled change_freeze guardrail in force at ``now`` (starts_at <= now < ends_at)
  that is org-wide, scoped to this service, or (with include_dependencies) scoped to a service it
  depends on, fails ``freeze``.
* ``require_maintenance_window`` (off): when on, the check ``maintenance_window`` passes only while
  ``now`` is inside an enabled maintenance_window guardrail that is org-wide or scoped to this service
  ("deploys only inside the window"); with no such guardrail it fails and says there is none.

The decision is "fail" when any check fails. Every decision asked for through the API is stored
(GateDecision, with the checks, rules and the pipeline's context: ref, pipeline, environment) and
audited ("gate.evaluated", change-management control tags) in one transaction: each evaluation is
evidence. ``preview`` evaluates without recording (the service page's panel). No Flask globals: org
id, service and ``now`` are passed in.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import func, select

from zentro.audit.service import Actor, record
from zentro.automations import guardrails as guardrail_kinds
from zentro.automations.models import Guardrail
from zentro.extensions import db
from zentro.incidents.models import ACTIVE_STATUSES, SEVERITIES, Incident
from zentro.platform.errors import not_found
from zentro.platform.types import iso
from zentro.reliability import service as services
from zentro.reliability import slo
from zentro.reliability.models import GateDecision, GateRule, Service

GATE_TAGS = ("SOC2:CC8.1", "ISO27001:A.8.32")  # change management
MAX_ID = 2_147_483_647
RULE_FIELDS = ("enabled", "block_severities", "include_dependencies", "error_budget", "min_remaining_percent",
               "freeze", "require_maintenance_window")
DEFAULT_RULES = {"enabled": True, "block_severities": ["critical", "high"], "include_dependencies": True,
                 "error_budget": True, "min_remaining_percent": 0.0, "freeze": True,
                 "require_maintenance_window": False}
CHECKS = ("incidents", "dependency_incidents", "error_budget", "freeze", "maintenance_window")


# --- lookups --------------------------------------------------------------------------------------

def find_service(org_id: int, key: str) -> Service:
    """The service named by ``key``: its numeric id, else its name (case-insensitive). Another org's
    service, or none, is 404."""
    key = key.strip()
    if not key or len(key) > 100 or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise not_found("Service")
    if key.isascii() and key.isdigit() and int(key) <= MAX_ID:
        svc = db.session.scalar(select(Service).where(Service.org_id == org_id, Service.id == int(key)))
        if svc is not None:
            return svc
    svc = db.session.scalar(select(Service).where(Service.org_id == org_id, func.lower(Service.name) == key.lower())
                            .order_by(Service.id).limit(1))
    if svc is None:
        raise not_found("Service")
    return svc


def _rule_row(org_id: int, service_id: int) -> GateRule | None:
    return db.session.scalar(select(GateRule).where(GateRule.org_id == org_id, GateRule.service_id == service_id))


def rules_for(org_id: int, service_id: int) -> dict:
    """The service's rules (DEFAULT_RULES when never configured), with ``configured`` and ``updated_at``."""
    row = _rule_row(org_id, service_id)
    if row is None:
        return {**DEFAULT_RULES, "block_severities": list(DEFAULT_RULES["block_severities"]), "configured": False,
                "updated_at": None}
    return {**{k: getattr(row, k) for k in RULE_FIELDS}, "block_severities": list(row.block_severities),
            "configured": True, "updated_at": iso(row.updated_at)}


def _canonical_severities(values) -> list[str]:
    chosen = set(values)
    return [s for s in SEVERITIES if s in chosen]


def update_rules(org_id: int, service_id: int, changes: dict, actor: Actor, now: dt.datetime) -> dict:
    """Apply the fields given (validated by the API model); a change that changes nothing records nothing.
    Audited as gate.rules_updated with before/after."""
    svc = services.get_service(org_id, service_id)
    changes = {k: v for k, v in changes.items() if k in RULE_FIELDS}
    if "block_severities" in changes:
        changes["block_severities"] = _canonical_severities(changes["block_severities"])
    if "min_remaining_percent" in changes:
        changes["min_remaining_percent"] = float(changes["min_remaining_percent"])
    current = rules_for(org_id, svc.id)
    changes = {k: v for k, v in changes.items() if current[k] != v}
    if not changes:
        return current
    row = _rule_row(org_id, svc.id)
    if row is None:
        row = GateRule(org_id=org_id, service_id=svc.id, created_at=now,
                       **{k: current[k] for k in RULE_FIELDS})
        db.session.add(row)
    for k, v in changes.items():
        setattr(row, k, v)
    row.updated_at = now
    db.session.flush()
    record(org_id, "gate.rules_updated", actor, target_type="service", target_id=svc.id, control_tags=GATE_TAGS,
           data={"service": svc.name, "from": {k: current[k] for k in changes}, "to": changes}, now=now)
    db.session.commit()
    return rules_for(org_id, svc.id)


# --- evaluation -----------------------------------------------------------------------------------

def dependency_closure(org_id: int, service_id: int) -> list[int]:
    """Every service this one depends on, directly or through others (not itself), nearest first."""
    adjacency: dict[int, list[int]] = defaultdict(list)
    for a, b in services.edges(org_id):
        adjacency[a].append(b)
    seen, order, frontier = {service_id}, [], [service_id]
    while frontier:
        nxt = []
        for node in frontier:
            for dep in adjacency.get(node, ()):
                if dep not in seen:
                    seen.add(dep)
                    order.append(dep)
                    nxt.append(dep)
        frontier = nxt
    return order


def _check(name: str, verdict: str, reason: str, refs: list | None = None) -> dict:
    return {"check": name, "verdict": verdict, "reason": reason, "refs": refs or []}


def _incident_refs(rows: list[Incident], names: dict[int, str]) -> list[dict]:
    return [{"kind": "incident", "id": i.id, "ref": i.ref, "severity": i.severity, "status": i.status,
             "service_id": i.service_id, "service": names.get(i.service_id, "")} for i in rows]


def _active_incidents(org_id: int, service_ids: list[int], severities: list[str]) -> list[Incident]:
    if not service_ids or not severities:
        return []
    return list(db.session.scalars(
        select(Incident).where(Incident.org_id == org_id, Incident.service_id.in_(service_ids),
                               Incident.status.in_(ACTIVE_STATUSES), Incident.severity.in_(severities))
        .order_by(Incident.number)))


def _incident_checks(org_id: int, svc: Service, rules: dict, deps: list[int], names: dict[int, str]) -> list[dict]:
    severities = rules["block_severities"]
    if not severities:
        skip = "No severities block deploys (block_severities is empty)."
        return [_check("incidents", "skipped", skip), _check("dependency_incidents", "skipped", skip)]
    wording = "/".join(severities)
    own = _active_incidents(org_id, [svc.id], severities)
    if own:
        first = own[:5]
        more = f" and {len(own) - 5} more" if len(own) > 5 else ""
        out = [_check("incidents", "fail",
                      f"{len(own)} active {wording} incident(s) on {svc.name}: "
                      + ", ".join(f"{i.ref} ({i.severity}, {i.status}) {i.title}" for i in first) + more + ".",
                      _incident_refs(own, names))]
    else:
        out = [_check("incidents", "pass", f"No active {wording} incident on {svc.name}.")]
    if not rules["include_dependencies"]:
        out.append(_check("dependency_incidents", "skipped",
                          "Dependencies are not checked (include_dependencies is off)."))
    elif not deps:
        out.append(_check("dependency_incidents", "pass", f"{svc.name} depends on no other service."))
    else:
        theirs = _active_incidents(org_id, deps, severities)
        if theirs:
            out.append(_check("dependency_incidents", "fail",
                              f"{len(theirs)} active {wording} incident(s) on services {svc.name} depends on: "
                              + ", ".join(f"{i.ref} on {names.get(i.service_id, '?')} ({i.severity})"
                                          for i in theirs[:5]) + (" …" if len(theirs) > 5 else "") + ".",
                              _incident_refs(theirs, names)))
        else:
            out.append(_check("dependency_incidents", "pass",
                              f"No active {wording} incident on the {len(deps)} service(s) {svc.name} depends on."))
    return out


def _budget_check(org_id: int, svc: Service, rules: dict, now: dt.datetime) -> dict:
    if not rules["error_budget"]:
        return _check("error_budget", "skipped", "The error-budget rule is off.")
    month = slo.windows_for(org_id, [svc], {"30d": slo.SLO_WINDOWS["30d"]}, now)[svc.id]["30d"]
    if not month.has_data:
        return _check("error_budget", "skipped",
                      f"No SLI samples and no incidents for {svc.name}: the 30-day error budget is unknown.")
    left = round(month.remaining_ratio * 100, 2)
    minimum = rules["min_remaining_percent"]
    ref = [{"kind": "slo_window", "window": "30d", "source": month.source, "target": svc.slo_target,
            "remaining_percent": left, "budget": month.budget, "consumed": month.consumed, "unit": month.unit}]
    figure = (f"{max(left, 0):g} % of the 30-day error budget left for the {svc.slo_target:g} % SLO "
              f"({month.consumed:g} of {month.budget:g} allowed bad {month.unit} consumed)")
    exhausted = month.bad > 0 and month.remaining <= 0
    if exhausted or (minimum > 0 and left < minimum):
        why = "the budget is exhausted" if exhausted else f"below the required {minimum:g} %"
        return _check("error_budget", "fail", f"{figure}: {why}.", ref)
    need = f"at least {minimum:g} % required" if minimum > 0 else "blocks only when exhausted"
    return _check("error_budget", "pass", f"{figure}; {need}.", ref)


def _guardrails(org_id: int, kind: str) -> list[Guardrail]:
    return list(db.session.scalars(select(Guardrail).where(Guardrail.org_id == org_id, Guardrail.kind == kind,
                                                           Guardrail.enabled.is_(True)).order_by(Guardrail.id)))


def _guardrail_ref(g: Guardrail, names: dict[int, str]) -> dict:
    return {"kind": "guardrail", "id": g.id, "name": g.name, "guardrail_kind": g.kind, "service_id": g.service_id,
            "service": names.get(g.service_id, "") if g.service_id else ""}


def _freeze_check(org_id: int, svc: Service, rules: dict, deps: list[int], names: dict[int, str],
                  now: dt.datetime) -> dict:
    if not rules["freeze"]:
        return _check("freeze", "skipped", "The change-freeze rule is off.")
    scope = {svc.id, *(deps if rules["include_dependencies"] else [])}
    frozen = []
    for g in _guardrails(org_id, "change_freeze"):
        if g.service_id is not None and g.service_id not in scope:
            continue
        verdict, reason = guardrail_kinds.EVALUATORS["change_freeze"](g.params, [], now)
        if verdict == "blocked":
            where = "org-wide" if g.service_id is None else f"on {names.get(g.service_id, '?')}"
            frozen.append((g, f"{g.name} ({where}): {reason}"))
    if frozen:
        return _check("freeze", "fail", " ".join(r for _, r in frozen), [_guardrail_ref(g, names) for g, _ in frozen])
    return _check("freeze", "pass", "No change freeze in force for this service"
                  + (" or its dependencies." if rules["include_dependencies"] and deps else "."))


def _window_check(org_id: int, svc: Service, rules: dict, names: dict[int, str], now: dt.datetime) -> dict:
    if not rules["require_maintenance_window"]:
        return _check("maintenance_window", "skipped", "Deploys are not limited to a maintenance window.")
    windows = [g for g in _guardrails(org_id, "maintenance_window") if g.service_id in (None, svc.id)]
    if not windows:
        return _check("maintenance_window", "fail", "Deploys only inside a maintenance window, and no enabled "
                      "maintenance_window guardrail applies to this service (org-wide or on it).")

    def span(g: Guardrail) -> str:
        p = g.params
        return f"{g.name}: {', '.join(p['weekdays'])} {p['start']}–{p['end']} {p.get('tz', 'UTC')}"

    inside = [g for g in windows if guardrail_kinds.in_window(g.params, now)]
    if inside:
        return _check("maintenance_window", "pass", "Inside the maintenance window (" + "; ".join(map(span, inside))
                      + ").", [_guardrail_ref(g, names) for g in inside])
    return _check("maintenance_window", "fail",
                  f"Deploys only inside the window; {now:%a %H:%M} UTC is outside every applicable window ("
                  + "; ".join(map(span, windows)) + ").", [_guardrail_ref(g, names) for g in windows])


def evaluate(org_id: int, svc: Service, now: dt.datetime) -> dict:
    """The gate's answer for ``svc`` at ``now``, without recording it."""
    rules = rules_for(org_id, svc.id)
    base = {"service": {"id": svc.id, "name": svc.name}, "rules": rules, "evaluated_at": iso(now)}
    if not rules["enabled"]:
        checks = [_check("enabled", "skipped", f"The deploy gate of {svc.name} is disabled (rules.enabled is false): "
                                                "every deploy passes without checks.")]
        return base | {"decision": "pass", "checks": checks, "reasons": [], "summary": summary(checks)}
    deps = dependency_closure(org_id, svc.id)
    names = {s.id: s.name for s in services.all_services(org_id)}
    checks = [*_incident_checks(org_id, svc, rules, deps, names), _budget_check(org_id, svc, rules, now),
              _freeze_check(org_id, svc, rules, deps, names, now), _window_check(org_id, svc, rules, names, now)]
    reasons = [c["reason"] for c in checks if c["verdict"] == "fail"]
    return base | {"decision": "fail" if reasons else "pass", "checks": checks, "reasons": reasons,
                   "summary": summary(checks)}


def summary(checks: list[dict]) -> str:
    """One line for a pipeline log, e.g. "fail: 2 check(s) failed (incidents, freeze)"."""
    if any(c["check"] == "enabled" for c in checks):
        return "pass: the gate is disabled for this service"
    failed = [c["check"] for c in checks if c["verdict"] == "fail"]
    if failed:
        return f"fail: {len(failed)} check(s) failed ({', '.join(failed)})"
    return (f"pass: {sum(c['verdict'] == 'pass' for c in checks)} check(s) passed, "
            f"{sum(c['verdict'] == 'skipped' for c in checks)} skipped")


def preview(org_id: int, service_id: int, now: dt.datetime) -> dict:
    return evaluate(org_id, services.get_service(org_id, service_id), now)


def decide(org_id: int, key: str, context: dict, actor: Actor, now: dt.datetime) -> dict:
    """Evaluate the gate of the service named by ``key`` (id or name), store the decision and audit it,
    in one transaction. ``context``: ref / pipeline / environment as the pipeline sent them."""
    svc = find_service(org_id, key)
    result = evaluate(org_id, svc, now)
    context = {k: v for k, v in context.items() if v}
    row = GateDecision(org_id=org_id, service_id=svc.id, service_name=svc.name, decision=result["decision"],
                       checks=result["checks"], rules=result["rules"], context=context, actor_type=actor.type,
                       actor_id=actor.id, actor_label=actor.label, evaluated_at=now)
    db.session.add(row)
    db.session.flush()
    event = record(org_id, "gate.evaluated", actor, target_type="service", target_id=svc.id, control_tags=GATE_TAGS,
                   data={"service": svc.name, "decision_id": row.id, "decision": result["decision"],
                         "reasons": result["reasons"], "context": context,
                         "checks": {c["check"]: c["verdict"] for c in result["checks"]}}, now=now)
    row.audit_event_id = event.id
    db.session.commit()
    return decision_json(row)


# --- stored decisions -----------------------------------------------------------------------------

def decisions_query(org_id: int, service_id: int):
    return select(GateDecision).where(GateDecision.org_id == org_id, GateDecision.service_id == service_id)


def recent_decisions(org_id: int, service_id: int, limit: int = 5) -> list[GateDecision]:
    return list(db.session.scalars(decisions_query(org_id, service_id).order_by(GateDecision.id.desc()).limit(limit)))


def decision_json(row: GateDecision) -> dict:
    reasons = [c["reason"] for c in row.checks if c.get("verdict") == "fail"]
    return {"decision_id": row.id, "service": {"id": row.service_id, "name": row.service_name},
            "decision": row.decision, "summary": summary(row.checks), "checks": row.checks, "reasons": reasons,
            "rules": row.rules,
            "context": {k: row.context.get(k) for k in ("ref", "pipeline", "environment")},
            "actor": {"type": row.actor_type, "id": row.actor_id, "label": row.actor_label},
            "audit_event_id": row.audit_event_id, "evaluated_at": iso(row.evaluated_at)}
