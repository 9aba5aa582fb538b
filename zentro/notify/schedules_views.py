"""The digest settings page (/settings/digests): one row per digest with its schedule for the organisation,
channels, Slack channel, next run, last run outcome, a preview link and "Send now".

Owners and admins edit a row in place (HTMX swaps the row; without JavaScript the form posts and the page
redirects back); bad input re-renders the row with the message and changes nothing. Other roles see the same
table read-only. "Send now" runs the same delivery as POST /api/governance/compliance/<slug> (not forced: a
period already delivered says so instead of sending twice)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from zentro.accounts.models import Role
from zentro.notify import schedules as svc
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import is_htmx, page_route

bp = Blueprint("notify_schedule_pages", __name__)
SLUG_PATH = {"path_samples": {"slug": "sla-reminders"}}


def _can_edit() -> bool:
    return current_principal().role.at_least(Role.admin)


def _field_of(exc: ApiError) -> str:
    """The form field a refusal is about (to mark it invalid): cron, channels or slackChannel."""
    loc = (exc.errors or [{}])[0].get("loc") or [""]
    return str(loc[0])


def _render_row(slug: str, *, form: dict | None = None, error: str = "", error_field: str = "", result=None,
                status: int = 200):
    p = current_principal()
    row = svc.get_schedule(p.org.id, slug)
    return render_template("notify/_digest_row.html", d=row, can_edit=_can_edit(), form=form, error=error,
                           error_field=error_field, result=result), status


def _page(errors: dict | None = None, forms: dict | None = None, error_fields: dict | None = None,
          status: int = 200):
    p = current_principal()
    return render_template("notify/digests.html", rows=svc.list_schedules(p.org.id), can_edit=_can_edit(),
                           errors=errors or {}, forms=forms or {}, error_fields=error_fields or {}), status


@page_route(bp, "/settings/digests", summary="Digest schedules: which digests the organisation receives, when, "
                                             "where; next and last runs; preview and send now.")
def digests_page():
    return _page()


def _form_values() -> dict:
    """The row's fields as typed (shown again when the save is refused)."""
    return {"enabled": request.form.get("enabled") in ("on", "1", "true"), "cron": request.form.get("cron", ""),
            "channels": request.form.getlist("channels"), "slackChannel": request.form.get("slack_channel", "")}


def _changes(slug: str, form: dict) -> dict:
    d = svc.get_digest(slug)
    if not form["channels"]:
        raise ApiError(400, "Pick at least one channel.",
                       errors=[{"loc": ["channels"], "msg": "required", "type": "value_error"}])
    channels = [] if set(form["channels"]) == set(d.channels) else form["channels"]  # all: the digest's default
    return {"enabled": form["enabled"], "cron": form["cron"][:100], "channels": channels,
            "slackChannel": form["slackChannel"][:80]}


@page_route(bp, "/settings/digests/<slug>", methods=("POST",), endpoint="digest_save", min_role="admin",
            extra=SLUG_PATH, summary="Save one digest's schedule (owner/admin).")
def digest_save(slug: str):
    p = current_principal()
    form = _form_values()
    try:
        svc.update_schedule(p.org.id, slug, _changes(slug, form), user_id=p.user.id, actor=p.actor)
    except ApiError as exc:
        if exc.status != 400:
            raise
        if is_htmx():
            return _render_row(slug, form=form, error=exc.detail, error_field=_field_of(exc), status=400)
        return _page(errors={slug: exc.detail}, forms={slug: form}, error_fields={slug: _field_of(exc)}, status=400)
    if is_htmx():
        return _render_row(slug, result={"outcome": "saved", "detail": "Saved."})
    flash(f"Schedule of {svc.get_digest(slug).title} saved.", "success")
    return redirect(url_for("notify_schedule_pages.digests_page"))


@page_route(bp, "/settings/digests/<slug>/send", methods=("POST",), endpoint="digest_send", min_role="admin",
            extra=SLUG_PATH, summary="Deliver one digest now (owner/admin), once per period.")
def digest_send(slug: str):
    from zentro.compliance import digests

    p = current_principal()
    d = svc.get_digest(slug)
    result = digests.deliver(d.slug, p.org.id, trigger="manual", actor=p.actor)
    shown = {"outcome": result.outcome, "detail": result.detail}
    if is_htmx():
        return _render_row(slug, result=shown)
    flash(f"{d.title}: {result.detail}", "success" if result.outcome in ("delivered", "partial") else "info")
    return redirect(url_for("notify_schedule_pages.digests_page"))
