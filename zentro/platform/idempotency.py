"""Idempotency-Key for mutations: the same key and body replays the stored response, the same key
with another body is 422 IDEMPOTENCY_MISMATCH, a key whose first request is still running is 409.
Keys are scoped to (org, caller) and kept ``ZENTRO_IDEMPOTENCY_TTL_HOURS``."""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Callable

from flask import current_app, make_response, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from zentro.extensions import db
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.models import IdempotencyRecord
from zentro.platform.types import utcnow

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def _fingerprint() -> str:
    h = hashlib.sha256()
    h.update(f"{request.method} {request.path}\n".encode())
    h.update(request.get_data(cache=True))
    return h.hexdigest()


def _ttl() -> dt.timedelta:
    return dt.timedelta(hours=current_app.config["ZENTRO_IDEMPOTENCY_TTL_HOURS"])


def _claim(org_id: int, caller: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Insert the running marker in its own transaction. Returns None if claimed, else the holder."""
    for _ in range(2):
        try:
            db.session.add(IdempotencyRecord(org_id=org_id, caller=caller, key=key, fingerprint=fingerprint))
            db.session.commit()
            return None
        except IntegrityError:
            db.session.rollback()
        existing = db.session.scalar(select(IdempotencyRecord).where(
            IdempotencyRecord.org_id == org_id, IdempotencyRecord.caller == caller, IdempotencyRecord.key == key))
        if existing is None:
            continue
        if existing.created_at < utcnow() - _ttl():
            db.session.delete(existing)
            db.session.commit()
            continue
        return existing
    raise ApiError(409, "Another request with this Idempotency-Key is being processed.")


def run_idempotent(call: Callable):
    key = request.headers.get(HEADER)
    principal = current_principal()
    if key is None or principal is None:
        return call()
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError(400, f"{HEADER} must be 1–{MAX_KEY_LENGTH} printable characters.")
    org_id, caller, fingerprint = principal.org.id, principal.caller_key, _fingerprint()
    holder = _claim(org_id, caller, key, fingerprint)
    if holder is not None:
        if holder.fingerprint != fingerprint:
            raise ApiError(422, f"This {HEADER} was already used with a different request.")
        if holder.state != "done":
            raise ApiError(409, f"The first request with this {HEADER} is still being processed.")
        replay = make_response(holder.body or b"", holder.status_code)
        replay.headers["Content-Type"] = holder.content_type
        replay.headers["Idempotent-Replayed"] = "true"
        return replay

    def release() -> None:
        db.session.rollback()
        db.session.execute(delete(IdempotencyRecord).where(
            IdempotencyRecord.org_id == org_id, IdempotencyRecord.caller == caller, IdempotencyRecord.key == key))
        db.session.commit()

    try:
        response = make_response(call())
    except ApiError as exc:
        if exc.status >= 500 or exc.status in (409, 429):
            release()
            raise
        response = None
        error = exc
    except Exception:
        release()
        raise
    else:
        error = None
    if error is not None:
        from zentro.platform.errors import envelope

        response = envelope(error.status, error.detail, error.error_code, error.errors)
    if response.status_code >= 500 or response.is_streamed:
        release()
        return response
    record = db.session.scalar(select(IdempotencyRecord).where(
        IdempotencyRecord.org_id == org_id, IdempotencyRecord.caller == caller, IdempotencyRecord.key == key))
    if record is not None:
        record.state = "done"
        record.status_code = response.status_code
        record.content_type = response.headers.get("Content-Type", "")
        record.body = response.get_data()
        db.session.commit()
    return response


def purge_expired(now: dt.datetime | None = None, ttl: dt.timedelta | None = None) -> int:
    cutoff = (now or utcnow()) - (ttl or _ttl())
    result = db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff))
    db.session.commit()
    return result.rowcount or 0
