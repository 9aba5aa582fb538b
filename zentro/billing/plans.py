"""The three plans as the API and the billing page describe them, and the Lemon Squeezy mapping onto them.

Limits are read from where they are enforced, never restated here: API calls per minute from
``zentro.platform.ratelimit.PLAN_LIMITS``, RCA analyses per hour from ``zentro.incidents.rca.ANALYSES_PER_HOUR``,
and whether alert ingest needs a paid plan from ``ZENTRO_ALERT_INGEST_REQUIRE_PAID``.

A subscription's plan comes from its variant id (``ZENTRO_LEMONSQUEEZY_VARIANT_PRO`` / ``_ENTERPRISE``, comma
separated). Whether it grants that plan right now depends on its status:
* on_trial, active, past_due (Lemon Squeezy is still retrying the payment: a grace period) → the paid plan;
* cancelled → the paid plan until ``ends_at`` (the end of the paid period), free after it;
* paused, unpaid, expired (and any status Lemon Squeezy may add) → free.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from zentro.accounts.models import Plan
from zentro.incidents.rca import ANALYSES_PER_HOUR
from zentro.platform.ratelimit import PLAN_LIMITS

PLANS = tuple(p.value for p in Plan)  # free, pro, enterprise: ascending
PAID_PLANS = ("pro", "enterprise")
TITLES = {"free": "Free", "pro": "Pro", "enterprise": "Enterprise"}
GRANTING_STATUSES = ("on_trial", "active", "past_due")
VARIANT_KEYS = {"pro": "ZENTRO_LEMONSQUEEZY_VARIANT_PRO", "enterprise": "ZENTRO_LEMONSQUEEZY_VARIANT_ENTERPRISE"}
CHECKOUT_KEYS = {"pro": "ZENTRO_LEMONSQUEEZY_CHECKOUT_URL_PRO",
                 "enterprise": "ZENTRO_LEMONSQUEEZY_CHECKOUT_URL_ENTERPRISE"}


def api_calls_per_minute(plan: str) -> int:
    count, _, per = PLAN_LIMITS.get(plan, PLAN_LIMITS["free"]).partition("/")
    assert per == "minute", "PLAN_LIMITS are expressed per minute"
    return int(count)


def rca_analyses_per_hour(plan: str) -> int | None:
    """None: unlimited."""
    return ANALYSES_PER_HOUR.get(plan, ANALYSES_PER_HOUR["free"])


def rank(plan: str) -> int:
    return PLANS.index(plan) if plan in PLANS else 0


def variant_ids(config: Mapping, plan: str) -> set[str]:
    raw = config.get(VARIANT_KEYS[plan]) or ""
    return {v.strip() for v in str(raw).split(",") if v.strip()}


def plan_for_variant(config: Mapping, variant_id: str) -> str | None:
    """The paid plan a variant id buys, or None when it is not configured for either."""
    for plan in ("enterprise", "pro"):
        if variant_id and variant_id in variant_ids(config, plan):
            return plan
    return None


def granted_plan(plan: str, status: str, ends_at: dt.datetime | None, now: dt.datetime) -> str:
    """The plan a subscription on ``plan`` grants at ``now`` given its status (module docstring)."""
    if plan not in PAID_PLANS:
        return "free"
    if status in GRANTING_STATUSES:
        return plan
    if status == "cancelled" and ends_at is not None and now < ends_at:
        return plan
    return "free"


def checkout_url(config: Mapping, plan: str) -> str:
    return (config.get(CHECKOUT_KEYS[plan]) or "").strip() if plan in CHECKOUT_KEYS else ""


def catalog(config: Mapping) -> list[dict]:
    """The three plans with their limits and whether each can be bought here (a checkout URL is configured)."""
    ingest_needs_paid = bool(config.get("ZENTRO_ALERT_INGEST_REQUIRE_PAID"))
    return [{
        "plan": plan,
        "title": TITLES[plan],
        "paid": plan in PAID_PLANS,
        "limits": {
            "api_calls_per_minute": api_calls_per_minute(plan),
            "rca_analyses_per_hour": rca_analyses_per_hour(plan),
            "alert_ingest": not (ingest_needs_paid and plan == "free"),
        },
        "checkout_available": bool(checkout_url(config, plan)),
    } for plan in PLANS]
