"""Policy intelligence: policy suggestions from approval decision history, their promotion into policy
review, and the policy-block summary (how often guarded operations were refused, and why).

A suggestion is an ``action_key`` (the plan's sorted step keys, e.g. ``restart:checkout``) that people
approved at least ``ZENTRO_POLICY_SUGGESTION_MIN_APPROVALS`` times and never rejected, and that no
non-retired policy covers yet: the organisation keeps saying yes to it, so it may deserve a policy that
lets remediation run it without asking again. Promoting creates that policy *in review*; a person still
accepts it on the policy page (only accepted policies count for remediation and as evidence).
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from flask import current_app
from sqlalchemy import case, func, select

from zentro.accounts.models import User
from zentro.audit.service import Actor, lock_org, record
from zentro.automations import service as core
from zentro.automations.models import Approval, Playbook, PolicyBlock
from zentro.compliance.models import Policy
from zentro.extensions import db
from zentro.platform.errors import ApiError
from zentro.platform.types import iso, utcnow

# A pre-approved change is a standard change: the change-management tags of every automation.
CHANGE_TAGS = core.CHANGE_TAGS
POLICY_NAME_PREFIX = "Pre-approved: "
MAX_NAME = 200
BLOCK_WINDOWS = {"7d": dt.timedelta(days=7), "30d": dt.timedelta(days=30)}
# What each PolicyBlocked reason_code (zentro.automations.service) means; unknown codes show humanised.
REASON_LABELS = {
    "dry_run_not_successful": "Dry-run was blocked by a guardrail",
    "plan_changed": "Plan changed since the dry-run",
    "dry_run_stale": "Dry-run older than the freshness limit",
    "dry_run_used": "Dry-run already executed",
    "missing_approval_note": "No approval note",
    "missing_rollback_plan": "No rollback plan",
    "approval_required": "Approval required but not granted",
    "no_accepted_policy": "No accepted policy covers the action",
}


def step_keys(action_key: str) -> list[str]:
    return [k for k in action_key.split(",") if k]


def covers(patterns: list[str], keys: list[str]) -> bool:
    """Every step key matches at least one of the policy's action patterns (shell-style wildcards)."""
    return bool(keys) and all(any(fnmatchcase(k, str(p)) for p in patterns) for k in keys)


def covering_policy(org_id: int, action_key: str, statuses=("draft", "review", "accepted")) -> Policy | None:
    """The oldest policy in one of ``statuses`` whose actions cover every step of ``action_key``."""
    keys = step_keys(action_key)
    policies = db.session.scalars(select(Policy).where(Policy.org_id == org_id, Policy.status.in_(statuses))
                                  .order_by(Policy.id))
    return next((p for p in policies if covers(list(p.actions or []), keys)), None)


@dataclass
class Suggestion:
    action_key: str
    approvals: int
    first_decided_at: dt.datetime
    last_decided_at: dt.datetime
    approvers: list[dict] = field(default_factory=list)  # [{id, email}]

    @property
    def steps(self) -> list[str]:
        return step_keys(self.action_key)

    def evidence(self) -> str:
        who = ", ".join(a["email"] for a in self.approvers) or "deleted users"
        return (f"Approved {self.approvals} times and never rejected, by {who}, between "
                f"{iso(self.first_decided_at)} and {iso(self.last_decided_at)}.")

    def json(self) -> dict:
        return {"action_key": self.action_key, "steps": self.steps, "approvals": self.approvals, "rejections": 0,
                "first_decided_at": iso(self.first_decided_at), "last_decided_at": iso(self.last_decided_at),
                "approvers": self.approvers, "evidence": self.evidence()}


def min_approvals() -> int:
    return max(1, int(current_app.config["ZENTRO_POLICY_SUGGESTION_MIN_APPROVALS"]))


def suggestions(org_id: int, *, threshold: int | None = None) -> list[Suggestion]:
    """Decided action keys approved ≥ threshold times, never rejected, not covered by a non-retired
    policy; most approved first."""
    threshold = threshold or min_approvals()
    approved = func.sum(case((Approval.status == "approved", 1), else_=0))
    rejected = func.sum(case((Approval.status == "rejected", 1), else_=0))
    rows = db.session.execute(
        select(Approval.action_key, approved, rejected, func.min(Approval.decided_at), func.max(Approval.decided_at))
        .where(Approval.org_id == org_id, Approval.status.in_(("approved", "rejected")))
        .group_by(Approval.action_key)
        .having(approved >= threshold, rejected == 0)).all()
    if not rows:
        return []
    policies = [list(p.actions or []) for p in db.session.scalars(
        select(Policy).where(Policy.org_id == org_id, Policy.status != "retired"))]
    found = [Suggestion(key, int(n), first, last) for key, n, _, first, last in rows
             if not any(covers(patterns, step_keys(key)) for patterns in policies)]
    if found:
        approvers = db.session.execute(
            select(Approval.action_key, User.id, User.email).join(User, User.id == Approval.decided_by_id)
            .where(Approval.org_id == org_id, Approval.status == "approved",
                   Approval.action_key.in_([s.action_key for s in found]))
            .distinct().order_by(User.email)).all()
        by_key = {s.action_key: s for s in found}
        for key, user_id, email in approvers:
            by_key[key].approvers.append({"id": user_id, "email": email})
    return sorted(found, key=lambda s: (-s.approvals, s.action_key))


def promoted_policies(org_id: int, limit: int = 20) -> list[Policy]:
    """Policies that came from suggestions, newest first (the page links to where they are reviewed)."""
    return list(db.session.scalars(select(Policy).where(Policy.org_id == org_id, Policy.source == "suggestion")
                                   .order_by(Policy.id.desc()).limit(limit)))


class AlreadyPromoted(ApiError):
    def __init__(self, policy: Policy):
        super().__init__(409, f"A {policy.status} policy already covers this action: #{policy.id} {policy.name!r}.",
                         error_code="ALREADY_COVERED")
        self.policy_id = policy.id


def _policy_name(org_id: int, action_key: str) -> str:
    """A unique name: "Pre-approved: <action key>", shortened with a digest when too long, numbered when a
    (retired) policy already has it."""
    base = POLICY_NAME_PREFIX + action_key
    if len(base) > MAX_NAME - 5:
        base = base[: MAX_NAME - 18] + "…" + hashlib.sha256(action_key.encode()).hexdigest()[:12]
    taken = {n.lower() for n in db.session.scalars(select(Policy.name).where(Policy.org_id == org_id))}
    name, n = base, 1
    while name.lower() in taken:
        n += 1
        name = f"{base} ({n})"
    return name


def promote(org_id: int, action_key: str, *, actor: Actor, now: dt.datetime | None = None) -> tuple[Policy, Suggestion]:
    """Turn a current suggestion into a policy in review (source "suggestion", change-management tags,
    the decision evidence in its description) and audit it, in one transaction under the org lock so
    two concurrent promotions make one policy. 409 when a policy already covers it; 404 when the key is
    not a suggestion."""
    now = now or utcnow()
    lock_org(org_id)
    existing = covering_policy(org_id, action_key)
    if existing is not None:
        db.session.rollback()
        raise AlreadyPromoted(existing)
    suggestion = next((s for s in suggestions(org_id) if s.action_key == action_key), None)
    if suggestion is None:
        db.session.rollback()
        raise ApiError(404, f"{action_key!r} is not a current policy suggestion: it needs at least {min_approvals()} "
                            "approvals and no rejection.")
    policy = Policy(org_id=org_id, name=_policy_name(org_id, action_key), status="review", source="suggestion",
                    control_tags=" ".join(CHANGE_TAGS), actions=suggestion.steps, created_at=now, updated_at=now,
                    description=f"Suggested from decision history for {', '.join(suggestion.steps)}. "
                                f"{suggestion.evidence()}")
    db.session.add(policy)
    db.session.flush()
    record(org_id, "policy.suggestion_promoted", actor, target_type="policy", target_id=policy.id,
           control_tags=CHANGE_TAGS, now=now,
           data={"name": policy.name, "action_key": action_key, "actions": suggestion.steps,
                 "approvals": suggestion.approvals, "approvers": [a["email"] for a in suggestion.approvers],
                 "first_decided_at": iso(suggestion.first_decided_at),
                 "last_decided_at": iso(suggestion.last_decided_at)})
    db.session.commit()
    return policy, suggestion


# --- policy-block summary ------------------------------------------------------------------------------

def reason_label(code: str) -> str:
    return REASON_LABELS.get(code) or code.replace("_", " ").capitalize()


def _delta(current: int, prior: int) -> dict:
    return {"count": current, "prior_count": prior, "delta": current - prior,
            "delta_pct": round((current - prior) * 100.0 / prior, 1) if prior else None}


def _window_counts(org_id: int, start: dt.datetime, end: dt.datetime, user_id: int | None, group):
    query = select(group, func.count()).where(PolicyBlock.org_id == org_id, PolicyBlock.created_at >= start,
                                              PolicyBlock.created_at < end)
    if user_id is not None:
        query = query.where(PolicyBlock.user_id == user_id)
    return db.session.execute(query.group_by(group)).all()


def _reasons(rows, total: int) -> list[dict]:
    return [{"reason_code": code, "label": reason_label(code), "count": n,
             "share_pct": round(n * 100.0 / total, 1) if total else 0.0}
            for code, n in sorted(rows, key=lambda r: (-r[1], r[0]))]


def policy_block_summary(org_id: int, *, window: str, user_id: int | None, now: dt.datetime | None = None) -> dict:
    """Blocks in [now - window, now) against the prior window of equal length: counts, delta and delta %
    (null when the prior window had none), reasons with labels and shares, operations, the five most
    blocked playbooks, and the same counts for the calling user (``mine``)."""
    end = now or utcnow()
    span = BLOCK_WINDOWS[window]
    start, prior_start = end - span, end - 2 * span

    def counts(user: int | None) -> tuple[dict, list]:
        reasons = _window_counts(org_id, start, end, user, PolicyBlock.reason_code)
        total = sum(n for _, n in reasons)
        prior = sum(n for _, n in _window_counts(org_id, prior_start, start, user, PolicyBlock.reason_code))
        return _delta(total, prior), _reasons(reasons, total)

    org_counts, org_reasons = counts(None)
    operations = _window_counts(org_id, start, end, None, PolicyBlock.operation)
    top = db.session.execute(
        select(PolicyBlock.playbook_id, Playbook.name, func.count())
        .join(Playbook, Playbook.id == PolicyBlock.playbook_id)
        .where(PolicyBlock.org_id == org_id, PolicyBlock.created_at >= start, PolicyBlock.created_at < end)
        .group_by(PolicyBlock.playbook_id, Playbook.name).order_by(func.count().desc(), Playbook.name).limit(5)).all()
    mine_counts, mine_reasons = counts(user_id) if user_id is not None else (_delta(0, 0), [])
    return {
        "window": window, "generated_at": iso(end),
        "current": {"start": iso(start), "end": iso(end)}, "prior": {"start": iso(prior_start), "end": iso(start)},
        **org_counts,
        "by_reason": org_reasons,
        "by_operation": [{"operation": op, "count": n} for op, n in sorted(operations, key=lambda r: (-r[1], r[0]))],
        "top_playbooks": [{"playbook_id": pid, "name": name, "count": n} for pid, name, n in top],
        "mine": {**mine_counts, "by_reason": mine_reasons},
    }
