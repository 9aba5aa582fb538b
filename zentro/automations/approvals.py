"""Approvals: a request to run one checked plan, decided once — in the app, the API or Slack.

Who may decide (``can_decide``): an owner or admin, or a member named by a required_approvers guardrail
that applied to the dry-run (the approvers snapshot in its check); never a viewer, and never the person
who requested it. A decision is a conditional UPDATE ... WHERE status = 'pending': of two concurrent
decisions (two clicks, a Slack replay, the app and Slack at once) exactly one changes the row; the other
gets ``changed=False`` and the decision that stands.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from zentro.accounts.models import Membership, Role, User
from zentro.audit.service import Actor, lock_org, record
from zentro.automations import service as core
from zentro.automations.models import Approval, DryRun
from zentro.extensions import db
from zentro.incidents import service as incidents
from zentro.notify import events
from zentro.platform.errors import ApiError
from zentro.platform.types import iso, utcnow

APPROVAL_TAGS = core.CHANGE_TAGS
VIA = ("app", "api", "slack")


def get_approval(org_id: int, approval_id: int) -> Approval:
    return core._get(Approval, org_id, approval_id, "Approval")


def approvals_query(org_id: int, *, status: str | None = None, incident_id: int | None = None):
    q = select(Approval).where(Approval.org_id == org_id)
    if status:
        q = q.where(Approval.status == status)
    if incident_id is not None:
        q = q.where(Approval.incident_id == incident_id)
    return q


def list_approvals(org_id: int, *, status: str | None = None, incident_id: int | None = None,
                   limit: int = 200) -> list[Approval]:
    """Newest first (pages; the API pages with approvals_query)."""
    return list(db.session.scalars(approvals_query(org_id, status=status, incident_id=incident_id)
                                   .order_by(Approval.id.desc()).limit(limit)))


def _timeline(org_id: int, incident_id: int | None, body: str, actor: Actor, data: dict, now: dt.datetime) -> None:
    if incident_id is None:
        return
    inc = incidents.get_incident(org_id, incident_id)
    incidents.add_event(inc, "approval", body, actor, data, now)


def request_approval(org_id: int, *, dry_run_id: int, actor: Actor, user_id: int | None, note: str = "",
                     now: dt.datetime | None = None) -> Approval:
    """A pending approval for the dry-run's plan (or the pending/approved one it already has), posted to
    Slack when configured. A blocked or expired dry-run cannot be approved (409)."""
    now = now or utcnow()
    dry = core.get_dry_run(org_id, dry_run_id)
    lock_org(org_id)  # one open request per dry-run, even under concurrent clicks
    existing = db.session.scalar(select(Approval).where(
        Approval.org_id == org_id, Approval.dry_run_id == dry.id, Approval.status.in_(("pending", "approved")))
        .order_by(Approval.id.desc()).limit(1))
    if existing is not None:
        db.session.rollback()
        return existing
    if dry.verdict == "blocked":
        raise ApiError(409, "This dry-run was blocked by a guardrail; a blocked plan cannot be approved.")
    if now >= dry.expires_at:
        raise ApiError(409, f"This dry-run expired at {iso(dry.expires_at)}; dry-run again, then request approval.")
    needs = [c["reason"] for c in dry.checks if c["verdict"] == "needs_approval"]
    reason = "; ".join(needs) if needs else "Requested voluntarily: no guardrail requires an approval for this plan."
    if note.strip():
        reason = f"{reason}\nRequester's note: {note.strip()}"
    a = Approval(org_id=org_id, dry_run_id=dry.id, playbook_id=dry.playbook_id, incident_id=dry.incident_id,
                 plan_hash=dry.plan_hash, action_key=core.plan_action_key(dry.plan)[:200],
                 summary=core.plan_summary(dry.plan), reason=reason, status="pending", requested_by_id=user_id,
                 created_at=now)
    db.session.add(a)
    db.session.flush()
    record(org_id, "approval.requested", actor, target_type="approval", target_id=a.id, control_tags=APPROVAL_TAGS,
           now=now, data={"dry_run_id": dry.id, "plan_hash": a.plan_hash, "action_key": a.action_key,
                          "summary": a.summary})
    _timeline(org_id, a.incident_id, f"Approval #{a.id} requested: {a.summary}", actor,
              {"approval_id": a.id, "dry_run_id": dry.id}, now)
    db.session.commit()
    from zentro.automations import slack  # Part B; imported here so the core never depends on Slack at import

    slack.post_approval(a)
    db.session.commit()
    return a


def named_approvers(org_id: int, approval: Approval) -> list[str]:
    """E-mails named by the required_approvers checks of the approval's dry-run."""
    if approval.dry_run_id is None:
        return []
    dry = db.session.scalar(select(DryRun).where(DryRun.org_id == org_id, DryRun.id == approval.dry_run_id))
    if dry is None:
        return []
    return sorted({e.lower() for c in dry.checks if c.get("kind") == "required_approvers"
                   for e in c.get("approvers", [])})


def can_decide(org_id: int, approval: Approval, user_id: int | None) -> str:
    """"" when ``user_id`` may decide ``approval``, else the reason why not."""
    row = db.session.execute(select(Membership.role, User.email).join(User, User.id == Membership.user_id)
                             .where(Membership.org_id == org_id, Membership.user_id == user_id)).first()
    if row is None:
        return "Only members of this organisation can decide its approvals."
    role, email = Role(row.role), row.email.lower()
    if approval.requested_by_id is not None and approval.requested_by_id == user_id:
        return "You requested this approval; someone else has to decide it."
    if role == Role.viewer:
        return "Viewers cannot decide approvals."
    if role.at_least(Role.admin):
        return ""
    named = named_approvers(org_id, approval)
    if email in named:
        return ""
    return ("Only an owner or admin" + (f", or a named approver ({', '.join(named)})," if named else "")
            + " can decide this approval.")


def decision_message(approval: Approval, changed: bool) -> str:
    who = core.user_emails([approval.decided_by_id]).get(approval.decided_by_id, "someone")
    text = f"{approval.status.capitalize()} by {who} at {iso(approval.decided_at)}"
    if approval.decided_via:
        text += f" (via {approval.decided_via})"
    return text + "." if changed else f"Already {text[0].lower()}{text[1:]}; nothing changed."


def decide(org_id: int, approval_id: int, *, approve: bool, user_id: int | None, actor: Actor, note: str = "",
           via: str = "app", now: dt.datetime | None = None) -> tuple[Approval, bool]:
    """Decide a pending approval once. Returns (approval, changed); a decided one is returned as it stands
    with changed False. 403 when ``can_decide`` refuses."""
    if via not in VIA:
        raise ValueError(f"via must be one of {VIA}")
    now = now or utcnow()
    a = get_approval(org_id, approval_id)
    refusal = can_decide(org_id, a, user_id)
    if refusal:
        raise ApiError(403, refusal)
    status = "approved" if approve else "rejected"
    result = db.session.execute(
        update(Approval).where(Approval.org_id == org_id, Approval.id == a.id, Approval.status == "pending")
        .values(status=status, decided_by_id=user_id, decided_via=via, decision_note=note, decided_at=now)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        db.session.rollback()
        db.session.refresh(a)
        return a, False
    db.session.refresh(a)
    record(org_id, f"approval.{status}", actor, target_type="approval", target_id=a.id, control_tags=APPROVAL_TAGS,
           now=now, data={"via": via, "note": note, "plan_hash": a.plan_hash, "action_key": a.action_key,
                          "dry_run_id": a.dry_run_id})
    _timeline(org_id, a.incident_id, f"Approval #{a.id} {status} via {via}" + (f": {note}" if note else ""), actor,
              {"approval_id": a.id, "status": status, "via": via}, now)
    events.emit(org_id, "approval.decided", {"approval": {
        "id": a.id, "status": status, "action_key": a.action_key, "summary": a.summary, "via": via, "note": note,
        "plan_hash": a.plan_hash, "incident_id": a.incident_id, "decided_by_id": user_id, "decided_at": iso(now)}},
        now=now)
    db.session.commit()
    if via != "slack" and a.slack_ts:
        from zentro.automations import slack

        slack.update_message(a)
        db.session.commit()
    return a, True
