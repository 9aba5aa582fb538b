"""Customer webhooks and the delivery log over JSON (``/api/v1/``; session or API key).

Who may do what, and why:
* ``/api/v1/webhooks`` (scope ``webhooks:read|write``): owners and admins only, reading included — an
  endpoint URL often carries the receiving service's own token. The signing secret is returned once, by
  create and rotate-secret; lists and reads show its first characters only. Every change is audited
  (webhook.created / updated / deleted / tested / secret_rotated).
* ``/api/v1/deliveries`` (scope ``deliveries:read``): members and above (the people who act on
  notifications need to see whether they went out); viewers do not. For members, webhook targets are cut
  to scheme://host (the full URL is for owners and admins, as above).
Ids of another organisation are 404.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from zentro.accounts.models import Role
from zentro.extensions import db
from zentro.notify import webhooks
from zentro.notify.models import CHANNELS, DELIVERY_STATUSES, OUTBOX_STATUSES, Delivery, OutboxMessage, WebhookEndpoint
from zentro.platform.auth import current_principal
from zentro.platform.errors import not_found
from zentro.platform.pagination import PageQuery, paginate
from zentro.platform.routes import api_route, no_null_defaults
from zentro.platform.types import iso

bp = Blueprint("notify_api", __name__, url_prefix="/api/v1")

HOOKS = {"resource": "webhooks", "tags": ("Webhooks",)}
LOG = {"resource": "deliveries", "tags": ("Delivery log",)}
# At least one character that neither pydantic's strip_whitespace nor Python's str.strip removes.
NOT_BLANK = r"[^\t\n\v\f\r \x1c-\x1f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"

# The catalogue at import time (the digest registry, or the thirteen digests until it exists).
EventName = Literal[tuple(webhooks.subscription_choices())]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=webhooks.MAX_URL,
                                       pattern=NOT_BLANK)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Events = Annotated[list[EventName], Field(min_length=1, max_length=webhooks.MAX_EVENTS)]


# --- request models ----------------------------------------------------------------------------------

class WebhookCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: Url = Field(description="https:// (or http://) URL with a host and no credentials. Hosts resolving to "
                                 "private, loopback or link-local addresses are refused unless the server sets "
                                 "ZENTRO_WEBHOOK_ALLOW_PRIVATE.")
    description: Description = Field("", description="What receives these events.")
    events: Events = Field(description='Event types to receive: a type from the catalogue, a family wildcard '
                                       '("digest.*") or "*" for every event.')
    enabled: bool = Field(True, description="Disabled endpoints receive nothing (the send-test call still works).")


class WebhookPatchIn(BaseModel):
    """Only the fields sent change; any refusal changes nothing."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=no_null_defaults)
    url: Url = Field(None, description="A new URL (checked like on create).")
    description: Description = Field(None, description="A new description.")
    events: Events = Field(None, description="The new subscription list (replaces the old one).")
    enabled: bool = Field(None, description="Switch deliveries on or off.")


class DeliveryLogQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")
    source: Annotated[str, StringConstraints(max_length=80)] | None = Field(
        None, description="Only deliveries of this source: a digest slug or an event type (incident.opened ...).")
    channel: Literal[CHANNELS] | None = Field(None, description="Only this channel.")
    status: Literal[DELIVERY_STATUSES] | None = Field(None, description="Only this status.")


# --- response models ---------------------------------------------------------------------------------

class OutboxMessageOut(BaseModel):
    message_id: str = Field(description="The webhook-id header: the same on every attempt.")
    endpoint_id: int
    event_type: str
    status: Literal[OUTBOX_STATUSES]
    attempts: int = Field(description="Attempts made (at most 4: the first and 3 retries after 5 s, 15 s, 45 s).")
    next_attempt_at: dt.datetime | None = Field(description="When the next attempt is due (pending messages).")
    last_status_code: int | None = Field(description="HTTP status of the last attempt (none: no answer).")
    last_error: str
    created_at: dt.datetime
    delivered_at: dt.datetime | None


class WebhookOut(BaseModel):
    id: int
    url: str
    description: str
    events: list[str]
    enabled: bool
    secret_prefix: str = Field(description="The first characters of the signing secret, to tell secrets apart.")
    created_at: dt.datetime
    updated_at: dt.datetime
    last_delivery: OutboxMessageOut | None = Field(description="The newest message sent (or queued) to this endpoint.")


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="The signing secret (whsec_...). Shown only in this response: store it now.")


class WebhookPage(BaseModel):
    data: list[WebhookOut]
    next_cursor: str | None


class WebhookTestOut(BaseModel):
    ok: bool = Field(description="True when the endpoint answered 2xx.")
    status_code: int | None = Field(description="The endpoint's HTTP status (none: no answer).")
    detail: str = Field(description="What happened: HTTP status, a timeout, a refused address ...")
    delivery_id: int | None
    message_id: str | None


class DeliveryLogOut(BaseModel):
    id: int
    source: str = Field(description="Digest slug or event type.")
    run_id: int | None = Field(description="The digest run this delivery belongs to.")
    channel: Literal[CHANNELS]
    target: str = Field(description="E-mail recipients, the Slack channel, or the webhook URL (scheme://host for "
                                    "members).")
    recipients: list[str]
    subject: str
    status: Literal[DELIVERY_STATUSES]
    attempts: int
    error: str = Field(description="Why it was not sent, failed, or is being retried.")
    created_at: dt.datetime
    finished_at: dt.datetime | None


class DeliveryLogDetailOut(DeliveryLogOut):
    webhook: OutboxMessageOut | None = Field(description="The outbox message behind a webhook delivery.")


class DeliveryLogPage(BaseModel):
    data: list[DeliveryLogOut]
    next_cursor: str | None


# --- helpers -----------------------------------------------------------------------------------------

def _sees_urls() -> bool:
    p = current_principal()
    return p is not None and p.role is not None and p.role.at_least(Role.admin)


def delivery_json(d: Delivery, *, full_urls: bool) -> dict:
    target = d.target if d.channel != "webhook" or full_urls else webhooks.url_origin(d.target)
    return {"id": d.id, "source": d.source, "run_id": d.run_id, "channel": d.channel, "target": target,
            "recipients": list(d.recipients or []), "subject": d.subject, "status": d.status, "attempts": d.attempts,
            "error": d.error, "created_at": iso(d.created_at), "finished_at": iso(d.finished_at)}


def deliveries_query(org_id: int, *, source: str | None = None, channel: str | None = None,
                     status: str | None = None):
    q = select(Delivery).where(Delivery.org_id == org_id)
    if source:
        q = q.where(Delivery.source == source)
    if channel:
        q = q.where(Delivery.channel == channel)
    if status:
        q = q.where(Delivery.status == status)
    return q


def get_delivery(org_id: int, delivery_id: int) -> Delivery:
    row = db.session.scalar(select(Delivery).where(Delivery.org_id == org_id, Delivery.id == delivery_id))
    if row is None:
        raise not_found("Delivery")
    return row


def delivery_message(org_id: int, delivery_id: int) -> OutboxMessage | None:
    return db.session.scalar(select(OutboxMessage).where(OutboxMessage.org_id == org_id,
                                                         OutboxMessage.delivery_id == delivery_id))


def _one(org_id: int, ep: WebhookEndpoint) -> dict:
    return webhooks.endpoint_json(ep, webhooks.last_messages(org_id, [ep.id]).get(ep.id))


# --- webhooks ----------------------------------------------------------------------------------------

@api_route(bp, "/webhooks", methods=("GET",), query=PageQuery, response=WebhookPage, min_role="admin",
           summary="List the organisation's webhook endpoints, newest first (owner/admin; never the secret).", **HOOKS)
def list_webhooks(query: PageQuery):
    p = current_principal()
    rows, cursor = paginate(webhooks.endpoints_query(p.org.id), WebhookEndpoint.id, query)
    last = webhooks.last_messages(p.org.id, [r.id for r in rows])
    return jsonify(data=[webhooks.endpoint_json(r, last.get(r.id)) for r in rows], next_cursor=cursor)


@api_route(bp, "/webhooks", methods=("POST",), body=WebhookCreateIn, response=WebhookCreatedOut, status=201,
           min_role="admin",
           summary="Create a webhook endpoint (owner/admin). The answer carries the signing secret, once. Messages are "
                   "signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature: v1,<base64 "
                   "HMAC-SHA256 of id.timestamp.body>).", **HOOKS)
def create_webhook(body: WebhookCreateIn):
    p = current_principal()
    ep, secret = webhooks.create_endpoint(p.org.id, url=body.url, events=list(body.events), actor=p.actor,
                                          description=body.description, enabled=body.enabled,
                                          user_id=p.user.id if p.user else None)
    return jsonify(webhooks.endpoint_json(ep) | {"secret": secret}), 201


@api_route(bp, "/webhooks/<int:webhook_id>", methods=("GET",), response=WebhookOut, min_role="admin",
           tenant_model=WebhookEndpoint, summary="One webhook endpoint with its last delivery (owner/admin).", **HOOKS)
def get_webhook(webhook_id: int):
    p = current_principal()
    return jsonify(_one(p.org.id, webhooks.get_endpoint(p.org.id, webhook_id)))


@api_route(bp, "/webhooks/<int:webhook_id>", methods=("PATCH",), body=WebhookPatchIn, response=WebhookOut,
           min_role="admin", tenant_model=WebhookEndpoint,
           summary="Change a webhook endpoint's URL, description, events or enabled flag (owner/admin).", **HOOKS)
def patch_webhook(webhook_id: int, body: WebhookPatchIn):
    p = current_principal()
    changes = body.model_dump(exclude_unset=True)
    ep = webhooks.update_endpoint(p.org.id, webhook_id, changes, actor=p.actor)
    return jsonify(_one(p.org.id, ep))


@api_route(bp, "/webhooks/<int:webhook_id>", methods=("DELETE",), status=204, min_role="admin",
           tenant_model=WebhookEndpoint,
           summary="Delete a webhook endpoint (owner/admin); its undelivered messages are dropped and logged as "
                   "failed.", **HOOKS)
def delete_webhook(webhook_id: int):
    p = current_principal()
    webhooks.delete_endpoint(p.org.id, webhook_id, actor=p.actor)
    return "", 204


@api_route(bp, "/webhooks/<int:webhook_id>/test", methods=("POST",), response=WebhookTestOut, min_role="admin",
           tenant_model=WebhookEndpoint,
           summary="Send a signed webhook.test message to the endpoint now: one attempt, no retries, recorded in the "
                   "delivery log (owner/admin). 200 with ok false when the endpoint did not answer 2xx.", **HOOKS)
def test_webhook(webhook_id: int):
    p = current_principal()
    outcome = webhooks.send_test(p.org.id, webhook_id, actor=p.actor)
    return jsonify(ok=outcome["ok"], status_code=outcome["status_code"], detail=outcome["detail"],
                   delivery_id=outcome["delivery_id"], message_id=outcome["message_id"])


@api_route(bp, "/webhooks/<int:webhook_id>/rotate-secret", methods=("POST",), response=WebhookCreatedOut,
           min_role="admin", tenant_model=WebhookEndpoint,
           summary="Replace the endpoint's signing secret (owner/admin); the new one is in this answer, once, and the "
                   "old one stops signing at once.", **HOOKS)
def rotate_webhook_secret(webhook_id: int):
    p = current_principal()
    ep, secret = webhooks.rotate_secret(p.org.id, webhook_id, actor=p.actor)
    return jsonify(_one(p.org.id, ep) | {"secret": secret})


# --- delivery log ------------------------------------------------------------------------------------

@api_route(bp, "/deliveries", methods=("GET",), query=DeliveryLogQuery, response=DeliveryLogPage, min_role="member",
           summary="The delivery log, newest first: every e-mail, Slack message and webhook with its status, attempts "
                   "and error (member and above).", **LOG)
def list_deliveries(query: DeliveryLogQuery):
    p = current_principal()
    rows, cursor = paginate(deliveries_query(p.org.id, source=query.source, channel=query.channel,
                                             status=query.status), Delivery.id, query)
    full = _sees_urls()
    return jsonify(data=[delivery_json(d, full_urls=full) for d in rows], next_cursor=cursor)


@api_route(bp, "/deliveries/<int:delivery_id>", methods=("GET",), response=DeliveryLogDetailOut, min_role="member",
           tenant_model=Delivery,
           summary="One delivery; for a webhook, its outbox message (webhook-id, attempts, next attempt, last status "
                   "and error).", **LOG)
def get_delivery_view(delivery_id: int):
    p = current_principal()
    d = get_delivery(p.org.id, delivery_id)
    msg = delivery_message(p.org.id, d.id) if d.channel == "webhook" else None
    return jsonify(delivery_json(d, full_urls=_sees_urls()) | {"webhook": webhooks.message_json(msg) if msg else None})
