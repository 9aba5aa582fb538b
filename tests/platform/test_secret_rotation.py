"""Rotating ZENTRO_SECRET_KEY: with the old key in ZENTRO_SECRET_KEY_FALLBACKS, sessions and stored secrets
(webhook signing secrets, integration credentials) keep working; `zentro secrets rotate` re-encrypts what is
stored so the fallback can be removed; without the fallback nothing stored opens and the app says so."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from cryptography.fernet import MultiFernet

from tests.connectors.integration_helpers import make_integration
from tests.http_stub import stub_server  # noqa: F401
from zentro.config import load_config
from zentro.connectors.integrations import read_secrets
from zentro.connectors.models import Integration
from zentro.extensions import db
from zentro.notify.models import WebhookEndpoint
from zentro.notify.webhooks import SecretUnavailable, decrypt_secret, new_secret, secret_prefix
from zentro.platform import secretbox
from zentro.platform.errors import ApiError

OLD = "test-secret-key-not-for-production"  # the suite's SECRET_KEY (tests/conftest.py)
NEW = "rotated-secret-key-7f3e9a1c5b2d4e6f8a0b"
DD_KEY = "dd-api-key-5f3a9c2e7b1d4f60a8e2"


@pytest.fixture
def switch_key(app, monkeypatch):
    """Deploy NEW as SECRET_KEY with the given fallbacks (restored after the test)."""
    assert app.config["SECRET_KEY"] == OLD

    def switch(*fallbacks: str) -> None:
        monkeypatch.setitem(app.config, "SECRET_KEY", NEW)
        monkeypatch.setitem(app.config, "SECRET_KEY_FALLBACKS", list(fallbacks))

    return switch


def _stored(app, org_id: int, user_id: int) -> tuple[int, str, int]:
    """A webhook endpoint and a Datadog integration, their secrets encrypted under the current key."""
    secret = new_secret()
    with app.app_context():
        ep = WebhookEndpoint(org_id=org_id, url="https://192.0.2.10/hook", description="", events=["*"],
                             secret_ciphertext=secretbox.encrypt(secret), secret_prefix=secret_prefix(secret),
                             created_by_id=user_id)
        db.session.add(ep)
        integration_id = make_integration(org_id, user_id)
        db.session.commit()
        ep_id = ep.id
        db.session.remove()
    return ep_id, secret, integration_id


def _read(app, ep_id: int, integration_id: int) -> tuple[str, dict]:
    with app.app_context():
        try:
            return (decrypt_secret(db.session.get(WebhookEndpoint, ep_id).secret_ciphertext),
                    read_secrets(db.session.get(Integration, integration_id)))
        finally:
            db.session.remove()


def _ciphertexts(app) -> dict[str, list[bytes]]:
    with app.app_context():
        out = {"webhooks": [bytes(c) for c in db.session.scalars(
                   sa.select(WebhookEndpoint.secret_ciphertext).order_by(WebhookEndpoint.id))],
               "integrations": [bytes(c) for c in db.session.scalars(
                   sa.select(Integration.secrets_ciphertext).order_by(Integration.id))]}
        db.session.remove()
    return out


def test_fallbacks_setting_is_a_comma_separated_list(monkeypatch):
    monkeypatch.setenv("ZENTRO_SECRET_KEY", "k")
    monkeypatch.setenv("ZENTRO_SECRET_KEY_FALLBACKS", " old-key-1, old-key-0 ,")
    assert load_config()["SECRET_KEY_FALLBACKS"] == ["old-key-1", "old-key-0"]
    monkeypatch.delenv("ZENTRO_SECRET_KEY_FALLBACKS")
    assert load_config()["SECRET_KEY_FALLBACKS"] == []


def test_a_new_key_alone_opens_nothing_and_the_old_one_as_fallback_opens_everything(app, switch_key):
    with app.app_context():
        old_token = secretbox.encrypt("whsec_before")
        switch_key()
        with pytest.raises(secretbox.Unreadable):
            secretbox.decrypt(old_token)
        switch_key(OLD)
        assert secretbox.decrypt(old_token) == "whsec_before"
        new_token = secretbox.encrypt("whsec_after")  # written under the new key, not the fallback
        switch_key()
        assert secretbox.decrypt(new_token) == "whsec_after"
        with pytest.raises(secretbox.Unreadable):
            secretbox.decrypt(old_token)


def test_stored_secrets_after_a_switch_without_and_with_the_fallback(app, make_member, switch_key):
    owner = make_member("alpha", "owner")
    ep_id, secret, integration_id = _stored(app, owner.org_id, owner.user_id)
    switch_key()
    with pytest.raises(SecretUnavailable, match="ZENTRO_SECRET_KEY_FALLBACKS"):
        _read(app, ep_id, integration_id)
    with app.app_context(), pytest.raises(ApiError) as refused:
        read_secrets(db.session.get(Integration, integration_id))
    assert refused.value.status == 409 and "set them again" in refused.value.detail
    switch_key(OLD)
    webhook_secret, integration_secrets = _read(app, ep_id, integration_id)
    assert webhook_secret == secret and integration_secrets["api_key"].endswith("-dd-api-key-0123456789")


def test_connection_test_after_a_rotation(app, make_member, make_api_key, stub_server,  # noqa: F811
                                          switch_key, monkeypatch):
    """What an admin sees: Test says the secrets cannot be read until the old key is a fallback; then it probes
    with the same API key as before."""
    owner = make_member("alpha", "owner")
    monkeypatch.setitem(app.config, "ZENTRO_INTEGRATIONS_ALLOW_PRIVATE", True)
    stub_server.route("GET", "/api/v1/validate", lambda req: (200, {"valid": True}))
    api = app.test_client()
    headers = {"Authorization": f"Bearer {make_api_key(owner)}"}
    created = api.post("/api/v1/integrations", headers=headers, json={
        "provider": "datadog", "name": "Datadog", "config": {"api_url": stub_server.url},
        "secrets": {"api_key": DD_KEY}})
    assert created.status_code == 201, created.get_data(as_text=True)
    test_url = f"/api/v1/integrations/{created.get_json()['id']}/test"

    switch_key()
    refused = api.post(test_url, headers=headers)
    assert refused.status_code == 409 and refused.get_json()["error_code"] == "CONFLICT"
    assert "cannot be decrypted" in refused.get_json()["detail"]
    assert stub_server.requests_to("/api/v1/validate") == []

    switch_key(OLD)
    probed = api.post(test_url, headers=headers)
    assert probed.status_code == 200 and probed.get_json()["outcome"] == "healthy"
    (call,) = stub_server.requests_to("/api/v1/validate")
    assert call.headers.get("DD-API-KEY") == DD_KEY


def test_secrets_rotate_reencrypts_everything_so_the_fallback_can_go(app, make_member, switch_key):
    owner = make_member("alpha", "owner")
    ep_id, secret, integration_id = _stored(app, owner.org_id, owner.user_id)
    before = _ciphertexts(app)
    switch_key(OLD)
    result = app.test_cli_runner().invoke(args=["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert "webhook_endpoints: 1 re-encrypted under the current SECRET_KEY" in result.output
    assert "integrations: 1 re-encrypted under the current SECRET_KEY" in result.output
    after = _ciphertexts(app)
    assert after["webhooks"] != before["webhooks"] and after["integrations"] != before["integrations"]

    switch_key()  # the fallback removed: everything opens with the new key alone
    webhook_secret, integration_secrets = _read(app, ep_id, integration_id)
    assert webhook_secret == secret and integration_secrets["api_key"].endswith("-dd-api-key-0123456789")

    again = app.test_cli_runner().invoke(args=["secrets", "rotate"])  # safe to run again
    assert again.exit_code == 0 and "webhook_endpoints: 1 re-encrypted" in again.output
    assert _read(app, ep_id, integration_id)[0] == secret


def test_rows_no_key_opens_are_named_and_left_alone(app, make_member, switch_key):
    owner = make_member("alpha", "owner")
    ep_id, _, integration_id = _stored(app, owner.org_id, owner.user_id)
    with app.app_context():
        db.session.execute(sa.update(Integration).where(Integration.id == integration_id)
                           .values(secrets_ciphertext=b"not-a-fernet-token"))
        db.session.commit()
        db.session.remove()
    switch_key(OLD)
    result = app.test_cli_runner().invoke(args=["secrets", "rotate"])
    assert result.exit_code == 1
    assert "webhook_endpoints: 1 re-encrypted" in result.output
    assert f"integrations: 0 re-encrypted under the current SECRET_KEY; 1 unreadable with every configured key " \
           f"(ids {integration_id}): set them again" in result.output
    assert _ciphertexts(app)["integrations"] == [b"not-a-fernet-token"]


def test_a_secret_changed_while_rotating_is_not_overwritten(app, make_member, switch_key, monkeypatch):
    """The rotation writes a row only if it still holds what was read: an admin's new secret saved between the
    read and the write stays."""
    owner = make_member("alpha", "owner")
    ep_id, _, _ = _stored(app, owner.org_id, owner.user_id)
    switch_key(OLD)
    real_box = secretbox._box
    with app.app_context():
        saved = secretbox.encrypt("whsec_saved_by_an_admin")

    class SavedMeanwhile:
        def __init__(self, box: MultiFernet):
            self.box = box

        def rotate(self, token: bytes) -> bytes:
            db.session.execute(sa.update(WebhookEndpoint).where(WebhookEndpoint.id == ep_id)
                               .values(secret_ciphertext=saved))
            return self.box.rotate(token)

    monkeypatch.setattr(secretbox, "_box", lambda: SavedMeanwhile(real_box()))
    with app.app_context():
        results = {r.table: r for r in secretbox.rotate_stored()}
        db.session.remove()
    assert results["webhook_endpoints"].rotated == 0 and results["webhook_endpoints"].changed_meanwhile == 1
    assert "1 changed meanwhile" in results["webhook_endpoints"].line()
    monkeypatch.setattr(secretbox, "_box", real_box)
    with app.app_context():
        assert decrypt_secret(db.session.get(WebhookEndpoint, ep_id).secret_ciphertext) == "whsec_saved_by_an_admin"
        db.session.remove()


def test_a_session_signed_with_the_old_key_survives_only_while_it_is_a_fallback(app, make_member, sign_in, switch_key):
    owner = make_member("alpha", "owner")
    web = sign_in(owner)
    switch_key(OLD)
    assert web.get("/settings/password").status_code == 200
    switch_key()
    gone = web.get("/settings/password")
    assert gone.status_code == 302 and "/login" in gone.headers["Location"]

