"""New Relic: workflow webhooks (New Relic's default workflow payload template) and the legacy
alert-policy webhook (incident_id / current_state / condition_name / severity).

Workflow template fields read::

    {"issueId": "{{issueId}}" (the default template calls it "id"), "issueUrl": "{{issuePageUrl}}",
     "title": "{{annotations.title.[0]}}", "priority": "{{priority}}", "state": "{{state}}",
     "impactedEntities": {{json entitiesData.names}}, "createdAt": {{createdAt}},
     "updatedAt": {{updatedAt}}, "closedAt": ..., "alertPolicyNames": [...], "alertConditionNames": [...]}

Dedupe key ``newrelic:<issueId>``. State CREATED/ACTIVATED → firing, ACKNOWLEDGED → ack,
CLOSED → resolved. Priority CRITICAL → critical, HIGH → high, MEDIUM → medium, LOW → low.
Service: the first impacted entity.

Legacy: dedupe key ``newrelic:incident:<incident_id>``; current_state open → firing,
acknowledged → ack, closed → resolved; severity CRITICAL → critical, WARNING → medium,
INFO → low; title from condition_name (and details); service: the first target's name.
"""
from __future__ import annotations

from typing import Any

from zentro.ingest.normalizers.base import (NormalizeError, NormalizedAlert, clean, map_severity, opt_str, parse_time,
                                            req_str)

SOURCE = "newrelic"
STATES = {"created": "firing", "activated": "firing", "acknowledged": "ack", "closed": "resolved"}
PRIORITY = {"critical": "critical", "high": "high", "medium": "medium", "low": "low"}
LEGACY_STATES = {"open": "firing", "acknowledged": "ack", "closed": "resolved"}
LEGACY_SEVERITY = {"critical": "critical", "warning": "medium", "info": "low"}


def looks_like(payload: Any) -> bool:
    return is_workflow(payload) or is_legacy(payload)


def is_workflow(payload: Any) -> bool:
    return isinstance(payload, dict) and ("issueId" in payload or ("issueUrl" in payload and "state" in payload))


def is_legacy(payload: Any) -> bool:
    return isinstance(payload, dict) and "incident_id" in payload and (
        "current_state" in payload or "condition_name" in payload)


def normalize(payload: Any) -> list[NormalizedAlert]:
    if is_workflow(payload):
        return [_workflow(payload)]
    if is_legacy(payload):
        return [_legacy(payload)]
    raise NormalizeError("not a New Relic workflow payload (issueId, state) or legacy webhook (incident_id, current_state)",
                         ["issueId"])


def _names(value: Any, loc: list) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [clean(v) for v in value.split(",") if clean(v)]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return [clean(v) for v in value if clean(v)]
    raise NormalizeError("must be a list of names", loc)


def _workflow(payload: dict) -> NormalizedAlert:
    issue = opt_str(payload, "issueId") or opt_str(payload, "id")
    if not issue:
        raise NormalizeError("is required", ["issueId"])
    state = opt_str(payload, "state").lower()
    if state not in STATES:
        raise NormalizeError("must be CREATED, ACTIVATED, ACKNOWLEDGED or CLOSED", ["state"])
    status = STATES[state]
    entities = _names(payload.get("impactedEntities"), ["impactedEntities"])
    conditions = _names(payload.get("alertConditionNames"), ["alertConditionNames"])
    policies = _names(payload.get("alertPolicyNames"), ["alertPolicyNames"])
    labels: dict = {"newrelic_issue": issue, "newrelic_state": state.upper()}
    if opt_str(payload, "priority"):
        labels["priority"] = opt_str(payload, "priority")
    if opt_str(payload, "issueUrl"):
        labels["issue_url"] = opt_str(payload, "issueUrl")
    if entities:
        labels["entities"] = ", ".join(entities)[:1000]
    if conditions:
        labels["conditions"] = ", ".join(conditions)[:1000]
    if policies:
        labels["policies"] = ", ".join(policies)[:1000]
    started = (parse_time(payload.get("activatedAt"), ["activatedAt"]) or parse_time(payload.get("createdAt"), ["createdAt"])
               or parse_time(payload.get("updatedAt"), ["updatedAt"]))
    ended = None
    if status == "resolved":
        ended = parse_time(payload.get("closedAt"), ["closedAt"]) or parse_time(payload.get("updatedAt"), ["updatedAt"])
    elif status == "ack":
        # an acknowledgement is its own event: its time is when the issue was last updated
        started = parse_time(payload.get("acknowledgedAt"), ["acknowledgedAt"]) or parse_time(
            payload.get("updatedAt"), ["updatedAt"]) or started
    title = opt_str(payload, "title") or (conditions[0] if conditions else f"New Relic issue {issue}")
    return NormalizedAlert(
        source=SOURCE, dedupe_key=f"newrelic:{issue}", status=status,
        severity=map_severity(payload.get("priority"), PRIORITY, "medium"), title=title,
        service=entities[0] if entities else "", labels=labels, raw=payload, starts_at=started, ends_at=ended)


def _legacy(payload: dict) -> NormalizedAlert:
    incident = req_str(payload, "incident_id")
    state = opt_str(payload, "current_state").lower()
    if state not in LEGACY_STATES:
        raise NormalizeError("must be open, acknowledged or closed", ["current_state"])
    status = LEGACY_STATES[state]
    targets = payload.get("targets")
    service = ""
    labels: dict = {"newrelic_incident": incident, "newrelic_state": state}
    if isinstance(targets, list) and targets and isinstance(targets[0], dict):
        service = opt_str(targets[0], "name", ["targets", 0])
        if isinstance(targets[0].get("labels"), dict):
            labels.update({k: v for k, v in targets[0]["labels"].items() if isinstance(v, (str, int, float, bool))})
    elif targets not in (None, []):
        raise NormalizeError("must be a list of target objects", ["targets"])
    for k in ("policy_name", "condition_name", "incident_url", "runbook_url", "event_type"):
        if opt_str(payload, k):
            labels[k] = opt_str(payload, k)
    condition, details = opt_str(payload, "condition_name"), opt_str(payload, "details")
    when = parse_time(payload.get("timestamp"), ["timestamp"])
    return NormalizedAlert(
        source=SOURCE, dedupe_key=f"newrelic:incident:{incident}", status=status,
        severity=map_severity(payload.get("severity"), LEGACY_SEVERITY, "medium"),
        title=condition or details or f"New Relic incident {incident}", service=service, labels=labels, raw=payload,
        starts_at=when, ends_at=when if status == "resolved" else None, description=details)
