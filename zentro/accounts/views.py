"""Pages: sign-in, sign-out, org switcher, overview, settings (API keys, ingest tokens, password)."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import login_user, logout_user
from sqlalchemy import select

from zentro.accounts import service
from zentro.accounts.models import ApiKey, IngestToken, Membership
from zentro.audit.models import AuditEvent
from zentro.audit.service import count_events
from zentro.extensions import db, limiter
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.ratelimit import login_key, login_limit
from zentro.platform.routes import page_route, public_route

bp = Blueprint("accounts", __name__)
SESSION_TOKEN = "sid"


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("accounts.overview")


@public_route(bp, "/login", methods=("GET", "POST"), summary="Sign in.")
@limiter.limit(login_limit, key_func=login_key, methods=["POST"], deduct_when=lambda r: g.get("login_failed", False),
               override_defaults=False)
def login():
    if request.method == "GET":
        if current_principal() is not None:
            return redirect(url_for("accounts.overview"))
        return render_template("accounts/login.html", next=request.args.get("next", ""))
    email, password = request.form.get("email", ""), request.form.get("password", "")
    user = service.authenticate(email, password)
    if user is None:
        g.login_failed = True
        return render_template("accounts/login.html", error="Email or password is incorrect.", email=email,
                               next=request.form.get("next", "")), 401
    session.clear()
    token = service.start_session(user, current_app.config["ZENTRO_SESSION_HOURS"], request.remote_addr or "",
                                  request.user_agent.string)
    login_user(user)
    session[SESSION_TOKEN] = token
    session.permanent = False
    return redirect(_safe_next(request.form.get("next")))


@page_route(bp, "/logout", methods=("POST",), min_role="viewer", summary="Sign out; the session is revoked server-side.")
def logout():
    p = current_principal()
    service.end_session(session.get(SESSION_TOKEN), p.org, p.actor)
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("accounts.login"))


@page_route(bp, "/orgs/switch", methods=("POST",), min_role="viewer", summary="Switch the active organisation.")
def switch_org():
    p = current_principal()
    try:
        org_id = int(request.form.get("org_id", ""))
    except ValueError:
        raise ApiError(404, "Organisation not found") from None
    org = service.switch_org(p.user, org_id, p.actor)
    if org is None:
        raise ApiError(404, "Organisation not found")
    session["org_id"] = org.id
    flash(f"Switched to {org.name}.", "success")
    return redirect(url_for("accounts.overview"))


@page_route(bp, "/", summary="Overview of the active organisation.")
def overview():
    p = current_principal()
    recent = db.session.scalars(select(AuditEvent).where(AuditEvent.org_id == p.org.id)
                                .order_by(AuditEvent.seq.desc()).limit(10)).all()
    members = db.session.scalars(select(Membership).where(Membership.org_id == p.org.id)).all()
    return render_template("accounts/overview.html", recent=recent, members=members, audit_total=count_events(p.org.id))


@page_route(bp, "/settings", summary="Settings home.")
def settings():
    return redirect(url_for("accounts.api_keys_page"))


@page_route(bp, "/settings/api-keys", methods=("GET", "POST"), min_role="viewer", summary="Your API keys.")
def api_keys_page():
    p = current_principal()
    created = None
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        scopes = request.form.get("scopes", "*").split()
        try:
            if not (1 <= len(name) <= 100):
                raise service.AccountError("Give the key a name of 1–100 characters.")
            key, created = service.create_api_key(p.org, p.user, name, scopes, p.actor)
            flash(f"API key “{key.name}” created. Copy it now: it will not be shown again.", "success")
        except service.AccountError as exc:
            flash(str(exc), "error")
    keys = db.session.scalars(service.api_keys_query(p.org, p.user).order_by(ApiKey.id.desc())).all()
    return render_template("accounts/api_keys.html", keys=keys, created=created)


@page_route(bp, "/settings/api-keys/<int:key_id>/revoke", methods=("POST",), min_role="viewer", tenant_model=ApiKey,
            summary="Revoke one of your API keys.")
def revoke_api_key_page(key_id: int):
    p = current_principal()
    key = service.revoke_api_key(p.org, p.user, key_id, p.actor)
    flash(f"API key “{key.name}” revoked.", "success")
    return redirect(url_for("accounts.api_keys_page"))


@page_route(bp, "/settings/ingest-tokens", summary="The org's alert-ingest tokens.")
def ingest_tokens_page(created: str | None = None):
    p = current_principal()
    tokens = db.session.scalars(service.ingest_tokens_query(p.org).order_by(IngestToken.id.desc())).all()
    return render_template("accounts/ingest_tokens.html", tokens=tokens, created=created,
                           can_manage=p.role.at_least("admin"))


@page_route(bp, "/settings/ingest-tokens", methods=("POST",), min_role="admin", endpoint="create_ingest_token_page",
            summary="Create an alert-ingest token (owner/admin).")
def create_ingest_token_page():
    p = current_principal()
    name = request.form.get("name", "").strip()
    if not (1 <= len(name) <= 100):
        flash("Give the token a name of 1–100 characters.", "error")
        return ingest_tokens_page()
    tok, plaintext = service.create_ingest_token(p.org, name, p.actor, p.user)
    flash(f"Ingest token “{tok.name}” created. Copy it now: it will not be shown again.", "success")
    return ingest_tokens_page(created=plaintext)


@page_route(bp, "/settings/ingest-tokens/<int:token_id>/revoke", methods=("POST",), min_role="admin",
            tenant_model=IngestToken, summary="Revoke an alert-ingest token (owner/admin).")
def revoke_ingest_token_page(token_id: int):
    p = current_principal()
    tok = service.revoke_ingest_token(p.org, token_id, p.actor)
    flash(f"Ingest token “{tok.name}” revoked.", "success")
    return redirect(url_for("accounts.ingest_tokens_page"))


@page_route(bp, "/settings/password", methods=("GET", "POST"), min_role="viewer",
            summary="Change your password; every other session is signed out.")
def password_page():
    p = current_principal()
    if request.method == "POST":
        new = request.form.get("new_password", "")
        if new != request.form.get("confirm_password", ""):
            flash("The new passwords do not match.", "error")
        else:
            try:
                service.change_password(p.user, p.org, request.form.get("current_password", ""), new, p.actor)
            except service.AccountError as exc:
                flash(str(exc), "error")
            else:
                # every session, this one included, was revoked: start a fresh one here
                token = service.start_session(p.user, current_app.config["ZENTRO_SESSION_HOURS"],
                                              request.remote_addr or "", request.user_agent.string)
                session[SESSION_TOKEN] = token
                flash("Password changed. Other sessions have been signed out.", "success")
                return redirect(url_for("accounts.password_page"))
    return render_template("accounts/password.html")
