"""Helpers for the Slack and policy-intelligence tests: approval, policy-block and playbook rows built
directly with the models (each ``make_*`` commits and returns the id), signed Slack requests, and a
Slack Web API stub."""
from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from urllib.parse import parse_qs, urlencode

from slack_sdk.signature import SignatureVerifier

from zentro.accounts.models import Membership
from zentro.automations.models import Approval, Playbook, PolicyBlock
from zentro.extensions import db

SECRET = "slack-signing-secret-for-tests"
SLACK_URL = "/api/integrations/slack/approvals"
EXPORT_URL = "/api/audit/slack-events/export"
T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


def make_approval(app, org_id: int, *, requested_by: int | None = None, action_key: str = "restart:checkout",
                  status: str = "pending", decided_by: int | None = None, decided_at: dt.datetime | None = None,
                  slack_channel: str = "", slack_ts: str = "") -> int:
    with app.app_context():
        a = Approval(org_id=org_id, plan_hash=uuid.uuid4().hex * 2, action_key=action_key,
                     summary=f"{action_key.replace(':', ' ')}", reason="Tier-0 service: approval required",
                     status=status, requested_by_id=requested_by, decided_by_id=decided_by,
                     decided_via="app" if status != "pending" else "", decided_at=decided_at,
                     slack_channel=slack_channel, slack_ts=slack_ts,
                     created_at=(decided_at or T0) - dt.timedelta(hours=1))
        db.session.add(a)
        db.session.commit()
        approval_id = a.id
        db.session.remove()
    return approval_id


def get_approval(app, approval_id: int) -> Approval:
    with app.app_context():
        a = db.session.get(Approval, approval_id)
        db.session.expunge(a)
        db.session.remove()
    return a


def make_playbook(app, org_id: int, name: str) -> int:
    with app.app_context():
        pb = Playbook(org_id=org_id, name=name, steps=[])
        db.session.add(pb)
        db.session.commit()
        pid = pb.id
        db.session.remove()
    return pid


def make_blocks(app, org_id: int, at: dt.datetime, reason_code: str, n: int = 1, *, user_id: int | None = None,
                operation: str = "execute", playbook_id: int | None = None) -> None:
    with app.app_context():
        for _ in range(n):
            db.session.add(PolicyBlock(org_id=org_id, user_id=user_id, operation=operation, reason_code=reason_code,
                                       reason=f"refused: {reason_code}", playbook_id=playbook_id, created_at=at))
        db.session.commit()
        db.session.remove()


def link_slack(app, member, slack_user_id: str) -> None:
    with app.app_context():
        m = db.session.scalar(db.select(Membership).where(Membership.org_id == member.org_id,
                                                          Membership.user_id == member.user_id))
        m.slack_user_id = slack_user_id
        db.session.commit()
        db.session.remove()


def click_body(org_id: int, approval_id: int, *, action_id: str = "approval_approve", slack_user: str = "U0APPROVER",
               response_url: str | None = None, value: str | None = None, **overrides) -> bytes:
    """A form-encoded block_actions payload as Slack sends it."""
    payload = {"type": "block_actions", "user": {"id": slack_user, "username": "approver", "team_id": "T0TEAM"},
               "team": {"id": "T0TEAM", "domain": "acme"}, "channel": {"id": "C0APPROVALS"},
               "container": {"type": "message", "channel_id": "C0APPROVALS", "message_ts": "1700000000.000100"},
               "actions": [{"action_id": action_id, "block_id": f"approval:{approval_id}", "type": "button",
                            "value": value if value is not None else f"{org_id}:{approval_id}"}]}
    if response_url is not None:
        payload["response_url"] = response_url
    payload.update(overrides)
    return urlencode({"payload": json.dumps(payload)}).encode()


def slack_headers(body: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> dict:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    sig = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig,
            "Content-Type": "application/x-www-form-urlencoded"}


def post_click(client, body: bytes, **kw):
    return client.post(SLACK_URL, data=body, headers=slack_headers(body, **kw))


def slack_stub(stub, *, post_ok: bool = True, error: str = "channel_not_found", emails: dict | None = None):
    """Route the Slack Web API methods Zentro calls, and response_url (/hooks/response), on the stub server.
    users.info answers the profile email of ``stub.slack_emails[user id]`` (tests may fill it later)."""
    stub.slack_emails = dict(emails or {})

    def users_info(req):
        form = {**parse_qs(req.body.decode()), **req.query}  # slack_sdk posts it form-encoded
        user = (form.get("user") or [""])[0]
        if user not in stub.slack_emails:
            return 200, {"ok": False, "error": "user_not_found"}
        return 200, {"ok": True, "user": {"id": user, "profile": {"email": stub.slack_emails[user]}}}

    stub.route("POST", "/api/chat.postMessage", lambda req: (200, {"ok": True, "channel": "C0APPROVALS",
                                                                   "ts": "1700000000.000100"}) if post_ok
               else (200, {"ok": False, "error": error}))
    stub.route("POST", "/api/chat.update", lambda req: (200, {"ok": True, "channel": "C0APPROVALS",
                                                              "ts": "1700000000.000100"}))
    stub.route("*", "/api/users.info", users_info)
    stub.route("POST", "/hooks/response", lambda req: (200, "ok"))
    return stub


def configure_slack(app, monkeypatch, stub, *, token: bool = True, secret: bool = True, channel: bool = True) -> None:
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_API_URL", stub.url + "/api/")
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_BOT_TOKEN", "xoxb-test-token" if token else None)
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_APPROVALS_CHANNEL", "C0APPROVALS" if channel else None)
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_SIGNING_SECRET", SECRET if secret else None)


def make_membership(org_id: int) -> int:
    """Tenant-isolation factory: a member of the org (name carrying the isolation marker, no usable
    password) linked to a Slack user; adds and flushes, the caller commits."""
    from tests.platform.test_isolation import MARK
    from zentro.accounts.models import User

    tag = uuid.uuid4().hex[:8]
    user = User(email=f"slack-{tag}@isolation.example", name=f"{MARK} member", password_hash="!no-password")
    db.session.add(user)
    db.session.flush()
    row = Membership(user_id=user.id, org_id=org_id, role="member", slack_user_id=f"U0{tag.upper()}")
    db.session.add(row)
    db.session.flush()
    return row.id
