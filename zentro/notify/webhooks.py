"""Customer webhook endpoints: the event catalogue, URL checks, the endpoint's signing secret, and
create / update / delete / rotate / test. Sending (retries, the outbox) lives in ``outbox``.

Secrets follow Standard Webhooks: ``whsec_`` + base64 of 24 random bytes, shown once (create, rotate) and
encrypted at rest through ``zentro.platform.secretbox`` (a key derived from SECRET_KEY), so a database dump
alone does not let anyone forge Zentro's signatures. Zentro must be able to read the secret back to sign
each message, which is why it is encrypted, not hashed like API keys. SECRET_KEY can be rotated with the
old key in ZENTRO_SECRET_KEY_FALLBACKS; a secret no configured key opens fails its deliveries with a
message that says to rotate the secret.

Who may see endpoints: owners and admins only (URLs often carry a token of the receiving service).
Audit rows carry the URL's host, never its path or query, for the same reason.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import socket
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import func, select

from zentro.audit.service import Actor, record
from zentro.extensions import db
from zentro.notify.models import Delivery, OutboxMessage, WebhookEndpoint
from zentro.platform import secretbox
from zentro.platform.errors import ApiError, not_found
from zentro.platform.outbound import AddressRefused, check_base_url, resolve_checked
from zentro.platform.types import iso, utcnow

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
MAX_URL = 500
MAX_EVENTS = 50

# Events Zentro emits besides the digests (each digest adds "digest.<slug>").
FIXED_EVENTS: dict[str, str] = {
    "incident.opened": "An incident opened (by hand, an alert or a finding).",
    "incident.resolved": "An incident was resolved.",
    "approval.decided": "An approval was approved or rejected (in the app, the API or Slack).",
    "bundle.created": "An evidence bundle or assessor workbook was created.",
    "webhook.test": "A test message sent from the settings page or POST /api/v1/webhooks/{id}/test.",
}
# --- the event catalogue -----------------------------------------------------------------------------

def digest_titles() -> dict[str, str]:
    """slug → title of every digest in the registry."""
    from zentro.compliance.digests import discover  # noqa: PLC0415 - digests import notify models

    return {slug: d.title for slug, d in discover().items()}


def event_catalogue() -> dict[str, str]:
    """Every event type an endpoint may subscribe to, with what it means."""
    out = dict(FIXED_EVENTS)
    for slug, title in digest_titles().items():
        out[f"digest.{slug}"] = f"Digest delivered: {title}."
    return out


def subscription_choices() -> list[str]:
    """What ``events`` may hold: a catalogue type, a family wildcard ("digest.*") or "*" (everything)."""
    types = list(event_catalogue())
    families = sorted({t.split(".", 1)[0] for t in types})
    return ["*"] + [f"{f}.*" for f in families] + types


def matches(patterns: list[str], event_type: str) -> bool:
    """Whether a subscription list covers ``event_type``: exact, "family.*" prefix, or "*"."""
    for p in patterns or ():
        if p == "*" or p == event_type or (p.endswith(".*") and event_type.startswith(p[:-1])):
            return True
    return False


def validate_events(events: list[str] | None) -> list[str]:
    """De-duplicated subscription list (order kept); 400 when empty or naming an unknown event."""
    events = list(dict.fromkeys(e.strip() for e in (events or []) if e and e.strip()))
    if not events:
        raise ApiError(400, "Choose at least one event (or \"*\" for every event).")
    if len(events) > MAX_EVENTS:
        raise ApiError(400, f"At most {MAX_EVENTS} events per endpoint.")
    known = set(subscription_choices())
    unknown = [e for e in events if e not in known]
    if unknown:
        raise ApiError(400, f"Unknown event type(s): {', '.join(unknown)[:300]}. See the catalogue on the webhooks "
                            "page (incident.opened, digest.* , * ...).")
    return events


# --- secrets and signatures --------------------------------------------------------------------------

def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class SecretUnavailable(Exception):
    """The stored secret cannot be decrypted (SECRET_KEY changed without the old key as a fallback)."""


def decrypt_secret(ciphertext: bytes) -> str:
    try:
        return secretbox.decrypt(ciphertext)
    except secretbox.Unreadable:
        raise SecretUnavailable("the endpoint's signing secret cannot be decrypted (SECRET_KEY changed "
                                "without the old key in ZENTRO_SECRET_KEY_FALLBACKS?); rotate the secret") from None


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of
    ``{id}.{timestamp}.{body}`` keyed with the base64-decoded part of the secret after ``whsec_``."""
    key = base64.b64decode(secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret)
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def secret_prefix(secret: str) -> str:
    return secret[: len(SECRET_PREFIX) + 6]


# --- URLs --------------------------------------------------------------------------------------------

def url_host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def url_origin(url: str) -> str:
    """scheme://host[:port] of ``url``: what members (not admins) see of a webhook target."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}" if parts.scheme and parts.netloc else ""
    except ValueError:
        return ""


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def check_url(url: str) -> str:
    """The URL, stripped, if Zentro may deliver to it; else 400 saying why: http(s) with a host, no
    credentials, and a host that resolves to public addresses only (private, loopback, link-local ...
    refused unless ZENTRO_WEBHOOK_ALLOW_PRIVATE). Every send checks the address again."""
    url = (url or "").strip()
    if not url:
        raise ApiError(400, "Give the endpoint's URL (https://...).")
    if len(url) > MAX_URL:
        raise ApiError(400, f"The URL may be at most {MAX_URL} characters.")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ApiError(400, "The URL must not contain spaces or control characters.")
    refusal = check_base_url(url)
    if refusal:
        raise ApiError(400, _sentence(refusal))
    parts = urlsplit(url)
    if parts.fragment:
        raise ApiError(400, "The URL must not have a #fragment.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    allow = bool(current_app.config.get("ZENTRO_WEBHOOK_ALLOW_PRIVATE"))
    try:
        resolve_checked(parts.hostname, port, allow_private=allow, setting="ZENTRO_WEBHOOK_ALLOW_PRIVATE")
    except AddressRefused as exc:
        raise ApiError(400, _sentence(str(exc))) from None
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise ApiError(400, f"URL refused: {parts.hostname} does not resolve ({exc})"[:500]) from None
    return url


# --- endpoints ---------------------------------------------------------------------------------------

def endpoints_query(org_id: int):
    return select(WebhookEndpoint).where(WebhookEndpoint.org_id == org_id)


def get_endpoint(org_id: int, endpoint_id: int) -> WebhookEndpoint:
    row = db.session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.org_id == org_id,
                                                          WebhookEndpoint.id == endpoint_id))
    if row is None:
        raise not_found("Webhook endpoint")
    return row


def _audit(org_id: int, action: str, actor: Actor, ep: WebhookEndpoint, now: dt.datetime, **data) -> None:
    record(org_id, action, actor, target_type="webhook_endpoint", target_id=ep.id, now=now,
           data={"host": url_host(ep.url), "events": list(ep.events or []), "enabled": ep.enabled, **data})


def create_endpoint(org_id: int, *, url: str, events: list[str], actor: Actor, description: str = "",
                    enabled: bool = True, user_id: int | None = None,
                    now: dt.datetime | None = None) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint; returns (row, plaintext secret). Validates everything before writing. Commits."""
    now = now or utcnow()
    events = validate_events(events)
    description = (description or "").strip()
    if len(description) > 200:
        raise ApiError(400, "The description may be at most 200 characters.")
    url = check_url(url)  # last: it may ask DNS
    secret = new_secret()
    ep = WebhookEndpoint(org_id=org_id, url=url, description=description, events=events, enabled=bool(enabled),
                         secret_ciphertext=secretbox.encrypt(secret), secret_prefix=secret_prefix(secret),
                         created_by_id=user_id, created_at=now, updated_at=now)
    db.session.add(ep)
    db.session.flush()
    _audit(org_id, "webhook.created", actor, ep, now)
    db.session.commit()
    return ep, secret


def update_endpoint(org_id: int, endpoint_id: int, changes: dict, *, actor: Actor,
                    now: dt.datetime | None = None) -> WebhookEndpoint:
    """Change url / description / events / enabled (keys absent from ``changes`` stay). Commits."""
    now = now or utcnow()
    ep = get_endpoint(org_id, endpoint_id)
    new: dict = {}
    if changes.get("events") is not None:
        new["events"] = validate_events(changes["events"])
    if changes.get("description") is not None:
        description = changes["description"].strip()
        if len(description) > 200:
            raise ApiError(400, "The description may be at most 200 characters.")
        new["description"] = description
    if changes.get("enabled") is not None:
        new["enabled"] = bool(changes["enabled"])
    if changes.get("url") is not None:
        new["url"] = check_url(changes["url"])  # last: it may ask DNS
    changed = sorted(k for k, v in new.items() if getattr(ep, k) != v)
    if not changed:
        return ep
    for k in changed:
        setattr(ep, k, new[k])
    ep.updated_at = now
    _audit(org_id, "webhook.updated", actor, ep, now, changed=changed)
    db.session.commit()
    return ep


def delete_endpoint(org_id: int, endpoint_id: int, *, actor: Actor, now: dt.datetime | None = None) -> None:
    """Delete an endpoint. Its pending messages go with it (the outbox rows cascade); their delivery-log
    rows are closed as failed so the log never shows a message queued for ever. Commits."""
    now = now or utcnow()
    ep = get_endpoint(org_id, endpoint_id)
    pending = db.session.scalars(select(OutboxMessage.delivery_id).where(
        OutboxMessage.org_id == org_id, OutboxMessage.endpoint_id == ep.id, OutboxMessage.status == "pending",
        OutboxMessage.delivery_id.is_not(None))).all()
    if pending:
        for d in db.session.scalars(select(Delivery).where(Delivery.org_id == org_id, Delivery.id.in_(pending))):
            d.status, d.finished_at = "failed", now
            d.error = "The webhook endpoint was deleted before this message was delivered."
    _audit(org_id, "webhook.deleted", actor, ep, now, abandoned_messages=len(pending))
    db.session.delete(ep)
    db.session.commit()


def rotate_secret(org_id: int, endpoint_id: int, *, actor: Actor,
                  now: dt.datetime | None = None) -> tuple[WebhookEndpoint, str]:
    """Replace the signing secret (the old one stops working at once); returns (row, new secret). Commits."""
    now = now or utcnow()
    ep = get_endpoint(org_id, endpoint_id)
    secret = new_secret()
    ep.secret_ciphertext, ep.secret_prefix, ep.updated_at = secretbox.encrypt(secret), secret_prefix(secret), now
    _audit(org_id, "webhook.secret_rotated", actor, ep, now)
    db.session.commit()
    return ep, secret


def send_test(org_id: int, endpoint_id: int, *, actor: Actor, now: dt.datetime | None = None) -> dict:
    """Send one ``webhook.test`` message to the endpoint now (enabled or not, subscribed or not): one
    attempt, no retries. Records the delivery and audits ``webhook.tested``. Commits. Returns the outcome."""
    from zentro.notify import outbox  # noqa: PLC0415 - outbox imports this module

    now = now or utcnow()
    ep = get_endpoint(org_id, endpoint_id)
    data = {"endpoint_id": ep.id, "message": "This is a test message from Zentro. Verify its signature with the "
                                             "endpoint's secret."}
    outcome = outbox.send_once(ep, "webhook.test", data, source="webhook.test", now=now)
    ep = get_endpoint(org_id, endpoint_id)
    _audit(org_id, "webhook.tested", actor, ep, now, ok=outcome["ok"], status_code=outcome["status_code"],
           delivery_id=outcome["delivery_id"])
    db.session.commit()
    return outcome


def last_messages(org_id: int, endpoint_ids: list[int]) -> dict[int, OutboxMessage]:
    """The newest outbox message of each endpoint (what "last delivery" shows)."""
    if not endpoint_ids:
        return {}
    newest = (select(func.max(OutboxMessage.id)).where(OutboxMessage.org_id == org_id,
                                                      OutboxMessage.endpoint_id.in_(endpoint_ids))
              .group_by(OutboxMessage.endpoint_id))
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(newest)))
    return {m.endpoint_id: m for m in rows}


def message_json(m: OutboxMessage) -> dict:
    return {"message_id": m.message_id, "endpoint_id": m.endpoint_id, "event_type": m.event_type, "status": m.status,
            "attempts": m.attempts, "next_attempt_at": iso(m.next_attempt_at) if m.status == "pending" else None,
            "last_status_code": m.last_status_code, "last_error": m.last_error, "created_at": iso(m.created_at),
            "delivered_at": iso(m.delivered_at)}


def endpoint_json(ep: WebhookEndpoint, last: OutboxMessage | None = None) -> dict:
    """An endpoint as the API shows it: never the secret, only its first characters."""
    return {"id": ep.id, "url": ep.url, "description": ep.description, "events": list(ep.events or []),
            "enabled": ep.enabled, "secret_prefix": ep.secret_prefix, "created_at": iso(ep.created_at),
            "updated_at": iso(ep.updated_at), "last_delivery": message_json(last) if last is not None else None}
