"""Assessor evidence requests: what an assessor asked for (title, controls), who owns the answer, by when, and
how it was answered (one of the org's evidence bundles and/or a link to a delivered file).

Life cycle: ``open`` → ``fulfilled`` (member or above, with a bundle or a file link; ``fulfilled_at`` is the
server's clock) or ``cancelled`` (owner/admin). Only open requests can be edited, fulfilled or cancelled (409).
Derived state at ``now``: ``overdue`` = open and ``due_at <= now``.

Audit (target ``evidence_request``): ``evidence_request.created`` / ``.updated`` / ``.cancelled`` carry only the
assessor-communication tags ``REQUEST_TAGS`` (an assessor asking for evidence says nothing about whether the
controls operate, so it must not count as their evidence); ``evidence_request.fulfilled`` carries the request's
controls plus ``REQUEST_TAGS`` (the delivered evidence is on the assessor trail of those controls).

No Flask globals: every function takes the org id, the acting user's id and the audit Actor, validates before it
changes anything, records and commits. Lookups are (org_id, id); a miss is 404.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from zentro.accounts.models import Role, User
from zentro.audit.service import Actor, record
from zentro.compliance.attestations import (ControlTag, Id, Text, UtcDatetime, _users, bad_input,
                                            check_member, check_tag, require_admin, user_json, validated)
from zentro.compliance.catalog import load_catalog
from zentro.compliance.models import EvidenceBundle, EvidenceRequest
from zentro.extensions import db
from zentro.platform.errors import ApiError, not_found
from zentro.platform.types import iso, utcnow

REQUEST_TAGS = ("SOC2:CC2.3", "ISO27001:A.5.35")
STATUSES = ("open", "fulfilled", "cancelled")
STATES = ("open", "overdue", "fulfilled", "cancelled")
MAX_CONTROLS = 50
MAX_DUE_AHEAD = dt.timedelta(days=730)
MAX_REQUESTED_BACK = dt.timedelta(days=730)

Title = Annotated[str, StringConstraints(min_length=1, max_length=300,
                                         pattern=r"^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]{0,298}[^\x00-\x20\x7f])?$")]
Requester = Annotated[str, StringConstraints(max_length=320, pattern=r"^[^\x00-\x1f\x7f]*$")]
FileUrl = Annotated[str, StringConstraints(min_length=8, max_length=500,
                                           pattern=r"^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
                                                   r"(?::[0-9]{1,5})?(?:[/?#][!-~]*)?$")]

HELP = {
    "title": "Title: 1–300 characters on one line, not starting or ending with a space.",
    "controls": f"Controls: 1–{MAX_CONTROLS} catalog tags such as SOC2:CC6.1.",
    "requestedBy": "Requested by: the assessor's name or email, at most 320 characters.",
    "requested_by": "Requested by: the assessor's name or email, at most 320 characters.",
    "ownerId": "Owner: a member of this organisation (member role or above).",
    "owner_id": "Owner: a member of this organisation (member role or above).",
    "requestedAt": "Requested: a date-time with a timezone, not in the future.",
    "requested_at": "Requested: a date-time with a timezone, not in the future.",
    "dueAt": "Due: a date-time with a timezone after the request date, at most two years ahead.",
    "due_at": "Due: a date-time with a timezone after the request date, at most two years ahead.",
    "note": "Note: at most 4000 characters.",
    "bundleId": "Bundle: one of this organisation's evidence bundles.",
    "bundle_id": "Bundle: one of this organisation's evidence bundles.",
    "fileRef": "File: an http:// or https:// address of the delivered file.",
    "file_ref": "File: an http:// or https:// address of the delivered file.",
    "reason": "Reason: at most 4000 characters.",
}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True, populate_by_name=True)


class EvidenceRequestIn(_In):
    title: Title = Field(description="What the assessor asked for.")
    controls: list[ControlTag] = Field(min_length=1, max_length=MAX_CONTROLS,
                                       description="The catalog control tags the request is about (1-50).")
    requested_by: Requester = Field("", alias="requestedBy", description="The assessor (name or email).")
    owner_id: Id | None = Field(None, alias="ownerId", description="Who answers it: a member of the org with member "
                                                                   "role or above (not a member: 404; viewer: 409).")
    requested_at: UtcDatetime | None = Field(None, alias="requestedAt",
                                             description="When the assessor asked (default now; not in the future).")
    due_at: UtcDatetime = Field(alias="dueAt", description="After the request date, at most two years ahead.")
    note: Text = ""


class EvidenceRequestPatchIn(_In):
    """Only the fields present change; only an open request can be edited (else 409)."""
    title: Title = None
    controls: list[ControlTag] = Field(None, min_length=1, max_length=MAX_CONTROLS)
    requested_by: Requester = Field(None, alias="requestedBy")
    owner_id: Id | None = Field(None, alias="ownerId", description="A member (member role or above), or null to "
                                                                   "unassign.")
    due_at: UtcDatetime = Field(None, alias="dueAt")
    note: Text = None


class FulfilIn(_In):
    bundle_id: Id | None = Field(None, alias="bundleId", description="One of the org's evidence bundles (else 404).")
    file_ref: FileUrl | None = Field(None, alias="fileRef", description="http(s) address of the delivered file.")
    note: Text = ""


class CancelIn(_In):
    reason: Text = ""


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or utcnow()


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _unique(tags) -> list[str]:
    return list(dict.fromkeys(tags))


def get_request(org_id: int, request_id: int) -> EvidenceRequest:
    row = db.session.scalar(select(EvidenceRequest).where(EvidenceRequest.org_id == org_id,
                                                          EvidenceRequest.id == request_id))
    if row is None:
        raise not_found("Evidence request")
    return row


def get_org_bundle(org_id: int, bundle_id: int) -> EvidenceBundle:
    row = db.session.scalar(select(EvidenceBundle).where(EvidenceBundle.org_id == org_id,
                                                         EvidenceBundle.id == bundle_id))
    if row is None:
        raise ApiError(404, f"Bundle: no evidence bundle #{bundle_id} in this organisation.",
                       errors=[{"loc": ["bundleId"], "msg": "bundle not found", "type": "not_found"}])
    return row


def _check_owner(org_id: int, owner_id: int | None) -> User | None:
    if owner_id is None:
        return None
    return check_member(org_id, owner_id, "ownerId", Role.member, "Owner")


def _check_due(due_at: dt.datetime, requested_at: dt.datetime, now: dt.datetime) -> None:
    if due_at <= requested_at:
        raise bad_input("Due: must be after the request date.", "dueAt")
    if due_at > now + MAX_DUE_AHEAD:
        raise bad_input("Due: at most two years ahead.", "dueAt")


def _snapshot(row: EvidenceRequest) -> dict:
    return {"title": row.title, "controls": list(row.controls or []), "requested_by": row.requested_by,
            "owner_id": row.owner_id, "due_at": iso(row.due_at), "note": row.note}


def create(org_id: int, data: dict, *, user_id: int | None, actor: Actor,
           now: dt.datetime | None = None) -> EvidenceRequest:
    now = _now(now)
    require_admin(org_id, user_id, "log an evidence request")
    body: EvidenceRequestIn = validated(EvidenceRequestIn, data, HELP)  # type: ignore[assignment]
    controls = _unique(check_tag(t, "controls") for t in body.controls)
    owner = _check_owner(org_id, body.owner_id)
    requested_at = body.requested_at or now
    if requested_at > now + dt.timedelta(minutes=5):
        raise bad_input("Requested: must not be in the future.", "requestedAt")
    if requested_at < now - MAX_REQUESTED_BACK:
        raise bad_input("Requested: at most two years back.", "requestedAt")
    _check_due(body.due_at, requested_at, now)
    row = EvidenceRequest(org_id=org_id, title=body.title, controls=controls, requested_by=body.requested_by,
                          owner_id=owner.id if owner else None, requested_at=requested_at, due_at=body.due_at,
                          status="open", note=body.note, created_at=now)
    db.session.add(row)
    db.session.flush()
    record(org_id, "evidence_request.created", actor, target_type="evidence_request", target_id=row.id,
           control_tags=REQUEST_TAGS, now=now,
           data={**_snapshot(row), "owner": owner.email if owner else "", "requested_at": iso(requested_at)})
    db.session.commit()
    return row


def _require_open(row: EvidenceRequest, doing: str) -> None:
    if row.status != "open":
        raise ApiError(409, f"Evidence request #{row.id} is {row.status}; only an open request can be {doing}.")


def update(org_id: int, request_id: int, changes: dict, *, user_id: int | None, actor: Actor,
           now: dt.datetime | None = None) -> EvidenceRequest:
    now = _now(now)
    row = get_request(org_id, request_id)
    require_admin(org_id, user_id, "edit an evidence request")
    body: EvidenceRequestPatchIn = validated(EvidenceRequestPatchIn, changes, HELP)  # type: ignore[assignment]
    given = body.model_fields_set
    for name in ("title", "controls", "requested_by", "due_at", "note"):
        if name in given and getattr(body, name) is None:
            raise bad_input(HELP[name] + " (null is not allowed)", name)
    _require_open(row, "edited")
    before = _snapshot(row)
    if "controls" in given:
        row.controls = _unique(check_tag(t, "controls") for t in body.controls)
    if "owner_id" in given:
        owner = _check_owner(org_id, body.owner_id)
        row.owner_id = owner.id if owner else None
    if "due_at" in given:
        _check_due(body.due_at, _aware(row.requested_at), now)
        row.due_at = body.due_at
    for name in ("title", "requested_by", "note"):
        if name in given:
            setattr(row, name, getattr(body, name))
    after = _snapshot(row)
    changed = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if changed:
        record(org_id, "evidence_request.updated", actor, target_type="evidence_request", target_id=row.id,
               control_tags=REQUEST_TAGS, now=now, data={"changes": changed})
    db.session.commit()
    return row


def fulfil(org_id: int, request_id: int, data: dict, *, user_id: int | None, actor: Actor,
           now: dt.datetime | None = None) -> EvidenceRequest:
    """Fulfil with one of the org's bundles and/or a file link (at least one); the server sets fulfilled_at."""
    now = _now(now)
    row = get_request(org_id, request_id)
    body: FulfilIn = validated(FulfilIn, data, HELP)  # type: ignore[assignment]
    if body.bundle_id is None and not body.file_ref:
        raise bad_input("Fulfil with a bundle (bundleId) or a file link (fileRef).", "bundleId")
    bundle = get_org_bundle(org_id, body.bundle_id) if body.bundle_id is not None else None
    _require_open(row, "fulfilled")
    row.status = "fulfilled"
    row.fulfilled_at = now
    row.bundle_id = bundle.id if bundle else None
    row.file_ref = body.file_ref or ""
    if body.note:
        row.note = (row.note + "\n\n" if row.note else "") + body.note
    due = _aware(row.due_at)
    record(org_id, "evidence_request.fulfilled", actor, target_type="evidence_request", target_id=row.id,
           control_tags=(*(row.controls or []), *REQUEST_TAGS), now=now,
           data={"title": row.title, "controls": list(row.controls or []),
                 "bundle": {"id": bundle.id, "seq": bundle.seq, "kind": bundle.kind,
                            "manifest_sha256": bundle.manifest_sha256} if bundle else None,
                 "file_ref": row.file_ref, "due_at": iso(due), "on_time": now <= due, "note": body.note})
    db.session.commit()
    return row


def cancel(org_id: int, request_id: int, data: dict | None = None, *, user_id: int | None, actor: Actor,
           now: dt.datetime | None = None) -> EvidenceRequest:
    now = _now(now)
    row = get_request(org_id, request_id)
    require_admin(org_id, user_id, "cancel an evidence request")
    body: CancelIn = validated(CancelIn, data or {}, HELP)  # type: ignore[assignment]
    _require_open(row, "cancelled")
    row.status = "cancelled"
    record(org_id, "evidence_request.cancelled", actor, target_type="evidence_request", target_id=row.id,
           control_tags=REQUEST_TAGS, now=now, data={"title": row.title, "reason": body.reason})
    db.session.commit()
    return row


# --- reading ----------------------------------------------------------------------------------------

def state_of(row: EvidenceRequest, now: dt.datetime) -> str:
    if row.status == "open" and _aware(row.due_at) <= now:
        return "overdue"
    return row.status


def request_json(row: EvidenceRequest, now: dt.datetime | None = None, users: dict | None = None,
                 bundles: dict | None = None) -> dict:
    now = _now(now)
    users = users if users is not None else _users([row.owner_id])
    if bundles is None:
        bundles = {}
        if row.bundle_id is not None:
            b = db.session.get(EvidenceBundle, row.bundle_id)
            if b is not None and b.org_id == row.org_id:
                bundles[b.id] = b
    catalog = load_catalog()
    due = _aware(row.due_at)
    b = bundles.get(row.bundle_id) if row.bundle_id is not None else None
    controls = list(row.controls or [])
    return {
        "id": row.id, "title": row.title, "controls": controls,
        "control_titles": {t: catalog.control(t).title for t in controls if catalog.has(t)},
        "frameworks": _unique(t.split(":", 1)[0] for t in controls),
        "requested_by": row.requested_by, "owner": user_json(users.get(row.owner_id)),
        "requested_at": iso(_aware(row.requested_at)), "due_at": iso(due), "status": row.status,
        "state": state_of(row, now),
        "days_to_due": (due - now).days if row.status == "open" else None,
        "fulfilled_at": iso(_aware(row.fulfilled_at)),
        "bundle": {"id": b.id, "seq": b.seq, "kind": b.kind} if b is not None else None,
        "file_ref": row.file_ref, "note": row.note, "created_at": iso(_aware(row.created_at)),
        "url": f"/compliance/evidence-requests/{row.id}",
    }


def list_requests(org_id: int, now: dt.datetime | None = None) -> list[dict]:
    """Every request (open first by due date, then the rest newest first), for the queue page."""
    now = _now(now)
    rows = list(db.session.scalars(select(EvidenceRequest).where(EvidenceRequest.org_id == org_id)))
    users = _users([r.owner_id for r in rows])
    ids = {r.bundle_id for r in rows if r.bundle_id is not None}
    bundles = {b.id: b for b in db.session.scalars(select(EvidenceBundle).where(
        EvidenceBundle.org_id == org_id, EvidenceBundle.id.in_(ids)))} if ids else {}
    out = [request_json(r, now, users, bundles) for r in rows]
    out.sort(key=lambda r: (0, r["due_at"], r["id"]) if r["status"] == "open"
             else (1, "~" if r["fulfilled_at"] is None else "", -r["id"]))
    return out


def bundle_choices(org_id: int, limit: int = 50) -> list[dict]:
    """The org's newest bundles for the fulfil picker."""
    rows = db.session.execute(select(EvidenceBundle.id, EvidenceBundle.seq, EvidenceBundle.kind,
                                     EvidenceBundle.created_at, EvidenceBundle.window_start, EvidenceBundle.window_end)
                              .where(EvidenceBundle.org_id == org_id).order_by(EvidenceBundle.seq.desc())
                              .limit(limit)).all()
    return [{"id": r.id, "seq": r.seq, "kind": r.kind, "created_at": iso(_aware(r.created_at)),
             "window": f"{_aware(r.window_start):%Y-%m-%d} – {_aware(r.window_end):%Y-%m-%d}"} for r in rows]
