"""/api/v1/deliveries: newest first, cursor pages stable under inserts, filters, webhook details; members and above
read it (viewers do not), members see webhook targets cut to scheme://host, another org sees nothing."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.http_stub import stub_server  # noqa: F401
from tests.notify.servers import ALWAYS_FAIL, T0, allow_private, make_delivery, make_endpoint, webhook_receiver
from zentro.extensions import db
from zentro.notify import outbox

API = "/api/v1/deliveries"


@pytest.fixture
def owner(make_member):
    return make_member("alpha", "owner")


@pytest.fixture
def seeded(app, owner):
    """Five deliveries of alpha, oldest first: sent e-mail, not-sent e-mail, failed Slack, queued webhook, failed
    webhook (the last two with a URL carrying a token)."""
    m = dt.timedelta(minutes=1)
    return [
        make_delivery(app, owner.org_id, channel="email", status="sent", created_at=T0),
        make_delivery(app, owner.org_id, channel="email", status="not_sent", attempts=0, created_at=T0 + m,
                      error="SMTP is not configured (no SMTP integration, and ZENTRO_SMTP_URL is unset)"),
        make_delivery(app, owner.org_id, channel="slack", status="failed", target="#compliance", source="digest",
                      error="Slack answered 200: channel_not_found", created_at=T0 + 2 * m),
        make_delivery(app, owner.org_id, channel="webhook", status="queued", attempts=0, source="incident.opened",
                      target="https://hooks.example.com/T0K3N/abc?sig=1", created_at=T0 + 3 * m),
        make_delivery(app, owner.org_id, channel="webhook", status="failed", attempts=4, source="incident.opened",
                      target="https://hooks.example.com/T0K3N/abc?sig=1", error="HTTP 503 (gave up after 4 attempts)",
                      created_at=T0 + 4 * m),
    ]


def test_newest_first_with_every_field(owner, seeded, sign_in):
    data = sign_in(owner).get(API).get_json()
    assert [d["id"] for d in data["data"]] == seeded[::-1] and data["next_cursor"] is None
    failed = data["data"][0]
    assert {k: failed[k] for k in ("channel", "status", "attempts", "error", "source", "target")} == {
        "channel": "webhook", "status": "failed", "attempts": 4, "error": "HTTP 503 (gave up after 4 attempts)",
        "source": "incident.opened", "target": "https://hooks.example.com/T0K3N/abc?sig=1"}
    assert failed["created_at"] == "2026-03-02T12:04:00Z" and failed["finished_at"] == "2026-03-02T12:04:00Z"
    assert data["data"][-1]["recipients"] == ["ops@alpha.example"]


def test_cursor_pages_are_stable_under_inserts(app, owner, seeded, sign_in):
    client = sign_in(owner)
    first = client.get(f"{API}?limit=2").get_json()
    make_delivery(app, owner.org_id, created_at=T0 + dt.timedelta(hours=1))  # arrives between pages
    second = client.get(f"{API}?limit=2&cursor={first['next_cursor']}").get_json()
    third = client.get(f"{API}?limit=2&cursor={second['next_cursor']}").get_json()
    assert [d["id"] for d in first["data"] + second["data"] + third["data"]] == seeded[::-1]
    assert third["next_cursor"] is None


@pytest.mark.parametrize("query,expect", [
    ("status=failed", [4, 2]), ("channel=email", [1, 0]), ("channel=webhook&status=queued", [3]),
    ("source=digest", [2]), ("source=nothing-like-this", []), ("status=not_sent", [1]),
])
def test_filters(owner, seeded, sign_in, query, expect):
    data = sign_in(owner).get(f"{API}?{query}").get_json()["data"]
    assert [d["id"] for d in data] == [seeded[i] for i in expect]


@pytest.mark.parametrize("query", ["status=lost", "channel=fax", "limit=0", "limit=500", "cursor=bogus",
                                   "source=" + "s" * 81, "colour=red"])
def test_bad_queries_are_400(owner, seeded, sign_in, query):
    resp = sign_in(owner).get(f"{API}?{query}")
    assert resp.status_code == 400 and resp.get_json()["error_code"] == "VALIDATION_ERROR"


def test_members_read_the_log_with_webhook_targets_cut_to_the_origin(owner, seeded, make_member, sign_in):
    member = sign_in(make_member("alpha", "member"))
    data = member.get(API).get_json()["data"]
    assert [d["target"] for d in data if d["channel"] == "webhook"] == ["https://hooks.example.com"] * 2
    assert "T0K3N" not in member.get(API).get_data(as_text=True)
    assert "T0K3N" not in member.get(f"{API}/{seeded[4]}").get_data(as_text=True)
    assert [d["target"] for d in data if d["channel"] == "slack"] == ["#compliance"]
    admin = sign_in(make_member("alpha", "admin"))
    assert "T0K3N" in admin.get(f"{API}/{seeded[4]}").get_json()["target"]


def test_viewers_cannot_read_the_log(owner, seeded, make_member, sign_in):
    viewer = sign_in(make_member("alpha", "viewer"))
    for url in (API, f"{API}/{seeded[0]}"):
        resp = viewer.get(url)
        assert resp.status_code == 403 and resp.get_json()["error_code"] == "FORBIDDEN"


def test_api_keys_need_the_deliveries_scope(app, owner, seeded, make_api_key):
    c = app.test_client()
    assert c.get(API, headers={"Authorization": f"Bearer {make_api_key(owner, ['deliveries:read'])}"}).status_code == 200
    assert c.get(API, headers={"Authorization": f"Bearer {make_api_key(owner, ['webhooks:read'])}"}).status_code == 403


def test_another_org_sees_none_of_it(owner, seeded, make_member, sign_in):
    bravo = sign_in(make_member("bravo", "owner"))
    assert bravo.get(API).get_json()["data"] == []
    for delivery_id in seeded:
        resp = bravo.get(f"{API}/{delivery_id}")
        assert resp.status_code == 404 and resp.get_json()["error_code"] == "NOT_FOUND"


def test_detail_of_a_webhook_delivery_shows_its_outbox_message(app, owner, monkeypatch, stub_server, sign_in):
    allow_private(app, monkeypatch)
    make_endpoint(app, owner.org_id, webhook_receiver(stub_server, statuses=ALWAYS_FAIL), ["*"])
    with app.app_context():
        (d,) = outbox.enqueue_event(owner.org_id, "incident.opened", {"x": 1}, now=T0)
        db.session.commit()
        delivery_id = d.id
        outbox.drain_outbox(T0)
        db.session.remove()
    detail = sign_in(owner).get(f"{API}/{delivery_id}").get_json()
    assert (detail["status"], detail["attempts"]) == ("queued", 1)
    assert "HTTP 503" in detail["error"] and "attempt 1 of 4" in detail["error"]
    hook = detail["webhook"]
    assert hook["message_id"].startswith("msg_") and hook["event_type"] == "incident.opened"
    assert (hook["status"], hook["attempts"], hook["last_status_code"], hook["last_error"]) == ("pending", 1, 503,
                                                                                              "HTTP 503")
    assert hook["next_attempt_at"] == "2026-03-02T12:00:05Z"


def test_detail_of_an_email_has_no_webhook_part(owner, seeded, sign_in):
    assert sign_in(owner).get(f"{API}/{seeded[0]}").get_json()["webhook"] is None
