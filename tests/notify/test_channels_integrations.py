"""An org's own SMTP or Slack integration (Settings → Integrations) carries its e-mail and Slack messages instead of
the server-wide settings: its host, login and sender; its bot token, API URL and default channel. Checked against a
real SMTP server (aiosmtpd) and a Slack Web API stand-in on 127.0.0.1, with the outgoing address policy, and with a
second org that has no integration and keeps using the server's settings."""
from __future__ import annotations

import pytest

from tests.http_stub import StubServer, stub_server  # noqa: F401
from tests.notify.servers import MAIL_FROM, SLACK_TOKEN, SmtpServer, slack_api, smtp_server  # noqa: F401
from tests.notify.test_channels import _email, _slack, smtp_config  # noqa: F401
from zentro.audit.service import SYSTEM
from zentro.connectors.integrations import create_integration
from zentro.extensions import db
from zentro.notify import channels

ORG_TOKEN = "xoxb-org-own-token-1234567890"


def _integration(app, org_id: int, provider: str, config: dict, secrets: dict) -> None:
    with app.app_context():
        create_integration(org_id, provider=provider, name=f"Own {provider}", config=config, secrets=secrets,
                           actor=SYSTEM, allow_private=True)
        db.session.remove()


@pytest.fixture
def private_ok(app, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_INTEGRATIONS_ALLOW_PRIVATE", True)


def _smtp(server: SmtpServer, **extra) -> dict:
    return {"host": "127.0.0.1", "port": server.port, "security": "none", "from_address": "Alpha Ops <ops@alpha.example>",
            **extra}


def test_an_orgs_smtp_integration_sends_its_mail_with_its_sender(app, make_member, smtp_server, smtp_config, private_ok):
    alpha, beta = make_member("alpha", "owner"), make_member("beta", "owner")
    smtp_config(None)  # the server has no SMTP at all
    _integration(app, alpha.org_id, "smtp", _smtp(smtp_server), {})

    sent = _email(app, alpha.org_id, ["lead@alpha.example"])
    not_sent = _email(app, beta.org_id, ["lead@beta.example"])  # beta has no integration: alpha's is not used

    (got,) = smtp_server.received
    assert got.rcpt_tos == ["lead@alpha.example"] and got.message["From"] == "Alpha Ops <ops@alpha.example>"
    assert (sent.status, sent.error) == ("sent", "")
    assert not_sent.status == "not_sent" and "no SMTP integration" in not_sent.error
    with app.app_context():
        status = channels.channel_status(alpha.org_id)
        assert status["email"] is True and status["email_via"] == "integration “Own smtp”"
        assert channels.channel_status(beta.org_id)["email"] is False


def test_the_integration_wins_over_the_server_smtp(app, make_member, smtp_config, private_ok):
    alpha = make_member("alpha", "owner")
    server_wide, own = SmtpServer(), SmtpServer()
    try:
        smtp_config(server_wide.url)
        _integration(app, alpha.org_id, "smtp", _smtp(own), {})
        assert _email(app, alpha.org_id, ["lead@alpha.example"]).status == "sent"
        assert len(own.received) == 1 and server_wide.received == []
    finally:
        server_wide.stop()
        own.stop()


def test_an_integration_that_requires_starttls_refuses_a_server_without_it(app, make_member, smtp_server, smtp_config,
                                                                           private_ok):
    alpha = make_member("alpha", "owner")
    smtp_config(None)
    _integration(app, alpha.org_id, "smtp", _smtp(smtp_server, security="starttls"), {})
    d = _email(app, alpha.org_id, ["lead@alpha.example"])
    assert d.status == "failed" and "STARTTLS" in d.error
    assert smtp_server.received == []  # nothing went out in plain text


def test_an_orgs_private_smtp_host_is_refused_without_the_setting(app, make_member, smtp_server, smtp_config,
                                                                  monkeypatch):
    alpha = make_member("alpha", "owner")
    smtp_config(None)
    monkeypatch.setitem(app.config, "ZENTRO_INTEGRATIONS_ALLOW_PRIVATE", True)
    _integration(app, alpha.org_id, "smtp", _smtp(smtp_server), {})
    monkeypatch.setitem(app.config, "ZENTRO_INTEGRATIONS_ALLOW_PRIVATE", False)
    d = _email(app, alpha.org_id, ["lead@alpha.example"])
    assert d.status == "failed" and "ZENTRO_INTEGRATIONS_ALLOW_PRIVATE" in d.error
    assert smtp_server.received == []


def test_an_orgs_slack_integration_posts_with_its_token_to_its_default_channel(app, make_member, stub_server,
                                                                              monkeypatch, private_ok):
    alpha, beta = make_member("alpha", "owner"), make_member("beta", "owner")
    base = slack_api(stub_server)
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_BOT_TOKEN", SLACK_TOKEN)  # the server's own token
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_API_URL", base)
    _integration(app, alpha.org_id, "slack", {"api_url": base, "default_channel": "#alpha-ops"},
                 {"bot_token": ORG_TOKEN})

    own = _slack(app, alpha.org_id, "")  # no channel on the schedule: the integration's default
    server_wide = _slack(app, beta.org_id, "#beta")

    posts = stub_server.requests_to("/api/chat.postMessage")
    auth = [{k.lower(): v for k, v in c.headers.items()}["authorization"] for c in posts]
    assert auth == [f"Bearer {ORG_TOKEN}", f"Bearer {SLACK_TOKEN}"]
    assert [c.json["channel"] for c in posts] == ["#alpha-ops", "#beta"]
    assert (own.status, own.target, server_wide.status) == ("sent", "#alpha-ops", "sent")


def test_an_orgs_slack_integration_without_a_channel_anywhere_is_not_sent(app, make_member, stub_server, private_ok):
    alpha = make_member("alpha", "owner")
    _integration(app, alpha.org_id, "slack", {"api_url": slack_api(stub_server)}, {"bot_token": ORG_TOKEN})
    d = _slack(app, alpha.org_id, "")
    assert (d.status, d.error) == ("not_sent", "no Slack channel is set for this delivery")
    assert stub_server.requests_to("/api/chat.postMessage") == []


def test_unreadable_integration_secrets_are_reported_not_sent(app, make_member, smtp_server, smtp_config, private_ok,
                                                              monkeypatch):
    from zentro.connectors.models import Integration

    alpha = make_member("alpha", "owner")
    smtp_config(smtp_server.url)
    _integration(app, alpha.org_id, "smtp", _smtp(smtp_server, username="ops"), {"password": "pw"})
    with app.app_context():  # as if SECRET_KEY had changed since the secrets were stored
        row = db.session.scalar(db.select(Integration).where(Integration.org_id == alpha.org_id))
        row.secrets_ciphertext = b"not-a-fernet-token"
        db.session.commit()
        db.session.remove()
    d = _email(app, alpha.org_id, ["lead@alpha.example"])
    assert d.status == "not_sent" and "cannot be decrypted" in d.error
    assert smtp_server.received == []  # not silently sent through the server's SMTP instead


def test_the_integrations_page_says_which_integration_carries_the_orgs_mail(app, make_member, sign_in, smtp_server,
                                                                           private_ok):
    alpha = make_member("alpha", "owner")
    _integration(app, alpha.org_id, "smtp", _smtp(smtp_server), {})
    html = sign_in(alpha).get("/settings/integrations").get_data(as_text=True)
    assert "e-mail goes out through it" in html and "Slack messages go out through it" not in html
