"""Automations › Slack: whether Slack approvals are configured (which settings are present, never their
values), the organisation's latest Slack deliveries and clicks, and — for owners and admins — which Slack
user each member is, so that their clicks on Approve/Reject count as theirs."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from zentro.accounts.models import Membership, Role
from zentro.automations import slack
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import page_route

bp = Blueprint("automation_slack_pages", __name__)


def _page(errors: dict | None = None, form: dict | None = None, status: int = 200):
    p = current_principal()
    return render_template("automations/slack.html", config=slack.configuration(),
                           request_url=url_for("slack_api.slack_approvals", _external=True),
                           events=slack.recent_events(p.org.id), members=slack.member_links(p.org.id),
                           is_admin=p.role.at_least(Role.admin), errors=errors or {}, form=form or {}), status


@page_route(bp, "/automations/slack", summary="Slack approvals: configuration, member links, latest events.")
def slack_page():
    return _page()


@page_route(bp, "/automations/slack/members/<int:membership_id>", methods=("POST",), tenant_model=Membership,
            min_role="admin", summary="Owner/admin: set or clear a member's Slack user id.")
def slack_member_link(membership_id: int):
    p = current_principal()
    value = request.form.get("slack_user_id", "")
    try:
        row = slack.link_slack_user(p.org.id, membership_id, value[:64], actor=p.actor)
    except ApiError as exc:
        if exc.status not in (400, 409):
            raise
        return _page({"membership_id": membership_id, "detail": exc.detail}, {membership_id: value[:64]},
                     exc.status)
    flash(f"Slack user id {'set to ' + row.slack_user_id if row.slack_user_id else 'cleared'}.", "success")
    return redirect(url_for("automation_slack_pages.slack_page"))
