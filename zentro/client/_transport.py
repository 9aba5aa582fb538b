"""HTTP plumbing for the client: auth headers, Idempotency-Key, retries, rate-limit headers, error mapping.

Retry rules (``max_retries`` extra attempts at most):
* 429 is always retried: the rate limiter refused the call before anything ran.
* 502/503/504 and connection errors are retried only when repeating the request is safe: GET/HEAD/OPTIONS,
  or an unsafe method carrying an Idempotency-Key (the server replays the stored answer of a request that did
  go through). The client gives every POST/PATCH/DELETE a uuid4 key unless the caller passes one, and sends the
  same key on every attempt. Endpoints that ignore the header (alert ingest) are called with ``idempotent=False``.
* The wait is the server's Retry-After (seconds or HTTP date) when it sends one, else exponential backoff with
  jitter: 0.5·2ⁿ s capped at 8 s, times a random factor in [0.5, 1]. ``sleep`` is injectable."""
from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import httpx

from zentro.client import errors

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
BACKOFF_BASE, BACKOFF_CAP = 0.5, 8.0
VERSION = "0.1.0"


@dataclass(frozen=True)
class RateLimit:
    """The X-RateLimit-* headers of the last API answer: calls allowed per window, left, and the reset time (Unix)."""

    limit: int | None
    remaining: int | None
    reset: int | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> "RateLimit | None":
        values = [headers.get(f"X-RateLimit-{k}") for k in ("Limit", "Remaining", "Reset")]
        if all(v is None for v in values):
            return None

        def num(v: str | None) -> int | None:
            try:
                return int(float(v)) if v is not None else None
            except ValueError:
                return None

        return cls(*(num(v) for v in values))


def backoff(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based) when the server gave no Retry-After."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt)
    return ceiling * (0.5 + rand() / 2)


class Transport:
    def __init__(self, base_url: str, api_key: str | None, *, ingest_token: str | None, timeout: float,
                 max_retries: int, transport: httpx.BaseTransport | None, user_agent: str | None,
                 sleep: Callable[[float], None] | None):
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self.api_key, self.ingest_token, self.max_retries = api_key, ingest_token, max_retries
        self.sleep = sleep or time.sleep
        self.last_rate_limit: RateLimit | None = None
        self.last_response: httpx.Response | None = None
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
                                 follow_redirects=False,
                                 headers={"User-Agent": user_agent or f"zentro-python/{VERSION}",
                                          "Accept": "application/json"})

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
                content: bytes | None = None, headers: Mapping[str, str] | None = None, auth: str = "api_key",
                idempotency_key: str | None = None, idempotent: bool = True) -> httpx.Response:
        """Send with retries; return the 2xx response or raise the typed error."""
        method = method.upper()
        sent = dict(headers or {})
        token = self.ingest_token if auth == "ingest" else self.api_key
        if token is None:
            missing = errors.AuthenticationError(
                f"No {'ingest token' if auth == 'ingest' else 'API key'} is configured on this client.")
            missing.status = None  # refused before sending: no HTTP status
            raise missing
        sent["Authorization"] = f"Bearer {token}"
        if method not in SAFE_METHODS and idempotent:
            sent["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        elif idempotency_key:
            sent["Idempotency-Key"] = idempotency_key
        replayable = method in SAFE_METHODS or "Idempotency-Key" in sent
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            try:
                response = self.http.request(method, path, params=clean, json=json, content=content, headers=sent)
            except httpx.TransportError as exc:
                if replayable and attempt < self.max_retries:
                    self.sleep(backoff(attempt))
                    attempt += 1
                    continue
                if isinstance(exc, httpx.TimeoutException):
                    raise errors.TimeoutError(f"{method} {path} timed out: {exc}") from exc
                raise errors.ConnectionError(f"{method} {path} failed: {exc}") from exc
            self.last_response = response
            self.last_rate_limit = RateLimit.from_headers(response.headers) or self.last_rate_limit
            if response.is_success:
                return response
            retry = response.status_code in RETRY_STATUSES and (response.status_code == 429 or replayable)
            if not retry or attempt >= self.max_retries:
                raise errors.error_from_response(response)
            wait = errors.parse_retry_after(response.headers.get("Retry-After"))
            response.close()
            self.sleep(backoff(attempt) if wait is None else wait)
            attempt += 1

    def json(self, method: str, path: str, **kw) -> Any:
        response = self.request(method, path, **kw)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def download(self, path: str, **kw) -> Any:
        """A GET whose body is parsed by its media type."""
        return self.parse(self.request("GET", path, **kw))

    @staticmethod
    def parse(response: httpx.Response) -> Any:
        """JSON → Python value, text/* → str, anything else → bytes; no body → None."""
        if response.status_code == 204 or not response.content:
            return None
        mime = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if mime == "application/json" or mime.endswith("+json"):
            return response.json()
        if mime.startswith("text/") or mime in ("application/x-pem-file",):
            return response.text
        return response.content
