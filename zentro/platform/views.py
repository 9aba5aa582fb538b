"""Health, the OpenAPI document, its two readers, retired API versions, and the changelog page."""
from __future__ import annotations

import threading
import time

from flask import Blueprint, current_app, jsonify, render_template
from markupsafe import Markup
from pydantic import BaseModel

from zentro.config import ROOT
from zentro.platform.errors import ApiError
from zentro.platform.routes import page_route, public_route
from zentro.platform.schema import schema_state

bp = Blueprint("platform", __name__)
STARTED = time.monotonic()
RETIRED_PREFIXES = ("v0",)


class HealthOut(BaseModel):
    ok: bool
    service: str
    uptime_seconds: float


class DbHealthOut(BaseModel):
    ok: bool
    database: bool
    schema_current: bool
    revision: list[str]
    head: list[str]


@public_route(bp, "/api/health", methods=("GET",), summary="Liveness: service name and uptime.", response=HealthOut)
def health():
    return jsonify(ok=True, service="zentro", uptime_seconds=round(time.monotonic() - STARTED, 3))


@public_route(bp, "/api/health/db", methods=("GET",), summary="Readiness: database reachable and schema at migration head.",
              response=DbHealthOut)
def health_db():
    state = schema_state()
    if not (state["database"] and state["schema_current"]):
        detail = ("Database unreachable" if not state["database"]
                  else f"Schema at {state['revision'] or 'nothing'}, migrations head is {state['head']}; run `zentro db upgrade`.")
        raise ApiError(503, detail, error_code="DATABASE_NOT_READY")
    return jsonify(ok=True, **{k: state[k] for k in ("database", "schema_current", "revision", "head")})


@public_route(bp, "/openapi.json", summary="This API's OpenAPI 3.1 document.")
def openapi_json():
    from zentro.platform.openapi import build_spec

    spec = current_app.extensions.get("zentro_openapi")
    if spec is None:
        spec = current_app.extensions["zentro_openapi"] = build_spec()
    return jsonify(spec)


@public_route(bp, "/docs", summary="Swagger UI over /openapi.json.")
def docs():
    return render_template("platform/swagger.html")


@public_route(bp, "/redoc", summary="ReDoc over /openapi.json.")
def redoc():
    return render_template("platform/redoc.html")


@public_route(bp, "/api/<any(v0):version>/", methods=("GET", "POST", "PUT", "PATCH", "DELETE"), endpoint="retired_root",
              summary="Retired API versions answer 410.")
@public_route(bp, "/api/<any(v0):version>/<path:rest>", methods=("GET", "POST", "PUT", "PATCH", "DELETE"),
              summary="Retired API versions answer 410.")
def retired(version: str, rest: str = ""):
    raise ApiError(410, f"API version {version} is retired. Use /api/v1/.")


CHANGELOG_PATH = ROOT / "CHANGELOG.md"
_changelog_cache: dict = {}  # path -> (mtime_ns, html)
_changelog_lock = threading.Lock()


def render_changelog(path=None) -> Markup:
    """CHANGELOG.md as HTML, rendered by markdown-it-py with raw HTML disabled (markup in the file is shown as
    text, links with unsafe schemes are not linked), cached per process until the file's mtime changes."""
    from markdown_it import MarkdownIt

    path = path or CHANGELOG_PATH
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        return Markup("<p>No CHANGELOG.md in this deployment.</p>")
    cached = _changelog_cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    with _changelog_lock:
        html = Markup(MarkdownIt("commonmark", {"html": False}).render(path.read_text(encoding="utf-8")))
        _changelog_cache[path] = (mtime, html)
    return html


@page_route(bp, "/changelog", summary="What changed in each release, rendered from CHANGELOG.md.")
def changelog():
    return render_template("platform/changelog.html", changelog=render_changelog())
