"""Settings › Billing: the org's plan and its limits, the Lemon Squeezy subscription (status, renewal or end,
whether it needs attention), payment history, and, for owners and admins, Upgrade (a form POST that redirects to
the plan's hosted checkout with the org attached) and Manage billing (a redirect to the customer portal).
Everyone in the org may look; when Lemon Squeezy is not configured the page says so. Refusals (not configured,
already subscribed, no subscription) come back as a message on the page and change nothing."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from zentro.billing import plans, service
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import page_route
from zentro.platform.types import utcnow

bp = Blueprint("billing_pages", __name__)


@page_route(bp, "/settings/billing", summary="The organisation's plan, limits, subscription and payments.")
def billing_page():
    p = current_principal()
    cfg = current_app.config
    now = utcnow()
    return render_template(
        "billing/billing.html", summary=service.summary(p.org.id, cfg, now), catalog=plans.catalog(cfg),
        payments=[service.payment_json(x) for x in service.payments(p.org.id)],
        can_manage=p.role is not None and p.role.at_least("admin"), titles=plans.TITLES,
        checkout_configured=any(plans.checkout_url(cfg, plan) for plan in plans.PAID_PLANS))


def _back(message: str):
    flash(message, "error")
    return redirect(url_for("billing_pages.billing_page"))


@page_route(bp, "/settings/billing/checkout", methods=("POST",), min_role="admin",
            summary="Go to the hosted checkout of a plan with this organisation attached (owner/admin).")
def billing_checkout_page():
    p = current_principal()
    plan = request.form.get("plan", "")
    if plan not in plans.PAID_PLANS:
        return _back("Choose the pro or enterprise plan.")
    try:
        url = service.checkout_link(p.org.id, plan, p.user.email, current_app.config, p.actor, utcnow())
    except ApiError as exc:
        return _back(exc.detail)
    return redirect(url, 303)


@page_route(bp, "/settings/billing/portal", methods=("POST",), min_role="admin",
            summary="Go to the Lemon Squeezy customer portal of this organisation's subscription (owner/admin).")
def billing_portal_page():
    p = current_principal()
    try:
        url = service.portal_link(p.org.id, current_app.config, p.actor, utcnow())
    except ApiError as exc:
        return _back(exc.detail)
    return redirect(url, 303)
