"""Per-org digest schedules: whether an org receives each digest, when (a 5-field cron, UTC; empty = the digest's
default), over which channels (empty = the digest's), to which Slack channel and with which report options.

A ``DigestSchedule`` row exists once an admin saved something; until then the digest is off for the org and
shown with its defaults. ``next_run_at`` is computed when a schedule is enabled or its cron changes, and moved on
by ``mark_ran`` after each scheduled run; the scheduler job ``digest:<slug>`` asks ``due`` which orgs to deliver
to (``zentro.compliance.digests.run_due``). Service functions take the org explicitly and commit.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, select

from zentro.audit.service import Actor, lock_org, record
from zentro.extensions import db
from zentro.notify.models import CHANNELS, DigestRun, DigestSchedule
from zentro.platform.errors import ApiError, not_found
from zentro.platform.scheduler import describe_cron, next_cron_fire
from zentro.platform.types import iso, utcnow

log = logging.getLogger(__name__)
MAX_OPTIONS = 20  # keys in a schedule's options (they are a report's query fields: a handful at most)
SLACK_CHANNEL_PATTERN = r"^(#?[A-Za-z0-9][A-Za-z0-9._-]{0,78})?$"  # a name (#compliance) or an id (C0123ABCD)


class ScheduleIn(BaseModel):
    """PUT /api/v1/digests/{slug}/schedule. Fields left out keep their stored value (or the default)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    enabled: bool | None = Field(None, description="Deliver this digest to the organisation on its schedule.")
    cron: str | None = Field(None, max_length=100,
                             description="Five-field cron (minute hour day month day-of-week; 0 or 7 = Sunday), in "
                                         "UTC. Empty: the digest's default schedule.")
    channels: list[Literal["email", "slack", "webhook"]] | None = Field(
        None, max_length=3, description="Channels to deliver over, a subset of the digest's. Empty: the digest's "
                                        "channels.")
    slackChannel: str | None = Field(None, max_length=80, pattern=SLACK_CHANNEL_PATTERN,
                                     description="Slack channel name (#compliance) or id for this digest. Empty: "
                                                 "Slack deliveries are recorded as not sent.")
    options: dict[str, Any] | None = Field(None, description="The digest's report options (its preview report's "
                                                             "query fields, e.g. dueSoonDays).")

    @field_validator("options")
    @classmethod
    def _options(cls, value: dict | None) -> dict | None:
        if value is not None and len(value) > MAX_OPTIONS:
            raise ValueError(f"at most {MAX_OPTIONS} options")
        return value


FIELD_HELP = {
    "enabled": "enabled is true or false.",
    "cron": "cron is a five-field expression of at most 100 characters (minute hour day month day-of-week, UTC).",
    "channels": "channels is a list of email, slack and webhook, each at most once.",
    "slackChannel": "A Slack channel is a name such as #compliance or an id such as C0123ABCD.",
    "options": f"options is an object of at most {MAX_OPTIONS} of the digest's report options.",
}


def bad_input(detail: str, field_name: str | None = None) -> ApiError:
    errors = [{"loc": [field_name], "msg": detail, "type": "value_error"}] if field_name else None
    return ApiError(400, detail, errors=errors)


def _error_list(exc: ValidationError, prefix: str = "") -> list[dict]:
    return [{"loc": ([prefix] if prefix else []) + [str(x) for x in e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)]


# --- the digests ---------------------------------------------------------------------------------------

def digests() -> dict:
    """slug → Digest, every declared digest (the compliance digest registry)."""
    from zentro.compliance.digests import discover

    return discover()


def get_digest(slug: str):
    d = digests().get(slug)
    if d is None:
        raise not_found("Digest")
    return d


# --- cron ----------------------------------------------------------------------------------------------

def next_fire(cron: str, after: dt.datetime) -> dt.datetime:
    """When ``cron`` (5 fields, UTC, standard day-of-week numbering) next fires strictly after ``after``."""
    return next_cron_fire(cron, after)


def check_cron(cron: str) -> str:
    """The expression, normalised to single spaces; 400 naming what is wrong otherwise."""
    cron = " ".join(cron.split())
    try:
        next_cron_fire(cron, utcnow())
    except ValueError as exc:
        raise bad_input(str(exc), "cron") from None
    return cron


def effective_cron(row: DigestSchedule | None, digest) -> str:
    return (row.cron if row is not None and row.cron else "") or digest.schedule


# --- reading -------------------------------------------------------------------------------------------

def schedule_row(org_id: int, slug: str) -> DigestSchedule | None:
    """The org's saved schedule of ``slug`` (None: nothing saved, the digest's defaults, off)."""
    return db.session.get(DigestSchedule, (org_id, slug))


def _last_runs(org_id: int) -> dict[str, DigestRun]:
    latest = (select(DigestRun.digest, func.max(DigestRun.id).label("id"))
              .where(DigestRun.org_id == org_id).group_by(DigestRun.digest).subquery())
    return {r.digest: r for r in db.session.scalars(select(DigestRun).join(latest, DigestRun.id == latest.c.id))}


def _preview(digest) -> dict:
    """Where to look at the digest before it goes out: the printable HTML report when the report has one, the
    in-app report page otherwise."""
    from zentro.compliance import report_registry

    try:
        formats = report_registry.get(digest.slug).formats
    except KeyError:
        formats = ()
    html = "html" in formats
    return {"previewUrl": f"/api/governance/compliance/{digest.slug}?format=html" if html
            else f"/compliance/reports/{digest.slug}", "previewKind": "html" if html else "page",
            "reportUrl": f"/compliance/reports/{digest.slug}"}


def schedule_json(digest, row: DigestSchedule | None, last: DigestRun | None) -> dict:
    cron = effective_cron(row, digest)
    return {
        "slug": digest.slug,
        "title": digest.title,
        "period": digest.period,
        "defaultSchedule": digest.schedule,
        "defaultScheduleText": describe_cron(digest.schedule),
        "availableChannels": list(digest.channels),
        "enabled": bool(row.enabled) if row is not None else False,
        "cron": row.cron if row is not None else "",
        "schedule": cron,
        "scheduleText": describe_cron(cron),
        "channels": list(row.channels or []) if row is not None else [],
        "effectiveChannels": digest.channels_for(row),
        "slackChannel": row.slack_channel if row is not None else "",
        "options": dict(row.options or {}) if row is not None else {},
        "nextRunAt": iso(row.next_run_at) if row is not None and row.enabled and row.next_run_at else None,
        "lastRunAt": iso(row.last_run_at) if row is not None and row.last_run_at else None,
        "lastRun": None if last is None else {
            "id": last.id, "status": last.status, "trigger": last.trigger, "period": last.period_key,
            "forced": last.forced, "at": iso(last.created_at),
            "finishedAt": iso(last.finished_at) if last.finished_at else None},
        "updatedAt": iso(row.updated_at) if row is not None and row.updated_at else None,
        **_preview(digest),
    }


def list_schedules(org_id: int) -> list[dict]:
    """Every digest with the org's schedule merged in (defaults where nothing is saved) and its last run."""
    rows = {r.digest: r for r in db.session.scalars(select(DigestSchedule).where(DigestSchedule.org_id == org_id))}
    last = _last_runs(org_id)
    return [schedule_json(d, rows.get(slug), last.get(slug)) for slug, d in sorted(digests().items())]


def get_schedule(org_id: int, slug: str) -> dict:
    d = get_digest(slug)
    return schedule_json(d, schedule_row(org_id, slug), _last_runs(org_id).get(slug))


# --- changing ------------------------------------------------------------------------------------------

def validate_options(digest, options: dict) -> dict:
    """A digest's options are its preview report's query fields: checked against that report's query model
    (unknown or out-of-range fields: 400). A digest may bring its own ``validate_options(dict) -> dict``."""
    own = getattr(digest, "validate_options", None)
    try:
        if callable(own):
            return dict(own(options))
        from zentro.compliance import report_registry

        try:
            query = report_registry.get(digest.slug).query
        except KeyError:
            if options:
                raise bad_input(f"Digest {digest.slug} takes no options.", "options") from None
            return {}
        parsed = query.model_validate(options)
        return parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "options"
        raise ApiError(400, f"Invalid option for digest {digest.slug}: {where}: "
                            f"{first['msg'].removeprefix('Value error, ')}",
                       errors=_error_list(exc, "options")) from None
    except (ValueError, TypeError) as exc:
        raise bad_input(f"Invalid options for digest {digest.slug}: {exc}", "options") from None


def update_schedule(org_id: int, slug: str, changes: dict, *, user_id: int | None, actor: Actor,
                    now: dt.datetime | None = None) -> dict:
    """Apply ``changes`` (ScheduleIn field names; absent = keep) to the org's schedule of ``slug`` and return
    ``get_schedule``. Enabling, or changing the cron of an enabled schedule, computes ``next_run_at`` from now;
    disabling clears it. Unknown digest: 404; bad cron, channel or option: 400 and nothing changes. Audited."""
    now = now or utcnow()
    d = get_digest(slug)
    try:
        data = ScheduleIn.model_validate(changes)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "body"
        detail = FIELD_HELP.get(name) or f"Invalid {name}: {first['msg'].removeprefix('Value error, ')}"
        raise ApiError(400, detail, errors=_error_list(exc)) from None
    fields = data.model_fields_set
    new: dict[str, Any] = {}
    if "enabled" in fields and data.enabled is not None:
        new["enabled"] = data.enabled
    if "cron" in fields and data.cron is not None:
        new["cron"] = check_cron(data.cron) if data.cron.strip() else ""
    if "channels" in fields and data.channels is not None:
        unsupported = [c for c in data.channels if c not in d.channels]
        if unsupported:
            raise bad_input(f"Digest {slug} is not delivered over {', '.join(unsupported)}; its channels are "
                            f"{', '.join(d.channels)}.", "channels")
        new["channels"] = [c for c in CHANNELS if c in data.channels]
    if "slackChannel" in fields and data.slackChannel is not None:
        new["slack_channel"] = data.slackChannel
    if "options" in fields and data.options is not None:
        new["options"] = validate_options(d, data.options)

    lock_org(org_id)
    row = schedule_row(org_id, slug)
    before = schedule_json(d, row, None)
    if row is None:
        row = DigestSchedule(org_id=org_id, digest=slug, enabled=False, cron="", channels=[], slack_channel="",
                             options={}, updated_at=now)
        db.session.add(row)
    was_enabled, old_cron = bool(row.enabled), effective_cron(row, d)
    for key, value in new.items():
        setattr(row, key, value)
    if not row.enabled:
        row.next_run_at = None
    elif not was_enabled or effective_cron(row, d) != old_cron or row.next_run_at is None:
        row.next_run_at = next_fire(effective_cron(row, d), now)
    row.updated_by_id = user_id
    row.updated_at = now
    db.session.flush()
    after = schedule_json(d, row, None)
    changed = {k: after[k] for k in ("enabled", "cron", "channels", "slackChannel", "options", "nextRunAt")
               if before[k] != after[k]}
    record(org_id, "digest.schedule_updated", actor, target_type="digest_schedule", target_id=slug, now=now,
           data={"digest": slug, "changed": changed})
    db.session.commit()
    return get_schedule(org_id, slug)


# --- the scheduler's side ------------------------------------------------------------------------------

def due(slug: str, now: dt.datetime) -> list[DigestSchedule]:
    """The enabled schedules of ``slug`` whose next run is at or before ``now`` (oldest first)."""
    return list(db.session.scalars(
        select(DigestSchedule).where(DigestSchedule.digest == slug, DigestSchedule.enabled.is_(True),
                                     DigestSchedule.next_run_at.is_not(None), DigestSchedule.next_run_at <= now)
        .order_by(DigestSchedule.next_run_at, DigestSchedule.org_id)))


def mark_ran(row: DigestSchedule, now: dt.datetime) -> DigestSchedule:
    """Record a scheduled run at ``now`` and move ``next_run_at`` to the schedule's next fire after it (runs
    missed while no scheduler ran are not made up: one run, then the next regular time). The caller commits."""
    row.last_run_at = now
    try:
        row.next_run_at = next_fire(effective_cron(row, get_digest(row.digest)), now)
    except (ValueError, ApiError):  # a stored cron that no longer parses, or a digest that is gone
        log.warning("digest schedule %s of org %s has no next run; disabling it", row.digest, row.org_id)
        row.enabled, row.next_run_at = False, None
    return row
