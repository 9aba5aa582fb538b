"""``GET /metrics``: the Prometheus text exposition, for a scraper holding ``ZENTRO_METRICS_TOKEN``.

Not under /api/ (no rate limit, not in the OpenAPI document). ``Authorization: Bearer <token>`` is compared in
constant time with the setting. Unset setting → 404 (the endpoint is off, never open); missing or wrong token →
401 with ``WWW-Authenticate: Bearer``. Errors are the small JSON envelope, not an HTML page or a login redirect.
See docs/observability.md for the metrics."""
from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST

from zentro.platform import observability
from zentro.platform.errors import envelope
from zentro.platform.routes import public_route

bp = Blueprint("metrics", __name__)


@public_route(bp, "/metrics", methods=("GET",), response="text", tags=("Operations",),
              summary="Prometheus metrics (text exposition). Authorization: Bearer <ZENTRO_METRICS_TOKEN>; "
                      "wrong or missing → 401; setting unset → 404.")
def metrics():
    configured = current_app.config.get("ZENTRO_METRICS_TOKEN") or ""
    if not configured:
        return envelope(404, "The metrics endpoint is disabled: ZENTRO_METRICS_TOKEN is not set.")
    header = request.headers.get("Authorization", "")
    sent = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not sent or not hmac.compare_digest(sent.encode(), configured.encode()):
        response = envelope(401, "Send Authorization: Bearer <ZENTRO_METRICS_TOKEN>.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return Response(observability.exposition(), status=200, headers={"Content-Type": CONTENT_TYPE_LATEST,
                                                                      "Cache-Control": "no-store"})
