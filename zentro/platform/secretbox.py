"""Secrets Zentro must read back, encrypted at rest: customer webhook signing secrets and integration
credentials (API keys, bot tokens, SMTP passwords).

They are Fernet tokens under a key derived from SECRET_KEY (HKDF-SHA256), so a database dump alone opens
nothing. Rotating SECRET_KEY follows Flask's own setting: put the old key in SECRET_KEY_FALLBACKS
(``ZENTRO_SECRET_KEY_FALLBACKS``) next to the new SECRET_KEY; values stored under a fallback still decrypt
(MultiFernet), session cookies signed with it stay valid, and ``zentro secrets rotate`` re-encrypts every
stored value under the new key so the fallback can be removed. docs/deploy.md has the procedure.
"""
from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

# The HKDF "info" of the one key: kept as first written (webhook secrets came first), since changing it
# would make every stored value unreadable.
HKDF_INFO = b"zentro webhook secrets"
BAD_TOKEN = (InvalidToken, ValueError, TypeError)  # what Fernet raises for a token no key opens or a non-token


class Unreadable(Exception):
    """No configured key (SECRET_KEY or a fallback) opens the stored value."""


@functools.lru_cache(maxsize=16)
def _fernet_for(material: bytes) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(material)
    return Fernet(base64.urlsafe_b64encode(key))


def _material(secret_key: str | bytes) -> bytes:
    return secret_key.encode() if isinstance(secret_key, str) else bytes(secret_key)


def _box() -> MultiFernet:
    """The current key first (it encrypts), then each fallback (they only decrypt)."""
    cfg = current_app.config
    keys = [cfg["SECRET_KEY"], *(cfg.get("SECRET_KEY_FALLBACKS") or ())]
    return MultiFernet([_fernet_for(_material(k)) for k in keys if k])


def encrypt(plaintext: str) -> bytes:
    return _box().encrypt(plaintext.encode())


def decrypt(token: bytes) -> str:
    try:
        return _box().decrypt(bytes(token)).decode()
    except BAD_TOKEN:
        raise Unreadable("no configured key opens it (SECRET_KEY changed without the old one in "
                         "ZENTRO_SECRET_KEY_FALLBACKS?)") from None


# --- re-encrypting what is stored --------------------------------------------------------------------

@dataclass
class RotationResult:
    table: str
    rotated: int = 0
    changed_meanwhile: int = 0
    unreadable: list[int] = field(default_factory=list)

    def line(self) -> str:
        text = f"{self.table}: {self.rotated} re-encrypted under the current SECRET_KEY"
        if self.changed_meanwhile:
            text += f", {self.changed_meanwhile} changed meanwhile (already current)"
        if self.unreadable:
            ids = ", ".join(map(str, self.unreadable))
            text += f"; {len(self.unreadable)} unreadable with every configured key (ids {ids}): set them again"
        return text


def _stored_columns():
    from zentro.connectors.models import Integration
    from zentro.notify.models import WebhookEndpoint

    return ((WebhookEndpoint, WebhookEndpoint.secret_ciphertext), (Integration, Integration.secrets_ciphertext))


def rotate_stored(batch: int = 500) -> list[RotationResult]:
    """Re-encrypt every stored secret under the current SECRET_KEY (MultiFernet.rotate). Each row is
    written only if it still holds the value that was read (compare and set), so a secret changed
    through the app meanwhile is never overwritten with the old one. Unreadable rows are left as they are
    and reported by id. Safe to run again, and while the app serves requests."""
    from sqlalchemy import select, update

    from zentro.extensions import db

    box = _box()
    results = []
    for model, column in _stored_columns():
        result = RotationResult(model.__tablename__)
        last_id = 0
        while True:
            rows = db.session.execute(select(model.id, column).where(model.id > last_id, column.is_not(None))
                                      .order_by(model.id).limit(batch)).all()
            if not rows:
                break
            for row_id, token in rows:
                last_id = row_id
                try:
                    fresh = box.rotate(bytes(token))
                except BAD_TOKEN:
                    result.unreadable.append(row_id)
                    continue
                done = db.session.execute(update(model).where(model.id == row_id, column == token)
                                          .values({column.key: fresh}).execution_options(synchronize_session=False))
                if done.rowcount == 1:
                    result.rotated += 1
                else:
                    result.changed_meanwhile += 1
            db.session.commit()
        results.append(result)
    return results
