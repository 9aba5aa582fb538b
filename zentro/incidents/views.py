"""Incident pages: the live list, manual create, and the detail page whose actions (status, commander,
severity, notes, legal hold) are HTMX posts that re-render the detail body in place, and plain form
posts that redirect back when JavaScript is off.

A view parses the form, calls one service function, commits, and renders. A refused action
(invalid transition 409, bad input 400) rolls back and shows the reason inline (HTMX) or as a flash."""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Callable

from flask import Blueprint, flash, redirect, render_template, request, url_for
from jinja2 import pass_context
from markupsafe import Markup, escape

from zentro.accounts.models import User
from zentro.extensions import db
from zentro.incidents import exports, service
from zentro.incidents.models import ACTIVE_STATUSES, SEVERITIES, STATUSES, Incident
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.pagination import decode_cursor, encode_cursor
from zentro.platform.routes import is_htmx, page_route
from zentro.platform.types import iso, utcnow

bp = Blueprint("incidents", __name__)

PAGE_SIZE = 25
DETAIL_TIMELINE_MAX = 500
DETAIL_ALERTS_MAX = 100
COUNT_CAP = 1000
MAX_ID = 2_147_483_647
# What each reachable status is called on its button.
ACTION_LABELS = {"acknowledged": "Acknowledge", "mitigated": "Mark mitigated", "resolved": "Resolve",
                 "closed": "Close", "open": "Reopen"}
BACK_LABELS = {("mitigated", "acknowledged"): "Back to acknowledged"}
KIND_ICONS = {"created": "✚", "alert": "⚠", "status": "⇄", "note": "✎", "severity": "▲", "commander": "★",
              "legal_hold": "⚖", "details": "✎", "rca": "⌕", "dry_run": "▷", "execution": "▶", "approval": "✓",
              "policy_block": "⛔", "remediation": "⚙"}


def reltime(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    if value is None:
        return "—"
    now = now or utcnow()
    seconds = int((now - value).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        text = f"{max(1, round(seconds / 60))} min"
    elif seconds < 86_400:
        text = f"{seconds // 3600} h"
    elif seconds < 60 * 86_400:
        text = f"{seconds // 86_400} d"
    else:
        return value.strftime("%Y-%m-%d")
    return f"in {text}" if future else f"{text} ago"


def severity_pill(s: str) -> Markup:
    # escape() and an f-string, not Markup.format: lists render dozens of these per page, and
    # Markup.format goes through string.Formatter (the same output, several times slower).
    e = escape(s)
    return Markup(f'<span class="pill sev sev-{e}"><span class="visually-hidden">Severity: </span>{e}</span>')


def status_pill(s: str) -> Markup:
    e = escape(s)
    return Markup(f'<span class="pill st st-{e}"><span class="visually-hidden">Status: </span>{e}</span>')


@pass_context
def when(context, t: dt.datetime | None, stacked: bool = False) -> Markup:
    """A time as "5 min ago" with the exact UTC time beside it (Python, not a macro: lists show dozens)."""
    if not t:
        return Markup('<span class="muted">—</span>')
    return Markup(f'<span class="when{" when-stacked" if stacked else ""}"><time datetime="{escape(iso(t))}" '
                  f'title="{escape(exports.fmt_utc(t))}">{escape(reltime(t, context.get("now")))}</time> '
                  f'<span class="abs">{escape(t.strftime("%Y-%m-%d %H:%M"))} UTC</span></span>')


@bp.context_processor
def _helpers():
    return {"reltime": reltime, "fmt_utc": exports.fmt_utc, "fmt_duration": exports.fmt_duration, "iso": iso,
            "severity_pill": severity_pill, "status_pill": status_pill, "when": when,
            "kind_label": exports.kind_label, "kind_icons": KIND_ICONS, "SEVERITIES": SEVERITIES,
            "STATUSES": STATUSES}


def _text(name: str, max_len: int, label: str) -> str:
    value = request.values.get(name, "")
    if "\x00" in value:
        raise ApiError(400, f"{label} must not contain the NUL character.")
    if len(value) > max_len:
        raise ApiError(400, f"{label} may have at most {max_len} characters.")
    return value


def _int_or_none(raw: str) -> int | None:
    raw = (raw or "").strip()
    if raw.isdigit() and 1 <= int(raw) <= MAX_ID:
        return int(raw)
    return None


# --- list ------------------------------------------------------------------------------------------------

def _list_filters(org_id: int) -> tuple[dict, list[str]]:
    """The list's filters from the query string; an unusable value is dropped with a notice."""
    notices = []
    status = request.args.get("status", "active")
    if status not in service.LIST_STATUS_FILTERS:
        notices.append("Unknown status filter; showing active incidents.")
        status = "active"
    severity = request.args.get("severity", "")
    if severity and severity not in SEVERITIES:
        notices.append("Unknown severity filter ignored.")
        severity = ""
    service_raw = request.args.get("service", "")
    service_id = _int_or_none(service_raw)
    if service_raw and service_id is None:
        notices.append("Unknown service filter ignored.")
    q = request.args.get("q", "").replace("\x00", "").strip()[:200]
    return {"status": status, "severity": severity, "service": service_id, "q": q}, notices


def _rows_version(rows: list[Incident], counts: dict, next_cursor: str | None, now: dt.datetime) -> str:
    """A digest of what the rows fragment shows (relative times included), so a poll that would render
    the same thing answers 204 and the page is left alone."""
    shown = [(i.id, i.status, i.severity, i.title, i.alert_count, i.legal_hold, i.service_id, i.commander_id,
              reltime(i.started_at, now), reltime(i.updated_at, now)) for i in rows]
    return hashlib.sha256(repr((shown, sorted(counts.items()), next_cursor)).encode()).hexdigest()[:20]


@page_route(bp, "/incidents", summary="Incidents: filters, keyset pages, live updates.")
def incident_list():
    p = current_principal()
    filters, notices = _list_filters(p.org.id)
    before = None
    cursor = request.args.get("cursor", "")
    if cursor:
        try:
            before = decode_cursor(cursor[:64])
        except ApiError:
            notices.append("That page link is not valid; showing the newest incidents.")
            cursor = ""
    rows, next_before = service.list_incidents(
        p.org.id, statuses=service.statuses_for(filters["status"]), severity=filters["severity"] or None,
        service_id=filters["service"], q=filters["q"] or None,
        before_id=before if before is not None and before <= MAX_ID else None, limit=PAGE_SIZE)
    next_cursor = encode_cursor(next_before) if next_before is not None else None
    now = utcnow()
    counts = service.status_counts(p.org.id, ACTIVE_STATUSES, COUNT_CAP)
    version = _rows_version(rows, counts, next_cursor, now)
    context = dict(rows=rows, filters=filters, notices=notices, next_cursor=next_cursor, counts=counts,
                   count_cap=COUNT_CAP, now=now, live=not cursor, version=version,
                   newest_args={k: v for k, v in filters.items() if v},
                   older_args={k: v for k, v in filters.items() if v} | {"cursor": next_cursor})
    if is_htmx():
        if request.args.get("v") == version and not notices:
            return "", 204
        return render_template("incidents/_list_rows.html", **context)
    return render_template("incidents/list.html", services=service.org_services(p.org.id),
                           can_create=p.role.at_least("member"), **context)


# --- create ----------------------------------------------------------------------------------------------

@page_route(bp, "/incidents/new", methods=("GET", "POST"), min_role="member",
            summary="Open an incident by hand (member and above).")
def incident_new():
    p = current_principal()
    services = service.org_services(p.org.id)
    if request.method == "GET":
        return render_template("incidents/new.html", services=services, form={"severity": "medium"}, errors={})
    form = {k: request.form.get(k, "") for k in ("title", "severity", "service", "description")}
    errors: dict[str, str] = {}
    title = form["title"].strip()
    if "\x00" in form["title"] or not 1 <= len(title) <= 300:
        errors["title"] = "Give the incident a title of 1–300 characters."
    if form["severity"] not in SEVERITIES:
        errors["severity"] = "Choose a severity."
    service_id = None
    if form["service"]:
        service_id = _int_or_none(form["service"])
        if service_id is None or service_id not in {s.id for s in services}:
            errors["service"] = "Choose one of this organisation's services."
    if "\x00" in form["description"] or len(form["description"]) > 10_000:
        errors["description"] = "The description may have at most 10000 characters."
    if errors:
        return render_template("incidents/new.html", services=services, form=form, errors=errors), 400
    try:
        inc = service.create_incident(p.org.id, title=title, severity=form["severity"], actor=p.actor,
                                      service_id=service_id, description=form["description"].strip())
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    flash(f"{inc.ref} opened.", "success")
    return redirect(url_for("incidents.incident_detail", incident_id=inc.id), 303)


# --- detail ----------------------------------------------------------------------------------------------

def _next_actions(inc: Incident) -> list[tuple[str, str]]:
    return [(to, BACK_LABELS.get((inc.status, to), ACTION_LABELS[to])) for to in service.TRANSITIONS[inc.status]]


def _detail_context(inc: Incident, *, message: str | None = None, error: str | None = None) -> dict:
    p = current_principal()
    can_act = p.role.at_least("member")
    return dict(
        incident=inc,
        events=service.timeline(p.org.id, inc.id, last=DETAIL_TIMELINE_MAX),
        events_total=service.timeline_count(p.org.id, inc.id),
        alerts=service.incident_alerts(p.org.id, inc.id, limit=DETAIL_ALERTS_MAX),
        alerts_total=service.alert_row_count(p.org.id, inc.id),
        members=service.org_members(p.org.id) if can_act else [],
        actions=_next_actions(inc) if can_act else [],
        can_act=can_act,
        can_hold=p.role.at_least("admin"),
        now=utcnow(),
        message=message,
        error=error,
    )


@page_route(bp, "/incidents/<int:incident_id>", tenant_model=Incident,
            summary="One incident: header, actions, timeline, alerts, exports.")
def incident_detail(incident_id: int):
    inc = service.get_incident(current_principal().org.id, incident_id)
    if is_htmx():
        return render_template("incidents/_detail_body.html", **_detail_context(inc))
    return render_template("incidents/detail.html", **_detail_context(inc))


def _act(incident_id: int, change: Callable[[Incident], str]):
    """Run one change on the locked incident and answer: the re-rendered detail body for HTMX (with the
    outcome inline; 400/409 on refusal), or a redirect back to the page with a flash."""
    p = current_principal()
    inc = service.get_incident(p.org.id, incident_id, for_update=True)
    status, message, error = 200, None, None
    try:
        message = change(inc)
        db.session.commit()
    except ApiError as exc:
        db.session.rollback()
        if exc.status not in (400, 404, 409):
            raise
        # 404 here is a form value naming something outside the org (e.g. a commander): bad input.
        status, error = (409 if exc.status == 409 else 400), exc.detail
    except BaseException:
        db.session.rollback()
        raise
    if is_htmx():
        inc = service.get_incident(p.org.id, incident_id)
        return render_template("incidents/_detail_body.html", **_detail_context(inc, message=message, error=error)), status
    flash(error or message, "error" if error else "success")
    return redirect(url_for("incidents.incident_detail", incident_id=incident_id), 303)


@page_route(bp, "/incidents/<int:incident_id>/status", methods=("POST",), tenant_model=Incident,
            summary="Move the incident along its lifecycle.")
def incident_status(incident_id: int):
    def change(inc: Incident) -> str:
        to = _text("to", 20, "Status")
        if to not in STATUSES:
            raise ApiError(400, f"Unknown status {to!r}; choose one of {', '.join(STATUSES)}.")
        before = inc.status
        service.transition(inc, to, current_principal().actor)
        return f"{inc.ref} is {inc.status}." if before != inc.status else f"{inc.ref} was already {inc.status}."

    return _act(incident_id, change)


@page_route(bp, "/incidents/<int:incident_id>/severity", methods=("POST",), tenant_model=Incident,
            summary="Change the incident's severity.")
def incident_severity(incident_id: int):
    def change(inc: Incident) -> str:
        severity = _text("severity", 20, "Severity")
        if severity not in SEVERITIES:
            raise ApiError(400, f"Unknown severity {severity!r}; choose one of {', '.join(SEVERITIES)}.")
        service.set_severity(inc, severity, current_principal().actor)
        return f"Severity is {inc.severity}."

    return _act(incident_id, change)


@page_route(bp, "/incidents/<int:incident_id>/commander", methods=("POST",), tenant_model=Incident,
            summary="Assign (or clear) the incident commander.")
def incident_commander(incident_id: int):
    def change(inc: Incident) -> str:
        raw = _text("commander_id", 20, "Commander").strip()
        user_id = _int_or_none(raw)
        if raw and user_id is None:
            raise ApiError(400, "Choose a member of this organisation as commander.")
        try:
            service.assign_commander(inc, user_id, current_principal().actor)
        except ApiError as exc:
            if exc.status == 404:
                raise ApiError(400, "That user is not a member of this organisation.") from None
            raise
        return f"Commander: {db.session.get(User, user_id).email}." if user_id else "Commander cleared."

    return _act(incident_id, change)


@page_route(bp, "/incidents/<int:incident_id>/notes", methods=("POST",), tenant_model=Incident,
            summary="Add a note to the incident's timeline.")
def incident_note(incident_id: int):
    def change(inc: Incident) -> str:
        service.add_note(inc, _text("body", 10_000, "A note"), current_principal().actor)
        return "Note added."

    return _act(incident_id, change)


@page_route(bp, "/incidents/<int:incident_id>/legal-hold", methods=("POST",), min_role="admin", tenant_model=Incident,
            summary="Place or release a legal hold (owner/admin).")
def incident_legal_hold(incident_id: int):
    def change(inc: Incident) -> str:
        on = _text("on", 5, "Legal hold")
        if on not in ("1", "0"):
            raise ApiError(400, "Legal hold must be on (1) or off (0).")
        service.set_legal_hold(inc, on == "1", current_principal().actor)
        return "Legal hold placed." if inc.legal_hold else "Legal hold released."

    return _act(incident_id, change)
