"""Demo data for the program reports: gap remediation rows linked to the demo playbooks and service runbooks
(open, in progress, one overdue, two done in recent weeks, one won't fix), plus one accepted policy allowing the
edge block playbook on the api-gateway so the queue's suggestion column shows a playbook suggestion. (Not the
api-gateway restart: the automations demo leaves that one approved without a policy, as a policy suggestion.)

Rows are written with their audit events at the times they happened (the services refuse past due dates, and the
demo needs an overdue row). Idempotent: an org that already has gap remediation rows is left alone. Runs after the
compliance registers and automations demos (it looks up their playbooks and services by name; missing ones are
simply not linked)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from zentro.audit.service import record
from zentro.automations.models import Playbook
from zentro.compliance import attestations as att
from zentro.compliance.catalog import load_catalog
from zentro.compliance.demo_registers import _people
from zentro.compliance.gap_tracking import TRACKING_TAGS
from zentro.compliance.models import GapRemediation, Policy
from zentro.extensions import db
from zentro.platform.types import iso, utcnow
from zentro.reliability.models import Service

DAY = dt.timedelta(days=1)
POLICY_NAME = "Edge blocks during abuse incidents"


def seed_program(org_id: int, now: dt.datetime | None = None) -> list[str]:
    now = now or utcnow()
    if db.session.scalar(select(GapRemediation.id).where(GapRemediation.org_id == org_id).limit(1)):
        return ["Gap remediations already seeded (nothing duplicated)."]
    (admin_id, admin), (member_id, member) = _people(org_id)
    playbooks = {n: i for i, n in db.session.execute(select(Playbook.id, Playbook.name)
                                                     .where(Playbook.org_id == org_id))}
    runbooks = {n: u for n, u in db.session.execute(select(Service.name, Service.runbook_url)
                                                    .where(Service.org_id == org_id)) if u}
    catalog = load_catalog()
    done: list[str] = []

    if not db.session.scalar(select(Policy.id).where(Policy.org_id == org_id, Policy.name == POLICY_NAME)):
        pol = att.create_policy(org_id, name=POLICY_NAME, actor=member, now=now - 20 * DAY,
                                description="On-call may block an abusive address range at the api-gateway edge during "
                                            "an incident without a change ticket; the block is recorded and reviewed.",
                                control_tags=["SOC2:CC6.6", "ISO27001:A.8.20"], actions=["block_address:api-gateway"])
        att.transition_policy(org_id, pol.id, "review", user_id=member_id, actor=member, now=now - 19 * DAY)
        att.transition_policy(org_id, pol.id, "accepted", user_id=admin_id, actor=admin, now=now - 18 * DAY)
        done.append(f"Policy '{POLICY_NAME}' accepted (allows the api-gateway edge block playbook).")

    # (control, status, owner, playbook name, runbook service, created days ago, due in days, closed days ago, note)
    specs = [
        ("SOC2:CC7.4", "in_progress", member_id, "Restart api-gateway pods", "api-gateway", 21, 9, None,
         "Run the restart playbook in the next game day and attach the timeline as evidence."),
        ("ISO27001:A.8.8", "open", admin_id, "Payments: disable the new pool and roll back", "payments-api", 30, -4,
         None, "Patch cadence for payments-api: roll back the vulnerable pool build, then re-deploy the fix."),
        ("PCIDSS:11.3", "open", None, None, None, 6, 25, None, "Quarterly internal scan not yet scheduled."),
        ("SOC2:CC6.6", "done", admin_id, "Block an abusive range at the edge", "api-gateway", 40, None, 12,
         "Edge block rules reviewed; awaiting the next access log review as evidence."),
        ("ISO27001:A.8.13", "done", member_id, None, "search-service", 35, None, 4,
         "Backup restore test completed for the search index."),
        ("ISO27001:A.5.30", "wont_fix", admin_id, None, None, 50, None, 20,
         "ICT continuity covered by the cloud provider's inherited controls; risk accepted by the CISO."),
    ]
    made = 0
    for control, status, owner_id, pb, svc, created, due, closed, note in specs:
        if not catalog.has(control):
            continue
        at = now - created * DAY
        row = GapRemediation(org_id=org_id, control=control, status=status, owner_id=owner_id,
                             playbook_id=playbooks.get(pb) if pb else None, runbook_url=runbooks.get(svc, "") if svc else "",
                             due_at=now + due * DAY if due is not None else None, note=note, created_at=at,
                             updated_at=now - closed * DAY if closed is not None else at,
                             closed_at=now - closed * DAY if closed is not None else None)
        db.session.add(row)
        db.session.flush()
        record(org_id, "gap_remediation.created", admin, target_type="gap_remediation", target_id=row.id,
               control_tags=TRACKING_TAGS, now=at,
               data={"control": control, "status": "open" if closed is not None else status, "owner_id": owner_id,
                     "playbook_id": row.playbook_id, "runbook_url": row.runbook_url, "due_at": iso(row.due_at),
                     "note": note})
        if closed is not None:
            record(org_id, "gap_remediation.updated", admin, target_type="gap_remediation", target_id=row.id,
                   control_tags=TRACKING_TAGS, now=row.closed_at,
                   data={"control": control, "changes": {"status": status}, "closed_at": iso(row.closed_at)})
        made += 1
    done.append(f"Gap remediations: {made} rows (in progress, open with one overdue, two done, one won't fix).")
    return done
