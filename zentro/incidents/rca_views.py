"""The RCA panel of an incident: an HTMX partial (a full page when opened directly), and the
buttons that start and cancel a run. While a run is queued or running the panel polls itself."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from zentro.incidents import rca
from zentro.incidents.models import Incident
from zentro.incidents.service import get_incident
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import is_htmx, page_route

bp = Blueprint("rca_views", __name__)
POLL_SECONDS = 2


def _render(incident_id: int, *, error: str = "", notice: str = ""):
    org_id = current_principal().org.id
    incident = get_incident(org_id, incident_id)
    run = rca.latest_run(org_id, incident_id)
    ctx = {"incident": incident, "rca_run": run, "rca_loaded": True, "rca_error": error, "rca_notice": notice,
           "rca_poll_seconds": POLL_SECONDS, "rca_stages": [name for name, _ in rca.STAGES]}
    template = "incidents/_rca_panel.html" if is_htmx() else "incidents/_rca_page.html"
    return render_template(template, **ctx)


@page_route(bp, "/incidents/<int:incident_id>/rca", tenant_model=Incident,
            summary="The incident's RCA panel (HTMX partial; a page of its own when opened directly).")
def rca_panel(incident_id: int):
    return _render(incident_id)


def _after(incident_id: int, error: str = "", notice: str = ""):
    """HTMX swaps only 2xx answers, so the panel carries the message; without HTMX, flash and redirect."""
    if is_htmx():
        return _render(incident_id, error=error, notice=notice)
    flash(error or notice, "error" if error else "success")
    return redirect(url_for("rca_views.rca_panel", incident_id=incident_id), 303)


@page_route(bp, "/incidents/<int:incident_id>/rca/run", methods=("POST",), tenant_model=Incident,
            summary="Start an RCA run from the panel (members and above).")
def rca_run_page(incident_id: int):
    p = current_principal()
    org_id, actor = p.org.id, p.actor  # read before start_run commits (and expires them)
    raw = (request.form.get("window_hours") or str(rca.DEFAULT_WINDOW_HOURS)).strip()
    if not raw.isdigit() or not 1 <= int(raw) <= rca.MAX_WINDOW_HOURS:
        get_incident(org_id, incident_id)  # unknown ids stay 404
        return _after(incident_id, error=f"The window must be a whole number of hours from 1 to {rca.MAX_WINDOW_HOURS}.")
    try:
        run_id = rca.start_run(org_id, incident_id, actor, window_hours=int(raw))
    except ApiError as exc:
        if exc.status == 404:
            raise
        return _after(incident_id, error=exc.detail)
    rca.submit(current_app._get_current_object(), run_id)
    return _after(incident_id, notice=f"RCA run #{run_id} started.")


@page_route(bp, "/incidents/<int:incident_id>/rca/cancel", methods=("POST",), tenant_model=Incident,
            summary="Cancel the incident's queued or running RCA run (members and above).")
def rca_cancel_page(incident_id: int):
    p = current_principal()
    org_id, actor = p.org.id, p.actor
    get_incident(org_id, incident_id)
    run = rca.latest_run(org_id, incident_id)
    if run is None or run.status not in rca.ACTIVE:
        return _after(incident_id, error="No RCA run of this incident is running.")
    try:
        rca.cancel_run(org_id, run.id, actor)
    except ApiError as exc:
        if exc.status == 404:
            raise
        return _after(incident_id, error=exc.detail)
    return _after(incident_id, notice="RCA run cancelled.")
