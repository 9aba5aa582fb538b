"""Automation tables: playbooks, guardrails, dry-runs, executions, approvals, policy blocks,
remediation proposals and the Slack event log.

A plan is the dry-run's resolved list of steps; its hash (SHA-256 of the canonical JSON) ties an
execution or an approval to exactly the plan that was checked.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zentro.extensions import db
from zentro.platform.types import UTCDateTime, utcnow

ACTIONS = ("restart", "scale", "rollback_deploy", "toggle_flag", "block_address", "run_command")
GUARDRAIL_KINDS = ("maintenance_window", "tier_protection", "max_blast_radius", "required_approvers", "change_freeze")
DRY_RUN_VERDICTS = ("pass", "needs_approval", "blocked")
EXECUTION_KINDS = ("execute", "remediate")
EXECUTION_MODES = ("robot", "manual")
EXECUTION_STATUSES = ("recorded", "succeeded", "failed")
APPROVAL_STATUSES = ("pending", "approved", "rejected")
REMEDIATION_STATUSES = ("proposed", "approved", "rejected", "applied", "failed")


class Playbook(db.Model):
    """Ordered steps on target services: [{"action", "service_id", "params"}]."""

    __tablename__ = "playbooks"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    steps: Mapped[list] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Guardrail(db.Model):
    """A custom rule on one service (service_id) or the whole org (NULL); ``params`` by kind."""

    __tablename__ = "guardrails"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), nullable=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(30))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class DryRun(db.Model):
    __tablename__ = "automation_dry_runs"
    __table_args__ = (Index("ix_dry_runs_org_hash", "org_id", "plan_hash", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    playbook_id: Mapped[int | None] = mapped_column(ForeignKey("playbooks.id", ondelete="SET NULL"), nullable=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True)
    plan: Mapped[list] = mapped_column(JSON, default=list)
    plan_hash: Mapped[str] = mapped_column(String(64))
    blast_radius: Mapped[dict] = mapped_column(JSON, default=dict)
    slo_impact: Mapped[list] = mapped_column(JSON, default=list)
    checks: Mapped[list] = mapped_column(JSON, default=list)  # [{guardrail_id, name, kind, verdict, reason}]
    verdict: Mapped[str] = mapped_column(String(20))  # pass | needs_approval | blocked
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Approval(db.Model):
    """A request to run one checked plan; decided once (in the app, the API or Slack)."""

    __tablename__ = "automation_approvals"
    __table_args__ = (Index("ix_approvals_org_status", "org_id", "status", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    dry_run_id: Mapped[int | None] = mapped_column(ForeignKey("automation_dry_runs.id", ondelete="SET NULL"), nullable=True)
    playbook_id: Mapped[int | None] = mapped_column(ForeignKey("playbooks.id", ondelete="SET NULL"), nullable=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True)
    plan_hash: Mapped[str] = mapped_column(String(64))
    action_key: Mapped[str] = mapped_column(String(200))  # e.g. "restart:checkout" (what suggestions group by)
    summary: Mapped[str] = mapped_column(String(500), default="")
    reason: Mapped[str] = mapped_column(Text, default="")  # why an approval is needed (the guardrails)
    status: Mapped[str] = mapped_column(String(15), default="pending")
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    decided_via: Mapped[str] = mapped_column(String(10), default="")  # app | api | slack
    decision_note: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    slack_channel: Mapped[str] = mapped_column(String(64), default="")
    slack_ts: Mapped[str] = mapped_column(String(64), default="")
    slack_status: Mapped[str] = mapped_column(String(200), default="")  # posted | not configured: ... | failed: ...
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Execution(db.Model):
    __tablename__ = "automation_executions"
    # one execution per dry-run: a double submit or a concurrent second execute cannot run the plan twice
    __table_args__ = (Index("ix_executions_org", "org_id", "id"), UniqueConstraint("dry_run_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(15), default="execute")  # execute | remediate
    dry_run_id: Mapped[int | None] = mapped_column(ForeignKey("automation_dry_runs.id", ondelete="SET NULL"), nullable=True)
    playbook_id: Mapped[int | None] = mapped_column(ForeignKey("playbooks.id", ondelete="SET NULL"), nullable=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True)
    approval_id: Mapped[int | None] = mapped_column(ForeignKey("automation_approvals.id", ondelete="SET NULL"), nullable=True)
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("policies.id", ondelete="SET NULL"), nullable=True)
    plan_hash: Mapped[str] = mapped_column(String(64))
    approval_note: Mapped[str] = mapped_column(Text, default="")
    rollback_plan: Mapped[str] = mapped_column(Text, default="")
    mode: Mapped[str] = mapped_column(String(10), default="manual")  # robot | manual
    status: Mapped[str] = mapped_column(String(15), default="recorded")
    robot_status: Mapped[int | None] = mapped_column(nullable=True)
    robot_response: Mapped[dict] = mapped_column(JSON, default=dict)
    detail: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PolicyBlock(db.Model):
    """A refused execute/remediate/apply attempt and why (reason_code groups the distribution)."""

    __tablename__ = "policy_blocks"
    __table_args__ = (Index("ix_policy_blocks_org_at", "org_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    operation: Mapped[str] = mapped_column(String(15))  # execute | remediate | apply
    reason_code: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    plan_hash: Mapped[str] = mapped_column(String(64), default="")
    dry_run_id: Mapped[int | None] = mapped_column(ForeignKey("automation_dry_runs.id", ondelete="SET NULL"), nullable=True)
    playbook_id: Mapped[int | None] = mapped_column(ForeignKey("playbooks.id", ondelete="SET NULL"), nullable=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Remediation(db.Model):
    """A proposed fix (playbook for an incident) in the platform API: preview, approve/reject, apply."""

    __tablename__ = "remediations"
    __table_args__ = (Index("ix_remediations_org", "org_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    playbook_id: Mapped[int | None] = mapped_column(ForeignKey("playbooks.id", ondelete="SET NULL"), nullable=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True)
    title: Mapped[str] = mapped_column(String(300))
    rationale: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(20), default="manual")  # manual | rca | copilot
    status: Mapped[str] = mapped_column(String(15), default="proposed")
    dry_run_id: Mapped[int | None] = mapped_column(ForeignKey("automation_dry_runs.id", ondelete="SET NULL"), nullable=True)
    approval_id: Mapped[int | None] = mapped_column(ForeignKey("automation_approvals.id", ondelete="SET NULL"), nullable=True)
    execution_id: Mapped[int | None] = mapped_column(ForeignKey("automation_executions.id", ondelete="SET NULL"), nullable=True)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    decision_note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class SlackEvent(db.Model):
    """Every Slack delivery (approval message posted/updated) and every action received for an org."""

    __tablename__ = "slack_events"
    __table_args__ = (Index("ix_slack_events_org_at", "org_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    approval_id: Mapped[int | None] = mapped_column(ForeignKey("automation_approvals.id", ondelete="SET NULL"), nullable=True)
    direction: Mapped[str] = mapped_column(String(10))  # outbound | inbound
    kind: Mapped[str] = mapped_column(String(30))  # post_message | update_message | block_action
    outcome: Mapped[str] = mapped_column(String(30))  # sent | failed | not_configured | decided | already_decided | refused
    slack_user_id: Mapped[str] = mapped_column(String(64), default="")
    slack_team_id: Mapped[str] = mapped_column(String(64), default="")
    channel: Mapped[str] = mapped_column(String(64), default="")
    message_ts: Mapped[str] = mapped_column(String(64), default="")
    action_id: Mapped[str] = mapped_column(String(100), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
