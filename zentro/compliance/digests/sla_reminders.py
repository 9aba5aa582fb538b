"""Compliance SLA reminders (``sla-reminders``): daily to the owners of the attestations due soon or overdue and
of the regressed controls, plus the org's owners and admins; nothing is sent when there is no candidate."""
from __future__ import annotations

from zentro.compliance.digests import digest, emails_in, empty_when_zero
from zentro.compliance.reports import sla_reminders as preview

CANDIDATE_SECTIONS = ("due_soon", "overdue", "regressed")


DIGEST = digest(
    preview.SLUG,
    title="Compliance SLA reminders",
    cron_secret="ZENTRO_SLA_CRON_SECRET",
    schedule=preview.DEFAULT_SCHEDULE,
    period="day",
    channels=preview.DEFAULT_CHANNELS,
    recipients=emails_in(CANDIDATE_SECTIONS, "owner", also="admins"),
    is_empty=empty_when_zero("candidates"),
)
