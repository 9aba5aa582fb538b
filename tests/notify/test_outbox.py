"""The webhook outbox against real receivers on 127.0.0.1: signed Standard Webhooks requests, retries on
the 5 s / 15 s / 45 s schedule with injected time (nothing sleeps), giving up after 4 attempts, the address
policy at send time, claims that keep two drains from sending one message twice, and the domain events
(incident opened/resolved, approval decided, bundle created) that reach the outbox without ever breaking
or committing the caller's transaction."""
from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
import sqlalchemy as sa

from tests.http_stub import stub_server  # noqa: F401
from tests.notify.servers import (ALWAYS_FAIL, FAIL_TWICE, T0, allow_private, free_port, header, make_endpoint,
                                  verify_signature, webhook_receiver)
from zentro.audit.service import SYSTEM
from zentro.extensions import db
from zentro.notify import events, outbox
from zentro.notify.models import Delivery, OutboxMessage

S = dt.timedelta(seconds=1)


def drain(app, now):
    with app.app_context():
        counts = outbox.drain_outbox(now)
        db.session.remove()
    return counts


def enqueue(app, org_id, event_type="incident.opened", data=None, now=T0, **kw):
    with app.app_context():
        rows = outbox.enqueue_event(org_id, event_type, data or {"incident": {"ref": "INC-1"}}, now=now, **kw)
        db.session.commit()
        ids = [d.id for d in rows]
        db.session.remove()
    return ids


def rows(app, model, org_id):
    with app.app_context():
        out = db.session.scalars(sa.select(model).where(model.org_id == org_id).order_by(model.id)).all()
        for r in out:
            db.session.expunge(r)
        db.session.remove()
    return out


@pytest.fixture
def org(app, monkeypatch, make_member):
    allow_private(app, monkeypatch)
    return make_member("alpha", "owner")


# --- enqueue -----------------------------------------------------------------------------------------

def test_enqueue_matches_exact_types_family_wildcards_and_star_of_enabled_endpoints_only(app, org, make_member,
                                                                                        stub_server):
    url = webhook_receiver(stub_server)
    exact, _ = make_endpoint(app, org.org_id, url + "?e=exact", ["incident.opened"])
    family, _ = make_endpoint(app, org.org_id, url + "?e=family", ["incident.*"])
    star, _ = make_endpoint(app, org.org_id, url + "?e=star", ["*"])
    make_endpoint(app, org.org_id, url + "?e=other", ["approval.decided", "digest.*"])
    make_endpoint(app, org.org_id, url + "?e=off", ["*"], enabled=False)
    other_org = make_member("bravo", "owner")
    make_endpoint(app, other_org.org_id, url + "?e=bravo", ["*"])

    ids = enqueue(app, org.org_id, "incident.opened", source=None)

    deliveries = rows(app, Delivery, org.org_id)
    assert [d.id for d in deliveries] == ids and len(ids) == 3
    assert {d.target for d in deliveries} == {url + "?e=exact", url + "?e=family", url + "?e=star"}
    assert {(d.channel, d.status, d.attempts, d.source) for d in deliveries} == {("webhook", "queued", 0, "incident.opened")}
    messages = rows(app, OutboxMessage, org.org_id)
    assert {m.endpoint_id for m in messages} == {exact, family, star}
    assert {m.delivery_id for m in messages} == set(ids)
    assert all(m.status == "pending" and m.next_attempt_at == T0 and m.message_id.startswith("msg_") for m in messages)
    assert rows(app, Delivery, other_org.org_id) == []
    assert enqueue(app, org.org_id, "bundle.created") == [ids[-1] + 1]  # only "*" wants bundles
    assert enqueue(app, other_org.org_id, "nothing.subscribes", source="x") == [ids[-1] + 2]  # bravo has "*"


def test_enqueue_without_subscribers_writes_nothing(app, org):
    assert enqueue(app, org.org_id, "incident.opened") == []
    assert rows(app, Delivery, org.org_id) == [] and rows(app, OutboxMessage, org.org_id) == []


def test_digest_deliveries_carry_source_and_run(app, org, stub_server):
    make_endpoint(app, org.org_id, webhook_receiver(stub_server), ["digest.*"])
    enqueue(app, org.org_id, "digest.sla-reminders", {"digest": "sla-reminders", "summary": {"overdue": 2}},
            source="sla-reminders")
    (d,) = rows(app, Delivery, org.org_id)
    assert (d.source, d.subject, d.run_id) == ("sla-reminders", "digest.sla-reminders", None)


# --- signing -----------------------------------------------------------------------------------------

def test_receiver_gets_a_signed_standard_webhooks_request(app, org, stub_server):
    url = webhook_receiver(stub_server)
    _, secret = make_endpoint(app, org.org_id, url, ["incident.opened"])
    enqueue(app, org.org_id, "incident.opened", {"incident": {"ref": "INC-7", "at": T0}})

    assert drain(app, T0) == {"delivered": 1, "retrying": 0, "failed": 0}

    (req,) = stub_server.requests_to("/hooks/zentro")
    (msg,) = rows(app, OutboxMessage, org.org_id)
    assert verify_signature(secret, req)
    assert header(req, "webhook-id") == msg.message_id
    assert header(req, "webhook-timestamp") == str(int(T0.timestamp()))
    assert header(req, "content-type") == "application/json"
    assert req.json == {"type": "incident.opened", "timestamp": "2026-03-02T12:00:00Z",
                        "data": {"incident": {"ref": "INC-7", "at": "2026-03-02 12:00:00+00:00"}}}
    tampered = type(req)(req.method, req.path, req.query, req.headers, req.body.replace(b"INC-7", b"INC-8"))
    assert not verify_signature(secret, tampered)
    assert not verify_signature("whsec_" + "A" * 32, req)
    (d,) = rows(app, Delivery, org.org_id)
    assert (d.status, d.attempts, d.error, d.finished_at) == ("sent", 1, "", T0)
    assert (msg.status, msg.attempts, msg.last_status_code, msg.delivered_at) == ("delivered", 1, 200, T0)


# --- retries -----------------------------------------------------------------------------------------

def test_fails_twice_then_succeeds_on_attempt_three_with_the_same_webhook_id(app, org, stub_server):
    url = webhook_receiver(stub_server, statuses=FAIL_TWICE)
    _, secret = make_endpoint(app, org.org_id, url, ["*"])
    enqueue(app, org.org_id)

    assert drain(app, T0) == {"delivered": 0, "retrying": 1, "failed": 0}
    (d,) = rows(app, Delivery, org.org_id)
    assert (d.status, d.attempts) == ("queued", 1) and "HTTP 500" in d.error and "attempt 1 of 4" in d.error
    assert drain(app, T0 + 4 * S) == {"delivered": 0, "retrying": 0, "failed": 0}  # backoff not elapsed
    assert len(stub_server.calls) == 1
    assert drain(app, T0 + 5 * S) == {"delivered": 0, "retrying": 1, "failed": 0}
    assert drain(app, T0 + 19 * S) == {"delivered": 0, "retrying": 0, "failed": 0}
    assert len(stub_server.calls) == 2
    assert drain(app, T0 + 20 * S) == {"delivered": 1, "retrying": 0, "failed": 0}
    assert drain(app, T0 + 600 * S) == {"delivered": 0, "retrying": 0, "failed": 0}

    calls = stub_server.calls
    assert len(calls) == 3
    assert len({header(c, "webhook-id") for c in calls}) == 1
    assert [header(c, "webhook-timestamp") for c in calls] == [str(int((T0 + k * S).timestamp())) for k in (0, 5, 20)]
    assert all(verify_signature(secret, c) for c in calls)
    assert len({c.body for c in calls}) == 1
    (d,) = rows(app, Delivery, org.org_id)
    assert (d.status, d.attempts, d.error, d.finished_at) == ("sent", 3, "", T0 + 20 * S)
    (msg,) = rows(app, OutboxMessage, org.org_id)
    assert (msg.status, msg.attempts, msg.last_status_code, msg.last_error) == ("delivered", 3, 200, "")


def test_always_failing_endpoint_is_failed_after_four_attempts_and_shows_in_the_log(app, org, stub_server, sign_in):
    url = webhook_receiver(stub_server, statuses=ALWAYS_FAIL)
    make_endpoint(app, org.org_id, url, ["incident.opened"])
    (delivery_id,) = enqueue(app, org.org_id)

    results = [drain(app, T0 + k * S) for k in (0, 5, 20, 65)]

    assert [r["retrying"] for r in results] == [1, 1, 1, 0] and results[-1]["failed"] == 1
    assert drain(app, T0 + 3600 * S) == {"delivered": 0, "retrying": 0, "failed": 0}
    assert len(stub_server.calls) == 4
    (msg,) = rows(app, OutboxMessage, org.org_id)
    assert (msg.status, msg.attempts, msg.last_status_code, msg.last_error) == ("failed", 4, 503, "HTTP 503")
    (d,) = rows(app, Delivery, org.org_id)
    assert (d.status, d.attempts, d.finished_at) == ("failed", 4, T0 + 65 * S)
    assert d.error == "HTTP 503 (gave up after 4 attempts)"

    client = sign_in(org)
    listed = client.get("/api/v1/deliveries?status=failed").get_json()["data"]
    assert [(x["id"], x["status"], x["attempts"], x["target"]) for x in listed] == [(delivery_id, "failed", 4, url)]
    detail = client.get(f"/api/v1/deliveries/{delivery_id}").get_json()
    assert detail["webhook"]["message_id"] == msg.message_id
    assert (detail["webhook"]["attempts"], detail["webhook"]["last_status_code"]) == (4, 503)


def test_network_errors_are_retried_like_http_errors(app, org):
    make_endpoint(app, org.org_id, f"http://127.0.0.1:{free_port()}/gone", ["*"])
    enqueue(app, org.org_id)
    assert drain(app, T0)["retrying"] == 1
    (d,) = rows(app, Delivery, org.org_id)
    assert d.status == "queued" and "ConnectionRefusedError" in d.error


# --- the address policy at send time -----------------------------------------------------------------

def test_a_private_address_is_refused_at_send_time_too(app, org, monkeypatch, stub_server):
    url = webhook_receiver(stub_server)
    make_endpoint(app, org.org_id, url, ["*"])  # allowed when it was created
    enqueue(app, org.org_id)
    monkeypatch.setitem(app.config, "ZENTRO_WEBHOOK_ALLOW_PRIVATE", False)

    for k in (0, 5, 20, 65):
        drain(app, T0 + k * S)

    assert stub_server.calls == []
    (d,) = rows(app, Delivery, org.org_id)
    assert d.status == "failed" and "loopback" in d.error and "ZENTRO_WEBHOOK_ALLOW_PRIVATE" in d.error


# --- claims: two drains never send one message twice --------------------------------------------------

def test_a_drain_running_while_another_is_mid_request_sends_nothing(app, org, stub_server):
    second: dict = {}

    def during_first_request(req):
        def run():
            with app.app_context():
                second["counts"] = outbox.drain_outbox(T0)
                db.session.remove()
        t = threading.Thread(target=run)
        t.start()
        t.join(timeout=30)

    url = webhook_receiver(stub_server, on_request=during_first_request)
    make_endpoint(app, org.org_id, url, ["*"])
    enqueue(app, org.org_id)

    first = drain(app, T0)

    assert first == {"delivered": 1, "retrying": 0, "failed": 0}
    assert second["counts"] == {"delivered": 0, "retrying": 0, "failed": 0}
    assert len(stub_server.calls) == 1


def test_only_one_claim_of_a_due_message_wins(app, org, stub_server):
    make_endpoint(app, org.org_id, webhook_receiver(stub_server), ["*"])
    enqueue(app, org.org_id)
    (msg,) = rows(app, OutboxMessage, org.org_id)
    with app.app_context():
        assert outbox.claim(msg.id, T0) is True
        assert outbox.claim(msg.id, T0) is False
        assert outbox.claim(msg.id, T0 + 30 * S) is False  # still held by the first claim
        db.session.remove()
    assert drain(app, T0 + 30 * S) == {"delivered": 0, "retrying": 0, "failed": 0}
    assert stub_server.calls == []
    # the claimer died without recording anything: once the claim expires another drain sends it
    assert drain(app, T0 + 61 * S) == {"delivered": 1, "retrying": 0, "failed": 0}
    (msg,) = rows(app, OutboxMessage, org.org_id)
    assert msg.attempts == 2  # the lost attempt counts


# --- endpoint changes while messages wait ------------------------------------------------------------

def test_disabling_an_endpoint_fails_its_waiting_messages_without_sending(app, org, stub_server, sign_in):
    endpoint_id, _ = make_endpoint(app, org.org_id, webhook_receiver(stub_server), ["*"])
    enqueue(app, org.org_id)
    assert sign_in(org).patch(f"/api/v1/webhooks/{endpoint_id}", json={"enabled": False}).status_code == 200
    assert drain(app, T0) == {"delivered": 0, "retrying": 0, "failed": 1}
    assert stub_server.calls == []
    (d,) = rows(app, Delivery, org.org_id)
    assert d.status == "failed" and "disabled" in d.error


def test_deleting_an_endpoint_closes_its_queued_deliveries(app, org, stub_server, sign_in):
    endpoint_id, _ = make_endpoint(app, org.org_id, webhook_receiver(stub_server), ["*"])
    enqueue(app, org.org_id)
    assert sign_in(org).delete(f"/api/v1/webhooks/{endpoint_id}").status_code == 204
    assert rows(app, OutboxMessage, org.org_id) == []
    (d,) = rows(app, Delivery, org.org_id)
    assert d.status == "failed" and "deleted" in d.error
    assert drain(app, T0) == {"delivered": 0, "retrying": 0, "failed": 0}


def test_a_secret_that_cannot_be_decrypted_fails_with_advice(app, org, monkeypatch, stub_server):
    make_endpoint(app, org.org_id, webhook_receiver(stub_server), ["*"])
    enqueue(app, org.org_id)
    monkeypatch.setitem(app.config, "SECRET_KEY", "a-rotated-secret-key")
    assert drain(app, T0) == {"delivered": 0, "retrying": 0, "failed": 1}
    assert stub_server.calls == []
    (d,) = rows(app, Delivery, org.org_id)
    assert d.status == "failed" and "rotate the secret" in d.error


# --- domain events -----------------------------------------------------------------------------------

def test_incident_opened_and_resolved_reach_the_endpoint(app, org, stub_server, sign_in):
    url = webhook_receiver(stub_server)
    _, secret = make_endpoint(app, org.org_id, url, ["incident.*"])
    client = sign_in(org)

    inc = client.post("/api/v1/incidents", json={"title": "Checkout down", "severity": "high"}).get_json()
    for status in ("acknowledged", "resolved", "closed"):
        assert client.patch(f"/api/v1/incidents/{inc['id']}", json={"status": status}).status_code == 200
    drain(app, dt.datetime.now(dt.timezone.utc) + 5 * S)

    bodies = [json.loads(c.body) for c in stub_server.calls]
    assert [b["type"] for b in bodies] == ["incident.opened", "incident.resolved"]
    assert bodies[0]["data"]["incident"]["ref"] == inc["ref"] and bodies[0]["data"]["incident"]["title"] == "Checkout down"
    assert bodies[1]["data"]["incident"]["status"] == "resolved" and bodies[1]["data"]["from"] == "acknowledged"
    assert all(verify_signature(secret, c) for c in stub_server.calls)


def test_approval_decided_and_bundle_created_are_emitted(app, org, stub_server):
    from tests.automations.slack_helpers import make_approval
    from zentro.automations import approvals
    from zentro.compliance.bundles import create_bundle

    make_endpoint(app, org.org_id, webhook_receiver(stub_server), ["approval.decided", "bundle.created"])
    approval_id = make_approval(app, org.org_id)
    with app.app_context():
        approvals.decide(org.org_id, approval_id, approve=True, user_id=org.user_id, actor=SYSTEM, note="ok", now=T0)
        bundle = create_bundle(org.org_id, SYSTEM, "7d", now=T0)
        bundle_id = bundle.id
        db.session.remove()
    assert drain(app, T0)["delivered"] == 2
    by_type = {json.loads(c.body)["type"]: json.loads(c.body)["data"] for c in stub_server.calls}
    assert by_type["approval.decided"]["approval"]["id"] == approval_id
    assert by_type["approval.decided"]["approval"]["status"] == "approved"
    assert by_type["bundle.created"]["bundle"]["id"] == bundle_id


def test_emit_leaves_the_commit_to_the_caller(app, org, stub_server):
    from zentro.incidents.service import create_incident

    make_endpoint(app, org.org_id, webhook_receiver(stub_server), ["*"])
    with app.app_context():
        create_incident(org.org_id, title="Rolled back", severity="low", actor=SYSTEM, now=T0)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 1  # flushed
        db.session.rollback()
        db.session.remove()
    assert rows(app, OutboxMessage, org.org_id) == [] and rows(app, Delivery, org.org_id) == []


def test_emit_never_breaks_the_callers_action(app, org, monkeypatch, stub_server):
    from zentro.incidents.models import Incident
    from zentro.incidents.service import create_incident

    make_endpoint(app, org.org_id, webhook_receiver(stub_server), ["*"])

    def broken(*args, **kwargs):
        db.session.add(OutboxMessage(org_id=org.org_id, endpoint_id=999_999, message_id="msg_broken",
                                     event_type="x", payload={}))
        db.session.flush()  # violates the endpoint foreign key (SQLite enforces it too)
        raise AssertionError("unreachable on a database that enforces foreign keys")

    monkeypatch.setattr(outbox, "_enqueue", broken)
    with app.app_context():
        assert events.emit(org.org_id, "incident.opened", {"x": 1}) == []
        create_incident(org.org_id, title="Still opens", severity="low", actor=SYSTEM, now=T0)
        db.session.commit()
        db.session.remove()
    assert [i.title for i in rows(app, Incident, org.org_id)] == ["Still opens"]
    assert rows(app, OutboxMessage, org.org_id) == []


# --- throughput: a backlog bigger than one batch, requests in parallel -----------------------------------

def test_a_budgeted_drain_works_off_a_backlog_with_endpoints_in_parallel_and_each_in_order(
        app, org, stub_server, monkeypatch, database_url):
    lock = threading.Lock()
    flight = {"now": 0, "max": 0, "per_path": {}, "per_path_max": 0}

    def slow(req):
        with lock:
            flight["now"] += 1
            flight["max"] = max(flight["max"], flight["now"])
            flight["per_path"][req.path] = flight["per_path"].get(req.path, 0) + 1
            flight["per_path_max"] = max(flight["per_path_max"], flight["per_path"][req.path])
        time.sleep(0.05)
        with lock:
            flight["now"] -= 1
            flight["per_path"][req.path] -= 1

    paths = [f"/hooks/{i}" for i in range(5)]
    for path in paths:
        make_endpoint(app, org.org_id, webhook_receiver(stub_server, path, on_request=slow), ["*"])
    for i in range(5):  # each event goes to all five endpoints: 25 messages
        enqueue(app, org.org_id, data={"n": i})
    monkeypatch.setitem(app.config, "ZENTRO_WEBHOOK_CONCURRENCY", 4)

    with app.app_context():
        one_batch = outbox.drain_outbox(T0, limit=10)  # no budget: one batch, the rest waits for the next run
        rest = outbox.drain_outbox(T0, limit=10, budget_seconds=60)  # batch after batch until nothing is due
        db.session.remove()

    assert one_batch == {"delivered": 10, "retrying": 0, "failed": 0}
    assert rest == {"delivered": 15, "retrying": 0, "failed": 0}
    ids = [header(r, "webhook-id") for path in paths for r in stub_server.requests_to(path)]
    assert len(ids) == len(set(ids)) == 25  # each message sent once
    for path in paths:  # each endpoint got the events in the order they happened
        assert [json.loads(r.body)["data"]["n"] for r in stub_server.requests_to(path)] == [0, 1, 2, 3, 4]
    assert flight["per_path_max"] == 1  # never two requests at once to one endpoint
    assert {m.status for m in rows(app, OutboxMessage, org.org_id)} == {"delivered"}
    assert {d.status for d in rows(app, Delivery, org.org_id)} == {"sent"}
    if database_url.startswith("postgresql"):
        assert 1 < flight["max"] <= 4  # endpoints in parallel, never more than the setting
    else:
        assert flight["max"] == 1  # SQLite: one writer, one request at a time


def test_one_endpoints_events_arrive_in_order_with_concurrency(app, org, stub_server, monkeypatch):
    """CI saw incident.resolved arrive before incident.opened when one endpoint's messages were
    sent side by side."""
    url = webhook_receiver(stub_server, on_request=lambda req: time.sleep(0.02))
    make_endpoint(app, org.org_id, url, ["*"])
    for i in range(12):
        enqueue(app, org.org_id, data={"n": i})
    monkeypatch.setitem(app.config, "ZENTRO_WEBHOOK_CONCURRENCY", 8)
    with app.app_context():
        assert outbox.drain_outbox(T0)["delivered"] == 12
        db.session.remove()
    assert [json.loads(r.body)["data"]["n"] for r in stub_server.requests_to("/hooks/zentro")] == list(range(12))
