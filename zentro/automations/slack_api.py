"""Slack interactivity endpoint (Approve/Reject clicks) and the Slack event export.

``POST /api/integrations/slack/approvals`` is a public route: Slack's signature over the raw body is its
authentication (no session, so no CSRF; no API key). ``GET /api/audit/slack-events/export`` streams the
org's Slack deliveries and clicks as CSV for auditors (session or API key, scope ``audit:read``)."""
from __future__ import annotations

from typing import Literal

from flask import Blueprint, Response, jsonify, request, stream_with_context
from pydantic import BaseModel, ConfigDict, Field

from zentro.automations import slack
from zentro.platform.auth import current_principal
from zentro.platform.routes import api_route, public_route
from zentro.platform.types import utcnow

bp = Blueprint("slack_api", __name__)


class SlackClickOut(BaseModel):
    ok: bool = Field(description="True when the approval is decided (now or earlier).")
    outcome: Literal["decided", "already_decided", "refused", "not_found"]
    text: str = Field(description="What the clicker is told, e.g. 'Approved by a@b.example via slack at …'.")
    approval_id: int | None
    message_updated: bool | None = Field(description="Whether the response_url update reached Slack "
                                                     "(null when the payload carried no response_url).")


@public_route(bp, "/api/integrations/slack/approvals", methods=("POST",), response=SlackClickOut,
              tags=("Slack",),
              summary="Slack block_actions (Approve/Reject buttons), form-encoded payload=<json>. Authenticated by "
                      "X-Slack-Signature / X-Slack-Request-Timestamp (signing secret, 5-minute tolerance): invalid, "
                      "missing or stale → 401; no signing secret configured → 503. Decides once; a replay or second "
                      "click changes nothing and says who decided.")
def slack_approvals():
    result = slack.handle_block_actions(request.get_data(cache=True), request.headers)
    return jsonify(result.json())


class SlackExportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window: Literal["24h", "7d", "30d", "all"] = Field("7d", description="How far back to export.")


@api_route(bp, "/api/audit/slack-events/export", methods=("GET",), query=SlackExportQuery, response="csv",
           resource="audit", tags=("Audit",),
           summary="Stream the active org's Slack events (deliveries and button clicks) as CSV, newest first.")
def slack_events_export(query: SlackExportQuery):
    p = current_principal()
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    return Response(
        stream_with_context(slack.export_csv(p.org.id, query.window)),
        mimetype="text/csv",
        headers={"Content-Disposition":
                 f'attachment; filename="zentro-slack-events-{p.org.slug}-{query.window}-{stamp}.csv"'},
    )
