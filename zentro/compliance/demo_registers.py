"""Demo data for the compliance registers, created through the services (so every row has its audit
events): attestations in every state (one overdue), two exceptions, three policies (two accepted),
five vendors of different tiers, categories and report states. Idempotent: an org that already has
attestations or vendors is left alone."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from zentro.accounts.models import Membership, Role
from zentro.audit.models import AuditEvent
from zentro.audit.service import Actor
from zentro.compliance import attestations as att
from zentro.compliance import vendors
from zentro.compliance.models import Attestation, Vendor
from zentro.extensions import db
from zentro.platform.types import utcnow

DAY = dt.timedelta(days=1)


def _people(org_id: int) -> tuple[tuple[int, Actor], tuple[int, Actor]]:
    """(an owner/admin, a member — or the owner again) as (user id, audit actor)."""
    from zentro.accounts.models import User

    rows = db.session.execute(select(Membership.user_id, Membership.role, User.email)
                              .join(User, User.id == Membership.user_id)
                              .where(Membership.org_id == org_id).order_by(Membership.id)).all()
    admins = [r for r in rows if Role(r.role).at_least(Role.admin)]
    members = [r for r in rows if Role(r.role) == Role.member] or admins
    if not admins:
        raise RuntimeError("seed_compliance needs an owner or admin in the org")
    a, m = admins[0], members[0]
    return (a.user_id, Actor("user", str(a.user_id), a.email)), (m.user_id, Actor("user", str(m.user_id), m.email))


def seed_compliance(org_id: int, now: dt.datetime | None = None) -> list[str]:
    now = now or utcnow()
    taken = db.session.scalar(select(Attestation.id).where(Attestation.org_id == org_id).limit(1)) or \
        db.session.scalar(select(Vendor.id).where(Vendor.org_id == org_id).limit(1))
    if taken:
        return ["Compliance registers already seeded (nothing duplicated)."]
    (admin_id, admin), (member_id, member) = _people(org_id)
    # evidence must predate the statement that cites it (attested 10 days before `now`)
    some_event = db.session.scalar(select(AuditEvent.id).where(AuditEvent.org_id == org_id,
                                                               AuditEvent.created_at <= now - 10 * DAY)
                                   .order_by(AuditEvent.created_at.desc()).limit(1))

    def assign(tag, owner_id, assigned_days_ago, due_in_days):
        return att.assign(org_id, control=tag, owner_id=owner_id, actor=admin, now=now - assigned_days_ago * DAY,
                          due_at=now + due_in_days * DAY).id

    # attested and valid
    a1 = assign("SOC2:CC6.1", admin_id, 40, 20)
    att.attest(org_id, a1, user_id=admin_id, actor=admin, now=now - 10 * DAY,
               note="Quarterly access review done: 42 accounts checked against HR roster, 3 leavers removed, "
                    "MFA enforced for every admin role.",
               evidence=([{"kind": "audit_event", "ref": some_event}] if some_event else [])
               + [{"kind": "url", "ref": "https://wiki.example.com/security/access-review-q1"}])
    a2 = assign("SOC2:CC7.2", member_id, 20, 10)
    att.attest(org_id, a2, user_id=member_id, actor=member, now=now - 5 * DAY,
               note="Alert routing verified end to end: synthetic alert paged the on-call within 2 minutes.",
               evidence=[{"kind": "url", "ref": "https://runbooks.example.com/alerting/synthetic-check"}])
    a3 = assign("SOC2:CC1.1", admin_id, 45, 30)
    att.attest(org_id, a3, user_id=admin_id, actor=admin, now=now - 30 * DAY,
               note="Code of conduct acknowledged by all staff in the annual cycle.")
    # attested long ago: expired (ISO A.8.13 backups: 90-day validity)
    a4 = assign("ISO27001:A.8.13", member_id, 130, 20)
    att.attest(org_id, a4, user_id=member_id, actor=member, now=now - 100 * DAY,
               note="Restore test of the primary database from last night's backup succeeded (RTO 38 min).")
    # overdue: due a week ago, never attested
    assign("ISO27001:A.5.15", member_id, 60, -7)
    # assigned, due in two weeks
    assign("SOC2:CC8.1", member_id, 3, 14)

    att.open_exception(org_id, control="ISO27001:A.8.8", user_id=admin_id, actor=admin, approver_id=admin_id,
                       reason="The legacy billing appliance cannot take vendor patches until its replacement ships.",
                       compensating_control="Isolated VLAN, WAF virtual patching and weekly authenticated scans.",
                       expires_at=now + 90 * DAY, now=now - 15 * DAY)
    att.open_exception(org_id, control="SOC2:CC6.3", user_id=admin_id, actor=admin, approver_id=admin_id,
                       reason="Contractor accounts are removed by hand until the HR feed reaches the identity "
                              "provider.",
                       compensating_control="Weekly reconciliation of contractor accounts against active contracts.",
                       expires_at=now + 30 * DAY, now=now - 5 * DAY)

    p1 = att.create_policy(org_id, name="Quarterly access review", actor=member, now=now - 50 * DAY,
                           description="Every quarter, owners review who can reach production and remove what is "
                                       "not needed.",
                           control_tags=["SOC2:CC6.2", "SOC2:CC6.3", "ISO27001:A.5.18"], actions=["revoke_access"])
    p2 = att.create_policy(org_id, name="Production change approval", actor=member, now=now - 40 * DAY,
                           description="Production changes need a reviewed plan, a dry-run and a rollback path.",
                           control_tags=["SOC2:CC8.1", "ISO27001:A.8.32"],
                           actions=["deploy_rollback", "restart_service", "scale_deployment"])
    for pol, days in ((p1, 45), (p2, 35)):
        att.transition_policy(org_id, pol.id, "review", user_id=member_id, actor=member, now=now - days * DAY)
        att.transition_policy(org_id, pol.id, "accepted", user_id=admin_id, actor=admin, now=now - (days - 2) * DAY)
    p3 = att.create_policy(org_id, name="Customer incident communication", actor=member, now=now - 4 * DAY,
                           description="Status page within 30 minutes of a customer-visible SEV1/SEV2.",
                           control_tags=["SOC2:CC2.3", "ISO27001:A.5.26"])
    att.transition_policy(org_id, p3.id, "review", user_id=member_id, actor=member, now=now - 3 * DAY)

    def vendor(days_ago, **fields):
        return vendors.add(org_id, actor=admin, now=now - days_ago * DAY, **fields)

    aws = vendor(400, name="Amazon Web Services", category="cloud-infrastructure", risk_tier="critical",
                 owner_id=admin_id, website="https://aws.amazon.com", report_type="soc2-type-ii",
                 report_expires_at=now + 200 * DAY, baa=True, dpa=True, handles_phi=True, handles_personal_data=True,
                 notes="Primary hosting (eu-west-1, us-east-1).")
    vendors.record_review(org_id, aws.id, actor=admin, note="SOC 2 Type II bridge letter received.",
                          now=now - 30 * DAY)
    stripe = vendor(300, name="Stripe", category="payment-processor", risk_tier="critical", owner_id=member_id,
                    website="https://stripe.com", report_type="soc2-type-ii", report_expires_at=now + 300 * DAY,
                    dpa=True, handles_personal_data=True)
    vendors.record_review(org_id, stripe.id, actor=admin, note="PCI AOC and SOC 2 reviewed.", now=now - 120 * DAY)
    vendor(200, name="Okta", category="identity-provider", risk_tier="high", owner_id=admin_id,
           website="https://www.okta.com", report_type="soc2-type-ii", report_expires_at=now + 20 * DAY,
           dpa=True, handles_personal_data=True)
    vendor(150, name="Datadog", category="monitoring", risk_tier="medium", owner_id=member_id,
           website="https://www.datadoghq.com", report_type="iso27001", report_expires_at=now - 10 * DAY,
           handles_personal_data=True, dpa=True, notes="Renewed certificate requested from the account manager.")
    vendor(60, name="Harbor & Finch LLP", category="professional-services", risk_tier="low", owner_id=admin_id,
           website="https://harborfinch.example", report_type="none", handles_personal_data=True,
           notes="External counsel; DPA in negotiation.")
    return ["Compliance registers: 6 attestations (1 overdue, 1 expired), 2 exceptions, 3 policies (2 accepted), "
            "5 vendors."]
