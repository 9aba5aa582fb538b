"""The error envelope: every ``/api/`` failure is JSON ``{error, detail, error_code}``."""
from __future__ import annotations

import logging

from flask import Flask, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger("zentro.errors")

CODES = {
    400: ("bad_request", "VALIDATION_ERROR"),
    401: ("unauthorized", "UNAUTHORIZED"),
    402: ("payment_required", "PAYMENT_REQUIRED"),
    403: ("forbidden", "FORBIDDEN"),
    404: ("not_found", "NOT_FOUND"),
    405: ("method_not_allowed", "METHOD_NOT_ALLOWED"),
    409: ("conflict", "CONFLICT"),
    410: ("gone", "GONE"),
    413: ("payload_too_large", "PAYLOAD_TOO_LARGE"),
    415: ("unsupported_media_type", "UNSUPPORTED_MEDIA_TYPE"),
    422: ("idempotency_mismatch", "IDEMPOTENCY_MISMATCH"),
    429: ("rate_limit_exceeded", "RATE_LIMIT_EXCEEDED"),
    500: ("internal_error", "INTERNAL_ERROR"),
    503: ("unavailable", "SERVICE_UNAVAILABLE"),
}


class ApiError(Exception):
    """Raise from any view or service to answer with the envelope."""

    def __init__(self, status: int, detail: str, *, error_code: str | None = None, errors: list | None = None,
                 headers: dict | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.error_code = error_code or CODES.get(status, ("error", "ERROR"))[1]
        self.errors = errors
        self.headers = headers or {}


def not_found(what: str = "Resource") -> ApiError:
    return ApiError(404, f"{what} not found")


def envelope(status: int, detail: str, error_code: str | None = None, errors: list | None = None):
    error, default_code = CODES.get(status, ("error", "ERROR"))
    body = {"error": error, "detail": detail, "error_code": error_code or default_code}
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    return response


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/openapi.json"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        if not wants_json() and exc.status in (401, 403, 404):
            return _page_error(exc.status, exc.detail)
        response = envelope(exc.status, exc.detail, exc.error_code, exc.errors)
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        detail = {
            404: "The requested resource or endpoint does not exist.",
            405: f"Method {request.method} is not allowed here.",
            413: f"Request body exceeds {app.config['MAX_CONTENT_LENGTH']} bytes.",
            429: f"Rate limit exceeded ({exc.description}). Wait before retrying or upgrade your plan.",
        }.get(status, exc.description or exc.name)
        if status == 400 and exc.description and "CSRF" in str(exc.description):
            status, detail = 403, "CSRF token missing or invalid."
        if not wants_json():
            if status == 429 and request.endpoint == "accounts.login":
                return render_template("accounts/login.html", email=request.form.get("email", ""),
                                       error="Too many failed sign-in attempts. Wait a few minutes and try again."), 429
            return _page_error(status, detail)
        response = envelope(status, detail)
        if status == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(OperationalError)
    def _database_unavailable(exc: OperationalError):
        """The database cannot be reached (or, on SQLite, stayed locked): a 503 that says retry, not a 500 with a
        stack trace per request. Nothing was acknowledged, so a retry is safe."""
        log.warning("database unavailable on %s %s: %s", request.method, request.path, type(exc.orig).__name__)
        if not wants_json():
            return _page_error(503, "The database is unavailable right now. Try again in a moment.")
        g.retry_after = "5"  # the response hook sets the header last (Flask-Limiter writes its own)
        return envelope(503, "The database is unavailable; retry the request shortly.")

    @app.errorhandler(Exception)
    def _unhandled(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        if not wants_json():
            return _page_error(500, "Something went wrong on our side. It has been logged.")
        return envelope(500, "An unexpected error occurred. Please retry the request.")


def _page_error(status: int, detail: str):
    if status == 401:
        return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
    return render_template("platform/error.html", status=status, detail=detail), status
