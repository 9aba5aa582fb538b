"""Obligation density alerts (``obligation-density-alerts``): daily to the committee (escalation e-mails, owners
and admins) over e-mail, Slack and webhooks when a forecast week breaches the committee thresholds; each delivery
records one ``DensityAlert`` per breached week with the channels it went to and how each fared."""
from __future__ import annotations

from zentro.compliance.digests import DigestContext, digest, empty_when_zero
from zentro.compliance.models import DensityAlert
from zentro.compliance.reports import obligation_density_alerts as preview
from zentro.extensions import db


def _record(ctx: DigestContext) -> None:
    """One alert row per breached week, carrying every delivery's channel and status."""
    channels = [{"channel": x.channel, "status": x.status} for x in ctx.deliveries]
    for row in ctx.report.section("breaches").iter_rows():
        db.session.add(DensityAlert(org_id=ctx.org_id, week_start=row["week"], level=row["level"],
                                    density=row["density"], threshold=row["threshold"], channels=list(channels),
                                    created_at=ctx.now))
    db.session.flush()


DIGEST = digest(
    preview.SLUG,
    title="Obligation density alerts",
    cron_secret="ZENTRO_OBLIGATION_DENSITY_ALERT_CRON_SECRET",
    schedule="0 7 * * *",
    period="day",
    channels=("email", "slack", "webhook"),
    recipients="committee",
    is_empty=empty_when_zero("breached_weeks"),
    after=_record,
)
