"""``emit``: hand a domain event (incident.opened, approval.decided, ...) to the webhook outbox from inside
another package's transaction.

It never raises into the caller (a webhook subscription must not break opening an incident): a failure is
logged and the caller carries on. It never commits: the messages are written in a savepoint of the
caller's transaction, so they are sent only if the caller commits, and a failure rolls back the
savepoint alone. When no endpoint of the org wants the event, it costs one SELECT and writes nothing.
"""
from __future__ import annotations

import datetime as dt
import logging

from zentro.extensions import db
from zentro.notify.models import Delivery

log = logging.getLogger("zentro.notify.events")


def emit(org_id: int, event_type: str, data: dict, now: dt.datetime | None = None) -> list[Delivery]:
    """Queue ``event_type`` with ``data`` for the org's subscribed endpoints (see ``outbox.enqueue_event``).
    Returns the queued delivery rows ([] when none, or when queueing failed)."""
    try:
        from zentro.notify import outbox  # noqa: PLC0415 - keeps importing this module cheap for every caller

        endpoints = outbox.subscribed_endpoints(org_id, event_type)
        if not endpoints:
            return []
        with db.session.begin_nested():
            pairs = outbox._enqueue(org_id, endpoints, event_type, data, source=None, run_id=None, now=now)
        return [d for d, _ in pairs]
    except Exception:  # noqa: BLE001 - the caller's action stands whatever happens to its webhook
        log.exception("could not queue the %s event of org %s for its webhooks", event_type, org_id)
        return []
