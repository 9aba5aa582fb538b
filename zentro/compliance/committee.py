"""Compliance committee settings and the staffing action tracker (services: no Flask globals).

Committee settings (one row per org; no row = the defaults in ``obligations.CommitteeConfig``):
  capacity_hours_per_week (1-1000 owner-hours the committee's owners can give obligations each week),
  density_warn < density_critical (open obligations due in one week), completion_sla_days (1-90: a staffing
  action should be completed within this many days of the start of the week it relieves), bundle_cadence_days
  (0-365; 0 = no scheduled evidence bundles), escalation_emails (at most 20) and effort_hours per obligation kind
  (0.25-200; kinds left out keep their default). ``update_settings`` takes the fields to change; the others keep
  their stored (or default) value, and the result must keep warn < critical.

Staffing actions: a relief action for one peak week (stored as that week's Monday): rebalance (move obligations
between owners), add_capacity, defer, consolidate. Status: proposed → tracked → completed, or proposed/tracked →
dismissed; completed_at is set by the server when an action completes. Owner, title, hours and note may change
while the action is open (proposed or tracked). Only owners/admins change settings or actions (the routes say
``min_role="admin"``; the services check again for pages and scripts).

Every change is recorded in the audit log with the committee's control tags: SOC2:CC1.2 / ISO27001:A.5.4 for the
settings (oversight of the program), SOC2:CC1.3 / ISO27001:A.5.2 for staffing actions (roles and responsibilities).
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from annotated_types import Ge, Le
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from zentro.accounts.models import Role, User
from zentro.audit.service import Actor, lock_org, record
from zentro.compliance import obligations as obl
from zentro.compliance.attestations import (MAX_ID, _commit, bad_input, check_member, require_admin, user_json,
                                            validated)
from zentro.compliance.models import (STAFFING_ACTION_KINDS, STAFFING_ACTION_STATUSES, CommitteeSettings,
                                      StaffingAction)
from zentro.extensions import db
from zentro.platform.errors import ApiError, not_found
from zentro.platform.types import iso, utcnow

SETTINGS_TAGS = ("SOC2:CC1.2", "ISO27001:A.5.4")
ACTION_TAGS = ("SOC2:CC1.3", "ISO27001:A.5.2")
KIND_LABELS = {"rebalance": "Rebalance owners", "add_capacity": "Add capacity", "defer": "Defer obligations",
               "consolidate": "Consolidate obligations"}
TRANSITIONS = {"proposed": ("tracked", "dismissed"), "tracked": ("completed", "dismissed"), "completed": (),
               "dismissed": ()}
OPEN_STATUSES = ("proposed", "tracked")
MAX_EMAILS = 20
MAX_NOTE = 4000


def _integer_only(value):
    """JSON integers (and 2.0, which JSON Schema calls an integer too), not true or "2"."""
    if isinstance(value, (bool, str)):
        raise ValueError("Input should be a JSON integer")
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return value


def _number_only(value):
    if isinstance(value, (bool, str)):
        raise ValueError("Input should be a JSON number")
    return value


def _date_string(value):
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError("Input should be a date as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("Input should be a real calendar date as YYYY-MM-DD") from None


def _hours(lo: float, hi: float):
    return Annotated[float, Ge(lo), Le(hi), BeforeValidator(_number_only)]


def _int(lo: int, hi: int):
    return Annotated[int, Ge(lo), Le(hi), BeforeValidator(_integer_only)]


Email = Annotated[str, StringConstraints(min_length=3, max_length=320,
                                         pattern=r"^[^@\x00-\x20\x7f]+@[^@\x00-\x20\x7f]+\.[^@.\x00-\x20\x7f]+$")]
Title = Annotated[str, StringConstraints(min_length=1, max_length=300,
                                         pattern=r"^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]{0,298}[^\x00-\x20\x7f])?$")]
Note = Annotated[str, StringConstraints(max_length=MAX_NOTE, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")]
Id = Annotated[int, Ge(1), Le(MAX_ID), BeforeValidator(_integer_only)]
Effort = _hours(0.25, 200)
WeekDate = Annotated[dt.date, BeforeValidator(_date_string)]


# --- input models (the API declares the same ones) -----------------------------------------------------

class EffortHoursIn(BaseModel):
    """Owner-hours one obligation of each kind takes (0.25-200); kinds left out keep their current value."""
    model_config = ConfigDict(extra="forbid")
    attestation: Effort | None = None
    vendor_review: Effort | None = None
    vendor_report: Effort | None = None
    bundle: Effort | None = None
    checkpoint: Effort | None = None
    evidence_request: Effort | None = None


class CommitteeSettingsIn(BaseModel):
    """Fields left out keep their current value (the default while none is stored). densityWarn must stay below
    densityCritical after the change (else 400)."""
    model_config = ConfigDict(extra="forbid")
    capacityHoursPerWeek: _hours(1, 1000) | None = Field(
        None, description="Owner-hours per week the committee's owners can give obligations (1-1000).")
    densityWarn: _int(1, 1000) | None = Field(
        None, description="Warn when this many open obligations are due in one week (1-1000; below densityCritical).")
    densityCritical: _int(2, 1000) | None = Field(
        None, description="Critical at this many open obligations due in one week (2-1000; above densityWarn).")
    completionSlaDays: _int(1, 90) | None = Field(
        None, description="Days after the start of its week within which a staffing action should be completed (1-90).")
    bundleCadenceDays: _int(0, 365) | None = Field(
        None, description="Days between scheduled evidence bundles (0-365; 0 = no scheduled bundles).")
    escalationEmails: list[Email] | None = Field(None, max_length=MAX_EMAILS,
                                                 description="Escalation recipients (at most 20 addresses).")
    effortHours: EffortHoursIn | None = Field(None, description="Owner-hours per obligation kind (0.25-200).")


class StaffingActionCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weekStart: WeekDate = Field(description="Any date of the peak week the action relieves (YYYY-MM-DD); stored as "
                                            "that ISO week's Monday.")
    ownerId: Id | None = Field(None, description="Who carries it out: a member of the org with member role or above "
                                                 "(not a member: 404; a viewer: 409). Absent: unassigned.")
    kind: Literal[STAFFING_ACTION_KINDS] = Field(description="rebalance, add_capacity, defer or consolidate.")
    title: Title = Field(description="What the action does, 1-300 characters.")
    hours: _hours(0, 1000) = Field(0.0, description="Owner-hours the action moves or adds (0-1000).")
    note: Note = Field("", description=f"Context, at most {MAX_NOTE} characters.")


class StaffingActionPatchIn(BaseModel):
    """Only the fields sent change. Status moves proposed → tracked → completed, or to dismissed from proposed or
    tracked (anything else: 409); owner, title, hours and note change only while the action is open (else 409)."""
    model_config = ConfigDict(extra="forbid")
    status: Literal[STAFFING_ACTION_STATUSES] | None = Field(None, description="The status to move to.")
    ownerId: Id | None = Field(None, description="New owner (a member of the org, member role or above); null "
                                                 "unassigns.")
    title: Title | None = None
    hours: _hours(0, 1000) | None = None
    note: Note | None = None


SETTINGS_HELP = {
    "capacityHoursPerWeek": "Capacity: 1-1000 owner-hours per week.",
    "densityWarn": "Density warn: a whole number from 1 to 1000, below the critical threshold.",
    "densityCritical": "Density critical: a whole number from 2 to 1000, above the warn threshold.",
    "completionSlaDays": "Completion SLA: 1-90 days.",
    "bundleCadenceDays": "Bundle cadence: 0-365 days (0 = no scheduled bundles).",
    "escalationEmails": f"Escalation recipients: at most {MAX_EMAILS} email addresses.",
    "effortHours": "Effort per obligation kind: 0.25-200 hours each.",
    "weekStart": "Week: a date as YYYY-MM-DD.",
    "ownerId": "Owner: a member of this organisation.",
    "kind": "Kind: rebalance, add_capacity, defer or consolidate.",
    "title": "Title: 1-300 characters, not starting or ending with a space.",
    "hours": "Hours: 0-1000.",
    "note": f"Note: at most {MAX_NOTE} characters.",
    "status": "Status: proposed, tracked, completed or dismissed.",
}


# --- committee settings ---------------------------------------------------------------------------------

def settings_json(org_id: int) -> dict:
    cfg = obl.committee_config(org_id)
    row = db.session.get(CommitteeSettings, org_id) if cfg.stored else None
    default = obl.CommitteeConfig()
    return {
        "stored": cfg.stored,
        "capacityHoursPerWeek": cfg.capacity_hours_per_week,
        "densityWarn": cfg.density_warn,
        "densityCritical": cfg.density_critical,
        "completionSlaDays": cfg.completion_sla_days,
        "bundleCadenceDays": cfg.bundle_cadence_days,
        "escalationEmails": list(cfg.escalation_emails),
        "effortHours": {k: cfg.effort_hours[k] for k in obl.KINDS},
        "defaults": {"capacityHoursPerWeek": default.capacity_hours_per_week, "densityWarn": default.density_warn,
                     "densityCritical": default.density_critical,
                     "completionSlaDays": default.completion_sla_days,
                     "bundleCadenceDays": default.bundle_cadence_days, "escalationEmails": [],
                     "effortHours": {k: obl.DEFAULT_EFFORT[k] for k in obl.KINDS}},
        "updatedAt": iso(row.updated_at) if row is not None else None,
    }


def update_settings(org_id: int, changes: dict, *, user_id: int | None, actor: Actor,
                    now: dt.datetime | None = None) -> dict:
    """Apply ``changes`` (the CommitteeSettingsIn field names; None = leave alone) and return ``settings_json``."""
    now = now or utcnow()
    require_admin(org_id, user_id, "change the committee settings")
    data = validated(CommitteeSettingsIn, changes, SETTINGS_HELP)
    cfg = obl.committee_config(org_id)
    merged = {
        "capacity_hours_per_week": float(data.capacityHoursPerWeek if data.capacityHoursPerWeek is not None
                                         else cfg.capacity_hours_per_week),
        "density_warn": data.densityWarn if data.densityWarn is not None else cfg.density_warn,
        "density_critical": data.densityCritical if data.densityCritical is not None else cfg.density_critical,
        "completion_sla_days": (data.completionSlaDays if data.completionSlaDays is not None
                                else cfg.completion_sla_days),
        "bundle_cadence_days": (data.bundleCadenceDays if data.bundleCadenceDays is not None
                                else cfg.bundle_cadence_days),
    }
    if merged["density_warn"] >= merged["density_critical"]:
        raise bad_input(f"Density warn ({merged['density_warn']}) must be below density critical "
                        f"({merged['density_critical']}).",
                        "densityWarn" if data.densityWarn is not None else "densityCritical")
    if data.escalationEmails is not None:
        emails: list[str] = []
        for e in data.escalationEmails:
            if e.lower() not in [x.lower() for x in emails]:
                emails.append(e)
        merged["escalation_emails"] = emails
    else:
        merged["escalation_emails"] = list(cfg.escalation_emails)
    row = db.session.get(CommitteeSettings, org_id)
    stored_effort = dict(row.effort_hours or {}) if row is not None else {}
    if data.effortHours is not None:
        for kind, hours in data.effortHours.model_dump().items():
            if hours is not None:
                stored_effort[kind] = float(hours)
    merged["effort_hours"] = {k: v for k, v in stored_effort.items() if k in obl.KINDS}
    lock_org(org_id)
    before = settings_json(org_id)
    if row is None:
        row = CommitteeSettings(org_id=org_id)
        db.session.add(row)
    for key, value in merged.items():
        setattr(row, key, value)
    row.updated_at = now
    db.session.flush()
    after = settings_json(org_id)
    changed = {k: after[k] for k in after if k not in ("stored", "defaults", "updatedAt") and before[k] != after[k]}
    record(org_id, "committee.settings_updated", actor, target_type="committee_settings", target_id=org_id,
           control_tags=SETTINGS_TAGS, now=now, data={"changed": changed, "first_save": not before["stored"]})
    _commit()
    return settings_json(org_id)


# --- staffing actions -----------------------------------------------------------------------------------

def get_action(org_id: int, action_id: int) -> StaffingAction:
    row = db.session.scalar(select(StaffingAction).where(StaffingAction.org_id == org_id,
                                                         StaffingAction.id == action_id))
    if row is None:
        raise not_found("Staffing action")
    return row


def action_json(row: StaffingAction, users: dict[int, User] | None = None, now: dt.datetime | None = None,
                sla_days: int | None = None) -> dict:
    users = users if users is not None else ({row.owner_id: db.session.get(User, row.owner_id)}
                                             if row.owner_id else {})
    sla_days = sla_days if sla_days is not None else obl.committee_config(row.org_id).completion_sla_days
    now = now or utcnow()
    due = sla_due(row.week_start, sla_days)
    return {"id": row.id, "weekStart": row.week_start.isoformat(), "owner": user_json(users.get(row.owner_id)),
            "kind": row.kind, "status": row.status, "title": row.title, "hours": row.hours, "note": row.note,
            "slaDueAt": iso(due), "pastSla": row.status in OPEN_STATUSES and now > due,
            "next": list(TRANSITIONS.get(row.status, ())), "createdAt": iso(row.created_at),
            "updatedAt": iso(row.updated_at), "completedAt": iso(row.completed_at)}


def sla_due(week: dt.date, sla_days: int) -> dt.datetime:
    """The moment an action for ``week`` is past its completion SLA: the week's Monday 00:00 UTC + SLA days."""
    start = dt.datetime.combine(week, dt.time(), dt.timezone.utc)
    try:
        return start + dt.timedelta(days=sla_days)
    except OverflowError:
        return dt.datetime.max.replace(tzinfo=dt.timezone.utc)


def _owner(org_id: int, owner_id: int | None) -> User | None:
    if owner_id is None:
        return None
    return check_member(org_id, owner_id, "ownerId", Role.member, "Owner")


def create_action(org_id: int, data: dict, *, user_id: int | None, actor: Actor,
                  now: dt.datetime | None = None) -> StaffingAction:
    now = now or utcnow()
    require_admin(org_id, user_id, "add a staffing action")
    body = validated(StaffingActionCreateIn, data, SETTINGS_HELP)
    owner = _owner(org_id, body.ownerId)
    lock_org(org_id)
    row = StaffingAction(org_id=org_id, week_start=obl.week_start(body.weekStart), owner_id=owner.id if owner else None,
                         kind=body.kind, status="proposed", title=body.title, hours=float(body.hours), note=body.note,
                         created_at=now, updated_at=now)
    db.session.add(row)
    db.session.flush()
    record(org_id, "staffing_action.created", actor, target_type="staffing_action", target_id=row.id,
           control_tags=ACTION_TAGS, now=now,
           data={"week_start": row.week_start.isoformat(), "kind": row.kind, "title": row.title, "hours": row.hours,
                 "owner": owner.email if owner else None})
    _commit()
    return row


def update_action(org_id: int, action_id: int, changes: dict, *, user_id: int | None, actor: Actor,
                  now: dt.datetime | None = None) -> StaffingAction:
    """Apply the fields given in ``changes`` (PATCH semantics: only the keys present change; ``ownerId: None``
    unassigns, None for any other field leaves it alone)."""
    now = now or utcnow()
    row = get_action(org_id, action_id)
    require_admin(org_id, user_id, "change a staffing action")
    body = validated(StaffingActionPatchIn, changes, SETTINGS_HELP)
    sent = {k for k in body.model_fields_set if getattr(body, k) is not None or k == "ownerId"}
    edits = sent - {"status"}
    if edits and row.status not in OPEN_STATUSES:
        raise ApiError(409, f"Staffing action #{row.id} is {row.status}; only proposed or tracked actions can be "
                            f"edited.")
    target = body.status if "status" in sent else None
    if target is not None and target != row.status and target not in TRANSITIONS[row.status]:
        allowed = ", ".join(TRANSITIONS[row.status]) or "nothing (it is closed)"
        raise ApiError(409, f"Staffing action #{row.id} is {row.status}: it can move to {allowed}, not {target}.")
    owner = _owner(org_id, body.ownerId) if "ownerId" in sent else None  # ownerId null: unassign
    lock_org(org_id)
    changed: dict = {}
    if "ownerId" in sent and row.owner_id != (owner.id if owner else None):
        row.owner_id = owner.id if owner else None
        changed["owner"] = owner.email if owner else None
    for field, attr in (("title", "title"), ("hours", "hours"), ("note", "note")):
        if field in sent and getattr(row, attr) != getattr(body, field):
            value = float(getattr(body, field)) if field == "hours" else getattr(body, field)
            setattr(row, attr, value)
            changed[attr] = value
    if target is not None and target != row.status:
        changed["status"] = {"from": row.status, "to": target}
        row.status = target
        if target == "completed":
            row.completed_at = now
    if not changed:
        return row
    row.updated_at = now
    record(org_id, "staffing_action.updated", actor, target_type="staffing_action", target_id=row.id,
           control_tags=ACTION_TAGS, now=now, data=changed)
    _commit()
    return row


def delete_action(org_id: int, action_id: int, *, user_id: int | None, actor: Actor,
                  now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    row = get_action(org_id, action_id)
    require_admin(org_id, user_id, "delete a staffing action")
    lock_org(org_id)
    record(org_id, "staffing_action.deleted", actor, target_type="staffing_action", target_id=row.id,
           control_tags=ACTION_TAGS, now=now,
           data={"week_start": row.week_start.isoformat(), "kind": row.kind, "title": row.title,
                 "status": row.status})
    db.session.delete(row)
    _commit()


def list_actions(org_id: int, now: dt.datetime | None = None) -> list[dict]:
    """Every staffing action of the org (newest week first), as ``action_json``."""
    now = now or utcnow()
    rows = list(db.session.scalars(select(StaffingAction).where(StaffingAction.org_id == org_id)
                                   .order_by(StaffingAction.week_start.desc(), StaffingAction.id.desc())))
    ids = {r.owner_id for r in rows if r.owner_id}
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    sla = obl.committee_config(org_id).completion_sla_days
    return [action_json(r, users, now, sla) for r in rows]
