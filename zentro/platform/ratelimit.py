"""API rate limits per plan (Flask-Limiter application limits, shared by every /api/ route).

Authenticated calls count against their org's plan; anonymous ones against the client address.
Health checks are never limited so a load balancer cannot mark a host down by probing it.
Flask-Limiter's memory storage is per process: with more than one worker, set
ZENTRO_RATELIMIT_STORAGE_URI=redis://… so every worker shares one count."""
from __future__ import annotations

from flask import current_app, g, request

PLAN_LIMITS = {"free": "60/minute", "pro": "300/minute", "enterprise": "1000/minute"}
UNLIMITED_PATHS = frozenset({"/api/health", "/api/health/db"})


def _client_address() -> str:
    return request.remote_addr or "unknown"


def rate_limit_key() -> str:
    p = g.get("principal")
    if p is not None:
        return f"org:{p.org.id}"
    return f"ip:{_client_address()}"


def plan_limit() -> str:
    p = g.get("principal")
    if p is not None:
        return PLAN_LIMITS.get(p.org.plan, PLAN_LIMITS["free"])
    return current_app.config["ZENTRO_ANON_RATE_LIMIT"]


def exempt() -> bool:
    return not request.path.startswith("/api/") or request.path in UNLIMITED_PATHS


def request_identifier() -> str:
    """Unmatched /api/ paths still count (and get headers) under one pseudo endpoint."""
    if request.endpoint:
        return request.endpoint
    return "api_unmatched" if request.path.startswith("/api/") else ""


def login_key() -> str:
    email = (request.form.get("email") or "").strip().lower()[:320]
    return f"login:{_client_address()}:{email}"


def login_limit() -> str:
    return current_app.config["ZENTRO_LOGIN_RATE_LIMIT"]
