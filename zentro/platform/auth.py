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
import sqlalchemy as sa

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
    # session principals: every (org, role) of the user, by org name, for the org switcher
    orgs: tuple = ()

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


_SECRET_QUERIES: dict = {}


def _find_secret(model, plaintext: str, joins: tuple = (), on: tuple = ()):
    """The unrevoked secret row matching ``plaintext`` (constant-time hash compare), or None. With
    ``joins``, a tuple (row, *joined rows) fetched in the same query (inner joins on ``on``)."""
    prefix_len = len(plaintext[:10]) + 8  # every kind prefix is "zentro_xx_" (10 characters)
    query = _SECRET_QUERIES.get((model, joins))
    if query is None:  # built once per kind: constructing the statement cost more than running it
        query = db.select(model, *joins)
        for target, condition in zip(joins, on):
            query = query.join(target, condition)
        query = _SECRET_QUERIES[(model, joins)] = query.where(
            model.prefix == sa.bindparam("prefix"), model.revoked_at.is_(None))
    candidates = db.session.execute(query, {"prefix": plaintext[:prefix_len]}).all()
    digest = hash_secret(plaintext)
    for cand in candidates:
        if hmac.compare_digest(cand[0].secret_hash, digest):
            return tuple(cand) if joins else cand[0]
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
            # the key, its user, their membership in the key's org and the org, in one round trip
            found = _find_secret(ApiKey, token, joins=(User, Membership, Org), on=(
                User.id == ApiKey.user_id,
                (Membership.user_id == ApiKey.user_id) & (Membership.org_id == ApiKey.org_id),
                Org.id == ApiKey.org_id))
            if found is None:
                return None
            key, user, membership, org = found
            if not user.is_active:
                return None
            _touch(key)
            return Principal("api_key", org, Role(membership.role), user, key, tuple(key.scope_list))
        if token.startswith(INGEST_TOKEN_PREFIX):
            found = _find_secret(IngestToken, token, joins=(Org,), on=(Org.id == IngestToken.org_id,))
            if found is None:
                return None
            tok, org = found
            _touch(tok)
            return Principal("ingest_token", org, None, None, tok, ("ingest:write",))
        if token.startswith(ASSESSOR_TOKEN_PREFIX):
            found = _find_secret(AssessorToken, token, joins=(Org,), on=(Org.id == AssessorToken.org_id,))
            if found is None or found[0].expires_at <= utcnow():
                return None
            tok, org = found
            _touch(tok)
            return Principal("assessor_token", org, None, None, tok, tuple(f"assessor:{r}" for r in tok.resource_list))
        return None
    if not current_user.is_authenticated:
        return None
    user = current_user._get_current_object()
    loaded = g.pop("session_memberships", None)  # read with the session row by the user loader (zentro.app)
    if loaded is not None and loaded[0] == user.id:
        pairs = loaded[1]
    else:
        pairs = db.session.execute(db.select(Membership, Org).join(Org, Org.id == Membership.org_id)
                                   .where(Membership.user_id == user.id))
    memberships = {m.org_id: (m, org) for m, org in pairs}
    if not memberships:
        return None
    org_id = session.get("org_id")
    membership, org = memberships.get(org_id) or memberships[min(memberships)]
    if session.get("org_id") != membership.org_id:
        session["org_id"] = membership.org_id
    orgs = tuple(sorted(((o, m.role) for m, o in memberships.values()), key=lambda pair: pair[0].name))
    return Principal("session", org, Role(membership.role), user, orgs=orgs)


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
