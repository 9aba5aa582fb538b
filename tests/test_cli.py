"""The `zentro` command line, non-interactive, as operators and automation use it."""
from __future__ import annotations

import sqlalchemy as sa

from zentro.extensions import db


def _count(app, table: str) -> int:
    with app.app_context():
        return db.session.scalar(sa.text(f"SELECT COUNT(*) FROM {table}"))


def test_users_create_creates_org_and_is_repeatable(app):
    runner = app.test_cli_runner()
    args = ["users", "create", "Ops@Example.com", "--password", "long enough secret", "--org", "ops",
            "--role", "admin", "--plan", "pro"]
    first = runner.invoke(args=args)
    assert first.exit_code == 0, first.output
    assert "created org ops (plan pro)" in first.output and "admin of ops" in first.output
    again = runner.invoke(args=args)
    assert again.exit_code == 0 and "using org ops" in again.output and "existing user ops@example.com" in again.output
    assert _count(app, "users") == 1 and _count(app, "orgs") == 1 and _count(app, "memberships") == 1


def test_users_create_rejects_bad_input_and_changes_nothing(app):
    runner = app.test_cli_runner()
    for args, message in [
        (["users", "create", "not-an-email", "--password", "long enough secret", "--org", "ops"], "valid email"),
        (["users", "create", "a@b.example", "--password", "short", "--org", "ops"], "12"),
        (["users", "create", "a@b.example", "--password", "long enough secret", "--org", "Bad Slug!"], "slug"),
        (["users", "create", "a@b.example", "--password", "long enough secret", "--org", "ops", "--role", "god"], "god"),
    ]:
        result = runner.invoke(args=args)
        assert result.exit_code != 0 and message in result.output, result.output
    assert _count(app, "users") == 0 and _count(app, "orgs") == 0


def test_api_keys_create_prints_a_working_key_last(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "create", "bot@example.com", "--password", "long enough secret", "--org", "ops",
                        "--role", "member"])
    result = runner.invoke(args=["api-keys", "create", "bot@example.com", "--org", "ops", "--name", "ci",
                                 "--scope", "audit:read", "--scope", "ingest_tokens:read"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("zentro_pk_")
    c = app.test_client()
    assert c.get("/api/audit/export", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert c.post("/api/user/alert-ingest-tokens", json={"name": "x"},
                  headers={"Authorization": f"Bearer {key}"}).status_code == 403


def test_api_keys_create_refuses_non_members_and_bad_scopes(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "create", "bot@example.com", "--password", "long enough secret", "--org", "ops"])
    runner.invoke(args=["users", "create", "x@example.com", "--password", "long enough secret", "--org", "other"])
    assert "not a member" in runner.invoke(args=["api-keys", "create", "x@example.com", "--org", "ops", "--name", "n"]).output
    bad = runner.invoke(args=["api-keys", "create", "bot@example.com", "--org", "ops", "--name", "n", "--scope", "everything"])
    assert bad.exit_code != 0 and "Unknown scope" in bad.output
    assert _count(app, "api_keys") == 0


def test_demo_is_idempotent(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0 and "Seeded" in first.output and "owner@acme.example" in first.output
    counts = {t: _count(app, t) for t in ("users", "orgs", "memberships", "ingest_tokens", "audit_events")}
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0 and "nothing duplicated" in second.output
    assert {t: _count(app, t) for t in counts} == counts
    assert counts["orgs"] == 2 and counts["users"] == 3


def test_demo_login_works(app):
    app.test_cli_runner().invoke(args=["demo"])
    from tests.conftest import csrf_from

    c = app.test_client()
    token = csrf_from(c.get("/login").get_data(as_text=True))
    resp = c.post("/login", data={"email": "owner@acme.example", "password": app.config["ZENTRO_DEMO_PASSWORD"],
                                  "csrf_token": token}, follow_redirects=True)
    page = resp.get_data(as_text=True)
    assert "Acme Cloud" in page and "Acme Labs" in page  # active org and the switcher's second org
