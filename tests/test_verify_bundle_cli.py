"""`zentro verify-bundle`: offline verification of bundles made by the server, as an assessor runs it.
Exit 0 only when all is well, 1 on any problem (each named), 2 on unreadable input."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from compliance.bundle_helpers import (NOW, bundle_env, change_one_byte, edit_manifest, entries, flip_raw_byte,  # noqa: F401
                                       new_key, resign, rewrite_zip, stored_bytes)
from zentro.audit.service import Actor
from zentro.cli import cli
from zentro.compliance.bundles import create_bundle
from zentro.extensions import db


@pytest.fixture
def chain(app, make_member, bundle_env):
    """Three consecutive bundles of one org, written to files, with the trusted key next to them."""
    member = make_member("alpha", "owner")
    paths = []
    for i in range(3):
        with app.app_context():
            row_id = create_bundle(member.org_id, Actor("user", "1", "alice"), "7d", now=NOW + dt.timedelta(days=i)).id
            db.session.remove()
        path = bundle_env.tmp / f"bundle-{i + 1}.zip"
        path.write_bytes(stored_bytes(app, row_id))
        paths.append(path)
    key = bundle_env.tmp / "trusted.pem"
    key.write_bytes(bundle_env.public_pem)
    return paths, key, bundle_env


def run(*args: str):
    result = CliRunner().invoke(cli, ["verify-bundle", *map(str, args)])
    return result.exit_code, result.output


def tampered(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def test_a_good_bundle_exits_0(chain):
    (b1, b2, _), key, env = chain
    code, out = run(b2, "--public-key", key, "--previous", b1)
    assert code == 0, out
    assert "OK: 5 files match the manifest" in out and f"key {env.key_id} (the trusted key)" in out
    assert "links to the previous bundle" in out and "evidence #2" in out
    code, out = run(b1)
    assert code == 0 and "No trusted public key given" in out


def test_changed_file_exits_1_and_is_named(chain):
    (b1, _, _), key, env = chain
    data = b1.read_bytes()
    bad = tampered(env.tmp, "changed.zip", rewrite_zip(data, replace={
        "evidence/audit_events.csv": change_one_byte(entries(data)["evidence/audit_events.csv"])}))
    code, out = run(bad, "--public-key", key)
    assert code == 1 and "CHANGED: evidence/audit_events.csv" in out and "FAILED: 1 problem found." in out
    raw = tampered(env.tmp, "flipped.zip", flip_raw_byte(data, "README.txt"))
    code, out = run(raw, "--public-key", key)
    assert code == 1 and "CHANGED: README.txt" in out


def test_missing_and_added_files_exit_1_and_are_all_named(chain):
    (b1, _, _), key, env = chain
    bad = tampered(env.tmp, "drop-add.zip", rewrite_zip(b1.read_bytes(), drop=("evidence/policies.json",),
                                                        add={"evidence/planted.csv": b"a,b\n", "other.txt": b"x"}))
    code, out = run(bad, "--public-key", key)
    assert code == 1
    assert "MISSING: evidence/policies.json" in out
    assert "ADDED: evidence/planted.csv" in out and "ADDED: other.txt" in out
    assert "FAILED: 3 problems found." in out


def test_edited_manifest_is_a_bad_signature(chain):
    (b1, _, _), key, env = chain
    bad = tampered(env.tmp, "edited.zip", edit_manifest(b1.read_bytes(), lambda m: m["window"].update(days=1)))
    code, out = run(bad, "--public-key", key)
    assert code == 1 and "BAD SIGNATURE: manifest.json" in out


def test_resigned_bundle_is_a_wrong_key_with_the_trusted_key(chain):
    (b1, _, _), key, env = chain
    bad = tampered(env.tmp, "forged.zip", resign(b1.read_bytes(), new_key()))
    code, out = run(bad, "--public-key", key)
    assert code == 1 and "WRONG KEY" in out and env.key_id in out
    code, out = run(bad)  # without the trusted key it is self-consistent, and the output says what that means
    assert code == 0 and "proves integrity but not who signed it" in out


def test_reordered_chain_is_chain_broken(chain):
    (b1, b2, b3), key, _ = chain
    code, out = run(b3, "--public-key", key, "--previous", b1)
    assert code == 1 and "CHAIN BROKEN: manifest.json" in out and "previous bundle given is #1" in out
    code, out = run(b2, "--public-key", key, "--previous", b3)
    assert code == 1 and "CHAIN BROKEN" in out


def test_unreadable_input_exits_2(chain, tmp_path):
    (b1, _, _), key, env = chain
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    not_key = tmp_path / "not-a-key.pem"
    not_key.write_text("hello")
    cases = [
        ((tmp_path / "absent.zip",), "cannot read bundle"),
        ((junk,), "not a readable ZIP"),
        ((b1, "--public-key", tmp_path / "absent.pem"), "cannot read public key"),
        ((b1, "--public-key", not_key), "Not a PEM public key"),
        ((b1, "--previous", junk), "previous bundle"),
    ]
    for args, message in cases:
        code, out = run(*args)
        assert code == 2 and message in out, (args, out)


def test_the_installed_command_runs_offline(chain, tmp_path):
    """The real console script in a subprocess, with no database configured at all."""
    (b1, b2, b3), key, _ = chain
    before = hashlib.sha256(b1.read_bytes()).hexdigest()
    exe = Path(sys.executable).with_name("zentro")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENTRO_")}
    env["ZENTRO_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"  # unreachable: must not be needed
    ok = subprocess.run([str(exe), "verify-bundle", str(b2), "--public-key", str(key), "--previous", str(b1)],
                        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = subprocess.run([str(exe), "verify-bundle", str(b3), "--previous", str(b1)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert broken.returncode == 1 and "CHAIN BROKEN" in broken.stdout
    assert hashlib.sha256(b1.read_bytes()).hexdigest() == before  # verification only reads


def test_a_forged_manifest_of_the_wrong_shape_is_reported_not_a_crash(chain):
    (b1, b2, _), key, env = chain

    def mangle(m):
        m["org"], m["window"], m["seq"] = "acme", ["x"], "two"

    bad = tampered(env.tmp, "mangled.zip", edit_manifest(b2.read_bytes(), mangle))
    code, out = run(bad, "--public-key", key, "--previous", b1)
    assert code == 1 and "BAD SIGNATURE" in out and "CHAIN BROKEN" in out and "Traceback" not in out
    prev_bad = tampered(env.tmp, "mangled-prev.zip", edit_manifest(b1.read_bytes(), mangle))
    code, out = run(b2, "--public-key", key, "--previous", prev_bad)
    assert code == 1 and "CHAIN BROKEN" in out
    not_object = tampered(env.tmp, "list-manifest.zip", rewrite_zip(b1.read_bytes(), replace={"manifest.json": b"[1, 2]"}))
    code, out = run(not_object, "--public-key", key)
    assert code == 1 and "MANIFEST ALTERED: manifest.json" in out
