"""Digest schedules API under /api/v1/digests: every digest with the organisation's schedule merged in, one
digest's schedule, and changing it (owner/admin). Session or API key (scope ``compliance:read|write``). An unknown
digest slug is 404; a bad cron, channel or option is 400 and changes nothing. Changes are audited
(``digest.schedule_updated``)."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel, Field

from zentro.notify import schedules as svc
from zentro.notify.schedules import ScheduleIn
from zentro.platform.auth import current_principal
from zentro.platform.routes import api_route

bp = Blueprint("notify_schedules", __name__, url_prefix="/api/v1/digests")
COMMON = {"resource": "compliance", "tags": ("Digest schedules",)}
SLUGS = sorted(svc.digests())
SLUG_PATH = {"path_enum": {"slug": SLUGS}, "path_samples": {"slug": "sla-reminders"}}

Channel = Literal["email", "slack", "webhook"]


class LastRunOut(BaseModel):
    id: int
    status: str = Field(description="running, delivered, partial, not_sent, nothing_to_send or failed.")
    trigger: str = Field(description="manual, cron, schedule, cli or chain.")
    period: str
    forced: bool
    at: dt.datetime
    finishedAt: dt.datetime | None


class DigestScheduleOut(BaseModel):
    slug: str
    title: str
    period: Literal["day", "week", "month", "quarter"] = Field(description="Delivered at most once per period.")
    defaultSchedule: str = Field(description="The digest's default cron (UTC).")
    defaultScheduleText: str
    availableChannels: list[Channel]
    enabled: bool
    cron: str = Field(description="The organisation's cron; empty: the default schedule.")
    schedule: str = Field(description="The cron in force (cron, else defaultSchedule).")
    scheduleText: str = Field(description='The schedule in words, e.g. "every Monday 08:00 UTC".')
    channels: list[Channel] = Field(description="The organisation's channels; empty: availableChannels.")
    effectiveChannels: list[Channel]
    slackChannel: str
    options: dict
    nextRunAt: dt.datetime | None = Field(description="When the scheduler delivers it next (null while disabled).")
    lastRunAt: dt.datetime | None = Field(description="The last scheduled run.")
    lastRun: LastRunOut | None = Field(description="The latest delivery run of any trigger.")
    updatedAt: dt.datetime | None
    previewUrl: str = Field(description="The printable HTML preview, or the in-app report page.")
    previewKind: Literal["html", "page"]
    reportUrl: str


class DigestSchedulePage(BaseModel):
    data: list[DigestScheduleOut]
    next_cursor: str | None = Field(description="Always null: every digest is on the one page.")


@api_route(bp, "", methods=("GET",), response=DigestSchedulePage,
           summary="Every digest with this organisation's schedule (the defaults, disabled, where none is saved), "
                   "its next run and the outcome of its last run.", **COMMON)
def list_digests():
    p = current_principal()
    return jsonify(data=svc.list_schedules(p.org.id), next_cursor=None)


@api_route(bp, "/<slug>/schedule", methods=("GET",), response=DigestScheduleOut, extra=SLUG_PATH,
           summary="One digest's schedule for this organisation. Unknown slug: 404.", **COMMON)
def get_digest_schedule(slug: str):
    p = current_principal()
    return jsonify(svc.get_schedule(p.org.id, slug))


@api_route(bp, "/<slug>/schedule", methods=("PUT",), body=ScheduleIn, response=DigestScheduleOut,
           min_role="admin", extra=SLUG_PATH,
           summary="Change one digest's schedule (owner/admin). Fields left out keep their value. cron: five fields, "
                   "UTC (0 or 7 = Sunday; empty: the default); channels: a subset of the digest's; options: its "
                   "preview report's query fields. Enabling it or changing its cron sets nextRunAt from now. Unknown "
                   "slug: 404; invalid cron, channel or option: 400. Audited (digest.schedule_updated).", **COMMON)
def put_digest_schedule(slug: str, body: ScheduleIn):
    p = current_principal()
    return jsonify(svc.update_schedule(p.org.id, slug, body.model_dump(exclude_unset=True),
                                       user_id=p.user.id if p.user is not None else None, actor=p.actor))
