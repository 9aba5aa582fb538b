"""Ed25519 signing of bundle manifests.

The private key comes from ZENTRO_BUNDLE_SIGNING_KEY (PEM, PKCS#8) or, when that is unset, from
``instance/bundle-signing-key.pem``, generated on first use. Generation is race-free across worker
processes: each candidate key is written to its own temporary file (mode 0600) and hard-linked into
place, which fails when another worker got there first, so every worker ends up with the same key.
With several hosts, set ZENTRO_BUNDLE_SIGNING_KEY (one key for all) instead.

Anyone holding the public key (``GET /api/governance/compliance/bundles/public-key``, and a copy in
each bundle) can verify a manifest; only the holder of the private key can sign one.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flask import current_app

KEY_FILENAME = "bundle-signing-key.pem"


class SigningKeyError(Exception):
    """The configured key is not an Ed25519 PKCS#8 PEM private key."""


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """First 16 hex characters of SHA-256 over the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_pem_of(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def parse_private_pem(pem: str | bytes) -> Ed25519PrivateKey:
    if isinstance(pem, str):
        pem = pem.replace("\\n", "\n").strip().encode()  # env files often carry the PEM on one line
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"The bundle signing key is not a readable unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError("The bundle signing key must be an Ed25519 key (PKCS#8 PEM).")
    return key


def parse_public_pem(pem: str | bytes) -> Ed25519PublicKey:
    """The Ed25519 public key in a PEM (a private key PEM is accepted too; its public half is used)."""
    if isinstance(pem, str):
        pem = pem.encode()
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, binascii.Error):
        try:
            key = serialization.load_pem_private_key(pem, password=None).public_key()
        except (ValueError, TypeError, binascii.Error):
            raise SigningKeyError("Not a PEM public key.") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError("The public key is not an Ed25519 key.")
    return key


def load_or_create_key_file(path: str | os.PathLike) -> Ed25519PrivateKey:
    """Read the key at ``path``; when absent, create it exactly once (first writer wins)."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(private_key_pem(Ed25519PrivateKey.generate()))
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # atomic, and refuses to replace a key another worker created
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    return parse_private_pem(path.read_bytes())


_cache: dict[tuple, Ed25519PrivateKey] = {}
_cache_lock = threading.Lock()


def _key_path(app) -> Path:
    return Path(app.instance_path) / KEY_FILENAME


def signing_key(app=None) -> Ed25519PrivateKey:
    """The app's private signing key (cached per configured value / key file)."""
    app = app or current_app
    configured = app.config.get("ZENTRO_BUNDLE_SIGNING_KEY") or ""
    marker = ("env", configured) if configured else ("file", str(_key_path(app)))
    with _cache_lock:
        key = _cache.get(marker)
        if key is None:
            key = parse_private_pem(configured) if configured else load_or_create_key_file(_key_path(app))
            _cache[marker] = key
        return key


def public_key_pem(app=None) -> bytes:
    return public_pem_of(signing_key(app))


def key_id(app=None) -> str:
    return key_id_of(signing_key(app).public_key())


def sign(data: bytes, app=None, *, key: Ed25519PrivateKey | None = None) -> str:
    """Base64 Ed25519 signature over ``data``."""
    return base64.b64encode((key or signing_key(app)).sign(data)).decode()


def verify(pub_pem: str | bytes | Ed25519PublicKey, data: bytes, sig: str | bytes) -> bool:
    """True when ``sig`` (base64) is a valid signature of ``data`` under the public key."""
    try:
        pub = pub_pem if isinstance(pub_pem, Ed25519PublicKey) else parse_public_pem(pub_pem)
        raw = base64.b64decode(sig.strip() if isinstance(sig, (str, bytes)) else sig, validate=True)
        pub.verify(raw, data)
        return True
    except (InvalidSignature, SigningKeyError, binascii.Error, ValueError):
        return False
