"""Staffing digest auto-chain: weekly (Friday 16:30 UTC), the staffing completion rollup, then the SLA breach
digest, then the cross-staffing committee escalation, each delivered as itself (own recipients, channels and
idempotency period), in that order (preview: the ``staffing-digest-auto-chain`` report)."""
from __future__ import annotations

from zentro.compliance.digests import digest

DIGEST = digest(
    "staffing-digest-auto-chain",
    title="Staffing digest auto-chain",
    cron_secret="ZENTRO_STAFFING_DIGEST_AUTO_CHAIN_CRON_SECRET",
    schedule="30 16 * * 5",
    period="week",
    channels=("email", "slack", "webhook"),
    recipients="committee",
    chain=("staffing-completion-rollup", "staffing-sla-breach-digest", "cross-staffing-committee-escalation"),
)
