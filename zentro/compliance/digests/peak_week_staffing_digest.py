"""Peak-week staffing digest: weekly (Monday 08:00 UTC) to the committee, the forecast weeks where a capacity
shortfall coincides with an owner load imbalance (preview: the ``peak-week-staffing-digest`` report)."""
from __future__ import annotations

from zentro.compliance.digests import digest, empty_when_zero


DIGEST = digest(
    "peak-week-staffing-digest",
    title="Peak-week staffing digest",
    cron_secret="ZENTRO_PEAK_WEEK_STAFFING_DIGEST_CRON_SECRET",
    schedule="0 8 * * 1",
    period="week",
    channels=("email", "slack", "webhook"),
    recipients="committee",
    is_empty=empty_when_zero("coincident_weeks"),
)
