"""Cross-staffing committee escalation: weekly (Monday 09:00 UTC), staffing SLA breaches still open after the
last staffing completion rollup e-mail, to the committee: its escalation list (committee settings) and the org's
owners and admins (preview: the ``cross-staffing-committee-escalation`` report)."""
from __future__ import annotations

from zentro.compliance.digests import digest, empty_when_zero


DIGEST = digest(
    "cross-staffing-committee-escalation",
    title="Cross-staffing committee escalation",
    cron_secret="ZENTRO_CROSS_STAFFING_COMMITTEE_ESCALATION_CRON_SECRET",
    schedule="0 9 * * 1",
    period="week",
    channels=("email", "slack"),
    recipients="committee",
    is_empty=empty_when_zero("escalations"),
)
