"""Lemon Squeezy test payloads shaped like the vendor's (docs.lemonsqueezy.com: webhooks, the Subscription and
Subscription invoice objects), signed like the vendor signs them (hex HMAC-SHA256 of the raw body)."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import sqlalchemy as sa

from zentro.extensions import db

SECRET = "ls-signing-secret-for-tests"
PRO_VARIANT, PRO_YEARLY_VARIANT, ENTERPRISE_VARIANT = 101, 102, 201
CHECKOUT_PRO = "https://zentro.lemonsqueezy.com/buy/pro-0001"
CHECKOUT_ENTERPRISE = "https://zentro.lemonsqueezy.com/buy/ent-0002?enabled=201"
PORTAL = "https://zentro.lemonsqueezy.com/billing"
HOOK = "/api/webhooks/lemonsqueezy"


@pytest.fixture
def lemon(app, monkeypatch):
    """Configure Lemon Squeezy on the (session-wide) app for one test."""
    for key, value in {
        "ZENTRO_LEMONSQUEEZY_SIGNING_SECRET": SECRET,
        "ZENTRO_LEMONSQUEEZY_MODE": "test",  # the events below are test-mode ones, as from a test store
        "ZENTRO_LEMONSQUEEZY_VARIANT_PRO": f"{PRO_VARIANT}, {PRO_YEARLY_VARIANT}",
        "ZENTRO_LEMONSQUEEZY_VARIANT_ENTERPRISE": str(ENTERPRISE_VARIANT),
        "ZENTRO_LEMONSQUEEZY_CHECKOUT_URL_PRO": CHECKOUT_PRO,
        "ZENTRO_LEMONSQUEEZY_CHECKOUT_URL_ENTERPRISE": CHECKOUT_ENTERPRISE,
        "ZENTRO_LEMONSQUEEZY_PORTAL_URL": PORTAL,
    }.items():
        monkeypatch.setitem(app.config, key, value)


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def subscription_event(name: str, org_id: int | str | None, *, sub_id: str = "9001", status: str = "active",
                       variant: int = PRO_VARIANT, updated: str = "2026-03-01T10:00:00.000000Z",
                       ends_at: str | None = None, renews_at: str | None = "2026-04-01T10:00:00.000000Z",
                       webhook_id: str = "5b7a1c1e-0000-4000-8000-000000000001") -> dict:
    meta: dict = {"test_mode": True, "event_name": name, "webhook_id": webhook_id}
    if org_id is not None:
        meta["custom_data"] = {"org_id": str(org_id)}
    return {"meta": meta, "data": {"type": "subscriptions", "id": sub_id, "attributes": {
        "store_id": 7, "customer_id": 3301, "order_id": 4401, "order_item_id": 5501, "product_id": 61,
        "variant_id": variant, "product_name": "Zentro", "variant_name": "Monthly", "user_name": "Ada Admin",
        "user_email": "ada@alpha.example", "status": status, "status_formatted": status.replace("_", " ").title(),
        "card_brand": "visa", "card_last_four": "4242", "pause": None, "cancelled": status == "cancelled",
        "trial_ends_at": None, "billing_anchor": 1, "renews_at": renews_at, "ends_at": ends_at,
        "created_at": "2026-03-01T09:59:00.000000Z", "updated_at": updated, "test_mode": True,
        "urls": {"update_payment_method": f"https://zentro.lemonsqueezy.com/subscription/{sub_id}/payment-details",
                 "customer_portal": f"https://zentro.lemonsqueezy.com/billing?sub={sub_id}&sig=abc"}}},
        "links": {"self": f"https://api.lemonsqueezy.com/v1/subscriptions/{sub_id}"}}


def invoice_event(name: str, org_id: int | str | None, *, invoice_id: str = "7001", sub_id: str = "9001",
                  status: str = "paid", updated: str = "2026-03-01T10:00:05.000000Z", total: int = 4900) -> dict:
    meta: dict = {"test_mode": True, "event_name": name, "webhook_id": "5b7a1c1e-0000-4000-8000-00000000000f"}
    if org_id is not None:
        meta["custom_data"] = {"org_id": str(org_id)}
    return {"meta": meta, "data": {"type": "subscription-invoices", "id": invoice_id, "attributes": {
        "store_id": 7, "subscription_id": int(sub_id), "customer_id": 3301, "user_name": "Ada Admin",
        "user_email": "ada@alpha.example", "billing_reason": "initial", "card_brand": "visa", "card_last_four": "4242",
        "currency": "USD", "currency_rate": "1.00000000", "status": status, "status_formatted": status.title(),
        "refunded": status == "refunded", "refunded_at": None, "subtotal": total, "discount_total": 0, "tax": 0,
        "total": total, "subtotal_usd": total, "total_usd": total, "total_formatted": f"${total / 100:.2f}",
        "urls": {"invoice_url": f"https://app.lemonsqueezy.com/my-orders/abc/subscription-invoice/{invoice_id}"},
        "created_at": "2026-03-01T10:00:01.000000Z", "updated_at": updated, "test_mode": True}}}


def body_of(payload) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def deliver(client, payload, *, signature: str | None = "sign", secret: str = SECRET):
    body = body_of(payload)
    headers = {"Content-Type": "application/json", "X-Event-Name": "x"}
    if signature == "sign":
        headers["X-Signature"] = sign(body, secret)
    elif signature is not None:
        headers["X-Signature"] = signature
    return client.post(HOOK, data=body, headers=headers)


def org_plan(app, org_id: int) -> str:
    from zentro.accounts.models import Org

    with app.app_context():
        plan = db.session.get(Org, org_id).plan
        db.session.remove()
    return plan


def rows(app, model, **where) -> list:
    with app.app_context():
        q = sa.select(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        out = list(db.session.scalars(q.order_by(model.id)))
        db.session.expunge_all()
        db.session.remove()
    return out


def audit(app, org_id: int, prefix: str = "billing.") -> list[tuple[str, dict]]:
    from zentro.audit.models import AuditEvent

    with app.app_context():
        out = [(e.action, json.loads(e.data)) for e in db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.org_id == org_id, AuditEvent.action.startswith(prefix))
            .order_by(AuditEvent.seq))]
        db.session.remove()
    return out
