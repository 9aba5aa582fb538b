"""Pages for the compliance committee: the settings form (/compliance/committee; the defaults are shown, and
said to be defaults, while nothing is saved) and the staffing action tracker (/compliance/staffing-actions: the
table with status buttons, the add form and the suggested relief not tracked yet). Forms post with the CSRF token;
bad input re-renders the form with the message and changes nothing; success redirects (post/redirect/get)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from zentro.accounts.models import Role
from zentro.compliance import attestations as att
from zentro.compliance import committee as svc
from zentro.compliance import obligations as obl
from zentro.compliance import report_registry as registry
from zentro.compliance.models import STAFFING_ACTION_KINDS, StaffingAction
from zentro.compliance.reporting import to_dict
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import page_route
from zentro.platform.types import utcnow

bp = Blueprint("compliance_committee_pages", __name__)
SETTINGS_FIELDS = ("capacityHoursPerWeek", "densityWarn", "densityCritical", "completionSlaDays",
                   "bundleCadenceDays", "escalationEmails")
ACTION_FIELDS = ("weekStart", "ownerId", "kind", "title", "hours", "note")


def _who():
    p = current_principal()
    return p, p.user.id


def _is_admin() -> bool:
    return current_principal().role.at_least(Role.admin)


def _errors_of(exc: ApiError) -> dict[str, str]:
    names = [str(e["loc"][0]) for e in (exc.errors or []) if e.get("loc")]
    return {names[0] if names else "form": exc.detail}


def _refused(exc: ApiError) -> bool:
    return exc.status in (400, 409) or (exc.status == 404 and bool(exc.errors))


def _number(raw: str):
    """A form number as int or float when it parses (the service validates the range); the raw text otherwise,
    so the service refuses it with its own message."""
    raw = raw.strip()
    if raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        return raw
    return int(value) if value.is_integer() and "." not in raw else value


# --- committee settings ---------------------------------------------------------------------------------

def _settings_page(form: dict | None = None, errors: dict | None = None, status: int = 200):
    p = current_principal()
    settings = svc.settings_json(p.org.id)
    values = {k: settings[k] for k in SETTINGS_FIELDS}
    values["escalationEmails"] = ", ".join(settings["escalationEmails"])
    values["effortHours"] = dict(settings["effortHours"])
    if form is not None:  # a refused submission: show what was typed
        values.update({k: v for k, v in form.items() if k != "effortHours"})
        values["effortHours"].update(form.get("effortHours", {}))
    return render_template("compliance/committee.html", settings=settings, values=values, kinds=obl.KINDS,
                           kind_labels=obl.KIND_LABELS, form=form, errors=errors or {},
                           can_edit=_is_admin()), status


@page_route(bp, "/compliance/committee", summary="Committee settings: capacity, density thresholds, SLA, "
                                                 "escalation recipients, effort per obligation kind.")
def committee_page():
    return _settings_page()


@page_route(bp, "/compliance/committee", methods=("POST",), endpoint="committee_save", min_role="admin",
            summary="Save the committee settings (owner/admin).")
def committee_save():
    p, user_id = _who()
    form = {k: request.form.get(k, "") for k in SETTINGS_FIELDS}
    form["effortHours"] = {k: request.form.get(f"effort_{k}", "") for k in obl.KINDS}
    changes: dict = {}
    for key in ("capacityHoursPerWeek", "densityWarn", "densityCritical", "completionSlaDays", "bundleCadenceDays"):
        value = _number(form[key])
        if value is not None:
            changes[key] = value
    changes["escalationEmails"] = [e for e in form["escalationEmails"].replace(",", " ").split() if e]
    effort = {k: _number(v) for k, v in form["effortHours"].items()}
    effort = {k: v for k, v in effort.items() if v is not None}
    if effort:
        changes["effortHours"] = effort
    try:
        svc.update_settings(p.org.id, changes, user_id=user_id, actor=p.actor)
    except ApiError as exc:
        if not _refused(exc):
            raise
        return _settings_page(form, _errors_of(exc), 409 if exc.status == 409 else 400)
    flash("Committee settings saved.", "success")
    return redirect(url_for("compliance_committee_pages.committee_page"))


# --- staffing actions -----------------------------------------------------------------------------------

def _tracker_page(form: dict | None = None, errors: dict | None = None, status: int = 200):
    p = current_principal()
    doc = to_dict(registry.build("staffing-actions", p.org.id, utcnow()))
    members = att.members(p.org.id, Role.member)
    by_email = {m["email"]: m["id"] for m in members}
    actions = {a["id"]: a for a in svc.list_actions(p.org.id)}
    return render_template("compliance/staffing_actions.html", doc=doc, actions=actions, members=members,
                           by_email=by_email, kinds=STAFFING_ACTION_KINDS, kind_labels=svc.KIND_LABELS,
                           form=form or {}, errors=errors or {}, can_edit=_is_admin(),
                           sla_days=doc["summary"]["completion_sla_days"]), status


@page_route(bp, "/compliance/staffing-actions", summary="Staffing action tracker: status, SLA, suggestions.")
def staffing_actions_page():
    return _tracker_page()


@page_route(bp, "/compliance/staffing-actions", methods=("POST",), endpoint="staffing_action_add",
            min_role="admin", summary="Add a staffing action (owner/admin).")
def staffing_action_add():
    p, user_id = _who()
    form = {k: request.form.get(k, "") for k in ACTION_FIELDS}
    data: dict = {"weekStart": form["weekStart"].strip(), "kind": form["kind"], "title": form["title"].strip(),
                  "note": form["note"].replace("\r\n", "\n")}
    owner = form["ownerId"].strip()
    if owner:
        data["ownerId"] = int(owner) if owner.isdigit() and len(owner) <= 10 else owner
    hours = _number(form["hours"])
    if hours is not None:
        data["hours"] = hours
    try:
        row = svc.create_action(p.org.id, data, user_id=user_id, actor=p.actor)
    except ApiError as exc:
        if not _refused(exc):
            raise
        return _tracker_page(form, _errors_of(exc), 409 if exc.status == 409 else 400)
    flash(f"Staffing action for the week of {row.week_start.isoformat()} proposed.", "success")
    return redirect(url_for("compliance_committee_pages.staffing_actions_page"))


@page_route(bp, "/compliance/staffing-actions/<int:action_id>/status", methods=("POST",),
            tenant_model=StaffingAction, min_role="admin", endpoint="staffing_action_status",
            summary="Move a staffing action to another status (owner/admin).")
def staffing_action_status(action_id: int):
    p, user_id = _who()
    try:
        row = svc.update_action(p.org.id, action_id, {"status": request.form.get("status", "")}, user_id=user_id,
                                actor=p.actor)
    except ApiError as exc:
        if exc.status not in (400, 409):
            raise
        return _tracker_page(errors={"form": exc.detail}, status=exc.status)
    flash(f"Staffing action #{row.id} is {row.status}.", "success")
    return redirect(url_for("compliance_committee_pages.staffing_actions_page"))


@page_route(bp, "/compliance/staffing-actions/<int:action_id>/delete", methods=("POST",),
            tenant_model=StaffingAction, min_role="admin", endpoint="staffing_action_delete",
            summary="Delete a staffing action (owner/admin).")
def staffing_action_delete(action_id: int):
    p, user_id = _who()
    svc.delete_action(p.org.id, action_id, user_id=user_id, actor=p.actor)
    flash(f"Staffing action #{action_id} deleted.", "success")
    return redirect(url_for("compliance_committee_pages.staffing_actions_page"))
