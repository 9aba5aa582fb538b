"""Gap remediation tracking: one row per control gap the org decided to work on (status, owner, the playbook or
runbook that closes it, due date, note), and the remediation queue that joins those rows with the live gaps.

No Flask globals: functions take the org id, the audit Actor and an injectable ``now``; lookups are by
(org_id, id) and a miss is 404. Writes are for members and above (the route checks the role).

Rules
- ``control`` must be a catalog control tag; one row per control and org (a second one: 409).
- ``playbook_id`` must name one of the org's playbooks (another org's id or an unknown one: 404);
  ``runbook_url`` is an http(s) address or empty; ``owner_id`` a member of the org (not a member: 404; a viewer:
  409); ``due_at`` in the future, at most two years ahead (only checked when given).
- ``status`` ∈ GAP_REMEDIATION_STATUSES (open, in_progress, done, wont_fix). ``closed_at`` is set by the server:
  to ``now`` when the status moves to done or wont_fix, cleared when it moves back to open or in_progress.
- Every change is audited (``gap_remediation.created`` / ``.updated``) with the control-monitoring tags
  SOC2:CC4.2 and ISO27001:A.5.36 (evaluating and communicating deficiencies; compliance with policies), and
  the remediated control in the event data. The remediated control's own tag is deliberately NOT attached:
  an audit tag is evidence that the control operates, and tracking work on a gap says nothing of the sort —
  tagging it would give the control fresh "direct" evidence and close the gap on paper (the same rule as
  attestation assignments and exceptions, see ``attestations``).

Suggested fix for a gap (``suggest``), in this order, over the org's accepted policies that cover the control
(their control tags include the control or a one-hop crosswalk equivalent):
1. playbook: an enabled playbook every step of which the covering policy allows (its action patterns match every
   step key ``action:service``, the same test remediation uses); the runbook is the first runbook URL among the
   playbook's step services;
2. runbook: a covering policy's action pattern names a service (``restart:api-gateway``) that has a runbook URL;
3. policy: a covering policy exists but no playbook or runbook implements it;
4. none: no accepted policy covers the control — write one or link a runbook by hand.
"""
from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from zentro.accounts.models import Role
from zentro.audit.service import Actor, lock_org, record
from zentro.automations.models import Playbook
from zentro.compliance.attestations import (MAX_DUE_AHEAD, ControlTag, Id, Text, UtcDatetime, _commit, bad_input,
                                            check_member, check_tag, flush_or_conflict, validated)
from zentro.compliance.catalog import load_catalog
from zentro.compliance.models import GAP_REMEDIATION_STATUSES, GapRemediation, Policy
from zentro.extensions import db
from zentro.platform.errors import ApiError, not_found
from zentro.platform.types import iso, utcnow
from zentro.reliability.models import Service

TRACKING_TAGS = ("SOC2:CC4.2", "ISO27001:A.5.36")
CLOSED = ("done", "wont_fix")
Status = Literal["open", "in_progress", "done", "wont_fix"]
HttpUrl = Annotated[str, StringConstraints(max_length=500, pattern=r"^(?:https?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}"
                                                                   r"[A-Za-z0-9])?(?::[0-9]{1,5})?(?:[/?#][!-~]*)?)?$")]
HELP = {
    "control": "Control: a catalog tag such as SOC2:CC6.1 or ISO27001:A.5.15.",
    "owner_id": "Owner: a member of this organisation (member role or above).",
    "playbook_id": "Playbook: one of this organisation's playbooks.",
    "runbook_url": "Runbook: an http:// or https:// address (at most 500 characters), or empty.",
    "status": "Status: open, in_progress, done or wont_fix.",
    "due_at": "Due: a date in the future, at most two years ahead.",
    "note": "Note: at most 4000 characters.",
}

assert set(GAP_REMEDIATION_STATUSES) == {"open", "in_progress", "done", "wont_fix"}


class GapRemediationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)
    control: ControlTag = Field(description="Catalog control tag (unknown: 400); one row per control (a second: 409).")
    status: Status = Field("open", description="open, in_progress, done or wont_fix (done/wont_fix set closed_at).")
    owner_id: Id | None = Field(None, description="A member of the org (not a member: 404; a viewer: 409).")
    playbook_id: Id | None = Field(None, description="One of the org's playbooks (else 404).")
    runbook_url: HttpUrl = Field("", description="An http(s) runbook address, or empty.")
    due_at: UtcDatetime | None = Field(None, description="In the future, at most two years ahead (else 400).")
    note: Text = Field("", description="Free text, at most 4000 characters.")


class GapRemediationPatchIn(BaseModel):
    """Only the fields present change; status, runbook_url and note cannot be null (owner, playbook and due date
    can: null clears them)."""
    model_config = ConfigDict(extra="forbid", use_enum_values=True)
    status: Status = Field(None, description="New status; done/wont_fix set closed_at, open/in_progress clear it.")
    owner_id: Id | None = Field(None, description="A member of the org, or null to unassign.")
    playbook_id: Id | None = Field(None, description="One of the org's playbooks, or null.")
    runbook_url: HttpUrl = Field(None, description="An http(s) address, or empty to clear.")
    due_at: UtcDatetime | None = Field(None, description="In the future, at most two years ahead, or null.")
    note: Text = Field(None, description="Free text, at most 4000 characters.")


# --- lookups and checks -----------------------------------------------------------------------------------

def get_remediation(org_id: int, remediation_id: int) -> GapRemediation:
    row = db.session.scalar(select(GapRemediation).where(GapRemediation.org_id == org_id,
                                                         GapRemediation.id == remediation_id))
    if row is None:
        raise not_found("Gap remediation")
    return row


def _check_playbook(org_id: int, playbook_id: int | None) -> Playbook | None:
    if playbook_id is None:
        return None
    pb = db.session.scalar(select(Playbook).where(Playbook.org_id == org_id, Playbook.id == playbook_id))
    if pb is None:
        raise ApiError(404, f"Playbook: {playbook_id} is not a playbook of this organisation.",
                       errors=[{"loc": ["playbook_id"], "msg": "not a playbook of this organisation",
                                "type": "not_found"}])
    return pb


def _check_due(due_at: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
    if due_at is None:
        return None
    due_at = due_at.astimezone(dt.timezone.utc)
    if due_at <= now:
        raise bad_input("Due: must be in the future.", "due_at")
    if due_at > now + MAX_DUE_AHEAD:
        raise bad_input("Due: at most two years ahead.", "due_at")
    return due_at


def _values(row: GapRemediation) -> dict:
    return {"status": row.status, "owner_id": row.owner_id, "playbook_id": row.playbook_id,
            "runbook_url": row.runbook_url, "due_at": iso(row.due_at), "note": row.note}


# --- writes -----------------------------------------------------------------------------------------------

def create(org_id: int, data: dict, *, actor: Actor, now: dt.datetime | None = None) -> GapRemediation:
    now = now or utcnow()
    body: GapRemediationIn = validated(GapRemediationIn, data, HELP)  # type: ignore[assignment]
    check_tag(body.control)
    if body.owner_id is not None:
        check_member(org_id, body.owner_id, "owner_id", Role.member, "Owner")
    _check_playbook(org_id, body.playbook_id)
    due = _check_due(body.due_at, now)
    lock_org(org_id)
    existing = db.session.scalar(select(GapRemediation.id).where(GapRemediation.org_id == org_id,
                                                                 GapRemediation.control == body.control))
    conflict = ApiError(409, f"{body.control} already has a gap remediation"
                             + (f" (#{existing}); update that one." if existing else "."))
    if existing is not None:
        raise conflict
    row = GapRemediation(org_id=org_id, control=body.control, status=body.status, owner_id=body.owner_id,
                         playbook_id=body.playbook_id, runbook_url=body.runbook_url, due_at=due, note=body.note,
                         created_at=now, updated_at=now, closed_at=now if body.status in CLOSED else None)
    db.session.add(row)
    flush_or_conflict(conflict)
    record(org_id, "gap_remediation.created", actor, target_type="gap_remediation", target_id=row.id,
           control_tags=TRACKING_TAGS, now=now, data={"control": row.control, **_values(row)})
    _commit(conflict)
    return row


def update(org_id: int, remediation_id: int, changes: dict, *, actor: Actor,
           now: dt.datetime | None = None) -> GapRemediation:
    """Apply the fields present in ``changes`` (validated with GapRemediationPatchIn)."""
    now = now or utcnow()
    row = get_remediation(org_id, remediation_id)
    body: GapRemediationPatchIn = validated(GapRemediationPatchIn, changes, HELP)  # type: ignore[assignment]
    given = body.model_fields_set
    for name in ("status", "runbook_url", "note"):
        if name in given and getattr(body, name) is None:
            raise bad_input(HELP[name], name)
    if "owner_id" in given and body.owner_id is not None:
        check_member(org_id, body.owner_id, "owner_id", Role.member, "Owner")
    if "playbook_id" in given:
        _check_playbook(org_id, body.playbook_id)
    due = _check_due(body.due_at, now) if "due_at" in given else row.due_at
    before = _values(row)
    if "status" in given and body.status != row.status:
        row.status = body.status
        row.closed_at = now if body.status in CLOSED else None
    for name in ("owner_id", "playbook_id", "runbook_url", "note"):
        if name in given:
            setattr(row, name, getattr(body, name))
    row.due_at = due
    after = _values(row)
    changed = {k: after[k] for k in after if after[k] != before[k]}
    if changed:
        row.updated_at = now
        record(org_id, "gap_remediation.updated", actor, target_type="gap_remediation", target_id=row.id,
               control_tags=TRACKING_TAGS, now=now,
               data={"control": row.control, "changes": changed, "closed_at": iso(row.closed_at)})
    _commit()
    return row


def remediation_json(row: GapRemediation, emails: dict[int, str] | None = None,
                     playbooks: dict[int, str] | None = None) -> dict:
    if emails is None:
        from zentro.compliance.obligations import owner_emails
        emails = owner_emails(row.org_id)
    if playbooks is None:
        playbooks = playbook_names(row.org_id)
    catalog = load_catalog()
    return {"id": row.id, "control": row.control,
            "control_title": catalog.control(row.control).title if catalog.has(row.control) else "",
            "status": row.status, "owner_id": row.owner_id, "owner": emails.get(row.owner_id, "") if row.owner_id else "",
            "playbook_id": row.playbook_id, "playbook": playbooks.get(row.playbook_id, "") if row.playbook_id else "",
            "runbook_url": row.runbook_url, "due_at": iso(row.due_at), "note": row.note,
            "created_at": iso(row.created_at), "updated_at": iso(row.updated_at), "closed_at": iso(row.closed_at)}


def playbook_names(org_id: int) -> dict[int, str]:
    return {i: n for i, n in db.session.execute(select(Playbook.id, Playbook.name).where(Playbook.org_id == org_id))}


# --- suggestions ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Suggestion:
    kind: str  # playbook | runbook | policy | none
    playbook_id: int | None
    playbook: str
    runbook_url: str
    policy: str
    basis: str


NO_SUGGESTION = Suggestion("none", None, "", "", "", "No accepted policy covers this control or a crosswalk "
                                                     "equivalent: write one, or link a runbook by hand.")


class Suggester:
    """Reads the org's accepted policies (with their actions), playbooks and services once; ``suggest(tag)``
    then answers from memory (see the module docstring for the order)."""

    def __init__(self, org_id: int):
        self.catalog = load_catalog()
        self.policies = [(pid, name, set((tags or "").split()), [str(a) for a in (actions or [])])
                         for pid, name, tags, actions in db.session.execute(
                             select(Policy.id, Policy.name, Policy.control_tags, Policy.actions)
                             .where(Policy.org_id == org_id, Policy.status == "accepted").order_by(Policy.id))]
        services = db.session.execute(select(Service.id, Service.name, Service.runbook_url)
                                      .where(Service.org_id == org_id)).all()
        self.service_name = {sid: name for sid, name, _ in services}
        self.runbook_of = {name: url for _, name, url in services if url}
        self.playbooks = []
        for pid, name, steps, enabled in db.session.execute(
                select(Playbook.id, Playbook.name, Playbook.steps, Playbook.enabled)
                .where(Playbook.org_id == org_id).order_by(Playbook.id)):
            if not enabled:
                continue
            keys, runbook = [], ""
            for step in steps or []:
                svc = self.service_name.get(step.get("service_id"))
                if svc is None:
                    continue
                keys.append(f"{step.get('action')}:{svc}")
                runbook = runbook or self.runbook_of.get(svc, "")
            if keys:
                self.playbooks.append((pid, name, sorted(set(keys)), runbook))
        self._by_policy: dict[int, Suggestion] = {}

    def _for_policy(self, pid: int, name: str, patterns: list[str], tag: str) -> Suggestion:
        cached = self._by_policy.get(pid)
        if cached is not None:
            return cached
        found = None
        for pb_id, pb_name, keys, runbook in self.playbooks:
            if patterns and all(any(fnmatch.fnmatchcase(k, p) for p in patterns) for k in keys):
                found = Suggestion("playbook", pb_id, pb_name, runbook, name,
                                   f"accepted policy '{name}' covers the control and allows every step of playbook "
                                   f"'{pb_name}'" + (" (runbook from its service)" if runbook else ""))
                break
        if found is None:
            for p in patterns:
                svc = p.split(":", 1)[1] if ":" in p else ""
                if svc and not any(ch in svc for ch in "*?[") and svc in self.runbook_of:
                    found = Suggestion("runbook", None, "", self.runbook_of[svc], name,
                                       f"accepted policy '{name}' covers the control and names service {svc}, "
                                       "whose runbook is linked")
                    break
        if found is None:
            found = Suggestion("policy", None, "", "", name, f"accepted policy '{name}' covers the control; no "
                                                             "playbook or service runbook implements it yet")
        self._by_policy[pid] = found
        return found

    def suggest(self, tag: str) -> Suggestion:
        if not self.policies or not self.catalog.has(tag):
            return NO_SUGGESTION
        equivalents = self.catalog.equivalents(tag)
        covering = [p for p in self.policies if p[2] & equivalents]
        if not covering:
            return NO_SUGGESTION
        results = [self._for_policy(pid, name, patterns, tag) for pid, name, _, patterns in covering]
        rank = {"playbook": 0, "runbook": 1, "policy": 2}
        return min(results, key=lambda s: rank[s.kind])
