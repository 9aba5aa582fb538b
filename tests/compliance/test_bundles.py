"""Evidence bundles through the service layer: what a bundle holds, the chain, every kind of tampering
named by the verifier, concurrent creation, the artifact store, the signing key and webhook delivery."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
import threading

import pytest
import sqlalchemy as sa

from zentro.audit.models import AuditEvent
from zentro.audit.service import Actor
from zentro.compliance import bundles, signing
from zentro.compliance.bundles import (BundleUnreadable, create_bundle, verify_bundle_bytes,
                                       verify_chain_of_bundles)
from zentro.compliance.models import EvidenceBundle, Policy
from zentro.extensions import db
from zentro.platform import outbound
from zentro.platform.errors import ApiError
from zentro.platform.storage import LocalStorage, StorageError, get_storage, validate_key

from .bundle_helpers import (NOW, Receiver, bundle_env, change_one_byte, edit_manifest, entries, flip_raw_byte,  # noqa: F401
                             make_evidence_bundle, manifest_of, new_key, receiver, resign, rewrite_zip, seed_audit,
                             set_webhook, stored_bytes, stored_files)

ALICE = Actor("user", "1", "alice@alpha.example")
EXPECTED_FILES = ["README.txt", "evidence/audit_events.csv", "evidence/chain_verification.json",
                  "evidence/policies.json", "public_key.pem"]


@pytest.fixture
def org(make_member):
    return make_member("alpha", "owner")


def _bundle(app, org_id: int, window="30d", now=NOW) -> tuple[int, bytes]:
    with app.app_context():
        row_id = create_bundle(org_id, ALICE, window, now=now).id
        db.session.remove()
    return row_id, stored_bytes(app, row_id)


def _chain(app, org_id: int, n: int) -> list[bytes]:
    return [_bundle(app, org_id, now=NOW + dt.timedelta(days=i))[1] for i in range(n)]


# --- what a bundle holds ---------------------------------------------------------------------------------

def test_bundle_holds_the_windows_evidence_signed_and_recorded(app, org, bundle_env):
    with app.app_context():
        seed_audit(org.org_id, [NOW - dt.timedelta(days=40), NOW - dt.timedelta(days=10), NOW - dt.timedelta(hours=1),
                                NOW + dt.timedelta(hours=1)])
        db.session.add_all([
            Policy(org_id=org.org_id, name="Change approval", status="accepted", control_tags="SOC2:CC8.1 ISO27001:A.8.32",
                   accepted_at=NOW),
            Policy(org_id=org.org_id, name="Draft idea", status="draft", control_tags="SOC2:CC1.1")])
        db.session.commit()
        events_before = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
        row = create_bundle(org.org_id, ALICE, "30d", now=NOW)
        row_id, manifest_sha, zip_sha, size = row.id, row.manifest_sha256, row.zip_sha256, row.size_bytes
        db.session.remove()
    data = stored_bytes(app, row_id)
    files = entries(data)
    manifest = json.loads(files["manifest.json"])

    assert sorted(files) == sorted(EXPECTED_FILES + ["manifest.json", "manifest.sig"])
    assert [f["path"] for f in manifest["files"]] == EXPECTED_FILES
    for f in manifest["files"]:
        assert f["sha256"] == hashlib.sha256(files[f["path"]]).hexdigest() and f["size"] == len(files[f["path"]])
    assert manifest["seq"] == 1 and manifest["prev_manifest_sha256"] == "" and manifest["kind"] == "evidence"
    assert manifest["org"] == {"id": org.org_id, "name": manifest["org"]["name"], "slug": "alpha"}
    assert manifest["window"] == {"start": "2026-01-31T12:00:00Z", "end": "2026-03-02T12:00:00Z", "days": 30}
    assert manifest["key_id"] == bundle_env.key_id and manifest["counts"]["audit_events"] == 2
    assert files["manifest.json"] == bundles.canonical_json(manifest)
    assert signing.verify(bundle_env.public_pem, files["manifest.json"], files["manifest.sig"].decode())
    assert files["public_key.pem"] == bundle_env.public_pem

    csv_lines = files["evidence/audit_events.csv"].decode().splitlines()
    assert csv_lines[0].startswith("seq,id,created_at,actor_type") and len(csv_lines) == 3  # 40 d ago and later-than-now left out
    assert "2026-02-20T12:00:00Z" in csv_lines[1] and "2026-03-02T11:00:00Z" in csv_lines[2]
    policies = json.loads(files["evidence/policies.json"])["policies"]
    assert [(p["name"], p["control_tags"]) for p in policies] == [("Change approval", ["SOC2:CC8.1", "ISO27001:A.8.32"])]
    chain = json.loads(files["evidence/chain_verification.json"])
    assert chain["ok"] is True and chain["rows_checked"] == events_before
    readme = files["README.txt"].decode()
    assert "zentro verify-bundle" in readme and "openssl pkeyutl -verify" in readme

    assert manifest_sha == hashlib.sha256(files["manifest.json"]).hexdigest()
    assert zip_sha == hashlib.sha256(data).hexdigest() and size == len(data)
    with app.app_context():
        event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "bundle.created")).one()
        assert event.control_tags == "ISO27001:A.5.35 SOC2:CC4.1" and event.target_id == str(row_id)
        assert json.loads(event.data)["manifest_sha256"] == manifest_sha
    assert verify_bundle_bytes(data, expected_prev="", trusted_pub_pem=bundle_env.public_pem).ok


def test_bundles_chain_per_org_and_orgs_do_not_share_a_chain(app, org, make_member, bundle_env):
    other = make_member("bravo", "owner")
    first, second = _chain(app, org.org_id, 2)
    _, bravo_first = _bundle(app, other.org_id)
    m1, m2, mb = manifest_of(first), manifest_of(second), manifest_of(bravo_first)
    assert (m1["seq"], m2["seq"], mb["seq"]) == (1, 2, 1)
    assert m2["prev_manifest_sha256"] == hashlib.sha256(entries(first)["manifest.json"]).hexdigest()
    assert mb["prev_manifest_sha256"] == ""
    report = verify_bundle_bytes(second, trusted_pub_pem=bundle_env.public_pem, previous=first)
    assert report.ok and report.chain_checked
    crossed = verify_bundle_bytes(second, trusted_pub_pem=bundle_env.public_pem, previous=bravo_first)
    assert crossed.of_kind("chain_broken") and "another organisation" in crossed.problems[-1].detail


@pytest.mark.parametrize("bad", ["14d", "", 0, 731, -1, True, 2.5])
def test_bad_windows_are_refused_and_nothing_is_stored(app, org, bundle_env, bad):
    with app.app_context():
        with pytest.raises(ApiError) as err:
            create_bundle(org.org_id, ALICE, bad, now=NOW)
        assert err.value.status == 400
        assert db.session.scalar(sa.select(sa.func.count()).select_from(EvidenceBundle)) == 0
    assert stored_files(bundle_env) == []


def test_a_failed_commit_leaves_no_artifact_and_no_row(app, org, bundle_env, monkeypatch):
    def boom(*a, **kw):
        raise RuntimeError("audit write failed")

    monkeypatch.setattr(bundles, "record", boom)
    with app.app_context():
        with pytest.raises(RuntimeError):
            create_bundle(org.org_id, ALICE, "7d", now=NOW)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(EvidenceBundle)) == 0
    assert stored_files(bundle_env) == []


# --- tampering: each detected and named -------------------------------------------------------------------

def test_changing_one_byte_of_one_file_names_that_file(app, org, bundle_env):
    _, data = _bundle(app, org.org_id)
    csv = entries(data)["evidence/audit_events.csv"]
    report = verify_bundle_bytes(rewrite_zip(data, replace={"evidence/audit_events.csv": change_one_byte(csv)}),
                                 trusted_pub_pem=bundle_env.public_pem)
    assert not report.ok
    assert [(p.kind, p.path) for p in report.problems] == [("changed", "evidence/audit_events.csv")]
    assert report.signer_key_id == bundle_env.key_id  # the manifest itself is intact


def test_a_flipped_byte_inside_the_zip_data_is_named_too(app, org, bundle_env):
    _, data = _bundle(app, org.org_id)
    report = verify_bundle_bytes(flip_raw_byte(data, "evidence/policies.json"), trusted_pub_pem=bundle_env.public_pem)
    assert [(p.kind, p.path) for p in report.problems] == [("changed", "evidence/policies.json")]


def test_dropping_a_file_names_it_missing(app, org, bundle_env):
    _, data = _bundle(app, org.org_id)
    report = verify_bundle_bytes(rewrite_zip(data, drop=("evidence/chain_verification.json",)),
                                 trusted_pub_pem=bundle_env.public_pem)
    assert [(p.kind, p.path) for p in report.problems] == [("missing", "evidence/chain_verification.json")]


def test_adding_a_file_names_it_added(app, org, bundle_env):
    _, data = _bundle(app, org.org_id)
    report = verify_bundle_bytes(rewrite_zip(data, add={"evidence/extra.csv": b"planted,row\n"}),
                                 trusted_pub_pem=bundle_env.public_pem)
    assert [(p.kind, p.path) for p in report.problems] == [("added", "evidence/extra.csv")]


def test_a_second_entry_with_a_signed_name_is_named_a_duplicate(app, org, bundle_env):
    _, data = _bundle(app, org.org_id)
    files = list(entries(data).items()) + [("evidence/policies.json", b'{"policies": []}')]
    from .bundle_helpers import write_zip

    with pytest.warns(UserWarning):  # zipfile warns about the duplicate name, as it should
        planted = write_zip(files)
    report = verify_bundle_bytes(planted, trusted_pub_pem=bundle_env.public_pem)
    assert ("duplicate", "evidence/policies.json") in [(p.kind, p.path) for p in report.problems]


def test_every_problem_is_named_not_just_the_first(app, org, bundle_env):
    _, data = _bundle(app, org.org_id)
    files = entries(data)
    tampered = rewrite_zip(data, replace={"README.txt": files["README.txt"] + b"edited"},
                           drop=("evidence/policies.json",), add={"notes.txt": b"hi", "evidence/x.json": b"{}"})
    report = verify_bundle_bytes(tampered, trusted_pub_pem=bundle_env.public_pem)
    assert sorted((p.kind, p.path) for p in report.problems) == [
        ("added", "evidence/x.json"), ("added", "notes.txt"), ("changed", "README.txt"),
        ("missing", "evidence/policies.json")]


def test_editing_the_manifest_fails_the_signature(app, org, bundle_env):
    _, data = _bundle(app, org.org_id)
    # hide a changed file by updating its hash in the manifest: the signature catches it
    csv = change_one_byte(entries(data)["evidence/audit_events.csv"])

    def cover_up(m):
        for f in m["files"]:
            if f["path"] == "evidence/audit_events.csv":
                f["sha256"] = hashlib.sha256(csv).hexdigest()

    tampered = rewrite_zip(edit_manifest(data, cover_up), replace={"evidence/audit_events.csv": csv})
    report = verify_bundle_bytes(tampered, trusted_pub_pem=bundle_env.public_pem)
    assert [(p.kind, p.path) for p in report.problems] == [("bad_signature", "manifest.json")]
    # without a trusted key the embedded key is used, and the edit is still caught
    assert verify_bundle_bytes(tampered).of_kind("bad_signature") == ["manifest.json"]
    # an edit to any manifest field, e.g. the window, is caught the same way
    widened = edit_manifest(data, lambda m: m["window"].update(days=365))
    assert verify_bundle_bytes(widened, trusted_pub_pem=bundle_env.public_pem).of_kind("bad_signature")


def test_resigning_with_another_key_is_a_wrong_key_when_the_trusted_key_is_given(app, org, bundle_env):
    _, data = _bundle(app, org.org_id)
    csv = change_one_byte(entries(data)["evidence/audit_events.csv"])

    def cover_up(m):
        for f in m["files"]:
            if f["path"] == "evidence/audit_events.csv":
                f["sha256"] = hashlib.sha256(csv).hexdigest()

    forged = resign(rewrite_zip(edit_manifest(data, cover_up), replace={"evidence/audit_events.csv": csv}), new_key())
    report = verify_bundle_bytes(forged, trusted_pub_pem=bundle_env.public_pem)
    assert [p.kind for p in report.problems] == ["wrong_key"]
    assert bundle_env.key_id in report.problems[0].detail
    # self-consistent on its own: only the trusted key exposes it (and the report says so)
    alone = verify_bundle_bytes(forged)
    assert alone.ok and "No trusted public key" in alone.notes[0]


def test_a_manifest_differing_from_the_recorded_one_is_named(app, org, bundle_env):
    row_id, data = _bundle(app, org.org_id)
    forged = resign(edit_manifest(data, lambda m: m.update(created_by="mallory")), bundle_env.key)  # even with the real key
    with app.app_context():
        recorded = db.session.get(EvidenceBundle, row_id).manifest_sha256
    report = verify_bundle_bytes(forged, trusted_pub_pem=bundle_env.public_pem, expected_manifest_sha256=recorded)
    assert [p.kind for p in report.problems] == ["manifest_altered"]


def test_reordering_the_chain_is_chain_broken(app, org, bundle_env):
    b1, b2, b3 = _chain(app, org.org_id, 3)
    assert verify_bundle_bytes(b3, trusted_pub_pem=bundle_env.public_pem, previous=b2).ok
    report = verify_bundle_bytes(b3, trusted_pub_pem=bundle_env.public_pem, previous=b1)
    assert report.of_kind("chain_broken") == ["manifest.json", "manifest.json"]  # hash link and numbering
    assert "#3" in report.problems[-1].detail and "#1" in report.problems[-1].detail
    by_hash = verify_bundle_bytes(b3, expected_prev=hashlib.sha256(entries(b1)["manifest.json"]).hexdigest())
    assert [p.kind for p in by_hash.problems] == ["chain_broken"]
    first_claiming_a_predecessor = verify_bundle_bytes(b2, expected_prev="")
    assert [p.kind for p in first_claiming_a_predecessor.problems] == ["chain_broken"]

    assert verify_chain_of_bundles([b1, b2, b3], bundle_env.public_pem).ok
    swapped = verify_chain_of_bundles([b1, b3, b2], bundle_env.public_pem)
    assert not swapped.ok and all(r.of_kind("chain_broken") for r in swapped.reports[1:])
    dropped = verify_chain_of_bundles([b1, b3], bundle_env.public_pem)
    assert [r.ok for r in dropped.reports] == [True, False]


def test_garbage_and_manifestless_zips(app, org, bundle_env):
    with pytest.raises(BundleUnreadable):
        verify_bundle_bytes(b"this is not a zip file")
    _, data = _bundle(app, org.org_id)
    report = verify_bundle_bytes(rewrite_zip(data, drop=("manifest.json",)))
    assert ("missing", "manifest.json") in [(p.kind, p.path) for p in report.problems]
    unsigned = verify_bundle_bytes(rewrite_zip(data, drop=("manifest.sig",)), trusted_pub_pem=bundle_env.public_pem)
    assert [(p.kind, p.path) for p in unsigned.problems] == [("missing", "manifest.sig")]
    broken_json = verify_bundle_bytes(rewrite_zip(data, replace={"manifest.json": b"{not json"}))
    assert broken_json.of_kind("manifest_altered") == ["manifest.json"]
    with pytest.raises(signing.SigningKeyError):
        verify_bundle_bytes(data, trusted_pub_pem=b"not a key")


# --- concurrency ---------------------------------------------------------------------------------------

def test_two_creations_at_once_get_seq_1_and_2_with_a_valid_chain(app, org, bundle_env):
    seed_args = [NOW - dt.timedelta(hours=h) for h in range(1, 30)]
    with app.app_context():
        seed_audit(org.org_id, seed_args)
        db.session.remove()
    barrier, errors, ids = threading.Barrier(2), [], []

    def run(i):
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                ids.append(create_bundle(org.org_id, Actor("user", str(i), f"worker{i}"), "7d", now=NOW).id)
                db.session.remove()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    with app.app_context():
        rows = db.session.scalars(sa.select(EvidenceBundle).order_by(EvidenceBundle.seq)).all()
        assert [r.seq for r in rows] == [1, 2] and sorted(ids) == sorted(r.id for r in rows)
        assert rows[0].prev_manifest_sha256 == "" and rows[1].prev_manifest_sha256 == rows[0].manifest_sha256
        ordered = [r.id for r in rows]
        assert all(bundles.verify_stored(r).ok for r in rows)
        db.session.remove()
    assert verify_chain_of_bundles([stored_bytes(app, i) for i in ordered], bundle_env.public_pem).ok


# --- the artifact store ----------------------------------------------------------------------------------

def test_local_storage_round_trip_and_atomic_replace(tmp_path):
    store = LocalStorage(tmp_path / "s")
    size, digest = store.put("a/b/c.bin", [b"hello ", b"world"])
    assert (size, digest) == (11, hashlib.sha256(b"hello world").hexdigest())
    assert store.exists("a/b/c.bin") and store.read("a/b/c.bin") == b"hello world"

    def failing():
        yield b"partial"
        raise OSError("disk full")

    with pytest.raises(OSError):
        store.put("a/b/c.bin", failing())
    assert store.read("a/b/c.bin") == b"hello world"  # the old artifact survives a failed write
    assert [p.name for p in (tmp_path / "s" / "a" / "b").iterdir()] == ["c.bin"]  # no temporary file left
    store.delete("a/b/c.bin")
    store.delete("a/b/c.bin")  # deleting twice is fine
    assert not store.exists("a/b/c.bin")
    with pytest.raises(StorageError):
        store.open("a/b/c.bin")


@pytest.mark.parametrize("key", ["../escape", "/etc/passwd", "a/../../b", "a//b", "", "a/./b", "a\\b", "a/b\x00",
                                 "x" * 301, "sp ace"])
def test_storage_keys_cannot_escape_the_store(tmp_path, key):
    store = LocalStorage(tmp_path / "s")
    with pytest.raises(StorageError):
        store.put(key, b"x")
    with pytest.raises(StorageError):
        validate_key(key)
    assert not (tmp_path / "escape").exists()


def test_get_storage_follows_the_setting(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_STORAGE_DIR", str(tmp_path / "one"))
    assert get_storage(app).root == (tmp_path / "one").resolve()
    monkeypatch.setitem(app.config, "ZENTRO_STORAGE_DIR", None)
    assert get_storage(app).root == (tmp_path.__class__(app.instance_path) / "storage").resolve()


# --- the signing key -------------------------------------------------------------------------------------

def test_generated_key_file_is_private_created_once_and_shared(tmp_path):
    path = tmp_path / "inst" / "bundle-signing-key.pem"
    keys, barrier = [], threading.Barrier(8)

    def make():
        barrier.wait(timeout=10)
        keys.append(signing.key_id_of(signing.load_or_create_key_file(path).public_key()))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(keys) == 8 and len(set(keys)) == 1  # every worker ends up with the same key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["bundle-signing-key.pem"]
    assert signing.key_id_of(signing.load_or_create_key_file(path).public_key()) == keys[0]


def test_key_from_setting_key_id_and_verify(app, monkeypatch):
    key = new_key()
    one_line = signing.private_key_pem(key).decode().replace("\n", "\\n")  # as an env file may carry it
    monkeypatch.setitem(app.config, "ZENTRO_BUNDLE_SIGNING_KEY", one_line)
    with app.app_context():
        raw = signing.public_pem_of(key)
        assert signing.public_key_pem() == raw
        expected = hashlib.sha256(key.public_key().public_bytes_raw()).hexdigest()[:16]
        assert signing.key_id() == expected
        sig = signing.sign(b"manifest bytes")
    assert signing.verify(raw, b"manifest bytes", sig)
    assert not signing.verify(raw, b"manifest bytes!", sig)
    assert not signing.verify(signing.public_pem_of(new_key()), b"manifest bytes", sig)
    assert not signing.verify(raw, b"manifest bytes", "not base64!")


def test_a_non_ed25519_setting_is_refused(app, monkeypatch):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    for value in (ec_pem, "garbage"):
        monkeypatch.setitem(app.config, "ZENTRO_BUNDLE_SIGNING_KEY", value)
        with app.app_context(), pytest.raises(signing.SigningKeyError):
            signing.signing_key()


# --- webhook delivery --------------------------------------------------------------------------------------

@pytest.mark.parametrize("ip,reason", [("127.0.0.1", "loopback"), ("10.1.2.3", "private"), ("192.168.0.9", "private"),
                                       ("169.254.169.254", "link-local"), ("::1", "loopback"), ("fe80::1", "link-local"),
                                       ("::ffff:127.0.0.1", "loopback"), ("0.0.0.0", "unspecified"),
                                       ("100.64.0.1", "not a public"), ("8.8.8.8", "")])
def test_address_policy(ip, reason):
    got = outbound.address_refusal(ip)
    assert (reason in got) if reason else got == ""


def test_post_json_refuses_private_addresses_unless_allowed(receiver):
    ok, status, detail = outbound.post_json(receiver.url, {"a": 1}, allow_private=False)
    assert (ok, status) == (False, None) and "loopback" in detail and receiver.calls == []
    ok, status, detail = outbound.post_json(receiver.url, {"a": 1}, allow_private=True)
    assert (ok, status, detail) == (True, 200, "HTTP 200")
    assert receiver.calls[0]["path"] == "/hooks/bundles" and json.loads(receiver.calls[0]["body"]) == {"a": 1}
    assert receiver.calls[0]["headers"]["Content-Type"] == "application/json"


@pytest.mark.parametrize("url,expect", [("ftp://example.com/x", "only http"), ("http:///nohost", "only http"),
                                        ("http://user:pw@example.com/", "credentials"),
                                        ("http://no-such-host.invalid/", "cannot resolve"),
                                        ("http://127.0.0.1:1/closed", "ConnectionRefusedError")])
def test_post_json_failures_are_reported_not_raised(url, expect):
    ok, status, detail = outbound.post_json(url, {}, timeout=2, allow_private=True)
    assert ok is False and status is None and expect in detail


def test_delivery_outcomes_are_recorded_on_the_bundle(app, org, bundle_env, monkeypatch):
    row_id, _ = _bundle(app, org.org_id)
    with app.app_context():
        row = bundles.deliver_bundle(org.org_id, row_id, "https://zentro.example/dl/1", ALICE)
        assert (row.webhook_status, row.webhook_url) == ("not_configured", "")
        db.session.remove()

    bad = Receiver(status=500)
    try:
        set_webhook(app, org.org_id, bad.url)
        with app.app_context():
            row = bundles.deliver_bundle(org.org_id, row_id, "https://zentro.example/dl/1", ALICE)
            assert row.webhook_status == "failed" and row.webhook_url == bad.url
            assert "loopback" in row.webhook_detail and bad.calls == []  # private not allowed: never called
            db.session.remove()
        monkeypatch.setitem(app.config, "ZENTRO_WEBHOOK_ALLOW_PRIVATE", True)
        with app.app_context():
            row = bundles.deliver_bundle(org.org_id, row_id, "https://zentro.example/dl/1", ALICE)
            assert (row.webhook_status, row.webhook_detail) == ("failed", "HTTP 500") and len(bad.calls) == 1
            db.session.remove()
    finally:
        bad.stop()

    good = Receiver()
    try:
        set_webhook(app, org.org_id, good.url)
        with app.app_context():
            row = bundles.deliver_bundle(org.org_id, row_id, "https://zentro.example/dl/1", ALICE)
            assert (row.webhook_status, row.webhook_url, row.webhook_detail) == ("delivered", good.url, "HTTP 200")
            actions = db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.action.like("bundle.webhook%"))
                                         .order_by(AuditEvent.seq)).all()
            assert actions == ["bundle.webhook_not_configured", "bundle.webhook_failed", "bundle.webhook_failed",
                               "bundle.webhook_delivered"]
            db.session.remove()
    finally:
        good.stop()
    payload = json.loads(good.calls[0]["body"])
    assert payload["event"] == "evidence_bundle.created" and payload["download_url"] == "https://zentro.example/dl/1"
    assert payload["bundle"]["id"] == row_id and payload["bundle"]["seq"] == 1


def test_isolation_factory_makes_a_bundle_of_that_org(app, org, make_member, bundle_env):
    other = make_member("bravo", "owner")
    with app.app_context():
        bid = make_evidence_bundle(org.org_id)
        row = db.session.get(EvidenceBundle, bid)
        assert row.org_id == org.org_id and row.created_by == "ALPHA-PRIVATE"
        with pytest.raises(ApiError):
            bundles.get_bundle(other.org_id, bid)
        db.session.remove()
