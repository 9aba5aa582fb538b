"""Demo data for the compliance committee: saved committee settings (a tight 24 owner-hour weekly capacity, so the
capacity budget shows shortfalls) and staffing actions in every status, one of them past its completion SLA —
created through the services, so every row has its audit event. Idempotent: an org with committee settings is
left alone. Density alerts are not seeded: the density-alert digest records them when it runs."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from zentro.accounts.models import Membership, Role, User
from zentro.audit.service import Actor
from zentro.compliance import committee as svc
from zentro.compliance import obligations as obl
from zentro.compliance.models import CommitteeSettings
from zentro.extensions import db
from zentro.platform.types import utcnow

DAY = dt.timedelta(days=1)


def _people(org_id: int) -> tuple[tuple[int, Actor], int]:
    rows = db.session.execute(select(Membership.user_id, Membership.role, User.email)
                              .join(User, User.id == Membership.user_id)
                              .where(Membership.org_id == org_id).order_by(Membership.id)).all()
    admins = [r for r in rows if Role(r.role).at_least(Role.admin)]
    if not admins:
        raise RuntimeError("seed_committee needs an owner or admin in the org")
    members = [r for r in rows if Role(r.role) == Role.member] or admins
    a = admins[0]
    return (a.user_id, Actor("user", str(a.user_id), a.email)), members[0].user_id


def seed_committee(org_id: int, now: dt.datetime | None = None) -> list[str]:
    now = now or utcnow()
    if db.session.get(CommitteeSettings, org_id) is not None:
        return ["Committee settings already seeded (nothing duplicated)."]
    (admin_id, admin), member_id = _people(org_id)
    svc.update_settings(org_id, {
        "capacityHoursPerWeek": 24, "densityWarn": 6, "densityCritical": 10, "completionSlaDays": 14,
        "bundleCadenceDays": 30, "escalationEmails": ["compliance-committee@acme.example"],
        "effortHours": {"checkpoint": 8, "vendor_review": 4},
    }, user_id=admin_id, actor=admin, now=now - 60 * DAY)
    this_week = obl.week_start(now)

    def action(weeks_from_now: int, kind: str, title: str, hours: float, owner: int | None, created_days_ago: int,
               moves: tuple[tuple[str, int], ...] = (), note: str = "") -> None:
        week = this_week + dt.timedelta(weeks=weeks_from_now)
        row = svc.create_action(org_id, {"weekStart": week.isoformat(), "kind": kind, "title": title,
                                         "hours": hours, "ownerId": owner, "note": note},
                                user_id=admin_id, actor=admin, now=now - created_days_ago * DAY)
        for status, days_ago in moves:
            svc.update_action(org_id, row.id, {"status": status}, user_id=admin_id, actor=admin,
                              now=now - days_ago * DAY)

    action(-6, "add_capacity", "Contractor covers SOC 2 evidence collection during fieldwork", 16, admin_id, 50,
           (("tracked", 48), ("completed", 38)), "Two-week contractor engagement approved by the committee.")
    action(-4, "rebalance", "Move vendor reviews from the security lead to the GRC analyst", 8, member_id, 35,
           (("tracked", 33),), "Still waiting for the analyst's onboarding to the vendor portal.")
    action(-2, "defer", "Defer the low-tier vendor report renewals by two weeks", 4, admin_id, 20,
           (("dismissed", 18),), "Dismissed: the renewals are contractual and cannot move.")
    action(1, "consolidate", "One evidence session for the crosswalked SOC 2 / ISO 27001 access controls", 6,
           member_id, 3, (("tracked", 2),))
    action(2, "rebalance", "Share the quarter-end attestations between two owners", 6, None, 1)
    db.session.commit()
    return ["Committee settings and five staffing actions seeded."]
