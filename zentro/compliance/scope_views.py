"""The audit scope page: every service with its scope decision (owner/admin edit it in place: in scope, frameworks,
data classes, note) and the data flows classified against the boundary. Forms post with the CSRF token; bad input
re-renders the page with the message and changes nothing; success redirects."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from zentro.accounts.models import Role
from zentro.compliance import scope
from zentro.compliance.catalog import FRAMEWORKS, load_catalog
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import page_route
from zentro.reliability.models import Service

bp = Blueprint("compliance_scope_pages", __name__)


def _page(errors: dict | None = None, status: int = 200, failed_id: int | None = None, form: dict | None = None):
    p = current_principal()
    reg = scope.register(p.org.id)
    if failed_id is not None and form is not None:
        for row in reg["services"]:
            if row["service_id"] == failed_id:
                row.update(form)
    catalog = load_catalog()
    frameworks = [(k, catalog.framework(k).name) for k in FRAMEWORKS]
    return render_template("compliance/scope.html", reg=reg, frameworks=frameworks,
                           data_classes=[(c, scope.DATA_CLASS_LABELS[c]) for c in scope.DATA_CLASSES],
                           can_edit=p.role.at_least(Role.admin), errors=errors or {}, failed_id=failed_id), status


@page_route(bp, "/compliance/scope", summary="Audit scope: services in and out of the boundary, data flows.")
def scope_page():
    return _page()


@page_route(bp, "/compliance/scope/<int:service_id>", methods=("POST",), tenant_model=Service, min_role="admin",
            summary="Set one service's scope decision (owner/admin).")
def scope_save(service_id: int):
    p = current_principal()
    data = {"in_scope": request.form.get("in_scope") == "on",
            "frameworks": request.form.getlist("frameworks"),
            "data_classes": request.form.getlist("data_classes"),
            "note": request.form.get("note", "")}
    try:
        row = scope.put(p.org.id, service_id, data, actor=p.actor)
    except ApiError as exc:
        if exc.status not in (400, 409):
            raise
        return _page({"form": exc.detail}, 400 if exc.status == 400 else 409, service_id,
                     {"in_scope": data["in_scope"], "note": data["note"]})
    flash(f"Scope of {row['service']} saved: {row['status'].replace('_', ' ')}.", "success")
    return redirect(url_for("compliance_scope_pages.scope_page") + f"#svc-{service_id}")
