"""Regulatory mapping change digest (``mapping-digest``): daily to the org's owners and admins (e-mail, and webhook
endpoints that subscribe) when the catalog or crosswalk changed since the org's last snapshot; the first delivery
records the baseline. An unchanged mapping is an empty digest: nothing is sent, nothing is saved."""
from __future__ import annotations

from zentro.compliance.digests import DigestContext, digest, save_snapshot
from zentro.compliance.reporting import Report
from zentro.compliance.reports import mapping_digest as preview


def is_empty(report: Report) -> bool:
    return report.summary["status"] == preview.UNCHANGED


def _save(ctx: DigestContext) -> None:
    if ctx.report.summary["status"] != preview.UNCHANGED:
        save_snapshot(ctx.org_id, preview.SLUG, preview.current_snapshot(), run_id=ctx.run.id, now=ctx.now)


DIGEST = digest(
    preview.SLUG,
    title="Regulatory mapping change digest",
    cron_secret="ZENTRO_MAPPING_DIGEST_CRON_SECRET",
    schedule="0 6 * * *",
    period="day",
    channels=("email", "webhook"),
    recipients="admins",
    is_empty=is_empty,
    after=_save,
)
