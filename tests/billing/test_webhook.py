"""POST /api/webhooks/lemonsqueezy: signature (401/503, nothing stored), each subscription event's effect on the
plan, exactly-once per body, stale (older) events ignored, unknown org / variant, custom data naming another
org, malformed and oversized bodies, payments and the attention flag, and the plan driving the rate limit."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.billing.helpers import (ENTERPRISE_VARIANT, PRO_YEARLY_VARIANT, audit, body_of, deliver,  # noqa: F401
                                   invoice_event, lemon, org_plan, rows, sign, subscription_event)
from tests.platform.test_isolation import org_state, whole_state
from zentro.billing import service
from zentro.billing.models import BillingEvent, BillingPayment, BillingSubscription
from zentro.extensions import db


@pytest.fixture
def owner(make_member):
    return make_member("alpha", "owner")


@pytest.fixture
def anon(app):
    return app.test_client()


def _whole(app):
    with app.app_context():
        state = whole_state()
        db.session.remove()
    return state


def _org(app, org_id):
    with app.app_context():
        state = org_state(org_id)
        db.session.remove()
    return state


def _iso(delta_days: float) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=delta_days)).isoformat().replace("+00:00", "Z")


# --- authentication ----------------------------------------------------------------------------------

def test_unset_secret_is_503_and_stores_nothing(app, owner, anon):
    before = _whole(app)
    resp = deliver(anon, subscription_event("subscription_created", owner.org_id))
    assert resp.status_code == 503 and resp.get_json()["error_code"] == "SERVICE_UNAVAILABLE"
    assert "ZENTRO_LEMONSQUEEZY_SIGNING_SECRET" in resp.get_json()["detail"]
    assert _whole(app) == before and org_plan(app, owner.org_id) == "free"


@pytest.mark.parametrize("signature", [None, "", "deadbeef", "wrong-secret", "tampered"])
def test_bad_or_missing_signature_is_401_and_changes_nothing(app, lemon, owner, anon, signature):
    payload = subscription_event("subscription_created", owner.org_id)
    if signature == "wrong-secret":
        signature = sign(body_of(payload), "another-secret")
    elif signature == "tampered":  # signed body for org 1, delivered with another variant
        signature = sign(body_of(subscription_event("subscription_created", owner.org_id, variant=999)))
    before = _whole(app)
    resp = deliver(anon, payload, signature=signature)
    assert resp.status_code == 401, resp.get_data(as_text=True)
    assert resp.get_json()["error_code"] == "UNAUTHORIZED"
    assert _whole(app) == before and org_plan(app, owner.org_id) == "free"
    assert rows(app, BillingEvent) == []


def test_signature_compare_accepts_uppercase_hex(app, lemon, owner, anon):
    payload = subscription_event("subscription_created", owner.org_id)
    resp = deliver(anon, payload, signature=sign(body_of(payload)).upper())
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "applied"


# --- subscription lifecycle --------------------------------------------------------------------------

def test_created_puts_the_org_on_pro_and_audits_the_change(app, lemon, owner, anon):
    resp = deliver(anon, subscription_event("subscription_created", owner.org_id))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert (body["outcome"], body["plan"]) == ("applied", "pro") and body["event_id"]
    assert org_plan(app, owner.org_id) == "pro"
    [sub] = rows(app, BillingSubscription)
    assert (sub.org_id, sub.ls_subscription_id, sub.status, sub.variant_id, sub.plan, sub.customer_id) == (
        owner.org_id, "9001", "active", "101", "pro", "3301")
    assert sub.renews_at == dt.datetime(2026, 4, 1, 10, tzinfo=dt.timezone.utc)
    assert sub.portal_url.startswith("https://zentro.lemonsqueezy.com/billing?sub=9001")
    [ev] = rows(app, BillingEvent)
    assert (ev.org_id, ev.event_name, ev.outcome, ev.object_id, ev.test_mode) == (
        owner.org_id, "subscription_created", "applied", "9001", True)
    changes = [d for a, d in audit(app, owner.org_id) if a == "billing.plan_changed"]
    assert changes == [{"before": "free", "after": "pro", "event": "subscription_created"}]


# (event, status, ends_at offset in days or None, plan after) applied in order to one subscription
LIFECYCLE = [
    ("subscription_created", "on_trial", None, "pro"),
    ("subscription_updated", "active", None, "pro"),
    ("subscription_updated", "past_due", None, "pro"),        # grace while Lemon Squeezy retries
    ("subscription_cancelled", "cancelled", 10, "pro"),       # paid until the end of the period
    ("subscription_resumed", "active", None, "pro"),
    ("subscription_paused", "paused", None, "free"),
    ("subscription_unpaused", "active", None, "pro"),
    ("subscription_updated", "unpaid", None, "free"),
    ("subscription_updated", "active", None, "pro"),
    ("subscription_cancelled", "cancelled", -1, "free"),      # cancelled and already past ends_at
    ("subscription_expired", "expired", -1, "free"),
]


def test_each_event_sets_status_and_plan(app, lemon, owner, anon):
    for i, (name, status, ends, plan) in enumerate(LIFECYCLE):
        payload = subscription_event(name, owner.org_id, status=status, updated=f"2026-03-01T10:{i:02d}:00Z",
                                     ends_at=_iso(ends) if ends is not None else None)
        resp = deliver(anon, payload)
        assert resp.status_code == 200 and resp.get_json()["outcome"] == "applied", (name, resp.get_json())
        assert org_plan(app, owner.org_id) == plan, (name, status)
        [sub] = rows(app, BillingSubscription)
        assert (sub.status, sub.last_event) == (status, name)
    changes = [(d["before"], d["after"], d["event"]) for a, d in audit(app, owner.org_id) if a == "billing.plan_changed"]
    assert changes == [("free", "pro", "subscription_created"), ("pro", "free", "subscription_paused"),
                       ("free", "pro", "subscription_unpaused"), ("pro", "free", "subscription_updated"),
                       ("free", "pro", "subscription_updated"), ("pro", "free", "subscription_cancelled")]


def test_cancelled_grants_the_plan_until_ends_at(app, lemon, owner):
    ends = dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)
    payload = subscription_event("subscription_cancelled", owner.org_id, status="cancelled",
                                 ends_at="2026-05-01T00:00:00Z")
    with app.app_context():
        out = service.handle_webhook(body_of(payload), sign(body_of(payload)), app.config,
                                     now=ends - dt.timedelta(seconds=1))
        assert (out.outcome, out.plan) == ("applied", "pro")
        assert service.sync_org_plan(owner.org_id, "check", ends) == "free"
        db.session.commit()
        db.session.remove()
    assert org_plan(app, owner.org_id) == "free"


def test_enterprise_variant_and_yearly_pro_variant(app, lemon, owner, make_member, anon):
    other = make_member("bravo", "owner")
    deliver(anon, subscription_event("subscription_created", owner.org_id, variant=ENTERPRISE_VARIANT))
    deliver(anon, subscription_event("subscription_created", other.org_id, sub_id="9002", variant=PRO_YEARLY_VARIANT))
    assert (org_plan(app, owner.org_id), org_plan(app, other.org_id)) == ("enterprise", "pro")


def test_highest_subscription_wins_and_expiry_of_the_old_one_keeps_the_new(app, lemon, owner, anon):
    deliver(anon, subscription_event("subscription_created", owner.org_id, sub_id="1"))
    deliver(anon, subscription_event("subscription_created", owner.org_id, sub_id="2", variant=ENTERPRISE_VARIANT,
                                     updated="2026-03-02T00:00:00Z"))
    assert org_plan(app, owner.org_id) == "enterprise"
    deliver(anon, subscription_event("subscription_expired", owner.org_id, sub_id="1", status="expired",
                                     updated="2026-03-03T00:00:00Z", ends_at="2026-03-03T00:00:00Z"))
    assert org_plan(app, owner.org_id) == "enterprise"


# --- idempotency and ordering ------------------------------------------------------------------------

def test_replaying_the_same_body_is_a_duplicate_and_changes_nothing(app, lemon, owner, anon):
    payload = subscription_event("subscription_created", owner.org_id)
    first = deliver(anon, payload).get_json()
    deliver(anon, subscription_event("subscription_expired", owner.org_id, status="expired",
                                     updated="2026-03-09T00:00:00Z", ends_at="2026-03-09T00:00:00Z"))
    before = _whole(app)
    again = deliver(anon, payload)
    assert again.status_code == 200
    assert again.get_json()["outcome"] == "duplicate" and again.get_json()["event_id"] == first["event_id"]
    assert _whole(app) == before and org_plan(app, owner.org_id) == "free"


def test_older_event_after_newer_is_stale_and_ignored(app, lemon, owner, anon):
    deliver(anon, subscription_event("subscription_expired", owner.org_id, status="expired",
                                     updated="2026-03-05T00:00:00Z", ends_at="2026-03-05T00:00:00Z"))
    # the subscription_created(active) of March 1st arrives late, or is replayed re-serialised by an attacker
    late = subscription_event("subscription_created", owner.org_id, status="active", updated="2026-03-01T00:00:00Z")
    resp = deliver(anon, late)
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "stale"
    assert org_plan(app, owner.org_id) == "free"
    [sub] = rows(app, BillingSubscription)
    assert sub.status == "expired"
    assert [e.outcome for e in rows(app, BillingEvent)] == ["applied", "stale"]
    # the same updated_at again (a re-sent copy with another meta) is not newer either
    same = subscription_event("subscription_expired", owner.org_id, status="active", updated="2026-03-05T00:00:00Z",
                              webhook_id="another")
    assert deliver(anon, same).get_json()["outcome"] == "stale" and org_plan(app, owner.org_id) == "free"


# --- org mapping -------------------------------------------------------------------------------------

@pytest.mark.parametrize("custom", [999999, 2**40, -7, 0, "not-a-number", "", None, "-1", True])
def test_unknown_org_is_recorded_and_changes_nothing(app, lemon, owner, anon, custom):
    payload = subscription_event("subscription_created", None)
    if custom is not None:
        payload["meta"]["custom_data"] = {"org_id": custom}
    before = _org(app, owner.org_id)
    resp = deliver(anon, payload)
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "unknown_org"
    assert _org(app, owner.org_id) == before
    assert rows(app, BillingSubscription) == []
    [ev] = rows(app, BillingEvent)
    assert (ev.org_id, ev.outcome) == (None, "unknown_org")
    assert deliver(anon, payload).get_json()["outcome"] == "duplicate"  # Lemon's retry is harmless


def test_custom_data_naming_another_org_only_affects_that_org(app, lemon, owner, make_member, anon):
    bravo = make_member("bravo", "owner")
    before_alpha = _org(app, owner.org_id)
    deliver(anon, subscription_event("subscription_created", bravo.org_id, sub_id="77"))
    assert (org_plan(app, owner.org_id), org_plan(app, bravo.org_id)) == ("free", "pro")
    assert _org(app, owner.org_id) == before_alpha
    # a later event for bravo's subscription that claims alpha: refused, neither org changes
    before = (_org(app, owner.org_id), _org(app, bravo.org_id))
    resp = deliver(anon, subscription_event("subscription_expired", owner.org_id, sub_id="77", status="expired",
                                            updated="2026-03-09T00:00:00Z"))
    assert resp.get_json()["outcome"] == "org_mismatch"
    assert (_org(app, owner.org_id), _org(app, bravo.org_id)) == before
    assert (org_plan(app, owner.org_id), org_plan(app, bravo.org_id)) == ("free", "pro")


def test_event_without_custom_data_uses_the_subscriptions_org(app, lemon, owner, anon):
    deliver(anon, subscription_event("subscription_created", owner.org_id))
    resp = deliver(anon, subscription_event("subscription_expired", None, status="expired",
                                            updated="2026-03-09T00:00:00Z"))
    assert resp.get_json()["outcome"] == "applied" and org_plan(app, owner.org_id) == "free"


def test_unknown_variant_stores_the_subscription_and_keeps_the_plan(app, lemon, make_member, anon):
    m = make_member("alpha", "owner", plan="pro")
    resp = deliver(anon, subscription_event("subscription_created", m.org_id, variant=555))
    body = resp.get_json()
    assert (body["outcome"], body["plan"]) == ("unknown_variant", "pro") and "555" in body["detail"]
    assert org_plan(app, m.org_id) == "pro"
    [sub] = rows(app, BillingSubscription)
    assert (sub.variant_id, sub.plan, sub.status) == ("555", "", "active")
    assert not [a for a, _ in audit(app, m.org_id) if a == "billing.plan_changed"]


@pytest.mark.parametrize("mode,event_test_mode", [("live", True), ("test", False)])
def test_an_event_of_the_other_mode_is_recorded_and_changes_nothing(app, lemon, owner, anon, monkeypatch, mode,
                                                                    event_test_mode):
    """A live deployment ignores a test store's events (and a test deployment live ones): no plan, no
    subscription, no payment; the delivery is kept as wrong_mode, so a replay is a duplicate."""
    monkeypatch.setitem(app.config, "ZENTRO_LEMONSQUEEZY_MODE", mode)
    payloads = [subscription_event("subscription_created", owner.org_id), invoice_event("subscription_payment_success",
                                                                                         owner.org_id)]
    for p in payloads:
        p["meta"]["test_mode"] = p["data"]["attributes"]["test_mode"] = event_test_mode
    for p in payloads:
        body = deliver(anon, p).get_json()
        assert body["outcome"] == "wrong_mode" and body["plan"] is None
        assert f"{mode}-mode events only" in body["detail"]
    assert org_plan(app, owner.org_id) == "free"
    assert rows(app, BillingSubscription) == [] and rows(app, BillingPayment) == []
    assert [(e.outcome, e.test_mode) for e in rows(app, BillingEvent)] == [("wrong_mode", event_test_mode)] * 2
    assert deliver(anon, payloads[0]).get_json()["outcome"] == "duplicate"
    # the same events in the deployment's own mode apply
    for p in payloads:
        p["meta"]["test_mode"] = p["data"]["attributes"]["test_mode"] = not event_test_mode
    assert deliver(anon, payloads[0]).get_json()["outcome"] == "applied"
    assert org_plan(app, owner.org_id) == "pro"


def test_unhandled_events_are_ignored(app, lemon, owner, anon):
    payload = {"meta": {"event_name": "order_created", "custom_data": {"org_id": str(owner.org_id)}},
               "data": {"type": "orders", "id": "1", "attributes": {"status": "paid"}}}
    resp = deliver(anon, payload)
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "ignored"
    assert org_plan(app, owner.org_id) == "free" and rows(app, BillingSubscription) == []
    assert [e.outcome for e in rows(app, BillingEvent)] == ["ignored"]


# --- malformed input ---------------------------------------------------------------------------------

def _without_updated_at():
    p = subscription_event("subscription_created", 1)
    del p["data"]["attributes"]["updated_at"]
    return p


def _bad_time(field="updated_at"):
    p = subscription_event("subscription_created", 1)
    p["data"]["attributes"][field] = "yesterday"
    return p


@pytest.mark.parametrize("payload", [
    b"{not json", b"[]", b'"x"', b'{"meta": {}, "data": {}}',
    {"meta": {"event_name": "subscription_created"}, "data": {"id": "1"}},
    {"meta": {"event_name": "subscription_created", "custom_data": "1"}, "data": {"id": "1", "attributes": {}}},
    {"meta": {"event_name": "subscription_created"}, "data": {"id": {"x": 1}, "attributes": {}}},
    _without_updated_at(), _bad_time(), _bad_time("renews_at"),
    b'{"meta": {"event_name": "subscription_created\\u0000"}, "data": {}}', b"[" * 100_000,
], ids=["syntax", "array", "string", "empty", "no-attributes", "custom-not-object", "bad-id", "no-updated_at",
        "bad-time", "bad-renews_at", "nul", "deep"])
def test_malformed_signed_body_is_400_and_stores_nothing(app, lemon, owner, anon, payload):
    if isinstance(payload, dict) and "custom_data" in payload["meta"]:
        payload["meta"]["custom_data"] = {"org_id": str(owner.org_id)}  # a real org: only the field is wrong
    before = _whole(app)
    resp = deliver(anon, payload)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert resp.get_json()["error_code"] == "VALIDATION_ERROR"
    assert _whole(app) == before


def test_missing_status_is_400(app, lemon, owner, anon):
    p = subscription_event("subscription_created", owner.org_id)
    del p["data"]["attributes"]["status"]
    before = _whole(app)
    assert deliver(anon, p).status_code == 400 and _whole(app) == before


def test_oversized_body_is_413_and_stores_nothing(app, lemon, owner, anon):
    payload = subscription_event("subscription_created", owner.org_id)
    payload["meta"]["padding"] = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    before = _whole(app)
    resp = deliver(anon, payload)
    assert resp.status_code == 413 and resp.get_json()["error_code"] == "PAYLOAD_TOO_LARGE"
    assert _whole(app) == before


# --- payments ----------------------------------------------------------------------------------------

def test_payments_are_recorded_and_a_failure_needs_attention(app, lemon, owner, anon, sign_in):
    client = sign_in(owner)
    deliver(anon, subscription_event("subscription_created", owner.org_id))
    ok = deliver(anon, invoice_event("subscription_payment_success", owner.org_id))
    assert ok.get_json()["outcome"] == "applied"
    [pay] = rows(app, BillingPayment)
    assert (pay.org_id, pay.ls_invoice_id, pay.ls_subscription_id, pay.status, pay.amount, pay.currency,
            pay.amount_formatted) == (owner.org_id, "7001", "9001", "paid", 4900, "USD", "$49.00")
    assert pay.invoice_url.endswith("/subscription-invoice/7001")
    sub = client.get("/api/v1/billing/subscription").get_json()
    assert sub["needs_attention"] is False and sub["last_payment"]["amount_formatted"] == "$49.00"

    deliver(anon, invoice_event("subscription_payment_failed", owner.org_id, invoice_id="7002", status="pending",
                                updated="2026-04-01T10:00:00Z"))
    sub = client.get("/api/v1/billing/subscription").get_json()
    assert sub["needs_attention"] is True and "payment failed" in sub["attention"]
    assert org_plan(app, owner.org_id) == "pro"  # the plan follows the subscription status, not the invoice

    deliver(anon, invoice_event("subscription_payment_recovered", owner.org_id, invoice_id="7002", status="paid",
                                updated="2026-04-03T10:00:00Z"))
    sub = client.get("/api/v1/billing/subscription").get_json()
    assert sub["needs_attention"] is False and sub["last_payment"]["status"] == "paid"
    assert len(rows(app, BillingPayment)) == 2

    # an older copy of the failure arriving late changes nothing
    late = deliver(anon, invoice_event("subscription_payment_failed", owner.org_id, invoice_id="7002",
                                       status="pending", updated="2026-04-02T10:00:00Z"))
    assert late.get_json()["outcome"] == "stale"
    assert client.get("/api/v1/billing/subscription").get_json()["needs_attention"] is False

    deliver(anon, invoice_event("subscription_payment_refunded", owner.org_id, invoice_id="7001", status="refunded",
                                updated="2026-04-05T10:00:00Z"))
    refunded = [p for p in rows(app, BillingPayment) if p.ls_invoice_id == "7001"][0]
    assert (refunded.status, refunded.event) == ("refunded", "subscription_payment_refunded")
    assert [a for a, _ in audit(app, owner.org_id) if a == "billing.payment_recorded"] == [
        "billing.payment_recorded"] * 4


def test_payment_without_custom_data_maps_through_the_subscription(app, lemon, owner, anon):
    deliver(anon, subscription_event("subscription_created", owner.org_id))
    assert deliver(anon, invoice_event("subscription_payment_success", None)).get_json()["outcome"] == "applied"
    [pay] = rows(app, BillingPayment)
    assert pay.org_id == owner.org_id


# --- the plan drives the rate limit ------------------------------------------------------------------

def test_upgrade_event_raises_the_rate_limit_at_once(app, lemon, owner, anon, sign_in):
    client = sign_in(owner)
    assert client.get("/api/v1/billing/plans").headers["X-RateLimit-Limit"] == "60"
    deliver(anon, subscription_event("subscription_created", owner.org_id))
    assert client.get("/api/v1/billing/plans").headers["X-RateLimit-Limit"] == "300"
    deliver(anon, subscription_event("subscription_updated", owner.org_id, variant=ENTERPRISE_VARIANT,
                                     updated="2026-03-02T00:00:00Z"))
    assert client.get("/api/v1/billing/plans").headers["X-RateLimit-Limit"] == "1000"
    deliver(anon, subscription_event("subscription_expired", owner.org_id, status="expired",
                                     variant=ENTERPRISE_VARIANT, updated="2026-03-03T00:00:00Z"))
    assert client.get("/api/v1/billing/plans").headers["X-RateLimit-Limit"] == "60"
