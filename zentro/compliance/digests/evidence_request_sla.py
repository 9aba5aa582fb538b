"""Auditor evidence request SLA digest (``evidence-request-sla``): daily, by e-mail (and to webhook endpoints that
subscribe), to the owners of the overdue and at-risk requests and the org's owners and admins; nothing is sent when
no request is overdue or at risk."""
from __future__ import annotations

from zentro.compliance.digests import digest, emails_in, empty_when_zero
from zentro.compliance.reports import evidence_request_sla as preview


DIGEST = digest(
    preview.SLUG,
    title="Evidence request SLA digest",
    cron_secret="ZENTRO_EVIDENCE_REQUEST_SLA_CRON_SECRET",
    schedule="0 9 * * *",
    period="day",
    channels=("email", "webhook"),
    recipients=emails_in("owners", "owner", also="admins"),
    is_empty=empty_when_zero("overdue", "at_risk"),
)
