"""The durable webhook outbox: an event becomes one OutboxMessage (and one delivery-log row) per enabled
endpoint of the org that subscribed to it; ``drain_outbox`` (the scheduler's job, or ``zentro jobs run``)
sends the due ones, signed per Standard Webhooks, and retries failures.

Schedule: attempt 1 as soon as a drain runs after the enqueue, then retries 5 s, 15 s and 45 s after the
previous failed attempt (4 attempts in all); after the fourth failure the message and its delivery row
are ``failed`` with the last status code and error. A 2xx is delivered; anything else (3xx: redirects are
not followed, 4xx, 5xx, a timeout, a refused address) is a failed attempt.

Two drains at once (two workers, two hosts) never send one message concurrently: each message is claimed
with one conditional UPDATE (``status = 'pending' AND next_attempt_at <= now``) that pushes its
``next_attempt_at`` past the request's timeout and counts the attempt; only the drain whose UPDATE changed
the row sends it. If that process dies mid-request, the claim expires and another drain retries the
message with the same ``webhook-id`` (receivers de-duplicate on it). No transaction is open while a
request is in flight (SQLite's write lock is not held over the network).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from flask import current_app
from sqlalchemy import select, update

from zentro.extensions import db
from zentro.notify import webhooks
from zentro.notify.models import Delivery, OutboxMessage, WebhookEndpoint
from zentro.platform.outbound import post_json
from zentro.platform.types import iso, utcnow

log = logging.getLogger("zentro.notify.outbox")

BACKOFF_SECONDS = (5, 15, 45)  # wait before retry 1, 2, 3
MAX_ATTEMPTS = 1 + len(BACKOFF_SECONDS)
CLAIM_SECONDS = 60  # a claimed message is invisible to other drains this long (or 3 × the timeout if longer)


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def event_body(event_type: str, data: dict, now: dt.datetime) -> dict:
    """The JSON every endpoint receives: ``{"type", "timestamp", "data"}`` (Standard Webhooks)."""
    return {"type": event_type, "timestamp": iso(now),
            "data": json.loads(json.dumps(data or {}, default=str))}


def encode_body(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


def subscribed_endpoints(org_id: int, event_type: str) -> list[WebhookEndpoint]:
    """The org's enabled endpoints whose subscription covers ``event_type`` (without flushing the caller's
    pending changes: an event is emitted from inside other packages' transactions)."""
    with db.session.no_autoflush:
        rows = db.session.scalars(select(WebhookEndpoint).where(
            WebhookEndpoint.org_id == org_id, WebhookEndpoint.enabled.is_(True)).order_by(WebhookEndpoint.id)).all()
    return [ep for ep in rows if webhooks.matches(ep.events, event_type)]


def _enqueue(org_id: int, endpoints: list[WebhookEndpoint], event_type: str, data: dict, *, source: str | None,
             run_id: int | None, now: dt.datetime | None) -> list[tuple[Delivery, OutboxMessage]]:
    now = now or utcnow()
    body = event_body(event_type, data, now)
    pairs = []
    for ep in endpoints:
        d = Delivery(org_id=org_id, source=(source or event_type)[:80], run_id=run_id, channel="webhook",
                     target=ep.url[:500], recipients=[], subject=event_type[:300], status="queued", attempts=0,
                     error="", created_at=now)
        db.session.add(d)
        pairs.append((ep, d))
    db.session.flush()
    out = []
    for ep, d in pairs:
        msg = OutboxMessage(org_id=org_id, endpoint_id=ep.id, delivery_id=d.id, message_id=new_message_id(),
                            event_type=event_type[:80], payload=body, status="pending", attempts=0,
                            next_attempt_at=now, last_error="", created_at=now)
        db.session.add(msg)
        out.append((d, msg))
    db.session.flush()
    return out


def enqueue_event(org_id: int, event_type: str, data: dict, *, source: str | None = None, run_id: int | None = None,
                  now: dt.datetime | None = None) -> list[Delivery]:
    """Queue ``event_type`` for every enabled endpoint of the org subscribed to it (exact type, a
    ``family.*`` wildcard or ``*``): one OutboxMessage and one Delivery (channel webhook, status queued,
    target the endpoint URL) each. Flushes; the caller commits. [] when no endpoint wants the event."""
    endpoints = subscribed_endpoints(org_id, event_type)
    if not endpoints:
        return []
    return [d for d, _ in _enqueue(org_id, endpoints, event_type, data, source=source, run_id=run_id, now=now)]


# --- sending -----------------------------------------------------------------------------------------

def _timeout() -> float:
    return float(current_app.config.get("ZENTRO_WEBHOOK_TIMEOUT_SECONDS") or 5)


def _claim_seconds() -> float:
    return max(CLAIM_SECONDS, 3 * _timeout())


def claim(message_pk: int, now: dt.datetime) -> bool:
    """Take one due message for sending (and count the attempt). True only for the one caller whose
    conditional UPDATE changed the row; commits either way."""
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_pk, OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
        .values(next_attempt_at=now + dt.timedelta(seconds=_claim_seconds()), attempts=OutboxMessage.attempts + 1)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount == 1


def _request(message_id: str, secret: str, body: bytes, now: dt.datetime) -> dict[str, str]:
    timestamp = int(now.timestamp())
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": webhooks.sign(secret, message_id, timestamp, body)}


def _attempt(message_pk: int, now: dt.datetime, *, retry: bool) -> dict:
    """Send a claimed message once and record the outcome (see ``_record``)."""
    msg = db.session.get(OutboxMessage, message_pk, populate_existing=True)
    if msg is None:  # its endpoint was deleted in between (the row cascaded away)
        db.session.commit()
        return {"outcome": "failed", "ok": False, "status_code": None, "delivery_id": None, "message_id": None,
                "detail": "The webhook endpoint was deleted."}
    ep = db.session.get(WebhookEndpoint, msg.endpoint_id)
    refusal = ""
    if retry and not ep.enabled:
        refusal = "The endpoint was disabled before this message was delivered."
    elif msg.attempts > MAX_ATTEMPTS:  # an earlier claim's process died mid-attempt, more than once
        refusal = f"Gave up: {MAX_ATTEMPTS} attempts were started without an answer being recorded."
    secret = ""
    if not refusal:
        try:
            secret = webhooks.decrypt_secret(ep.secret_ciphertext)
        except webhooks.SecretUnavailable as exc:
            refusal = str(exc)
    url, message_id, body = ep.url, msg.message_id, encode_body(msg.payload)
    db.session.commit()  # no transaction is held while the request is in flight
    if refusal:
        return _record(message_pk, now, False, None, refusal, retry=False)
    ok, code, detail = post_json(url, None, timeout=_timeout(), body=body,
                                 headers=_request(message_id, secret, body, now))
    return _record(message_pk, now, ok, code, detail, retry=retry)


def _record(message_pk: int, now: dt.datetime, ok: bool, code: int | None, detail: str, *, retry: bool) -> dict:
    """Store one attempt's outcome on the message and mirror it on its delivery-log row. Commits."""
    msg = db.session.get(OutboxMessage, message_pk, populate_existing=True)
    if msg is None:
        db.session.commit()
        return {"outcome": "failed", "ok": ok, "status_code": code, "delivery_id": None, "message_id": None,
                "detail": detail}
    d = db.session.get(Delivery, msg.delivery_id, populate_existing=True) if msg.delivery_id else None
    msg.last_status_code, msg.last_error = code, ("" if ok else detail[:500])
    n = msg.attempts
    if ok:
        msg.status, msg.delivered_at, outcome = "delivered", now, "delivered"
        error = ""
    elif not retry or n >= MAX_ATTEMPTS:
        msg.status, outcome = "failed", "failed"
        error = detail if not retry else f"{detail} (gave up after {n} attempts)"
    else:
        msg.next_attempt_at = now + dt.timedelta(seconds=BACKOFF_SECONDS[n - 1])
        outcome = "retrying"
        error = f"{detail} (attempt {n} of {MAX_ATTEMPTS}; next attempt at {iso(msg.next_attempt_at)})"
    if d is not None:
        d.attempts = n
        d.error = error[:500]
        if outcome != "retrying":
            d.status = "sent" if ok else "failed"
            d.finished_at = now
    result = {"outcome": outcome, "ok": ok, "status_code": code, "detail": detail,
              "delivery_id": msg.delivery_id, "message_id": msg.message_id}
    db.session.commit()
    return result


def send_once(ep: WebhookEndpoint, event_type: str, data: dict, *, source: str,
              now: dt.datetime | None = None) -> dict:
    """Send ``event_type`` to ``ep`` right now, one attempt and no retries (the "send test" button).
    Records the message and its delivery row. Commits. Returns the outcome (ok, status_code, detail ...)."""
    now = now or utcnow()
    ((_, msg),) = _enqueue(ep.org_id, [ep], event_type, data, source=source, run_id=None, now=now)
    msg.attempts, msg.next_attempt_at = 1, now + dt.timedelta(seconds=_claim_seconds())  # claimed at birth
    db.session.flush()
    pk = msg.id
    db.session.commit()
    return _attempt(pk, now, retry=False)


def drain_outbox(now: dt.datetime | None = None, *, limit: int = 100, budget_seconds: float | None = None,
                 concurrency: int | None = None) -> dict:
    """Send the pending messages due at ``now`` (``next_attempt_at <= now``), oldest due first, ``limit`` per batch:
    one batch, or (``budget_seconds``) batch after batch until none is due or the budget is spent. Up to
    ``concurrency`` endpoints are served at once (default ZENTRO_WEBHOOK_CONCURRENCY; always 1 on SQLite, whose
    single writer would only queue them), each in its own app context and session; one endpoint's messages go
    out one at a time in the order they were queued, so a receiver sees incident.opened before
    incident.resolved (a message that failed and is retried later can still arrive after newer ones; bodies
    carry their timestamp). Commits as it goes (run it as a job, not inside a request's transaction). Returns
    ``{"delivered": n, "retrying": n, "failed": n}``; messages another drain claimed first are skipped. Every
    message it sends leaves the due set (delivered, failed, or its next attempt pushed past ``now``), so a
    drain always ends."""
    now = now or utcnow()
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    if concurrency is None:
        concurrency = int(current_app.config.get("ZENTRO_WEBHOOK_CONCURRENCY") or 1)
    if db.engine.dialect.name == "sqlite":
        concurrency = 1
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    app = current_app._get_current_object()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="outbox") if concurrency > 1 else \
            contextlib.nullcontext() as pool:
        while True:
            due = db.session.execute(select(OutboxMessage.id, OutboxMessage.endpoint_id).where(
                OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit)).all()
            db.session.commit()
            by_endpoint: dict[int, list[int]] = {}
            for pk, endpoint_id in due:
                by_endpoint.setdefault(endpoint_id, []).append(pk)
            if pool is None:
                outcomes = [_send_due(pk, now) for pks in by_endpoint.values() for pk in pks]
            else:
                outcomes = [outcome for chunk in pool.map(lambda pks: _send_in_context(app, pks, now),
                                                          by_endpoint.values()) for outcome in chunk]
            for outcome in outcomes:
                if outcome is not None:
                    counts[outcome] += 1
            if len(due) < limit or deadline is None or time.monotonic() >= deadline:
                return counts


def _send_due(message_pk: int, now: dt.datetime) -> str | None:
    """Claim and send one due message; its outcome, or None when another drain had it or it could not be
    processed (its claim then expires and it is retried)."""
    if not claim(message_pk, now):
        return None
    try:
        return _attempt(message_pk, now, retry=True)["outcome"]
    except Exception:  # noqa: BLE001 - one message must not stop the others
        log.exception("webhook outbox message %s could not be processed", message_pk)
        db.session.rollback()
        return None


def _send_in_context(app, message_pks: list[int], now: dt.datetime) -> list[str | None]:
    """One endpoint's due messages, in order, in an app context (and session) of their own."""
    with app.app_context():  # a session of its own, removed when the context ends
        outcomes = []
        for pk in message_pks:
            try:
                outcomes.append(_send_due(pk, now))
            except Exception:  # noqa: BLE001 - the claim itself failed (database gone): the next drain retries
                log.exception("webhook outbox message %s could not be claimed", pk)
                db.session.rollback()
                outcomes.append(None)
        return outcomes
