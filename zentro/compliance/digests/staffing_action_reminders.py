"""Staffing action reminders: daily (09:00 UTC), open staffing actions whose peak week is over, to the owners of
those actions and the org's owners and admins (preview: the ``staffing-action-reminders`` report)."""
from __future__ import annotations

from zentro.compliance.digests import digest, emails_in, empty_when_zero


DIGEST = digest(
    "staffing-action-reminders",
    title="Staffing action reminders",
    cron_secret="ZENTRO_STAFFING_OVERDUE_REMINDER_CRON_SECRET",
    schedule="0 9 * * *",
    period="day",
    channels=("email", "slack"),
    recipients=emails_in("reminders", "owner", also="admins"),
    is_empty=empty_when_zero("reminders"),
)
