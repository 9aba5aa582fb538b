"""Typed errors raised by the Zentro client.

Every non-2xx answer becomes a ``ZentroError`` subclass chosen from the envelope's ``error_code``
(``{"error": ..., "detail": ..., "error_code": ...}``), falling back on the HTTP status when the code is
one the client does not know (a route-specific code such as ``DATABASE_NOT_READY``) or the body is not the
envelope (a proxy's HTML 502). A request that never got an HTTP answer raises ``ConnectionError``."""
from __future__ import annotations

import datetime as dt
import email.utils
import time
from typing import Any

import httpx

__all__ = [
    "ZentroError", "ValidationError", "AuthenticationError", "PaymentRequiredError", "PermissionDeniedError",
    "NotFoundError", "ConflictError", "GoneError", "PayloadTooLargeError", "UnsupportedMediaTypeError",
    "IdempotencyMismatchError", "RateLimitError", "ServerError", "ConnectionError", "TimeoutError",
    "error_from_response", "parse_retry_after",
]


class ZentroError(Exception):
    """An error answer from the API (or, for ``ConnectionError``, no answer at all)."""

    status: int | None = None

    def __init__(self, detail: str, *, status: int | None = None, error: str | None = None,
                 error_code: str | None = None, errors: list[dict[str, Any]] | None = None,
                 request_id: str | None = None, response: httpx.Response | None = None):
        super().__init__(detail)
        self.detail = detail
        self.status = status if status is not None else type(self).status
        self.error = error
        self.error_code = error_code
        self.errors = errors or []
        self.request_id = request_id
        self.response = response

    def __str__(self) -> str:
        parts = [f"{self.status} {self.error_code}" if self.status else (self.error_code or "error"), self.detail]
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        return " ".join(p for p in parts if p)


class ValidationError(ZentroError):
    status = 400


class AuthenticationError(ZentroError):
    status = 401


class PaymentRequiredError(ZentroError):
    status = 402


class PermissionDeniedError(ZentroError):
    status = 403


class NotFoundError(ZentroError):
    status = 404


class ConflictError(ZentroError):
    status = 409


class GoneError(ZentroError):
    status = 410


class PayloadTooLargeError(ZentroError):
    status = 413


class UnsupportedMediaTypeError(ZentroError):
    status = 415


class IdempotencyMismatchError(ZentroError):
    status = 422


class RateLimitError(ZentroError):
    """429: ``retry_after`` is the server's Retry-After in seconds (None when it sent none)."""

    status = 429

    def __init__(self, detail: str, *, retry_after: float | None = None, **kw):
        super().__init__(detail, **kw)
        self.retry_after = retry_after


class ServerError(ZentroError):
    """Any 5xx answer."""


class ConnectionError(ZentroError):  # noqa: A001 (deliberately the SDK's own name; import it qualified)
    """The request got no HTTP answer: refused connection, DNS failure, reset, or a timeout."""


class TimeoutError(ConnectionError):  # noqa: A001
    """The request (or a ``wait`` helper) ran out of time."""


BY_CODE: dict[str, type[ZentroError]] = {
    "VALIDATION_ERROR": ValidationError, "UNAUTHORIZED": AuthenticationError, "PAYMENT_REQUIRED": PaymentRequiredError,
    "FORBIDDEN": PermissionDeniedError, "NOT_FOUND": NotFoundError, "CONFLICT": ConflictError, "GONE": GoneError,
    "PAYLOAD_TOO_LARGE": PayloadTooLargeError, "UNSUPPORTED_MEDIA_TYPE": UnsupportedMediaTypeError,
    "IDEMPOTENCY_MISMATCH": IdempotencyMismatchError, "RATE_LIMIT_EXCEEDED": RateLimitError,
    "INTERNAL_ERROR": ServerError, "SERVICE_UNAVAILABLE": ServerError,
}
BY_STATUS: dict[int, type[ZentroError]] = {cls.status: cls for cls in set(BY_CODE.values()) if cls.status}


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After as seconds to wait: delta-seconds or an HTTP date (RFC 9110); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_from_response(response: httpx.Response) -> ZentroError:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    code = body.get("error_code") if isinstance(body.get("error_code"), str) else None
    detail = body.get("detail") if isinstance(body.get("detail"), str) else (
        response.reason_phrase or f"HTTP {status}")
    cls = BY_CODE.get(code or "") or BY_STATUS.get(status) or (ServerError if status >= 500 else ZentroError)
    kw: dict[str, Any] = {"status": status, "error": body.get("error"), "error_code": code, "errors": body.get("errors"),
                          "request_id": response.headers.get("X-Request-ID"), "response": response}
    if cls is RateLimitError:
        kw["retry_after"] = parse_retry_after(response.headers.get("Retry-After"))
    return cls(detail, **kw)
