"""The demo organisation `make run` shows: idempotent, real rows created through the services."""
from __future__ import annotations

from sqlalchemy import select

from zentro.accounts import service
from zentro.accounts.models import IngestToken
from zentro.audit.service import SYSTEM
from zentro.automations.demo import seed_automations
from zentro.compliance.demo_analytics import seed_analytics_demo
from zentro.compliance.demo_registers import seed_compliance
from zentro.connectors.integrations_demo import seed as seed_integrations
from zentro.extensions import db
from zentro.incidents.demo import seed_incidents
from zentro.notify.demo import seed_notifications
from zentro.reliability.demo import seed_reliability

DEMO_ORG = ("acme", "Acme Cloud", "pro")
SECOND_ORG = ("acme-labs", "Acme Labs", "free")
DEMO_USERS = [
    ("owner@acme.example", "Olivia Owner", {"acme": "owner", "acme-labs": "admin"}),
    ("sre@acme.example", "Sam Responder", {"acme": "member"}),
    ("auditor@acme.example", "Avery Viewer", {"acme": "viewer"}),
]


def seed_demo(password: str) -> list[str]:
    orgs = {}
    created_any = False
    for slug, name, plan in (DEMO_ORG, SECOND_ORG):
        org, created = service.ensure_org(slug, name, None)
        if created:
            org.plan = plan
        orgs[slug] = org
        created_any |= created
    for email, name, roles in DEMO_USERS:
        user, created = service.ensure_user(email, password, name)
        created_any |= created
        for slug, role in roles.items():
            service.set_membership(user, orgs[slug], role)
    db.session.commit()
    acme = orgs["acme"]
    if db.session.scalar(select(IngestToken).where(IngestToken.org_id == acme.id)) is None:
        service.create_ingest_token(acme, "Prometheus Alertmanager (demo)", SYSTEM, None)
    # services first: incidents and findings refer to them (each seed is idempotent on its own)
    seed_reliability(acme.id)
    seed_incidents(acme.id)
    seed_compliance(acme.id)  # attestations, exceptions, policies, vendors (after the evidence they cite)
    seed_automations(acme.id)  # playbooks, guardrails, approvals, executions (on the services and incidents above)
    seed_analytics_demo(acme.id)  # scope, gap tracking, evidence requests, committee, audit season (on all of the above)
    db.session.commit()
    seed_notifications(acme.id)  # digest schedules (two due right away, so the scheduler shows its work)
    seed_integrations(acme)  # alert and scanner sources with their own ingest tokens, untested until someone tests them
    db.session.commit()
    return [
        ("Seeded" if created_any else "Demo data already present (nothing duplicated)")
        + f": orgs {', '.join(orgs)}.",
        f"Demo login: {DEMO_USERS[0][0]} / {password}",
        f"(also {DEMO_USERS[1][0]} as member, {DEMO_USERS[2][0]} as viewer, same password)",
    ]
