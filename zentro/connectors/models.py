"""Connector tables: provider integrations (Datadog, Alertmanager, PagerDuty, New Relic, Qualys, Tenable, Slack,
SMTP, the reasoning and robot backends). See zentro/connectors/integrations.py for the rules.

One row per connection: its non-secret configuration (JSON), its secrets as one Fernet token (never returned;
``secret_hints`` keeps the last characters of each so people can tell them apart), the alert-ingest token that
sources push with, and the outcome of the last connection test."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Float, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zentro.extensions import db
from zentro.platform.types import UTCDateTime, utcnow

KINDS = ("alert_source", "vulnerability_source", "notification", "backend")
# untested: never tested; healthy / failing: the last test's verdict; not_testable: nothing outbound to call
# (an inbound-only source without an API key).
HEALTH_STATUSES = ("untested", "healthy", "failing", "not_testable")


class Integration(db.Model):
    __tablename__ = "integrations"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    config: Mapped[dict] = mapped_column(JSON, default=dict)  # non-secret fields only
    secrets_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # Fernet(JSON of secrets)
    secret_hints: Mapped[dict] = mapped_column(JSON, default=dict)  # {"api_key": "…a1b2"}
    ingest_token_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_tokens.id", ondelete="SET NULL"),
                                                        nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="untested")
    last_checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_ok_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    last_http_status: Mapped[int | None] = mapped_column(nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
