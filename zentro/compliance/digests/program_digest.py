"""The compliance program digest (``digest``): weekly to the org's owners and admins; each delivery saves the
snapshot the next one compares with (readiness per framework, gaps, overdue attestation ids)."""
from __future__ import annotations

from zentro.compliance.digests import DigestContext, digest, save_snapshot
from zentro.compliance.reports import program_digest as preview


def _save(ctx: DigestContext) -> None:
    save_snapshot(ctx.org_id, preview.SLUG, preview.snapshot_data(ctx.report), run_id=ctx.run.id, now=ctx.now)


DIGEST = digest(
    preview.SLUG,
    title="Compliance program digest",
    cron_secret="ZENTRO_DIGEST_CRON_SECRET",
    schedule="0 8 * * 1",
    period="week",
    channels=("email", "slack", "webhook"),
    recipients="admins",
    after=_save,
)
