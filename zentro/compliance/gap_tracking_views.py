"""The gap remediation page: the queue (the ``gap-remediations`` report: live gaps, worst first, with their tracking
row or "untracked" and a suggested playbook/runbook), the tracked rows with an edit form each, the rows resolved by
evidence, and a form to track a gap. Forms post with the CSRF token; bad input re-renders the page with the message
and changes nothing; success redirects."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from zentro.accounts.models import Role
from zentro.compliance import gap_tracking
from zentro.compliance import report_registry as registry
from zentro.compliance.catalog import load_catalog
from zentro.compliance.models import GAP_REMEDIATION_STATUSES, GapRemediation
from zentro.compliance.registers_views import (_attempt, _date, _int, _member_choices, _picker_tags, _text,
                                               FormError)
from zentro.compliance.reporting import to_dict
from zentro.compliance.reports._program import load_remediations
from zentro.compliance.reports.gap_remediations import STATUS_ORDER
from zentro.platform.auth import current_principal
from zentro.platform.routes import page_route
from zentro.platform.types import utcnow

bp = Blueprint("compliance_gap_pages", __name__)
QUEUE_ROWS = 100


def _filters() -> dict:
    fw = request.args.get("framework", "")
    tracking = request.args.get("tracking", "")
    keys = {f.slug: k for k, f in load_catalog().frameworks.items()}
    return {"framework": fw if fw in keys else "", "tracking": tracking if tracking in STATUS_ORDER else ""}


def _page(form: dict | None = None, errors: dict | None = None, status: int = 200, edit_id: int | None = None):
    p = current_principal()
    filters = _filters()
    rep = to_dict(registry.build("gap-remediations", p.org.id, utcnow(), framework=filters["framework"]))
    queue = rep["sections"]["queue"]["rows"]
    tracked = [r for r in queue if r["tracking"] != "untracked"]
    shown = [r for r in queue if not filters["tracking"] or r["tracking"] == filters["tracking"]]
    catalog = load_catalog()
    return render_template(
        "compliance/gap_remediations.html", rep=rep, summary=rep["summary"], queue=shown[:QUEUE_ROWS],
        queue_total=len(shown), tracked=tracked, resolved=rep["sections"]["resolved"]["rows"],
        frameworks=[(f.slug, f.name) for f in catalog.frameworks.values()], filters=filters,
        statuses=GAP_REMEDIATION_STATUSES, tracking_states=STATUS_ORDER, owners=_member_choices(Role.member),
        playbooks=sorted(gap_tracking.playbook_names(p.org.id).items(), key=lambda kv: kv[1].lower()),
        rows_by_id={r.id: r for r in load_remediations(p.org.id)},
        tags=_picker_tags(), form=form or {}, errors=errors or {}, edit_id=edit_id,
        can_edit=p.role.at_least(Role.member)), status


def _optional_int(name: str) -> int | None:
    return _int(name, required=False)


def _fields(creating: bool) -> dict:
    data = {"owner_id": _optional_int("owner_id"), "playbook_id": _optional_int("playbook_id"),
            "runbook_url": request.form.get("runbook_url", "").strip(), "note": _text("note"),
            "status": request.form.get("status", "open"), "due_at": _date("due_at", required=False)}
    if creating:
        data["control"] = request.form.get("control", "").strip()
        return {k: v for k, v in data.items() if v is not None or k in ("control",)}
    return data


@page_route(bp, "/compliance/gap-remediations", summary="Gap remediation queue: live gaps with their tracking, "
                                                         "suggested playbooks and runbooks.")
def gap_remediation_page():
    return _page()


@page_route(bp, "/compliance/gap-remediations", methods=("POST",), endpoint="gap_remediation_create",
            summary="Track a control gap (member or above).")
def gap_remediation_create():
    p = current_principal()
    form = {k: request.form.get(k, "") for k in ("control", "owner_id", "playbook_id", "runbook_url", "status",
                                                 "due_at", "note")}
    row, refused = _attempt(lambda: gap_tracking.create(p.org.id, _fields(True), actor=p.actor),
                            lambda errors, status: _page(form, errors, status))
    if refused:
        return refused
    flash(f"{row.control} is now tracked ({row.status.replace('_', ' ')}).", "success")
    return redirect(url_for("compliance_gap_pages.gap_remediation_page"))


@page_route(bp, "/compliance/gap-remediations/<int:remediation_id>", methods=("POST",), tenant_model=GapRemediation,
            endpoint="gap_remediation_update", summary="Change a gap remediation (member or above).")
def gap_remediation_update(remediation_id: int):
    p = current_principal()
    gap_tracking.get_remediation(p.org.id, remediation_id)  # another org's id: 404 before anything else
    form = {k: request.form.get(k, "") for k in ("owner_id", "playbook_id", "runbook_url", "status", "due_at",
                                                 "note")}

    def change():
        data = _fields(False)
        if data["due_at"] is None and not request.form.get("due_at", "").strip():
            data.pop("due_at")  # an empty date field keeps the due date
        return gap_tracking.update(p.org.id, remediation_id, data, actor=p.actor)

    row, refused = _attempt(change, lambda errors, status: _page(form, errors, status, edit_id=remediation_id))
    if refused:
        return refused
    flash(f"{row.control}: saved ({row.status.replace('_', ' ')}).", "success")
    return redirect(url_for("compliance_gap_pages.gap_remediation_page"))


__all__ = ["bp", "FormError"]
