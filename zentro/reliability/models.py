"""Services, their dependency edges, SLI event counts and change (deploy) events."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zentro.extensions import db
from zentro.platform.types import UTCDateTime, utcnow

TIERS = (0, 1, 2, 3)  # 0 = most critical
ENVIRONMENTS = ("production", "staging", "development")


class Service(db.Model):
    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    tier: Mapped[int] = mapped_column(default=2)
    environment: Mapped[str] = mapped_column(String(20), default="production")
    internet_facing: Mapped[bool] = mapped_column(default=False)
    owner: Mapped[str] = mapped_column(String(200), default="")
    runbook_url: Mapped[str] = mapped_column(String(500), default="")
    slo_target: Mapped[float] = mapped_column(Float, default=99.9)  # percent of good events
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ServiceDependency(db.Model):
    """service depends on depends_on (traffic flows service → depends_on)."""

    __tablename__ = "service_dependencies"
    __table_args__ = (UniqueConstraint("org_id", "service_id", "depends_on_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    depends_on_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    service: Mapped[Service] = relationship(foreign_keys=[service_id])
    depends_on: Mapped[Service] = relationship(foreign_keys=[depends_on_id])


class SliSample(db.Model):
    """Good/total event counts for a service over [window_start, window_end)."""

    __tablename__ = "sli_samples"
    __table_args__ = (Index("ix_sli_samples_service_window", "org_id", "service_id", "window_start"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    good: Mapped[int] = mapped_column()
    total: Mapped[int] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ChangeEvent(db.Model):
    """A deploy, config change or flag flip on a service: candidate causes for RCA."""

    __tablename__ = "change_events"
    __table_args__ = (Index("ix_change_events_service_at", "org_id", "service_id", "occurred_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20), default="deploy")  # deploy | config | flag | infra
    summary: Mapped[str] = mapped_column(String(300))
    ref: Mapped[str] = mapped_column(String(200), default="")  # commit, version, ticket
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GateRule(db.Model):
    """A service's deploy-gate rules (zentro.reliability.gates); no row means the defaults."""

    __tablename__ = "gate_rules"
    __table_args__ = (UniqueConstraint("org_id", "service_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    block_severities: Mapped[list] = mapped_column(JSON, default=list)
    include_dependencies: Mapped[bool] = mapped_column(default=True)
    error_budget: Mapped[bool] = mapped_column(default=True)
    min_remaining_percent: Mapped[float] = mapped_column(Float, default=0.0)
    freeze: Mapped[bool] = mapped_column(default=True)
    require_maintenance_window: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GateDecision(db.Model):
    """One gate evaluation as answered to a pipeline: change-management evidence. The service link is
    cleared when the service is deleted; its name stays."""

    __tablename__ = "gate_decisions"
    __table_args__ = (Index("ix_gate_decisions_org_service", "org_id", "service_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="SET NULL"), nullable=True)
    service_name: Mapped[str] = mapped_column(String(100))
    decision: Mapped[str] = mapped_column(String(10))  # pass | fail
    checks: Mapped[list] = mapped_column(JSON, default=list)
    rules: Mapped[dict] = mapped_column(JSON, default=dict)
    context: Mapped[dict] = mapped_column(JSON, default=dict)  # ref, pipeline, environment
    actor_type: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str] = mapped_column(String(64), default="")
    actor_label: Mapped[str] = mapped_column(String(320), default="")
    audit_event_id: Mapped[int | None] = mapped_column(nullable=True)  # no FK: retention may purge audit rows
    evaluated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
