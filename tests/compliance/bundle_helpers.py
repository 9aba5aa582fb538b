"""Helpers for the bundle tests: an isolated artifact store and signing key, ZIP surgery for the tamper
tests (rewrite, drop, add, raw byte flips, manifest edits, re-signing with another key), a local webhook
receiver, and ``make_evidence_bundle`` (the tenant-isolation harness factory)."""
from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import io
import json
import threading
import zipfile
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from zentro.compliance import signing
from zentro.compliance.bundles import MANIFEST, PUBLIC_KEY, SIGNATURE, canonical_json
from zentro.extensions import db

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)


def new_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def bundle_env(app, tmp_path, monkeypatch):
    """A private artifact store and a fresh signing key for this test (never instance/)."""
    key = new_key()
    storage_dir = tmp_path / "storage"
    monkeypatch.setitem(app.config, "ZENTRO_STORAGE_DIR", str(storage_dir))
    monkeypatch.setitem(app.config, "ZENTRO_BUNDLE_SIGNING_KEY", signing.private_key_pem(key).decode())
    monkeypatch.setitem(app.config, "ZENTRO_BUNDLE_CRON_SECRET", None)
    monkeypatch.setitem(app.config, "ZENTRO_WEBHOOK_ALLOW_PRIVATE", False)
    return SimpleNamespace(key=key, public_pem=signing.public_pem_of(key), key_id=signing.key_id_of(key.public_key()),
                           storage_dir=storage_dir, tmp=tmp_path)


def stored_files(env) -> list[str]:
    return sorted(str(p.relative_to(env.storage_dir)) for p in env.storage_dir.rglob("*") if p.is_file()) \
        if env.storage_dir.exists() else []


# --- ZIP surgery ------------------------------------------------------------------------------------------

def entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def manifest_of(data: bytes) -> dict:
    return json.loads(entries(data)[MANIFEST])


def write_zip(files: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, content in files:
            zf.writestr(name, content)
    return buf.getvalue()


def rewrite_zip(data: bytes, replace: dict[str, bytes] | None = None, drop: tuple[str, ...] = (),
                add: dict[str, bytes] | None = None) -> bytes:
    """A copy of the ZIP with some entries' content replaced, some dropped, some added (valid CRCs:
    only the manifest can tell)."""
    replace, add = replace or {}, add or {}
    files = [(name, replace.get(name, content)) for name, content in entries(data).items() if name not in drop]
    return write_zip(files + list(add.items()))


def change_one_byte(content: bytes, at: int = -2) -> bytes:
    b = bytearray(content)
    b[at] ^= 0x01
    return bytes(b)


def flip_raw_byte(data: bytes, name: str) -> bytes:
    """Flip one byte inside ``name``'s stored (compressed) data in the ZIP file itself."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo(name)
    buf = bytearray(data)
    header = info.header_offset
    name_len = int.from_bytes(buf[header + 26:header + 28], "little")
    extra_len = int.from_bytes(buf[header + 28:header + 30], "little")
    start = header + 30 + name_len + extra_len
    buf[start + info.compress_size // 2] ^= 0xFF
    return bytes(buf)


def edit_manifest(data: bytes, change) -> bytes:
    """Apply ``change(manifest)`` and write it back canonically, keeping the old signature."""
    manifest = manifest_of(data)
    change(manifest)
    return rewrite_zip(data, replace={MANIFEST: canonical_json(manifest)})


def resign(data: bytes, key: Ed25519PrivateKey) -> bytes:
    """What a forger would do: swap in their public key, fix its hash and the key id, sign again."""
    pem = signing.public_pem_of(key)
    manifest = manifest_of(data)
    for f in manifest["files"]:
        if f["path"] == PUBLIC_KEY:
            f["sha256"], f["size"] = hashlib.sha256(pem).hexdigest(), len(pem)
    manifest["key_id"] = signing.key_id_of(key.public_key())
    body = canonical_json(manifest)
    return rewrite_zip(data, replace={MANIFEST: body, PUBLIC_KEY: pem,
                                      SIGNATURE: (signing.sign(body, key=key) + "\n").encode()})


# --- data ---------------------------------------------------------------------------------------------

def seed_audit(org_id: int, when: list[dt.datetime], action: str = "test.event", tags=("SOC2:CC7.2",)) -> None:
    from zentro.audit.service import SYSTEM, record

    for moment in when:
        record(org_id, action, SYSTEM, target_type="probe", target_id=moment.isoformat(), control_tags=tags, now=moment)
    db.session.commit()


def stored_bytes(app, bundle_id: int) -> bytes:
    from zentro.compliance.models import EvidenceBundle
    from zentro.platform.storage import get_storage

    with app.app_context():
        row = db.session.get(EvidenceBundle, bundle_id)
        data = get_storage(app).read(row.storage_key)
        db.session.remove()
    return data


def make_evidence_bundle(org_id: int, label: str = "ALPHA-PRIVATE") -> int:
    """Tenant-isolation factory: one committed 7-day evidence bundle of the org (created_by = label,
    so a leak of it is visible in another org's responses). Needs an app context."""
    from zentro.audit.service import Actor
    from zentro.compliance.bundles import create_bundle

    return create_bundle(org_id, Actor("system", "", label), "7d").id


# --- a real webhook receiver ------------------------------------------------------------------------------

class Receiver:
    """An HTTP server on 127.0.0.1 in a thread that records each POST and answers ``status``."""

    def __init__(self, status: int = 200):
        self.status, self.calls = status, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.calls.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(outer.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/bundles"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def set_webhook(app, org_id: int, url: str) -> None:
    from zentro.audit.models import OrgGovernance

    with app.app_context():
        gov = db.session.get(OrgGovernance, org_id) or OrgGovernance(org_id=org_id)
        gov.bundle_webhook_url = url
        db.session.add(gov)
        db.session.commit()
        db.session.remove()
