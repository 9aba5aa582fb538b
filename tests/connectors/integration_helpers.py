"""Factories for integration tests and the tenant-isolation harness (tests/platform/test_isolation.py)."""
from __future__ import annotations

import uuid

MARK = "ALPHA-PRIVATE"


def make_integration(org_id: int, user_id: int) -> int:
    """A Datadog alert-source integration with an encrypted API key and a live ingest token (flushed, not
    committed: the caller's transaction decides). Its URL is a documentation address, so a test probe would be
    refused without touching the network."""
    from zentro.accounts.models import IngestToken
    from zentro.connectors.models import Integration
    from zentro.extensions import db
    from zentro.platform import secretbox
    from zentro.platform.auth import INGEST_TOKEN_PREFIX, new_secret

    _, prefix, digest = new_secret(INGEST_TOKEN_PREFIX)
    tok = IngestToken(org_id=org_id, name=f"Integration: {MARK}", prefix=prefix, secret_hash=digest,
                      created_by_id=user_id)
    db.session.add(tok)
    db.session.flush()
    row = Integration(org_id=org_id, provider="datadog", kind="alert_source",
                      name=f"{MARK} datadog {uuid.uuid4().hex[:8]}", config={"api_url": "https://192.0.2.10"},
                      secrets_ciphertext=secretbox.encrypt('{"api_key": "' + MARK + '-dd-api-key-0123456789"}'),
                      secret_hints={"api_key": "…6789"}, ingest_token_id=tok.id, status="failing",
                      last_error=f"{MARK} HTTP 403", created_by_id=user_id)
    db.session.add(row)
    db.session.flush()
    return row.id
