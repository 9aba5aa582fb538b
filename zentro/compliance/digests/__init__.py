"""The digest registry: a digest is declared once (one small module per digest in this package) and shared
code gives it everything else.

A declaration names the digest's preview report (a ``@report`` of the same slug in ``zentro.compliance.reports``,
so ``GET /api/governance/compliance/<slug>`` and the in-app report page come from the report registry), who it goes
to, over which channels, its cron secret, its default schedule and its idempotency period. From it:

- ``digests_api`` serves ``POST /api/governance/compliance/<slug>`` (owner/admin: deliver now) and
  ``POST …/<slug>/scheduled`` (Bearer ``<cron_secret>``; unset secret → 404);
- ``zentro.jobs`` registers a scheduler job ``digest:<slug>`` that runs ``run_due`` every minute on the leader;
- ``deliver`` is the one delivery path all three use.

Delivery is idempotent per (digest, org, period): the run is claimed by inserting a ``DigestRun`` whose
``claim_key`` is the period key, under a unique constraint, and committed *before* anything is sent. A retried
job, a second worker or a manual POST in the same period finds the claim and sends nothing (outcome
``already_delivered``, naming the run that did). ``force=True`` claims a key of its own and sends again. A run
that fails before anything went out gives its period back; one that fails after sending keeps it (a retry
would send twice).
"""
from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from zentro.accounts.models import Membership, Org, Role, User
from zentro.audit.service import Actor, record
from zentro.compliance import report_registry
from zentro.compliance.reporting import Report, json_value
from zentro.extensions import db
from zentro.notify import schedules
from zentro.notify.models import CHANNELS, Delivery, DigestRun, DigestSchedule, DigestSnapshot
from zentro.platform.types import utcnow

log = logging.getLogger(__name__)

PERIODS = ("day", "week", "month", "quarter")
TRIGGERS = ("manual", "cron", "schedule", "cli", "chain")
SCHEDULER_ACTOR = Actor("system", "", "digest scheduler")
CRON_ACTOR = Actor("system", "", "digest cron entrypoint")
SUCCESS = ("sent", "queued")

Recipients = str | Callable[[int, Report], list[str]]


@dataclass
class Digest:
    slug: str
    title: str
    cron_secret: str
    schedule: str  # default 5-field cron (UTC)
    period: str
    channels: tuple[str, ...]
    recipients: Recipients
    is_empty: Callable[[Report], bool] | None = None
    after: Callable[["DigestContext"], None] | None = None
    chain: tuple[str, ...] = ()

    @property
    def report(self) -> report_registry.ReportDef:
        return report_registry.get(self.slug)

    @property
    def endpoint(self) -> str:
        return self.slug.replace("-", "_")

    @property
    def event_type(self) -> str:
        return f"digest.{self.slug}"

    def channels_for(self, schedule: DigestSchedule | None, override=None) -> list[str]:
        """The channels a delivery uses: ``override`` (a POST's ``channels``), else the org's schedule choice,
        else the digest's own; always within the digest's channels, in CHANNELS order."""
        chosen = override or (schedule.channels if schedule is not None else None) or self.channels
        return [c for c in CHANNELS if c in chosen and c in self.channels]


DIGESTS: dict[str, Digest] = {}


def digest(slug: str, *, title: str, cron_secret: str, schedule: str, period: str,
           channels: tuple[str, ...] = CHANNELS, recipients: Recipients = "admins",
           is_empty: Callable[[Report], bool] | None = None, after: Callable[["DigestContext"], None] | None = None,
           chain: tuple[str, ...] = ()) -> Digest:
    """Declare a digest (see the module docstring)."""
    if period not in PERIODS:
        raise ValueError(f"digest {slug}: period must be one of {PERIODS}")
    bad = [c for c in channels if c not in CHANNELS]
    if bad or not channels:
        raise ValueError(f"digest {slug}: unknown channels {bad}")
    if isinstance(recipients, str) and recipients not in RECIPIENT_RULES:
        raise ValueError(f"digest {slug}: recipients must be one of {tuple(RECIPIENT_RULES)} or a callable")
    if not cron_secret.startswith("ZENTRO_") or not cron_secret.endswith("_CRON_SECRET"):
        raise ValueError(f"digest {slug}: cron secret {cron_secret!r} is not a ZENTRO_*_CRON_SECRET name")
    d = Digest(slug, title, cron_secret, schedule, period, tuple(channels), recipients, is_empty, after, tuple(chain))
    if slug in DIGESTS and DIGESTS[slug] != d:
        raise ValueError(f"digest {slug} declared twice")
    DIGESTS[slug] = d
    return d


def discover() -> dict[str, Digest]:
    """Import every digest module of this package (each declares one) and return the registry."""
    import zentro.compliance.digests as pkg

    report_registry.import_modules(pkg)
    return DIGESTS


def get(slug: str) -> Digest:
    discover()
    return DIGESTS[slug]


# --- periods ------------------------------------------------------------------------------------------------

def period_key(period: str, now: dt.datetime) -> str:
    """The idempotency period ``now`` falls in (UTC): 2026-11-26, 2026-W48, 2026-11 or 2026-Q4."""
    now = now.astimezone(dt.timezone.utc)
    if period == "day":
        return now.date().isoformat()
    if period == "week":
        year, week, _ = now.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{now.year}-{now.month:02d}"
    if period == "quarter":
        return f"{now.year}-Q{(now.month - 1) // 3 + 1}"
    raise ValueError(period)


# --- recipients ---------------------------------------------------------------------------------------------

def admin_emails(org_id: int) -> list[str]:
    """E-mails of the org's owners and admins, sorted."""
    rows = db.session.scalars(select(User.email).join(Membership, Membership.user_id == User.id).where(
        Membership.org_id == org_id, Membership.role.in_([Role.owner.value, Role.admin.value]),
        User.is_active.is_(True)))
    return sorted({e for e in rows if e})


def committee_emails(org_id: int) -> list[str]:
    """The committee: its escalation e-mails (committee settings) and the org's owners and admins."""
    from zentro.compliance.obligations import committee_config

    return sorted(set(committee_config(org_id).escalation_emails) | set(admin_emails(org_id)))


RECIPIENT_RULES: dict[str, Callable[[int, Report], list[str]]] = {
    "admins": lambda org_id, report: admin_emails(org_id),
    "committee": lambda org_id, report: committee_emails(org_id),
}


def emails_in(sections: str | tuple[str, ...], column: str, *, also: str | None = None
              ) -> Callable[[int, Report], list[str]]:
    """A recipients rule: the e-mail addresses in ``column`` of the rows of the report's ``sections`` (e.g. the
    owners of the items the digest lists), plus the people of the rule ``also`` ("admins" or "committee")."""
    keys = (sections,) if isinstance(sections, str) else tuple(sections)
    if also is not None and also not in RECIPIENT_RULES:
        raise ValueError(f"also must be one of {tuple(RECIPIENT_RULES)}")

    def rule(org_id: int, report: Report) -> list[str]:
        found: set[str] = set()
        for key in keys:
            for row in report.section(key).iter_rows():
                value = row.get(column)
                for item in value if isinstance(value, (list, tuple, set)) else [value]:
                    if isinstance(item, str) and "@" in item:
                        found.add(item.strip().lower())
        if also is not None:
            found |= set(RECIPIENT_RULES[also](org_id, report))
        return sorted(found)

    return rule


def empty_when_zero(*figures: str) -> Callable[[Report], bool]:
    """An ``is_empty`` rule: nothing to send when every one of these summary figures is zero (or empty)."""
    if not figures:
        raise ValueError("name at least one summary figure")

    def is_empty(report: Report) -> bool:
        return not any(report.summary[f] for f in figures)

    return is_empty


def recipients_of(d: Digest, org_id: int, report: Report) -> list[str]:
    rule = RECIPIENT_RULES[d.recipients] if isinstance(d.recipients, str) else d.recipients
    return sorted({e.strip() for e in rule(org_id, report) if e and e.strip()})


# --- state of stateful digests ------------------------------------------------------------------------------

def last_snapshot(org_id: int, slug: str) -> DigestSnapshot | None:
    """The org's most recent snapshot of ``slug`` (None before the first delivery)."""
    return db.session.scalar(select(DigestSnapshot).where(
        DigestSnapshot.org_id == org_id, DigestSnapshot.digest == slug)
        .order_by(DigestSnapshot.created_at.desc(), DigestSnapshot.id.desc()).limit(1))


def save_snapshot(org_id: int, slug: str, data: dict, *, run_id: int | None = None,
                  now: dt.datetime | None = None) -> DigestSnapshot:
    row = DigestSnapshot(org_id=org_id, digest=slug, data=data, run_id=run_id, created_at=now or utcnow())
    db.session.add(row)
    db.session.flush()
    return row


# --- delivery -----------------------------------------------------------------------------------------------

@dataclass
class DigestContext:
    """What an ``after`` hook sees: the delivered report, the run and its deliveries."""
    org_id: int
    now: dt.datetime
    report: Report
    run: DigestRun
    deliveries: list[Delivery]
    params: dict[str, Any]


@dataclass
class RunResult:
    digest: str
    org_id: int
    period: str
    outcome: str  # delivered | partial | not_sent | nothing_to_send | failed | already_delivered
    detail: str
    run: DigestRun | None
    deliveries: list[Delivery] = field(default_factory=list)
    forced: bool = False
    parts: list["RunResult"] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "digest": self.digest, "orgId": self.org_id, "period": self.period, "outcome": self.outcome,
            "detail": self.detail, "forced": self.forced, "runId": self.run.id if self.run else None,
            "trigger": self.run.trigger if self.run else None,
            "runAt": json_value(self.run.created_at) if self.run else None,
            "deliveries": [delivery_json(x) for x in self.deliveries],
            "parts": [p.to_json() for p in self.parts],
        }


def delivery_json(x: Delivery) -> dict:
    return {"id": x.id, "channel": x.channel, "target": x.target, "recipients": list(x.recipients or []),
            "status": x.status, "attempts": x.attempts, "error": x.error}


def _outcome(deliveries: list[Delivery]) -> str:
    ok = sum(1 for x in deliveries if x.status in SUCCESS)
    if deliveries and ok == len(deliveries):
        return "delivered"
    if ok:
        return "partial"
    if any(x.status == "failed" for x in deliveries):
        return "failed"
    return "not_sent"


def _claim(d: Digest, org_id: int, key: str, *, now: dt.datetime, trigger: str, actor: Actor,
           force: bool) -> DigestRun | None:
    """Insert and commit the run's claim; None when the period is already claimed (and not forced)."""
    claim = f"{key}#forced-{secrets.token_hex(6)}" if force else key
    run = DigestRun(org_id=org_id, digest=d.slug, period_key=key, claim_key=claim, trigger=trigger, forced=force,
                    actor=(actor.label or actor.type)[:200], status="running", created_at=now)
    db.session.add(run)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    return run


def _already(d: Digest, org_id: int, key: str) -> RunResult:
    run = db.session.scalar(select(DigestRun).where(
        DigestRun.org_id == org_id, DigestRun.digest == d.slug, DigestRun.claim_key == key))
    deliveries = list(db.session.scalars(select(Delivery).where(Delivery.run_id == run.id)
                                         .order_by(Delivery.id))) if run else []
    when = json_value(run.created_at) if run else "?"
    detail = (f"Already delivered for period {key} (run {run.id if run else '?'} at {when}, {run.status if run else '?'}, "
              f"{run.trigger if run else '?'}); nothing was sent. Send with force to deliver again.")
    return RunResult(d.slug, org_id, key, "already_delivered", detail, run, deliveries)


def preview_link(slug: str) -> str:
    from flask import current_app

    base = (current_app.config.get("ZENTRO_PUBLIC_URL") or "").rstrip("/")
    return f"{base}/compliance/reports/{slug}" if base else ""


def deliver(slug: str, org_id: int, *, now: dt.datetime | None = None, trigger: str = "manual",
            actor: Actor = SCHEDULER_ACTOR, force: bool = False, params: dict | None = None,
            channels: list[str] | tuple[str, ...] | None = None) -> RunResult:
    """Deliver ``slug`` to ``org_id`` for the period ``now`` falls in (see the module docstring).

    ``params`` are the preview report's query fields (None: the org's schedule options); ``channels`` narrows the
    channels for this delivery (None: the org's schedule choice, else the digest's channels)."""
    d = get(slug)
    now = now or utcnow()
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}")
    schedule = schedules.schedule_row(org_id, slug)
    if params is None:
        params = dict(schedule.options or {}) if schedule else {}
    if d.chain:
        return _deliver_chain(d, org_id, now=now, trigger=trigger, actor=actor, force=force, channels=channels)
    key = period_key(d.period, now)
    run = _claim(d, org_id, key, now=now, trigger=trigger, actor=actor, force=force)
    if run is None:
        return _already(d, org_id, key)
    sent_any = False
    try:
        report = report_registry.build(slug, org_id, now, **params)
        summary = {k: json_value(v) for k, v in report.summary.items()}
        if d.is_empty is not None and d.is_empty(report):
            run.status, run.summary, run.finished_at = "nothing_to_send", summary, now
            _audit(org_id, actor, run, "nothing_to_send", now)
            db.session.commit()
            return RunResult(slug, org_id, key, "nothing_to_send",
                             f"Nothing to send for period {key}: the digest is empty. The run is recorded.", run,
                             forced=force)
        deliveries = _send(d, org_id, report, run, key, now=now, schedule=schedule, channels=channels)
        sent_any = any(x.status in SUCCESS for x in deliveries)
        if d.after is not None:
            d.after(DigestContext(org_id, now, report, run, deliveries, dict(params)))
        outcome = _outcome(deliveries)
        run.status, run.summary, run.finished_at = outcome, summary, now
        _audit(org_id, actor, run, outcome, now)
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        log.exception("digest %s for org %s failed", slug, org_id)
        run = db.session.get(DigestRun, run.id)
        run.status, run.finished_at = "failed", now
        run.summary = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        if not sent_any:  # nothing went out: give the period back so a retry can deliver it
            run.claim_key = f"{key}#failed-{run.id}"
        db.session.commit()
        return RunResult(slug, org_id, key, "failed", f"The digest failed: {type(exc).__name__}: {exc}"[:500], run,
                         forced=force)
    counts = ", ".join(f"{x.channel} {x.status.replace('_', ' ')}"
                       + (f" ({x.error.rstrip('.')})" if x.error and x.status != "sent" else "") for x in deliveries)
    return RunResult(slug, org_id, key, outcome, f"{d.title} for period {key}: {counts or 'no channel chosen'}.",
                     run, deliveries, forced=force)


def _send(d: Digest, org_id: int, report: Report, run: DigestRun, key: str, *, now: dt.datetime,
          schedule: DigestSchedule | None, channels) -> list[Delivery]:
    from zentro.notify import channels as transport
    from zentro.notify import messages, outbox

    org = db.session.get(Org, org_id)
    message = messages.from_report(report, org_name=org.name, period=key, link=preview_link(d.slug))
    out: list[Delivery] = []
    for channel in d.channels_for(schedule, channels):
        if channel == "email":
            out.append(transport.send_email(org_id, recipients_of(d, org_id, report), message, source=d.slug,
                                            run_id=run.id, now=now))
        elif channel == "slack":
            out.append(transport.send_slack(org_id, schedule.slack_channel if schedule else "", message,
                                            source=d.slug, run_id=run.id, now=now))
        elif channel == "webhook":
            queued = outbox.enqueue_event(org_id, d.event_type, message.data, source=d.slug, run_id=run.id, now=now)
            if not queued:
                queued = [transport.record_delivery(
                    org_id, channel="webhook", source=d.slug, run_id=run.id, target="", recipients=[],
                    subject=message.subject, status="not_sent", attempts=0, now=now,
                    error=f"No enabled webhook endpoint subscribes to {d.event_type}.")]
            out.extend(queued)
    return out


def _deliver_chain(d: Digest, org_id: int, *, now: dt.datetime, trigger: str, actor: Actor, force: bool,
                   channels) -> RunResult:
    key = period_key(d.period, now)
    run = _claim(d, org_id, key, now=now, trigger=trigger, actor=actor, force=force)
    if run is None:
        return _already(d, org_id, key)
    parts = [deliver(part, org_id, now=now, trigger="chain", actor=actor, force=force, channels=channels)
             for part in d.chain]
    run = db.session.get(DigestRun, run.id)
    outcomes = [p.outcome for p in parts]
    run.status = ("failed" if "failed" in outcomes else
                  "delivered" if any(o in ("delivered", "partial") for o in outcomes) else
                  "nothing_to_send" if all(o in ("nothing_to_send", "already_delivered") for o in outcomes)
                  else "not_sent")
    run.summary = {p.digest: p.outcome for p in parts}
    run.finished_at = now
    _audit(org_id, actor, run, run.status, now)
    db.session.commit()
    detail = "; ".join(f"{p.digest}: {p.outcome}" for p in parts)
    return RunResult(d.slug, org_id, key, run.status, f"{d.title} for period {key} ran in order: {detail}.", run,
                     forced=force, parts=parts)


def _audit(org_id: int, actor: Actor, run: DigestRun, outcome: str, now: dt.datetime) -> None:
    record(org_id, "digest.delivered", actor, target_type="digest_run", target_id=run.id, now=now,
           data={"digest": run.digest, "period": run.period_key, "outcome": outcome, "forced": run.forced,
                 "trigger": run.trigger})


def run_due(slug: str, now: dt.datetime | None = None) -> list[RunResult]:
    """Deliver ``slug`` to every org whose schedule for it is due (the scheduler job ``digest:<slug>``).
    One org's failure is recorded on its run and does not stop the others."""
    now = now or utcnow()
    results = []
    for row in schedules.due(slug, now):
        org_id = row.org_id
        try:
            results.append(deliver(slug, org_id, now=now, trigger="schedule", actor=SCHEDULER_ACTOR))
        except Exception:  # noqa: BLE001  (bad stored options, ...): logged, the schedule still moves on
            db.session.rollback()
            log.exception("scheduled digest %s for org %s failed", slug, org_id)
        row = schedules.schedule_row(org_id, slug)
        if row is not None:
            schedules.mark_ran(row, now)
            db.session.commit()
    return results
