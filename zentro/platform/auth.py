"""Auth schemes resolved to a Principal (user or token, org, role, scopes) before any view runs.

Schemes: session cookie (CSRF on unsafe methods), user API key ``zentro_pk_…`` (Bearer or
X-API-Key, acts as its user in its org limited by scopes), alert-ingest token ``zentro_it_…``
(ingest endpoints only).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from flask import g, request, session
from flask_login import current_user

from zentro.accounts.models import ApiKey, AssessorToken, IngestToken, Membership, Org, Role, User
from zentro.audit.service import Actor
from zentro.extensions import csrf, db
from zentro.platform.types import utcnow

API_KEY_PREFIX = "zentro_pk_"
INGEST_TOKEN_PREFIX = "zentro_it_"
ASSESSOR_TOKEN_PREFIX = "zentro_ca_"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)


def hash_secret(secret: str) -> str:
    """Secrets are 256-bit random values, so one SHA-256 is the right (and fast) digest for lookup."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(kind_prefix: str) -> tuple[str, str, str]:
    """Return (plaintext, public prefix, hash). The prefix is what lists show and lookups use."""
    body = secrets.token_urlsafe(32)
    plaintext = f"{kind_prefix}{body}"
    return plaintext, plaintext[: len(kind_prefix) + 8], hash_secret(plaintext)


@dataclass
class Principal:
    scheme: str  # session | api_key | ingest_token | assessor_token
    org: Org
    role: Role | None
    user: User | None = None
    credential: ApiKey | IngestToken | None = None
    scopes: tuple[str, ...] = field(default=("*",))

    @property
    def actor(self) -> Actor:
        if self.scheme == "ingest_token":
            return Actor("ingest_token", str(self.credential.id), self.credential.name)
        if self.scheme == "assessor_token":
            return Actor("assessor_token", str(self.credential.id), f"assessor {self.credential.name} ({self.credential.prefix}…)")
        if self.scheme == "api_key":
            return Actor("api_key", str(self.credential.id), f"{self.user.email} ({self.credential.prefix}…)")
        return Actor("user", str(self.user.id), self.user.email)

    @property
    def caller_key(self) -> str:
        """Who is calling, for idempotency scoping: the same user via another key is another caller."""
        if self.credential is not None:
            return f"{self.scheme}:{self.credential.id}"
        return f"user:{self.user.id}"

    def has_scope(self, needed: str) -> bool:
        resource, _, action = needed.partition(":")
        for s in self.scopes:
            r, _, a = s.partition(":")
            if s == "*" or (r in ("*", resource) and a in ("*", action)):
                return True
        return False


def current_principal() -> Principal | None:
    return g.get("principal")


def _credential_from_headers() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("X-API-Key", "").strip() or None


def _find_secret(model, plaintext: str):
    prefix_len = len(plaintext[:10]) + 8  # every kind prefix is "zentro_xx_" (10 characters)
    candidates = db.session.scalars(
        db.select(model).where(model.prefix == plaintext[:prefix_len], model.revoked_at.is_(None))
    ).all()
    digest = hash_secret(plaintext)
    for cand in candidates:
        if hmac.compare_digest(cand.secret_hash, digest):
            return cand
    return None


def _touch(credential) -> None:
    now = utcnow()
    if credential.last_used_at is None or now - credential.last_used_at > LAST_USED_RESOLUTION:
        credential.last_used_at = now
        db.session.commit()


def _resolve() -> Principal | None:
    token = _credential_from_headers()
    if token is not None:
        g.auth_attempted = True
        if token.startswith(API_KEY_PREFIX):
            key = _find_secret(ApiKey, token)
            if key is None or not key.user.is_active:
                return None
            membership = db.session.scalar(
                db.select(Membership).where(Membership.user_id == key.user_id, Membership.org_id == key.org_id))
            if membership is None:
                return None
            _touch(key)
            return Principal("api_key", key.org, Role(membership.role), key.user, key, tuple(key.scope_list))
        if token.startswith(INGEST_TOKEN_PREFIX):
            tok = _find_secret(IngestToken, token)
            if tok is None:
                return None
            _touch(tok)
            return Principal("ingest_token", tok.org, None, None, tok, ("ingest:write",))
        if token.startswith(ASSESSOR_TOKEN_PREFIX):
            tok = _find_secret(AssessorToken, token)
            if tok is None or tok.expires_at <= utcnow():
                return None
            _touch(tok)
            return Principal("assessor_token", tok.org, None, None, tok, tuple(f"assessor:{r}" for r in tok.resource_list))
        return None
    if not current_user.is_authenticated:
        return None
    memberships = {m.org_id: m for m in current_user.memberships}
    if not memberships:
        return None
    org_id = session.get("org_id")
    membership = memberships.get(org_id) or memberships[min(memberships)]
    session["org_id"] = membership.org_id
    return Principal("session", membership.org, Role(membership.role), current_user._get_current_object())


def resolve_request() -> None:
    """before_request: identify the caller (never refuses; the route decides what it needs)."""
    if request.endpoint == "static":
        return
    g.principal = _resolve()


def check_csrf() -> None:
    """before_request: cookie-authenticated unsafe requests (and the sign-in form) need the CSRF token."""
    if request.method in UNSAFE_METHODS:
        p = g.get("principal")
        if (p is not None and p.scheme == "session") or request.endpoint == "accounts.login":
            csrf.protect()
