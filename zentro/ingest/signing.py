"""Optional HMAC signatures on ingest requests.

When ``ZENTRO_ALERT_WEBHOOK_SIGNING_SECRET`` is set, a request must carry
``X-Zentro-Timestamp: <unix seconds>`` and ``X-Zentro-Signature: v1=<hex>`` where ``<hex>`` is
HMAC-SHA256(secret, f"{timestamp}.".encode() + raw_body). Several ``v1=`` values separated by
commas are accepted (any one matching), so a sender can sign with the old and the new secret
while rotating. A timestamp further than the tolerance from now (either way) is refused, which
bounds how long a captured request can be replayed.
"""
from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Zentro-Timestamp"
SIGNATURE_HEADER = "X-Zentro-Signature"


class SignatureError(Exception):
    pass


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The header value a sender puts in X-Zentro-Signature."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify(secret: str, timestamp_header: str | None, signature_header: str | None, body: bytes,
           tolerance_seconds: int, now: float | None = None) -> None:
    """Raise SignatureError saying what is wrong, or return when the request is authentic and fresh."""
    if not timestamp_header or not signature_header:
        raise SignatureError(f"This endpoint requires signed requests: send {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}.")
    ts_text = timestamp_header.strip()
    if not ts_text.isdigit() or len(ts_text) > 12:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be Unix time in seconds.")
    now = time.time() if now is None else now
    if abs(now - int(ts_text)) > tolerance_seconds:
        raise SignatureError(f"{TIMESTAMP_HEADER} is more than {tolerance_seconds} seconds from the server's clock; "
                             "the request is refused as a possible replay.")
    expected = sign(secret, ts_text, body)[3:]
    candidates = [part.strip()[3:] for part in signature_header.split(",") if part.strip().startswith("v1=")]
    if not candidates:
        raise SignatureError(f"{SIGNATURE_HEADER} must be v1=<hex HMAC-SHA256>.")
    # compare every candidate (no early exit) so timing does not reveal which one matched
    ok = False
    for candidate in candidates:
        ok |= hmac.compare_digest(candidate.lower().encode(), expected.encode())
    if not ok:
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the request body.")
