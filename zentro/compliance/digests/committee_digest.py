"""Quarterly obligation committee digest: on the first day of each quarter (08:00 UTC), the obligation forecast,
the crossover clusters and the staffing SLA rollup to the committee by e-mail and, where an endpoint subscribes,
webhook (preview: the ``committee-digest`` report)."""
from __future__ import annotations

from zentro.compliance.digests import digest

DIGEST = digest(
    "committee-digest",
    title="Quarterly obligation committee digest",
    cron_secret="ZENTRO_OBLIGATION_COMMITTEE_DIGEST_CRON_SECRET",
    schedule="0 8 1 1,4,7,10 *",
    period="quarter",
    channels=("email", "webhook"),
    recipients="committee",
)
