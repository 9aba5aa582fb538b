"""Demo data for the evidence & testing reports, created through the services (so each change has its audit
event): six assessor evidence requests — one overdue, one due within the week, one later, two fulfilled (one on
time with the newest evidence bundle when there is one, one late with a file link) and one cancelled — plus the
test-to-bundle links for the dry-runs the newest bundle carries. Idempotent: an org that already has evidence
requests is left alone."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from zentro.compliance import evidence_requests as svc
from zentro.compliance.demo_registers import _people
from zentro.compliance.models import EvidenceBundle, EvidenceRequest
from zentro.extensions import db
from zentro.platform.types import utcnow

DAY = dt.timedelta(days=1)
ASSESSOR = "j.auditor@assessor.example"


def seed_evidence(org_id: int, now: dt.datetime | None = None) -> list[str]:
    now = now or utcnow()
    if db.session.scalar(select(EvidenceRequest.id).where(EvidenceRequest.org_id == org_id).limit(1)):
        return ["Evidence requests already seeded (nothing duplicated)."]
    (admin_id, admin), (member_id, member) = _people(org_id)
    newest_bundle = db.session.scalar(select(EvidenceBundle.id).where(EvidenceBundle.org_id == org_id)
                                      .order_by(EvidenceBundle.seq.desc()).limit(1))

    def ask(title, controls, asked_days_ago, due_in_days, owner_id, note=""):
        return svc.create(org_id, {"title": title, "controls": controls, "requestedBy": ASSESSOR, "ownerId": owner_id,
                                   "requestedAt": now - asked_days_ago * DAY, "dueAt": now + due_in_days * DAY,
                                   "note": note},
                          user_id=admin_id, actor=admin, now=now - asked_days_ago * DAY).id

    overdue = ask("Population of production access changes, last quarter", ["SOC2:CC6.2", "SOC2:CC6.3",
                                                                            "ISO27001:A.5.18"], 12, -3, member_id,
                  "Sample of 25 will be drawn from the population.")
    ask("Incident response tabletop evidence", ["SOC2:CC7.4", "SOC2:CC7.5", "ISO27001:A.5.24"], 6, 5, admin_id)
    ask("Vulnerability scan reports and remediation tickets", ["SOC2:CC7.1", "ISO27001:A.8.8"], 2, 20, member_id)
    on_time = ask("Change tickets with approvals for sampled deploys", ["SOC2:CC8.1", "ISO27001:A.8.32"], 30, -10,
                  member_id)
    late = ask("Backup restore test results", ["SOC2:A1.2", "ISO27001:A.8.13"], 40, -25, admin_id)
    withdrawn = ask("Physical access logs (office)", ["SOC2:CC6.4"], 20, 10, admin_id)

    fulfil_with = {"bundleId": newest_bundle} if newest_bundle else {
        "fileRef": "https://drive.example.com/assessor/change-tickets-q3.zip"}
    svc.fulfil(org_id, on_time, {**fulfil_with, "note": "Sampled deploys with their approvals and dry-run checks."},
               user_id=member_id, actor=member, now=now - 14 * DAY)
    svc.fulfil(org_id, late, {"fileRef": "https://drive.example.com/assessor/backup-restore-tests.pdf"},
               user_id=admin_id, actor=admin, now=now - 18 * DAY)
    svc.cancel(org_id, withdrawn, {"reason": "Out of scope: fully remote company, no office in the audit scope."},
               user_id=admin_id, actor=admin, now=now - 1 * DAY)
    out = [f"Evidence requests: 6 (overdue #{overdue}, fulfilled #{on_time} and #{late}, cancelled #{withdrawn})."]

    if newest_bundle:
        from zentro.compliance.reports.testing_evidence_linker import record_links

        result = record_links(org_id, actor=admin, window_days=90, bundle_id=newest_bundle, now=now)
        out.append(f"Test-to-bundle links recorded: {result['created']}.")
    return out
