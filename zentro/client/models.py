"""Typed shapes of the API's JSON, as TypedDicts: results are the plain dicts the server sent, so fields
added by a newer server are kept (forward compatible) while editors and type checkers know the documented
ones. Timestamps are RFC 3339 strings in UTC (``2026-03-02T12:00:00Z``); ``parse_time`` turns one into an
aware datetime. Shapes for the newer resources (integrations, generated reports, billing, deploy gates) are
``total=False``: only what the contract promises is listed."""
from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Optional, TypedDict

Severity = Literal["critical", "high", "medium", "low"]
IncidentStatus = Literal["open", "acknowledged", "mitigated", "resolved", "closed"]


def parse_time(value: str | None) -> dt.datetime | None:
    """An API timestamp as an aware UTC datetime (None stays None)."""
    if value is None:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


class Incident(TypedDict):
    id: int
    ref: str
    number: int
    title: str
    description: str
    severity: Severity
    status: IncidentStatus
    service_id: Optional[int]
    service_name: Optional[str]
    commander_id: Optional[int]
    commander_email: Optional[str]
    source: str
    dedupe_key: Optional[str]
    alert_count: int
    legal_hold: bool
    started_at: str
    last_seen_at: str
    acknowledged_at: Optional[str]
    mitigated_at: Optional[str]
    resolved_at: Optional[str]
    closed_at: Optional[str]
    created_at: str
    updated_at: str


class TimelineEvent(TypedDict):
    id: int
    kind: str
    body: str
    data: dict[str, Any]
    actor_type: str
    actor: str
    created_at: str


class AlertResult(TypedDict):
    alert_id: Optional[int]
    incident_id: Optional[int]
    incident_ref: Optional[str]
    incident_status: Optional[str]
    outcome: Literal["created", "deduped", "resolved", "acknowledged", "no_active_incident", "duplicate", "ignored"]
    source: str
    dedupe_key: Optional[str]
    status: Optional[Literal["firing", "resolved", "ack"]]
    detail: Optional[str]


class AlertIngestResult(TypedDict):
    accepted: int
    results: list[AlertResult]


class FindingResult(TypedDict):
    finding_id: int
    source: Literal["qualys", "tenable", "generic"]
    finding_key: str
    severity: str
    status: Literal["open", "fixed"]
    outcome: Literal["created", "updated", "fixed", "reopened"]
    service_id: Optional[int]
    incident_id: Optional[int]
    incident_ref: Optional[str]
    incident_outcome: Optional[Literal["created", "deduped", "mitigated"]]


class FindingIngestResult(TypedDict):
    accepted: int
    results: list[FindingResult]


class Finding(TypedDict):
    id: int
    source: Literal["qualys", "tenable", "generic"]
    finding_key: str
    title: str
    description: str
    severity: Literal["critical", "high", "medium", "low", "info"]
    status: Literal["open", "fixed"]
    asset: str
    cve: str
    cvss: Optional[float]
    service_id: Optional[int]
    incident_id: Optional[int]
    first_seen_at: str
    last_seen_at: str
    fixed_at: Optional[str]


class SeverityCount(TypedDict):
    open: int
    total: int


class FindingSummary(TypedDict):
    by_severity: dict[str, SeverityCount]
    open: int
    total: int


class RcaEvidence(TypedDict):
    type: Literal["change_event", "incident", "alert", "finding", "timeline_event"]
    id: int
    summary: str
    at: Optional[str]
    incident_id: Optional[int]


class RcaFactor(TypedDict):
    name: str
    value: float
    weight: float
    contribution: float
    detail: str


class Hypothesis(TypedDict):
    rank: int
    title: str
    category: str
    confidence: float
    detail: str
    factors: list[RcaFactor]
    evidence: list[RcaEvidence]


class RcaRun(TypedDict):
    id: int
    incident_id: int
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: int
    stage: str
    hypotheses: list[Hypothesis]
    summary: dict[str, Any]
    error: str
    created_by: str
    created_at: str
    started_at: Optional[str]
    finished_at: Optional[str]
    updated_at: Optional[str]


class OutboxMessage(TypedDict):
    message_id: str
    endpoint_id: int
    event_type: str
    status: str
    attempts: int
    next_attempt_at: Optional[str]
    last_status_code: Optional[int]
    last_error: str
    created_at: str
    delivered_at: Optional[str]


class Webhook(TypedDict):
    id: int
    url: str
    description: str
    events: list[str]
    enabled: bool
    secret_prefix: str
    created_at: str
    updated_at: str
    last_delivery: Optional[OutboxMessage]


class WebhookWithSecret(Webhook):
    secret: str  # whsec_…: returned only by create and rotate_secret


class WebhookTestResult(TypedDict):
    ok: bool
    status_code: Optional[int]
    detail: str
    delivery_id: Optional[int]
    message_id: Optional[str]


class Delivery(TypedDict):
    id: int
    source: str
    run_id: Optional[int]
    channel: Literal["email", "slack", "webhook"]
    target: str
    recipients: list[str]
    subject: str
    status: str
    attempts: int
    error: str
    created_at: str
    finished_at: Optional[str]


class DeliveryDetail(Delivery):
    webhook: Optional[OutboxMessage]


class Bundle(TypedDict, total=False):
    id: int
    kind: str
    seq: int
    period_days: int
    manifest_sha256: str
    created_at: str


class IntegrationHealth(TypedDict):
    status: Literal["untested", "healthy", "failing", "not_testable"]
    last_checked_at: Optional[str]
    last_ok_at: Optional[str]
    last_error: str
    http_status: Optional[int]
    latency_ms: Optional[float]


class Integration(TypedDict, total=False):
    id: int
    provider: str
    provider_label: str
    kind: str
    name: str
    config: dict[str, Any]
    secrets_set: list[str]
    secret_hints: dict[str, str]
    scopes: list[str]
    health: IntegrationHealth
    last_sync_at: Optional[str]
    last_received_at: Optional[str]
    ingest: Optional[dict[str, Any]]  # sources: url, token (create/rotate answer only), headers, example_payload ...
    created_at: str
    updated_at: str


class IntegrationTestResult(TypedDict, total=False):
    outcome: Literal["healthy", "failing", "not_testable"]
    status: str
    detail: str
    http_status: Optional[int]
    latency_ms: Optional[float]
    target: str
    checked_at: str


class Provider(TypedDict, total=False):
    key: str
    label: str
    kind: str
    description: str
    scopes: list[str]
    config_fields: list[dict[str, Any]]
    secret_fields: list[dict[str, Any]]
    ingest_path: Optional[str]


class ReportArtifact(TypedDict, total=False):
    format: str
    media_type: str
    size: int
    sha256: str
    download_url: str


class ReportJob(TypedDict, total=False):
    id: int
    kind: Literal["incident-summary", "compliance-posture"]
    title: str
    status: Literal["queued", "running", "done", "failed"]
    params: dict[str, Any]
    error: str
    attempts: int
    requested_by: str
    artifacts: list[ReportArtifact]
    created_at: str
    started_at: Optional[str]
    finished_at: Optional[str]
    url: str


class Plan(TypedDict, total=False):
    plan: Literal["free", "pro", "enterprise"]
    title: str
    paid: bool
    limits: dict[str, Any]  # api_calls_per_minute, rca_analyses_per_hour (None: unlimited), alert_ingest
    checkout_available: bool


class Plans(TypedDict, total=False):
    data: list[Plan]
    current_plan: str
    alert_ingest_requires_paid: bool


class Subscription(TypedDict, total=False):
    plan: Literal["free", "pro", "enterprise"]
    limits: dict[str, Any]
    subscription: Optional[dict[str, Any]]  # Lemon Squeezy id, status, renews_at, ends_at ...
    needs_attention: bool
    attention: str
    portal_available: bool
    last_payment: Optional[dict[str, Any]]
    configured: bool


class GateCheck(TypedDict, total=False):
    check: str
    verdict: Literal["pass", "fail", "skipped"]
    reason: str
    refs: list[dict[str, Any]]


class GateRules(TypedDict, total=False):
    enabled: bool
    block_severities: list[Severity]
    include_dependencies: bool
    error_budget: bool
    min_remaining_percent: float
    freeze: bool
    require_maintenance_window: bool
    configured: bool
    updated_at: Optional[str]


class GateDecision(TypedDict, total=False):
    decision_id: int
    service: dict[str, Any]  # id (None once deleted), name
    decision: Literal["pass", "fail"]
    summary: str
    checks: list[GateCheck]
    reasons: list[str]
    rules: GateRules
    context: dict[str, Optional[str]]
    actor: dict[str, str]
    audit_event_id: Optional[int]
    evaluated_at: str
