"""Tables of the notify package: customer webhook endpoints, the webhook outbox, the delivery log, and the
digest bookkeeping (runs claimed per period, snapshots for stateful digests, per-org schedules)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zentro.extensions import db
from zentro.platform.types import UTCDateTime, utcnow

CHANNELS = ("email", "slack", "webhook")
# sent: handed to the SMTP server / accepted by Slack / 2xx from the endpoint; queued: in the webhook outbox;
# not_sent: the channel is not configured or has no recipients (error says why); failed: tried and refused.
DELIVERY_STATUSES = ("queued", "sent", "not_sent", "failed")
OUTBOX_STATUSES = ("pending", "delivered", "failed")
RUN_STATUSES = ("running", "delivered", "partial", "not_sent", "nothing_to_send", "failed")


class WebhookEndpoint(db.Model):
    """A customer endpoint that receives signed event JSON (Standard Webhooks headers)."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(String(200), default="")
    events: Mapped[list] = mapped_column(JSON, default=list)  # event types, e.g. ["incident.opened", "digest.*"]
    enabled: Mapped[bool] = mapped_column(default=True)
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)  # Fernet token of "whsec_..." (key from SECRET_KEY)
    secret_prefix: Mapped[str] = mapped_column(String(16), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Delivery(db.Model):
    """One message to one channel target: the delivery log."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (Index("ix_notification_deliveries_org_created", "org_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(80))  # digest slug, or the event type ("incident.opened", ...)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("digest_runs.id", ondelete="SET NULL"), nullable=True,
                                               index=True)
    channel: Mapped[str] = mapped_column(String(12))  # email | slack | webhook
    target: Mapped[str] = mapped_column(String(500), default="")  # "a@x, b@y" / "#channel" / endpoint URL
    recipients: Mapped[list] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(12), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OutboxMessage(db.Model):
    """A webhook message waiting for (or done with) delivery; the scheduler's drain job sends due ones."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (Index("ix_webhook_outbox_status_next", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("notification_deliveries.id", ondelete="SET NULL"),
                                                    nullable=True)
    message_id: Mapped[str] = mapped_column(String(40), unique=True)  # webhook-id header: msg_<random>
    event_type: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(nullable=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class DigestRun(db.Model):
    """A digest delivery claimed for (org, digest, period). The unique claim makes a retried job, a second
    worker or a manual POST in the same period a no-op; a forced run claims a key of its own."""

    __tablename__ = "digest_runs"
    __table_args__ = (UniqueConstraint("org_id", "digest", "claim_key"),
                      Index("ix_digest_runs_org_digest_created", "org_id", "digest", "created_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(80))
    period_key: Mapped[str] = mapped_column(String(40))
    claim_key: Mapped[str] = mapped_column(String(80))  # period_key, or period_key + "#forced-<n>"
    trigger: Mapped[str] = mapped_column(String(12))  # manual | cron | schedule | cli | chain
    forced: Mapped[bool] = mapped_column(default=False)
    actor: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="running")
    summary: Mapped[dict] = mapped_column(JSON, default=dict)  # the report's summary figures at delivery
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class DigestSnapshot(db.Model):
    """State a stateful digest keeps between deliveries (readiness per framework, the catalog hash, ...)."""

    __tablename__ = "digest_snapshots"
    __table_args__ = (Index("ix_digest_snapshots_org_digest_created", "org_id", "digest", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(80))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("digest_runs.id", ondelete="SET NULL"), nullable=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DigestSchedule(db.Model):
    """An org's schedule and channel choices for one digest (absent row: the digest's defaults, disabled)."""

    __tablename__ = "digest_schedules"
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    digest: Mapped[str] = mapped_column(String(80), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    cron: Mapped[str] = mapped_column(String(100), default="")  # 5-field cron, UTC; empty: the digest's default
    channels: Mapped[list] = mapped_column(JSON, default=list)  # subset of CHANNELS; empty: the digest's default
    slack_channel: Mapped[str] = mapped_column(String(80), default="")
    options: Mapped[dict] = mapped_column(JSON, default=dict)  # digest-specific settings (e.g. dueSoonDays)
    next_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
