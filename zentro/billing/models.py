"""Billing tables: the org's Lemon Squeezy subscriptions, their payments (subscription invoices), and every
processed webhook event (the idempotency record: one row per distinct delivery body)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from zentro.extensions import db
from zentro.platform.types import UTCDateTime, utcnow

# Lemon Squeezy subscription statuses (docs.lemonsqueezy.com/api/subscriptions).
STATUSES = ("on_trial", "active", "paused", "past_due", "unpaid", "cancelled", "expired")
# What the webhook answers and records per event.
OUTCOMES = ("applied", "stale", "unknown_org", "unknown_variant", "org_mismatch", "ignored", "wrong_mode")


class BillingSubscription(db.Model):
    """The latest known state of one Lemon Squeezy subscription, as of ``ls_updated_at`` (the subscription's own
    ``updated_at``): an event only changes this row when it carries a newer one."""

    __tablename__ = "billing_subscriptions"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    ls_subscription_id: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    variant_id: Mapped[str] = mapped_column(String(64), default="")
    plan: Mapped[str] = mapped_column(String(20), default="")  # plan of the variant; "" when the variant is unknown
    customer_id: Mapped[str] = mapped_column(String(64), default="")
    user_email: Mapped[str] = mapped_column(String(320), default="")
    product_name: Mapped[str] = mapped_column(String(200), default="")
    variant_name: Mapped[str] = mapped_column(String(200), default="")
    renews_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    trial_ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    portal_url: Mapped[str] = mapped_column(Text, default="")
    update_payment_url: Mapped[str] = mapped_column(Text, default="")
    ls_updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_event: Mapped[str] = mapped_column(String(64), default="")
    # Outcome of the newest payment event ("" none yet | success | failed | recovered | refunded) and its time.
    payment_state: Mapped[str] = mapped_column(String(20), default="")
    payment_state_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class BillingPayment(db.Model):
    """One subscription invoice (payment) as last reported by a subscription_payment_* event."""

    __tablename__ = "billing_payments"
    __table_args__ = (Index("ix_billing_payments_org_created", "org_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    ls_invoice_id: Mapped[str] = mapped_column(String(64), unique=True)
    ls_subscription_id: Mapped[str] = mapped_column(String(64), default="")
    event: Mapped[str] = mapped_column(String(64))  # the event that last changed this row
    status: Mapped[str] = mapped_column(String(20), default="")  # invoice status: paid, pending, void, refunded ...
    billing_reason: Mapped[str] = mapped_column(String(40), default="")
    amount: Mapped[int | None] = mapped_column(nullable=True)  # total in the currency's minor unit (cents)
    currency: Mapped[str] = mapped_column(String(8), default="")
    amount_formatted: Mapped[str] = mapped_column(String(40), default="")
    invoice_url: Mapped[str] = mapped_column(Text, default="")
    ls_updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BillingEvent(db.Model):
    """A processed webhook delivery. ``event_key`` (SHA-256 of the raw body) is unique, so a second delivery of
    the same body is answered "duplicate" and changes nothing. ``org_id`` is null when no org could be named."""

    __tablename__ = "billing_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    event_key: Mapped[str] = mapped_column(String(64), unique=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), nullable=True, index=True)
    event_name: Mapped[str] = mapped_column(String(64))
    webhook_id: Mapped[str] = mapped_column(String(64), default="")  # meta.webhook_id, for cross-reference
    object_type: Mapped[str] = mapped_column(String(40), default="")
    object_id: Mapped[str] = mapped_column(String(64), default="")
    object_updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    outcome: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(String(500), default="")
    test_mode: Mapped[bool] = mapped_column(default=False)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
