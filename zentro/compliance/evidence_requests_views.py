"""Pages for assessor evidence requests: the queue (open first, overdue flagged, with the create form for
owners/admins) and one request (fulfil with a bundle picker or a file link, edit, cancel, history from the audit
log). Forms post with the CSRF token; bad input re-renders the form with the message and changes nothing; success
redirects (post/redirect/get)."""
from __future__ import annotations

import datetime as dt
import re

from flask import Blueprint, flash, redirect, render_template, request, url_for

from zentro.accounts.models import Role
from zentro.compliance import attestations as att
from zentro.compliance import evidence_requests as svc
from zentro.compliance.catalog import load_catalog
from zentro.compliance.models import EvidenceRequest
from zentro.compliance.registers_views import (FormError, _attempt, _can_write, _date, _int, _is_admin,
                                               _member_choices, _picker_tags, _tags, _text)
from zentro.platform.auth import current_principal
from zentro.platform.routes import page_route
from zentro.platform.types import utcnow

bp = Blueprint("compliance_evidence_request_pages", __name__)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FIELDS = ("title", "controls", "requestedBy", "ownerId", "requestedAt", "dueAt", "note")


def _start_of_day(name: str) -> dt.datetime | None:
    """An optional date field (YYYY-MM-DD) as the start of that day in UTC (a request made "on the 3rd")."""
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    try:
        if not _DATE.match(raw):
            raise ValueError
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise FormError({name: "Requested: a date as YYYY-MM-DD."}) from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)


def _form() -> dict:
    return {k: request.form.get(k, "") for k in FIELDS}


def _data(form: dict, *, partial: bool = False) -> dict:
    data = {"title": form["title"].strip(), "controls": _tags("controls"), "requestedBy": form["requestedBy"].strip(),
            "ownerId": _int("ownerId", required=False), "dueAt": _date("dueAt"), "note": _text("note")}
    if not partial:
        requested = _start_of_day("requestedAt")
        if requested is not None:
            data["requestedAt"] = requested
    return data


def _queue_page(form: dict | None = None, errors: dict | None = None, status: int = 200):
    p = current_principal()
    now = utcnow()
    items = svc.list_requests(p.org.id, now)
    counts = {s: sum(1 for r in items if r["state"] == s) for s in svc.STATES}
    counts["due_7d"] = sum(1 for r in items if r["state"] == "open" and r["days_to_due"] is not None
                           and r["days_to_due"] < 7)
    return render_template("compliance/evidence_requests.html", items=items, counts=counts,
                           owners=_member_choices(Role.member), tags=_picker_tags(), form=form or {},
                           errors=errors or {}, can_create=_is_admin()), status


@page_route(bp, "/compliance/evidence-requests", summary="Assessor evidence requests: the queue and the create form.")
def request_queue():
    return _queue_page()


@page_route(bp, "/compliance/evidence-requests", methods=("POST",), endpoint="request_create", min_role="admin",
            summary="Log an assessor evidence request (owner/admin).")
def request_create():
    p, user_id = current_principal(), current_principal().user.id
    form = _form()
    row, refused = _attempt(lambda: svc.create(p.org.id, _data(form), user_id=user_id, actor=p.actor),
                            lambda errors, status: _queue_page(form, errors, status))
    if refused:
        return refused
    flash(f"Evidence request #{row.id} logged.", "success")
    return redirect(url_for("compliance_evidence_request_pages.request_detail", request_id=row.id))


def _detail_page(request_id: int, form: dict | None = None, errors: dict | None = None, status: int = 200):
    p = current_principal()
    row = svc.get_request(p.org.id, request_id)
    data = svc.request_json(row, utcnow())
    is_open = row.status == "open"
    edit = form if form is not None and form.get("_form") == "edit" else {
        "title": row.title, "controls": " ".join(row.controls or []), "requestedBy": row.requested_by,
        "ownerId": str(row.owner_id or ""), "dueAt": row.due_at.strftime("%Y-%m-%d"), "note": row.note}
    catalog = load_catalog()
    return render_template("compliance/evidence_request_detail.html", r=data,
                           controls=[{"tag": t, "title": catalog.control(t).title if catalog.has(t) else ""}
                                     for t in row.controls or []],
                           history=att.history(p.org.id, "evidence_request", row.id),
                           bundles=svc.bundle_choices(p.org.id), owners=_member_choices(Role.member),
                           tags=_picker_tags(), form=form or {}, edit=edit, errors=errors or {},
                           can_fulfil=is_open and _can_write(), can_admin=is_open and _is_admin()), status


@page_route(bp, "/compliance/evidence-requests/<int:request_id>", tenant_model=EvidenceRequest,
            summary="One evidence request: fulfil, edit, cancel, history.")
def request_detail(request_id: int):
    return _detail_page(request_id)


@page_route(bp, "/compliance/evidence-requests/<int:request_id>/fulfil", methods=("POST",),
            tenant_model=EvidenceRequest, summary="Fulfil an evidence request with a bundle or a file link.")
def request_fulfil(request_id: int):
    p = current_principal()
    form = {"_form": "fulfil", "bundleId": request.form.get("bundleId", ""), "fileRef": request.form.get("fileRef", ""),
            "fulfil_note": _text("note")}
    data = {"bundleId": _int("bundleId", required=False) if form["bundleId"].strip() else None,
            "fileRef": form["fileRef"].strip() or None, "note": form["fulfil_note"]}
    _, refused = _attempt(lambda: svc.fulfil(p.org.id, request_id, data, user_id=p.user.id, actor=p.actor),
                          lambda errors, status: _detail_page(request_id, form, errors, status))
    if refused:
        return refused
    flash("Evidence request fulfilled.", "success")
    return redirect(url_for("compliance_evidence_request_pages.request_detail", request_id=request_id))


@page_route(bp, "/compliance/evidence-requests/<int:request_id>/edit", methods=("POST",),
            tenant_model=EvidenceRequest, min_role="admin", summary="Edit an open evidence request (owner/admin).")
def request_edit(request_id: int):
    p = current_principal()
    form = {**_form(), "_form": "edit"}
    _, refused = _attempt(lambda: svc.update(p.org.id, request_id, _data(form, partial=True), user_id=p.user.id,
                                             actor=p.actor),
                          lambda errors, status: _detail_page(request_id, form, errors, status))
    if refused:
        return refused
    flash("Evidence request updated.", "success")
    return redirect(url_for("compliance_evidence_request_pages.request_detail", request_id=request_id))


@page_route(bp, "/compliance/evidence-requests/<int:request_id>/cancel", methods=("POST",),
            tenant_model=EvidenceRequest, min_role="admin", summary="Cancel an open evidence request (owner/admin).")
def request_cancel(request_id: int):
    p = current_principal()
    form = {"_form": "cancel", "reason": _text("reason")}
    _, refused = _attempt(lambda: svc.cancel(p.org.id, request_id, {"reason": form["reason"]}, user_id=p.user.id,
                                             actor=p.actor),
                          lambda errors, status: _detail_page(request_id, form, errors, status))
    if refused:
        return refused
    flash("Evidence request cancelled.", "success")
    return redirect(url_for("compliance_evidence_request_pages.request_detail", request_id=request_id))
