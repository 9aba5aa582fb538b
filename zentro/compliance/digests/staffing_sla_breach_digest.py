"""Staffing SLA breach digest: daily (09:00 UTC), open staffing actions past the committee completion SLA, to the
committee and the owners of those actions (preview: the ``staffing-sla-breach-digest`` report)."""
from __future__ import annotations

from zentro.compliance.digests import digest, emails_in, empty_when_zero

DIGEST = digest(
    "staffing-sla-breach-digest",
    title="Staffing SLA breach digest",
    cron_secret="ZENTRO_STAFFING_SLA_BREACH_DIGEST_CRON_SECRET",
    schedule="0 9 * * *",
    period="day",
    channels=("email", "slack"),
    recipients=emails_in("breaches", "owner", also="committee"),
    is_empty=empty_when_zero("breaches"),
)
