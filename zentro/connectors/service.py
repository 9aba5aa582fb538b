"""Connectors: the reasoning and robot backends. Status probes (both at once, short timeout) and the
streaming proxy that forwards a caller's request with the org and user attached.

No Flask globals here: callers pass the configured base URL, limits and who is calling. Every outgoing
connection goes through ``zentro.platform.outbound.guarded_client`` (address policy, timeouts, no
redirects)."""
from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator
from urllib.parse import quote, urlsplit

import httpx
from werkzeug.exceptions import RequestEntityTooLarge

from zentro.audit.service import Actor, record
from zentro.extensions import db
from zentro.platform.errors import ApiError
from zentro.platform.outbound import MAX_DETAIL, AddressRefused, check_base_url, guarded_client

log = logging.getLogger("zentro.connectors")

BACKENDS = {"reasoning": "ZENTRO_REASONING_API_URL", "robot": "ZENTRO_ROBOT_API_URL"}
PROBE_TIMEOUT_SECONDS = 3.0
CHUNK = 64 * 1024
# Change management: a write through a connector acts on production systems (the robot runs commands).
PROXY_TAGS = ("SOC2:CC8.1", "ISO27001:A.8.32")
HOP_BY_HOP = frozenset({"connection", "keep-alive", "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
# What never leaves for the backend: our own credentials, cookies and routing headers, and headers we set.
STRIP_UP = HOP_BY_HOP | {"host", "cookie", "set-cookie", "authorization", "x-api-key", "x-csrf-token", "x-csrftoken",
                         "content-length", "x-zentro-org", "x-zentro-user", "x-request-id"}
# What never comes back to the caller: cookies of the backend, framing our server redoes itself.
STRIP_DOWN = HOP_BY_HOP | {"set-cookie", "set-cookie2", "content-length", "server", "date"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def host_of(base_url: str) -> str:
    """Host and port only: never the path, query or credentials a configured URL may carry."""
    try:
        parts = urlsplit(base_url)
        return f"{parts.hostname}:{parts.port}" if parts.port else (parts.hostname or "")
    except ValueError:
        return ""


# --- probes ----------------------------------------------------------------------------------------

def probe(name: str, base_url: str | None, *, allow_private: bool, timeout: float = PROBE_TIMEOUT_SECONDS,
          clock: Callable[[], float] = time.perf_counter) -> dict:
    """GET ``{base}/health`` (the base URL itself when that path is 404): reachable means any HTTP answer,
    ok a 2xx. Never raises; ``error`` says what went wrong."""
    out = {"name": name, "configured": bool(base_url), "host": host_of(base_url) if base_url else None,
           "reachable": False, "ok": False, "status": None, "latency_ms": None, "path": None, "error": None}
    if not base_url:
        return out
    refusal = check_base_url(base_url)
    if refusal:
        return out | {"error": refusal}
    base = base_url.rstrip("/")
    started = clock()
    try:
        with guarded_client(allow_private=allow_private, timeout=timeout) as client:
            path, resp = "/health", client.get(base + "/health")
            if resp.status_code == 404:
                path, resp = "/", client.get(base + "/")
    except AddressRefused as exc:
        return out | {"error": str(exc)}
    except httpx.TimeoutException:
        return out | {"latency_ms": round((clock() - started) * 1000, 1), "error": f"timed out after {timeout:g} s"}
    except httpx.HTTPError as exc:
        return out | {"latency_ms": round((clock() - started) * 1000, 1), "error": f"{type(exc).__name__}: {exc}"[:MAX_DETAIL]}
    return out | {"reachable": True, "ok": resp.is_success, "status": resp.status_code, "path": path,
                  "latency_ms": round((clock() - started) * 1000, 1),
                  "error": None if resp.is_success else f"HTTP {resp.status_code}"}


def probe_all(config: dict) -> list[dict]:
    """Both backends probed concurrently, each with a timeout of at most 3 s."""
    timeout = min(PROBE_TIMEOUT_SECONDS, float(config["ZENTRO_CONNECTOR_TIMEOUT_SECONDS"]))
    allow = bool(config["ZENTRO_CONNECTORS_ALLOW_PRIVATE"])
    with ThreadPoolExecutor(max_workers=len(BACKENDS)) as pool:
        futures = [pool.submit(probe, name, config.get(key), allow_private=allow, timeout=timeout)
                   for name, key in BACKENDS.items()]
        return [f.result() for f in futures]


# --- proxy -----------------------------------------------------------------------------------------

def check_path(rest: str) -> str:
    """The backend-relative path, percent-encoded again; 400 when it could leave the base URL."""
    bad = ("\\" in rest or _CONTROL.search(rest) or rest.startswith("/")
           or any(seg in (".", "..") for seg in rest.split("/")) or ":" in rest.split("/", 1)[0])
    if bad:
        raise ApiError(400, "The proxied path must stay under the backend's base URL: no '..' or '.' segments, "
                            "no leading '/', no scheme, no backslashes or control characters.")
    return quote(rest, safe="/:@!$&'()*+,;=-._~")


def _capped(read: Callable[[int], bytes], limit: int) -> Iterator[bytes]:
    total = 0
    while chunk := read(CHUNK):
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(limit)
        yield chunk


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(limit)
        self.limit = limit


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"The request body exceeds the proxy limit of {limit} bytes (ZENTRO_PROXY_MAX_BODY_BYTES).")


def forward_headers(headers: Iterable[tuple[str, str]], *, org_slug: str, user_email: str, request_id: str) -> list:
    """The caller's headers minus hop-by-hop ones (and those its Connection header names), our
    credentials, cookies and CSRF token; plus who is calling."""
    headers = list(headers)
    named = {t.strip().lower() for k, v in headers if k.lower() == "connection" for t in v.split(",")}
    kept = [(k, v) for k, v in headers
            if k.lower() not in STRIP_UP and k.lower() not in named and not k.lower().startswith("proxy-")]
    return kept + [("X-Zentro-Org", org_slug), ("X-Zentro-User", user_email), ("X-Request-ID", request_id)]


def response_headers(headers: httpx.Headers) -> list[tuple[str, str]]:
    named = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    return [(k, v) for k, v in headers.multi_items()
            if k.lower() not in STRIP_DOWN and k.lower() not in named and not k.lower().startswith("proxy-")]


@dataclass
class Upstream:
    status: int
    headers: list[tuple[str, str]]
    body: Iterator[bytes]


@dataclass
class ProxyCall:
    """One request to forward: which backend, where, what, and the limits."""
    backend: str
    base_url: str | None
    method: str
    rest: str
    query: bytes
    headers: list[tuple[str, str]]
    read: Callable[[int], bytes] | None  # the request body stream's read, None for no body
    content_length: int | None
    org_id: int
    org_slug: str
    user_email: str
    actor: Actor
    request_id: str
    allow_private: bool
    timeout: float
    max_bytes: int


def forward(call: ProxyCall) -> Upstream:
    """Send the call upstream and return its answer with a streaming body. Raises the envelope: 503 not
    configured, 400 bad path, 413 body too large, 502 refused/unreachable/answer too large, 504 timeout.
    Write methods are audited (who, backend, method, path, status) once the outcome is known."""
    if not call.base_url:
        raise ApiError(503, f"The {call.backend} backend is not configured ({BACKENDS[call.backend]} is unset).",
                       error_code="CONNECTOR_NOT_CONFIGURED")
    path = check_path(call.rest)
    refusal = check_base_url(call.base_url)
    if refusal:
        raise ApiError(502, f"The {call.backend} backend URL is unusable: {refusal}", error_code="CONNECTOR_REFUSED")
    if call.content_length is not None and call.content_length > call.max_bytes:
        raise too_large(call.max_bytes)
    url = httpx.URL(call.base_url.rstrip("/") + "/" + path, query=call.query or None)
    headers = forward_headers(call.headers, org_slug=call.org_slug, user_email=call.user_email,
                              request_id=call.request_id)
    if call.content_length is not None:
        headers.append(("Content-Length", str(call.content_length)))
    content = _capped(call.read, call.max_bytes) if call.read is not None else None
    client = guarded_client(allow_private=call.allow_private, timeout=call.timeout)
    try:
        resp = client.send(client.build_request(call.method, url, headers=headers, content=content), stream=True)
    except Exception as exc:
        client.close()
        error = _upstream_error(call, exc)
        _audit(call, error.status, error.detail)
        raise error from None
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > call.max_bytes:
        resp.close()
        client.close()
        detail = (f"The {call.backend} backend answered with {declared} bytes, over the proxy limit of "
                  f"{call.max_bytes} bytes (ZENTRO_PROXY_MAX_BODY_BYTES).")
        _audit(call, 502, detail)
        raise ApiError(502, detail, error_code="UPSTREAM_TOO_LARGE")
    _audit(call, resp.status_code, "")
    return Upstream(resp.status_code, response_headers(resp.headers), _relay(call, resp, client))


def _upstream_error(call: ProxyCall, exc: BaseException) -> ApiError:
    if isinstance(exc, BodyTooLarge):
        return too_large(exc.limit)
    if isinstance(exc, RequestEntityTooLarge):
        return too_large(call.max_bytes)
    if isinstance(exc, AddressRefused):
        return ApiError(502, f"The {call.backend} backend address is refused: {exc}", error_code="CONNECTOR_REFUSED")
    if isinstance(exc, httpx.TimeoutException):
        return ApiError(504, f"The {call.backend} backend did not answer within {call.timeout:g} s.",
                        error_code="UPSTREAM_TIMEOUT")
    if isinstance(exc, httpx.HTTPError):
        return ApiError(502, f"The {call.backend} backend is unreachable: {type(exc).__name__}: {exc}"[:MAX_DETAIL],
                        error_code="UPSTREAM_UNREACHABLE")
    raise exc


def _relay(call: ProxyCall, resp: httpx.Response, client: httpx.Client) -> Iterator[bytes]:
    """The answer's bytes as they arrive (still encoded, as the headers describe them); cut at the cap."""
    sent = 0
    try:
        for chunk in resp.iter_raw():
            if sent + len(chunk) > call.max_bytes:
                log.warning("%s %s/%s: answer cut at the proxy limit of %d bytes", call.method, call.backend,
                            call.rest, call.max_bytes)
                return
            sent += len(chunk)
            yield chunk
    except httpx.HTTPError as exc:
        log.warning("%s %s/%s: upstream stream ended early: %s", call.method, call.backend, call.rest, exc)
    finally:
        resp.close()
        client.close()


def _audit(call: ProxyCall, status: int, error: str) -> None:
    if call.method in ("GET", "HEAD", "OPTIONS"):
        return
    record(call.org_id, f"connector.{call.backend}.proxy", call.actor, target_type="connector",
           target_id=call.backend, control_tags=PROXY_TAGS,
           data={"backend": call.backend, "method": call.method, "path": "/" + call.rest, "status": status,
                 **({"error": error} if error else {})}, request_id=call.request_id)
    db.session.commit()
