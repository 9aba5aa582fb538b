"""Lemon Squeezy webhook processing, the org's subscription summary, and checkout / portal links.

Webhook rules (``POST /api/webhooks/lemonsqueezy``):
* Authentication: ``X-Signature`` is the hex HMAC-SHA256 of the raw body under
  ``ZENTRO_LEMONSQUEEZY_SIGNING_SECRET`` (constant-time compare). Unset secret → 503; missing or wrong → 401.
  Nothing is stored for a refused request, nor for a malformed body (400) or an oversized one (413).
* Idempotency: every accepted delivery is stored in ``billing_events`` under the SHA-256 of its raw body
  (unique). The same body again → 200 ``duplicate``, nothing changes. (``meta.webhook_id`` is kept for
  reference but is not the key: Lemon Squeezy does not document it as unique per delivery.)
* Ordering: Lemon Squeezy signs no timestamp and may deliver out of order, so a subscription row only changes
  when the event's ``data.attributes.updated_at`` is newer than the stored one; otherwise → 200 ``stale``
  (recorded, ignored). A replayed old event, even re-serialised, can therefore never roll a subscription back.
  Payments (subscription invoices) follow the same rule per invoice.
* Org: ``meta.custom_data.org_id`` (the checkout links carry ``checkout[custom][org_id]``); when absent, the org
  that already owns the subscription. No such org → 200 ``unknown_org``; custom data naming another org than
  the subscription's owner → 200 ``org_mismatch``. Both are recorded and change nothing: a non-2xx answer would
  only make Lemon Squeezy retry the same body three times with the same result.
* Plan: a subscription on a configured variant grants pro/enterprise per ``zentro.billing.plans.granted_plan``;
  the org's plan is the highest plan its subscriptions grant. An unknown variant stores the subscription but
  leaves the plan unchanged (``unknown_variant``). A plan change is audited (``billing.plan_changed``) and is
  read per request by the rate limiter, RCA quota and paid gates, so it applies at once.
* Other event names (orders, license keys ...) → 200 ``ignored``, recorded.

Service functions take the org id, config mapping and ``now`` explicitly (no Flask globals)."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from zentro.accounts.models import Org
from zentro.audit.service import Actor, record
from zentro.billing import plans
from zentro.billing.models import BillingEvent, BillingPayment, BillingSubscription
from zentro.extensions import db
from zentro.platform.errors import ApiError
from zentro.platform.openapi import MAX_ID
from zentro.platform.routes import refuse_nul
from zentro.platform.types import iso, utcnow

WEBHOOK_ACTOR = Actor("system", "lemonsqueezy", "Lemon Squeezy webhook")
BILLING_TAGS: tuple[str, ...] = ()  # billing is not a control: no control tags (kept out of compliance evidence)
SUBSCRIPTION_EVENTS = frozenset({"subscription_created", "subscription_updated", "subscription_cancelled",
                                 "subscription_resumed", "subscription_expired", "subscription_paused",
                                 "subscription_unpaused"})
PAYMENT_STATES = {"subscription_payment_success": "success", "subscription_payment_failed": "failed",
                  "subscription_payment_recovered": "recovered", "subscription_payment_refunded": "refunded"}
NOT_CONFIGURED = "BILLING_NOT_CONFIGURED"


# --- webhook -----------------------------------------------------------------------------------------

def verify_signature(raw: bytes, signature: str | None, secret: str | None) -> None:
    if not secret:
        raise ApiError(503, "Lemon Squeezy webhooks are not configured: ZENTRO_LEMONSQUEEZY_SIGNING_SECRET is not set.")
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    sent = (signature or "").strip().lower()
    if not sent or not hmac.compare_digest(sent.encode("utf-8", "replace"), expected.encode()):
        raise ApiError(401, "Missing or invalid X-Signature (hex HMAC-SHA256 of the raw body with the signing secret).")


@dataclass
class Event:
    key: str
    name: str
    webhook_id: str
    test_mode: bool
    custom_org: object  # meta.custom_data.org_id as sent (None when absent)
    type: str
    id: str
    attrs: dict
    updated_at: dt.datetime | None


def _bad(detail: str) -> ApiError:
    return ApiError(400, f"Malformed Lemon Squeezy event: {detail}")


def _text(value, limit: int) -> str:
    return "" if value is None or isinstance(value, (dict, list)) else str(value)[:limit]


def _ident(value, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip() or len(str(value)) > 64:
        raise _bad(f"{what} must be a string or integer id of at most 64 characters.")
    return str(value).strip()


def _time(value, what: str, required: bool = False) -> dt.datetime | None:
    if value in (None, ""):
        if required:
            raise _bad(f"{what} is required.")
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise _bad(f"{what} is not an ISO 8601 time.") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)


def parse_event(raw: bytes) -> Event:
    refuse_nul(raw)
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"Malformed JSON body: {exc}") from None
    meta = payload.get("meta") if isinstance(payload, dict) else None
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(meta, dict) or not isinstance(data, dict):
        raise _bad("the body must be an object with meta and data objects.")
    name = meta.get("event_name")
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise _bad("meta.event_name must be a non-empty string.")
    custom = meta.get("custom_data")
    if custom is not None and not isinstance(custom, dict):
        raise _bad("meta.custom_data must be an object.")
    attrs = data.get("attributes")
    if not isinstance(attrs, dict):
        raise _bad("data.attributes must be an object.")
    handled = name in SUBSCRIPTION_EVENTS or name in PAYMENT_STATES
    if handled and not isinstance(attrs.get("urls") or {}, dict):
        raise _bad("data.attributes.urls must be an object.")
    return Event(key=hashlib.sha256(raw).hexdigest(), name=name, webhook_id=_text(meta.get("webhook_id"), 64),
                 test_mode=meta.get("test_mode") is True, custom_org=(custom or {}).get("org_id"),
                 type=_text(data.get("type"), 40), id=_ident(data.get("id"), "data.id"), attrs=attrs,
                 updated_at=_time(attrs.get("updated_at"), "data.attributes.updated_at", required=handled))


@dataclass
class Outcome:
    outcome: str
    detail: str
    org_id: int | None = None
    event_id: int | None = None
    plan: str | None = None

    def json(self) -> dict:
        return {"outcome": self.outcome, "detail": self.detail, "event_id": self.event_id, "plan": self.plan}


def _subscription(ls_id: str) -> BillingSubscription | None:
    return db.session.scalar(select(BillingSubscription).where(BillingSubscription.ls_subscription_id == ls_id))


def _resolve_org(ev: Event, sub: BillingSubscription | None) -> tuple[int | None, str]:
    """(org id, reason when there is none)."""
    if ev.custom_org is None or ev.custom_org == "":
        if sub is not None:
            return sub.org_id, ""
        return None, "meta.custom_data.org_id is missing and no known subscription names an org"
    raw = ev.custom_org
    org_id = raw if isinstance(raw, int) and not isinstance(raw, bool) else (
        int(raw) if isinstance(raw, str) and raw.strip().isdigit() and len(raw.strip()) < 10 else None)
    if org_id is None or not 0 < org_id <= MAX_ID or db.session.get(Org, org_id) is None:
        return None, f"meta.custom_data.org_id {str(raw)[:40]!r} names no organisation"
    return org_id, ""


def handle_webhook(raw: bytes, signature: str | None, config: Mapping, now: dt.datetime | None = None) -> Outcome:
    """Verify, parse, and apply one delivery exactly once (module docstring)."""
    verify_signature(raw, signature, config.get("ZENTRO_LEMONSQUEEZY_SIGNING_SECRET"))
    ev = parse_event(raw)
    now = now or utcnow()
    seen = db.session.scalar(select(BillingEvent).where(BillingEvent.event_key == ev.key))
    if seen is not None:
        return Outcome("duplicate", f"Already processed at {iso(seen.received_at)} ({seen.outcome}); nothing changed.",
                       seen.org_id, seen.id)
    try:
        result = _apply(ev, config, now)
        row = BillingEvent(event_key=ev.key, org_id=result.org_id, event_name=ev.name, webhook_id=ev.webhook_id,
                           object_type=ev.type, object_id=ev.id, object_updated_at=ev.updated_at,
                           outcome=result.outcome, detail=result.detail[:500], test_mode=ev.test_mode, received_at=now)
        db.session.add(row)
        db.session.flush()
        result.event_id = row.id
        db.session.commit()
    except ApiError:  # a malformed field found while applying: nothing is kept
        db.session.rollback()
        raise
    except IntegrityError:  # the same body (or a first sight of the same subscription) committed concurrently
        db.session.rollback()
        seen = db.session.scalar(select(BillingEvent).where(BillingEvent.event_key == ev.key))
        if seen is not None:
            return Outcome("duplicate", "Processed concurrently by another delivery; nothing changed.",
                           seen.org_id, seen.id)
        raise ApiError(409, "A concurrent delivery changed this subscription; retry.") from None
    return result


def _apply(ev: Event, config: Mapping, now: dt.datetime) -> Outcome:
    if ev.name in SUBSCRIPTION_EVENTS:
        sub = _subscription(ev.id)
    elif ev.name in PAYMENT_STATES:
        sub_ls_id = _text(ev.attrs.get("subscription_id"), 64)
        sub = _subscription(sub_ls_id) if sub_ls_id else None
    else:
        org_id, _ = _resolve_org(ev, None)
        return Outcome("ignored", f"Event {ev.name} is not handled by Zentro.", org_id)
    mode = (config.get("ZENTRO_LEMONSQUEEZY_MODE") or "live").strip().lower()
    if ev.test_mode != (mode == "test"):
        return Outcome("wrong_mode", f"A {'test' if ev.test_mode else 'live'}-mode event, and this deployment takes "
                                     f"{mode}-mode events only (ZENTRO_LEMONSQUEEZY_MODE); nothing changed.")
    org_id, reason = _resolve_org(ev, sub)
    if org_id is None:
        return Outcome("unknown_org", f"{reason}; nothing changed.")
    if sub is not None and sub.org_id != org_id:
        return Outcome("org_mismatch", f"Subscription {sub.ls_subscription_id} belongs to another organisation than "
                                       f"meta.custom_data.org_id names; nothing changed.")
    if ev.name in PAYMENT_STATES:
        return _apply_payment(org_id, ev, sub, now)
    return _apply_subscription(org_id, ev, sub, config, now)


def _apply_subscription(org_id: int, ev: Event, sub: BillingSubscription | None, config: Mapping,
                        now: dt.datetime) -> Outcome:
    a = ev.attrs
    if sub is not None and ev.updated_at <= sub.ls_updated_at:
        return Outcome("stale", f"Event updated_at {iso(ev.updated_at)} is not newer than the stored state "
                                f"({iso(sub.ls_updated_at)}); ignored.", org_id)
    status = _text(a.get("status"), 20)
    if not status:
        raise _bad("data.attributes.status is required.")
    variant = _text(a.get("variant_id"), 64)
    plan = plans.plan_for_variant(config, variant)
    before_status = sub.status if sub is not None else None
    if sub is None:
        sub = BillingSubscription(org_id=org_id, ls_subscription_id=ev.id, created_at=now)
        db.session.add(sub)
    urls = a.get("urls") or {}
    sub.status, sub.variant_id, sub.plan = status, variant, plan or ""
    sub.customer_id = _text(a.get("customer_id"), 64)
    sub.user_email = _text(a.get("user_email"), 320)
    sub.product_name, sub.variant_name = _text(a.get("product_name"), 200), _text(a.get("variant_name"), 200)
    sub.renews_at = _time(a.get("renews_at"), "renews_at")
    sub.ends_at = _time(a.get("ends_at"), "ends_at")
    sub.trial_ends_at = _time(a.get("trial_ends_at"), "trial_ends_at")
    sub.portal_url = _text(urls.get("customer_portal"), 2000)
    sub.update_payment_url = _text(urls.get("update_payment_method"), 2000)
    sub.ls_updated_at, sub.last_event, sub.updated_at = ev.updated_at, ev.name, now
    db.session.flush()
    record(org_id, "billing.subscription_updated", WEBHOOK_ACTOR, target_type="billing_subscription",
           target_id=sub.ls_subscription_id, control_tags=BILLING_TAGS, now=now,
           data={"event": ev.name, "status_before": before_status, "status": status, "variant_id": variant,
                 "plan": plan, "ends_at": iso(sub.ends_at)})
    if plan is None:
        return Outcome("unknown_variant", f"Variant {variant or '(none)'} is not configured as pro or enterprise "
                                          "(ZENTRO_LEMONSQUEEZY_VARIANT_*); subscription stored, plan unchanged.",
                       org_id, plan=_org_plan(org_id))
    new_plan = sync_org_plan(org_id, ev.name, now)
    return Outcome("applied", f"Subscription {ev.id} is {status}; the organisation is on {new_plan}.", org_id,
                   plan=new_plan)


def _org_plan(org_id: int) -> str:
    return db.session.get(Org, org_id).plan


def sync_org_plan(org_id: int, cause: str, now: dt.datetime) -> str:
    """Set the org's plan to the highest plan its (known-variant) subscriptions grant at ``now``; audit a change."""
    subs = db.session.scalars(select(BillingSubscription).where(BillingSubscription.org_id == org_id,
                                                                BillingSubscription.plan != "")).all()
    target = max((plans.granted_plan(s.plan, s.status, s.ends_at, now) for s in subs), key=plans.rank,
                 default="free")
    org = db.session.get(Org, org_id)
    if org.plan != target:
        before, org.plan = org.plan, target
        record(org_id, "billing.plan_changed", WEBHOOK_ACTOR, target_type="org", target_id=org_id,
               control_tags=BILLING_TAGS, now=now, data={"before": before, "after": target, "event": cause})
    return target


def _apply_payment(org_id: int, ev: Event, sub: BillingSubscription | None, now: dt.datetime) -> Outcome:
    a = ev.attrs
    pay = db.session.scalar(select(BillingPayment).where(BillingPayment.ls_invoice_id == ev.id))
    if pay is not None and ev.updated_at <= pay.ls_updated_at:
        return Outcome("stale", f"Invoice {ev.id} updated_at {iso(ev.updated_at)} is not newer than the stored "
                                f"state ({iso(pay.ls_updated_at)}); ignored.", org_id)
    if pay is not None and pay.org_id != org_id:
        return Outcome("org_mismatch", f"Invoice {ev.id} belongs to another organisation; nothing changed.")
    if pay is None:
        pay = BillingPayment(org_id=org_id, ls_invoice_id=ev.id, created_at=_time(a.get("created_at"), "created_at") or now)
        db.session.add(pay)
    total = a.get("total")
    pay.ls_subscription_id = _text(a.get("subscription_id"), 64)
    pay.event, pay.status = ev.name, _text(a.get("status"), 20)
    pay.billing_reason = _text(a.get("billing_reason"), 40)
    pay.amount = total if isinstance(total, int) and not isinstance(total, bool) and abs(total) < 2**31 else None
    pay.currency, pay.amount_formatted = _text(a.get("currency"), 8), _text(a.get("total_formatted"), 40)
    pay.invoice_url = _text((a.get("urls") or {}).get("invoice_url"), 2000)
    pay.ls_updated_at = ev.updated_at
    state = PAYMENT_STATES[ev.name]
    if sub is not None and (sub.payment_state_at is None or ev.updated_at > sub.payment_state_at):
        sub.payment_state, sub.payment_state_at = state, ev.updated_at
    db.session.flush()
    record(org_id, "billing.payment_recorded", WEBHOOK_ACTOR, target_type="billing_payment", target_id=ev.id,
           control_tags=BILLING_TAGS, now=now,
           data={"event": ev.name, "status": pay.status, "amount": pay.amount, "currency": pay.currency,
                 "subscription_id": pay.ls_subscription_id})
    return Outcome("applied", f"Payment {ev.id} recorded ({state}).", org_id, plan=_org_plan(org_id))


# --- reading -----------------------------------------------------------------------------------------

def current_subscription(org_id: int, now: dt.datetime) -> BillingSubscription | None:
    """The subscription that matters for the org: the one granting the highest plan, else the newest."""
    subs = db.session.scalars(select(BillingSubscription).where(BillingSubscription.org_id == org_id)
                              .order_by(BillingSubscription.ls_updated_at.desc(), BillingSubscription.id.desc())).all()
    if not subs:
        return None
    return max(subs, key=lambda s: plans.rank(plans.granted_plan(s.plan, s.status, s.ends_at, now)))


def attention(sub: BillingSubscription | None) -> str:
    """Why the subscription needs the customer's attention ("" when it does not)."""
    if sub is None:
        return ""
    if sub.status == "past_due" or sub.payment_state == "failed":
        return "The last payment failed; Lemon Squeezy retries it. Update the payment method to keep the plan."
    if sub.status == "unpaid":
        return "Payment could not be collected; the subscription no longer grants a paid plan."
    if sub.status == "cancelled":
        return "The subscription is cancelled and ends at the end of the paid period unless it is resumed."
    if sub.status == "paused":
        return "Payment collection is paused; the subscription grants no paid plan until it is resumed."
    return ""


def payments(org_id: int, limit: int = 20) -> list[BillingPayment]:
    return list(db.session.scalars(select(BillingPayment).where(BillingPayment.org_id == org_id)
                                   .order_by(BillingPayment.created_at.desc(), BillingPayment.id.desc()).limit(limit)))


def payment_json(p: BillingPayment) -> dict:
    return {"invoice_id": p.ls_invoice_id, "event": p.event, "status": p.status, "billing_reason": p.billing_reason,
            "amount": p.amount, "currency": p.currency, "amount_formatted": p.amount_formatted,
            "invoice_url": p.invoice_url or None, "created_at": iso(p.created_at), "updated_at": iso(p.ls_updated_at)}


def portal_url(config: Mapping, sub: BillingSubscription | None) -> str:
    return (sub.portal_url if sub is not None and sub.portal_url else "") or (config.get(
        "ZENTRO_LEMONSQUEEZY_PORTAL_URL") or "").strip()


def summary(org_id: int, config: Mapping, now: dt.datetime) -> dict:
    org = db.session.get(Org, org_id)
    sub = current_subscription(org_id, now)
    last = payments(org_id, 1)
    return {
        "plan": org.plan,
        "limits": next(p["limits"] for p in plans.catalog(config) if p["plan"] == org.plan),
        "subscription": None if sub is None else {
            "id": sub.ls_subscription_id, "status": sub.status, "plan": sub.plan or None,
            "product_name": sub.product_name, "variant_name": sub.variant_name,
            "renews_at": iso(sub.renews_at), "ends_at": iso(sub.ends_at), "trial_ends_at": iso(sub.trial_ends_at),
            "updated_at": iso(sub.ls_updated_at), "last_event": sub.last_event,
        },
        "needs_attention": bool(attention(sub)),
        "attention": attention(sub),
        "portal_available": sub is not None and bool(portal_url(config, sub)),
        "last_payment": payment_json(last[0]) if last else None,
        "configured": bool(config.get("ZENTRO_LEMONSQUEEZY_SIGNING_SECRET")),
    }


# --- checkout and portal links -----------------------------------------------------------------------

def checkout_link(org_id: int, plan: str, email: str, config: Mapping, actor: Actor, now: dt.datetime) -> str:
    """The plan's hosted checkout URL with the org id (custom data, echoed back in every webhook) and the buyer's
    e-mail. 409 when the plan cannot be bought here or the org already has a paying subscription."""
    base = plans.checkout_url(config, plan)
    if not base:
        raise ApiError(409, f"Buying {plan} in the app is not configured: set "
                            f"{plans.CHECKOUT_KEYS[plan]}.", error_code=NOT_CONFIGURED)
    sub = current_subscription(org_id, now)
    if sub is not None and plans.granted_plan(sub.plan, sub.status, sub.ends_at, now) != "free":
        raise ApiError(409, "This organisation already has a paid subscription: change its plan in the billing "
                            "portal (POST /api/v1/billing/portal).", error_code="ALREADY_SUBSCRIBED")
    query = urlencode({"checkout[custom][org_id]": str(org_id), **({"checkout[email]": email} if email else {})})
    parts = urlsplit(base)
    url = base + ("&" if parts.query else "?") + query
    record(org_id, "billing.checkout_requested", actor, target_type="org", target_id=org_id,
           control_tags=BILLING_TAGS, now=now, data={"plan": plan})
    db.session.commit()
    return url


def portal_link(org_id: int, config: Mapping, actor: Actor, now: dt.datetime) -> str:
    sub = current_subscription(org_id, now)
    if sub is None:
        raise ApiError(404, "Subscription not found: this organisation has no Lemon Squeezy subscription yet.")
    url = portal_url(config, sub)
    if not url:
        raise ApiError(409, "The subscription carries no customer portal URL and ZENTRO_LEMONSQUEEZY_PORTAL_URL is "
                            "not set.", error_code=NOT_CONFIGURED)
    record(org_id, "billing.portal_requested", actor, target_type="billing_subscription",
           target_id=sub.ls_subscription_id, control_tags=BILLING_TAGS, now=now, data={})
    db.session.commit()
    return url
