"""Fault tests against a real gunicorn master on 127.0.0.1 and PostgreSQL (see docs/faults.md).

1. A worker is SIGKILLed in the middle of an alert burst. Senders retry failed attempts (connection reset, 5xx)
   with the same payload, as monitoring tools do. Zentro's redelivery guarantee is the delivery key
   (sha256(source, dedupe_key, status, starts_at), unique per org; docs/ingest.md "Redelivery"): every alert the
   senders saw acknowledged is stored exactly once, a retry of a delivery that had committed before the worker died
   is answered ``duplicate``, incidents are one per dedupe key, re-sending everything adds nothing, and the master
   has replaced the dead worker.
2. The path to PostgreSQL is cut in the middle of an alert burst (a loopback TCP proxy closes its listener and
   every relayed connection): /api/health/db answers 503 within seconds, ingest answers 503 with Retry-After (not
   acknowledged); when the proxy comes back the same workers recover on their own (pool_pre_ping), the senders'
   retries are accepted, and every alert acknowledged before or during the burst is stored, none twice.

PostgreSQL only: several gunicorn workers writing one SQLite file is not how Zentro is deployed.
"""
from __future__ import annotations

import collections
import os
import signal
import threading
import time

import pytest
import requests
import sqlalchemy as sa

from tests.platform.served import Gunicorn, TcpProxy, free_port, server_env, wait_for
from zentro.extensions import db
from zentro.incidents.models import Alert, Incident

ALERTS = "/api/integrations/alerts"
KEYS = 100  # dedupe keys in the burst
PER_KEY = 3  # distinct deliveries (start times) per key: 300 alerts
ATTEMPTS = 6  # per alert, including the first


def _needs_postgres(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only (set ZENTRO_TEST_DATABASE_URL): several gunicorn workers share one PostgreSQL "
                    "database in production; one SQLite file is for a single process")


def _alert(key: str, n: int) -> dict:
    # a start time on every alert: that is what makes a retry of the same payload idempotent (docs/ingest.md)
    return {"dedupe_key": key, "status": "firing", "severity": "high", "title": f"Fault test {key}",
            "service": "checkout", "starts_at": f"2026-01-05T10:{n:02d}:00Z"}


def _rows(app, query):
    with app.app_context():
        try:
            return db.session.execute(query).all()
        finally:
            db.session.remove()


class Sender:
    """Monitoring tools posting alerts from a few threads, one request per alert, retrying a failed attempt
    (connection error or 5xx) with the same payload up to ATTEMPTS times. Records what was acknowledged (202)."""

    def __init__(self, base: str, token: str, payloads: list[dict]):
        self.url, self.payloads = base + ALERTS, payloads
        self.headers = {"Authorization": f"Bearer {token}"}
        self.acked: dict[int, tuple[dict, int]] = {}  # payload index -> (result, attempt that got the 202)
        self.failed_attempts: list[tuple[int, str]] = []
        self.refused: dict[int, str] = {}  # answered 4xx, or out of attempts
        self._lock = threading.Lock()
        self._next = iter(range(len(payloads)))

    def _take(self) -> int | None:
        with self._lock:
            return next(self._next, None)

    def _run(self) -> None:
        session = requests.Session()
        while (i := self._take()) is not None:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    r = session.post(self.url, json=self.payloads[i], headers=self.headers, timeout=20)
                except requests.RequestException as exc:
                    with self._lock:
                        self.failed_attempts.append((i, type(exc).__name__))
                    session.close()
                    session = requests.Session()
                    continue
                with self._lock:
                    if r.status_code == 202:
                        self.acked[i] = (r.json()["results"][0], attempt)
                        break
                    if r.status_code >= 500:
                        self.failed_attempts.append((i, str(r.status_code)))
                        continue
                    self.refused[i] = f"{r.status_code} {r.text[:200]}"
                    break
            else:
                with self._lock:
                    self.refused[i] = "out of attempts"
        session.close()

    def start(self, threads: int) -> "Sender":
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()
        return self

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "senders did not finish in time"


@pytest.fixture
def ingest_org(make_member, make_ingest_token):
    owner = make_member("acme", "owner", plan="enterprise")
    return owner, make_ingest_token(owner)


def _env(app, database_url, tmp_path, port):
    return server_env(database_url, tmp_path, port, workers=2, threads=2, ZENTRO_SECRET_KEY=app.config["SECRET_KEY"],
                      ZENTRO_BUNDLE_SIGNING_KEY=app.config["ZENTRO_BUNDLE_SIGNING_KEY"])


def test_sigkill_of_a_worker_mid_burst_loses_and_duplicates_nothing(app, database_url, ingest_org, tmp_path):
    _needs_postgres(database_url)
    owner, token = ingest_org
    server = Gunicorn(_env(app, database_url, tmp_path, free_port()), tmp_path / "gunicorn.log")
    started = time.monotonic()
    try:
        server.wait_ready()
        workers_before = server.workers()
        assert len(workers_before) == 2
        payloads = [_alert(f"burst-{i % KEYS:03d}", i // KEYS) for i in range(KEYS * PER_KEY)]
        sender = Sender(server.base, token, payloads).start(threads=4)

        wait_for("a third of the burst to be acknowledged", lambda: len(sender.acked) >= len(payloads) // 3, 40, 0.02)
        victim = server.busiest_worker()
        os.kill(victim, signal.SIGKILL)
        sender.join(timeout=60)

        # --- what the senders saw --------------------------------------------------------------------------------
        assert sender.failed_attempts, "the kill landed between requests: no attempt failed, nothing was tested"
        assert not sender.refused, sender.refused
        assert len(sender.acked) == len(payloads)
        results = {i: res for i, (res, _) in sender.acked.items()}
        assert {r["outcome"] for r in results.values()} <= {"created", "deduped", "duplicate"}
        # "duplicate" means an earlier attempt of this very payload had committed before its answer was lost
        for i, (res, attempt) in sender.acked.items():
            if res["outcome"] == "duplicate":
                assert attempt > 1, (i, res)
        acked_ids = [r["alert_id"] for r in results.values()]
        assert len(set(acked_ids)) == len(payloads), "two acknowledged deliveries point at one stored alert"

        # --- what was stored: each acknowledged alert once, one incident per dedupe key ---------------------------
        stored = _rows(app, sa.select(Alert.id, Alert.dedupe_key, Alert.starts_at, Alert.incident_id)
                       .where(Alert.org_id == owner.org_id))
        assert sorted(r.id for r in stored) == sorted(acked_ids)
        assert len({(r.dedupe_key, r.starts_at) for r in stored}) == len(payloads)
        incidents = _rows(app, sa.select(Incident.id, Incident.dedupe_key, Incident.alert_count)
                          .where(Incident.org_id == owner.org_id))
        assert len(incidents) == KEYS and len({i.dedupe_key for i in incidents}) == KEYS
        assert {i.alert_count for i in incidents} == {PER_KEY}
        by_incident = collections.Counter(r.incident_id for r in stored)
        assert by_incident == {i.id: PER_KEY for i in incidents}
        for i, res in results.items():
            assert res["incident_id"] in by_incident and res["dedupe_key"] == payloads[i]["dedupe_key"]

        # --- the master replaced the dead worker, and the service answers ----------------------------------------
        wait_for("the master to replace the killed worker",
                 lambda: len(w := server.workers()) == 2 and victim not in w, 30)
        assert server.proc.poll() is None
        assert requests.get(server.base + "/api/health/db", timeout=10).status_code == 200

        # --- every sender retries everything once more: nothing is added -----------------------------------------
        with requests.Session() as s:
            for n in range(0, len(payloads), 50):
                r = s.post(server.base + ALERTS, json={"alerts": payloads[n:n + 50]}, timeout=30,
                           headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 202, r.text
                assert [x["outcome"] for x in r.json()["results"]] == ["duplicate"] * len(payloads[n:n + 50])
                assert [x["alert_id"] for x in r.json()["results"]] == [results[j]["alert_id"]
                                                                        for j in range(n, n + 50)]
            fresh = s.post(server.base + ALERTS, json=_alert("after-the-kill", 0), timeout=30,
                           headers={"Authorization": f"Bearer {token}"})
            assert fresh.status_code == 202 and fresh.json()["results"][0]["outcome"] == "created"
        assert _rows(app, sa.select(sa.func.count()).select_from(Alert)
                     .where(Alert.org_id == owner.org_id))[0][0] == len(payloads) + 1
        assert sorted(i.alert_count for i in _rows(app, sa.select(Incident.alert_count)
                                                   .where(Incident.org_id == owner.org_id))) == [1] + [PER_KEY] * KEYS
        assert time.monotonic() - started < 90
    except AssertionError:
        print(f"--- gunicorn log tail ---\n{server.tail()}")
        raise
    finally:
        server.stop()


def test_database_outage_answers_503_and_recovers_without_a_restart(app, database_url, ingest_org, tmp_path):
    _needs_postgres(database_url)
    owner, token = ingest_org
    pg = sa.engine.make_url(database_url)
    proxy = TcpProxy((pg.host or "127.0.0.1", pg.port or 5432))
    # connect_timeout: a connection attempt to an unreachable database fails in 2 s instead of hanging the request
    via_proxy = pg.set(host="127.0.0.1", port=proxy.port, query={"connect_timeout": "2"}).render_as_string(
        hide_password=False)
    server = Gunicorn(_env(app, via_proxy, tmp_path, free_port()), tmp_path / "gunicorn.log")
    auth = {"Authorization": f"Bearer {token}"}
    try:
        server.wait_ready()
        workers = server.workers()
        assert len(workers) == 2
        with requests.Session() as s:
            assert s.get(server.base + "/api/health/db", timeout=10).status_code == 200
            before = []
            for n in range(20):
                r = s.post(server.base + ALERTS, json=_alert(f"before-{n % 5}", n // 5), headers=auth, timeout=20)
                assert r.status_code == 202, r.text
                before.append(r.json()["results"][0]["alert_id"])

        # --- the database goes away in the middle of a burst ----------------------------------------------------
        amid = [_alert(f"amid-{n % 10}", n // 10) for n in range(60)]
        sender = Sender(server.base, token, amid).start(threads=2)
        wait_for("the burst to be under way", lambda: len(sender.acked) >= 10, 30, 0.01)
        proxy.cut()
        cut_at = time.monotonic()

        def health_says_503():
            t0 = time.monotonic()
            r = requests.get(server.base + "/api/health/db", timeout=15)
            assert time.monotonic() - t0 < 10, "the health check hung on the unreachable database"
            return r.status_code == 503 and [r]  # (a Response is falsy when it is an error)

        [down] = wait_for("/api/health/db to answer 503", health_says_503, 15)
        assert time.monotonic() - cut_at < 5
        assert down.json()["error_code"] == "DATABASE_NOT_READY" and down.json()["detail"] == "Database unreachable"
        for _ in range(6):  # every worker (fresh connections per request: both are asked)
            assert health_says_503()
        sender.join(timeout=30)  # its retries during the outage fail: those alerts stay unacknowledged
        assert sender.failed_attempts and sender.refused, "the cut did not land in the middle of the burst"
        assert set(sender.refused.values()) == {"out of attempts"}, sender.refused
        during = [_alert(f"during-{n}", 0) for n in range(4)]
        for payload in during:
            t0 = time.monotonic()
            r = requests.post(server.base + ALERTS, json=payload, headers=auth, timeout=15)
            assert time.monotonic() - t0 < 10
            assert r.status_code == 503 and r.headers["Retry-After"] == "5", (r.status_code, r.text[:300])
            assert r.json()["error_code"] == "SERVICE_UNAVAILABLE", r.text  # the JSON envelope, not acknowledged

        # --- it comes back: the same workers recover on their own ------------------------------------------------
        proxy.restore()
        wait_for("/api/health/db to answer 200 again",
                 lambda: requests.get(server.base + "/api/health/db", timeout=15).status_code == 200, 20, 0.2)
        with requests.Session() as s:
            for _ in range(6):
                assert s.get(server.base + "/api/health/db", timeout=10).status_code == 200
                requests.get(server.base + "/api/health/db", timeout=10).raise_for_status()
            # the senders retry what was not acknowledged; an attempt whose commit went through just before the
            # connection dropped (answered 5xx) is found by its delivery key and answered "duplicate"
            for i in sorted(sender.refused):
                r = s.post(server.base + ALERTS, json=amid[i], headers=auth, timeout=20)
                assert r.status_code == 202 and r.json()["results"][0]["outcome"] in ("created", "deduped",
                                                                                      "duplicate"), r.text
            for payload in during:
                r = s.post(server.base + ALERTS, json=payload, headers=auth, timeout=20)
                assert r.status_code == 202 and r.json()["results"][0]["outcome"] == "created", r.text
        assert server.workers() == workers and server.proc.poll() is None, "recovered without restarting workers"

        stored = _rows(app, sa.select(Alert.id, Alert.dedupe_key, Alert.starts_at).where(Alert.org_id == owner.org_id))
        ids = {r.id for r in stored}
        assert set(before) <= ids, "an alert acknowledged before the outage was lost"
        assert {res["alert_id"] for res, _ in sender.acked.values()} <= ids, "an acknowledged alert was lost"
        assert len({(r.dedupe_key, r.starts_at) for r in stored}) == len(stored), "an alert was stored twice"
        assert collections.Counter(r.dedupe_key.split("-")[0] for r in stored) == {"before": 20, "amid": 60, "during": 4}
        assert sorted(i.alert_count for i in _rows(app, sa.select(Incident.alert_count).where(
            Incident.org_id == owner.org_id))) == [1] * 4 + [4] * 5 + [6] * 10
        assert proxy.accepted > 1  # the app reconnected through the restored proxy
    except AssertionError:
        print(f"--- gunicorn log tail ---\n{server.tail()}")
        raise
    finally:
        server.stop()
        proxy.close()
