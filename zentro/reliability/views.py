"""Pages: the services list (with the create form), a service's SLO page (burn charts, windows, rules,
dependencies, changes), its edit form, and the dependency-graph drawing with the top attack paths.
Dependency edges are added and removed in place with HTMX (plain form posts work without it)."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, flash, redirect, render_template, request, url_for
from pydantic import ValidationError

from zentro.incidents.models import SEVERITIES
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import is_htmx, page_route
from zentro.platform.types import utcnow
from zentro.reliability import attack_paths, gates, service, slo, svg
from zentro.reliability.models import ENVIRONMENTS, TIERS, Service
from zentro.reliability.schemas import FIELD_HELP, ChangeIn, ServiceIn

bp = Blueprint("reliability", __name__)
PAIR = {"service_id": Service, "depends_on_id": Service}
CHANGE_KINDS = ("deploy", "config", "flag", "infra")


def _messages(exc: ValidationError) -> dict[str, str]:
    out = {}
    for err in exc.errors(include_url=False):
        name = str(err["loc"][0]) if err["loc"] else "form"
        out.setdefault(name, FIELD_HELP.get(name, f"{name}: {err['msg']}"))
    return out


def _service_form() -> tuple[dict, dict[str, str]]:
    """Form fields → ServiceIn's types. Returns (values as typed, errors by field)."""
    f = request.form
    values: dict = {"name": f.get("name", ""), "description": f.get("description", "").strip(),
                    "environment": f.get("environment", "production"), "internet_facing": f.get("internet_facing") == "on",
                    "owner": f.get("owner", "").strip(), "runbook_url": f.get("runbook_url", "").strip()}
    errors: dict[str, str] = {}
    for name, cast in (("tier", int), ("slo_target", float)):
        raw = f.get(name, "").strip()
        try:
            values[name] = cast(raw)
        except ValueError:
            values[name] = raw
            errors[name] = FIELD_HELP[name]
    values["name"] = values["name"].strip()
    return values, errors


def _validated(values: dict, errors: dict) -> ServiceIn | None:
    try:
        model = ServiceIn.model_validate({k: v for k, v in values.items() if k not in errors})
    except ValidationError as exc:
        errors.update(_messages(exc))
        return None
    return None if errors else model


def _list_page(form: dict | None = None, errors: dict | None = None, status: int = 200):
    p = current_principal()
    rows = service.list_rows(p.org.id)
    return render_template("reliability/services.html", rows=rows, form=form or {}, errors=errors or {},
                           tiers=TIERS, environments=ENVIRONMENTS, can_edit=p.role.at_least("member")), status


@page_route(bp, "/services", summary="Services with their SLO and error budget.")
def service_list():
    return _list_page()


@page_route(bp, "/services", methods=("POST",), endpoint="service_create", summary="Create a service.")
def service_create():
    p = current_principal()
    values, errors = _service_form()
    model = _validated(values, errors)
    if model is None:
        flash("The service was not created: check the highlighted fields.", "error")
        return _list_page(values, errors, 400)
    try:
        svc = service.create_service(p.org.id, model, p.actor)
    except ApiError as exc:
        if exc.status != 409:
            raise
        return _list_page(values, {"name": exc.detail}, 409)
    flash(f"Service {svc.name} created.", "success")
    return redirect(url_for("reliability.service_detail", service_id=svc.id))


@page_route(bp, "/services/graph", summary="Dependency graph drawing and the top attack paths.")
def service_graph():
    p = current_principal()
    graph = service.dependency_graph(p.org.id)
    sim = attack_paths.simulate(p.org.id, None, 6)
    top = next((p for p in sim["paths"] if p["hops"] > 0), None)  # the best path that crosses an edge
    hot = set()
    if top:
        ids = [n["id"] for n in top["nodes"]]
        hot = set(zip(ids, ids[1:]))
    picture = svg.dependency_graph(graph["nodes"], graph["edges"], highlight=hot,
                                   href=lambda sid: url_for("reliability.service_detail", service_id=sid))
    return render_template("reliability/graph.html", graph=graph, picture=picture, sim=sim,
                           paths=sim["paths"][:8], highlighted=top)


def _detail_context(svc: Service) -> dict:
    p = current_principal()
    now = utcnow()
    spans = {**slo.CHART_WINDOWS, **slo.SLO_WINDOWS}
    windows = slo.windows_for(p.org.id, [svc], spans, now)[svc.id]
    status, reasons = slo.status_of(windows)
    rules = slo.evaluate_burn(svc.slo_target, slo.sql_counts(p.org.id, svc.id), now)
    days = slo.daily_series(p.org.id, svc, windows["30d"].source, now)
    unit = "events" if windows["30d"].source == "sli" else "minutes"
    source_note = {"sli": "from SLI samples", "derived_from_incidents": "derived from critical/high incidents",
                   "no_data": "no data"}[windows["30d"].source]
    burndown = svg.burndown_chart(
        [svg.Point(d.day.strftime("%m-%d"), None if d.remaining_ratio is None else round(d.remaining_ratio * 100, 2),
                   f"{d.day:%Y-%m-%d}: {d.remaining_ratio * 100:.1f} % of the 30-day budget left; "
                   f"{d.bad:g} bad of {d.total:g} {unit}" if d.remaining_ratio is not None else "")
         for d in days],
        title=f"{svc.name}: error budget remaining over the last 30 days",
        desc=_burndown_desc(svc, windows["30d"], days, source_note), id_prefix="burndown", width=960, height=280)
    bars = svg.burn_bars(
        [svg.Bar(name, windows[name].burn_rate if windows[name].has_data else None,
                 f"{name}: {windows[name].burn_rate:g}× ({windows[name].source})" if windows[name].has_data else "")
         for name in slo.CHART_WINDOWS],
        title=f"{svc.name}: burn rate by window",
        desc="Burn rate over the last " + ", ".join(
            f"{n}: {windows[n].burn_rate:g}×" if windows[n].has_data else f"{n}: no data" for n in slo.CHART_WINDOWS)
        + ". Thresholds: 14.4× and 6× page, 1× spends the budget exactly.", id_prefix="burnbars", width=560)
    daily = svg.column_chart(
        [svg.Bar(d.day.strftime("%m-%d"), d.burn_rate if d.total > 0 else None,
                 f"{d.day:%Y-%m-%d}: burn {d.burn_rate:g}×, {d.bad:g} bad of {d.total:g} {unit}") for d in days],
        title=f"{svc.name}: daily burn rate", y_label="Burn rate (×)",
        desc="Each day's burn rate over the last 30 days: " + ", ".join(
            f"{d.day:%m-%d} {d.burn_rate:g}×" for d in days if d.total > 0) + ".", id_prefix="dailyburn", width=960,
        height=220)
    return {"svc": svc, "windows": windows, "status": status, "reasons": reasons, "rules": rules,
            "slo_windows": [windows[n] for n in slo.SLO_WINDOWS], "burndown": burndown, "bars": bars, "daily": daily,
            "source_note": source_note, "incidents": service.open_incidents(p.org.id, svc.id),
            "changes": service.recent_changes(p.org.id, svc.id), "change_kinds": CHANGE_KINDS,
            "can_edit": p.role.at_least("member"), "can_delete": p.role.at_least("admin"),
            "now": now, **_deps_context(svc)}


def _burndown_desc(svc: Service, month: slo.Window, days: list, source_note: str) -> str:
    if not month.has_data:
        return "No SLI samples and no incidents for this service: nothing to chart."
    start = days[0].remaining_ratio if days and days[0].remaining_ratio is not None else 1
    return (f"Error budget for a {svc.slo_target:g} % SLO over the last 30 days, {source_note}: "
            f"{start * 100:.0f} % left at the start, {month.remaining_ratio * 100:.1f} % left now "
            f"({month.consumed:g} of {month.budget:g} allowed bad {month.unit} consumed).")


def _deps_context(svc: Service) -> dict:
    p = current_principal()
    calls, callers = service.neighbours(p.org.id, svc.id)
    taken = {s.id for s in calls} | {svc.id}
    candidates = [s for s in service.all_services(p.org.id) if s.id not in taken]
    return {"calls": calls, "callers": callers, "candidates": candidates}


@page_route(bp, "/services/<int:service_id>", tenant_model=Service, summary="A service's SLO page.")
def service_detail(service_id: int):
    p = current_principal()
    svc = service.get_service(p.org.id, service_id)
    return render_template("reliability/service.html", **_detail_context(svc))


@page_route(bp, "/services/<int:service_id>/edit", methods=("GET", "POST"), tenant_model=Service,
            summary="Edit a service.")
def service_edit(service_id: int):
    p = current_principal()
    svc = service.get_service(p.org.id, service_id)
    if request.method == "GET":
        form = {k: getattr(svc, k) for k in service.EDITABLE}
        return render_template("reliability/service_form.html", svc=svc, form=form, errors={}, tiers=TIERS,
                               environments=ENVIRONMENTS)
    values, errors = _service_form()
    model = _validated(values, errors)
    status = 400
    if model is not None:
        try:
            service.update_service(p.org.id, svc.id, model.model_dump(), p.actor)
        except ApiError as exc:
            if exc.status != 409:
                raise
            errors, status = {"name": exc.detail}, 409
        else:
            flash(f"Service {svc.name} saved.", "success")
            return redirect(url_for("reliability.service_detail", service_id=svc.id))
    flash("Nothing was saved: check the highlighted fields.", "error")
    return render_template("reliability/service_form.html", svc=svc, form=values, errors=errors, tiers=TIERS,
                           environments=ENVIRONMENTS), status


@page_route(bp, "/services/<int:service_id>/delete", methods=("POST",), min_role="admin", tenant_model=Service,
            summary="Delete a service (owner/admin).")
def service_delete(service_id: int):
    p = current_principal()
    gone = service.delete_service(p.org.id, service_id, p.actor)
    flash(f"Service {gone['name']} deleted.", "success")
    return redirect(url_for("reliability.service_list"))


def _deps_response(svc: Service, message: str, ok: bool):
    """HTMX: the dependencies card again with the message in its live region (200 either way, since
    HTMX swaps only successful responses). Without HTMX: back to the page with a flash."""
    if is_htmx():
        return render_template("reliability/_dependencies.html", svc=svc, message=message, ok=ok,
                               can_edit=True, **_deps_context(svc))
    flash(message, "success" if ok else "error")
    return redirect(url_for("reliability.service_detail", service_id=svc.id) + "#dependencies")


@page_route(bp, "/services/<int:service_id>/dependencies", methods=("POST",), tenant_model=Service,
            endpoint="dependency_add", summary="Add a dependency edge.")
def dependency_add(service_id: int):
    p = current_principal()
    svc = service.get_service(p.org.id, service_id)
    try:
        depends_on_id = int(request.form.get("depends_on_id", ""))
    except ValueError:
        return _deps_response(svc, "Choose a service to depend on.", False)
    try:
        edge = service.add_dependency(p.org.id, svc.id, depends_on_id, p.actor)
    except ApiError as exc:
        if exc.status not in (404, 409):
            raise
        return _deps_response(svc, exc.detail, False)
    return _deps_response(svc, f"{svc.name} now depends on {edge.depends_on.name}.", True)


@page_route(bp, "/services/<int:service_id>/dependencies/<int:depends_on_id>/remove", methods=("POST",),
            tenant_model=PAIR, endpoint="dependency_remove", summary="Remove a dependency edge.")
def dependency_remove(service_id: int, depends_on_id: int):
    p = current_principal()
    svc = service.get_service(p.org.id, service_id)
    gone = service.remove_dependency(p.org.id, svc.id, depends_on_id, p.actor)
    return _deps_response(svc, f"{svc.name} no longer depends on {gone['depends_on_name']}.", True)


@page_route(bp, "/services/<int:service_id>/changes", methods=("POST",), tenant_model=Service,
            endpoint="change_add", summary="Record a change event on a service.")
def change_add(service_id: int):
    p = current_principal()
    svc = service.get_service(p.org.id, service_id)
    raw_when = request.form.get("occurred_at", "").strip()
    try:
        when = dt.datetime.fromisoformat(raw_when).replace(tzinfo=dt.timezone.utc) if raw_when else None
        fields = {"kind": request.form.get("kind", "deploy"), "summary": request.form.get("summary", ""),
                  "ref": request.form.get("ref", "")}
        body = ChangeIn.model_validate(fields | ({"occurred_at": when} if when else {}))
        service.record_change(p.org.id, svc.id, kind=body.kind, summary=body.summary, ref=body.ref,
                              occurred_at=body.occurred_at, actor=p.actor)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError; so is a bad date
        names = _messages(exc) if isinstance(exc, ValidationError) else {"occurred_at": FIELD_HELP["occurred_at"]}
        flash("The change was not recorded. " + " ".join(names.values()), "error")
    except ApiError as exc:
        if exc.status != 400:
            raise
        flash(f"The change was not recorded: {exc.detail}", "error")
    else:
        flash(f"{body.kind.capitalize()} recorded on {svc.name}.", "success")
    return redirect(url_for("reliability.service_detail", service_id=svc.id) + "#changes")


@page_route(bp, "/services/<int:service_id>/gate-panel", tenant_model=Service, endpoint="gate_panel",
            summary="The service page's deploy-gate panel (HTMX partial): rules, a preview verdict, last decisions.")
def gate_panel(service_id: int):
    p = current_principal()
    return _gate_panel(service.get_service(p.org.id, service_id))


def _gate_panel(svc: Service, *, notice: str = "", error: str = "", status: int = 200):
    p = current_principal()
    now = utcnow()
    return render_template("reliability/_gate_panel.html", svc=svc, gate=gates.preview(p.org.id, svc.id, now),
                           decisions=gates.recent_decisions(p.org.id, svc.id), now=now, notice=notice, error=error,
                           can_edit=p.role.at_least("admin"), severities=SEVERITIES), status


@page_route(bp, "/services/<int:service_id>/gate-rules", methods=("POST",), tenant_model=Service, min_role="admin",
            summary="Change the service's deploy-gate rules from the panel's form (owner/admin; audited).")
def gate_rules_form(service_id: int):
    """The form sends every rule (unticked boxes are absent, so false); the same model as the API validates."""
    from zentro.reliability.gates_api import GateRulesPatch

    p = current_principal()
    svc = service.get_service(p.org.id, service_id)
    form = request.form
    percent = (form.get("min_remaining_percent") or "0").strip()
    try:
        body = GateRulesPatch.model_validate({
            "enabled": "enabled" in form, "block_severities": form.getlist("block_severities"),
            "include_dependencies": "include_dependencies" in form, "error_budget": "error_budget" in form,
            "min_remaining_percent": float(percent) if percent.replace(".", "", 1).isdigit() else percent,
            "freeze": "freeze" in form, "require_maintenance_window": "require_maintenance_window" in form})
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        return _gate_panel(svc, error=f"Not saved: {detail}", status=400)
    gates.update_rules(p.org.id, svc.id, body.model_dump(exclude_none=True), p.actor, utcnow())
    return _gate_panel(svc, notice="Rules saved.")
