"""Settings › Webhooks and Settings › Delivery log, as people use them: create an endpoint and see its secret
once, refused input shown in place with nothing created, HTMX row actions (send test, disable), the log's
status badges (failed rows red), filters and "not configured" notices; who may open which page; and both
pages in a real browser (screenshots in test-results/screens/notify/)."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.http_stub import stub_server  # noqa: F401
from tests.notify.servers import (ALWAYS_FAIL, SLACK_TOKEN, T0, allow_private, make_delivery, make_endpoint,
                                  webhook_receiver)
from tests.platform.test_isolation import org_state
from zentro.extensions import db
from zentro.notify import outbox
from zentro.notify.models import WebhookEndpoint

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screens" / "notify"
PAGE = "/settings/webhooks"
LOG = "/settings/deliveries"
HX = {"HX-Request": "true"}


@pytest.fixture
def owner(make_member):
    return make_member("alpha", "owner")


def _count(app) -> int:
    with app.app_context():
        n = db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint))
        db.session.remove()
    return n


def _state(app, org_id):
    with app.app_context():
        s = org_state(org_id)
        db.session.remove()
    return s


# --- webhooks page -----------------------------------------------------------------------------------

def test_create_from_the_page_shows_the_secret_once(app, owner, sign_in, monkeypatch, stub_server):
    allow_private(app, monkeypatch)
    url = webhook_receiver(stub_server)
    client = sign_in(owner)
    page = client.get(PAGE).get_data(as_text=True)
    assert "No endpoints yet" in page and 'value="digest.sla-reminders"' in page and 'value="*"' in page

    resp = client.post(PAGE, data={"csrf_token": client.csrf, "url": url, "description": "Ops bridge",
                                   "events": ["incident.opened", "digest.*"], "enabled": "1"})

    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    secret = re.search(r'id="new-secret" class="secret">(whsec_[^<]+)<', html).group(1)
    assert "copy it now" in html and url in html and "Ops bridge" in html
    again = client.get(PAGE).get_data(as_text=True)
    assert secret not in again and secret[:12] in again and "nothing sent yet" in again
    with app.app_context():
        (ep,) = db.session.scalars(sa.select(WebhookEndpoint)).all()
        assert (ep.url, ep.events, ep.enabled) == (url, ["incident.opened", "digest.*"], True)
        db.session.remove()


@pytest.mark.parametrize("form,reason", [
    ({"url": "http://127.0.0.1:9/hook", "events": ["*"]}, "loopback"),
    ({"url": "https://hooks.example.com/x"}, "Choose at least one event"),
    ({"url": "", "events": ["*"]}, "Give the endpoint"),
    ({"url": "https://hooks.example.com/x", "events": ["incident.opend"]}, "Unknown event type"),
])
def test_refused_form_input_is_shown_in_place_and_creates_nothing(app, owner, sign_in, form, reason):
    client = sign_in(owner)
    before = _state(app, owner.org_id)
    resp = client.post(PAGE, data={"csrf_token": client.csrf, "description": "kept", **form})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and reason in html and 'aria-invalid="true"' in html
    assert 'value="kept"' in html  # what was typed stays in the form
    assert _state(app, owner.org_id) == before and _count(app) == 0


def test_row_actions_send_test_and_disable_swap_the_row(app, owner, sign_in, monkeypatch, stub_server):
    allow_private(app, monkeypatch)
    endpoint_id, _ = make_endpoint(app, owner.org_id, webhook_receiver(stub_server), ["*"])
    client = sign_in(owner)

    row = client.post(f"{PAGE}/{endpoint_id}/test", data={"csrf_token": client.csrf}, headers=HX)
    html = row.get_data(as_text=True)
    assert row.status_code == 200 and html.lstrip().startswith("<tr") and f'id="webhook-{endpoint_id}"' in html
    assert "Test delivered: HTTP 200" in html and "nt-pill-delivered" in html and "webhook.test" in html
    assert len(stub_server.calls) == 1

    row = client.post(f"{PAGE}/{endpoint_id}/toggle", data={"csrf_token": client.csrf, "enabled": "0"}, headers=HX)
    assert "disabled" in row.get_data(as_text=True) and ">Enable<" in row.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(WebhookEndpoint, endpoint_id).enabled is False
        db.session.remove()


def test_a_failing_test_is_red_in_the_row_and_flashed_without_htmx(app, owner, sign_in, monkeypatch, stub_server):
    allow_private(app, monkeypatch)
    endpoint_id, _ = make_endpoint(app, owner.org_id, webhook_receiver(stub_server, statuses=ALWAYS_FAIL), ["*"])
    client = sign_in(owner)
    html = client.post(f"{PAGE}/{endpoint_id}/test", data={"csrf_token": client.csrf}, headers=HX).get_data(as_text=True)
    assert "Test failed: HTTP 503" in html and "nt-result-bad" in html and 'class="nt-failed"' in html
    resp = client.post(f"{PAGE}/{endpoint_id}/test", data={"csrf_token": client.csrf})
    assert resp.status_code == 302
    assert "failed: HTTP 503" in client.get(PAGE).get_data(as_text=True)


def test_rotate_and_delete_from_the_page(app, owner, sign_in, monkeypatch, stub_server):
    allow_private(app, monkeypatch)
    endpoint_id, secret = make_endpoint(app, owner.org_id, webhook_receiver(stub_server), ["*"])
    client = sign_in(owner)
    html = client.post(f"{PAGE}/{endpoint_id}/rotate", data={"csrf_token": client.csrf}).get_data(as_text=True)
    new = re.search(r'id="new-secret" class="secret">(whsec_[^<]+)<', html).group(1)
    assert new != secret
    resp = client.post(f"{PAGE}/{endpoint_id}/delete", data={"csrf_token": client.csrf})
    assert resp.status_code == 302
    assert "deleted" in client.get(PAGE).get_data(as_text=True) and _count(app) == 0


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_only_owners_and_admins_open_the_webhooks_page(app, owner, make_member, sign_in, monkeypatch, stub_server, role):
    allow_private(app, monkeypatch)
    endpoint_id, _ = make_endpoint(app, owner.org_id, webhook_receiver(stub_server), ["*"])
    client = sign_in(make_member("alpha", role))
    before = _state(app, owner.org_id)
    assert client.get(PAGE).status_code == 403
    for action in ("test", "toggle", "rotate", "delete"):
        assert client.post(f"{PAGE}/{endpoint_id}/{action}", data={"csrf_token": client.csrf}).status_code == 403
    assert client.post(PAGE, data={"csrf_token": client.csrf, "url": "https://x.example/", "events": ["*"]}).status_code == 403
    assert _state(app, owner.org_id) == before
    nav = client.get("/settings/password").get_data(as_text=True)
    assert ">Webhooks<" not in nav
    assert (">Delivery log<" in nav) == (role == "member")
    assert ">Webhooks<" in sign_in(owner).get("/settings/password").get_data(as_text=True)


def test_another_orgs_endpoint_is_404_on_the_page_routes(app, owner, make_member, sign_in, monkeypatch, stub_server):
    allow_private(app, monkeypatch)
    endpoint_id, _ = make_endpoint(app, owner.org_id, webhook_receiver(stub_server), ["*"])
    bravo = sign_in(make_member("bravo", "owner"))
    before = _state(app, owner.org_id)
    for action in ("test", "toggle", "rotate", "delete"):
        assert bravo.post(f"{PAGE}/{endpoint_id}/{action}", data={"csrf_token": bravo.csrf}).status_code == 404
    assert _state(app, owner.org_id) == before and stub_server.calls == []


# --- delivery log page -------------------------------------------------------------------------------

def _seed_log(app, org_id):
    m = dt.timedelta(minutes=7)
    make_delivery(app, org_id, channel="email", status="sent", source="sla-reminders", created_at=T0)
    make_delivery(app, org_id, channel="email", status="not_sent", attempts=0, source="digest",
                  error="SMTP is not configured (no SMTP integration, and ZENTRO_SMTP_URL is unset)", created_at=T0 + m)
    make_delivery(app, org_id, channel="slack", status="failed", source="committee-digest", target="#committee",
                  error="Slack answered 200: channel_not_found", created_at=T0 + 2 * m)
    make_delivery(app, org_id, channel="webhook", status="failed", attempts=4, source="incident.opened",
                  target="https://hooks.example.com/T0K3N/zentro", error="HTTP 503 (gave up after 4 attempts)",
                  created_at=T0 + 3 * m)
    make_delivery(app, org_id, channel="webhook", status="sent", source="bundle.created",
                  target="https://hooks.example.com/T0K3N/zentro", created_at=T0 + 4 * m)


def test_the_log_says_when_smtp_and_slack_are_not_configured(app, owner, sign_in, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_SMTP_URL", None)
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_BOT_TOKEN", None)
    html = sign_in(owner).get(LOG).get_data(as_text=True)
    assert "SMTP is not configured" in html and "Slack is not configured" in html
    assert "Nothing has been sent yet" in html
    monkeypatch.setitem(app.config, "ZENTRO_SMTP_URL", "smtp://127.0.0.1:2525")
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_BOT_TOKEN", SLACK_TOKEN)
    html = sign_in(owner).get(LOG).get_data(as_text=True)
    assert "SMTP is not configured" not in html and "Slack is not configured" not in html
    assert "127.0.0.1:2525" not in html and SLACK_TOKEN not in html  # settings' values never shown


def test_the_log_shows_every_delivery_with_failed_rows_red(app, owner, sign_in):
    _seed_log(app, owner.org_id)
    html = sign_in(owner).get(LOG).get_data(as_text=True)
    rows = re.findall(r'<tr id="delivery-\d+" class="nt-(\w+)">', html)
    assert rows == ["sent", "failed", "failed", "not_sent", "sent"]  # newest first
    assert html.count('class="pill nt-pill-failed"') == 2
    assert "HTTP 503 (gave up after 4 attempts)" in html and "channel_not_found" in html
    assert "https://hooks.example.com/T0K3N/zentro" in html  # owners see the whole URL
    assert "#committee" in html and "ops@alpha.example" in html


def test_the_log_filters_and_htmx_gets_the_rows_only(app, owner, sign_in):
    _seed_log(app, owner.org_id)
    client = sign_in(owner)
    html = client.get(f"{LOG}?status=failed").get_data(as_text=True)
    assert re.findall(r'<tr id="delivery-\d+" class="nt-(\w+)">', html) == ["failed", "failed"]
    part = client.get(f"{LOG}?channel=email", headers=HX).get_data(as_text=True)
    assert "<html" not in part and re.findall(r'<tr id="delivery-\d+" class="nt-(\w+)">', part) == ["not_sent", "sent"]
    odd = client.get(f"{LOG}?status=lost&channel=fax&cursor=zzz").get_data(as_text=True)
    assert "Unknown status" in odd and "Unknown channel" in odd and "page link is not valid" in odd
    assert "No deliveries match these filters" in client.get(f"{LOG}?source=nothing").get_data(as_text=True)


def test_members_read_the_log_viewers_do_not(app, owner, make_member, sign_in):
    _seed_log(app, owner.org_id)
    member = sign_in(make_member("alpha", "member")).get(LOG)
    html = member.get_data(as_text=True)
    assert member.status_code == 200 and "T0K3N" not in html and "https://hooks.example.com" in html
    assert sign_in(make_member("alpha", "viewer")).get(LOG).status_code == 403
    assert not re.search(r'id="delivery-\d', sign_in(make_member("bravo", "owner")).get(LOG).get_data(as_text=True))


# --- in a browser ------------------------------------------------------------------------------------

@pytest.mark.e2e
def test_both_pages_in_a_browser(app, live_server, browser, owner, monkeypatch, stub_server):
    allow_private(app, monkeypatch)
    monkeypatch.setitem(app.config, "ZENTRO_SMTP_URL", None)
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_BOT_TOKEN", None)
    ok_url = webhook_receiver(stub_server, "/hooks/pagerduty-bridge")
    bad_url = webhook_receiver(stub_server, "/hooks/legacy-siem", statuses=ALWAYS_FAIL)
    make_endpoint(app, owner.org_id, ok_url, ["incident.*", "approval.decided"], description="PagerDuty bridge")
    make_endpoint(app, owner.org_id, bad_url, ["digest.*"], description="Legacy SIEM (down)")
    _seed_log(app, owner.org_id)
    with app.app_context():
        outbox.enqueue_event(owner.org_id, "incident.opened", {"incident": {"ref": "INC-12"}}, now=T0)
        outbox.enqueue_event(owner.org_id, "digest.sla-reminders", {"digest": "sla-reminders"},
                             source="sla-reminders", now=T0)
        db.session.commit()
        for k in (0, 5, 20, 65):
            outbox.drain_outbox(T0 + dt.timedelta(seconds=k))
        db.session.remove()

    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_server.url + "/login")
    page.fill("input[name=email]", owner.email)
    page.fill("input[name=password]", owner.password)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")

    page.goto(live_server.url + PAGE)
    assert page.locator("#webhooks tbody tr").count() == 2
    failed_row = page.locator("#webhooks tbody tr", has_text="Legacy SIEM")
    assert "failed" in failed_row.inner_text()
    page.locator("#webhooks tbody tr", has_text="PagerDuty bridge").get_by_role("button", name="Send test").click()
    page.locator(".nt-result", has_text="Test delivered").wait_for()
    page.screenshot(path=str(SHOTS / "webhooks.png"), full_page=True)

    page.goto(live_server.url + LOG)
    assert page.locator("#channel-email").inner_text().count("not configured") >= 1
    failed = page.locator("#deliveries tr.nt-failed").first
    bg = failed.locator("td").first.evaluate("el => getComputedStyle(el).backgroundColor")
    assert bg == "rgb(254, 242, 242)"  # failed rows are visibly red
    page.screenshot(path=str(SHOTS / "deliveries.png"), full_page=True)
    page.select_option("select[name=status]", "failed")
    page.wait_for_url(re.compile(r"status=failed"))
    page.wait_for_function("document.querySelectorAll('#deliveries tbody tr.nt-sent').length === 0")
    assert page.locator("#deliveries tbody tr.nt-failed").count() == 3
    page.screenshot(path=str(SHOTS / "deliveries-failed.png"), full_page=True)
    assert errors == []
