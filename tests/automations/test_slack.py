"""Outbound Slack (posting approval requests, updating them after a decision, response_url), signature
verification with an injected clock, linking members to Slack users, and the Automations › Slack page."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.automations.slack_helpers import (SECRET, T0, configure_slack, get_approval, make_approval, slack_headers,
                                             slack_stub)
from tests.http_stub import stub_server  # noqa: F401
from zentro.accounts.models import Membership
from zentro.audit.models import AuditEvent
from zentro.audit.service import SYSTEM
from zentro.automations import slack
from zentro.automations.models import Approval, SlackEvent
from zentro.extensions import db
from zentro.platform.errors import ApiError


def _events(app, org_id: int) -> list[SlackEvent]:
    with app.app_context():
        rows = db.session.scalars(db.select(SlackEvent).where(SlackEvent.org_id == org_id)
                                  .order_by(SlackEvent.id)).all()
        for r in rows:
            db.session.expunge(r)
        db.session.remove()
    return rows


def _post(app, approval_id: int) -> Approval:
    with app.app_context():
        slack.post_approval(db.session.get(Approval, approval_id), now=T0)
        db.session.remove()
    return get_approval(app, approval_id)


# --- post_approval ----------------------------------------------------------------------------------------

def test_post_approval_sends_blocks_with_both_buttons(app, monkeypatch, stub_server, make_member):
    owner = make_member("alpha", "owner")
    configure_slack(app, monkeypatch, slack_stub(stub_server))
    approval_id = make_approval(app, owner.org_id, requested_by=owner.user_id, action_key="restart:checkout")

    a = _post(app, approval_id)

    (call,) = stub_server.requests_to("/api/chat.postMessage")
    assert call.headers["Authorization"] == "Bearer xoxb-test-token"
    assert call.json["channel"] == "C0APPROVALS"
    assert f"Approval #{approval_id}" in call.json["text"]
    section, actions = call.json["blocks"]
    assert owner.email in section["text"]["text"] and "`restart:checkout`" in section["text"]["text"]
    buttons = {b["action_id"]: b for b in actions["elements"]}
    assert set(buttons) == {"approval_approve", "approval_reject"}
    assert {b["value"] for b in buttons.values()} == {f"{owner.org_id}:{approval_id}"}
    assert buttons["approval_approve"]["style"] == "primary" and buttons["approval_reject"]["style"] == "danger"
    assert (a.slack_status, a.slack_channel, a.slack_ts) == ("posted", "C0APPROVALS", "1700000000.000100")
    (event,) = _events(app, owner.org_id)
    assert (event.direction, event.kind, event.outcome, event.approval_id, event.message_ts) == (
        "outbound", "post_message", "sent", approval_id, "1700000000.000100")


def test_post_approval_escapes_slack_control_characters(app, monkeypatch, stub_server, make_member):
    owner = make_member("alpha", "owner")
    configure_slack(app, monkeypatch, slack_stub(stub_server))
    approval_id = make_approval(app, owner.org_id, action_key="run_command:<!channel>&co")
    _post(app, approval_id)
    text = stub_server.requests_to("/api/chat.postMessage")[0].json["blocks"][0]["text"]["text"]
    assert "<!channel>" not in text and "&lt;!channel&gt;&amp;co" in text


def test_post_approval_records_slack_error_as_failed(app, monkeypatch, stub_server, make_member):
    owner = make_member("alpha", "owner")
    configure_slack(app, monkeypatch, slack_stub(stub_server, post_ok=False, error="channel_not_found"))
    approval_id = make_approval(app, owner.org_id)

    a = _post(app, approval_id)

    assert a.slack_status.startswith("failed:") and "channel_not_found" in a.slack_status
    assert a.slack_ts == ""
    (event,) = _events(app, owner.org_id)
    assert event.outcome == "failed" and "channel_not_found" in event.detail


def test_post_approval_unreachable_slack_is_failed_not_raised(app, monkeypatch, stub_server, make_member):
    owner = make_member("alpha", "owner")
    configure_slack(app, monkeypatch, stub_server)
    stub_server.stop()  # nothing listens any more
    monkeypatch.setitem(app.config, "ZENTRO_CONNECTOR_TIMEOUT_SECONDS", 2)
    approval_id = make_approval(app, owner.org_id)
    a = _post(app, approval_id)
    assert a.slack_status.startswith("failed:")
    assert [e.outcome for e in _events(app, owner.org_id)] == ["failed"]


@pytest.mark.parametrize("token,channel,missing", [(False, True, "ZENTRO_SLACK_BOT_TOKEN"),
                                                   (True, False, "ZENTRO_SLACK_APPROVALS_CHANNEL")])
def test_post_approval_without_configuration_is_not_configured(app, monkeypatch, stub_server, make_member,
                                                               token, channel, missing):
    owner = make_member("alpha", "owner")
    configure_slack(app, monkeypatch, slack_stub(stub_server), token=token, channel=channel)
    approval_id = make_approval(app, owner.org_id)

    a = _post(app, approval_id)

    assert stub_server.calls == []
    assert a.slack_status == f"not configured: {missing} not set" and a.slack_ts == ""
    (event,) = _events(app, owner.org_id)
    assert event.outcome == "not_configured" and event.outcome != "sent"


# --- update_message ----------------------------------------------------------------------------------------

def _decided(app, owner, **kw) -> int:
    return make_approval(app, owner.org_id, status="approved", decided_by=owner.user_id, decided_at=T0, **kw)


def test_update_message_replaces_buttons_with_the_decision(app, monkeypatch, stub_server, make_member):
    owner = make_member("alpha", "owner")
    configure_slack(app, monkeypatch, slack_stub(stub_server))
    approval_id = _decided(app, owner, slack_channel="C0APPROVALS", slack_ts="1700000000.000100")
    with app.app_context():
        slack.update_message(db.session.get(Approval, approval_id))
    (call,) = stub_server.requests_to("/api/chat.update")
    assert (call.json["channel"], call.json["ts"]) == ("C0APPROVALS", "1700000000.000100")
    assert all(b["type"] != "actions" for b in call.json["blocks"])
    assert f"Approved by {owner.email}" in call.json["blocks"][1]["text"]["text"]
    assert [(e.kind, e.outcome) for e in _events(app, owner.org_id)] == [("update_message", "sent")]


def test_update_message_of_unposted_approval_does_nothing(app, monkeypatch, stub_server, make_member):
    owner = make_member("alpha", "owner")
    configure_slack(app, monkeypatch, slack_stub(stub_server))
    approval_id = _decided(app, owner)
    with app.app_context():
        slack.update_message(db.session.get(Approval, approval_id))
    assert stub_server.calls == [] and _events(app, owner.org_id) == []


def test_update_message_failure_and_missing_token_are_recorded(app, monkeypatch, stub_server, make_member):
    owner = make_member("alpha", "owner")
    configure_slack(app, monkeypatch, stub_server)
    stub_server.route("POST", "/api/chat.update", lambda req: (200, {"ok": False, "error": "message_not_found"}))
    approval_id = _decided(app, owner, slack_channel="C0APPROVALS", slack_ts="1.2")
    with app.app_context():
        slack.update_message(db.session.get(Approval, approval_id))
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_BOT_TOKEN", None)
    with app.app_context():
        slack.update_message(db.session.get(Approval, approval_id))
    events = _events(app, owner.org_id)
    assert [(e.outcome, "message_not_found" in e.detail) for e in events] == [("failed", True),
                                                                              ("not_configured", False)]
    assert len(stub_server.requests_to("/api/chat.update")) == 1


# --- respond (response_url) ------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["https://evil.example/hooks", "http://hooks.slack.com/actions/x",
                                 "https://hooks.slack.com.evil.example/x", "file:///etc/passwd", ""])
def test_respond_refuses_hosts_other_than_slack_and_the_configured_api(app, monkeypatch, stub_server, url):
    configure_slack(app, monkeypatch, slack_stub(stub_server))
    with app.test_request_context():
        delivered, detail = slack.respond(url, text="hi")
    assert delivered is False and detail.startswith("refused")
    assert stub_server.calls == []


def test_respond_reports_a_failed_delivery(app, monkeypatch, stub_server):
    configure_slack(app, monkeypatch, stub_server)
    stub_server.route("POST", "/hooks/gone", lambda req: (404, "no_active_hooks"))
    with app.test_request_context():
        delivered, detail = slack.respond(stub_server.url + "/hooks/gone", text="hi")
    assert delivered is False and "404" in detail


# --- signature (injected clock) ------------------------------------------------------------------------------

def test_signature_tolerance_follows_the_injected_clock(app, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_SIGNING_SECRET", SECRET)
    body = b"payload=%7B%7D"
    signed_at = int(T0.timestamp())
    headers = slack_headers(body, timestamp=signed_at)
    with app.app_context():
        slack.verify_signature(body, headers, now=T0 + dt.timedelta(minutes=4, seconds=59))
        for late in (dt.timedelta(minutes=5, seconds=1), -dt.timedelta(minutes=5, seconds=1), dt.timedelta(days=1)):
            with pytest.raises(ApiError) as exc:
                slack.verify_signature(body, headers, now=T0 + late)
            assert exc.value.status == 401 and "stale" in exc.value.detail


@pytest.mark.parametrize("change", [
    {"X-Slack-Signature": "v0=" + "0" * 64}, {"X-Slack-Request-Timestamp": "12e3"},
    {"X-Slack-Request-Timestamp": "-1"}, {"X-Slack-Request-Timestamp": "9" * 40}, {"X-Slack-Signature": ""}])
def test_malformed_signature_headers_are_401(app, monkeypatch, change):
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_SIGNING_SECRET", SECRET)
    body = b"payload=%7B%7D"
    headers = {**slack_headers(body), **change}
    with app.app_context(), pytest.raises(ApiError) as exc:
        slack.verify_signature(body, headers)
    assert exc.value.status == 401


# --- linking members (service) -----------------------------------------------------------------------------

def _membership_id(app, member) -> int:
    with app.app_context():
        mid = db.session.scalar(db.select(Membership.id).where(Membership.org_id == member.org_id,
                                                               Membership.user_id == member.user_id))
        db.session.remove()
    return mid


def test_link_slack_user_validates_normalises_audits_and_refuses_duplicates(app, make_member):
    owner, member = make_member("alpha", "owner"), make_member("alpha", "member")
    other_org = make_member("bravo", "owner")
    owner_mid, member_mid, other_mid = (_membership_id(app, m) for m in (owner, member, other_org))
    with app.app_context():
        row = slack.link_slack_user(owner.org_id, member_mid, " u0abc123 ", actor=SYSTEM)
        assert row.slack_user_id == "U0ABC123"
        for bad in ("X0ABC", "U0", "U0ABC-123", "U" + "A" * 21):
            with pytest.raises(ApiError) as exc:
                slack.link_slack_user(owner.org_id, owner_mid, bad, actor=SYSTEM)
            assert exc.value.status == 400
        with pytest.raises(ApiError) as exc:  # another member already has it
            slack.link_slack_user(owner.org_id, owner_mid, "U0ABC123", actor=SYSTEM)
        assert exc.value.status == 409
        with pytest.raises(ApiError) as exc:  # another org's membership
            slack.link_slack_user(owner.org_id, other_mid, "U0OTHER", actor=SYSTEM)
        assert exc.value.status == 404
        slack.link_slack_user(owner.org_id, member_mid, "", actor=SYSTEM)
        actions = [e.action for e in db.session.scalars(db.select(AuditEvent).where(
            AuditEvent.org_id == owner.org_id, AuditEvent.action.like("membership.slack%")).order_by(AuditEvent.seq))]
        assert actions == ["membership.slack_user_linked", "membership.slack_user_unlinked"]
        assert db.session.get(Membership, member_mid).slack_user_id is None
        assert db.session.get(Membership, other_mid).slack_user_id is None


# --- the page --------------------------------------------------------------------------------------------

def test_slack_page_shows_configuration_without_secrets(app, monkeypatch, stub_server, make_member, sign_in):
    owner = make_member("alpha", "owner")
    configure_slack(app, monkeypatch, slack_stub(stub_server), channel=False)
    html = sign_in(owner).get("/automations/slack").get_data(as_text=True)
    assert "not configured" in html and "xoxb-test-token" not in html and SECRET not in html
    assert "ZENTRO_SLACK_APPROVALS_CHANNEL" in html
    assert "/api/integrations/slack/approvals" in html


def test_owner_links_a_member_on_the_page_and_bad_ids_are_shown(app, make_member, sign_in):
    owner, member = make_member("alpha", "owner"), make_member("alpha", "member")
    web = sign_in(owner)
    url = f"/automations/slack/members/{_membership_id(app, member)}"
    bad = web.post(url, data={"slack_user_id": "not-an-id", "csrf_token": web.csrf})
    assert bad.status_code == 400 and "U012AB3CD" in bad.get_data(as_text=True)
    ok = web.post(url, data={"slack_user_id": "U0MEMBER1", "csrf_token": web.csrf})
    assert ok.status_code == 302
    page = web.get("/automations/slack").get_data(as_text=True)
    assert 'value="U0MEMBER1"' in page


def test_members_cannot_link_slack_users(app, make_member, sign_in):
    owner, member = make_member("alpha", "owner"), make_member("alpha", "member")
    web = sign_in(member)
    page = web.get("/automations/slack")
    assert page.status_code == 200 and 'name="slack_user_id"' not in page.get_data(as_text=True)
    resp = web.post(f"/automations/slack/members/{_membership_id(app, owner)}",
                    data={"slack_user_id": "U0OWNER1", "csrf_token": web.csrf})
    assert resp.status_code == 403
    with app.app_context():
        assert db.session.get(Membership, _membership_id(app, owner)).slack_user_id is None
