"""Attestation renewal nudges (``attestation-renewal``): weekly e-mail to the control owners of the current renewal
waves (overdue and due within 30 days); when one of those renewals has no owner, the org's owners and admins get it
too (someone has to assign it). Nothing is sent when the current waves are empty."""
from __future__ import annotations

from zentro.compliance.digests import admin_emails, digest, empty_when_zero
from zentro.compliance.reporting import Report
from zentro.compliance.reports import attestation_renewal as preview


def recipients(org_id: int, report: Report) -> list[str]:
    rows = list(report.section("owners").iter_rows())
    found = {str(r["owner"]).strip().lower() for r in rows if r["owner"] != preview.UNASSIGNED and r["owner"]}
    if any(r["owner"] == preview.UNASSIGNED for r in rows):
        found |= set(admin_emails(org_id))
    return sorted(found)


DIGEST = digest(
    preview.SLUG,
    title="Attestation renewal calendar",
    cron_secret="ZENTRO_ATTESTATION_RENEWAL_CRON_SECRET",
    schedule="0 8 * * 1",
    period="week",
    channels=("email",),
    recipients=recipients,
    is_empty=empty_when_zero("current"),
)
