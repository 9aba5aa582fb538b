"""Zentro's Python client: typed, paginating, retrying, idempotent.

    from zentro.client import Zentro, NotFoundError

    with Zentro("https://zentro.example.com", api_key="zentro_pk_…") as z:
        inc = z.incidents.create("Checkout 502s", severity="high")
        z.incidents.add_note(inc["id"], "Rolling back 4.2.1")
        z.incidents.acknowledge(inc["id"])
        for event in z.incidents.timeline(inc["id"]):   # follows next_cursor to the end
            print(event["kind"], event["body"])

Auth: ``Authorization: Bearer <api_key>`` (a user API key ``zentro_pk_…`` or an assessor token ``zentro_ca_…``);
alert and vulnerability ingest use ``ingest_token`` (``zentro_it_…``). Errors are typed from the API's envelope
(``zentro.client.errors``). Retries and Idempotency-Key: see ``zentro.client._transport``. ``transport`` takes any
httpx transport (``httpx.WSGITransport(app=app)`` runs against a Flask app in-process). This package depends only
on httpx and the standard library: it imports nothing from the server."""
from __future__ import annotations

import time
from typing import Any, Callable

import httpx

from zentro.client._transport import VERSION, RateLimit, Transport
from zentro.client.errors import (AuthenticationError, ConflictError, ConnectionError, GoneError,  # noqa: A004
                                  IdempotencyMismatchError, NotFoundError, PayloadTooLargeError, PaymentRequiredError,
                                  PermissionDeniedError, RateLimitError, ServerError, TimeoutError,
                                  UnsupportedMediaTypeError, ValidationError, ZentroError)
from zentro.client.pagination import Page
from zentro.client.resources import (UNSET, Alerts, Billing, Compliance, Deliveries, Findings, Gates, Incidents,
                                     Integrations, Rca, Reports, Vulnerabilities, Webhooks)

__version__ = VERSION
__all__ = [
    "Zentro", "Page", "RateLimit", "UNSET", "ZentroError", "ValidationError", "AuthenticationError",
    "PaymentRequiredError", "PermissionDeniedError", "NotFoundError", "ConflictError", "GoneError",
    "PayloadTooLargeError", "UnsupportedMediaTypeError", "IdempotencyMismatchError", "RateLimitError", "ServerError",
    "ConnectionError", "TimeoutError",
]


class Zentro:
    """A client for one Zentro server and one set of credentials. Use it as a context manager, or ``close()``."""

    def __init__(self, base_url: str, api_key: str | None = None, *, ingest_token: str | None = None,
                 timeout: float = 10.0, max_retries: int = 3, transport: httpx.BaseTransport | None = None,
                 user_agent: str | None = None, sleep: Callable[[float], None] | None = None,
                 clock: Callable[[], float] | None = None):
        self._transport = Transport(base_url, api_key, ingest_token=ingest_token, timeout=timeout,
                                    max_retries=max_retries, transport=transport, user_agent=user_agent, sleep=sleep)
        self.clock = clock or time.monotonic
        self.incidents = Incidents(self)
        self.alerts = Alerts(self)
        self.vulnerabilities = Vulnerabilities(self)
        self.findings = Findings(self)
        self.rca = Rca(self)
        self.webhooks = Webhooks(self)
        self.deliveries = Deliveries(self)
        self.compliance = Compliance(self)
        self.integrations = Integrations(self)
        self.reports = Reports(self)
        self.billing = Billing(self)
        self.gates = Gates(self)

    @property
    def last_rate_limit(self) -> RateLimit | None:
        """X-RateLimit-Limit / -Remaining / -Reset of the most recent answer that carried them."""
        return self._transport.last_rate_limit

    @property
    def last_response(self) -> httpx.Response | None:
        """The most recent HTTP answer (headers such as X-Request-ID or Idempotent-Replayed)."""
        return self._transport.last_response

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None,
                idempotency_key: str | None = None) -> Any:
        """Call any endpoint without a dedicated method (same auth, retries, Idempotency-Key and errors); the JSON
        answer parsed (None for 204), or str / bytes for other media types."""
        response = self._transport.request(method, path, params=params, json=json, idempotency_key=idempotency_key)
        return self._transport.parse(response)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> "Zentro":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
