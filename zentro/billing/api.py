"""Billing over JSON: the Lemon Squeezy webhook and ``/api/v1/billing/*``.

* ``POST /api/webhooks/lemonsqueezy`` — public route, authenticated by ``X-Signature`` (see
  ``zentro.billing.service``): 503 unset secret, 401 bad/missing signature, 400 malformed, 413 oversized; otherwise
  200 with ``outcome`` applied | duplicate | stale | unknown_org | unknown_variant | org_mismatch | ignored |
  wrong_mode (a test-mode event on a live deployment or the reverse: ZENTRO_LEMONSQUEEZY_MODE).
* ``GET /api/v1/billing/plans`` — any signed-in user or API key: the three plans, their limits, whether each can
  be bought here.
* ``GET /api/v1/billing/subscription`` — viewer and above, scope ``billing:read``.
* ``POST /api/v1/billing/checkout`` and ``/portal`` — owner/admin, scope ``billing:write``; audited. A plan
  that cannot be bought here (no checkout URL) or a missing portal URL is 409 ``BILLING_NOT_CONFIGURED``
  (a 5xx would read as an outage; this is a setup choice). Portal without any subscription is 404.
"""
from __future__ import annotations

from typing import Literal

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field

from zentro.billing import plans, service
from zentro.platform.auth import current_principal
from zentro.platform.routes import api_route, public_route
from zentro.platform.types import utcnow

bp = Blueprint("billing_api", __name__)

BILLING = {"resource": "billing", "tags": ("Billing",)}


class LemonWebhookOut(BaseModel):
    outcome: Literal["applied", "duplicate", "stale", "unknown_org", "unknown_variant", "org_mismatch", "ignored",
                     "wrong_mode"]
    detail: str
    event_id: int | None = Field(description="The stored event (for duplicate: the first delivery's).")
    plan: str | None = Field(description="The organisation's plan after the event, when it was applied.")


class BillingLimitsOut(BaseModel):
    api_calls_per_minute: int
    rca_analyses_per_hour: int | None = Field(description="null: unlimited.")
    alert_ingest: bool = Field(description="Whether alert ingest is open to this plan (ZENTRO_ALERT_INGEST_REQUIRE_PAID "
                                           "closes it to free).")


class BillingPlanOut(BaseModel):
    plan: Literal["free", "pro", "enterprise"]
    title: str
    paid: bool
    limits: BillingLimitsOut
    checkout_available: bool = Field(description="A checkout URL is configured, so the plan can be bought here.")


class BillingPlansOut(BaseModel):
    data: list[BillingPlanOut]
    current_plan: str
    alert_ingest_requires_paid: bool


class BillingPaymentOut(BaseModel):
    invoice_id: str
    event: str
    status: str
    billing_reason: str
    amount: int | None = Field(description="Total in the currency's minor unit (cents).")
    currency: str
    amount_formatted: str
    invoice_url: str | None
    created_at: str
    updated_at: str


class BillingSubscriptionDetailOut(BaseModel):
    id: str = Field(description="Lemon Squeezy subscription id.")
    status: str = Field(description="Lemon Squeezy status: on_trial, active, paused, past_due, unpaid, cancelled, expired.")
    plan: str | None = Field(description="The plan of its variant (null: a variant not configured here).")
    product_name: str
    variant_name: str
    renews_at: str | None
    ends_at: str | None
    trial_ends_at: str | None
    updated_at: str
    last_event: str


class BillingSubscriptionOut(BaseModel):
    plan: Literal["free", "pro", "enterprise"]
    limits: BillingLimitsOut
    subscription: BillingSubscriptionDetailOut | None
    needs_attention: bool
    attention: str
    portal_available: bool
    last_payment: BillingPaymentOut | None
    configured: bool = Field(description="Whether the Lemon Squeezy webhook is configured on this server.")


class BillingCheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    plan: Literal["pro", "enterprise"]


class BillingUrlOut(BaseModel):
    url: str


@public_route(bp, "/api/webhooks/lemonsqueezy", methods=("POST",), response=LemonWebhookOut, tags=("Billing",),
              summary="Lemon Squeezy subscription webhook. Authenticated by X-Signature (hex HMAC-SHA256 of the raw body "
                      "with ZENTRO_LEMONSQUEEZY_SIGNING_SECRET): missing/invalid → 401, secret unset → 503. Applies "
                      "each body once (duplicate), ignores events older than the stored subscription state (stale).")
def lemonsqueezy_webhook():
    raw = request.get_data(cache=True)
    result = service.handle_webhook(raw, request.headers.get("X-Signature"), current_app.config)
    return jsonify(result.json())


@api_route(bp, "/api/v1/billing/plans", methods=("GET",), response=BillingPlansOut, tags=("Billing",),
           summary="The plans (free, pro, enterprise) with their limits and whether each can be bought here.")
def billing_plans():
    p = current_principal()
    cfg = current_app.config
    return jsonify(data=plans.catalog(cfg), current_plan=p.org.plan,
                   alert_ingest_requires_paid=bool(cfg.get("ZENTRO_ALERT_INGEST_REQUIRE_PAID")))


@api_route(bp, "/api/v1/billing/subscription", methods=("GET",), response=BillingSubscriptionOut,
           summary="The organisation's plan, limits, subscription status, renewal/end, last payment and whether it "
                   "needs attention (viewer and above).", **BILLING)
def billing_subscription():
    p = current_principal()
    return jsonify(service.summary(p.org.id, current_app.config, utcnow()))


@api_route(bp, "/api/v1/billing/checkout", methods=("POST",), body=BillingCheckoutIn, response=BillingUrlOut, min_role="admin",
           summary="The hosted checkout URL of a plan with this organisation attached (checkout[custom][org_id]) and "
                   "the caller's e-mail (owner/admin). 409 BILLING_NOT_CONFIGURED when the plan's checkout URL is not "
                   "set; 409 ALREADY_SUBSCRIBED when a paid subscription exists (use the portal).", **BILLING)
def billing_checkout(body: BillingCheckoutIn):
    p = current_principal()
    url = service.checkout_link(p.org.id, body.plan, p.user.email if p.user else "", current_app.config, p.actor,
                                utcnow())
    return jsonify(url=url)


@api_route(bp, "/api/v1/billing/portal", methods=("POST",), response=BillingUrlOut, min_role="admin",
           summary="The Lemon Squeezy customer portal URL of the organisation's subscription (its own, else "
                   "ZENTRO_LEMONSQUEEZY_PORTAL_URL) (owner/admin). 404 without a subscription.", **BILLING)
def billing_portal():
    p = current_principal()
    return jsonify(url=service.portal_link(p.org.id, current_app.config, p.actor, utcnow()))
