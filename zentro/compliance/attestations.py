"""Attestations, control exceptions and policies: the people-made half of compliance evidence.

No Flask globals: every function takes the org id, the acting user's id (for the role rules) and
the audit Actor, validates everything before it changes anything, records the change in the audit
log and commits. Lookups are by (org_id, id); a miss is 404, so other organisations' ids are not
disclosed. ``now`` is injectable everywhere.

Attestations
  assign -> ``assigned``; attest -> ``attested`` with ``attested_at = now`` and
  ``valid_until = now + validity_days(control)``; reject (owner/admin, only an attested one) ->
  ``rejected`` (the statement no longer counts; the owner attests again).
  Validity rule: an attestation stays valid for the control's catalog freshness SLA, capped at one
  year: 30 days for monitoring/incident controls (e.g. SOC2:CC7.2), 90 for operational controls
  (e.g. SOC2:CC6.1), 365 for governance controls (policy, risk, oversight: the catalogs give them
  365, e.g. SOC2:CC1.1, ISO27001:A.5.1). ``validity_days = min(freshness_days, 365)``.
  Derived state at ``now``: attested (valid_until > now), expired (attested, valid_until <= now),
  overdue (assigned or rejected, due_at <= now), otherwise assigned / rejected.
  Audit tags: the attest event carries the attested control's tag (it is evidence for it) plus
  SOC2:CC2.1 / ISO27001:A.5.36; assign and reject carry only SOC2:CC2.1 / ISO27001:A.5.36
  (they say nothing about whether the control operates).

Exceptions: an approved deviation from a control until expires_at (in the future, at most one
  year ahead by calendar date); the approver must be an owner/admin of the org. Derived state:
  open (status open, expires_at > now), expired (status open, expires_at <= now), closed.
  Audit tags SOC2:CC4.2 / ISO27001:A.5.36 (never the excepted control's own tag).

Policies: draft -> review -> accepted -> retired, and review -> draft. Editing only in draft.
  Accepting and retiring need owner/admin; accepting needs at least one control tag (an accepted
  policy is evidence for exactly its tags). Every change is audited with the policy's own control
  tags plus SOC2:CC5.3 / ISO27001:A.5.1.
"""
from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Literal, Union

from annotated_types import Ge, Le
from pydantic import (AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints,
                      ValidationError)
from sqlalchemy import func, literal, select
from sqlalchemy.exc import IntegrityError

from zentro.accounts.models import Membership, Role, User
from zentro.audit.models import AuditEvent, AuditTag
from zentro.audit.service import Actor, lock_org, record
from zentro.compliance.catalog import load_catalog
from zentro.compliance.models import Attestation, ControlException, Policy
from zentro.extensions import db
from zentro.platform.errors import ApiError, not_found
from zentro.platform.types import iso, utcnow

ATTESTATION_TAGS = ("SOC2:CC2.1", "ISO27001:A.5.36")
EXCEPTION_TAGS = ("SOC2:CC4.2", "ISO27001:A.5.36")
POLICY_TAGS = ("SOC2:CC5.3", "ISO27001:A.5.1")
STATES = ("assigned", "overdue", "attested", "expired", "rejected")
EXCEPTION_STATES = ("open", "expired", "closed")
EVIDENCE_WINDOW = dt.timedelta(days=90)
MAX_VALIDITY_DAYS = 365
MAX_DUE_AHEAD = dt.timedelta(days=730)
MAX_EXCEPTION_AHEAD = dt.timedelta(days=365)
MAX_ID = 2_147_483_647
MAX_NOTE = 4000
MAX_EVIDENCE = 20

# --- shared input types ----------------------------------------------------------------------------

def _to_utc(value: dt.datetime) -> dt.datetime:
    try:
        return value.astimezone(dt.timezone.utc)
    except (OverflowError, ValueError):
        raise ValueError("date out of range") from None


# Patterns avoid \s (engines disagree on which characters it covers): the JSON Schema must accept
# exactly what the validation accepts.
_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # any text but control characters (tab and newlines allowed)
_REQUIRED_TEXT = r"^[\t\n\r ]*[^\x00-\x20\x7f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # ... with something visible
_NAME = r"^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]{0,198}[^\x00-\x20\x7f])?$"  # one line, no outer spaces

def _integer_only(value):
    """JSON integers (and 2.0, which JSON Schema calls an integer too), not true or "2"."""
    if isinstance(value, (bool, str)):
        raise ValueError("Input should be a JSON integer")
    return value


# Constraints before the validator, so the JSON Schema keeps minimum/maximum.
Id = Annotated[int, Ge(1), Le(MAX_ID), BeforeValidator(_integer_only)]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Text = Annotated[str, StringConstraints(max_length=MAX_NOTE, pattern=_TEXT)]
RequiredText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NOTE, pattern=_REQUIRED_TEXT)]
HttpsUrl = Annotated[str, StringConstraints(min_length=9, max_length=500,
                                            pattern=r"^https://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
                                                    r"(?::[0-9]{1,5})?(?:[/?#][!-~]*)?$")]
PolicyName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_NAME)]
ActionName = Annotated[str, StringConstraints(min_length=1, max_length=100,
                                              pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}$")]


def _known_tag(value):
    if not isinstance(value, str):
        raise ValueError("a control tag is a string such as SOC2:CC6.1")
    if not load_catalog().has(value):
        raise ValueError(f"unknown control tag {value[:80]!r}: use a catalog tag such as SOC2:CC6.1 or ISO27001:A.5.15")
    return value


# Every catalog tag, as one enum component in the OpenAPI document (models set use_enum_values, so
# the validated value is the plain string); the before-validator keeps the error message short.
CatalogControlTag = enum.Enum("CatalogControlTag", {f"t{i}": t for i, t in enumerate(load_catalog().all_tags())},
                              type=str)
ControlTag = Annotated[CatalogControlTag, BeforeValidator(_known_tag)]

FIELD_HELP = {
    "control": "Control: a catalog tag such as SOC2:CC6.1 or ISO27001:A.5.15.",
    "owner_id": "Owner: a member of this organisation (member role or above).",
    "due_at": "Due: a date in the future, at most two years ahead.",
    "note": f"Note: required, at most {MAX_NOTE} characters.",
    "evidence": (f"Evidence: up to {MAX_EVIDENCE} references, each an audit event id of this organisation or an "
                 "https:// address."),
    "reason": f"Reason: required, at most {MAX_NOTE} characters.",
    "compensating_control": f"Compensating control: at most {MAX_NOTE} characters.",
    "approver_id": "Approver: an owner or admin of this organisation.",
    "expires_at": "Expires: a date in the future, at most one year ahead.",
    "name": "Name: 1–200 characters, not starting or ending with a space.",
    "description": f"Description: at most {MAX_NOTE} characters.",
    "control_tags": "Control tags: catalog tags such as SOC2:CC6.1, separated by spaces or commas (at most 20).",
    "actions": "Actions: automation action names (letters, digits and _ . : / -), at most 50.",
    "to": "Transition: draft, review, accepted or retired.",
}


def bad_input(detail: str, field_name: str | None = None) -> ApiError:
    errors = [{"loc": [field_name], "msg": detail, "type": "value_error"}] if field_name else None
    return ApiError(400, detail, errors=errors)


def validated(model: type[BaseModel], data: dict, help_texts: dict[str, str] | None = None) -> BaseModel:
    """Validate service input with the same model the API declares (pages and the demo seeder call
    the services directly); a failure is the 400 envelope naming the fields."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"loc": [str(x) for x in e["loc"]], "msg": e["msg"], "type": e["type"]}
                  for e in exc.errors(include_url=False, include_context=False, include_input=False)]
        err = exc.errors()[0]
        first = str(err["loc"][0]) if err["loc"] else ""
        detail = (help_texts or FIELD_HELP).get(first, f"Invalid input: {first}")
        if err["type"] == "value_error":  # our own validators say exactly what is wrong
            detail = f"{detail} ({err['msg'].removeprefix('Value error, ')})"
        raise ApiError(400, detail, errors=errors) from None


def check_tag(tag: str, field_name: str = "control") -> str:
    if not load_catalog().has(tag):
        raise bad_input(f"Unknown control tag {tag!r}: use a catalog tag such as SOC2:CC6.1 or ISO27001:A.5.15.",
                        field_name)
    return tag


def member_role(org_id: int, user_id: int | None) -> Role | None:
    if user_id is None:
        return None
    role = db.session.scalar(select(Membership.role).where(Membership.org_id == org_id, Membership.user_id == user_id))
    return Role(role) if role else None


def require_admin(org_id: int, user_id: int | None, what: str) -> None:
    role = member_role(org_id, user_id)
    if role is None or not role.at_least(Role.admin):
        raise ApiError(403, f"Only an owner or admin can {what}.")


def check_member(org_id: int, user_id: int, field_name: str, minimum: Role, label: str) -> User:
    """A referenced user must belong to the org (else 404, as for any id of another org) and hold at
    least ``minimum`` (else 409: the membership as it stands does not allow it)."""
    role = member_role(org_id, user_id)
    if role is None:
        raise ApiError(404, f"{label}: user {user_id} is not a member of this organisation.",
                       errors=[{"loc": [field_name], "msg": "not a member of this organisation", "type": "not_found"}])
    if not role.at_least(minimum):
        raise ApiError(409, f"{label}: user {user_id} is a {role.value}; the {label.lower()} must be "
                       f"{minimum.value} or above.",
                       errors=[{"loc": [field_name], "msg": f"role {role.value} is too low", "type": "conflict"}])
    return db.session.get(User, user_id)


def members(org_id: int, minimum: Role = Role.viewer) -> list[dict]:
    """The org's members at or above ``minimum``, for owner/approver pickers."""
    rows = db.session.execute(select(User.id, User.email, User.name, Membership.role)
                              .join(Membership, Membership.user_id == User.id)
                              .where(Membership.org_id == org_id).order_by(User.email))
    return [{"id": uid, "email": email, "name": name or email, "role": role}
            for uid, email, name, role in rows if Role(role).at_least(minimum)]


def _users(ids) -> dict[int, User]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))}


def user_json(user: User | None) -> dict | None:
    if user is None:
        return None
    return {"id": user.id, "email": user.email, "name": user.name or user.email}


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def end_of_day(moment: dt.datetime) -> dt.datetime:
    moment = _aware(moment).astimezone(dt.timezone.utc)
    return moment.replace(hour=23, minute=59, second=59, microsecond=0)


def tag_counts(org_id: int, tags, now: dt.datetime, window: dt.timedelta = EVIDENCE_WINDOW) -> dict[str, int]:
    """Audit rows per control tag in (now - window, now]: ONE grouped query over audit_tags."""
    tags = sorted(set(tags))
    if not tags:
        return {}
    q = (select(AuditTag.tag, func.count()).where(AuditTag.org_id == org_id, AuditTag.tag.in_(tags),
                                                 AuditTag.created_at > now - window, AuditTag.created_at <= now)
         .group_by(AuditTag.tag))
    return {tag: n for tag, n in db.session.execute(q)}


def flush_or_conflict(conflict: ApiError) -> None:
    """Flush a new row; a unique-constraint clash (a concurrent insert) is the conflict, not a 500."""
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise conflict from None


def _commit(conflict: ApiError | None = None) -> None:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if conflict is None:
            raise
        raise conflict from None


# --- attestations ---------------------------------------------------------------------------------

class EvidenceAuditEventRef(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)
    kind: Literal["audit_event"]
    ref: Id = Field(description="An audit event id of this organisation (else 404).")


class EvidenceUrlRef(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)
    kind: Literal["url"]
    ref: HttpsUrl = Field(description="An https:// address.")


EvidenceRef = Annotated[Union[EvidenceAuditEventRef, EvidenceUrlRef], Field(discriminator="kind")]


class AttestationAssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)
    control: ControlTag = Field(description="Catalog control tag, e.g. SOC2:CC6.1 (unknown tag: 400). One "
                                            "attestation per control and org (a second one: 409).")
    owner_id: Id = Field(description="The user who attests: a member of the org (else 404) with member role or above "
                                     "(a viewer: 409).")
    due_at: UtcDatetime = Field(description="In the future, at most two years ahead (else 400).")


class AttestationAttestIn(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)
    note: RequiredText = Field(description=f"What was checked and how, 1–{MAX_NOTE} characters.")
    evidence: list[EvidenceRef] = Field(default_factory=list, max_length=MAX_EVIDENCE,
                                        description="Audit event ids of this org or https:// links.")


class AttestationRejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)
    note: RequiredText = Field(description=f"Why the attestation is rejected, 1–{MAX_NOTE} characters.")


def validity_days(tag: str) -> int:
    """Days an attestation of ``tag`` stays valid: the catalog freshness SLA, at most a year."""
    return min(load_catalog().control(tag).freshness_days, MAX_VALIDITY_DAYS)


def state_of(att: Attestation, now: dt.datetime) -> str:
    if att.status == "attested":
        return "attested" if att.valid_until is not None and att.valid_until > now else "expired"
    if att.due_at <= now:
        return "overdue"
    return att.status if att.status in ("assigned", "rejected") else "assigned"


def get_attestation(org_id: int, attestation_id: int) -> Attestation:
    att = db.session.scalar(select(Attestation).where(Attestation.org_id == org_id, Attestation.id == attestation_id))
    if att is None:
        raise not_found("Attestation")
    return att


def assign(org_id: int, *, control: str, owner_id: int, due_at: dt.datetime, actor: Actor,
           now: dt.datetime | None = None) -> Attestation:
    now = now or utcnow()
    data = validated(AttestationAssignIn, {"control": control, "owner_id": owner_id, "due_at": due_at})
    check_tag(data.control)
    owner = check_member(org_id, data.owner_id, "owner_id", Role.member, "Owner")
    if data.due_at <= now:
        raise bad_input("Due: must be in the future.", "due_at")
    if data.due_at > now + MAX_DUE_AHEAD:
        raise bad_input("Due: at most two years ahead.", "due_at")
    lock_org(org_id)
    existing = db.session.scalar(select(Attestation.id).where(Attestation.org_id == org_id,
                                                              Attestation.control == data.control))
    if existing is not None:
        raise ApiError(409, f"{data.control} already has an attestation (#{existing}); attest or reject that one.")
    att = Attestation(org_id=org_id, control=data.control, owner_id=owner.id, status="assigned",
                      due_at=data.due_at.astimezone(dt.timezone.utc), note="", evidence=[], created_at=now,
                      updated_at=now)
    db.session.add(att)
    flush_or_conflict(ApiError(409, f"{data.control} already has an attestation."))
    record(org_id, "attestation.assigned", actor, target_type="attestation", target_id=att.id,
           control_tags=ATTESTATION_TAGS, now=now,
           data={"control": att.control, "owner": owner.email, "due_at": iso(att.due_at)})
    _commit(ApiError(409, f"{data.control} already has an attestation."))
    return att


def _check_evidence(org_id: int, refs: list) -> list[dict]:
    out: list[dict] = []
    seen = set()
    for ref in refs:
        key = (ref.kind, ref.ref)
        if key not in seen:
            seen.add(key)
            out.append({"kind": ref.kind, "ref": ref.ref})
    ids = [r["ref"] for r in out if r["kind"] == "audit_event"]
    if ids:
        found = set(db.session.scalars(select(AuditEvent.id).where(AuditEvent.org_id == org_id,
                                                                   AuditEvent.id.in_(ids))))
        missing = [i for i in ids if i not in found]
        if missing:
            raise ApiError(404, "Evidence: no audit event " + ", ".join(f"#{i}" for i in missing)
                           + " in this organisation.",
                           errors=[{"loc": ["evidence"], "msg": "audit event not found", "type": "not_found"}])
    return out


def attest(org_id: int, attestation_id: int, *, user_id: int, note: str, evidence: list | None = None,
           actor: Actor, now: dt.datetime | None = None) -> Attestation:
    now = now or utcnow()
    att = get_attestation(org_id, attestation_id)
    role = member_role(org_id, user_id)
    if user_id != att.owner_id and (role is None or not role.at_least(Role.admin)):
        raise ApiError(403, "Only the attestation's owner or an owner/admin can attest it.")
    data = validated(AttestationAttestIn, {"note": note, "evidence": evidence or []})
    refs = _check_evidence(org_id, data.evidence)
    before = state_of(att, now)
    att.status = "attested"
    att.attested_at = now
    att.attested_by_id = user_id
    att.valid_until = now + dt.timedelta(days=validity_days(att.control))
    att.note = data.note
    att.evidence = refs
    att.updated_at = now
    record(org_id, "attestation.attested", actor, target_type="attestation", target_id=att.id,
           control_tags=(att.control, *ATTESTATION_TAGS), now=now,
           data={"control": att.control, "from": before, "valid_until": iso(att.valid_until), "note": data.note,
                 "evidence": refs})
    _commit()
    return att


def reject(org_id: int, attestation_id: int, *, user_id: int, note: str, actor: Actor,
           now: dt.datetime | None = None) -> Attestation:
    now = now or utcnow()
    att = get_attestation(org_id, attestation_id)
    require_admin(org_id, user_id, "reject an attestation")
    data = validated(AttestationRejectIn, {"note": note})
    if att.status != "attested":
        raise ApiError(409, f"Only an attested attestation can be rejected; this one is {state_of(att, now)}.")
    previous = {"attested_at": iso(att.attested_at), "note": att.note, "evidence": att.evidence}
    att.status = "rejected"
    att.valid_until = None
    att.attested_at = None
    att.attested_by_id = None
    att.note = data.note
    att.evidence = []
    att.updated_at = now
    record(org_id, "attestation.rejected", actor, target_type="attestation", target_id=att.id,
           control_tags=ATTESTATION_TAGS, now=now,
           data={"control": att.control, "reason": data.note, "rejected": previous})
    _commit()
    return att


def attestation_json(att: Attestation, now: dt.datetime, users: dict[int, User] | None = None,
                     evidence_count: int | None = None) -> dict:
    users = users if users is not None else _users([att.owner_id, att.attested_by_id])
    catalog = load_catalog()
    control = catalog.control(att.control) if catalog.has(att.control) else None
    state = state_of(att, now)
    return {
        "id": att.id, "control": att.control, "framework": att.control.split(":", 1)[0],
        "control_title": control.title if control else "", "owner": user_json(users.get(att.owner_id)),
        "status": att.status, "state": state, "due_at": iso(att.due_at),
        "days_overdue": (now - att.due_at).days if state == "overdue" else 0,
        "attested_at": iso(att.attested_at), "attested_by": user_json(users.get(att.attested_by_id)),
        "valid_until": iso(att.valid_until),
        "validity_days": validity_days(att.control) if control else None,
        "note": att.note, "evidence": list(att.evidence or []), "evidence_refs": len(att.evidence or []),
        "evidence_count_90d": evidence_count if evidence_count is not None
        else tag_counts(att.org_id, [att.control], now).get(att.control, 0),
        "created_at": iso(att.created_at),
    }


_STATE_ORDER = {"overdue": 0, "rejected": 1, "expired": 2, "assigned": 3, "attested": 4}


def board(org_id: int, now: dt.datetime | None = None, *, state: str | None = None,
          owner_id: int | None = None) -> dict:
    """Every attestation with control title, owner, due, state and evidence counts (ONE grouped query
    over audit_tags for the whole board), plus counts by state over all rows (before filters)."""
    now = now or utcnow()
    atts = list(db.session.scalars(select(Attestation).where(Attestation.org_id == org_id)))
    users = _users([a.owner_id for a in atts] + [a.attested_by_id for a in atts])
    counts = tag_counts(org_id, [a.control for a in atts], now)
    rows = [attestation_json(a, now, users, counts.get(a.control, 0)) for a in atts]
    totals = {s: 0 for s in STATES}
    for r in rows:
        totals[r["state"]] += 1
    if state:
        rows = [r for r in rows if r["state"] == state]
    if owner_id:
        rows = [r for r in rows if r["owner"] and r["owner"]["id"] == owner_id]
    rows.sort(key=lambda r: (_STATE_ORDER[r["state"]], r["due_at"], r["control"]))
    return {"generated_at": iso(now), "evidence_window_days": EVIDENCE_WINDOW.days, "counts": totals,
            "total": sum(totals.values()), "attestations": rows}


def overdue(org_id: int, now: dt.datetime | None = None) -> list[dict]:
    return board(org_id, now, state="overdue")["attestations"]


def history(org_id: int, target_type: str, target_id: int, limit: int = 50) -> list[AuditEvent]:
    """The audit events about one register row, newest first (for detail pages)."""
    return list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.org_id == org_id, AuditEvent.target_type == target_type,
                                 AuditEvent.target_id == str(target_id)).order_by(AuditEvent.seq.desc()).limit(limit)))


def audit_events(org_id: int, ids: list[int]) -> dict[int, AuditEvent]:
    if not ids:
        return {}
    return {e.id: e for e in db.session.scalars(select(AuditEvent).where(AuditEvent.org_id == org_id,
                                                                         AuditEvent.id.in_(ids)))}


# --- exceptions -----------------------------------------------------------------------------------

class ControlExceptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)
    control: ControlTag = Field(description="Catalog control tag (unknown tag: 400).")
    reason: RequiredText = Field(description=f"Why the control cannot operate as designed, 1–{MAX_NOTE} characters.")
    compensating_control: Text = Field("", description="What reduces the risk meanwhile.")
    approver_id: Id = Field(description="An owner or admin of the org (not a member: 404; below admin: 409).")
    expires_at: UtcDatetime = Field(description="In the future and at most one year ahead (else 400).")


def exception_state(exc: ControlException, now: dt.datetime) -> str:
    if exc.status == "closed":
        return "closed"
    return "open" if exc.expires_at > now else "expired"


def get_exception(org_id: int, exception_id: int) -> ControlException:
    exc = db.session.scalar(select(ControlException).where(ControlException.org_id == org_id,
                                                           ControlException.id == exception_id))
    if exc is None:
        raise not_found("Exception")
    return exc


def open_exception(org_id: int, *, control: str, reason: str, compensating_control: str = "", approver_id: int,
                   expires_at: dt.datetime, user_id: int | None, actor: Actor,
                   now: dt.datetime | None = None) -> ControlException:
    now = now or utcnow()
    require_admin(org_id, user_id, "open an exception")
    data = validated(ControlExceptionIn, {"control": control, "reason": reason,
                                          "compensating_control": compensating_control, "approver_id": approver_id,
                                          "expires_at": expires_at})
    check_tag(data.control)
    approver = check_member(org_id, data.approver_id, "approver_id", Role.admin, "Approver")
    if data.expires_at <= now:
        raise bad_input("Expires: must be in the future.", "expires_at")
    if data.expires_at > end_of_day(now + MAX_EXCEPTION_AHEAD):
        raise bad_input("Expires: at most one year ahead.", "expires_at")
    exc = ControlException(org_id=org_id, control=data.control, reason=data.reason,
                           compensating_control=data.compensating_control, approver_id=approver.id, status="open",
                           opened_at=now, expires_at=data.expires_at.astimezone(dt.timezone.utc),
                           created_by_id=user_id)
    db.session.add(exc)
    db.session.flush()
    record(org_id, "control_exception.opened", actor, target_type="control_exception", target_id=exc.id,
           control_tags=EXCEPTION_TAGS, now=now,
           data={"control": exc.control, "approver": approver.email, "expires_at": iso(exc.expires_at),
                 "reason": exc.reason, "compensating_control": exc.compensating_control})
    _commit()
    return exc


def close_exception(org_id: int, exception_id: int, *, user_id: int | None, actor: Actor,
                    now: dt.datetime | None = None) -> ControlException:
    now = now or utcnow()
    exc = get_exception(org_id, exception_id)
    require_admin(org_id, user_id, "close an exception")
    if exc.status == "closed":
        raise ApiError(409, f"Exception #{exc.id} is already closed.")
    exc.status = "closed"
    exc.closed_at = now
    record(org_id, "control_exception.closed", actor, target_type="control_exception", target_id=exc.id,
           control_tags=EXCEPTION_TAGS, now=now, data={"control": exc.control})
    _commit()
    return exc


def exception_json(exc: ControlException, now: dt.datetime, users: dict[int, User] | None = None) -> dict:
    users = users if users is not None else _users([exc.approver_id, exc.created_by_id])
    catalog = load_catalog()
    return {"id": exc.id, "control": exc.control,
            "control_title": catalog.control(exc.control).title if catalog.has(exc.control) else "",
            "reason": exc.reason, "compensating_control": exc.compensating_control,
            "approver": user_json(users.get(exc.approver_id)), "opened_by": user_json(users.get(exc.created_by_id)),
            "status": exc.status, "state": exception_state(exc, now), "opened_at": iso(exc.opened_at),
            "expires_at": iso(exc.expires_at), "closed_at": iso(exc.closed_at),
            "days_left": max((exc.expires_at - now).days, 0) if exc.status == "open" else None}


def list_exceptions(org_id: int, now: dt.datetime | None = None) -> dict:
    now = now or utcnow()
    rows = list(db.session.scalars(select(ControlException).where(ControlException.org_id == org_id)
                                   .order_by(ControlException.id.desc())))
    users = _users([e.approver_id for e in rows] + [e.created_by_id for e in rows])
    out = [exception_json(e, now, users) for e in rows]
    out.sort(key=lambda r: (EXCEPTION_STATES.index(r["state"]), r["expires_at"]))
    counts = {s: sum(1 for r in out if r["state"] == s) for s in EXCEPTION_STATES}
    return {"generated_at": iso(now), "counts": counts, "exceptions": out}


# --- policies -------------------------------------------------------------------------------------

POLICY_TRANSITIONS = {("draft", "review"), ("review", "draft"), ("review", "accepted"), ("accepted", "retired")}
ADMIN_TRANSITIONS = {"accepted", "retired"}
POLICY_ACTIONS = {"review": "policy.submitted_for_review", "draft": "policy.returned_to_draft",
                  "accepted": "policy.accepted", "retired": "policy.retired"}
MAX_TAGS = 20
MAX_ACTIONS = 50


class PolicyCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)
    name: PolicyName = Field(description="Unique in the org (a clash is 409).")
    description: Text = ""
    control_tags: list[ControlTag] = Field(default_factory=list, max_length=MAX_TAGS,
                                           description="Catalog control tags (unknown tag: 400).")
    actions: list[ActionName] = Field(default_factory=list, max_length=MAX_ACTIONS,
                                      description="Automation actions the policy covers.")


class PolicyPatchIn(BaseModel):
    """Only the fields present change; only a draft can be edited (else 409)."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)
    name: PolicyName = None
    description: Text = None
    control_tags: list[ControlTag] = Field(None, max_length=MAX_TAGS)
    actions: list[ActionName] = Field(None, max_length=MAX_ACTIONS)


class PolicyTransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)
    to: Literal["draft", "review", "accepted", "retired"] = Field(description=(
        "draft -> review -> accepted -> retired, and review -> draft; anything else is 409. accepted and retired "
        "need owner/admin (403)."))


def _unique(seq) -> list:
    return list(dict.fromkeys(seq))


def _tags_ok(tags: list[str]) -> list[str]:
    unknown = load_catalog().unknown_tags(tags)
    if unknown:
        raise bad_input(f"Unknown control tag(s): {', '.join(unknown)}.", "control_tags")
    return _unique(tags)


def get_policy(org_id: int, policy_id: int) -> Policy:
    pol = db.session.scalar(select(Policy).where(Policy.org_id == org_id, Policy.id == policy_id))
    if pol is None:
        raise not_found("Policy")
    return pol


def _name_taken(org_id: int, name: str, exclude_id: int | None = None) -> bool:
    # lower() on both sides by the database: SQLite folds ASCII only, and Python's lower() folds more
    q = select(Policy.id).where(Policy.org_id == org_id, func.lower(Policy.name) == func.lower(literal(name)))
    if exclude_id is not None:
        q = q.where(Policy.id != exclude_id)
    return db.session.scalar(q.limit(1)) is not None


def _name_conflict(name: str) -> ApiError:
    return ApiError(409, f"A policy named {name!r} already exists in this organisation.")


def policy_tags(pol: Policy) -> list[str]:
    return pol.control_tags.split() if pol.control_tags else []


def create_policy(org_id: int, *, name: str, description: str = "", control_tags: list[str] | None = None,
                  actions: list[str] | None = None, actor: Actor, source: str = "manual",
                  now: dt.datetime | None = None) -> Policy:
    now = now or utcnow()
    data = validated(PolicyCreateIn, {"name": name, "description": description, "control_tags": control_tags or [],
                                "actions": actions or []})
    tags = _tags_ok(data.control_tags)
    lock_org(org_id)
    if _name_taken(org_id, data.name):
        raise _name_conflict(data.name)
    pol = Policy(org_id=org_id, name=data.name, description=data.description, status="draft",
                 control_tags=" ".join(tags), actions=_unique(data.actions), source=source, created_at=now,
                 updated_at=now)
    db.session.add(pol)
    flush_or_conflict(_name_conflict(data.name))
    record(org_id, "policy.created", actor, target_type="policy", target_id=pol.id,
           control_tags=(*tags, *POLICY_TAGS), now=now,
           data={"name": pol.name, "control_tags": tags, "actions": pol.actions})
    _commit(_name_conflict(data.name))
    return pol


def update_policy(org_id: int, policy_id: int, changes: dict, *, actor: Actor,
                  now: dt.datetime | None = None) -> Policy:
    now = now or utcnow()
    pol = get_policy(org_id, policy_id)
    data = validated(PolicyPatchIn, changes)
    given = {k: getattr(data, k) for k in data.model_fields_set}
    if pol.status != "draft":
        raise ApiError(409, f"Only a draft policy can be edited; this one is {pol.status}"
                       + (" (move it back to draft first)." if pol.status == "review" else "."))
    if any(v is None for v in given.values()):
        raise bad_input("Fields may not be null.", next(k for k, v in given.items() if v is None))
    if "control_tags" in given:
        given["control_tags"] = " ".join(_tags_ok(given["control_tags"]))
    if "actions" in given:
        given["actions"] = _unique(given["actions"])
    current = {"name": pol.name, "description": pol.description, "control_tags": pol.control_tags,
               "actions": list(pol.actions or [])}
    given = {k: v for k, v in given.items() if current[k] != v}
    if not given:
        return pol
    if "name" in given:
        lock_org(org_id)
        if _name_taken(org_id, given["name"], exclude_id=pol.id):
            raise _name_conflict(given["name"])
    before = {k: current[k] for k in given}
    for k, v in given.items():
        setattr(pol, k, v)
    pol.updated_at = now
    flush_or_conflict(_name_conflict(pol.name))
    record(org_id, "policy.updated", actor, target_type="policy", target_id=pol.id,
           control_tags=(*policy_tags(pol), *POLICY_TAGS), now=now,
           data={"name": pol.name, "from": before, "to": given})
    _commit(_name_conflict(pol.name))
    return pol


def transition_policy(org_id: int, policy_id: int, to: str, *, user_id: int | None, actor: Actor,
                      now: dt.datetime | None = None) -> Policy:
    now = now or utcnow()
    pol = get_policy(org_id, policy_id)
    target = validated(PolicyTransitionIn, {"to": to}).to
    if (pol.status, target) not in POLICY_TRANSITIONS:
        allowed = sorted(t for s, t in POLICY_TRANSITIONS if s == pol.status)
        raise ApiError(409, f"The policy is {pol.status} and cannot move to {target}; "
                       + (f"from {pol.status} it can move to {' or '.join(allowed)}." if allowed
                          else f"{pol.status} is final."))
    if target in ADMIN_TRANSITIONS:
        require_admin(org_id, user_id, "accept or retire a policy")
    if target == "accepted" and not policy_tags(pol):
        raise ApiError(409, "A policy needs at least one control tag to be accepted: it is evidence only for its tags.")
    before = pol.status
    pol.status = target
    if target == "accepted":
        pol.accepted_at = now
        pol.accepted_by_id = user_id
    pol.updated_at = now
    record(org_id, POLICY_ACTIONS[target], actor,
           target_type="policy", target_id=pol.id, control_tags=(*policy_tags(pol), *POLICY_TAGS), now=now,
           data={"name": pol.name, "from": before, "to": target})
    _commit()
    return pol


def submit_policy(org_id: int, policy_id: int, **kw) -> Policy:
    return transition_policy(org_id, policy_id, "review", **kw)


def accept_policy(org_id: int, policy_id: int, **kw) -> Policy:
    return transition_policy(org_id, policy_id, "accepted", **kw)


def retire_policy(org_id: int, policy_id: int, **kw) -> Policy:
    return transition_policy(org_id, policy_id, "retired", **kw)


def policy_json(pol: Policy, users: dict[int, User] | None = None) -> dict:
    users = users if users is not None else _users([pol.accepted_by_id])
    return {"id": pol.id, "name": pol.name, "description": pol.description, "status": pol.status,
            "control_tags": policy_tags(pol), "actions": list(pol.actions or []), "source": pol.source,
            "accepted_at": iso(pol.accepted_at), "accepted_by": user_json(users.get(pol.accepted_by_id)),
            "next": sorted(t for s, t in POLICY_TRANSITIONS if s == pol.status),
            "created_at": iso(pol.created_at), "updated_at": iso(pol.updated_at)}


def list_policies(org_id: int) -> dict:
    rows = list(db.session.scalars(select(Policy).where(Policy.org_id == org_id).order_by(Policy.name)))
    users = _users([p.accepted_by_id for p in rows])
    order = {"review": 0, "draft": 1, "accepted": 2, "retired": 3}
    out = sorted((policy_json(p, users) for p in rows), key=lambda r: (order.get(r["status"], 9), r["name"].lower()))
    counts = {s: sum(1 for r in out if r["status"] == s) for s in ("draft", "review", "accepted", "retired")}
    return {"counts": counts, "policies": out}
