"""Seed data for a bench workload; run by bench/workloads.py in a subprocess with the servers' environment.

    python bench/seed.py --org bench [--ingest-token] [--api-key] [--session] [--services] [--incidents 100000]
                         [--webhook http://127.0.0.1:PORT/hook]

Creates (idempotently) the org on the enterprise plan and its owner, then, as asked: an alert-ingest
token, an API key, the org's service catalogue, a signed-in session (through the real sign-in form, with Flask's test client, so
the cookie is exactly what a browser would hold), N incidents numbered 1..N inserted in bulk, and a webhook
endpoint subscribed to every event (the URL must pass the outgoing-address policy: ZENTRO_WEBHOOK_ALLOW_PRIVATE=1
for loopback). Prints one JSON object: {"org_id", "ingest_token", "api_key", "cookie", "services", "incidents",
"webhook_id", "seconds"}.

The incidents are a plausible history: mostly resolved or closed (open_dedupe_key NULL, so the
(org_id, open_dedupe_key) constraint never collides), about 2 % still active with unique keys;
severities, services, sources and commanders mixed; started_at rising with the number over about
two years; a few timeline events on the newest incidents. They are written with SQLAlchemy Core
executemany in batches (one transaction), not through the incidents service: seeding does not
go through audit records, which keeps the org's audit chain valid (it simply has no rows for them).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EMAIL_DOMAIN = "bench.example.com"
PASSWORD = "bench-password-123456"
BATCH = 5000
SERVICES = ("checkout", "payments", "search", "auth", "catalog", "inventory", "notifications", "api-gateway",
            "billing", "shipping", "recommendations", "reporting")
SOURCES = (("alertmanager", 35), ("datadog", 25), ("zentro", 15), ("pagerduty", 10), ("newrelic", 5), ("manual", 10))
SEVERITY_MIX = (("critical", 5), ("high", 20), ("medium", 45), ("low", 30))
STATUS_MIX = (("closed", 60), ("resolved", 38), ("mitigated", 0.5), ("acknowledged", 0.5), ("open", 1))
TITLES = ("{svc} 5xx rate above {n}%", "{svc} p99 latency above {n}00 ms", "{svc} error budget burn rate {n}x",
          "{svc} pods crash-looping", "{svc} queue depth above {n}k", "{svc} certificate expires in {n} days",
          "{svc} disk usage above 9{n}%", "Elevated {svc} timeouts to upstream", "{svc} deploy {n}421 failing health checks")


def _pick(rng: random.Random, mix) -> str:
    names, weights = zip(*mix)
    return rng.choices(names, weights)[0]


def ensure_services(org_id: int) -> dict[str, int]:
    """The org's catalogue of SERVICES (alerts name them; incidents point at them): {name: id}."""
    from sqlalchemy import select

    from zentro.extensions import db
    from zentro.reliability.models import Service

    existing = {s.name: s.id for s in db.session.scalars(select(Service).where(Service.org_id == org_id))}
    for tier, name in enumerate(SERVICES):
        if name not in existing:
            svc = Service(org_id=org_id, name=name, tier=tier % 4, owner=f"team-{name}")
            db.session.add(svc)
            db.session.flush()
            existing[name] = svc.id
    db.session.commit()
    return existing


def seed_incidents(org_id: int, commander_id: int, count: int, now: dt.datetime) -> int:
    from sqlalchemy import insert, select

    from zentro.extensions import db
    from zentro.incidents.models import Incident, TimelineEvent

    rng = random.Random(20260101)
    existing = ensure_services(org_id)
    service_ids = [existing[n] for n in SERVICES]

    span = dt.timedelta(days=730)
    first = now - span - dt.timedelta(days=6)  # the newest one started 6 days ago, so every close is in the past
    step = span / max(count, 1)
    table = Incident.__table__
    events: list[dict] = []
    batch: list[dict] = []
    for number in range(1, count + 1):
        status = _pick(rng, STATUS_MIX)
        severity = _pick(rng, SEVERITY_MIX)
        source = _pick(rng, SOURCES)
        svc_index = rng.randrange(len(SERVICES) + 1)  # one in 13 has no service
        service_id = service_ids[svc_index] if svc_index < len(SERVICES) else None
        svc_name = SERVICES[svc_index] if svc_index < len(SERVICES) else "edge"
        title = rng.choice(TITLES).format(svc=svc_name, n=rng.randint(1, 9))
        started = first + step * number + dt.timedelta(seconds=rng.randint(0, 600))
        key = None if source == "manual" else f"{source}:{svc_name}:{rng.randrange(400)}"
        active = status in ("open", "acknowledged", "mitigated")
        if active and key:
            key = f"{key}:{number}"  # unique among active incidents: (org_id, open_dedupe_key)
        ack = started + dt.timedelta(minutes=rng.randint(1, 30)) if status != "open" else None
        mitigated = ack + dt.timedelta(minutes=rng.randint(5, 120)) if status in ("mitigated", "resolved", "closed") else None
        resolved = mitigated + dt.timedelta(minutes=rng.randint(5, 240)) if status in ("resolved", "closed") else None
        closed = resolved + dt.timedelta(days=rng.randint(1, 5)) if status == "closed" else None
        last = closed or resolved or mitigated or ack or started
        batch.append({
            "org_id": org_id, "number": number, "title": title, "description": "",
            "severity": severity, "status": status, "service_id": service_id,
            "commander_id": commander_id if rng.random() < 0.4 else None, "source": source,
            "dedupe_key": key, "open_dedupe_key": key if active else None,
            "alert_count": 0 if source == "manual" else rng.randint(1, 40), "legal_hold": rng.random() < 0.002,
            "started_at": started, "last_seen_at": started + dt.timedelta(minutes=rng.randint(0, 20)),
            "acknowledged_at": ack, "mitigated_at": mitigated, "resolved_at": resolved, "closed_at": closed,
            "created_at": started, "updated_at": last,
        })
        if len(batch) >= BATCH:
            db.session.execute(insert(table), batch)
            batch = []
    if batch:
        db.session.execute(insert(table), batch)

    # a few timeline rows on the newest incidents (the list never reads them; the detail page does)
    newest = db.session.execute(select(Incident.id, Incident.number, Incident.status, Incident.started_at)
                                .where(Incident.org_id == org_id).order_by(Incident.id.desc()).limit(500)).all()
    for inc_id, number, status, started in newest:
        events.append({"org_id": org_id, "incident_id": inc_id, "kind": "created",
                       "body": f"INC-{number} opened", "data": {}, "actor_type": "system", "actor_label": "bench",
                       "created_at": started})
        events.append({"org_id": org_id, "incident_id": inc_id, "kind": "alert", "body": "Alert: seeded",
                       "data": {"source": "bench"}, "actor_type": "system", "actor_label": "bench",
                       "created_at": started})
        if status != "open":
            events.append({"org_id": org_id, "incident_id": inc_id, "kind": "status", "body": f"open → {status}",
                           "data": {"to": status}, "actor_type": "system", "actor_label": "bench",
                           "created_at": started + dt.timedelta(minutes=5)})
    db.session.execute(insert(TimelineEvent.__table__), events)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        # what autovacuum would have done long before a real org reached 100k incidents: statistics, and the
        # visibility map that lets the status counts be answered by index-only scans (VACUUM runs outside a
        # transaction, hence autocommit)
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) incidents")
            conn.exec_driver_sql("VACUUM (ANALYZE) timeline_events")
    return count


def sign_in(app, email: str) -> str:
    """Sign in through the real form; return the Cookie header value a browser would send."""
    client = app.test_client()
    page = client.get("/login")
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    if page.status_code != 200 or not found:
        raise SystemExit(f"seed: GET /login answered {page.status_code} without a csrf_token")
    resp = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": found.group(1)})
    if resp.status_code not in (302, 303):
        raise SystemExit(f"seed: sign-in answered {resp.status_code}")
    name = app.config.get("SESSION_COOKIE_NAME", "session")
    cookie = client.get_cookie(name)
    if cookie is None:
        raise SystemExit("seed: the sign-in set no session cookie")
    return f"{name}={cookie.value}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--org", required=True)
    ap.add_argument("--ingest-token", action="store_true")
    ap.add_argument("--api-key", action="store_true")
    ap.add_argument("--session", action="store_true")
    ap.add_argument("--services", action="store_true", help="create the org's service catalogue")
    ap.add_argument("--incidents", type=int, default=0, help="seed this many incidents (implies --services)")
    ap.add_argument("--webhook", default="", help="create a webhook endpoint at this URL, subscribed to every event")
    a = ap.parse_args(argv)
    t0 = time.monotonic()

    from zentro import create_app
    from zentro.accounts import service as accounts
    from zentro.audit.service import SYSTEM
    from zentro.extensions import db
    from zentro.platform.types import utcnow

    app = create_app()
    out: dict = {}
    with app.app_context():
        email = f"owner@{a.org}.{EMAIL_DOMAIN}"
        org, _ = accounts.ensure_org(a.org, plan="enterprise")
        user, _ = accounts.ensure_user(email, PASSWORD, name="Bench Owner")
        accounts.set_membership(user, org, "owner")
        db.session.commit()
        out["org_id"] = org.id
        if a.ingest_token:
            _, out["ingest_token"] = accounts.create_ingest_token(org, "bench", SYSTEM, user)
        if a.api_key:
            _, out["api_key"] = accounts.create_api_key(org, user, "bench", None, SYSTEM)
        if a.services or a.incidents:
            out["services"] = len(ensure_services(org.id))
        if a.incidents:
            out["incidents"] = seed_incidents(org.id, user.id, a.incidents, utcnow())
        if a.webhook:
            from zentro.notify import webhooks
            ep, _ = webhooks.create_endpoint(org.id, url=a.webhook, events=["*"], actor=SYSTEM, user_id=user.id,
                                             description="bench")
            out["webhook_id"] = ep.id
        if a.session:
            out["cookie"] = sign_in(app, email)
    out["seconds"] = round(time.monotonic() - t0, 2)
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
