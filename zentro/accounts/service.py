"""Accounts logic: users, orgs, memberships, sign-in sessions, API keys, ingest tokens.
No Flask globals: callers pass the org and the acting Actor."""
from __future__ import annotations

import datetime as dt
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select

from zentro.accounts.models import ApiKey, IngestToken, LoginSession, Membership, Org, Plan, Role, User
from zentro.audit.service import SYSTEM, Actor, record
from zentro.extensions import db
from zentro.platform.auth import API_KEY_PREFIX, INGEST_TOKEN_PREFIX, hash_secret, new_secret
from zentro.platform.errors import ApiError, not_found
from zentro.platform.types import utcnow

# argon2id at OWASP's minimum (Password Storage Cheat Sheet: m=19 MiB, t=2, p=1).
PASSWORDS = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16)
_DUMMY_HASH = PASSWORDS.hash(secrets.token_urlsafe(16))
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256


class AccountError(ValueError):
    pass


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email) or len(email) > 320:
        raise AccountError(f"Not a valid email address: {email!r}")
    return email


def check_password_strength(password: str) -> None:
    if not isinstance(password, str) or not (MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH):
        raise AccountError(f"Passwords must be {MIN_PASSWORD_LENGTH}–{MAX_PASSWORD_LENGTH} characters.")


def hash_password(password: str) -> str:
    check_password_strength(password)
    return PASSWORDS.hash(password)


def authenticate(email: str, password: str) -> User | None:
    """The same work is done whether or not the email exists, so timing does not tell."""
    try:
        email = normalize_email(email)
    except AccountError:
        email = ""
    user = db.session.scalar(select(User).where(User.email == email)) if email else None
    try:
        PASSWORDS.verify(user.password_hash if user else _DUMMY_HASH, password or "")
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.is_active:
        return None
    if PASSWORDS.check_needs_rehash(user.password_hash):
        user.password_hash = PASSWORDS.hash(password)
        db.session.commit()
    return user


def get_org(slug: str) -> Org | None:
    return db.session.scalar(select(Org).where(Org.slug == slug))


def ensure_org(slug: str, name: str | None = None, plan: str | None = None) -> tuple[Org, bool]:
    if not SLUG_RE.match(slug or ""):
        raise AccountError(f"Org slug must be lowercase letters, digits and dashes: {slug!r}")
    org = get_org(slug)
    if org is not None:
        if plan and org.plan != Plan(plan).value:
            org.plan = Plan(plan).value
            record(org.id, "org.plan_changed", SYSTEM, target_type="org", target_id=org.id, data={"plan": org.plan})
        return org, False
    org = Org(slug=slug, name=name or slug.replace("-", " ").title(), plan=Plan(plan or "free").value)
    db.session.add(org)
    db.session.flush()
    record(org.id, "org.created", SYSTEM, target_type="org", target_id=org.id, data={"slug": slug, "plan": org.plan})
    return org, True


def ensure_user(email: str, password: str | None, name: str = "") -> tuple[User, bool]:
    email = normalize_email(email)
    user = db.session.scalar(select(User).where(User.email == email))
    if user is not None:
        return user, False
    if password is None:
        raise AccountError("A new user needs a password.")
    user = User(email=email, name=name or email.split("@")[0], password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    return user, True


def set_membership(user: User, org: Org, role: str, actor: Actor = SYSTEM) -> Membership:
    role = Role(role).value
    m = db.session.scalar(select(Membership).where(Membership.user_id == user.id, Membership.org_id == org.id))
    if m is None:
        m = Membership(user_id=user.id, org_id=org.id, role=role)
        db.session.add(m)
        db.session.flush()
        record(org.id, "membership.created", actor, target_type="user", target_id=user.id,
               control_tags=["SOC2:CC6.2", "ISO27001:A.5.18"], data={"email": user.email, "role": role})
    elif m.role != role:
        record(org.id, "membership.role_changed", actor, target_type="user", target_id=user.id,
               control_tags=["SOC2:CC6.2", "ISO27001:A.5.18"], data={"from": m.role, "to": role})
        m.role = role
    return m


# --- sign-in sessions -------------------------------------------------------------------------

def default_org_id(user: User) -> int | None:
    """The org a fresh sign-in lands in: the user's oldest membership."""
    return min((m.org_id for m in user.memberships), default=None)


def start_session(user: User, hours: int, ip: str = "", user_agent: str = "") -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.session.add(LoginSession(token_hash=hash_secret(token), user_id=user.id, created_at=now,
                                expires_at=now + dt.timedelta(hours=hours), ip=ip[:64], user_agent=user_agent[:300]))
    org_id = default_org_id(user)
    if org_id is not None:
        record(org_id, "session.signed_in", Actor("user", str(user.id), user.email), target_type="user",
               target_id=user.id, control_tags=["SOC2:CC6.1", "ISO27001:A.8.5"], data={"ip": ip[:64]})
    db.session.commit()
    return token


def session_user(user_id: int, token: str | None) -> User | None:
    found = session_user_memberships(user_id, token)
    return found[0] if found is not None else None


def session_user_memberships(user_id: int, token: str | None) -> tuple[User, list[tuple[Membership, Org]]] | None:
    """The active user of an unexpired sign-in session, with their (membership, org) pairs, or None.

    One round trip (a row per membership): a session request needs both, the user for Flask-Login and
    the memberships for the principal's org and role (see platform.auth)."""
    if not token:
        return None
    rows = db.session.execute(
        select(LoginSession.user_id, LoginSession.expires_at, User, Membership, Org)
        .join(User, User.id == LoginSession.user_id)
        .outerjoin(Membership, Membership.user_id == User.id)
        .outerjoin(Org, Org.id == Membership.org_id)
        .where(LoginSession.token_hash == hash_secret(token))).all()
    if not rows:
        return None
    row = rows[0]
    if row.user_id != user_id or row.expires_at <= utcnow() or not row.User.is_active:
        return None
    return row.User, [(r.Membership, r.Org) for r in rows if r.Membership is not None]


def end_session(token: str | None, org: Org | None = None, actor: Actor | None = None) -> None:
    if token:
        db.session.execute(delete(LoginSession).where(LoginSession.token_hash == hash_secret(token)))
        if org is not None and actor is not None:
            record(org.id, "session.signed_out", actor, target_type="user", target_id=actor.id,
                   control_tags=["SOC2:CC6.1"])
        db.session.commit()


def switch_org(user: User, org_id: int, actor: Actor) -> Org | None:
    """Return the org if the user belongs to it (recording the switch there), else None."""
    m = db.session.scalar(select(Membership).where(Membership.user_id == user.id, Membership.org_id == org_id))
    if m is None:
        return None
    record(m.org_id, "session.org_switched", actor, target_type="org", target_id=m.org_id)
    db.session.commit()
    return m.org


def change_password(user: User, org: Org, current: str, new: str, actor: Actor) -> None:
    try:
        PASSWORDS.verify(user.password_hash, current or "")
    except (VerificationError, InvalidHashError):
        raise AccountError("Current password is wrong.") from None
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    db.session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    record(org.id, "user.password_changed", actor, target_type="user", target_id=user.id,
           control_tags=["SOC2:CC6.1", "ISO27001:A.5.17"])
    db.session.commit()


# --- API keys and ingest tokens -----------------------------------------------------------------

def known_scopes() -> set[str]:
    from zentro.platform.routes import REGISTRY

    resources = {m.resource for m in REGISTRY.values() if m.resource} | {"*"}
    return {"*"} | {f"{r}:{a}" for r in resources for a in ("read", "write", "*")}


def validate_scopes(scopes: list[str] | None) -> list[str]:
    scopes = [s.strip() for s in (scopes or ["*"]) if s.strip()] or ["*"]
    unknown = sorted(set(scopes) - known_scopes())
    if unknown:
        raise AccountError(f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(sorted(known_scopes()))}")
    return sorted(set(scopes))


def create_api_key(org: Org, user: User, name: str, scopes: list[str] | None, actor: Actor) -> tuple[ApiKey, str]:
    scopes = validate_scopes(scopes)
    plaintext, prefix, digest = new_secret(API_KEY_PREFIX)
    key = ApiKey(org_id=org.id, user_id=user.id, name=name, prefix=prefix, secret_hash=digest, scopes=" ".join(scopes))
    db.session.add(key)
    db.session.flush()
    record(org.id, "api_key.created", actor, target_type="api_key", target_id=key.id,
           control_tags=["SOC2:CC6.1", "ISO27001:A.5.17"], data={"name": key.name, "prefix": prefix, "scopes": scopes})
    db.session.commit()
    return key, plaintext


def api_keys_query(org: Org, user: User):
    return select(ApiKey).where(ApiKey.org_id == org.id, ApiKey.user_id == user.id)


def revoke_api_key(org: Org, user: User, key_id: int, actor: Actor) -> ApiKey:
    key = db.session.scalar(api_keys_query(org, user).where(ApiKey.id == key_id))
    if key is None:
        raise not_found("API key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        record(org.id, "api_key.revoked", actor, target_type="api_key", target_id=key.id,
               control_tags=["SOC2:CC6.2", "ISO27001:A.5.18"], data={"prefix": key.prefix})
        db.session.commit()
    return key


def create_ingest_token(org: Org, name: str, actor: Actor, created_by: User | None) -> tuple[IngestToken, str]:
    plaintext, prefix, digest = new_secret(INGEST_TOKEN_PREFIX)
    tok = IngestToken(org_id=org.id, name=name, prefix=prefix, secret_hash=digest,
                      created_by_id=created_by.id if created_by else None)
    db.session.add(tok)
    db.session.flush()
    record(org.id, "ingest_token.created", actor, target_type="ingest_token", target_id=tok.id,
           control_tags=["SOC2:CC6.1"], data={"name": tok.name, "prefix": prefix})
    db.session.commit()
    return tok, plaintext


def ingest_tokens_query(org: Org):
    return select(IngestToken).where(IngestToken.org_id == org.id)


def revoke_ingest_token(org: Org, token_id: int, actor: Actor) -> IngestToken:
    tok = db.session.scalar(ingest_tokens_query(org).where(IngestToken.id == token_id))
    if tok is None:
        raise not_found("Ingest token")
    if tok.revoked_at is None:
        tok.revoked_at = utcnow()
        record(org.id, "ingest_token.revoked", actor, target_type="ingest_token", target_id=tok.id,
               control_tags=["SOC2:CC6.2"], data={"prefix": tok.prefix})
        db.session.commit()
    return tok


def user_orgs(user: User) -> list[tuple[Org, str]]:
    rows = db.session.execute(select(Org, Membership.role).join(Membership, Membership.org_id == Org.id)
                              .where(Membership.user_id == user.id).order_by(Org.name)).all()
    return [(o, r) for o, r in rows]
