"""Staffing completion rollup: weekly (Friday 16:00 UTC) to the committee, completions of the week against the
completion SLA and what is open per owner (preview: the ``staffing-completion-rollup`` report). Always sent: a
week without completions is news too. Its sent e-mail is what the cross-staffing committee escalation measures
from."""
from __future__ import annotations

from zentro.compliance.digests import digest

DIGEST = digest(
    "staffing-completion-rollup",
    title="Staffing completion rollup",
    cron_secret="ZENTRO_STAFFING_COMPLETION_ROLLUP_CRON_SECRET",
    schedule="0 16 * * 5",
    period="week",
    channels=("email", "slack", "webhook"),
    recipients="committee",
)
