"""Demo digest schedules: the demo org receives its program digest, SLA reminders, density alerts and the
quarterly committee digest. The program digest and the SLA reminders are due right away, so a freshly started
`make run` (scheduler on) delivers them within a minute and the delivery log shows what happened: without
ZENTRO_SMTP_URL and ZENTRO_SLACK_BOT_TOKEN each delivery is recorded as not sent, with the reason."""
from __future__ import annotations

import datetime as dt

from zentro.audit.service import Actor
from zentro.extensions import db
from zentro.notify import schedules
from zentro.notify.models import DigestSchedule
from zentro.platform.types import utcnow

DEMO_ACTOR = Actor("system", "", "demo data")
DEMO_SCHEDULES = {  # slug -> (channels, Slack channel, due right away)
    "digest": (["email", "slack"], "#compliance", True),
    "sla-reminders": (["email", "slack"], "#compliance", True),
    "obligation-density-alerts": (["email", "slack"], "#compliance-committee", False),
    "committee-digest": (["email"], "", False),
}


def seed_notifications(org_id: int, now: dt.datetime | None = None) -> None:
    """Enable the demo schedules once (an org that already has schedules is left as it is)."""
    now = now or utcnow()
    if db.session.get(DigestSchedule, (org_id, "digest")) is not None:
        return
    for slug, (channels, slack, right_away) in DEMO_SCHEDULES.items():
        changes = {"enabled": True, "channels": channels}
        if slack:
            changes["slackChannel"] = slack
        schedules.update_schedule(org_id, slug, changes, user_id=None, actor=DEMO_ACTOR, now=now)
        if right_away:
            db.session.get(DigestSchedule, (org_id, slug)).next_run_at = now
    db.session.commit()
