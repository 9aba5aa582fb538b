"""Pages for the audit season and the consolidation plays: /compliance/checkpoints (the season's checkpoints in due
order, a form to add one, mark done / reopen / delete; owners and admins change them) and /compliance/consolidation
(the crossover clusters with their six-step plays; members and above set step statuses). Forms post with the CSRF
token; bad input re-renders the page with the message and changes nothing; success redirects."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from zentro.accounts.models import Role
from zentro.compliance import attestations as att
from zentro.compliance import checkpoints as cp
from zentro.compliance import report_registry as registry
from zentro.compliance.catalog import load_catalog
from zentro.compliance.models import PLAY_STEP_STATUSES, AuditCheckpoint
from zentro.compliance.registers_views import FormError, _attempt, _date, _int
from zentro.compliance.reports import _obligation_views as views
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import page_route
from zentro.platform.types import utcnow

bp = Blueprint("compliance_checkpoint_pages", __name__)


def _role_at_least(role: Role) -> bool:
    return current_principal().role.at_least(role)


def _page(form: dict | None = None, errors: dict | None = None, status: int = 200):
    p = current_principal()
    catalog = load_catalog()
    return render_template("compliance/checkpoints.html", reg=cp.list_checkpoints(p.org.id),
                           frameworks=[{"key": fw.key, "slug": fw.slug, "name": fw.name}
                                       for fw in catalog.frameworks.values()],
                           owners=att.members(p.org.id, Role.member), form=form or {}, errors=errors or {},
                           can_edit=_role_at_least(Role.admin)), status


@page_route(bp, "/compliance/checkpoints", summary="Audit season: checkpoints in due order, add, mark done.")
def checkpoint_list():
    return _page()


@page_route(bp, "/compliance/checkpoints", methods=("POST",), endpoint="checkpoint_create", min_role="admin",
            summary="Add an audit-season checkpoint (owner/admin).")
def checkpoint_create():
    p = current_principal()
    form = {k: request.form.get(k, "") for k in ("name", "framework", "owner_id", "due_at")}
    row, refused = _attempt(lambda: cp.create(p.org.id, name=form["name"].strip(), framework=form["framework"],
                                              owner_id=_int("owner_id", required=False), due_at=_date("due_at"),
                                              actor=p.actor),
                            lambda errors, status: _page(form, errors, status))
    if refused:
        return refused
    flash(f"Checkpoint {row.name!r} added.", "success")
    return redirect(url_for("compliance_checkpoint_pages.checkpoint_list"))


@page_route(bp, "/compliance/checkpoints/<int:checkpoint_id>/status", methods=("POST",), tenant_model=AuditCheckpoint,
            min_role="admin", summary="Mark a checkpoint done or planned again (owner/admin).")
def checkpoint_status(checkpoint_id: int):
    p = current_principal()
    status = request.form.get("status", "")
    if status not in ("planned", "done"):
        cp.get_checkpoint(p.org.id, checkpoint_id)  # another org's id stays 404
        return _page(errors={"form": "Status: planned or done."}, status=400)
    row = cp.update(p.org.id, checkpoint_id, {"status": status}, actor=p.actor)
    flash(f"{row.name} marked {status}.", "success")
    return redirect(url_for("compliance_checkpoint_pages.checkpoint_list"))


@page_route(bp, "/compliance/checkpoints/<int:checkpoint_id>/delete", methods=("POST",), tenant_model=AuditCheckpoint,
            min_role="admin", summary="Delete a checkpoint (owner/admin).")
def checkpoint_delete(checkpoint_id: int):
    p = current_principal()
    gone = cp.delete(p.org.id, checkpoint_id, actor=p.actor)
    flash(f"Checkpoint {gone['name']!r} deleted.", "success")
    return redirect(url_for("compliance_checkpoint_pages.checkpoint_list"))


# --- consolidation plays -------------------------------------------------------------------------------------

def _consolidation_page(errors: dict | None = None, status: int = 200):
    p = current_principal()
    report = registry.build("obligation-consolidation", p.org.id, utcnow(), weeks=13)
    plays = list(report.section("plays").iter_rows())
    steps: dict[str, list[dict]] = {}
    for s in report.section("steps").iter_rows():
        steps.setdefault(s["cluster_key"], []).append(s)
    return render_template("compliance/consolidation.html", summary=report.summary, plays=plays, steps=steps,
                           statuses=PLAY_STEP_STATUSES, play_steps=views.PLAY_STEPS, errors=errors or {},
                           can_edit=_role_at_least(Role.member)), status


@page_route(bp, "/compliance/consolidation", summary="Consolidation plays: six steps per crossover cluster.")
def consolidation():
    return _consolidation_page()


@page_route(bp, "/compliance/consolidation/steps", methods=("POST",), endpoint="consolidation_step",
            summary="Set the status of a consolidation play step (member or above).")
def consolidation_step():
    p = current_principal()
    step = request.form.get("step", "")
    try:
        cp.set_play_step(p.org.id, cluster_key=request.form.get("cluster_key", ""),
                         step=int(step) if step.isdigit() and len(step) < 3 else 0,
                         status=request.form.get("status", ""), user_id=p.user.id, actor=p.actor)
    except (ApiError, FormError) as exc:
        detail = exc.detail if isinstance(exc, ApiError) else str(exc)
        code = exc.status if isinstance(exc, ApiError) and exc.status in (400, 404, 409) else 400
        if isinstance(exc, ApiError) and exc.status == 403:
            raise
        return _consolidation_page({"form": detail}, code)
    flash("Play step updated.", "success")
    return redirect(url_for("compliance_checkpoint_pages.consolidation"))
