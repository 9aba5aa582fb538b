"""Connectors API: the status of the reasoning and robot backends, and the proxies to them.

``/api/reasoning/<path>`` and ``/api/robot/<path>`` forward every method to the configured base URL
with ``X-Zentro-Org`` / ``X-Zentro-User`` / ``X-Request-ID``, streaming the body both ways, without
our credentials, cookies or hop-by-hop headers. Session or API key; members and above for writes."""
from __future__ import annotations

from typing import Literal

from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import BaseModel, Field

from zentro.connectors import service
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import api_route

bp = Blueprint("connectors_api", __name__)
PROXY_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class BackendStatusOut(BaseModel):
    name: Literal["reasoning", "robot"]
    configured: bool
    host: str | None = Field(description="Host (and port) of the configured URL; never its path or credentials.")
    reachable: bool = Field(description="An HTTP answer came back.")
    ok: bool = Field(description="The answer was 2xx.")
    status: int | None
    latency_ms: float | None
    path: str | None = Field(description="What answered: /health, or / when /health is 404.")
    error: str | None


class CopilotStatusOut(BaseModel):
    mode: Literal["openai", "reasoning", "guided"] = Field(description="The first mode the copilot tries.")
    openai_configured: bool
    reasoning_configured: bool


class ConnectorsStatusOut(BaseModel):
    backends: list[BackendStatusOut]
    copilot: CopilotStatusOut
    slack_configured: bool


@api_route(bp, "/api/connectors/status", auth=("session",), response=ConnectorsStatusOut, tags=("Connectors",),
           summary="Probe the reasoning and robot backends (concurrently, ≤ 3 s) and show what is configured.")
def connectors_status():
    from zentro.copilot.llm import active_mode

    cfg = current_app.config
    return jsonify({
        "backends": service.probe_all(cfg),
        "copilot": {"mode": active_mode(cfg), "openai_configured": bool(cfg.get("OPENAI_API_KEY")),
                    "reasoning_configured": bool(cfg.get("ZENTRO_REASONING_API_URL"))},
        "slack_configured": bool(cfg.get("ZENTRO_SLACK_BOT_TOKEN")),
    })


def _request_body() -> tuple:
    """(read, declared length) of the body to stream up. A browser session's form body was already parsed
    by the CSRF check, so a urlencoded one is re-encoded and a multipart one refused."""
    if request.method in ("GET", "DELETE") and not request.content_length and "chunked" not in (
            request.headers.get("Transfer-Encoding", "").lower()):
        return None, None
    if request.mimetype in FORM_TYPES and "form" in request.__dict__:
        if request.mimetype != "application/x-www-form-urlencoded":
            raise ApiError(415, "Multipart bodies can be proxied with an API key, not from a browser session.")
        from io import BytesIO
        from urllib.parse import urlencode

        raw = urlencode(list(request.form.items(multi=True))).encode()
        return BytesIO(raw).read, len(raw)
    return request.stream.read, request.content_length


def _proxy(backend: str, rest: str):
    p = current_principal()
    cfg = current_app.config
    read, length = _request_body()
    upstream = service.forward(service.ProxyCall(
        backend=backend, base_url=cfg.get(service.BACKENDS[backend]), method=request.method, rest=rest,
        query=request.query_string, headers=list(request.headers.items()), read=read, content_length=length,
        org_id=p.org.id, org_slug=p.org.slug, user_email=p.user.email, actor=p.actor,
        request_id=g.get("request_id", ""), allow_private=bool(cfg["ZENTRO_CONNECTORS_ALLOW_PRIVATE"]),
        timeout=float(cfg["ZENTRO_CONNECTOR_TIMEOUT_SECONDS"]), max_bytes=int(cfg["ZENTRO_PROXY_MAX_BODY_BYTES"])))
    return Response(upstream.body, status=upstream.status, headers=upstream.headers, direct_passthrough=True)


def _register_proxy(backend: str, label: str) -> None:
    common = dict(methods=PROXY_METHODS, idempotent=False, resource="connectors", tags=("Connectors",),
                  summary=f"Proxy to the {label} backend ({service.BACKENDS[backend]}); 503 when it is not configured.")

    def proxy_root():
        return _proxy(backend, "")

    def proxy_path(rest: str):
        return _proxy(backend, rest)

    api_route(bp, f"/api/{backend}", endpoint=f"{backend}_proxy_root", **common)(proxy_root)
    api_route(bp, f"/api/{backend}/<path:rest>", endpoint=f"{backend}_proxy", extra={"path_samples": {"rest": "v1/ping"}},
              **common)(proxy_path)


_register_proxy("reasoning", "reasoning")
_register_proxy("robot", "automation robot")
