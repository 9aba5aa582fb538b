"""The append-only audit log. Rows are hash-chained per org: each stores the previous row's hash."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zentro.extensions import db
from zentro.platform.types import UTCDateTime, utcnow

GENESIS_HASH = "0" * 64


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("org_id", "seq"),
        Index("ix_audit_events_org_created", "org_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_type: Mapped[str] = mapped_column(String(20))  # user | api_key | ingest_token | system
    actor_id: Mapped[str] = mapped_column(String(64), default="")
    actor_label: Mapped[str] = mapped_column(String(320), default="")
    action: Mapped[str] = mapped_column(String(100))
    target_type: Mapped[str] = mapped_column(String(50), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    control_tags: Mapped[str] = mapped_column(String(500), default="")  # space separated
    request_id: Mapped[str] = mapped_column(String(64), default="")
    data: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditTag(db.Model):
    """One row per (audit event, control tag): evidence aggregates group these in SQL.

    ``day`` is whole days since 1970-01-01 UTC, so weekly buckets are integer arithmetic that
    SQLite and PostgreSQL compute alike."""

    __tablename__ = "audit_tags"
    __table_args__ = (Index("ix_audit_tags_org_created_tag", "org_id", "created_at", "tag"),
                      Index("ix_audit_tags_org_tag_created", "org_id", "tag", "created_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("audit_events.id", ondelete="CASCADE"), index=True)
    tag: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    day: Mapped[int] = mapped_column()


class OrgGovernance(db.Model):
    """Per-org deployment profile and retention overrides (None = the tier's default)."""

    __tablename__ = "org_governance"
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    deployment_tier: Mapped[str] = mapped_column(String(40), default="commercial")
    data_region: Mapped[str] = mapped_column(String(40), default="us")
    boundary: Mapped[str] = mapped_column(String(200), default="")
    audit_retention_days: Mapped[int | None] = mapped_column(nullable=True)
    incident_retention_days: Mapped[int | None] = mapped_column(nullable=True)
    bundle_webhook_url: Mapped[str] = mapped_column(String(500), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class PurgeCheckpoint(db.Model):
    """What a retention purge removed from the chain: contiguous seq ranges with the hash of the
    last removed row, so verification can bridge each gap (the purge itself is also an audit event)."""

    __tablename__ = "audit_purge_checkpoints"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    cutoff: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    from_seq: Mapped[int] = mapped_column()
    to_seq: Mapped[int] = mapped_column()
    last_hash: Mapped[str] = mapped_column(String(64))  # hash of row to_seq (the next kept row's prev_hash)
    purged_events: Mapped[int] = mapped_column(default=0)
