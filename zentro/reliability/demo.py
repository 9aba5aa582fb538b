"""Demo reliability data for an org: a small production topology, 30 days of SLI samples (hourly, then
every 5 minutes for the last 6 hours) with a past outage on payments-api and a burn in progress on
search-service (about 9× for 5 hours: the 6-hour page rule fires, the 1-hour and 3-day rules do not), a few change events, two open findings for the attack-path view, and one past
incident on auth-service (which posts no SLI, so its SLO is derived from incidents).

Idempotent: each piece is created only when it is missing. Everything goes through the service
functions (audited) except the historical SLI rows, which are bulk-inserted; the last 6 hours of
samples are posted through ``record_sli`` so the burn-rate rules run exactly as for an API call."""
from __future__ import annotations

import datetime as dt
import math
import random

from sqlalchemy import func, insert, select

from zentro.audit.service import Actor
from zentro.extensions import db
from zentro.incidents import service as incidents
from zentro.incidents.models import Incident
from zentro.ingest.models import Finding
from zentro.platform.types import utcnow
from zentro.reliability import service
from zentro.reliability.models import ChangeEvent, Service, SliSample
from zentro.reliability.schemas import ServiceIn, SliSampleIn

DEMO = Actor("system", "demo", "demo seed")
HOUR, DAY, FIVE = dt.timedelta(hours=1), dt.timedelta(days=1), dt.timedelta(minutes=5)

# name, tier, environment, internet-facing, owner, SLO target, description, requests per second (None: no SLI)
SERVICES = [
    ("web-frontend", 1, "production", True, "team-web", 99.9, "Customer web app (Next.js) behind the CDN", 120),
    ("partner-portal", 2, "production", True, "team-partners", 99.5, "Partner self-service portal", 8),
    ("api-gateway", 0, "production", True, "team-platform", 99.95, "Public API edge: auth, routing, rate limits", 260),
    ("auth-service", 0, "production", False, "team-identity", 99.95, "Sessions, OAuth, token issuance", None),
    ("payments-api", 0, "production", False, "team-payments", 99.9, "Card payments and refunds", 45),
    ("search-service", 2, "production", False, "team-discovery", 99.5, "Catalogue search API", 70),
    ("search-index", 2, "production", False, "team-discovery", 99.5, "OpenSearch cluster", 70),
    ("notifications-worker", 3, "production", False, "team-growth", 99.0, "Email and push fan-out", 15),
    ("postgres-primary", 0, "production", False, "team-data", 99.99, "Primary PostgreSQL cluster", 900),
]
EDGES = [
    ("web-frontend", "api-gateway"), ("partner-portal", "api-gateway"),
    ("api-gateway", "auth-service"), ("api-gateway", "payments-api"), ("api-gateway", "search-service"),
    ("payments-api", "auth-service"), ("payments-api", "postgres-primary"), ("payments-api", "notifications-worker"),
    ("auth-service", "postgres-primary"), ("search-service", "search-index"),
]
# fraction of the error budget each service spends per hour at baseline (1.0 = on pace)
BASE_PACE = {"web-frontend": 0.35, "partner-portal": 0.5, "api-gateway": 0.25, "payments-api": 0.3,
             "search-service": 0.2, "search-index": 0.3, "notifications-worker": 0.45, "postgres-primary": 0.15}
FINDINGS = [
    ("partner-portal", "demo-reliability:partner-portal:struts", "Apache Struts OGNL injection (remote code execution)",
     "critical", "CVE-2017-5638", "partner-portal-web-01"),
    ("web-frontend", "demo-reliability:web-frontend:jquery", "jQuery < 3.5 cross-site scripting in htmlPrefilter",
     "medium", "CVE-2020-11023", "web-frontend-cdn-origin"),
    ("search-index", "demo-reliability:search-index:opensearch", "OpenSearch security plugin bypass",
     "high", "CVE-2022-41917", "search-index-data-02"),
]


def _error_rate(name: str, target: float, at: dt.datetime, now: dt.datetime, rng: random.Random) -> float:
    """The bad-event fraction for the hour/5 minutes starting ``at``: baseline noise with a daily
    shape, plus the two stories (payments outage 9 days ago, search burn in the last 6 hours)."""
    allowed = (100 - target) / 100
    pace = BASE_PACE.get(name, 0.3) * (0.6 + 0.8 * rng.random()) * (1 + 0.3 * math.sin(at.hour / 24 * 2 * math.pi))
    rate = allowed * pace
    outage = (now - 9 * DAY).replace(hour=14, minute=0, second=0, microsecond=0)
    if name == "payments-api" and outage <= at < outage + 3 * HOUR:
        rate = 0.10  # 500s on a tenth of charges after deploy v2.14.0, until the rollback
    if name == "search-service" and at >= now - 5 * HOUR:
        rate = allowed * (8.5 + rng.random())  # ~9× burn since the timeout change: pages on the 6h rule
    if name == "search-index" and at >= now - 6 * HOUR:
        rate = allowed * (2.0 + rng.random())
    return min(rate, 1.0)


def _traffic(rps: int, at: dt.datetime, span: dt.timedelta, rng: random.Random) -> int:
    daily = 0.55 + 0.45 * math.sin((at.hour - 8) / 24 * 2 * math.pi) ** 2
    return max(1, int(rps * span.total_seconds() * daily * (0.9 + 0.2 * rng.random())))


def seed_reliability(org_id: int, now: dt.datetime | None = None) -> list[str]:
    """Create whatever of the demo is missing in the org. Returns what was done, line by line."""
    now = now or utcnow()
    done: list[str] = []
    by_name = {s.name: s for s in service.all_services(org_id)}
    for name, tier, env, exposed, owner, target, desc, _ in SERVICES:
        if name not in by_name:
            by_name[name] = service.create_service(org_id, ServiceIn(
                name=name, tier=tier, environment=env, internet_facing=exposed, owner=owner, slo_target=target,
                description=desc, runbook_url=f"https://runbooks.example.com/{name}"), DEMO)
            done.append(f"service {name}")
    existing = set(service.edges(org_id))
    for a, b in EDGES:
        if (by_name[a].id, by_name[b].id) not in existing:
            service.add_dependency(org_id, by_name[a].id, by_name[b].id, DEMO)
            done.append(f"edge {a} → {b}")
    for name, *_rest, rps in SERVICES:
        if rps is not None and _seed_sli(org_id, by_name[name], rps, now):
            done.append(f"30 days of SLI samples for {name}")
    done += _seed_changes(org_id, by_name, now)
    done += _seed_findings(org_id, by_name, now)
    done += _seed_incident(org_id, by_name["auth-service"], now)
    return done


def _seed_sli(org_id: int, svc: Service, rps: int, now: dt.datetime) -> bool:
    has = db.session.scalar(select(func.count()).select_from(SliSample)
                            .where(SliSample.org_id == org_id, SliSample.service_id == svc.id))
    if has:
        return False
    rng = random.Random(f"zentro-demo-{svc.name}")
    recent_from = now.replace(minute=0, second=0, microsecond=0) - 6 * HOUR
    rows, at = [], recent_from - 30 * DAY + 6 * HOUR
    while at < recent_from:
        total = _traffic(rps, at, HOUR, rng)
        bad = round(total * _error_rate(svc.name, svc.slo_target, at, now, rng))
        rows.append({"org_id": org_id, "service_id": svc.id, "window_start": at, "window_end": at + HOUR,
                     "good": total - bad, "total": total, "created_at": now})
        at += HOUR
    db.session.execute(insert(SliSample), rows)
    db.session.commit()
    recent, end = [], now.replace(second=0, microsecond=0) - dt.timedelta(minutes=now.minute % 5)
    at = recent_from
    while at + FIVE <= end:
        total = _traffic(rps, at, FIVE, rng)
        bad = round(total * _error_rate(svc.name, svc.slo_target, at, now, rng))
        recent.append(SliSampleIn(window_start=at, window_end=at + FIVE, good=total - bad, total=total))
        at += FIVE
    if recent:
        service.record_sli(org_id, svc.id, recent, DEMO, now=now)
    return True


def _seed_changes(org_id: int, by_name: dict[str, Service], now: dt.datetime) -> list[str]:
    outage = (now - 9 * DAY).replace(hour=14, minute=0, second=0, microsecond=0)
    changes = [
        ("payments-api", "deploy", "Deploy v2.14.0: new card-tokenisation client", "v2.14.0", outage - FIVE),
        ("payments-api", "deploy", "Rollback to v2.13.4 after 500s on /charges", "v2.13.4", outage + 3 * HOUR - FIVE),
        ("api-gateway", "deploy", "Deploy gateway 5.2.1 (rate-limit headers)", "5.2.1", now - 2 * DAY - 3 * HOUR),
        ("search-service", "config", "Lower OpenSearch query timeout 2s → 500ms", "CHG-1187",
         now - 5 * HOUR - 7 * dt.timedelta(minutes=1)),
        ("web-frontend", "flag", "Enable new checkout flow for 25 % of users", "flag:checkout-v2", now - 4 * DAY),
    ]
    done = []
    for name, kind, summary, ref, when in changes:
        svc = by_name[name]
        exists = db.session.scalar(select(ChangeEvent.id).where(ChangeEvent.org_id == org_id,
                                                                ChangeEvent.service_id == svc.id,
                                                                ChangeEvent.ref == ref).limit(1))
        if exists is None:
            service.record_change(org_id, svc.id, kind=kind, summary=summary, ref=ref, occurred_at=when, actor=DEMO,
                                  now=now)
            done.append(f"{kind} on {name}")
    return done


def _seed_findings(org_id: int, by_name: dict[str, Service], now: dt.datetime) -> list[str]:
    done = []
    for name, key, title, severity, cve, asset in FINDINGS:
        exists = db.session.scalar(select(Finding.id).where(Finding.org_id == org_id, Finding.source == "generic",
                                                            Finding.finding_key == key))
        if exists is None:
            db.session.add(Finding(org_id=org_id, source="generic", finding_key=key, title=title, severity=severity,
                                   status="open", asset=asset, cve=cve, service_id=by_name[name].id,
                                   raw={"demo": True}, first_seen_at=now - 5 * DAY, last_seen_at=now - HOUR))
            done.append(f"{severity} finding on {name}")
    db.session.commit()
    return done


def _seed_incident(org_id: int, svc: Service, now: dt.datetime) -> list[str]:
    key = "demo-reliability:auth-token-latency"
    if db.session.scalar(select(Incident.id).where(Incident.org_id == org_id, Incident.dedupe_key == key)):
        return []
    started = (now - 4 * DAY).replace(hour=9, minute=20, second=0, microsecond=0)
    inc = incidents.create_incident(org_id, title="auth-service: token issuance p99 above 2 s, logins failing",
                                    severity="high", actor=DEMO, service_id=svc.id, source="demo", dedupe_key=key,
                                    started_at=started, now=started)
    incidents.transition(inc, "acknowledged", DEMO, now=started + dt.timedelta(minutes=4))
    incidents.transition(inc, "mitigated", DEMO, "Failed over to the standby Redis", now=started + dt.timedelta(minutes=14))
    incidents.transition(inc, "resolved", DEMO, now=started + dt.timedelta(hours=1))
    db.session.commit()
    return ["resolved high incident on auth-service"]
