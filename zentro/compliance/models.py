"""Compliance tables: attestations, exceptions, policies, vendors and evidence bundles.

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
