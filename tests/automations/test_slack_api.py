"""POST /api/integrations/slack/approvals (Slack button clicks) and GET /api/audit/slack-events/export."""
from __future__ import annotations

import csv
import datetime as dt
import io
import threading
import time

import pytest

from tests.automations.slack_helpers import (EXPORT_URL, SLACK_URL, click_body, configure_slack, get_approval,
                                             link_slack, make_approval, post_click, slack_headers, slack_stub)
from tests.http_stub import stub_server  # noqa: F401
from zentro.audit.models import AuditEvent
from zentro.automations.models import SlackEvent
from zentro.extensions import db
from zentro.platform.types import utcnow


@pytest.fixture
def world(app, monkeypatch, stub_server, make_member):
    """Org alpha: an owner linked to Slack user U0APPROVER, the member who requested a pending approval;
    Slack configured against the stub (whose /hooks/response plays response_url)."""
    owner = make_member("alpha", "owner")
    requester = make_member("alpha", "member")
    link_slack(app, owner, "U0APPROVER")
    configure_slack(app, monkeypatch, slack_stub(stub_server))
    approval_id = make_approval(app, owner.org_id, requested_by=requester.user_id)
    return {"owner": owner, "requester": requester, "approval_id": approval_id, "stub": stub_server,
            "client": app.test_client(), "response_url": stub_server.url + "/hooks/response"}


def _events(app, org_id: int) -> list[tuple[str, str, str]]:
    with app.app_context():
        rows = db.session.execute(db.select(SlackEvent.direction, SlackEvent.kind, SlackEvent.outcome)
                                  .where(SlackEvent.org_id == org_id).order_by(SlackEvent.id)).all()
        db.session.remove()
    return [tuple(r) for r in rows]


def _audit_count(app, org_id: int) -> int:
    with app.app_context():
        n = db.session.scalar(db.select(db.func.count()).select_from(AuditEvent).where(AuditEvent.org_id == org_id))
        db.session.remove()
    return n


def _click(world, **kw) -> bytes:
    kw.setdefault("response_url", world["response_url"])
    return click_body(world["owner"].org_id, world["approval_id"], **kw)


# --- deciding -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("action_id,status", [("approval_approve", "approved"), ("approval_reject", "rejected")])
def test_click_decides_and_updates_the_message_through_response_url(app, world, action_id, status):
    resp = post_click(world["client"], _click(world, action_id=action_id))

    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["ok"] is True and body["outcome"] == "decided" and body["message_updated"] is True
    assert body["text"].startswith(f"{status.capitalize()} by {world['owner'].email}")
    a = get_approval(app, world["approval_id"])
    assert (a.status, a.decided_by_id, a.decided_via) == (status, world["owner"].user_id, "slack")
    (hook,) = world["stub"].requests_to("/hooks/response")
    assert hook.json["replace_original"] is True and "response_type" not in hook.json
    assert all(b["type"] != "actions" for b in hook.json["blocks"])  # the buttons are gone
    assert f"{status.capitalize()} by {world['owner'].email}" in hook.json["blocks"][1]["text"]["text"]
    assert _events(app, world["owner"].org_id) == [("inbound", "block_action", "decided"),
                                                   ("outbound", "response_url", "sent")]
    with app.app_context():
        audit = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == f"approval.{status}"))
        assert audit.actor_id == str(world["owner"].user_id) and "U0APPROVER" in audit.actor_label
    assert world["stub"].requests_to("/api/chat.update") == []  # Slack's own update came through response_url


def test_second_click_changes_nothing_and_says_who_decided(app, world):
    assert post_click(world["client"], _click(world)).get_json()["outcome"] == "decided"
    decided = get_approval(app, world["approval_id"])
    audit_before = _audit_count(app, world["owner"].org_id)

    again = post_click(world["client"], _click(world, action_id="approval_reject"))

    assert again.status_code == 200
    body = again.get_json()
    assert body["outcome"] == "already_decided" and body["ok"] is True
    assert body["text"].startswith(f"Already approved by {world['owner'].email}") and "nothing changed" in body["text"]
    a = get_approval(app, world["approval_id"])
    assert (a.status, a.decided_at) == ("approved", decided.decided_at)
    assert _audit_count(app, world["owner"].org_id) == audit_before
    assert world["stub"].requests_to("/hooks/response")[-1].json["text"].startswith("Already approved by")
    assert _events(app, world["owner"].org_id)[-2] == ("inbound", "block_action", "already_decided")


def test_replayed_request_changes_nothing(app, world):
    body = _click(world)
    headers = slack_headers(body)
    first = world["client"].post(SLACK_URL, data=body, headers=headers)
    assert first.get_json()["outcome"] == "decided"
    audit_before = _audit_count(app, world["owner"].org_id)

    replay = world["client"].post(SLACK_URL, data=body, headers=headers)

    assert replay.status_code == 200 and replay.get_json()["outcome"] == "already_decided"
    assert _audit_count(app, world["owner"].org_id) == audit_before
    assert get_approval(app, world["approval_id"]).status == "approved"


def test_concurrent_clicks_decide_once(app, world, make_member):
    admin = make_member("alpha", "admin")
    link_slack(app, admin, "U0ADMIN")
    bodies = [_click(world, action_id="approval_approve"),
              _click(world, action_id="approval_reject", slack_user="U0ADMIN")]
    results: list = [None, None]
    start = threading.Barrier(2)

    def run(i):
        client = app.test_client()
        start.wait()
        results[i] = post_click(client, bodies[i]).get_json()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(r["outcome"] for r in results) == ["already_decided", "decided"]
    a = get_approval(app, world["approval_id"])
    winner = next(i for i, r in enumerate(results) if r["outcome"] == "decided")
    assert a.status == ("approved", "rejected")[winner]
    with app.app_context():
        decisions = db.session.scalar(db.select(db.func.count()).select_from(AuditEvent).where(
            AuditEvent.action.in_(("approval.approved", "approval.rejected"))))
    assert decisions == 1


# --- who may click --------------------------------------------------------------------------------------------

def test_unlinked_slack_user_is_refused_and_told_why(app, world):
    resp = post_click(world["client"], _click(world, slack_user="U0STRANGER"))

    assert resp.status_code == 200
    body = resp.get_json()
    assert body["outcome"] == "refused" and "not linked to a Zentro user" in body["text"]
    assert get_approval(app, world["approval_id"]).status == "pending"
    (hook,) = world["stub"].requests_to("/hooks/response")
    assert hook.json["response_type"] == "ephemeral" and hook.json["replace_original"] is False
    assert "not linked" in hook.json["text"]
    assert ("inbound", "block_action", "refused") in _events(app, world["owner"].org_id)


def test_slack_profile_email_maps_an_unlinked_user(app, world, make_member, stub_server):
    admin = make_member("alpha", "admin", email="dana@alpha.example")
    stub_server.slack_emails["U0DANA"] = "Dana@Alpha.example"

    body = post_click(world["client"], _click(world, slack_user="U0DANA")).get_json()

    assert body["outcome"] == "decided"
    assert get_approval(app, world["approval_id"]).decided_by_id == admin.user_id
    (lookup,) = stub_server.requests_to("/api/users.info")
    assert b"user=U0DANA" in lookup.body and lookup.headers["Authorization"] == "Bearer xoxb-test-token"


def test_slack_email_of_a_non_member_is_not_enough(app, world, make_member, stub_server):
    make_member("bravo", "owner", email="eve@bravo.example")
    stub_server.slack_emails["U0EVE"] = "eve@bravo.example"
    body = post_click(world["client"], _click(world, slack_user="U0EVE")).get_json()
    assert body["outcome"] == "refused" and get_approval(app, world["approval_id"]).status == "pending"


@pytest.mark.parametrize("who,role,reason", [("member", "member", "Only an owner or admin"),
                                             ("viewer", "viewer", "Viewers cannot decide"),
                                             ("requester", None, "You requested this approval")])
def test_linked_user_who_may_not_decide_is_refused(app, world, make_member, who, role, reason):
    member = world["requester"] if who == "requester" else make_member("alpha", role)
    link_slack(app, member, "U0LINKED")

    body = post_click(world["client"], _click(world, slack_user="U0LINKED")).get_json()

    assert body["outcome"] == "refused" and reason in body["text"]
    assert get_approval(app, world["approval_id"]).status == "pending"
    with app.app_context():
        event = db.session.scalar(db.select(SlackEvent).where(SlackEvent.kind == "block_action"))
        assert (event.outcome, event.user_id, event.slack_user_id) == ("refused", member.user_id, "U0LINKED")


def test_slack_user_linked_in_another_org_is_not_linked_here(app, world, make_member):
    other = make_member("bravo", "owner")
    link_slack(app, other, "U0BRAVO")
    body = post_click(world["client"], _click(world, slack_user="U0BRAVO")).get_json()
    assert body["outcome"] == "refused" and get_approval(app, world["approval_id"]).status == "pending"


def test_approval_of_another_org_is_not_found(app, world, make_member):
    other = make_member("bravo", "owner")
    other_approval = make_approval(app, other.org_id)
    body = click_body(world["owner"].org_id, other_approval, response_url=world["response_url"])

    resp = post_click(world["client"], body)

    assert resp.status_code == 200 and resp.get_json()["outcome"] == "not_found"
    assert get_approval(app, other_approval).status == "pending"
    assert ("inbound", "block_action", "not_found") in _events(app, world["owner"].org_id)
    assert _events(app, other.org_id) == []
    assert world["stub"].requests_to("/hooks/response")[0].json["response_type"] == "ephemeral"


def test_unknown_org_is_not_found_and_not_recorded(app, world):
    body = click_body(999_999, world["approval_id"], response_url=world["response_url"])
    resp = post_click(world["client"], body)
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "not_found"
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(SlackEvent)) == 0


def test_foreign_response_url_is_not_called_and_recorded_as_failed(app, world):
    body = post_click(world["client"], _click(world, response_url="https://attacker.example/steal")).get_json()
    assert body["outcome"] == "decided" and body["message_updated"] is False
    with app.app_context():
        delivery = db.session.scalar(db.select(SlackEvent).where(SlackEvent.kind == "response_url"))
        assert delivery.outcome == "failed" and "attacker.example" in delivery.detail


def test_response_url_failure_is_recorded_not_claimed_sent(app, world, stub_server):
    stub_server.route("POST", "/hooks/broken", lambda req: (500, "boom"))
    body = post_click(world["client"], _click(world, response_url=stub_server.url + "/hooks/broken")).get_json()
    assert body["outcome"] == "decided" and body["message_updated"] is False
    assert _events(app, world["owner"].org_id)[-1] == ("outbound", "response_url", "failed")


# --- refusing the request itself --------------------------------------------------------------------------------

def _unchanged(app, world):
    assert get_approval(app, world["approval_id"]).status == "pending"
    assert _events(app, world["owner"].org_id) == []
    assert world["stub"].requests_to("/hooks/response") == []


def _error(resp, status: int, code: str) -> str:
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["error_code"] == code
    return body["detail"]


def test_missing_signing_secret_is_503(app, world, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_SIGNING_SECRET", None)
    detail = _error(post_click(world["client"], _click(world)), 503, "SERVICE_UNAVAILABLE")
    assert "Slack approvals are not configured" in detail
    _unchanged(app, world)


def test_missing_headers_are_401(app, world):
    resp = world["client"].post(SLACK_URL, data=_click(world), content_type="application/x-www-form-urlencoded")
    _error(resp, 401, "UNAUTHORIZED")
    _unchanged(app, world)


def test_invalid_signature_is_401(app, world):
    body = _click(world)
    forged = slack_headers(body, secret="not-the-secret")
    _error(world["client"].post(SLACK_URL, data=body, headers=forged), 401, "UNAUTHORIZED")
    tampered = slack_headers(body)  # signed, then the body changed (reject instead of approve)
    _error(world["client"].post(SLACK_URL, data=_click(world, action_id="approval_reject"), headers=tampered),
           401, "UNAUTHORIZED")
    _unchanged(app, world)


@pytest.mark.parametrize("age", [-400, 301, 3600])
def test_stale_or_future_timestamp_is_401(app, world, age):
    body = _click(world)
    resp = world["client"].post(SLACK_URL, data=body, headers=slack_headers(body, timestamp=int(time.time()) - age))
    assert "stale" in _error(resp, 401, "UNAUTHORIZED")
    _unchanged(app, world)


@pytest.mark.parametrize("body", [
    b"", b"not a form", b"payload=%7Bnot-json", b"payload=1&payload=2", b"other=1", b"payload=%5B%5D",
    b"payload=%FF%FE",
])
def test_malformed_body_is_400(app, world, body):
    _error(post_click(world["client"], body), 400, "VALIDATION_ERROR")
    _unchanged(app, world)


@pytest.mark.parametrize("overrides", [
    {"type": "view_submission"},
    {"actions": []},
    {"actions": "approve"},
    {"actions": [{"action_id": "approval_approve", "value": "1:1"}, {"action_id": "approval_reject", "value": "1:1"}]},
    {"actions": [{"action_id": "delete_everything", "value": "1:1"}]},
    {"actions": [{"action_id": "approval_approve", "value": "1"}]},
    {"actions": [{"action_id": "approval_approve", "value": "1:-2"}]},
    {"actions": [{"action_id": "approval_approve", "value": "99999999999:1"}]},
    {"actions": [{"action_id": "approval_approve", "value": 7}]},
    {"user": {}},
    {"user": "U0APPROVER"},
])
def test_payload_that_is_not_one_known_button_click_is_400(app, world, overrides):
    _error(post_click(world["client"], _click(world, **overrides)), 400, "VALIDATION_ERROR")
    _unchanged(app, world)


def test_body_that_is_not_utf8_is_400(app, world):
    resp = world["client"].post(SLACK_URL, data=b"payload=\xff\xfe", headers={
        "X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64,
        "Content-Type": "application/x-www-form-urlencoded"})
    _error(resp, 400, "VALIDATION_ERROR")
    _unchanged(app, world)


def test_oversized_body_is_413(app, world, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 4096)
    body = _click(world, padding="x" * 5000)
    _error(post_click(world["client"], body), 413, "PAYLOAD_TOO_LARGE")
    _unchanged(app, world)


def test_endpoint_is_documented_without_api_credentials(app):
    spec = app.test_client().get("/openapi.json").get_json()
    op = spec["paths"]["/api/integrations/slack/approvals"]["post"]
    assert op["security"] == [] and "X-Slack-Signature" in op["summary"]


# --- export ---------------------------------------------------------------------------------------------------

def _record(app, org_id: int, at: dt.datetime, detail: str, **kw) -> None:
    with app.app_context():
        db.session.add(SlackEvent(org_id=org_id, direction="inbound", kind="block_action", outcome="decided",
                                  detail=detail, created_at=at, **kw))
        db.session.commit()
        db.session.remove()


def _rows(resp) -> list[dict]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "text/csv" and "attachment" in resp.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))


def test_export_windows_newest_first(app, make_member, make_api_key):
    owner = make_member("alpha", "owner")
    link_slack(app, owner, "U0APPROVER")
    now = utcnow()
    for age, detail in ((dt.timedelta(hours=1), "1h"), (dt.timedelta(days=3), "3d"), (dt.timedelta(days=10), "10d"),
                        (dt.timedelta(days=40), "40d")):
        _record(app, owner.org_id, now - age, detail, user_id=owner.user_id, slack_user_id="U0APPROVER")
    client, headers = app.test_client(), {"Authorization": f"Bearer {make_api_key(owner)}"}

    details = {w: [r["detail"] for r in _rows(client.get(f"{EXPORT_URL}?window={w}", headers=headers))]
               for w in ("24h", "7d", "30d", "all")}
    assert details == {"24h": ["1h"], "7d": ["1h", "3d"], "30d": ["1h", "3d", "10d"], "all": ["1h", "3d", "10d", "40d"]}
    default = _rows(client.get(EXPORT_URL, headers=headers))
    assert [r["detail"] for r in default] == ["1h", "3d"]
    first = default[0]
    assert list(first) == ["time_utc", "direction", "kind", "outcome", "approval_id", "slack_user_id",
                           "zentro_user_email", "channel", "message_ts", "action_id", "detail"]
    assert first["time_utc"].endswith("Z") and first["zentro_user_email"] == owner.email
    assert first["slack_user_id"] == "U0APPROVER"


def test_export_cells_cannot_run_as_formulas(app, make_member, make_api_key):
    owner = make_member("alpha", "owner")
    _record(app, owner.org_id, utcnow(), '=HYPERLINK("https://evil.example","x")', slack_user_id="@U0X")
    (row,) = _rows(app.test_client().get(EXPORT_URL, headers={"Authorization": f"Bearer {make_api_key(owner)}"}))
    assert row["detail"].startswith("'=") and row["slack_user_id"] == "'@U0X"


def test_export_is_per_org_and_needs_audit_read(app, make_member, make_api_key, sign_in):
    alpha, bravo = make_member("alpha", "viewer"), make_member("bravo", "owner")
    _record(app, alpha.org_id, utcnow(), "alpha event")
    _record(app, bravo.org_id, utcnow(), "bravo event")
    assert [r["detail"] for r in _rows(sign_in(alpha).get(EXPORT_URL))] == ["alpha event"]
    assert [r["detail"] for r in _rows(app.test_client().get(EXPORT_URL, headers={
        "Authorization": f"Bearer {make_api_key(bravo)}"}))] == ["bravo event"]
    client = app.test_client()
    assert client.get(EXPORT_URL).status_code == 401
    narrow = make_api_key(bravo, scopes=["incidents:read"])
    assert client.get(EXPORT_URL, headers={"Authorization": f"Bearer {narrow}"}).status_code == 403
    for bad in ("window=1y", "window=", "window=7d&extra=1"):
        resp = client.get(f"{EXPORT_URL}?{bad}", headers={"Authorization": f"Bearer {make_api_key(bravo)}"})
        assert resp.status_code == 400 and resp.get_json()["error_code"] == "VALIDATION_ERROR"
