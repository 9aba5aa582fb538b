"""Settings › Integrations: every connected provider with its health at a glance (badge colour and text), last sync
and last error. Any role sees the list; owners and admins also get the Test button (HTMX: re-renders the row in
place), Rotate token, Delete, and the "Add integration" form (choose the provider, then fill in its fields). After
a source is created (or its token rotated) the page shows its ingest URL, token and example payload once. Refused
input re-renders the form with the reason and changes nothing. Rules: zentro/connectors/integrations.py."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from zentro.connectors import integrations as svc
from zentro.connectors.integrations_api import public_base
from zentro.connectors.models import Integration
from zentro.extensions import db
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import is_htmx, page_route

bp = Blueprint("integrations_pages", __name__)


def _allow_private() -> bool:
    return bool(current_app.config.get("ZENTRO_INTEGRATIONS_ALLOW_PRIVATE"))


def _page(*, provider: str = "", form: dict | None = None, error: str = "", created: dict | None = None,
          status: int = 200):
    p = current_principal()
    rows = db.session.scalars(svc.integrations_query(p.org.id).order_by(Integration.id.desc())).all()
    toks = svc.tokens_of(p.org.id, rows)
    chosen = svc.PROVIDERS.get(provider)
    return render_template(
        "connectors/integrations.html", rows=rows, toks=toks, providers=svc.catalogue(), chosen=chosen,
        chosen_fields=next((c for c in svc.catalogue() if chosen and c["key"] == chosen.key), None),
        form=form or {}, error=error, created=created, last_sync=svc.last_sync, labels=svc.PROVIDERS,
        can_write=p.role.at_least("admin")), status


@page_route(bp, "/settings/integrations", summary="Integrations with their health (any role; admins manage them).")
def integrations_page():
    return _page(provider=request.args.get("provider", "")[:40])


def _form_values(p: svc.Provider) -> tuple[dict, dict, dict]:
    """(config, secrets, what to re-show) from the form: empty fields are left out (defaults apply); whole numbers
    become integers for integer fields."""
    config, secrets, shown = {}, {}, {}
    for name, f in p.config_model.model_fields.items():
        raw = request.form.get(f"config.{name}", "")[:600].strip()
        shown[f"config.{name}"] = raw
        if raw:
            config[name] = int(raw) if f.annotation is int and raw.isdigit() else raw
    for name in p.secrets_model.model_fields:
        raw = request.form.get(f"secrets.{name}", "")[:2100]
        if raw.strip():
            secrets[name] = raw.strip()
    return config, secrets, shown


@page_route(bp, "/settings/integrations", methods=("POST",), min_role="admin", endpoint="create_integration_page",
            summary="Add an integration (owner/admin); a source's ingest token is shown once.")
def create_integration_page():
    p = current_principal()
    key = request.form.get("provider", "")[:40]
    name = request.form.get("name", "")[:200]
    provider = svc.PROVIDERS.get(key)
    if provider is None:
        return _page(error=f"Choose a provider ({', '.join(svc.PROVIDER_KEYS)}).", status=400)
    config, secrets, shown = _form_values(provider)
    form = {"name": name, **shown}
    try:
        row, plaintext = svc.create_integration(p.org.id, provider=key, name=name, config=config, secrets=secrets,
                                                actor=p.actor, allow_private=_allow_private(), user_id=p.user.id)
    except ApiError as exc:
        if exc.status not in (400, 409):
            raise
        db.session.rollback()
        detail = exc.detail + "".join(f" {'.'.join(e['loc'])}: {e['msg']}." for e in (exc.errors or [])[:5])
        return _page(provider=key, form=form, error=detail, status=exc.status)
    flash(f"{provider.label} integration “{row.name}” added.", "success")
    created = None
    if plaintext:
        created = {"id": row.id, "name": row.name,
                   **svc.ingest_json(provider, svc.tokens_of(p.org.id, [row]).get(row.ingest_token_id),
                                     public_base(), plaintext)}
    return _page(created=created)


def _row(row: Integration, result: dict | None = None):
    p = current_principal()
    tok = svc.tokens_of(p.org.id, [row]).get(row.ingest_token_id)
    return render_template("connectors/_integration_row.html", row=row, tok=tok, result=result,
                           last_sync=svc.last_sync, labels=svc.PROVIDERS, can_write=p.role.at_least("admin"))


@page_route(bp, "/settings/integrations/<int:integration_id>/test", methods=("POST",), min_role="admin",
            tenant_model=Integration, summary="Test an integration's connection now (owner/admin).")
def test_integration_page(integration_id: int):
    p = current_principal()
    cfg = current_app.config
    result = svc.test_integration(p.org.id, integration_id, actor=p.actor, allow_private=_allow_private(),
                                  timeout=float(cfg["ZENTRO_INTEGRATION_PROBE_TIMEOUT_SECONDS"]),
                                  slack_api_url=cfg.get("ZENTRO_SLACK_API_URL") or "https://slack.com/api/")
    row = svc.get_integration(p.org.id, integration_id)
    if is_htmx():
        return _row(row, result)
    flash(f"Test of “{row.name}”: {result['outcome'].replace('_', ' ')} — {result['detail']}",
          "success" if result["outcome"] == "healthy" else "error")
    return redirect(url_for("integrations_pages.integrations_page"))


@page_route(bp, "/settings/integrations/<int:integration_id>/rotate", methods=("POST",), min_role="admin",
            tenant_model=Integration, summary="Replace a source's ingest token (owner/admin); shown once.")
def rotate_integration_page(integration_id: int):
    p = current_principal()
    row, plaintext = svc.update_integration(p.org.id, integration_id, {"rotate_ingest_token": True}, actor=p.actor,
                                            allow_private=_allow_private(), user_id=p.user.id)
    provider = svc.PROVIDERS[row.provider]
    flash(f"New ingest token for “{row.name}”: update the sender now. The old token no longer works.", "success")
    return _page(created={"id": row.id, "name": row.name,
                          **svc.ingest_json(provider, svc.tokens_of(p.org.id, [row]).get(row.ingest_token_id),
                                            public_base(), plaintext)})


@page_route(bp, "/settings/integrations/<int:integration_id>/delete", methods=("POST",), min_role="admin",
            tenant_model=Integration, summary="Delete an integration and revoke its ingest token (owner/admin).")
def delete_integration_page(integration_id: int):
    p = current_principal()
    name = svc.get_integration(p.org.id, integration_id).name
    svc.delete_integration(p.org.id, integration_id, actor=p.actor)
    flash(f"Integration “{name}” deleted; its access is revoked.", "success")
    return redirect(url_for("integrations_pages.integrations_page"))
