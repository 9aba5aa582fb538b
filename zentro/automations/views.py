"""Automation pages: the overview (playbooks, pending approvals, recent executions and policy blocks),
playbook create/edit/delete with an ordered step editor and the playbook as data, guardrails (list,
create, edit, enable/disable, delete), approvals (pending first, decide with a note, history), the
execution log, and the incident automation panel (dry-run → request approval → execute, inline).

Views parse the form, call the automations service (zentro.automations.service / approvals), and render.
Forms post with the CSRF token; refused input re-renders the form with the reason (400, or 403/409 where
the service said so) and changes nothing; success redirects (post/redirect/get). The incident panel is an
HTMX partial that answers every post with itself; without JavaScript it is a page of its own."""
from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit
from typing import Any, Callable

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from markupsafe import Markup
from sqlalchemy import func, select

from zentro.accounts.models import Membership, Role, User
from zentro.automations import approvals
from zentro.automations import service as auto
from zentro.automations.guardrails import WEEKDAYS
from zentro.automations.models import Approval, DryRun, Execution, Guardrail, Playbook, PolicyBlock
from zentro.extensions import db
from zentro.incidents.models import Incident
from zentro.incidents.service import get_incident
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import is_htmx, page_route
from zentro.platform.types import iso, utcnow
from zentro.reliability.models import TIERS, ChangeEvent, Service

bp = Blueprint("automations", __name__)

ACTION_LABELS = {"restart": "Restart", "scale": "Scale", "rollback_deploy": "Roll back deploy",
                 "toggle_flag": "Toggle feature flag", "block_address": "Block address", "run_command": "Run command"}
KIND_LABELS = {"tier_protection": "Tier protection", "maintenance_window": "Maintenance window",
               "max_blast_radius": "Max blast radius", "required_approvers": "Required approvers",
               "change_freeze": "Change freeze"}
STEP_PARAMS = {"restart": (), "scale": ("replicas",), "rollback_deploy": ("to_ref",), "toggle_flag": ("flag", "on"),
               "block_address": ("cidr",), "run_command": ("command",)}
STEP_FIELDS = ("action", "service_id", "replicas", "to_ref", "flag", "on", "cidr", "command")
RECENT = 8
REQUESTER_NOTE = "Requester's note:"  # how approvals.request_approval appends the requester's note
LOG_PAGE = 25
MAX_FORM_TEXT = 4000
_INT = re.compile(r"^-?[0-9]{1,9}$")
# Other automation pages (Part B's) join the sub-navigation when their blueprint is registered.
EXTRA_TABS = (("/automations/slack", "Slack"), ("/automations/policy-suggestions", "Policy suggestions"))


# --- shared helpers ---------------------------------------------------------------------------------

def _role_at_least(role: Role) -> bool:
    p = current_principal()
    return p is not None and p.role is not None and p.role.at_least(role)


def _ago(t: dt.datetime, now: dt.datetime) -> str:
    seconds = int((now - t).total_seconds())
    future, s = seconds < 0, abs(seconds)
    if s < 45:
        return "just now"
    text = f"{max(1, round(s / 60))} min" if s < 3600 else f"{s // 3600} h" if s < 86_400 else f"{s // 86_400} d"
    return f"in {text}" if future else f"{text} ago"


def when(t: dt.datetime | None) -> Markup:
    """A time as "5 min ago", the exact UTC time in its tooltip and datetime attribute."""
    if not t:
        return Markup('<span class="muted">—</span>')
    return Markup('<time datetime="{0}" title="{1} UTC">{2}</time>').format(iso(t), t.strftime("%Y-%m-%d %H:%M"),
                                                                            _ago(t, utcnow()))


def _api_url(endpoint: str, **kw) -> str:
    return url_for(endpoint, **kw) if endpoint in current_app.view_functions else ""


def _tabs() -> list[tuple[str, str]]:
    tabs = [("automations.playbook_list", "Playbooks"), ("automations.guardrail_list", "Guardrails"),
            ("automations.approval_list", "Approvals"), ("automations.execution_list", "Executions")]
    by_rule = {r.rule: r.endpoint for r in current_app.url_map.iter_rules() if "GET" in (r.methods or ())}
    return tabs + [(by_rule[path], label) for path, label in EXTRA_TABS if path in by_rule]


def _pending_count() -> int:
    p = current_principal()
    if p is None or p.org is None:
        return 0
    return db.session.scalar(select(func.count(Approval.id)).where(Approval.org_id == p.org.id,
                                                                   Approval.status == "pending")) or 0


@bp.app_context_processor
def _area_helpers():
    """The Automations sub-navigation, for every automation page (Part B's pages extend the same layout)."""
    return {"auto_tabs": _tabs, "pending_count": _pending_count}


@bp.context_processor
def _helpers():
    return {"when": when, "action_labels": ACTION_LABELS, "kind_labels": KIND_LABELS,
            "can_write": _role_at_least(Role.member), "is_admin": _role_at_least(Role.admin)}


def _field_of(loc: list, fields: tuple[str, ...]) -> str:
    """The form field an error location names (its last known name), else "form"."""
    for part in reversed([str(x) for x in loc]):
        if part in fields:
            return part
    return "form"


def _message(e: dict, fallback: str) -> str:
    if e.get("type") == "string_pattern_mismatch":
        return "has characters that are not allowed here (one line, no leading or trailing spaces)."
    if e.get("type") == "missing":
        return "is required."
    return e.get("msg") or fallback


def _errors_of(exc: ApiError, fields: tuple[str, ...]) -> dict[str, str]:
    """A service refusal as {field: message} for the fields the form has; the form's banner says what
    the service said, or points at the marked fields."""
    errors: dict[str, str] = {}
    for e in exc.errors or []:
        name = _field_of(e.get("loc") or [], fields)
        if name != "form":
            msg = _message(e, exc.detail)
            errors[name] = f"{errors[name]} {msg}" if name in errors and msg not in errors[name] else msg
    errors["form"] = "Not saved: fix the fields marked below." if errors and exc.status == 400 else exc.detail
    return errors


def _status_of(exc: ApiError) -> int:
    return exc.status if exc.status in (403, 409) else 400


def _text(name: str, label: str, limit: int = MAX_FORM_TEXT) -> str:
    value = request.form.get(name, "")
    if "\x00" in value:
        raise ApiError(400, f"{label} must not contain the NUL character.", errors=[{"loc": [name], "msg": f"{label} must not contain the NUL character."}])
    if len(value) > limit:
        raise ApiError(400, f"{label} may have at most {limit} characters.",
                       errors=[{"loc": [name], "msg": f"{label} may have at most {limit} characters."}])
    return value.strip()


def _num(raw: str) -> Any:
    """A form number as an int; anything else is passed on unchanged so the service's validation names it."""
    raw = raw.strip()
    return int(raw) if _INT.match(raw) else raw


def _attempt(change: Callable[[], Any], rerender: Callable[[ApiError], Any]):
    """Run one form's change: (result, None), or (None, the form re-rendered with the refusal) when the
    service refuses the input (400/409; 403 when it refuses this user). Any other error propagates."""
    try:
        return change(), None
    except ApiError as exc:
        db.session.rollback()
        if exc.status not in (400, 403, 409) and not (exc.status == 404 and exc.errors):
            raise
        return None, rerender(exc)


def _services(org_id: int) -> list[Service]:
    return list(db.session.scalars(select(Service).where(Service.org_id == org_id).order_by(Service.tier, Service.name)))


def _emails(user_ids) -> dict[int, str]:
    ids = {i for i in user_ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.email).where(User.id.in_(ids))).all())


def _resolve_steps(steps: list[dict], services: dict[int, Service]) -> list[dict]:
    """Stored playbook steps with their service names, for display."""
    return [{**s, "service": services[s.get("service_id")].name if s.get("service_id") in services else None}
            for s in steps or []]


# --- overview ---------------------------------------------------------------------------------------

def _latest_by_playbook(model, org_id: int, playbook_ids: list[int]) -> dict[int, Any]:
    if not playbook_ids:
        return {}
    newest = (select(func.max(model.id)).where(model.org_id == org_id, model.playbook_id.in_(playbook_ids))
              .group_by(model.playbook_id))
    return {r.playbook_id: r for r in db.session.scalars(select(model).where(model.id.in_(newest)))}


def _execution_rows(org_id: int, executions: list[Execution]) -> list[dict]:
    names = dict(db.session.execute(select(Playbook.id, Playbook.name).where(
        Playbook.org_id == org_id, Playbook.id.in_({x.playbook_id for x in executions if x.playbook_id}))).all())
    refs = {i.id: i.ref for i in db.session.scalars(select(Incident).where(
        Incident.org_id == org_id, Incident.id.in_({x.incident_id for x in executions if x.incident_id})))}
    return [{"id": x.id, "mode": x.mode, "status": x.status, "created_at": x.created_at,
             "playbook_name": names.get(x.playbook_id), "incident_ref": refs.get(x.incident_id)} for x in executions]


@page_route(bp, "/automations", summary="Automations: playbooks, pending approvals, recent executions and policy blocks.")
def playbook_list():
    org_id = current_principal().org.id
    services = {s.id: s for s in _services(org_id)}
    playbooks = list(db.session.scalars(select(Playbook).where(Playbook.org_id == org_id).order_by(Playbook.name)))
    ids = [pb.id for pb in playbooks]
    last_dry, last_exec = _latest_by_playbook(DryRun, org_id, ids), _latest_by_playbook(Execution, org_id, ids)
    rows = []
    for pb in playbooks:
        steps = _resolve_steps(pb.steps, services)
        targets = list({s["service_id"]: services[s["service_id"]] for s in steps if s.get("service_id") in services}.values())
        rows.append({"playbook": pb, "steps": steps, "targets": targets, "last_dry_run": last_dry.get(pb.id),
                     "last_execution": last_exec.get(pb.id)})
    executions = list(db.session.scalars(select(Execution).where(Execution.org_id == org_id)
                                         .order_by(Execution.id.desc()).limit(RECENT)))
    blocks = list(db.session.scalars(select(PolicyBlock).where(PolicyBlock.org_id == org_id)
                                     .order_by(PolicyBlock.id.desc()).limit(RECENT)))
    names = {pb.id: pb.name for pb in playbooks}
    guardrails_on = db.session.scalar(select(func.count(Guardrail.id)).where(Guardrail.org_id == org_id,
                                                                             Guardrail.enabled.is_(True)))
    return render_template(
        "automations/index.html", playbooks=rows, pending=_pending_count(), guardrails_on=guardrails_on,
        robot=bool(current_app.config.get("ZENTRO_ROBOT_API_URL")), api_url=_api_url("automations_playbooks.list_playbooks"),
        executions=_execution_rows(org_id, executions),
        blocks=[{"operation": b.operation, "reason_code": b.reason_code, "reason": b.reason, "created_at": b.created_at,
                 "playbook_name": names.get(b.playbook_id)} for b in blocks])


# --- playbooks --------------------------------------------------------------------------------------

def _step_rows_from_form() -> list[dict]:
    """The editor's rows in order as {action, service_id, params}; fully blank rows are dropped and the
    parameters of other actions ignored. Values stay as typed so a refusal re-renders them."""
    cols = {f: request.form.getlist(f"step_{f}") for f in STEP_FIELDS}
    rows = []
    for i in range(max(len(v) for v in cols.values())):
        value = {f: (cols[f][i] if i < len(cols[f]) else "").strip() for f in STEP_FIELDS}
        if not value["action"] and not value["service_id"]:
            continue
        params: dict[str, Any] = {}
        for name in STEP_PARAMS.get(value["action"], ()):
            if name == "on":
                params["on"] = value["on"] != "off"
            elif name == "replicas":
                params["replicas"] = _num(value["replicas"])
            elif value[name] or name != "to_ref":  # an empty ref means "the previous deploy"
                params[name] = value[name]
        rows.append({"action": value["action"], "service_id": _num(value["service_id"]), "params": params})
    return rows


def _playbook_form() -> dict:
    return {"name": _text("name", "Name", 120), "description": _text("description", "Description"),
            "enabled": request.form.get("enabled") == "on", "steps": _step_rows_from_form()}


def _row_errors(exc_errors: list[dict]) -> dict[int, str]:
    """Messages about one step ("steps", i, …) keyed by the row index, named by their parameter."""
    rows: dict[int, str] = {}
    for e in exc_errors:
        loc = [str(x) for x in e.get("loc") or []]
        if len(loc) >= 2 and loc[0] == "steps" and loc[1].isdigit():
            what = next((x for x in reversed(loc[2:]) if x in STEP_FIELDS or x == "params"), "")
            rows[int(loc[1])] = f"{rows.get(int(loc[1]), '')} {what + ' ' if what else ''}{_message(e, '')}".strip()
    return rows


def _playbook_page(playbook: Playbook | None, form: dict | None = None, errors: dict | None = None,
                   row_errors: dict | None = None, status: int = 200):
    org_id = current_principal().org.id
    services = _services(org_id)
    by_id = {s.id: s for s in services}
    if form is None:
        form = ({"name": playbook.name, "description": playbook.description, "enabled": playbook.enabled,
                 "steps": [dict(s) for s in playbook.steps]} if playbook else
                {"name": "", "description": "", "enabled": True, "steps": []})
    form = {**form, "steps": [*form["steps"], {}]}  # a blank row to add a step without JavaScript
    context = {"playbook": playbook, "form": form, "errors": errors or {}, "row_errors": row_errors or {},
               "services": services}
    if playbook is not None:
        runs = list(db.session.scalars(select(DryRun).where(DryRun.org_id == org_id, DryRun.playbook_id == playbook.id)
                                       .order_by(DryRun.id.desc()).limit(RECENT)))
        done = {x.dry_run_id: x for x in db.session.scalars(select(Execution).where(
            Execution.org_id == org_id, Execution.dry_run_id.in_([r.id for r in runs])))} if runs else {}
        incidents = {i.id: i for i in db.session.scalars(select(Incident).where(
            Incident.org_id == org_id, Incident.id.in_({r.incident_id for r in runs if r.incident_id})))} if runs else {}
        context.update(steps=_resolve_steps(playbook.steps, by_id), playbook_data=auto.playbook_json(playbook),
                       api_url=_api_url("automations_playbooks.get_playbook", playbook_id=playbook.id),
                       runs=[{"dry_run": r, "execution": done.get(r.id), "incident": incidents.get(r.incident_id)}
                             for r in runs])
    return render_template("automations/playbook.html", **context), status


PLAYBOOK_FIELDS = ("name", "description", "enabled", "steps")


def _save_playbook(playbook_id: int | None):
    """Create (no id) or update a playbook from the form; a refusal re-renders the editor with the reasons,
    the ones about one step beside its row."""
    p = current_principal()
    org_id, actor, user_id = p.org.id, p.actor, p.user.id

    def change():
        form = _playbook_form()
        data = {k: form[k] for k in PLAYBOOK_FIELDS}
        if playbook_id is None:
            return auto.create_playbook(org_id, data, actor=actor, user_id=user_id)
        return auto.update_playbook(org_id, playbook_id, data, actor=actor)

    def rerender(exc: ApiError):
        playbook = auto.get_playbook(org_id, playbook_id) if playbook_id else None
        try:
            form = _playbook_form()
        except ApiError:  # the text itself was refused: show the stored values
            form = None
        errors = _errors_of(exc, PLAYBOOK_FIELDS)
        rows = _row_errors(exc.errors or [])
        if rows:  # said beside each row instead
            errors.pop("steps", None)
            errors["form"] = "Not saved: fix the steps marked below."
        return _playbook_page(playbook, form, errors, rows, _status_of(exc))

    return _attempt(change, rerender)


@page_route(bp, "/automations/playbooks/new", summary="Form for a new playbook.")
def playbook_new():
    return _playbook_page(None)


@page_route(bp, "/automations/playbooks", methods=("POST",), summary="Create a playbook (members and above).")
def playbook_create():
    row, refused = _save_playbook(None)
    if refused:
        return refused
    flash(f"Playbook {row.name} created.", "success")
    return redirect(url_for("automations.playbook_detail", playbook_id=row.id), 303)


@page_route(bp, "/automations/playbooks/<int:playbook_id>", tenant_model=Playbook,
            summary="One playbook: edit its steps, see it as data and its recent runs.")
def playbook_detail(playbook_id: int):
    return _playbook_page(auto.get_playbook(current_principal().org.id, playbook_id))


@page_route(bp, "/automations/playbooks/<int:playbook_id>", methods=("POST",), tenant_model=Playbook,
            endpoint="playbook_edit", summary="Save a playbook (members and above).")
def playbook_edit(playbook_id: int):
    auto.get_playbook(current_principal().org.id, playbook_id)
    row, refused = _save_playbook(playbook_id)
    if refused:
        return refused
    flash(f"Playbook {row.name} saved.", "success")
    return redirect(url_for("automations.playbook_detail", playbook_id=playbook_id), 303)


@page_route(bp, "/automations/playbooks/<int:playbook_id>/delete", methods=("POST",), tenant_model=Playbook,
            min_role="admin", summary="Delete a playbook (owner/admin); its dry-runs and executions stay.")
def playbook_delete(playbook_id: int):
    p = current_principal()
    name = auto.get_playbook(p.org.id, playbook_id).name
    auto.delete_playbook(p.org.id, playbook_id, actor=p.actor)
    flash(f"Playbook {name} deleted.", "success")
    return redirect(url_for("automations.playbook_list"), 303)


# --- guardrails -------------------------------------------------------------------------------------

GUARDRAIL_FIELDS = ("name", "service_id", "kind", "enabled", "params", "weekdays", "start", "end", "tz",
                    "block_outside", "max_tier", "max_services", "approvers", "starts_at", "ends_at", "reason")
_LOCAL_MINUTE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}$")


def _guardrail_form() -> dict:
    f = request.form
    return {"name": _text("name", "Name", 120), "service_id": f.get("service_id", "").strip(),
            "kind": f.get("kind", ""), "enabled": f.get("enabled") == "on", "weekdays": f.getlist("weekdays"),
            "start": f.get("start", "").strip(), "end": f.get("end", "").strip(), "tz": f.get("tz", "UTC"),
            "block_outside": f.get("block_outside") == "on", "max_tier": f.get("max_tier", "0"),
            "max_services": f.get("max_services", "").strip(), "approvers": f.getlist("approvers"),
            "starts_at": f.get("starts_at", "").strip(), "ends_at": f.get("ends_at", "").strip(),
            "reason": _text("reason", "Reason", 500)}


def _form_of(g: Guardrail | None) -> dict:
    """The form's values for a stored guardrail (or the defaults of a new one)."""
    form = {"name": "", "service_id": "", "kind": "tier_protection", "enabled": True, "weekdays": [], "start": "",
            "end": "", "tz": "UTC", "block_outside": False, "max_tier": "0", "max_services": "", "approvers": [],
            "starts_at": "", "ends_at": "", "reason": ""}
    if g is None:
        return form
    params = {k: (v[:16].replace("Z", "") if k in ("starts_at", "ends_at") else v) for k, v in (g.params or {}).items()}
    return {**form, **params, "name": g.name, "service_id": g.service_id or "", "kind": g.kind, "enabled": g.enabled}


def _utc_minute(raw: str) -> str:
    """A datetime-local value (UTC, to the minute) as ISO 8601 with Z; other text goes on as typed."""
    return f"{raw}:00Z" if _LOCAL_MINUTE.match(raw) else raw


def _params_of(kind: str, form: dict) -> dict:
    """The chosen kind's parameters from the form (the other kinds' fields are ignored)."""
    return {
        "maintenance_window": lambda: {"weekdays": form["weekdays"], "start": form["start"], "end": form["end"],
                                       "tz": form["tz"], "block_outside": form["block_outside"]},
        "tier_protection": lambda: {"max_tier": _num(form["max_tier"])},
        "max_blast_radius": lambda: {"max_services": _num(form["max_services"])},
        "required_approvers": lambda: {"approvers": form["approvers"], "min": 1},
        "change_freeze": lambda: {"starts_at": _utc_minute(form["starts_at"]), "ends_at": _utc_minute(form["ends_at"]),
                                  "reason": form["reason"]},
    }.get(kind, dict)()


def guardrail_summary(g: Guardrail) -> str:
    """The rule in one line, as the list shows it."""
    p = g.params or {}
    return {
        "maintenance_window": lambda: (f"Changes {', '.join(p.get('weekdays', []))} {p.get('start')}–{p.get('end')} "
                                       f"{p.get('tz', 'UTC')}; outside: {'blocked' if p.get('block_outside') else 'approval'}"),
        "tier_protection": lambda: f"Touching tier ≤ {p.get('max_tier')} needs approval",
        "max_blast_radius": lambda: f"More than {p.get('max_services')} services in the radius is blocked",
        "required_approvers": lambda: f"Approval by one of {', '.join(p.get('approvers', []))} (or an owner/admin)",
        "change_freeze": lambda: f"Frozen {str(p.get('starts_at'))[:16]} – {str(p.get('ends_at'))[:16]} UTC: {p.get('reason')}",
    }.get(g.kind, lambda: "")()


def _people(org_id: int) -> list[dict]:
    """Members who can decide approvals (not viewers): the required-approvers choices."""
    rows = db.session.execute(select(User.email, Membership.role).join(Membership, Membership.user_id == User.id)
                              .where(Membership.org_id == org_id, Membership.role != Role.viewer.value)
                              .order_by(User.email)).all()
    return [{"email": r.email.lower(), "role": r.role} for r in rows]


def _guardrail_context(org_id: int, form: dict, errors: dict) -> dict:
    return {"form": form, "errors": errors, "services": _services(org_id), "people": _people(org_id),
            "weekdays": WEEKDAYS, "tiers": TIERS}


def _guardrails_page(form: dict | None = None, errors: dict | None = None, status: int = 200):
    org_id = current_principal().org.id
    services = {s.id: s for s in _services(org_id)}
    rows = [{"id": g.id, "name": g.name, "kind": g.kind, "enabled": g.enabled, "service": services.get(g.service_id),
             "summary": guardrail_summary(g)} for g in auto.list_guardrails(org_id)]
    return render_template("automations/guardrails.html", guardrails=rows, creating=form is not None,
                           can_manage=_role_at_least(Role.admin), api_url=_api_url("automations_guardrails.list_guardrails"),
                           **_guardrail_context(org_id, form or _form_of(None), errors or {})), status


@page_route(bp, "/automations/guardrails", summary="Guardrails: the rules every dry-run is checked against.")
def guardrail_list():
    return _guardrails_page()


@page_route(bp, "/automations/guardrails", methods=("POST",), endpoint="guardrail_create", min_role="admin",
            summary="Add a guardrail (owner/admin).")
def guardrail_create():
    p = current_principal()
    org_id, actor, user_id = p.org.id, p.actor, p.user.id
    form = {}

    def change():
        form.update(_guardrail_form())
        return auto.create_guardrail(org_id, {
            "name": form["name"], "service_id": _num(form["service_id"]) if form["service_id"] else None,
            "kind": form["kind"], "enabled": form["enabled"], "params": _params_of(form["kind"], form)},
            actor=actor, user_id=user_id)

    row, refused = _attempt(change, lambda exc: _guardrails_page(form or _form_of(None),
                                                                 _errors_of(exc, GUARDRAIL_FIELDS), _status_of(exc)))
    if refused:
        return refused
    flash(f"Guardrail {row.name} added.", "success")
    return redirect(url_for("automations.guardrail_list"), 303)


def _guardrail_page(guardrail_id: int, form: dict | None = None, errors: dict | None = None, status: int = 200):
    org_id = current_principal().org.id
    g = auto.get_guardrail(org_id, guardrail_id)
    return render_template("automations/guardrail.html", guardrail=g, guardrail_data=auto.guardrail_json(g),
                           **_guardrail_context(org_id, form or _form_of(g), errors or {})), status


@page_route(bp, "/automations/guardrails/<int:guardrail_id>", tenant_model=Guardrail, min_role="admin",
            summary="Edit a guardrail (owner/admin).")
def guardrail_detail(guardrail_id: int):
    return _guardrail_page(guardrail_id)


@page_route(bp, "/automations/guardrails/<int:guardrail_id>", methods=("POST",), tenant_model=Guardrail,
            endpoint="guardrail_edit", min_role="admin", summary="Save a guardrail (owner/admin).")
def guardrail_edit(guardrail_id: int):
    p = current_principal()
    org_id, actor = p.org.id, p.actor
    kind = auto.get_guardrail(org_id, guardrail_id).kind  # the kind of a guardrail cannot change
    form = {}

    def change():
        form.update(_guardrail_form(), kind=kind)
        return auto.update_guardrail(org_id, guardrail_id, {
            "name": form["name"], "service_id": _num(form["service_id"]) if form["service_id"] else None,
            "enabled": form["enabled"], "params": _params_of(kind, form)}, actor=actor)

    row, refused = _attempt(change, lambda exc: _guardrail_page(guardrail_id, form or None,
                                                                _errors_of(exc, GUARDRAIL_FIELDS), _status_of(exc)))
    if refused:
        return refused
    flash(f"Guardrail {row.name} saved.", "success")
    return redirect(url_for("automations.guardrail_list"), 303)


@page_route(bp, "/automations/guardrails/<int:guardrail_id>/toggle", methods=("POST",), tenant_model=Guardrail,
            min_role="admin", summary="Enable or disable a guardrail (owner/admin).")
def guardrail_toggle(guardrail_id: int):
    p = current_principal()
    raw = request.form.get("enabled", "")
    if raw not in ("0", "1"):
        auto.get_guardrail(p.org.id, guardrail_id)
        return _guardrails_page(errors={"form": "Say enabled=1 (enable) or enabled=0 (disable)."}, status=400)
    row = auto.update_guardrail(p.org.id, guardrail_id, {"enabled": raw == "1"}, actor=p.actor)
    flash(f"Guardrail {row.name} {'enabled' if row.enabled else 'disabled'}.", "success")
    return redirect(url_for("automations.guardrail_list"), 303)


@page_route(bp, "/automations/guardrails/<int:guardrail_id>/delete", methods=("POST",), tenant_model=Guardrail,
            min_role="admin", summary="Delete a guardrail (owner/admin).")
def guardrail_delete(guardrail_id: int):
    p = current_principal()
    gone = auto.delete_guardrail(p.org.id, guardrail_id, actor=p.actor)
    flash(f"Guardrail {gone['name']} deleted.", "success")
    return redirect(url_for("automations.guardrail_list"), 303)


# --- approvals --------------------------------------------------------------------------------------

def _slack_line(a: Approval) -> str:
    """Where the Slack message stands, as people read it (never "sent" unless Slack took it)."""
    status = a.slack_status or ""
    if status == "posted":
        channel = current_app.config.get("ZENTRO_SLACK_APPROVALS_CHANNEL") or a.slack_channel
        return f"Posted to {channel}" + (f" (message {a.slack_ts})" if a.slack_ts else "")
    if status.startswith("not configured"):
        return f"Slack not configured ({status.partition(': ')[2] or 'no bot token'})."
    if status.startswith("failed"):
        return f"Slack post failed: {status.partition(': ')[2]}."
    return "Not posted to Slack."


def _request_note(a: Approval) -> str:
    """The requester's own words, which request_approval appends to the guardrails' reasons."""
    return a.reason.partition(REQUESTER_NOTE)[2].strip() if REQUESTER_NOTE in (a.reason or "") else ""


def _by_id(model, org_id: int, ids) -> dict[int, Any]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return {r.id: r for r in db.session.scalars(select(model).where(model.org_id == org_id, model.id.in_(ids)))}


def _approval_rows(org_id: int, rows: list[Approval], user_id: int) -> list[dict]:
    dries = _by_id(DryRun, org_id, [a.dry_run_id for a in rows])
    incidents = _by_id(Incident, org_id, [a.incident_id for a in rows])
    playbooks = _by_id(Playbook, org_id, [a.playbook_id for a in rows])
    emails = _emails([a.requested_by_id for a in rows] + [a.decided_by_id for a in rows])
    out = []
    for a in rows:
        dry = dries.get(a.dry_run_id)
        out.append({"approval": a, "plan": dry.plan if dry else [], "incident": incidents.get(a.incident_id),
                    "playbook": playbooks.get(a.playbook_id),
                    "checks": [c for c in (dry.checks if dry else []) if c["verdict"] == "needs_approval"],
                    "requested_by": emails.get(a.requested_by_id), "decided_by": emails.get(a.decided_by_id),
                    "slack": _slack_line(a), "request_note": _request_note(a),
                    "refusal": approvals.can_decide(org_id, a, user_id) if a.status == "pending" else ""})
    return out


def _before() -> int | None:
    raw = request.args.get("before", "")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 2**31 else None


def _approvals_page(errors: dict | None = None, errors_for: int | None = None, note: str = "", status: int = 200):
    p = current_principal()
    org_id = p.org.id
    pending = list(reversed(approvals.list_approvals(org_id, status="pending")))  # oldest waiting first
    q = approvals.approvals_query(org_id).where(Approval.status != "pending")
    before = _before()
    if before:
        q = q.where(Approval.id < before)
    decided = list(db.session.scalars(q.order_by(Approval.id.desc()).limit(LOG_PAGE + 1)))
    more = decided[LOG_PAGE - 1].id if len(decided) > LOG_PAGE else None
    return render_template("automations/approvals.html", pending=_approval_rows(org_id, pending, p.user.id),
                           decided=_approval_rows(org_id, decided[:LOG_PAGE], p.user.id), decided_more=more,
                           errors=errors or {}, errors_for=errors_for, note=note,
                           api_url=_api_url("automations_approvals.list_approvals")), status


@page_route(bp, "/automations/approvals", summary="Approvals: pending first, decide with a note; decided history.")
def approval_list():
    return _approvals_page()


@page_route(bp, "/automations/approvals/<int:approval_id>/decide", methods=("POST",), tenant_model=Approval,
            summary="Approve or reject a pending approval with a note (owner/admin or a named approver).")
def approval_decide(approval_id: int):
    p = current_principal()
    org_id, actor, user_id = p.org.id, p.actor, p.user.id
    approvals.get_approval(org_id, approval_id)
    decision = request.form.get("decision", "")
    try:
        note = _text("note", "The note")
        if decision not in ("approve", "reject"):
            raise ApiError(400, "Choose Approve or Reject.")
        row, changed = approvals.decide(org_id, approval_id, approve=decision == "approve", user_id=user_id,
                                        actor=actor, note=note, via="app")
    except ApiError as exc:
        db.session.rollback()
        if exc.status not in (400, 403, 409):
            raise
        return _approvals_page(_errors_of(exc, ("note",)), approval_id, request.form.get("note", "")[:MAX_FORM_TEXT],
                               _status_of(exc))
    flash(approvals.decision_message(row, changed), "success" if changed else "info")
    return redirect(url_for("automations.approval_list") + f"#approval-{approval_id}", 303)


# --- executions -------------------------------------------------------------------------------------

@page_route(bp, "/automations/executions", summary="Execution log: plan, mode, status, robot result, approval, notes.")
def execution_list():
    org_id = current_principal().org.id
    q = select(Execution).where(Execution.org_id == org_id)
    before = _before()
    if before:
        q = q.where(Execution.id < before)
    rows = list(db.session.scalars(q.order_by(Execution.id.desc()).limit(LOG_PAGE + 1)))
    more = rows[LOG_PAGE - 1].id if len(rows) > LOG_PAGE else None
    rows = rows[:LOG_PAGE]
    dries = _by_id(DryRun, org_id, [x.dry_run_id for x in rows])
    approvals_by = _by_id(Approval, org_id, [x.approval_id for x in rows])
    incidents = _by_id(Incident, org_id, [x.incident_id for x in rows])
    playbooks = _by_id(Playbook, org_id, [x.playbook_id for x in rows])
    emails = _emails([x.created_by_id for x in rows] + [a.decided_by_id for a in approvals_by.values()])
    out = []
    for x in rows:
        a = approvals_by.get(x.approval_id)
        out.append({"execution": x, "plan": dries[x.dry_run_id].plan if x.dry_run_id in dries else [],
                    "approval": a, "approved_by": emails.get(a.decided_by_id) if a else None,
                    "incident": incidents.get(x.incident_id), "playbook": playbooks.get(x.playbook_id),
                    "created_by": emails.get(x.created_by_id)})
    return render_template("automations/executions.html", executions=out, more=more)


# --- the incident panel -----------------------------------------------------------------------------

def _current_refs(org_id: int, service_ids) -> dict[int, str]:
    """The ref of each service's latest deploy (what a rollback's undo redeploys)."""
    refs: dict[int, str] = {}
    for sid, ref in db.session.execute(select(ChangeEvent.service_id, ChangeEvent.ref).where(
            ChangeEvent.org_id == org_id, ChangeEvent.service_id.in_(set(service_ids)), ChangeEvent.kind == "deploy",
            ChangeEvent.ref != "").order_by(ChangeEvent.occurred_at.desc(), ChangeEvent.id.desc())):
        refs.setdefault(sid, ref)
    return refs


def rollback_suggestion(plan: list[dict], current_refs: dict[int, str], runbooks: dict[int, str]) -> str:
    """A rollback plan to start from: one undo per step, last step first (the order to undo in)."""
    def undo(s: dict) -> str:
        name, p = s["service"], s.get("params") or {}
        ref = current_refs.get(s["service_id"])
        runbook = f" (runbook: {runbooks[s['service_id']]})" if runbooks.get(s["service_id"]) else ""
        return {
            "restart": f"Restart of {name} needs no undo; if it does not come back healthy, redeploy "
                       f"{name} at {ref or 'its current ref'}{runbook}.",
            "scale": f"Scale {name} back to its replica count before this change (now: check the deployment "
                     f"before executing){runbook}.",
            "rollback_deploy": f"Redeploy {name} at the current ref {ref}." if ref else
                               f"Redeploy {name} at the build running now (no deploy ref recorded).",
            "toggle_flag": f"Set flag {p.get('flag')} on {name} back {'off' if p.get('on') else 'on'}.",
            "block_address": f"Remove the block on {p.get('cidr')} for {name}.",
            "run_command": f"Undo the effect of `{p.get('command', '')[:80]}` on {name} by hand{runbook}.",
        }.get(s["action"], f"Undo {s['action']} on {name}{runbook}.")
    return "\n".join(f"{i}. {undo(s)}" for i, s in enumerate(reversed(plan), start=1))


def _panel_playbooks(org_id: int, incident: Incident) -> tuple[list[Playbook], list[Playbook]]:
    """Enabled playbooks: (those with a step on the incident's service, the others)."""
    mine, others = [], []
    for pb in auto.list_playbooks(org_id):
        if pb.enabled:
            targets = {s.get("service_id") for s in pb.steps or []}
            (mine if incident.service_id is not None and incident.service_id in targets else others).append(pb)
    return mine, others


def _panel_dry_run(org_id: int, incident_id: int, dry_run_id: int | None) -> DryRun | None:
    q = select(DryRun).where(DryRun.org_id == org_id, DryRun.incident_id == incident_id)
    if dry_run_id is not None:
        q = q.where(DryRun.id == dry_run_id)
    return db.session.scalar(q.order_by(DryRun.id.desc()).limit(1))


def _panel_approval(org_id: int, dry: DryRun) -> Approval | None:
    """The approval the panel shows for a dry-run: its own; else an open one for the same plan (pending, or
    approved and not yet used by an execution), which execute accepts for a fresh dry-run of that plan."""
    own = db.session.scalar(select(Approval).where(Approval.org_id == org_id, Approval.dry_run_id == dry.id)
                            .order_by(Approval.id.desc()).limit(1))
    if own is not None:
        return own
    used = select(Execution.approval_id).where(Execution.org_id == org_id, Execution.approval_id.is_not(None))
    return db.session.scalar(select(Approval).where(
        Approval.org_id == org_id, Approval.plan_hash == dry.plan_hash, Approval.status.in_(("pending", "approved")),
        Approval.id.not_in(used)).order_by(Approval.id.desc()).limit(1))


def _panel(incident_id: int, *, dry_run_id: int | None = None, error: str = "", notice: str = "",
           block: str = "", form: dict | None = None, errors: dict | None = None, refresh: bool = False,
           status: int = 200):
    """The panel of the incident with one dry-run (the given one, else the incident's latest) and what
    happened to it: its approval, its execution, the last refusal."""
    p = current_principal()
    org_id = p.org.id
    incident = get_incident(org_id, incident_id)
    mine, others = _panel_playbooks(org_id, incident)
    dry = _panel_dry_run(org_id, incident_id, dry_run_id)
    ctx: dict[str, Any] = {"incident": incident, "mine": mine, "others": others, "dry": None, "error": error,
                           "notice": notice, "block": block, "errors": errors or {}, "refresh_timeline": refresh,
                           "robot": bool(current_app.config.get("ZENTRO_ROBOT_API_URL")),
                           "selected": dry.playbook_id if dry else (mine[0].id if mine else None)}
    if dry is not None:
        now = utcnow()
        services = {s.id: s for s in _services(org_id)}
        approval = _panel_approval(org_id, dry)
        execution = db.session.scalar(select(Execution).where(Execution.org_id == org_id,
                                                              Execution.dry_run_id == dry.id))
        last_block = None if block or execution else db.session.scalar(
            select(PolicyBlock).where(PolicyBlock.org_id == org_id, PolicyBlock.dry_run_id == dry.id)
            .order_by(PolicyBlock.id.desc()).limit(1))
        emails = _emails([approval.requested_by_id, approval.decided_by_id] if approval else [])
        suggestion = rollback_suggestion(dry.plan, _current_refs(org_id, [s["service_id"] for s in dry.plan]),
                                         {i: s.runbook_url for i, s in services.items()})
        ctx.update(dry=dry, fresh=now < dry.expires_at, approval=approval, execution=execution,
                   last_block=last_block, playbook=_by_id(Playbook, org_id, [dry.playbook_id]).get(dry.playbook_id),
                   approval_people=emails, slack_line=_slack_line(approval) if approval else "",
                   form=form or {"approval_note": "", "rollback_plan": suggestion},
                   needs_approval=dry.verdict == "needs_approval",
                   approved=approval is not None and approval.status == "approved")
    template = "automations/_incident_panel.html" if is_htmx() else "automations/incident_panel.html"
    return render_template(template, **ctx), status


def _after(incident_id: int, **panel):
    """HTMX: the panel again, with the outcome; without JavaScript: flash it and show the panel page."""
    if is_htmx():
        return _panel(incident_id, refresh=bool(panel.get("notice") or panel.get("block")) and _on_incident_page(incident_id),
                      **panel)
    message = panel.get("error") or panel.get("block") or panel.get("notice")
    if panel.get("status", 200) != 200:
        return _panel(incident_id, **panel)
    if message:
        flash(message, "success")
    return redirect(url_for("automations.incident_panel", incident_id=incident_id,
                            dry_run_id=panel.get("dry_run_id")), 303)


def _on_incident_page(incident_id: int) -> bool:
    """Whether the HTMX request comes from the incident's page (whose timeline the panel then refreshes)."""
    page = urlsplit(request.headers.get("HX-Current-URL", "")).path
    return "incidents.incident_detail" in current_app.view_functions and \
        page == url_for("incidents.incident_detail", incident_id=incident_id)


def _form_id(name: str) -> int | None:
    raw = request.form.get(name, "").strip()
    return int(raw) if raw.isdigit() and 0 < int(raw) < 2**31 else None


def _incident_dry_run(org_id: int, incident_id: int) -> DryRun | None:
    """The dry-run the form names, if it belongs to this incident (anything else is bad input)."""
    dry_run_id = _form_id("dry_run_id")
    return _panel_dry_run(org_id, incident_id, dry_run_id) if dry_run_id else None


@page_route(bp, "/incidents/<int:incident_id>/automations", tenant_model=Incident,
            summary="The incident's automation panel: dry-run a playbook, request approval, execute.")
def incident_panel(incident_id: int):
    raw = request.args.get("dry_run_id", "")
    return _panel(incident_id, dry_run_id=int(raw) if raw.isdigit() and 0 < int(raw) < 2**31 else None)


@page_route(bp, "/incidents/<int:incident_id>/automations/dry-run", methods=("POST",), tenant_model=Incident,
            summary="Dry-run a playbook for the incident (members and above).")
def incident_dry_run(incident_id: int):
    p = current_principal()
    org_id, actor, user_id = p.org.id, p.actor, p.user.id
    get_incident(org_id, incident_id)
    playbook_id = _form_id("playbook_id")
    if playbook_id is None:
        return _after(incident_id, error="Choose a playbook to dry-run.", status=400)
    try:
        dry = auto.dry_run(org_id, actor=actor, user_id=user_id, playbook_id=playbook_id, incident_id=incident_id)
    except ApiError as exc:
        db.session.rollback()
        if exc.status not in (400, 404, 409):
            raise
        # the incident exists (checked above): a 404 here is the form naming a playbook or service elsewhere
        return _after(incident_id, error=exc.detail, status=409 if exc.status == 409 else 400)
    return _after(incident_id, dry_run_id=dry.id, notice=f"Dry-run #{dry.id}: {dry.verdict.replace('_', ' ')}.")


@page_route(bp, "/incidents/<int:incident_id>/automations/approval", methods=("POST",), tenant_model=Incident,
            summary="Request approval for one of the incident's dry-runs (members and above).")
def incident_request_approval(incident_id: int):
    p = current_principal()
    org_id, actor, user_id = p.org.id, p.actor, p.user.id
    get_incident(org_id, incident_id)
    dry = _incident_dry_run(org_id, incident_id)
    if dry is None:
        return _after(incident_id, error="Name a dry-run of this incident to request approval for.", status=400)
    try:
        note = _text("note", "The note")
        a = approvals.request_approval(org_id, dry_run_id=dry.id, actor=actor, user_id=user_id, note=note)
    except ApiError as exc:
        db.session.rollback()
        if exc.status not in (400, 409):
            raise
        return _after(incident_id, dry_run_id=dry.id, error=exc.detail, status=exc.status)
    return _after(incident_id, dry_run_id=dry.id, notice=f"Approval #{a.id} requested ({a.status}).")


@page_route(bp, "/incidents/<int:incident_id>/automations/execute", methods=("POST",), tenant_model=Incident,
            summary="Execute one of the incident's dry-runs with an approval note and a rollback plan.")
def incident_execute(incident_id: int):
    p = current_principal()
    org_id, actor, user_id = p.org.id, p.actor, p.user.id
    get_incident(org_id, incident_id)
    dry = _incident_dry_run(org_id, incident_id)
    if dry is None:
        return _after(incident_id, error="Name a dry-run of this incident to execute.", status=400)
    form = {"approval_note": request.form.get("approval_note", "")[:MAX_FORM_TEXT],
            "rollback_plan": request.form.get("rollback_plan", "")[:MAX_FORM_TEXT]}
    try:
        ex = auto.execute(org_id, actor=actor, user_id=user_id, dry_run_id=dry.id,
                          plan_hash=request.form.get("plan_hash", "")[:64],
                          approval_note=_text("approval_note", "The approval note"),
                          rollback_plan=_text("rollback_plan", "The rollback plan"))
    except auto.PolicyBlocked as exc:
        return _after(incident_id, dry_run_id=dry.id, block=exc.detail, form=form, status=409)
    except ApiError as exc:
        db.session.rollback()
        if exc.status not in (400, 409):
            raise
        return _after(incident_id, dry_run_id=dry.id, form=form, errors=_errors_of(exc, ("approval_note", "rollback_plan")),
                      status=exc.status)
    return _after(incident_id, dry_run_id=dry.id, notice=f"Execution #{ex.id} {ex.status} ({ex.mode}).")
