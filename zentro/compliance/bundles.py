"""Tamper-evident evidence bundles and the assessor workbook.

A bundle is a ZIP holding evidence files, a ``README.txt``, the signer's ``public_key.pem`` and a
``manifest.json`` that lists the SHA-256 and size of every other file, with the org, the bundle's
sequence number, its window and the hash of the org's previous bundle's manifest (the chain).
``manifest.sig`` is a base64 Ed25519 signature over the exact bytes of ``manifest.json``.
One writer (``SignedZipWriter`` / ``build_signed_zip``) produces every signed ZIP, bundles and
workbooks alike, and one verifier (``verify_bundle_bytes``) checks them online and offline
(``zentro verify-bundle``), naming every problem it finds.

Creation takes the org lock (``zentro.audit.service.lock_org``) before it picks the sequence
number, so concurrent creations get distinct, consecutive numbers and each links to the one before.
The evidence files (the expensive part) are written before the lock is taken.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import re
import tempfile
import uuid
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterable, Iterator

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flask import current_app
from sqlalchemy import func, select

from zentro.accounts.models import Org
from zentro.audit.models import AuditEvent, OrgGovernance
from zentro.audit.service import EXPORT_COLUMNS, Actor, lock_org, record, verify_chain
from zentro.compliance import signing
from zentro.compliance.models import EvidenceBundle, Policy
from zentro.extensions import db
from zentro.notify import events
from zentro.platform.errors import ApiError, not_found
from zentro.platform.storage import CHUNK, StorageError, get_storage
from zentro.platform.types import iso, utcnow

FORMAT = "zentro-evidence-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "public_key.pem"
README = "README.txt"
RESERVED = (MANIFEST, SIGNATURE)  # the only files the manifest does not list
WINDOWS = {"7d": 7, "30d": 30, "90d": 90, "365d": 365}
MAX_PERIOD_DAYS = 730
CONTROL_TAGS = ("SOC2:CC4.1", "ISO27001:A.5.35")
KINDS = ("evidence", "workbook")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PATH = re.compile(r"^[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*$")
MAX_MANIFEST_BYTES = 16 << 20


def canonical_json(obj) -> bytes:
    """The one serialisation of a manifest: sorted keys, no spaces, ASCII."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def window_days(value: int | str) -> int:
    """``30`` or ``"30d"`` → 30 days (1..730)."""
    if isinstance(value, str):
        if value not in WINDOWS:
            raise ApiError(400, f"window must be one of {', '.join(WINDOWS)}.")
        return WINDOWS[value]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PERIOD_DAYS:
        raise ApiError(400, f"periodDays must be a whole number from 1 to {MAX_PERIOD_DAYS}.")
    return value


# --- writing ---------------------------------------------------------------------------------------

def _chunks(data: bytes | str | Iterable[bytes | str]) -> Iterator[bytes]:
    if isinstance(data, (bytes, bytearray)):
        yield bytes(data)
        return
    if isinstance(data, str):
        yield data.encode()
        return
    for chunk in data:
        if chunk:
            yield chunk.encode() if isinstance(chunk, str) else bytes(chunk)


class SignedZipWriter:
    """Writes a signed ZIP into ``fileobj``: ``add`` each file (bytes or an iterable of chunks,
    streamed and hashed on the way in), then ``finish`` with the manifest header and the key."""

    def __init__(self, fileobj: BinaryIO, created_at: dt.datetime):
        self._zf = zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_DEFLATED)
        self._stamp = tuple(max(created_at.astimezone(dt.timezone.utc).timetuple()[:6], (1980, 1, 1, 0, 0, 0)))
        self.files: list[dict] = []

    def add(self, path: str, data: bytes | str | Iterable[bytes | str]) -> dict:
        if not _PATH.match(path) or any(part in (".", "..") for part in path.split("/")) or path in RESERVED:
            raise ValueError(f"invalid bundle path {path!r}")
        if any(f["path"] == path for f in self.files):
            raise ValueError(f"duplicate bundle path {path!r}")
        info = zipfile.ZipInfo(path, self._stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        digest, size = hashlib.sha256(), 0
        streamed = not isinstance(data, (bytes, bytearray, str))
        with self._zf.open(info, "w", force_zip64=streamed) as out:
            for chunk in _chunks(data):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        entry = {"path": path, "sha256": digest.hexdigest(), "size": size}
        self.files.append(entry)
        return entry

    def finish(self, header: dict, key: Ed25519PrivateKey) -> tuple[bytes, str]:
        """Add public_key.pem, then manifest.json (header + key_id + files) and manifest.sig.
        Returns (manifest bytes, base64 signature)."""
        if not any(f["path"] == PUBLIC_KEY for f in self.files):
            self.add(PUBLIC_KEY, signing.public_pem_of(key))
        manifest = {**header, "format": FORMAT, "format_version": FORMAT_VERSION,
                    "key_id": signing.key_id_of(key.public_key()),
                    "files": sorted(self.files, key=lambda f: f["path"])}
        manifest_bytes = canonical_json(manifest)
        signature = signing.sign(manifest_bytes, key=key)
        for path, data in ((MANIFEST, manifest_bytes), (SIGNATURE, (signature + "\n").encode())):
            info = zipfile.ZipInfo(path, self._stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            self._zf.writestr(info, data)
        self._zf.close()
        return manifest_bytes, signature


def build_signed_zip(entries: Iterable[tuple[str, bytes | str | Iterable[bytes]]], header: dict,
                     key: Ed25519PrivateKey, created_at: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """Any signed ZIP from (path, content) entries. Returns (zip bytes, manifest bytes)."""
    buf = io.BytesIO()
    writer = SignedZipWriter(buf, created_at or utcnow())
    for path, data in entries:
        writer.add(path, data)
    manifest_bytes, _ = writer.finish(header, key)
    return buf.getvalue(), manifest_bytes


# --- evidence files ----------------------------------------------------------------------------------

def audit_csv(org_id: int, start: dt.datetime, end: dt.datetime, counts: dict) -> Iterator[bytes]:
    """The org's audit rows with start <= created_at <= end as CSV (the /api/audit/export columns),
    oldest first, in constant memory; ``counts["audit_events"]`` is the number of rows written."""
    import csv

    query = (select(*[getattr(AuditEvent, c) for c in EXPORT_COLUMNS])
             .where(AuditEvent.org_id == org_id, AuditEvent.created_at >= start, AuditEvent.created_at <= end)
             .order_by(AuditEvent.seq).execution_options(yield_per=1000, stream_results=True))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(EXPORT_COLUMNS)
    n = 0
    for n, row in enumerate(db.session.execute(query), 1):
        values = list(row)
        values[2] = iso(values[2])
        writer.writerow(values)
        if n % 1000 == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    counts["audit_events"] = n
    yield buf.getvalue().encode()


def policies_json(org_id: int, counts: dict) -> bytes:
    rows = db.session.scalars(select(Policy).where(Policy.org_id == org_id, Policy.status == "accepted")
                              .order_by(Policy.id)).all()
    counts["accepted_policies"] = len(rows)
    return json.dumps({"policies": [{
        "id": p.id, "name": p.name, "description": p.description, "status": p.status,
        "control_tags": p.control_tags.split(), "actions": p.actions, "source": p.source,
        "accepted_at": iso(p.accepted_at), "accepted_by_id": p.accepted_by_id,
    } for p in rows]}, indent=2, sort_keys=True).encode()


def chain_json(org_id: int, now: dt.datetime) -> bytes:
    result = verify_chain(org_id)
    return json.dumps({"org_id": org_id, "verified_at": iso(now), "ok": result.ok, "rows_checked": result.checked,
                       "broken_seq": result.broken_seq, "broken_id": result.broken_id, "reason": result.reason},
                      indent=2, sort_keys=True).encode()


def readme(kind: str, org: Org, seq: int, start: dt.datetime, end: dt.datetime, paths: list[str]) -> bytes:
    title = "Zentro assessor workbook" if kind == "workbook" else "Zentro evidence bundle"
    listing = "\n".join(f"  {p}" for p in sorted({*paths, README, PUBLIC_KEY, MANIFEST, SIGNATURE}))
    return f"""{title} #{seq} for {org.name} (org id {org.id})
Window: {iso(start)} to {iso(end)}

What is inside
{listing}

  evidence/audit_events.csv         the organisation's audit log rows in the window, oldest first,
                                    with each row's hash-chain fields (prev_hash, hash)
  evidence/policies.json            accepted policies and the control tags they evidence
  evidence/chain_verification.json  the result of verifying the whole audit hash chain at creation
  crosswalk/, assessments/          (workbooks) the control crosswalk and every framework assessment
  manifest.json                     SHA-256 and size of every other file, the org, this bundle's
                                    number, its window and prev_manifest_sha256: the SHA-256 of the
                                    previous bundle's manifest.json ("" for the first bundle)
  manifest.sig                      base64 Ed25519 signature over the exact bytes of manifest.json
  public_key.pem                    the signer's public key (key_id in the manifest = the first 16
                                    hex digits of SHA-256 over the raw 32-byte key)

How to verify offline
1. Get the organisation's public key from a trusted source, not from this ZIP:
   GET /api/governance/compliance/bundles/public-key (save it as trusted.pem).
2. With the zentro command (no database needed):
     zentro verify-bundle THIS.zip --public-key trusted.pem [--previous PREVIOUS.zip]
   It names every changed, missing or added file, a bad signature, a wrong key and a broken chain,
   and exits 0 only when everything checks out.
3. Or by hand, after unzipping:
     base64 -d manifest.sig > manifest.sig.bin
     openssl pkeyutl -verify -pubin -inkey trusted.pem -rawin -in manifest.json -sigfile manifest.sig.bin
     sha256sum <each file> and compare with "files" in manifest.json; no other files may be present
     sha256sum of the previous bundle's manifest.json must equal prev_manifest_sha256 here.
""".encode()


# --- creating ------------------------------------------------------------------------------------------

def _org(org_id: int) -> Org:
    org = db.session.get(Org, org_id)
    if org is None:
        raise not_found("Organisation")
    return org


def _spool_chunks(spool) -> Iterator[bytes]:
    spool.seek(0)
    while True:
        chunk = spool.read(CHUNK)
        if not chunk:
            return
        yield chunk


def _create(org_id: int, actor: Actor, days: int, now: dt.datetime | None, kind: str,
            extra: Callable[[dict], Iterable[tuple[str, bytes | Iterable[bytes]]]] | None = None) -> EvidenceBundle:
    if kind not in KINDS:
        raise ValueError(f"unknown bundle kind {kind!r}")
    now = now or utcnow()
    start = now - dt.timedelta(days=days)
    org = _org(org_id)
    key = signing.signing_key()
    storage = get_storage(current_app)
    counts: dict = {"audit_events": 0, "accepted_policies": 0}
    try:
        with tempfile.SpooledTemporaryFile(max_size=16 << 20) as spool:
            writer = SignedZipWriter(spool, now)
            writer.add("evidence/audit_events.csv", audit_csv(org_id, start, now, counts))
            writer.add("evidence/policies.json", policies_json(org_id, counts))
            writer.add("evidence/chain_verification.json", chain_json(org_id, now))
            for path, data in (extra(counts) if extra else ()):
                writer.add(path, data)
            # From here to the commit the org is locked: the sequence number and the link are decided.
            lock_org(org_id)
            prev = db.session.execute(select(EvidenceBundle.seq, EvidenceBundle.manifest_sha256)
                                      .where(EvidenceBundle.org_id == org_id)
                                      .order_by(EvidenceBundle.seq.desc()).limit(1)).first()
            seq = prev.seq + 1 if prev else 1
            prev_hash = prev.manifest_sha256 if prev else ""
            writer.add(README, readme(kind, org, seq, start, now, [f["path"] for f in writer.files]))
            header = {"kind": kind, "org": {"id": org.id, "name": org.name, "slug": org.slug}, "seq": seq,
                      "window": {"start": iso(start), "end": iso(now), "days": days}, "created_at": iso(now),
                      "created_by": actor.label, "prev_manifest_sha256": prev_hash, "counts": dict(sorted(counts.items()))}
            manifest_bytes, signature = writer.finish(header, key)
            storage_key = f"bundles/org-{org_id}/{seq:06d}-{kind}-{uuid.uuid4().hex[:12]}.zip"
            size, zip_sha = storage.put(storage_key, _spool_chunks(spool))
    except BaseException:
        db.session.rollback()  # releases the org lock; nothing was stored
        raise
    try:
        row = EvidenceBundle(
            org_id=org_id, seq=seq, kind=kind, window_start=start, window_end=now, created_at=now,
            created_by=actor.label[:320], storage_key=storage_key, size_bytes=size, zip_sha256=zip_sha,
            manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(), prev_manifest_sha256=prev_hash,
            signature=signature, key_id=signing.key_id_of(key.public_key()), file_count=len(writer.files),
            audit_event_count=counts["audit_events"])
        db.session.add(row)
        db.session.flush()
        record(org_id, "bundle.created", actor, target_type="evidence_bundle", target_id=row.id,
               control_tags=CONTROL_TAGS, now=now,
               data={"seq": seq, "kind": kind, "window_days": days, "manifest_sha256": row.manifest_sha256,
                     "prev_manifest_sha256": prev_hash, "files": row.file_count, "audit_events": row.audit_event_count,
                     "key_id": row.key_id})
        events.emit(org_id, "bundle.created", {"bundle": bundle_json(row)}, now=now)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        storage.delete(storage_key)
        raise
    return row


def create_bundle(org_id: int, actor: Actor, window: int | str, now: dt.datetime | None = None,
                  kind: str = "evidence") -> EvidenceBundle:
    """Build, sign, store and record the org's next evidence bundle over the last ``window`` days
    (an int 1..730 or "7d"/"30d"/"90d"/"365d"). Commits; returns the EvidenceBundle row."""
    return _create(org_id, actor, window_days(window), now, kind)


def _render(data) -> bytes | Iterable[bytes]:
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (dict, list)):
        return json.dumps(data, indent=2, default=str).encode()
    return _chunks(data)


def assessment_entries(org_id: int, period_days: int, now: dt.datetime) -> Iterator[tuple[str, bytes | Iterable[bytes]]]:
    """The crosswalk (csv) and every framework assessment (csv + json), from the report packs."""
    from zentro.compliance import packs, reporting

    for slug, pack in packs.PACKS.items():
        report = pack.build(org_id, period_days, now)
        if slug == "crosswalk":
            yield "crosswalk/crosswalk.csv", _render(reporting.render(report, "csv"))
            continue
        yield f"assessments/{slug}.csv", _render(reporting.render(report, "csv"))
        yield f"assessments/{slug}.json", _render(reporting.render(report, "json"))


def create_workbook(org_id: int, actor: Actor, period_days: int = 90, now: dt.datetime | None = None) -> EvidenceBundle:
    """The unified assessor workbook: the evidence pack, the crosswalk and every framework assessment,
    signed and chained like any bundle (kind "workbook"). Commits; returns the row."""
    days = window_days(period_days)
    now = now or utcnow()
    return _create(org_id, actor, days, now, "workbook", lambda counts: assessment_entries(org_id, days, now))


# --- delivery --------------------------------------------------------------------------------------------

def deliver_bundle(org_id: int, bundle_id: int, download_url: str, actor: Actor) -> EvidenceBundle:
    """POST the bundle's metadata and download URL to the org's bundle webhook and record the outcome
    on the row (delivered / failed with the reason / not_configured). Commits."""
    from zentro.platform.outbound import post_json

    row = get_bundle(org_id, bundle_id)
    gov = db.session.get(OrgGovernance, org_id)
    url = (gov.bundle_webhook_url if gov else "") or ""
    payload = {"event": "evidence_bundle.created", "org_id": org_id, "bundle": bundle_json(row), "download_url": download_url}
    db.session.commit()  # no transaction (and no SQLite write lock) is held while the call is in flight
    if not url:
        status, detail = "not_configured", "No bundle webhook URL is set for this organisation."
    else:
        ok, code, detail = post_json(url, payload)
        status = "delivered" if ok else "failed"
    row = get_bundle(org_id, bundle_id)
    row.webhook_url, row.webhook_status, row.webhook_detail = url[:500], status, detail[:500]
    record(org_id, f"bundle.webhook_{status}", actor, target_type="evidence_bundle", target_id=row.id,
           control_tags=CONTROL_TAGS, data={"seq": row.seq, "url": url, "detail": detail})
    db.session.commit()
    return row


# --- reading -------------------------------------------------------------------------------------------

def bundles_query(org_id: int):
    return select(EvidenceBundle).where(EvidenceBundle.org_id == org_id)


def get_bundle(org_id: int, bundle_id: int) -> EvidenceBundle:
    row = db.session.scalar(select(EvidenceBundle).where(EvidenceBundle.org_id == org_id, EvidenceBundle.id == bundle_id))
    if row is None:
        raise not_found("Evidence bundle")
    return row


def count_bundles(org_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(EvidenceBundle).where(EvidenceBundle.org_id == org_id)) or 0


def bundle_json(b: EvidenceBundle) -> dict:
    return {
        "id": b.id, "seq": b.seq, "kind": b.kind,
        "window": {"start": iso(b.window_start), "end": iso(b.window_end),
                   "days": round((b.window_end - b.window_start).total_seconds() / 86400)},
        "created_at": iso(b.created_at), "created_by": b.created_by,
        "size_bytes": b.size_bytes, "file_count": b.file_count, "audit_event_count": b.audit_event_count,
        "zip_sha256": b.zip_sha256, "manifest_sha256": b.manifest_sha256, "prev_manifest_sha256": b.prev_manifest_sha256,
        "key_id": b.key_id, "signature": b.signature,
        "webhook": {"url": b.webhook_url, "status": b.webhook_status, "detail": b.webhook_detail},
    }


def open_stored(b: EvidenceBundle) -> BinaryIO:
    return get_storage(current_app).open(b.storage_key)


def previous_of(b: EvidenceBundle) -> EvidenceBundle | None:
    return db.session.scalar(select(EvidenceBundle).where(EvidenceBundle.org_id == b.org_id,
                                                          EvidenceBundle.seq == b.seq - 1))


def verify_stored(b: EvidenceBundle) -> "VerifyReport":
    """A fresh verification of the stored ZIP: files, signature (against this server's current key),
    the manifest recorded at creation, and the link to the previous bundle of the org."""
    prev = previous_of(b)
    if b.seq == 1:
        expected_prev = ""
    elif prev is not None:
        expected_prev = prev.manifest_sha256
    else:
        expected_prev = None
    try:
        with open_stored(b) as fh:
            report = verify_bundle_bytes(fh, expected_prev=expected_prev, trusted_pub_pem=signing.public_key_pem(),
                                         expected_manifest_sha256=b.manifest_sha256)
    except (StorageError, BundleUnreadable) as exc:
        report = VerifyReport(problems=[Problem("missing" if isinstance(exc, StorageError) else "unreadable",
                                                b.storage_key, str(exc))])
    if expected_prev is None:
        report.problems.append(Problem("chain_broken", MANIFEST, f"the previous bundle (#{b.seq - 1}) of this "
                                                                  "organisation no longer exists"))
    if report.manifest is not None and report.manifest.get("seq") != b.seq:
        report.problems.append(Problem("manifest_altered", MANIFEST, f"the manifest says bundle #{report.manifest.get('seq')}, "
                                                                     f"this is bundle #{b.seq}"))
    return report


def quick_status(rows: list[EvidenceBundle], full_limit: int = 25 << 20) -> dict[int, tuple[str, str]]:
    """Per row a (state, text) badge for lists: a full verification for ZIPs up to ``full_limit``
    bytes, else only the stored artifact's presence and the chain link recorded in the database."""
    out: dict[int, tuple[str, str]] = {}
    storage = get_storage(current_app)
    for b in rows:
        if b.size_bytes <= full_limit:
            report = verify_stored(b)
            out[b.id] = ("ok", "Verified") if report.ok else ("bad", f"{len(report.problems)} problem"
                                                                     f"{'s' if len(report.problems) != 1 else ''}")
            continue
        prev = previous_of(b)
        linked = b.seq == 1 and b.prev_manifest_sha256 == "" or (prev is not None and prev.manifest_sha256 == b.prev_manifest_sha256)
        if not storage.exists(b.storage_key):
            out[b.id] = ("bad", "Artifact missing")
        elif not linked:
            out[b.id] = ("bad", "Chain broken")
        else:
            out[b.id] = ("unknown", "Open to verify")
    return out


# --- verifying -----------------------------------------------------------------------------------------

class BundleUnreadable(Exception):
    """Not a ZIP at all (or not readable): nothing can be checked."""


@dataclass
class Problem:
    kind: str  # changed | missing | added | duplicate | bad_signature | wrong_key | manifest_altered | chain_broken | unreadable
    path: str
    detail: str

    def line(self) -> str:
        label = {"changed": "CHANGED", "missing": "MISSING", "added": "ADDED", "duplicate": "DUPLICATE",
                 "bad_signature": "BAD SIGNATURE", "wrong_key": "WRONG KEY", "manifest_altered": "MANIFEST ALTERED",
                 "chain_broken": "CHAIN BROKEN", "unreadable": "UNREADABLE"}.get(self.kind, self.kind.upper())
        return f"{label}: {self.path}: {self.detail}"


@dataclass
class VerifyReport:
    problems: list[Problem] = field(default_factory=list)
    manifest: dict | None = None
    manifest_sha256: str = ""
    key_id: str = ""  # the key_id the manifest claims
    signer_key_id: str = ""  # the key the signature verified under ("" when it did not)
    trusted_key_id: str = ""  # the trusted key given, if any
    files_checked: int = 0
    chain_checked: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def of_kind(self, kind: str) -> list[str]:
        return [p.path for p in self.problems if p.kind == kind]

    def as_dict(self) -> dict:
        m = self.manifest or {}
        return {"ok": self.ok, "problems": [p.__dict__ for p in self.problems], "manifest_sha256": self.manifest_sha256,
                "seq": m.get("seq") if isinstance(m.get("seq"), int) and not isinstance(m.get("seq"), bool) else None,
                "key_id": self.key_id, "signer_key_id": self.signer_key_id,
                "trusted_key_id": self.trusted_key_id, "files_checked": self.files_checked,
                "chain_checked": self.chain_checked, "notes": self.notes}

    def lines(self) -> list[str]:
        return [p.line() for p in self.problems]


def _open_zip(data: bytes | BinaryIO) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise BundleUnreadable(f"not a readable ZIP file ({exc})") from None


def _hash_entry(zf: zipfile.ZipFile, name: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with zf.open(name) as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _read_small(zf: zipfile.ZipFile, name: str, limit: int = MAX_MANIFEST_BYTES) -> bytes:
    if zf.getinfo(name).file_size > limit:
        raise ValueError(f"{name} is larger than {limit} bytes")
    return zf.read(name)


def manifest_files(manifest) -> list[dict] | None:
    """The manifest's files list when well formed, else None."""
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list):
        return None
    for f in files:
        if not (isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("sha256"), str)
                and isinstance(f.get("size"), int) and not isinstance(f.get("size"), bool)):
            return None
    return files


def read_manifest(data: bytes | BinaryIO) -> tuple[str, dict]:
    """(SHA-256 of manifest.json, parsed manifest) of a bundle; BundleUnreadable when absent or broken."""
    with _open_zip(data) as zf:
        try:
            raw = _read_small(zf, MANIFEST)
            manifest = json.loads(raw)
        except KeyError:
            raise BundleUnreadable("it has no manifest.json") from None
        except (ValueError, zipfile.BadZipFile, zlib.error) as exc:
            raise BundleUnreadable(f"its manifest.json is not readable JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise BundleUnreadable("its manifest.json is not a JSON object")
    return hashlib.sha256(raw).hexdigest(), manifest


def _field(manifest: dict, *path: str):
    """manifest[a][b]... or None when any level is missing or not an object (manifests may be forged)."""
    value = manifest
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def _public_key(pem) -> Ed25519PublicKey | None:
    try:
        return signing.parse_public_pem(pem)
    except signing.SigningKeyError:
        return None


def verify_bundle_bytes(zip_data: bytes | BinaryIO, expected_prev: str | None = None,
                        trusted_pub_pem: str | bytes | None = None, *, previous: bytes | BinaryIO | None = None,
                        expected_manifest_sha256: str | None = None) -> VerifyReport:
    """Check a bundle and name EVERY problem: changed, missing and added files, duplicate entries, a bad
    signature, a wrong key (when ``trusted_pub_pem`` is given), a manifest that differs from the one
    recorded (``expected_manifest_sha256``) or cannot be read, and a broken chain: the manifest's
    prev_manifest_sha256 differs from ``expected_prev`` (or from the manifest hash of ``previous``,
    the org's preceding bundle, which must also be the same org and the previous number).

    Raises BundleUnreadable when ``zip_data`` (or ``previous``) is not a readable ZIP, and
    signing.SigningKeyError when ``trusted_pub_pem`` is not an Ed25519 public key."""
    trusted = signing.parse_public_pem(trusted_pub_pem) if trusted_pub_pem is not None else None
    prev_manifest = None
    if previous is not None:
        expected_prev, prev_manifest = read_manifest(previous)
    report = VerifyReport(trusted_key_id=signing.key_id_of(trusted) if trusted else "")
    add = report.problems.append
    with _open_zip(zip_data) as zf:
        names = [i.filename for i in zf.infolist()]
        for name, n in Counter(names).items():
            if n > 1:
                add(Problem("duplicate", name, f"the ZIP holds {n} entries with this name (only one can be the signed one)"))
        present = set(names)

        # The manifest
        manifest_bytes = None
        if MANIFEST not in present:
            add(Problem("missing", MANIFEST, "there is no manifest: nothing in this bundle can be verified"))
        else:
            try:
                manifest_bytes = _read_small(zf, MANIFEST)
            except (ValueError, zipfile.BadZipFile, zlib.error) as exc:
                add(Problem("manifest_altered", MANIFEST, f"cannot be read ({exc})"))
        manifest = None
        if manifest_bytes is not None:
            report.manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
            if expected_manifest_sha256 and report.manifest_sha256 != expected_manifest_sha256:
                add(Problem("manifest_altered", MANIFEST, f"its SHA-256 is {report.manifest_sha256}, but the manifest "
                                                          f"recorded when the bundle was made has {expected_manifest_sha256}"))
            try:
                manifest = json.loads(manifest_bytes)
            except ValueError as exc:
                add(Problem("manifest_altered", MANIFEST, f"is not valid JSON ({exc})"))
            if manifest is not None and manifest_files(manifest) is None:
                add(Problem("manifest_altered", MANIFEST, "has no well-formed files list [{path, sha256, size}]"))
                manifest = None
        report.manifest = manifest
        if manifest is not None:
            report.key_id = str(manifest.get("key_id", ""))

        # The signature and the key
        embedded = None
        if PUBLIC_KEY in present:
            try:
                embedded = _public_key(_read_small(zf, PUBLIC_KEY, 64 << 10))
            except (ValueError, zipfile.BadZipFile, zlib.error):
                embedded = None
            if embedded is None:
                add(Problem("bad_signature", PUBLIC_KEY, "is not an Ed25519 public key"))
        signature = None
        if SIGNATURE not in present:
            add(Problem("missing", SIGNATURE, "there is no signature: the manifest cannot be authenticated"))
        else:
            try:
                signature = _read_small(zf, SIGNATURE, 64 << 10).decode("ascii").strip()
                base64.b64decode(signature, validate=True)
            except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, zlib.error):
                add(Problem("bad_signature", SIGNATURE, "is not a base64 signature"))
                signature = None
        embedded_id = signing.key_id_of(embedded) if embedded else ""
        if trusted is not None:
            wrong = []
            if embedded is not None and embedded_id != report.trusted_key_id:
                wrong.append(f"public_key.pem is key {embedded_id}")
            if manifest is not None and report.key_id != report.trusted_key_id:
                wrong.append(f"the manifest names key {report.key_id or '(none)'}")
            if wrong:
                add(Problem("wrong_key", SIGNATURE, f"{' and '.join(wrong)}, not the trusted key {report.trusted_key_id}: "
                                                    "this bundle was signed by someone else"))
        else:
            report.notes.append("No trusted public key given: the signature was checked against the key inside the "
                                "bundle, which proves integrity but not who signed it. Pass the organisation's key.")
        verify_key = trusted or embedded
        if manifest_bytes is not None and signature is not None and verify_key is not None:
            if signing.verify(verify_key, manifest_bytes, signature):
                report.signer_key_id = signing.key_id_of(verify_key)
            elif trusted is not None and embedded is not None and embedded_id != report.trusted_key_id \
                    and signing.verify(embedded, manifest_bytes, signature):
                report.signer_key_id = embedded_id  # valid, but under the wrong key (reported above)
            else:
                add(Problem("bad_signature", MANIFEST, "manifest.sig is not a valid signature of manifest.json under "
                                                       f"key {signing.key_id_of(verify_key)}: the manifest was altered "
                                                       "after signing, or the signature was replaced"))
            if trusted is None and report.signer_key_id and report.key_id != report.signer_key_id:
                add(Problem("wrong_key", MANIFEST, f"the manifest names key {report.key_id or '(none)'} but was signed "
                                                   f"with key {report.signer_key_id}"))

        # The files
        if manifest is not None:
            listed = {}
            for f in manifest_files(manifest):
                listed[f["path"]] = f
            for path, f in sorted(listed.items()):
                if path not in present:
                    add(Problem("missing", path, "listed in the manifest but not in the ZIP"))
                    continue
                try:
                    digest, size = _hash_entry(zf, path)
                except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
                    add(Problem("changed", path, f"its stored data is corrupt ({exc})"))
                    continue
                report.files_checked += 1
                if digest != f["sha256"] or size != f["size"]:
                    add(Problem("changed", path, f"SHA-256 {digest} ({size} bytes) but the manifest says "
                                                 f"{f['sha256']} ({f['size']} bytes)"))
            for name in sorted(present):
                if name not in listed and name not in RESERVED:
                    add(Problem("added", name, "present in the ZIP but not listed in the manifest"))

            # The chain
            if expected_prev is not None:
                report.chain_checked = True
                claimed = manifest.get("prev_manifest_sha256")
                if claimed != expected_prev:
                    want = f"the previous bundle's manifest hash is {expected_prev}" if expected_prev else \
                        "this should be the organisation's first bundle (no previous manifest)"
                    add(Problem("chain_broken", MANIFEST, f"prev_manifest_sha256 is {claimed or '(empty)'} but {want}"))
            if prev_manifest is not None:
                if _field(prev_manifest, "org", "id") != _field(manifest, "org", "id"):
                    add(Problem("chain_broken", MANIFEST, "the previous bundle belongs to another organisation"))
                elif isinstance(prev_manifest.get("seq"), int) and isinstance(manifest.get("seq"), int) \
                        and manifest["seq"] != prev_manifest["seq"] + 1:
                    add(Problem("chain_broken", MANIFEST, f"this is bundle #{manifest['seq']} but the previous bundle "
                                                          f"given is #{prev_manifest['seq']}"))
    return report


@dataclass
class ChainReport:
    reports: list[VerifyReport]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)


def verify_chain_of_bundles(zips: list[bytes], trusted_pub_pem: str | bytes | None = None) -> ChainReport:
    """Verify bundles given oldest first: each on its own, and each against the one before it (same
    org, consecutive numbers, prev_manifest_sha256 = the previous manifest's hash). A list starting at
    bundle #1 also checks that the first has no predecessor."""
    reports = []
    for i, data in enumerate(zips):
        if i == 0:
            first_seq = None
            try:
                first_seq = read_manifest(data)[1].get("seq")
            except BundleUnreadable:
                pass
            reports.append(verify_bundle_bytes(data, expected_prev="" if first_seq == 1 else None,
                                               trusted_pub_pem=trusted_pub_pem))
        else:
            reports.append(verify_bundle_bytes(data, trusted_pub_pem=trusted_pub_pem, previous=zips[i - 1]))
    return ChainReport(reports)


# --- offline verification (zentro verify-bundle) ---------------------------------------------------------

def verify_files(bundle_path: str, public_key_path: str | None = None, previous_path: str | None = None) -> tuple[int, list[str]]:
    """What `zentro verify-bundle` does, without a database: returns (exit code, output lines).
    0 = everything checks out, 1 = at least one problem (each named), 2 = unreadable input."""
    def read(path: str, what: str) -> bytes:
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise BundleUnreadable(f"cannot read {what} {path}: {exc.strerror or exc}") from None

    try:
        data = read(bundle_path, "bundle")
        trusted = read(public_key_path, "public key") if public_key_path else None
        if trusted is not None:
            try:
                signing.parse_public_pem(trusted)
            except signing.SigningKeyError as exc:
                raise BundleUnreadable(f"{public_key_path}: {exc}") from None
        previous = read(previous_path, "previous bundle") if previous_path else None
        if previous is not None:
            try:
                read_manifest(previous)
            except BundleUnreadable as exc:
                raise BundleUnreadable(f"previous bundle {previous_path}: {exc}") from None
        try:
            report = verify_bundle_bytes(data, trusted_pub_pem=trusted, previous=previous)
        except BundleUnreadable as exc:
            raise BundleUnreadable(f"{bundle_path}: {exc}") from None
    except BundleUnreadable as exc:
        return 2, [f"ERROR: {exc}"]
    m = report.manifest or {}

    def show(*path: str) -> str:
        value = _field(m, *path)
        return "?" if value is None else str(value)[:200]

    head = (f"{bundle_path}: {show('kind')} #{show('seq')} of {show('org', 'name')} (org {show('org', 'id')}), "
            f"window {show('window', 'start')} to {show('window', 'end')}")
    lines = [head]
    lines += [f"note: {n}" for n in report.notes]
    if report.ok:
        chain = (" and links to the previous bundle" if previous is not None else "") if report.chain_checked else ""
        signer = f"key {report.signer_key_id}" + (" (the trusted key)" if trusted is not None else "")
        lines.append(f"OK: {report.files_checked} files match the manifest; the signature is valid under {signer}{chain}.")
        if previous is None and m.get("prev_manifest_sha256"):
            lines.append("note: pass --previous PREVIOUS.zip to check the link to the previous bundle.")
        return 0, lines
    lines += report.lines()
    lines.append(f"FAILED: {len(report.problems)} problem{'s' if len(report.problems) != 1 else ''} found.")
    return 1, lines
