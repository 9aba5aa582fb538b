"""Settings › Webhooks (owners and admins: endpoints, their last delivery, create with the secret shown
once, enable/disable, send a test, rotate the secret, delete) and Settings › Delivery log (members and
above: every e-mail, Slack message and webhook with status, attempts and error, filterable; says when
SMTP or Slack is not configured).

Forms post normally and redirect back (no JavaScript needed); the row actions are also HTMX posts that
re-render the endpoint's row in place, and the log's filters re-render its rows. Refused input (400)
re-renders the form with the reason and changes nothing."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from zentro.accounts.models import Role
from zentro.extensions import db
from zentro.notify import channels, webhooks
from zentro.notify.api import deliveries_query
from zentro.notify.models import CHANNELS, DELIVERY_STATUSES, Delivery, OutboxMessage, WebhookEndpoint
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.pagination import MAX_ID, decode_cursor, encode_cursor
from zentro.platform.routes import is_htmx, page_route

bp = Blueprint("notify_pages", __name__)

LOG_PAGE_SIZE = 50


# --- webhooks ----------------------------------------------------------------------------------------

def _catalogue_groups() -> list[tuple[str, list[tuple[str, str]]]]:
    """Checkbox groups for the create form: wildcards first, then each family's events."""
    cat = webhooks.event_catalogue()
    families: dict[str, list[tuple[str, str]]] = {}
    for name, text in cat.items():
        families.setdefault(name.split(".", 1)[0], []).append((name, text))
    wild = [("*", "Every event, including ones added later.")] + [
        (f"{f}.*", f"Every {f} event.") for f in families if len(families[f]) > 1]
    return [("Wildcards", wild)] + [(f.capitalize(), evs) for f, evs in families.items()]


def _webhooks_page(*, created: str | None = None, created_id: int | None = None, form: dict | None = None,
                   error: str = "", status: int = 200):
    p = current_principal()
    rows = db.session.scalars(webhooks.endpoints_query(p.org.id).order_by(WebhookEndpoint.id.desc())).all()
    last = webhooks.last_messages(p.org.id, [r.id for r in rows])
    return render_template("notify/webhooks.html", endpoints=rows, last_by_id=last, groups=_catalogue_groups(),
                           created=created, created_id=created_id, form=form or {"events": [], "enabled": True},
                           error=error), status


@page_route(bp, "/settings/webhooks", min_role="admin",
            summary="Webhook endpoints of the organisation (owner/admin).")
def webhooks_page():
    return _webhooks_page()


@page_route(bp, "/settings/webhooks", methods=("POST",), min_role="admin", endpoint="create_webhook_page",
            summary="Create a webhook endpoint (owner/admin); the page shows its secret once.")
def create_webhook_page():
    p = current_principal()
    form = {"url": request.form.get("url", "")[:600], "description": request.form.get("description", "")[:300],
            "events": [e[:100] for e in request.form.getlist("events")[:60]],
            "enabled": request.form.get("enabled") in ("1", "on", "true")}
    try:
        ep, secret = webhooks.create_endpoint(p.org.id, url=form["url"], events=form["events"], actor=p.actor,
                                              description=form["description"], enabled=form["enabled"],
                                              user_id=p.user.id)
    except ApiError as exc:
        if exc.status != 400:
            raise
        db.session.rollback()
        return _webhooks_page(form=form, error=exc.detail, status=400)
    flash(f"Webhook endpoint for {webhooks.url_host(ep.url)} created. Copy its signing secret now: it will not be "
          "shown again.", "success")
    return _webhooks_page(created=secret, created_id=ep.id)


def _row(ep: WebhookEndpoint, result: dict | None = None, status: int = 200):
    p = current_principal()
    last = webhooks.last_messages(p.org.id, [ep.id]).get(ep.id)
    return render_template("notify/_webhook_row.html", ep=ep, last=last, result=result), status


@page_route(bp, "/settings/webhooks/<int:webhook_id>/toggle", methods=("POST",), min_role="admin",
            tenant_model=WebhookEndpoint, summary="Enable or disable a webhook endpoint (owner/admin).")
def toggle_webhook_page(webhook_id: int):
    p = current_principal()
    enabled = request.form.get("enabled") in ("1", "on", "true")
    ep = webhooks.update_endpoint(p.org.id, webhook_id, {"enabled": enabled}, actor=p.actor)
    if is_htmx():
        return _row(ep)
    flash(f"Webhook endpoint for {webhooks.url_host(ep.url)} {'enabled' if ep.enabled else 'disabled'}.", "success")
    return redirect(url_for("notify_pages.webhooks_page"))


@page_route(bp, "/settings/webhooks/<int:webhook_id>/test", methods=("POST",), min_role="admin",
            tenant_model=WebhookEndpoint, summary="Send a test message to a webhook endpoint now (owner/admin).")
def test_webhook_page(webhook_id: int):
    p = current_principal()
    outcome = webhooks.send_test(p.org.id, webhook_id, actor=p.actor)
    ep = webhooks.get_endpoint(p.org.id, webhook_id)
    if is_htmx():
        return _row(ep, outcome)
    if outcome["ok"]:
        flash(f"Test message delivered to {webhooks.url_host(ep.url)} ({outcome['detail']}).", "success")
    else:
        flash(f"Test message to {webhooks.url_host(ep.url)} failed: {outcome['detail']}", "error")
    return redirect(url_for("notify_pages.webhooks_page"))


@page_route(bp, "/settings/webhooks/<int:webhook_id>/rotate", methods=("POST",), min_role="admin",
            tenant_model=WebhookEndpoint, summary="Replace a webhook endpoint's signing secret (owner/admin).")
def rotate_webhook_page(webhook_id: int):
    p = current_principal()
    ep, secret = webhooks.rotate_secret(p.org.id, webhook_id, actor=p.actor)
    flash(f"New signing secret for {webhooks.url_host(ep.url)}: copy it now. The old secret no longer signs "
          "messages.", "success")
    return _webhooks_page(created=secret, created_id=ep.id)


@page_route(bp, "/settings/webhooks/<int:webhook_id>/delete", methods=("POST",), min_role="admin",
            tenant_model=WebhookEndpoint, summary="Delete a webhook endpoint (owner/admin).")
def delete_webhook_page(webhook_id: int):
    p = current_principal()
    host = webhooks.url_host(webhooks.get_endpoint(p.org.id, webhook_id).url)
    webhooks.delete_endpoint(p.org.id, webhook_id, actor=p.actor)
    flash(f"Webhook endpoint for {host} deleted.", "success")
    return redirect(url_for("notify_pages.webhooks_page"))


# --- delivery log ------------------------------------------------------------------------------------

def _log_filters() -> tuple[dict, list[str]]:
    notices = []
    filters = {"status": request.args.get("status", ""), "channel": request.args.get("channel", ""),
               "source": request.args.get("source", "")[:80]}
    if filters["status"] and filters["status"] not in DELIVERY_STATUSES:
        notices.append(f"Unknown status {filters['status'][:30]!r}; showing every status.")
        filters["status"] = ""
    if filters["channel"] and filters["channel"] not in CHANNELS:
        notices.append(f"Unknown channel {filters['channel'][:30]!r}; showing every channel.")
        filters["channel"] = ""
    return filters, notices


@page_route(bp, "/settings/deliveries", min_role="member",
            summary="The delivery log: every e-mail, Slack message and webhook, newest first (member and above).")
def deliveries_page():
    p = current_principal()
    filters, notices = _log_filters()
    cursor = request.args.get("cursor", "")[:64]
    q = deliveries_query(p.org.id, source=filters["source"] or None, channel=filters["channel"] or None,
                         status=filters["status"] or None)
    if cursor:
        try:
            last_id = decode_cursor(cursor)
            if last_id <= MAX_ID:
                q = q.where(Delivery.id < last_id)
        except ApiError:
            notices.append("That page link is not valid; showing the newest deliveries.")
            cursor = ""
    rows = db.session.scalars(q.order_by(Delivery.id.desc()).limit(LOG_PAGE_SIZE + 1)).all()
    more, rows = len(rows) > LOG_PAGE_SIZE, rows[:LOG_PAGE_SIZE]
    next_cursor = encode_cursor(rows[-1].id) if more and rows else None
    hook_ids = [d.id for d in rows if d.channel == "webhook"]
    messages = {m.delivery_id: m for m in db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.org_id == p.org.id, OutboxMessage.delivery_id.in_(hook_ids)))} if hook_ids else {}
    context = dict(rows=rows, messages=messages, filters=filters, notices=notices, next_cursor=next_cursor,
                   paged=bool(cursor), full_urls=p.role.at_least(Role.admin), url_origin=webhooks.url_origin,
                   newest_args={k: v for k, v in filters.items() if v},
                   older_args={k: v for k, v in filters.items() if v} | {"cursor": next_cursor})
    if is_htmx():
        return render_template("notify/_delivery_rows.html", **context)
    sources = db.session.scalars(select(Delivery.source).where(Delivery.org_id == p.org.id).distinct()
                                 .order_by(Delivery.source).limit(100)).all()
    return render_template("notify/deliveries.html", config=channels.channel_status(p.org.id), sources=sources,
                           statuses=DELIVERY_STATUSES, channel_names=CHANNELS, **context)
