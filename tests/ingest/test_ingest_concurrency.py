"""Concurrent deliveries of one alert key against a real server open exactly one incident."""
from __future__ import annotations

import threading

import requests
import sqlalchemy as sa

import ingest_payloads as P
from ingest_payloads import ALERTS
from zentro.extensions import db
from zentro.incidents.models import Alert, Incident

N = 25


def test_concurrent_deliveries_of_one_key_open_exactly_one_incident(app, live_server, token):
    # the deliveries differ only in their start time, so each one is a distinct delivery
    payloads = [P.zentro("payments-latency", starts_at=f"2026-01-05T10:00:{i:02d}Z") for i in range(N)]
    barrier = threading.Barrier(N)
    responses: list = [None] * N

    def deliver(i: int) -> None:
        with requests.Session() as s:
            barrier.wait(timeout=30)
            responses[i] = s.post(live_server.url + ALERTS, json=payloads[i], timeout=60,
                                  headers={"Authorization": f"Bearer {token}"})

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert all(r is not None and r.status_code == 202 for r in responses), [
        (r.status_code, r.text[:200]) if r is not None else None for r in responses]
    outcomes = sorted(r.json()["results"][0]["outcome"] for r in responses)
    assert outcomes == ["created"] + ["deduped"] * (N - 1)
    assert len({r.json()["results"][0]["incident_id"] for r in responses}) == 1
    with app.app_context():
        incidents = db.session.scalars(sa.select(Incident)).all()
        assert len(incidents) == 1 and incidents[0].alert_count == N
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Alert)
                                 .where(Alert.incident_id == incidents[0].id)) == N


def test_concurrent_redeliveries_of_one_alert_store_it_once(app, live_server, token):
    payload = P.alertmanager(P.am_alert("5e5e5e5e"))
    barrier = threading.Barrier(10)
    responses: list = [None] * 10

    def deliver(i: int) -> None:
        with requests.Session() as s:
            barrier.wait(timeout=30)
            responses[i] = s.post(live_server.url + ALERTS, json=payload, timeout=60,
                                  headers={"Authorization": f"Bearer {token}"})

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert all(r is not None and r.status_code == 202 for r in responses)
    outcomes = sorted(r.json()["results"][0]["outcome"] for r in responses)
    assert outcomes == ["created"] + ["duplicate"] * 9
    assert len({r.json()["results"][0]["alert_id"] for r in responses}) == 1
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Alert)) == 1
        assert db.session.scalar(sa.select(Incident.alert_count)) == 1


def _conflict_once(service, monkeypatch, times: int):
    """Make the first ``times`` applications of a request hit the unique delivery key, as a writer that
    skipped the org lock would (the lock makes a real interleaving impossible on both databases: on
    PostgreSQL the org row's FOR UPDATE also blocks inserts that reference the org)."""
    real_lookup, calls = service.services_by_name, []

    def lookup(org_id, names):
        calls.append(1)
        if len(calls) <= times:  # two rows with one delivery key: the flush fails on the unique constraint
            for _ in range(2):
                db.session.add(Alert(org_id=org_id, source="zentro", dedupe_key="clash", delivery_key="c" * 64,
                                     status="firing", severity="high", title="clash"))
        return real_lookup(org_id, names)

    monkeypatch.setattr(service, "services_by_name", lookup)
    return calls


def test_a_unique_key_conflict_is_rolled_back_and_applied_once_more(app, post, monkeypatch, count):
    from zentro.ingest import service

    calls = _conflict_once(service, monkeypatch, 1)
    resp = post(ALERTS, {"alerts": [P.zentro("k1"), P.zentro("k2")]})
    assert resp.status_code == 202, resp.get_data(as_text=True)
    assert [r["outcome"] for r in resp.get_json()["results"]] == ["created", "created"]
    assert len(calls) == 2
    assert count("alerts") == 2 and count("incidents") == 2  # nothing of the failed attempt survived
    assert count("audit_events", action="alerts.ingested") == 1


def test_a_conflict_on_the_retry_too_is_409_and_nothing_is_stored(app, post, monkeypatch, count):
    from zentro.ingest import service

    calls = _conflict_once(service, monkeypatch, 2)
    resp = post(ALERTS, {"alerts": [P.zentro("k1"), P.zentro("k2")]})
    assert resp.status_code == 409 and resp.get_json()["error_code"] == "CONFLICT"
    assert len(calls) == 2
    assert count("alerts") == 0 and count("incidents") == 0 and count("audit_events", action="alerts.ingested") == 0
