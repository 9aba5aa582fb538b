"""Automations › Policy suggestions: what the organisation keeps approving (never rejecting) that no
policy covers yet, with the evidence; owners and admins promote one into policy review, where it is
accepted or retired on the policy page."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from zentro.accounts.models import Role
from zentro.automations import suggestions as svc
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import page_route

bp = Blueprint("automation_suggestion_pages", __name__)


def _page(error: str = "", existing_policy_id: int | None = None, status: int = 200):
    p = current_principal()
    return render_template("automations/suggestions.html", suggestions=svc.suggestions(p.org.id),
                           promoted=svc.promoted_policies(p.org.id), min_approvals=svc.min_approvals(),
                           is_admin=p.role.at_least(Role.admin), error=error, existing_policy_id=existing_policy_id), status


@page_route(bp, "/automations/policy-suggestions", summary="Policy suggestions from approval history.")
def suggestion_list():
    return _page()


@page_route(bp, "/automations/policy-suggestions/promote", methods=("POST",), min_role="admin",
            summary="Owner/admin: promote a suggestion into policy review.")
def suggestion_promote():
    p = current_principal()
    action_key = request.form.get("action_key", "").strip()
    if not action_key or len(action_key) > 200:
        return _page("Choose a suggestion to promote.", status=400)
    try:
        policy, _ = svc.promote(p.org.id, action_key, actor=p.actor)
    except svc.AlreadyPromoted as exc:
        return _page(exc.detail, exc.policy_id, 409)
    except ApiError as exc:
        if exc.status != 404:
            raise
        return _page(exc.detail, status=400)
    flash(f"Policy {policy.name!r} is in review: accept it to let remediation run these actions.", "success")
    return redirect(url_for("compliance_register_pages.policy_detail", policy_id=policy.id))
