"""Sign-in, sessions that can be revoked server-side, org switching, and secrets shown once."""
from __future__ import annotations

import re

import sqlalchemy as sa

from tests.conftest import PASSWORD, csrf_from
from zentro.extensions import db


def login(client, email, password):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def test_login_failure_does_not_reveal_whether_email_exists(app, make_member):
    m = make_member("alpha", "owner")
    wrong_pw = login(app.test_client(), m.email, "not the password!")
    no_user = login(app.test_client(), "nobody@nowhere.example", "not the password!")
    assert wrong_pw.status_code == no_user.status_code == 401
    msg = "Email or password is incorrect."
    assert msg in wrong_pw.get_data(as_text=True) and msg in no_user.get_data(as_text=True)


def test_login_without_csrf_token_is_refused(app, make_member):
    m = make_member("alpha", "owner")
    resp = app.test_client().post("/login", data={"email": m.email, "password": PASSWORD})
    assert resp.status_code == 403


def test_failed_logins_are_rate_limited_successes_are_not(app, make_member):
    m = make_member("alpha", "owner")
    for _ in range(3):
        assert login(app.test_client(), m.email, PASSWORD).status_code == 302  # successes do not count
    c = app.test_client()
    statuses = [login(c, m.email, "wrong password here").status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    assert "Too many" in login(c, m.email, PASSWORD).get_data(as_text=True)  # even the right password waits


def test_next_parameter_cannot_redirect_off_site(app, make_member):
    m = make_member("alpha", "owner")
    c = app.test_client()
    token = csrf_from(c.get("/login").get_data(as_text=True))
    resp = c.post("/login", data={"email": m.email, "password": PASSWORD, "csrf_token": token,
                                  "next": "//evil.example/phish"})
    assert resp.headers["Location"] == "/"


def test_logout_revokes_a_copied_cookie(app, make_member, sign_in):
    s = sign_in(make_member("alpha", "owner"))
    cookie = s.client.get_cookie("session").value
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    assert thief.get("/").status_code == 200
    assert s.post("/logout").status_code == 302
    resp = thief.get("/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert thief.get("/api/user/api-keys").status_code == 401


def test_password_change_revokes_other_sessions_and_keeps_this_one(app, make_member, sign_in):
    m = make_member("alpha", "owner")
    mine, other = sign_in(m), sign_in(m)
    resp = mine.post("/settings/password", data={"current_password": PASSWORD, "new_password": "a brand new passphrase",
                                                 "confirm_password": "a brand new passphrase"})
    assert resp.status_code == 302
    assert mine.get("/").status_code == 200
    assert other.get("/").status_code == 302
    assert login(app.test_client(), m.email, PASSWORD).status_code == 401
    assert login(app.test_client(), m.email, "a brand new passphrase").status_code == 302


def test_password_change_bad_inputs_change_nothing(app, make_member, sign_in):
    m = make_member("alpha", "owner")
    s = sign_in(m)
    for data, message in [
        ({"current_password": "wrong", "new_password": "long enough pass", "confirm_password": "long enough pass"}, "Current password is wrong"),
        ({"current_password": PASSWORD, "new_password": "short", "confirm_password": "short"}, "must be 12"),
        ({"current_password": PASSWORD, "new_password": "long enough pass", "confirm_password": "different pass!"}, "do not match"),
    ]:
        page = s.post("/settings/password", data=data, follow_redirects=True).get_data(as_text=True)
        assert message in page
    assert login(app.test_client(), m.email, PASSWORD).status_code == 302


def test_passwords_are_argon2id_at_owasp_minimum(app, make_member):
    m = make_member("alpha", "owner")
    with app.app_context():
        stored = db.session.scalar(sa.text("SELECT password_hash FROM users WHERE id = :i"), {"i": m.user_id})
    assert stored.startswith("$argon2id$")
    params = dict(p.split("=") for p in re.search(r"\$m=[^$]+", stored).group(0)[1:].split(","))
    assert int(params["m"]) >= 19456 and int(params["t"]) >= 2 and int(params["p"]) >= 1
    assert PASSWORD not in stored


def test_switch_org_changes_what_the_api_sees(app, make_member, sign_in):
    a = make_member("alpha", "owner", email="both@example.com")
    b = make_member("bravo", "viewer", email="both@example.com")
    s = sign_in(a)
    assert s.post("/api/user/alert-ingest-tokens", json={"name": "alpha source"}).status_code == 201
    assert [t["name"] for t in s.get("/api/user/alert-ingest-tokens").get_json()["data"]] == ["alpha source"]
    resp = s.post("/orgs/switch", data={"org_id": str(b.org_id)}, follow_redirects=True)
    assert "Switched to Bravo" in resp.get_data(as_text=True)
    assert s.get("/api/user/alert-ingest-tokens").get_json()["data"] == []
    assert s.post("/api/user/alert-ingest-tokens", json={"name": "x"}).status_code == 403  # viewer in bravo


def test_switch_to_an_org_you_do_not_belong_to_is_404(app, make_member, sign_in):
    a = make_member("alpha", "owner")
    c = make_member("charlie", "owner")
    s = sign_in(a)
    for value in (str(c.org_id), "not-a-number", ""):
        assert s.post("/orgs/switch", data={"org_id": value}).status_code == 404
    assert "Alpha" in s.get("/").get_data(as_text=True)


def test_api_key_page_shows_secret_once_and_lists_metadata(app, make_member, sign_in):
    s = sign_in(make_member("alpha", "member"))
    page = s.post("/settings/api-keys", data={"name": "deploy bot", "scopes": "audit:read"}).get_data(as_text=True)
    secret = re.search(r"zentro_pk_[A-Za-z0-9_-]{43}", page).group(0)
    listing = s.get("/settings/api-keys").get_data(as_text=True)
    assert secret not in listing
    assert "deploy bot" in listing and secret[:18] in listing and "never" in listing
    with app.app_context():
        stored = db.session.execute(sa.text("SELECT prefix, secret_hash FROM api_keys")).one()
    assert stored.prefix == secret[:18] and secret not in stored.secret_hash
    # the key works and its use is recorded
    assert app.test_client().get("/api/audit/export", headers={"X-API-Key": secret}).status_code == 200
    assert "never" not in s.get("/settings/api-keys").get_data(as_text=True).split("deploy bot")[1].split("</tr>")[0]


def test_api_key_form_rejects_bad_input(app, make_member, sign_in):
    s = sign_in(make_member("alpha", "owner"))
    for data, message in [({"name": "", "scopes": "*"}, "name of 1"), ({"name": "x" * 101, "scopes": "*"}, "name of 1"),
                          ({"name": "ok", "scopes": "root:everything"}, "Unknown scope")]:
        page = s.post("/settings/api-keys", data=data).get_data(as_text=True)
        assert message in page and not re.search(r"zentro_pk_[A-Za-z0-9_-]{43}", page)
    with app.app_context():
        assert db.session.scalar(sa.text("SELECT COUNT(*) FROM api_keys")) == 0


def test_api_key_json_create_and_revoke(app, make_member, sign_in):
    s = sign_in(make_member("alpha", "viewer"))
    created = s.post("/api/user/api-keys", json={"name": "reporting", "scopes": ["*:read"]})
    assert created.status_code == 201
    body = created.get_json()
    assert body["key"].startswith("zentro_pk_") and body["scopes"] == ["*:read"] and body["revoked_at"] is None
    listed = s.get("/api/user/api-keys").get_json()["data"]
    assert listed[0]["id"] == body["id"] and "key" not in listed[0]
    assert s.post("/api/user/api-keys", json={"name": "bad", "scopes": ["nope"]}).status_code == 400
    revoked = s.delete(f"/api/user/api-keys/{body['id']}")
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
    assert s.delete("/api/user/api-keys/999999").status_code == 404
    assert app.test_client().get("/api/audit/export", headers={"X-API-Key": body["key"]}).status_code == 401


def test_other_users_keys_in_same_org_are_invisible(app, make_member, make_api_key, sign_in):
    owner = make_member("alpha", "owner")
    colleague = make_member("alpha", "admin")
    make_api_key(colleague, name="colleague key")
    s = sign_in(owner)
    assert s.get("/api/user/api-keys").get_json()["data"] == []
    with app.app_context():
        kid = db.session.scalar(sa.text("SELECT id FROM api_keys"))
    assert s.delete(f"/api/user/api-keys/{kid}").status_code == 404


def test_ingest_tokens_admin_only_and_listed_for_viewers(app, make_member, sign_in):
    admin, member, viewer = (make_member("alpha", r) for r in ("admin", "member", "viewer"))
    created = sign_in(admin).post("/api/user/alert-ingest-tokens", json={"name": "datadog"})
    assert created.status_code == 201 and created.get_json()["token"].startswith("zentro_it_")
    assert sign_in(member).post("/api/user/alert-ingest-tokens", json={"name": "x"}).status_code == 403
    page = sign_in(viewer).get("/settings/ingest-tokens").get_data(as_text=True)
    assert "datadog" in page and "Only owners and admins" in page and "Revoke" not in page


def test_every_mutation_above_is_audited(app, make_member, sign_in):
    m = make_member("alpha", "owner")
    s = sign_in(m)
    kid = s.post("/api/user/api-keys", json={"name": "k"}).get_json()["id"]
    s.delete(f"/api/user/api-keys/{kid}")
    tid = s.post("/api/user/alert-ingest-tokens", json={"name": "t"}).get_json()["id"]
    s.delete(f"/api/user/alert-ingest-tokens/{tid}")
    with app.app_context():
        actions = db.session.scalars(sa.text("SELECT action FROM audit_events WHERE org_id = :o ORDER BY seq"),
                                     {"o": m.org_id}).all()
        actor = db.session.scalar(sa.text("SELECT actor_label FROM audit_events WHERE action = 'api_key.created'"))
    assert actions[-4:] == ["api_key.created", "api_key.revoked", "ingest_token.created", "ingest_token.revoked"]
    assert actor == m.email
