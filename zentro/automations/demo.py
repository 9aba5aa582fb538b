"""Demo automations for the demo org, built through the automation services (so every row has its audit
events, timeline entries and Slack delivery record): four playbooks on the demo services, four guardrails
(tier-0 protection, a maintenance window, a max blast radius, required approvers naming the demo owner),
an approval history in which "restart api-gateway" was approved three times and never rejected (so the
policy-suggestion page proposes it), one rejected request, one refused attempt (a policy block), the
executions of the approved restarts (the latest during the closed api-gateway incident), and a pending
approval on the open payments-api latency incident.

Times are fixed relative to ``now`` (past days at set hours), so guardrail verdicts do not depend on when
the demo is seeded. Idempotent: an org that already has playbooks is left alone. Needs the reliability
and incident demos first (services, deploys, incidents) and an owner/admin plus a member."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from zentro.accounts.models import Membership, Role, User
from zentro.audit.service import Actor
from zentro.automations import approvals
from zentro.automations import service as auto
from zentro.automations.models import Playbook
from zentro.extensions import db
from zentro.incidents.models import Incident
from zentro.platform.types import utcnow
from zentro.reliability import service as reliability
from zentro.reliability.models import ChangeEvent, Service

DAY, MINUTE = dt.timedelta(days=1), dt.timedelta(minutes=1)
DEMO_ACTOR = Actor("system", "demo", "demo seed")
GATEWAY_INCIDENT = "Elevated 5xx rate on api-gateway"
PAYMENTS_INCIDENT = "payments-api p99 latency above 2 s"
PAYMENTS_DEPLOY = ("2026.11.3", "Deploy 2026.11.3: connection-pool change")


class _Person:
    def __init__(self, user_id: int, email: str):
        self.id, self.email, self.actor = user_id, email, Actor("user", str(user_id), email)


def _people(org_id: int) -> tuple[_Person, _Person]:
    """(the first owner/admin, the first member — or the admin again)."""
    rows = db.session.execute(select(Membership.user_id, Membership.role, User.email)
                              .join(User, User.id == Membership.user_id)
                              .where(Membership.org_id == org_id).order_by(Membership.id)).all()
    admins = [r for r in rows if Role(r.role).at_least(Role.admin)]
    members = [r for r in rows if Role(r.role) == Role.member] or admins
    if not admins:
        raise RuntimeError("seed_automations needs an owner or admin in the org")
    return _Person(admins[0].user_id, admins[0].email), _Person(members[0].user_id, members[0].email)


def _playbooks(org_id: int, svc: dict[str, int], by: _Person, now: dt.datetime) -> dict[str, int]:
    specs = [
        ("Restart api-gateway pods", "Recycle the gateway's pods to clear exhausted upstream connection pools "
         "(runbook: gateway/connection-pools).", [{"action": "restart", "service_id": svc["api-gateway"]}]),
        ("Payments: disable the new pool and roll back", "Turn the new connection pool off, then roll payments-api "
         "back to its previous deploy.",
         [{"action": "toggle_flag", "service_id": svc["payments-api"],
           "params": {"flag": "payments.new-connection-pool", "on": False}},
          {"action": "rollback_deploy", "service_id": svc["payments-api"], "params": {}}]),
        ("Search: scale out search-service", "Add query capacity while the index catches up.",
         [{"action": "scale", "service_id": svc["search-service"], "params": {"replicas": 12}}]),
        ("Block an abusive range at the edge", "Drop traffic from a scraping or attack range at the gateway.",
         [{"action": "block_address", "service_id": svc["api-gateway"], "params": {"cidr": "198.51.100.0/24"}}]),
    ]
    ids = {}
    for name, description, steps in specs:
        ids[name] = auto.create_playbook(org_id, {"name": name, "description": description, "steps": steps},
                                         actor=by.actor, user_id=by.id, now=now - 30 * DAY).id
    return ids


def _guardrails(org_id: int, svc: dict[str, int], by: _Person, approver: str, now: dt.datetime) -> None:
    specs = [
        {"name": "Tier-0 protection", "kind": "tier_protection", "params": {"max_tier": 0}},
        {"name": "search-index maintenance window", "kind": "maintenance_window", "service_id": svc["search-index"],
         "params": {"weekdays": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00", "tz": "UTC"}},
        {"name": "Max blast radius", "kind": "max_blast_radius", "params": {"max_services": 6}},
        {"name": "Payments approvers", "kind": "required_approvers", "service_id": svc["payments-api"],
         "params": {"approvers": [approver], "min": 1}},
    ]
    for spec in specs:
        auto.create_guardrail(org_id, spec, actor=by.actor, user_id=by.id, now=now - 30 * DAY)


def _decided_run(org_id: int, playbook_id: int, *, asker: _Person, approver: _Person, at: dt.datetime, note: str,
                 decision_note: str, approve: bool = True, incident_id: int | None = None,
                 execute: tuple[str, str] | None = None) -> None:
    """Dry-run at ``at``, request approval a minute later, decide two minutes after that and (with
    ``execute`` = (approval note, rollback plan)) execute a minute later."""
    dry = auto.dry_run(org_id, actor=asker.actor, user_id=asker.id, playbook_id=playbook_id, incident_id=incident_id,
                       now=at)
    a = approvals.request_approval(org_id, dry_run_id=dry.id, actor=asker.actor, user_id=asker.id, note=note,
                                   now=at + MINUTE)
    approvals.decide(org_id, a.id, approve=approve, user_id=approver.id, actor=approver.actor, note=decision_note,
                     via="app", now=at + 3 * MINUTE)
    if execute:
        auto.execute(org_id, actor=asker.actor, user_id=asker.id, dry_run_id=dry.id, plan_hash=dry.plan_hash,
                     approval_note=execute[0], rollback_plan=execute[1], approval_id=a.id, now=at + 4 * MINUTE)


def _day(now: dt.datetime, days: int, hour: int, minute: int = 0) -> dt.datetime:
    return (now - days * DAY).replace(hour=hour, minute=minute, second=0, microsecond=0)


def seed_automations(org_id: int, now: dt.datetime | None = None) -> list[str]:
    if db.session.scalar(select(Playbook.id).where(Playbook.org_id == org_id).limit(1)) is not None:
        return ["Automations already seeded (nothing duplicated)."]
    now = now or utcnow()
    services = {s.name: s.id for s in db.session.scalars(select(Service).where(Service.org_id == org_id))}
    if not {"api-gateway", "payments-api", "search-service", "search-index"} <= services.keys():
        return ["Automations not seeded: the demo services are missing (seed reliability first)."]
    admin, member = _people(org_id)
    incidents = {i.title: i for i in db.session.scalars(select(Incident).where(
        Incident.org_id == org_id, Incident.title.in_((GATEWAY_INCIDENT, PAYMENTS_INCIDENT))))}
    playbooks = _playbooks(org_id, services, admin, now)
    _guardrails(org_id, services, admin, admin.email, now)

    # "restart api-gateway": approved three times, never rejected, each run executed (manual: no robot)
    restart = playbooks["Restart api-gateway pods"]
    rollback_plan = "Nothing to undo for a restart; if 5xx persist, roll api-gateway back to 5.1.9 (runbook: gateway/rollback)."
    gateway = incidents.get(GATEWAY_INCIDENT)
    for days, hour, note, decision_note, inc_id in (
            (20, 14, "Gateway pods leaking upstream connections after the auth-service failover drill.",
             "Known leak; restart is the documented fix.", None),
            (11, 10, "Connection pool saturation again after the auth-service certificate rotation.",
             "OK, same symptom as last time.", None)):
        _decided_run(org_id, restart, asker=member, approver=admin, at=_day(now, days, hour), note=note,
                     decision_note=decision_note, incident_id=inc_id,
                     execute=("Pools exhausted; a rolling restart clears them (runbook gateway/connection-pools).",
                               rollback_plan))
    if gateway is not None:  # during the closed 5xx incident, when the responder recycled the gateway's pods
        at = gateway.started_at + 20 * MINUTE
        _decided_run(org_id, restart, asker=member, approver=admin, at=at,
                     note="5xx from exhausted upstream pools after the auth-service failover.",
                     decision_note="Approved: third time this quarter, let's pre-approve it.", incident_id=gateway.id,
                     execute=("Recycling gateway pods to clear exhausted upstream pools (INC note 22 min).",
                               rollback_plan))

    # a rejected request and a refused attempt
    _decided_run(org_id, playbooks["Block an abusive range at the edge"], asker=member, approver=admin,
                 at=_day(now, 6, 16, 30), note="Scraper hammering /search from 198.51.100.0/24.", approve=False,
                 decision_note="That range is a partner's NAT egress; rate-limit /search instead of blocking it.")
    scale = auto.dry_run(org_id, actor=member.actor, user_id=member.id,
                         playbook_id=playbooks["Search: scale out search-service"], now=_day(now, 2, 11))
    try:
        auto.execute(org_id, actor=member.actor, user_id=member.id, dry_run_id=scale.id, plan_hash=scale.plan_hash,
                     approval_note="Query latency up; more replicas.", rollback_plan="", now=_day(now, 2, 11, 3))
    except auto.PolicyBlocked:
        pass  # recorded as a policy block (no rollback plan), which is the point

    # the open payments incident: the deploy it blames, then a dry-run waiting for approval
    payments = incidents.get(PAYMENTS_INCIDENT)
    if payments is not None:
        ref, summary = PAYMENTS_DEPLOY
        if db.session.scalar(select(ChangeEvent.id).where(ChangeEvent.org_id == org_id, ChangeEvent.ref == ref)) is None:
            reliability.record_change(org_id, services["payments-api"], kind="deploy", summary=summary, ref=ref,
                                      occurred_at=payments.started_at - 2 * MINUTE, actor=DEMO_ACTOR, now=now)
        dry = auto.dry_run(org_id, actor=member.actor, user_id=member.id, incident_id=payments.id,
                           playbook_id=playbooks["Payments: disable the new pool and roll back"], now=now - 4 * MINUTE)
        approvals.request_approval(org_id, dry_run_id=dry.id, actor=member.actor, user_id=member.id, now=now - 3 * MINUTE,
                                   note="p99 climbed right after 2026.11.3; flag off and roll back to v2.13.4.")
    db.session.commit()
    return [f"Automations: {len(playbooks)} playbooks, 4 guardrails, approval history, executions."]
