"""/api/v1/billing/*: plans (limits read from where they are enforced), subscription (viewer+, billing:read),
checkout (owner/admin, billing:write; the org id and e-mail properly encoded; 409 when not configured or already
subscribed; Idempotency-Key replay) and portal (404 without a subscription, own URL first, configured fallback)."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.billing.helpers import (CHECKOUT_ENTERPRISE, CHECKOUT_PRO, PORTAL, audit, deliver, lemon,  # noqa: F401
                                   subscription_event)
from tests.platform.test_isolation import whole_state
from zentro.extensions import db
from zentro.incidents.rca import ANALYSES_PER_HOUR
from zentro.platform.ratelimit import PLAN_LIMITS

API = "/api/v1/billing"


@pytest.fixture
def owner(make_member):
    return make_member("alpha", "owner", email="ada+ops@alpha.example")


@pytest.fixture
def client(app):
    """An anonymous client: API keys, and Lemon Squeezy's deliveries."""
    return app.test_client()


def _whole(app):
    with app.app_context():
        state = whole_state()
        db.session.remove()
    return state


def _key(app, make_api_key, member, scopes):
    return {"Authorization": f"Bearer {make_api_key(member, scopes=scopes)}"}


# --- plans -------------------------------------------------------------------------------------------

def test_plans_read_limits_from_the_enforcers(app, owner, sign_in, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_ALERT_INGEST_REQUIRE_PAID", True)
    resp = sign_in(owner).get(f"{API}/plans")
    assert resp.status_code == 200
    body = resp.get_json()
    assert [p["plan"] for p in body["data"]] == ["free", "pro", "enterprise"]
    assert body["current_plan"] == "free" and body["alert_ingest_requires_paid"] is True
    for p in body["data"]:
        assert p["limits"]["api_calls_per_minute"] == int(PLAN_LIMITS[p["plan"]].split("/")[0])
        assert p["limits"]["rca_analyses_per_hour"] == ANALYSES_PER_HOUR[p["plan"]]
        assert p["limits"]["alert_ingest"] is (p["plan"] != "free")
        assert p["checkout_available"] is False  # nothing configured
    assert body["data"][2]["limits"]["rca_analyses_per_hour"] is None


def test_plans_show_checkout_when_configured_and_any_key_may_read(app, lemon, make_member, make_api_key, client):
    viewer = make_member("alpha", "viewer")
    resp = client.get(f"{API}/plans", headers=_key(app, make_api_key, viewer, ["incidents:read"]))
    assert resp.status_code == 200
    assert [p["checkout_available"] for p in resp.get_json()["data"]] == [False, True, True]
    assert client.get(f"{API}/plans").status_code == 401


# --- subscription ------------------------------------------------------------------------------------

def test_subscription_without_one(app, lemon, make_member, sign_in):
    viewer = make_member("alpha", "viewer")
    body = sign_in(viewer).get(f"{API}/subscription").get_json()
    assert body["plan"] == "free" and body["subscription"] is None and body["last_payment"] is None
    assert body["portal_available"] is False and body["needs_attention"] is False and body["configured"] is True
    assert body["limits"]["api_calls_per_minute"] == 60


def test_subscription_shows_the_orgs_own_only(app, lemon, owner, make_member, sign_in, client):
    bravo = make_member("bravo", "owner")
    deliver(client, subscription_event("subscription_cancelled", owner.org_id, status="cancelled",
                                       ends_at="2999-01-01T00:00:00Z"))
    body = sign_in(owner).get(f"{API}/subscription").get_json()
    assert body["plan"] == "pro" and body["subscription"]["status"] == "cancelled"
    assert body["subscription"]["ends_at"].startswith("2999-01-01T00:00:00")
    assert body["needs_attention"] is True and "cancelled" in body["attention"] and body["portal_available"] is True
    other = sign_in(bravo).get(f"{API}/subscription").get_json()
    assert other["plan"] == "free" and other["subscription"] is None


def test_subscription_scopes(app, lemon, owner, make_api_key, client):
    assert client.get(f"{API}/subscription", headers=_key(app, make_api_key, owner, ["billing:read"])).status_code == 200
    resp = client.get(f"{API}/subscription", headers=_key(app, make_api_key, owner, ["incidents:read"]))
    assert resp.status_code == 403 and "billing:read" in resp.get_json()["detail"]


# --- checkout ----------------------------------------------------------------------------------------

def test_checkout_url_carries_the_org_and_email_encoded(app, lemon, owner, sign_in):
    resp = sign_in(owner).post(f"{API}/checkout", json={"plan": "pro"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    url = resp.get_json()["url"]
    assert url.startswith(CHECKOUT_PRO + "?")
    assert f"checkout%5Bcustom%5D%5Borg_id%5D={owner.org_id}" in url and "ada%2Bops%40alpha.example" in url
    assert parse_qs(urlsplit(url).query) == {"checkout[custom][org_id]": [str(owner.org_id)],
                                             "checkout[email]": ["ada+ops@alpha.example"]}
    assert audit(app, owner.org_id) == [("billing.checkout_requested", {"plan": "pro"})]


def test_checkout_appends_to_a_url_with_a_query(app, lemon, make_member, sign_in):
    admin = make_member("alpha", "admin")
    url = sign_in(admin).post(f"{API}/checkout", json={"plan": "enterprise"}).get_json()["url"]
    assert url.startswith(CHECKOUT_ENTERPRISE + "&")
    assert parse_qs(urlsplit(url).query)["checkout[custom][org_id]"] == [str(admin.org_id)]


def test_checkout_not_configured_is_409(app, owner, sign_in, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_LEMONSQUEEZY_CHECKOUT_URL_PRO", "https://zentro.lemonsqueezy.com/buy/x")
    client = sign_in(owner)
    before = _whole(app)
    resp = client.post(f"{API}/checkout", json={"plan": "enterprise"})
    assert resp.status_code == 409 and resp.get_json()["error_code"] == "BILLING_NOT_CONFIGURED"
    assert "ZENTRO_LEMONSQUEEZY_CHECKOUT_URL_ENTERPRISE" in resp.get_json()["detail"]
    assert _whole(app) == before


def test_checkout_when_already_paying_points_to_the_portal(app, lemon, owner, sign_in, client):
    deliver(client, subscription_event("subscription_created", owner.org_id))
    resp = sign_in(owner).post(f"{API}/checkout", json={"plan": "enterprise"})
    assert resp.status_code == 409 and resp.get_json()["error_code"] == "ALREADY_SUBSCRIBED"


@pytest.mark.parametrize("role", ["viewer", "member"])
def test_checkout_and_portal_need_owner_or_admin(app, lemon, owner, make_member, sign_in, role, client):
    deliver(client, subscription_event("subscription_created", owner.org_id))
    who = sign_in(make_member("alpha", role))
    before = _whole(app)
    for path, body in (("checkout", {"plan": "pro"}), ("portal", None)):
        resp = who.post(f"{API}/{path}", json=body)
        assert resp.status_code == 403, (path, resp.get_data(as_text=True))
    assert _whole(app) == before


@pytest.mark.parametrize("body", [{"plan": "free"}, {"plan": "gold"}, {}, {"plan": "pro", "org_id": 2},
                                  {"plan": ["pro"]}, "plan=pro"])
def test_checkout_malformed_body_is_400(app, lemon, owner, sign_in, body):
    client = sign_in(owner)
    before = _whole(app)
    if isinstance(body, str):
        resp = client.post(f"{API}/checkout", data=b"{plan", headers={"Content-Type": "application/json"})
    else:
        resp = client.post(f"{API}/checkout", json=body)
    assert resp.status_code == 400 and resp.get_json()["error_code"] == "VALIDATION_ERROR"
    assert _whole(app) == before


def test_checkout_key_scopes_and_idempotency(app, lemon, owner, make_api_key, client):
    read_only = _key(app, make_api_key, owner, ["billing:read"])
    resp = client.post(f"{API}/checkout", json={"plan": "pro"}, headers=read_only)
    assert resp.status_code == 403 and "billing:write" in resp.get_json()["detail"]
    writer = _key(app, make_api_key, owner, ["billing:write"]) | {"Idempotency-Key": "buy-pro-1"}
    first = client.post(f"{API}/checkout", json={"plan": "pro"}, headers=writer)
    again = client.post(f"{API}/checkout", json={"plan": "pro"}, headers=writer)
    assert first.status_code == again.status_code == 200 and first.get_json() == again.get_json()
    assert len(audit(app, owner.org_id, "billing.checkout")) == 1
    other = client.post(f"{API}/checkout", json={"plan": "enterprise"}, headers=writer)
    assert other.status_code == 422


# --- portal ------------------------------------------------------------------------------------------

def test_portal_without_subscription_is_404(app, lemon, owner, sign_in):
    resp = sign_in(owner).post(f"{API}/portal")
    assert resp.status_code == 404 and resp.get_json()["error_code"] == "NOT_FOUND"


def test_portal_uses_the_subscriptions_own_url_then_the_configured_one(app, lemon, owner, sign_in, client,
                                                                       monkeypatch):
    payload = subscription_event("subscription_created", owner.org_id)
    deliver(client, payload)
    me = sign_in(owner)
    assert me.post(f"{API}/portal").get_json()["url"] == payload["data"]["attributes"]["urls"]["customer_portal"]
    bare = subscription_event("subscription_updated", owner.org_id, updated="2026-03-02T00:00:00Z")
    bare["data"]["attributes"]["urls"] = {"update_payment_method": None, "customer_portal": None}
    deliver(client, bare)
    assert me.post(f"{API}/portal").get_json()["url"] == PORTAL
    monkeypatch.setitem(app.config, "ZENTRO_LEMONSQUEEZY_PORTAL_URL", None)
    resp = me.post(f"{API}/portal")
    assert resp.status_code == 409 and resp.get_json()["error_code"] == "BILLING_NOT_CONFIGURED"
    assert [a for a, _ in audit(app, owner.org_id, "billing.portal")] == ["billing.portal_requested"] * 2


def test_portal_key_scope(app, lemon, owner, make_api_key, client):
    deliver(client, subscription_event("subscription_created", owner.org_id))
    assert client.post(f"{API}/portal", headers=_key(app, make_api_key, owner, ["billing:read"])).status_code == 403
    resp = client.post(f"{API}/portal", headers=_key(app, make_api_key, owner, ["billing:write"]))
    assert resp.status_code == 200 and resp.get_json()["url"].startswith("https://zentro.lemonsqueezy.com/billing")
