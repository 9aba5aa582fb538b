"""Vulnerability findings from scanners (Qualys, Tenable, generic)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zentro.extensions import db
from zentro.platform.types import UTCDateTime, utcnow


class Finding(db.Model):
    __tablename__ = "findings"
    __table_args__ = (
        UniqueConstraint("org_id", "source", "finding_key"),
        Index("ix_findings_org_severity", "org_id", "severity", "status"),
        Index("ix_findings_org_service", "org_id", "service_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(20))  # qualys | tenable | generic
    finding_key: Mapped[str] = mapped_column(String(255))  # QID+host, plugin+asset, or finding_id
    title: Mapped[str] = mapped_column(String(300))
    severity: Mapped[str] = mapped_column(String(10))  # critical | high | medium | low | info
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | fixed
    asset: Mapped[str] = mapped_column(String(255), default="")
    cve: Mapped[str] = mapped_column(String(100), default="")
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="SET NULL"), nullable=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True)
    raw: Mapped[dict] = mapped_column(JSON, default=dict)
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    fixed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # added by 0003_ingest
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    cvss: Mapped[float | None] = mapped_column(Float, nullable=True)  # 0–10 base score when the scanner gives one
