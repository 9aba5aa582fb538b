"""Compliance tables: attestations, exceptions, policies, vendors, evidence bundles and the analytics registers
(evidence requests, gap remediations, staffing actions, committee settings, checkpoints, scope, plays, density alerts).

Control references are tags "FRAMEWORK:CONTROL_ID" (e.g. "SOC2:CC6.1"), the same strings audit
events carry, resolved against the catalogs in zentro/compliance/catalogs/.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zentro.extensions import db
from zentro.platform.types import UTCDateTime, utcnow

ATTESTATION_STATUSES = ("assigned", "attested", "rejected")  # "overdue"/"expired" are derived from dates
EXCEPTION_STATUSES = ("open", "closed")
POLICY_STATUSES = ("draft", "review", "accepted", "retired")
VENDOR_TIERS = ("critical", "high", "medium", "low")


class Attestation(db.Model):
    """An owner's periodic statement that a control operates, with a note and evidence links."""

    __tablename__ = "attestations"
    __table_args__ = (Index("ix_attestations_org_control", "org_id", "control"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    control: Mapped[str] = mapped_column(String(60))  # tag, e.g. SOC2:CC6.1
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="assigned")
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    attested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    valid_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[list] = mapped_column(JSON, default=list)  # [{"kind": "audit_event"|"url", "ref": ...}]
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ControlException(db.Model):
    """A known, approved deviation from a control until an expiry, with its compensating control."""

    __tablename__ = "control_exceptions"
    __table_args__ = (Index("ix_control_exceptions_org_control", "org_id", "control"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    control: Mapped[str] = mapped_column(String(60))
    reason: Mapped[str] = mapped_column(Text)
    compensating_control: Mapped[str] = mapped_column(Text, default="")
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="open")
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)


class Policy(db.Model):
    """An org policy; accepted policies carry control tags and count as evidence (automations
    promote decision-history suggestions into review; people accept them)."""

    __tablename__ = "policies"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="draft")
    control_tags: Mapped[str] = mapped_column(String(500), default="")  # space separated
    actions: Mapped[list] = mapped_column(JSON, default=list)  # automation actions it covers
    source: Mapped[str] = mapped_column(String(40), default="manual")  # manual | suggestion
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Vendor(db.Model):
    """A third party in the risk register; inherits controls by the rules in vendor_rules.json."""

    __tablename__ = "vendors"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40))
    risk_tier: Mapped[str] = mapped_column(String(20))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    website: Mapped[str] = mapped_column(String(300), default="")
    report_type: Mapped[str] = mapped_column(String(40), default="")  # soc2-type-ii | iso27001 | none
    report_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_review_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    next_review_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    baa: Mapped[bool] = mapped_column(default=False)
    dpa: Mapped[bool] = mapped_column(default=False)
    handles_phi: Mapped[bool] = mapped_column(default=False)
    handles_personal_data: Mapped[bool] = mapped_column(default=False)
    inherited_controls: Mapped[list] = mapped_column(JSON, default=list)  # tags, computed from the rules
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EvidenceBundle(db.Model):
    """A tamper-evident evidence ZIP: manifest of SHA-256s, Ed25519-signed, chained per org."""

    __tablename__ = "evidence_bundles"
    __table_args__ = (UniqueConstraint("org_id", "seq"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column()
    kind: Mapped[str] = mapped_column(String(20), default="evidence")  # evidence | workbook
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(320), default="")  # actor label (user or cron)
    storage_key: Mapped[str] = mapped_column(String(300), default="")
    size_bytes: Mapped[int] = mapped_column(default=0)
    zip_sha256: Mapped[str] = mapped_column(String(64), default="")
    manifest_sha256: Mapped[str] = mapped_column(String(64), default="")
    prev_manifest_sha256: Mapped[str] = mapped_column(String(64), default="")
    signature: Mapped[str] = mapped_column(String(200), default="")  # base64 Ed25519 over the manifest bytes
    key_id: Mapped[str] = mapped_column(String(40), default="")
    file_count: Mapped[int] = mapped_column(default=0)
    audit_event_count: Mapped[int] = mapped_column(default=0)
    webhook_url: Mapped[str] = mapped_column(String(500), default="")
    webhook_status: Mapped[str] = mapped_column(String(20), default="")  # "" | delivered | failed | not_configured
    webhook_detail: Mapped[str] = mapped_column(String(500), default="")


# --- compliance analytics registers (obligations are derived from these and the registers above) -----------

EVIDENCE_REQUEST_STATUSES = ("open", "fulfilled", "cancelled")
GAP_REMEDIATION_STATUSES = ("open", "in_progress", "done", "wont_fix")
STAFFING_ACTION_KINDS = ("rebalance", "add_capacity", "defer", "consolidate")
STAFFING_ACTION_STATUSES = ("proposed", "tracked", "completed", "dismissed")
CHECKPOINT_STATUSES = ("planned", "done")
PLAY_STEP_STATUSES = ("todo", "in_progress", "done", "skipped")


class EvidenceRequest(db.Model):
    """An assessor's request for evidence: what, for which controls, by when; fulfilled with a bundle or a file."""

    __tablename__ = "evidence_requests"
    __table_args__ = (Index("ix_evidence_requests_org_due", "org_id", "due_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    controls: Mapped[list] = mapped_column(JSON, default=list)  # tags
    requested_by: Mapped[str] = mapped_column(String(320), default="")  # assessor name or email
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20), default="open")
    fulfilled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    bundle_id: Mapped[int | None] = mapped_column(ForeignKey("evidence_bundles.id", ondelete="SET NULL"), nullable=True)
    file_ref: Mapped[str] = mapped_column(String(500), default="")  # URL or storage key of a delivered file
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GapRemediation(db.Model):
    """Tracking for one control gap: the playbook or runbook that closes it, who owns it and where it stands."""

    __tablename__ = "gap_remediations"
    __table_args__ = (UniqueConstraint("org_id", "control"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    control: Mapped[str] = mapped_column(String(60))
    playbook_id: Mapped[int | None] = mapped_column(ForeignKey("playbooks.id", ondelete="SET NULL"), nullable=True)
    runbook_url: Mapped[str] = mapped_column(String(500), default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="open")
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class StaffingAction(db.Model):
    """A proposed or tracked relief action for an obligation peak week (rebalance, add capacity, defer, ...)."""

    __tablename__ = "staffing_actions"
    __table_args__ = (Index("ix_staffing_actions_org_week", "org_id", "week_start"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    week_start: Mapped[dt.date] = mapped_column()  # Monday of the peak week it relieves
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="proposed")
    title: Mapped[str] = mapped_column(String(300), default="")
    hours: Mapped[float] = mapped_column(default=0.0)  # owner-hours the action moves or adds
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CommitteeSettings(db.Model):
    """Per-org compliance committee settings; absent row = the defaults in zentro.compliance.obligations."""

    __tablename__ = "committee_settings"
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    capacity_hours_per_week: Mapped[float] = mapped_column(default=40.0)
    density_warn: Mapped[int] = mapped_column(default=8)  # open obligations due in one week
    density_critical: Mapped[int] = mapped_column(default=15)
    completion_sla_days: Mapped[int] = mapped_column(default=14)  # staffing action done within N days of its week
    bundle_cadence_days: Mapped[int] = mapped_column(default=30)  # 0 = no scheduled bundles
    escalation_emails: Mapped[list] = mapped_column(JSON, default=list)
    effort_hours: Mapped[dict] = mapped_column(JSON, default=dict)  # kind -> hours, overrides the defaults
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class AuditCheckpoint(db.Model):
    """A milestone of the audit season (kick-off, fieldwork, evidence freeze, report) for one framework."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (Index("ix_audit_checkpoints_org_due", "org_id", "due_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    framework: Mapped[str] = mapped_column(String(40))  # catalog framework key
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20), default="planned")
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ScopeMapping(db.Model):
    """Whether a service is in the audit scope and which frameworks it falls under (data flows are the
    service dependency edges between in-scope services)."""

    __tablename__ = "scope_mappings"
    __table_args__ = (UniqueConstraint("org_id", "service_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    in_scope: Mapped[bool] = mapped_column(default=True)
    frameworks: Mapped[list] = mapped_column(JSON, default=list)  # catalog framework keys
    data_classes: Mapped[list] = mapped_column(JSON, default=list)  # e.g. ["pii", "phi", "cardholder"]
    note: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ConsolidationPlayStep(db.Model):
    """Tracked status of one step of the six-step consolidation play for an obligation crossover cluster."""

    __tablename__ = "consolidation_play_steps"
    __table_args__ = (UniqueConstraint("org_id", "cluster_key", "step"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    cluster_key: Mapped[str] = mapped_column(String(120))
    step: Mapped[int] = mapped_column()  # 1..6
    status: Mapped[str] = mapped_column(String(20), default="todo")
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class DensityAlert(db.Model):
    """One obligation-density breach found for a forecast week (written by the density-alert digest), kept for
    the trend history with the channels it went to."""

    __tablename__ = "obligation_density_alerts"
    __table_args__ = (Index("ix_density_alerts_org_created", "org_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    week_start: Mapped[dt.date] = mapped_column()
    level: Mapped[str] = mapped_column(String(20))  # warn | critical
    density: Mapped[int] = mapped_column()
    threshold: Mapped[int] = mapped_column()
    channels: Mapped[list] = mapped_column(JSON, default=list)  # [{"channel": "email", "status": "sent"}, ...]
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ComplianceRevision(db.Model):
    """A random value that changes whenever one of the org's source rows of derived compliance data changes
    (attestations, vendors, checkpoints, evidence requests, policies, exceptions). Database triggers (migration
    0009) write it in the same transaction as the change, so every write path is covered, ORM or not; see
    zentro.compliance.derived_cache. No foreign key: rows come and go with the triggers, never with the org."""

    __tablename__ = "compliance_revisions"
    org_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    revision: Mapped[int] = mapped_column(db.BigInteger)


REPORT_JOB_STATUSES = ("queued", "running", "done", "failed")


class ReportJob(db.Model):
    """A generated report (POST /api/v1/reports/generate): the report kind (a registered @report slug) and its
    parameters, built once by a worker (zentro.compliance.report_jobs) into stored artifacts, one per format:
    ``artifacts`` = [{format, key, media_type, size, sha256}], the bytes living in the artifact store."""

    __tablename__ = "report_jobs"
    __table_args__ = (Index("ix_report_jobs_status_updated", "status", "updated_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(10), default="queued")  # queued | running | done | failed
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    requested_by: Mapped[str] = mapped_column(String(320), default="")
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    artifacts: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
