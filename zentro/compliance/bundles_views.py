"""Pages: the bundle history (with the create form for owners/admins) and one bundle with its manifest
files and a fresh verification."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from zentro.compliance import bundles, signing
from zentro.compliance.bundles_api import detail_json
from zentro.compliance.models import EvidenceBundle
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.pagination import PageQuery, decode_cursor, paginate
from zentro.platform.routes import page_route

bp = Blueprint("compliance_bundle_pages", __name__)
PAGE_SIZE = 25


def _list_page(form: dict | None = None, error: str = "", status: int = 200):
    p = current_principal()
    cursor = request.args.get("cursor") or None
    try:
        if cursor is not None and (len(cursor) > 64 or decode_cursor(cursor) < 1):
            cursor = None
    except ApiError:
        cursor = None  # a mangled link shows the first page
    rows, next_cursor = paginate(bundles.bundles_query(p.org.id), EvidenceBundle.id,
                                 PageQuery(limit=PAGE_SIZE, cursor=cursor))
    return render_template("compliance/bundles.html", rows=rows, next_cursor=next_cursor, first_page=cursor is None,
                           badges=bundles.quick_status(rows), windows=list(bundles.WINDOWS),
                           can_create=p.role is not None and p.role.at_least("admin"),
                           form=form or {"window": "30d"}, error=error, key_id=signing.key_id(),
                           total=bundles.count_bundles(p.org.id)), status


@page_route(bp, "/compliance/bundles", summary="Evidence bundle history, downloads and the create form.")
def bundle_list():
    return _list_page()


@page_route(bp, "/compliance/bundles", methods=("POST",), endpoint="bundle_create", min_role="admin",
            summary="Create an evidence bundle (owner/admin).")
def bundle_create():
    p = current_principal()
    form = {"window": request.form.get("window", ""), "deliver": request.form.get("deliver") == "on"}
    if form["window"] not in bundles.WINDOWS:
        return _list_page(form, f"Choose a window: {', '.join(bundles.WINDOWS)}.", 400)
    row = bundles.create_bundle(p.org.id, p.actor, form["window"])
    if form["deliver"]:
        row = bundles.deliver_bundle(p.org.id, row.id, url_for("compliance_bundles.download_bundle", bundle_id=row.id,
                                                                _external=True), p.actor)
    message = f"Bundle #{row.seq} created: {row.file_count} files, {row.audit_event_count} audit rows, signed and chained."
    if row.webhook_status:
        message += f" Webhook: {row.webhook_status.replace('_', ' ')}" + (f" ({row.webhook_detail})" if row.webhook_detail else "") + "."
    flash(message, "success" if row.webhook_status in ("", "delivered") else "info")
    return redirect(url_for("compliance_bundle_pages.bundle_detail", bundle_id=row.id), 303)


@page_route(bp, "/compliance/bundles/<int:bundle_id>", tenant_model=EvidenceBundle,
            summary="One evidence bundle: manifest files and a fresh verification.")
def bundle_detail(bundle_id: int):
    p = current_principal()
    row = bundles.get_bundle(p.org.id, bundle_id)
    detail = detail_json(row)
    return render_template("compliance/bundles_detail.html", b=row, d=detail, v=detail["verification"],
                           key_id=signing.key_id())
