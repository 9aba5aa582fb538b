"""Incidents, their timelines, the alerts folded into them, and RCA runs."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zentro.extensions import db
from zentro.platform.types import UTCDateTime, utcnow

SEVERITIES = ("critical", "high", "medium", "low")
STATUSES = ("open", "acknowledged", "mitigated", "resolved", "closed")
ACTIVE_STATUSES = ("open", "acknowledged", "mitigated")  # an alert with the same key folds into these


class Incident(db.Model):
    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("org_id", "number"),
        # One active incident per (org, dedupe key): open_dedupe_key is the key while the incident is
        # active and NULL afterwards (NULLs never collide), which makes dedupe exact under concurrency.
        UniqueConstraint("org_id", "open_dedupe_key"),
        Index("ix_incidents_org_status", "org_id", "status", "id"),
        Index("ix_incidents_org_id", "org_id", "id"),  # newest-first pages over every status
        Index("ix_incidents_org_service", "org_id", "service_id", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column()
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(10), default="medium")
    status: Mapped[str] = mapped_column(String(15), default="open")
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="SET NULL"), nullable=True)
    commander_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    source: Mapped[str] = mapped_column(String(30), default="manual")
    dedupe_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    open_dedupe_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    alert_count: Mapped[int] = mapped_column(default=0)
    legal_hold: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    mitigated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    service = relationship("Service")
    commander = relationship("User")

    @property
    def ref(self) -> str:
        return f"INC-{self.number}"

    @property
    def service_name(self) -> str | None:
        return self.service.name if self.service is not None else None

    @property
    def commander_email(self) -> str | None:
        return self.commander.email if self.commander is not None else None


class TimelineEvent(db.Model):
    __tablename__ = "timeline_events"
    __table_args__ = (Index("ix_timeline_events_incident", "org_id", "incident_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))  # created | alert | status | note | severity | commander | rca | legal_hold | ...
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    actor_type: Mapped[str] = mapped_column(String(20), default="system")
    actor_label: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Alert(db.Model):
    __tablename__ = "alerts"
    __table_args__ = (
        # the same delivery (same source, key, status and start) is stored once
        UniqueConstraint("org_id", "delivery_key"),
        Index("ix_alerts_incident", "org_id", "incident_id"),
        Index("ix_alerts_dedupe", "org_id", "dedupe_key", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True)
    source: Mapped[str] = mapped_column(String(30))
    dedupe_key: Mapped[str] = mapped_column(String(255))
    delivery_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10))  # firing | resolved
    severity: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(300))
    service_name: Mapped[str] = mapped_column(String(100), default="")
    labels: Mapped[dict] = mapped_column(JSON, default=dict)
    raw: Mapped[dict] = mapped_column(JSON, default=dict)
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RcaRun(db.Model):
    __tablename__ = "rca_runs"
    __table_args__ = (Index("ix_rca_runs_incident", "org_id", "incident_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    # A running run holds its incident's id here; unique, so a second concurrent run is refused.
    running_incident_id: Mapped[int | None] = mapped_column(nullable=True, unique=True)
    status: Mapped[str] = mapped_column(String(15), default="queued")  # queued | running | succeeded | failed | cancelled
    progress: Mapped[int] = mapped_column(default=0)  # 0..100
    stage: Mapped[str] = mapped_column(String(100), default="")
    hypotheses: Mapped[list] = mapped_column(JSON, default=list)
    error: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # RCA (migration 0005): the run's inputs and what the engine examined; the last time its worker reported
    # (a queued/running run that has not reported for a while is abandoned and no longer blocks new runs).
    summary: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
