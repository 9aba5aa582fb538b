"""E-mail through a real SMTP server (aiosmtpd on 127.0.0.1) and Slack through a stand-in of its Web API: what
arrives, and what the delivery log says when the channel is not configured, refuses, or fails."""
from __future__ import annotations

import pytest

from tests.http_stub import StubServer, stub_server  # noqa: F401
from tests.notify.servers import MAIL_FROM, SLACK_TOKEN, T0, SmtpServer, slack_api, smtp_server  # noqa: F401
from zentro.extensions import db
from zentro.notify import channels
from zentro.notify.messages import Message
from zentro.notify.models import Delivery

MESSAGE = Message(subject="[Zentro] Compliance SLA reminders — Alpha (2026-03-02)",
                  text="Compliance SLA reminders\n- Overdue: 2\n",
                  html="<h2>Compliance SLA reminders</h2><p>Overdue: <b>2</b></p>",
                  blocks=[{"type": "header", "text": {"type": "plain_text", "text": "Compliance SLA reminders"}},
                          {"type": "section", "text": {"type": "mrkdwn", "text": "*Overdue*\n2"}}],
                  data={"digest": "sla-reminders"})


def _email(app, org_id, recipients, message=MESSAGE):
    with app.app_context():
        d = channels.send_email(org_id, recipients, message, source="sla-reminders", now=T0)
        db.session.commit()
        db.session.refresh(d)
        db.session.expunge(d)
        db.session.remove()
    return d


def _slack(app, org_id, channel, message=MESSAGE):
    with app.app_context():
        d = channels.send_slack(org_id, channel, message, source="sla-reminders", now=T0)
        db.session.commit()
        db.session.refresh(d)
        db.session.expunge(d)
        db.session.remove()
    return d


def _rows(app, org_id):
    with app.app_context():
        rows = db.session.scalars(db.select(Delivery).where(Delivery.org_id == org_id).order_by(Delivery.id)).all()
        for r in rows:
            db.session.expunge(r)
        db.session.remove()
    return rows


@pytest.fixture
def smtp_config(app, monkeypatch):
    def configure(url: str | None):
        monkeypatch.setitem(app.config, "ZENTRO_SMTP_URL", url)
        monkeypatch.setitem(app.config, "ZENTRO_MAIL_FROM", MAIL_FROM)
        monkeypatch.setitem(app.config, "ZENTRO_SMTP_TIMEOUT_SECONDS", 5)
    return configure


# --- e-mail ------------------------------------------------------------------------------------------

def test_email_arrives_with_text_and_html_parts_for_the_valid_recipients(app, make_member, smtp_server, smtp_config):
    owner = make_member("alpha", "owner")
    smtp_config(smtp_server.url)

    d = _email(app, owner.org_id, ["ops@alpha.example", " Lead@Alpha.example ", "ops@alpha.example", "not an address"])

    (got,) = smtp_server.received
    assert sorted(got.rcpt_tos) == ["Lead@alpha.example", "ops@alpha.example"]
    assert got.mail_from == "alerts@zentro.example"
    mail = got.message
    assert mail["Subject"] == MESSAGE.subject
    assert mail["From"] == MAIL_FROM
    assert mail.get_content_type() == "multipart/alternative"
    plain, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert plain.get_content().replace("\r\n", "\n") == MESSAGE.text  # SMTP carries CRLF line ends
    assert "<b>2</b>" in html.get_content()
    assert (d.status, d.channel, d.attempts, d.finished_at) == ("sent", "email", 1, T0)
    assert d.recipients == ["ops@alpha.example", "Lead@alpha.example"]
    assert "ops@alpha.example" in d.target and "Lead@alpha.example" in d.target
    assert "not an address" in d.error  # the dropped address is named


def test_email_without_smtp_is_recorded_as_not_sent_with_the_reason(app, make_member, smtp_config):
    owner = make_member("alpha", "owner")
    smtp_config(None)
    d = _email(app, owner.org_id, ["ops@alpha.example"])
    assert (d.status, d.attempts, d.finished_at) == ("not_sent", 0, T0)
    assert d.error == "SMTP is not configured (no SMTP integration, and ZENTRO_SMTP_URL is unset)"
    assert d.recipients == ["ops@alpha.example"]


def test_email_without_recipients_is_not_sent(app, make_member, smtp_server, smtp_config):
    owner = make_member("alpha", "owner")
    smtp_config(smtp_server.url)
    d = _email(app, owner.org_id, ["", "nobody-at-all"])
    assert d.status == "not_sent" and d.error.startswith("no recipients") and "nobody-at-all" in d.error
    assert smtp_server.received == []


def test_email_the_server_refuses_is_failed_with_its_answer(app, make_member, smtp_config):
    owner = make_member("alpha", "owner")
    server = SmtpServer(refuse_data=True)
    try:
        smtp_config(server.url)
        d = _email(app, owner.org_id, ["ops@alpha.example"])
    finally:
        server.stop()
    assert (d.status, d.attempts) == ("failed", 1)
    assert "554" in d.error and "Message rejected by policy" in d.error
    assert server.received == []


def test_email_every_recipient_refused_is_failed(app, make_member, smtp_config):
    owner = make_member("alpha", "owner")
    server = SmtpServer(refuse_rcpt=("ops@alpha.example",))
    try:
        smtp_config(server.url)
        d = _email(app, owner.org_id, ["ops@alpha.example"])
    finally:
        server.stop()
    assert d.status == "failed" and "550" in d.error and "ops@alpha.example" in d.error


def test_email_some_recipients_refused_is_sent_and_names_them(app, make_member, smtp_config):
    owner = make_member("alpha", "owner")
    server = SmtpServer(refuse_rcpt=("gone@alpha.example",))
    try:
        smtp_config(server.url)
        d = _email(app, owner.org_id, ["ops@alpha.example", "gone@alpha.example"])
    finally:
        server.stop()
    assert d.status == "sent" and "the server refused gone@alpha.example" in d.error
    assert [r.rcpt_tos for r in server.received] == [["ops@alpha.example"]]


def test_email_to_a_closed_port_is_failed(app, make_member, smtp_config):
    from tests.notify.servers import free_port

    owner = make_member("alpha", "owner")
    smtp_config(f"smtp://127.0.0.1:{free_port()}")
    d = _email(app, owner.org_id, ["ops@alpha.example"])
    assert d.status == "failed" and "ConnectionRefusedError" in d.error


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_logs_in_with_the_url_credentials(app, make_member, smtp_config):
    owner = make_member("alpha", "owner")
    server = SmtpServer(login=("mailer", "s3cret/pw"))
    try:
        smtp_config(f"smtp://mailer:s3cret%2Fpw@127.0.0.1:{server.port}")
        ok = _email(app, owner.org_id, ["ops@alpha.example"])
        smtp_config(f"smtp://mailer:wrong@127.0.0.1:{server.port}")
        refused = _email(app, owner.org_id, ["ops@alpha.example"])
    finally:
        server.stop()
    assert ok.status == "sent" and len(server.received) == 1
    assert refused.status == "failed" and "535" in refused.error


def test_a_bad_smtp_url_is_failed_not_sent(app, make_member, smtp_config):
    owner = make_member("alpha", "owner")
    smtp_config("mailto:ops@alpha.example")
    d = _email(app, owner.org_id, ["ops@alpha.example"])
    assert d.status == "failed" and "ZENTRO_SMTP_URL must look like" in d.error


def test_channels_flush_but_leave_the_commit_to_the_caller(app, make_member, smtp_config):
    owner = make_member("alpha", "owner")
    smtp_config(None)
    with app.app_context():
        d = channels.send_email(owner.org_id, ["ops@alpha.example"], MESSAGE, source="sla-reminders", now=T0)
        assert d.id is not None  # flushed
        db.session.rollback()
        db.session.remove()
    assert _rows(app, owner.org_id) == []


# --- Slack -------------------------------------------------------------------------------------------

@pytest.fixture
def slack_config(app, monkeypatch):
    def configure(base_url: str | None, token: str | None = SLACK_TOKEN):
        monkeypatch.setitem(app.config, "ZENTRO_SLACK_BOT_TOKEN", token)
        if base_url:
            monkeypatch.setitem(app.config, "ZENTRO_SLACK_API_URL", base_url)
        monkeypatch.setitem(app.config, "ZENTRO_CONNECTOR_TIMEOUT_SECONDS", 5)
    return configure


def test_slack_receives_chat_post_message_with_blocks_and_the_bot_token(app, make_member, stub_server, slack_config):
    owner = make_member("alpha", "owner")
    slack_config(slack_api(stub_server))

    d = _slack(app, owner.org_id, "#compliance")

    (call,) = stub_server.requests_to("/api/chat.postMessage")
    assert call.headers["Authorization"] == f"Bearer {SLACK_TOKEN}"
    assert call.json["channel"] == "#compliance"
    assert call.json["text"] == MESSAGE.subject
    assert call.json["blocks"] == MESSAGE.blocks
    assert (d.status, d.channel, d.target, d.attempts, d.error) == ("sent", "slack", "#compliance", 1, "")


def test_slack_error_is_failed_with_slacks_error(app, make_member, stub_server, slack_config):
    owner = make_member("alpha", "owner")
    slack_config(slack_api(stub_server, ok=False, error="channel_not_found"))
    d = _slack(app, owner.org_id, "#nowhere")
    assert d.status == "failed" and "channel_not_found" in d.error


def test_slack_down_is_failed(app, make_member, slack_config):
    owner = make_member("alpha", "owner")
    stub = StubServer()
    url = slack_api(stub)
    stub.stop()
    slack_config(url)
    d = _slack(app, owner.org_id, "#compliance")
    assert d.status == "failed" and d.error


def test_slack_without_a_token_is_not_sent(app, make_member, stub_server, slack_config):
    owner = make_member("alpha", "owner")
    slack_config(slack_api(stub_server), token=None)
    d = _slack(app, owner.org_id, "#compliance")
    assert (d.status, d.error) == ("not_sent", "Slack is not configured (no Slack integration, and ZENTRO_SLACK_BOT_TOKEN is unset)")
    assert stub_server.calls == []


def test_slack_without_a_channel_is_not_sent(app, make_member, stub_server, slack_config):
    owner = make_member("alpha", "owner")
    slack_config(slack_api(stub_server))
    d = _slack(app, owner.org_id, "  ")
    assert d.status == "not_sent" and "channel" in d.error
    assert stub_server.calls == []
