"""Pages: assessor access (tokens: list, create with the secret shown once, revoke) and governance
(deployment profile form, effective retention, legal holds, a dry run of the next purge)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from zentro.accounts.models import AssessorToken
from zentro.compliance import assessor, governance, retention
from zentro.extensions import db
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import page_route
from zentro.platform.types import utcnow

bp = Blueprint("governance_pages", __name__)
EXPIRY_CHOICES = (7, 14, 30, 60, 90, 180, 365)


# --- assessor access -------------------------------------------------------------------------------------

def _tokens_page(created: str | None = None, form: dict | None = None, error: str = "", status: int = 200):
    p = current_principal()
    now = utcnow()
    tokens = db.session.scalars(assessor.tokens_query(p.org.id).order_by(AssessorToken.id.desc())).all()
    rows = [assessor.token_json(t, now) for t in tokens]
    return render_template("compliance/assessor_tokens.html", tokens=rows, created=created, form=form or {},
                           error=error, resources=list(assessor.RESOURCES), expiry_choices=EXPIRY_CHOICES,
                           can_manage=p.role.at_least("admin"),
                           api_url=url_for("compliance_assessor.assessor_resource", resource="RESOURCE",
                                           _external=True).replace("RESOURCE", "<resource>")), status


@page_route(bp, "/compliance/assessor-tokens", summary="Assessor tokens: who may read which compliance exports, until when.")
def assessor_tokens_page():
    return _tokens_page()


@page_route(bp, "/compliance/assessor-tokens", methods=("POST",), min_role="admin", endpoint="create_assessor_token_page",
            summary="Create an assessor token (owner/admin); the secret is shown once.")
def create_assessor_token_page():
    p = current_principal()
    f = request.form
    form = {"name": f.get("name", ""), "resources": f.getlist("resources"), "expires_in_days": f.get("expires_in_days", "")}
    try:
        try:
            days = int(form["expires_in_days"])
        except ValueError:
            raise ApiError(400, f"Choose an expiry of 1–{assessor.MAX_EXPIRY_DAYS} days.") from None
        tok, plaintext = assessor.create_token(p.org.id, form["name"], form["resources"], days, p.actor, p.user.id)
    except ApiError as exc:
        if exc.status != 400:
            raise
        flash(f"The token was not created: {exc.detail}", "error")
        return _tokens_page(form=form, error=exc.detail, status=400)
    flash(f"Assessor token “{tok.name}” created. Copy it now: it will not be shown again.", "success")
    return _tokens_page(created=plaintext)


@page_route(bp, "/compliance/assessor-tokens/<int:token_id>/revoke", methods=("POST",), min_role="admin",
            tenant_model=AssessorToken, summary="Revoke an assessor token (owner/admin).")
def revoke_assessor_token_page(token_id: int):
    p = current_principal()
    tok = assessor.revoke_token(p.org.id, token_id, p.actor)
    flash(f"Assessor token “{tok.name}” revoked.", "success")
    return redirect(url_for("governance_pages.assessor_tokens_page"))


# --- governance ------------------------------------------------------------------------------------------

def _governance_page(form: dict | None = None, error: str = "", status: int = 200):
    p = current_principal()
    now = utcnow()
    profile = governance.get_profile(p.org.id)
    policy = governance.effective_policy(p.org.id)
    show_preview = request.args.get("preview") == "1"
    return render_template(
        "compliance/governance.html", profile=governance.profile_json(profile), tiers=governance.TIERS,
        regions=governance.REGIONS, policy=policy, holds=governance.legal_holds(p.org.id),
        preview=retention.preview(p.org.id, now).as_json() if show_preview else None,
        form=form, error=error, can_manage=p.role.at_least("admin"),
        limits=(governance.RETENTION_MIN_DAYS, governance.RETENTION_MAX_DAYS)), status


@page_route(bp, "/compliance/governance", summary="Deployment profile, retention policy, legal holds and a purge preview.")
def governance_page():
    return _governance_page()


def _days(raw: str, label: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    lo, hi = governance.RETENTION_MIN_DAYS, governance.RETENTION_MAX_DAYS
    try:
        days = int(raw)
    except ValueError:
        raise ApiError(400, f"{label} must be a whole number of days ({lo}–{hi}), or empty for the tier default.") from None
    if not lo <= days <= hi:
        raise ApiError(400, f"{label} must be {lo}–{hi} days, or empty for the tier default.")
    return days


@page_route(bp, "/compliance/governance/profile", methods=("POST",), min_role="admin",
            summary="Save the deployment profile (owner/admin).")
def update_profile_page():
    p = current_principal()
    f = request.form
    form = {k: f.get(k, "") for k in ("tier", "data_region", "boundary", "audit_retention_days", "incident_retention_days")}
    try:
        if form["tier"] not in governance.TIERS:
            raise ApiError(400, f"Choose a tier: {', '.join(governance.TIERS)}.")
        if form["data_region"] not in governance.REGIONS:
            raise ApiError(400, f"Choose a data region: {', '.join(governance.REGIONS)}.")
        if len(form["boundary"]) > 200 or "\x00" in form["boundary"]:
            raise ApiError(400, "The boundary description may have at most 200 characters.")
        changes = {"deployment_tier": form["tier"], "data_region": form["data_region"], "boundary": form["boundary"].strip(),
                   "audit_retention_days": _days(form["audit_retention_days"], "Audit retention"),
                   "incident_retention_days": _days(form["incident_retention_days"], "Incident retention")}
        governance.update_profile(p.org.id, changes, p.actor)
    except ApiError as exc:
        if exc.status != 400:
            raise
        db.session.rollback()
        flash(f"The profile was not saved: {exc.detail}", "error")
        return _governance_page(form=form, error=exc.detail, status=400)
    flash("Deployment profile saved.", "success")
    return redirect(url_for("governance_pages.governance_page"))
