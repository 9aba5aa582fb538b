"""Settings › Billing: plan, limits, subscription and payments for everyone in the org; Upgrade and Manage
billing for owners and admins (form posts that redirect to Lemon Squeezy); a plain notice when not configured."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.billing.helpers import CHECKOUT_PRO, audit, deliver, invoice_event, lemon, subscription_event  # noqa: F401
from tests.platform.test_isolation import whole_state
from zentro.extensions import db

PAGE = "/settings/billing"


@pytest.fixture
def owner(make_member):
    return make_member("alpha", "owner")


def test_not_configured_says_so(app, owner, sign_in):
    resp = sign_in(owner).get(PAGE)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'id="billing-not-configured"' in html
    assert "Current plan: <span id=\"current-plan\">Free</span>" in html and "60 per minute" in html
    assert "Upgrade to" not in html and "No Lemon Squeezy subscription." in html


def test_owner_sees_upgrade_and_is_sent_to_checkout(app, lemon, owner, sign_in):
    client = sign_in(owner)
    html = client.get(PAGE).get_data(as_text=True)
    assert "billing-not-configured" not in html and "Upgrade to Pro" in html and "Upgrade to Enterprise" in html
    resp = client.post(f"{PAGE}/checkout", data={"plan": "pro", "csrf_token": client.csrf})
    assert resp.status_code == 303 and resp.headers["Location"].startswith(CHECKOUT_PRO + "?")
    assert parse_qs(urlsplit(resp.headers["Location"]).query)["checkout[custom][org_id]"] == [str(owner.org_id)]
    assert [a for a, _ in audit(app, owner.org_id)] == ["billing.checkout_requested"]


def test_bad_plan_or_refusal_comes_back_as_a_message(app, lemon, owner, sign_in, monkeypatch):
    client = sign_in(owner)
    resp = client.post(f"{PAGE}/checkout", data={"plan": "free", "csrf_token": client.csrf}, follow_redirects=True)
    assert "Choose the pro or enterprise plan." in resp.get_data(as_text=True)
    monkeypatch.setitem(app.config, "ZENTRO_LEMONSQUEEZY_CHECKOUT_URL_PRO", None)
    resp = client.post(f"{PAGE}/checkout", data={"plan": "pro", "csrf_token": client.csrf}, follow_redirects=True)
    assert "ZENTRO_LEMONSQUEEZY_CHECKOUT_URL_PRO" in resp.get_data(as_text=True)
    resp = client.post(f"{PAGE}/portal", data={"csrf_token": client.csrf}, follow_redirects=True)
    assert "no Lemon Squeezy subscription" in resp.get_data(as_text=True)
    assert audit(app, owner.org_id) == []


def test_subscription_payments_and_portal(app, lemon, owner, sign_in):
    anon = app.test_client()
    deliver(anon, subscription_event("subscription_created", owner.org_id))
    deliver(anon, invoice_event("subscription_payment_failed", owner.org_id, status="pending"))
    client = sign_in(owner)
    html = client.get(PAGE).get_data(as_text=True)
    assert 'id="current-plan">Pro<' in html and "300 per minute" in html and "20 per hour" in html
    assert 'id="billing-attention"' in html and "payment failed" in html
    assert "$49.00" in html and "/subscription-invoice/7001" in html and "Manage billing" in html
    assert "Upgrade to Pro" not in html
    resp = client.post(f"{PAGE}/portal", data={"csrf_token": client.csrf})
    assert resp.status_code == 303 and resp.headers["Location"].startswith("https://zentro.lemonsqueezy.com/billing")


def test_viewer_reads_but_cannot_buy(app, lemon, make_member, sign_in):
    viewer = sign_in(make_member("alpha", "viewer"))
    html = viewer.get(PAGE).get_data(as_text=True)
    assert "Upgrade to" not in html and "Owners and admins can change the plan." in html
    with app.app_context():
        before = whole_state()
        db.session.remove()
    for path in ("checkout", "portal"):
        resp = viewer.post(f"{PAGE}/{path}", data={"plan": "pro", "csrf_token": viewer.csrf})
        assert resp.status_code == 403
    with app.app_context():
        assert whole_state() == before
