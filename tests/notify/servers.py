"""Real local servers for the notification tests (no mocks of smtplib, slack_sdk or HTTP):

* ``SmtpServer``: aiosmtpd on 127.0.0.1 that keeps every message it accepts (``received``: envelope and parsed
  MIME; ``messages``: the parsed messages alone);
  it can refuse the message (``refuse_data``), some recipients (``refuse_rcpt``), or demand a login.
* ``slack_api(stub)``: the Slack Web API's chat.postMessage on a ``tests.http_stub.StubServer``.
* ``webhook_receiver(stub, path, statuses)``: an endpoint answering the given statuses in turn (the last
  one repeats): ``OK`` always 200, ``FAIL_TWICE`` 500, 500, then 200, ``ALWAYS_FAIL`` always 503.
* ``verify_signature``: Standard Webhooks verification, written from the spec (not Zentro's code).
Plus fixtures and small factories (``make_endpoint``, ``make_delivery``)."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import socket
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.http_stub import StubServer

T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)
SLACK_TOKEN = "xoxb-notify-test-token"
MAIL_FROM = "Zentro Alerts <alerts@zentro.example>"
OK, FAIL_TWICE, ALWAYS_FAIL = (200,), (500, 500, 200), (503,)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class _Handler:
    def __init__(self, server: "SmtpServer"):
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.server.refuse_rcpt:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.server.refuse_data:
            return "554 5.7.1 Message rejected by policy"
        self.server.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                             message_from_bytes(envelope.content, policy=default_policy)))
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, *, refuse_data: bool = False, refuse_rcpt: tuple[str, ...] = (),
                 login: tuple[str, str] | None = None):
        self.received: list[Received] = []
        self.refuse_data, self.refuse_rcpt, self.login = refuse_data, set(refuse_rcpt), login
        kwargs = {}
        if login:
            kwargs = {"authenticator": self._authenticate, "auth_required": True, "auth_require_tls": False}
        self.port = free_port()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()
        self.url = f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        """The accepted messages alone (parsed), oldest first."""
        return [r.message for r in self.received]

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == self.login
        return AuthResult(success=ok, handled=False)

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp_server():
    server = SmtpServer()
    yield server
    server.stop()


def slack_api(stub: StubServer, *, ok: bool = True, error: str = "channel_not_found", status: int = 200) -> str:
    """Route chat.postMessage on ``stub``; return the base URL to give WebClient."""
    def post_message(req):
        if not ok:
            return status, {"ok": False, "error": error}
        channel = (req.json or {}).get("channel", "")
        return 200, {"ok": True, "channel": channel, "ts": "1767355200.000100"}

    stub.route("POST", "/api/chat.postMessage", post_message)
    return stub.url + "/api/"


def webhook_receiver(stub: StubServer, path: str = "/hooks/zentro", statuses: tuple[int, ...] = OK,
                     on_request=None) -> str:
    """Route ``path`` on ``stub`` to answer ``statuses`` in turn (the last repeats); return the URL."""
    def handle(req):
        if on_request is not None:
            on_request(req)
        n = len(stub.requests_to(path)) - 1
        code = statuses[min(n, len(statuses) - 1)]
        return code, {"received": n + 1} if code < 300 else {"error": "receiver is down"}

    stub.route("POST", path, handle)
    return stub.url + path


def header(req, name: str) -> str:
    for k, v in req.headers.items():
        if k.lower() == name.lower():
            return v
    return ""


def verify_signature(secret: str, req) -> bool:
    """Standard Webhooks: HMAC-SHA256 over ``{webhook-id}.{webhook-timestamp}.{body}`` keyed with the base64
    part of ``whsec_...``; ``webhook-signature`` holds space-separated ``v1,<base64>`` values."""
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret[len("whsec_"):])
    signed = header(req, "webhook-id").encode() + b"." + header(req, "webhook-timestamp").encode() + b"." + req.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    for candidate in header(req, "webhook-signature").split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return True
    return False


def allow_private(app, monkeypatch) -> None:
    """Receivers listen on 127.0.0.1, which the address policy refuses unless allowed."""
    monkeypatch.setitem(app.config, "ZENTRO_WEBHOOK_ALLOW_PRIVATE", True)


def make_endpoint(app, org_id: int, url: str, events: list[str] | None = None, *, enabled: bool = True,
                  description: str = "") -> tuple[int, str]:
    """Create an endpoint through the service (URL checks included); returns (id, secret)."""
    from zentro.audit.service import SYSTEM
    from zentro.extensions import db
    from zentro.notify import webhooks

    with app.app_context():
        ep, secret = webhooks.create_endpoint(org_id, url=url, events=events or ["*"], actor=SYSTEM,
                                              description=description, enabled=enabled)
        endpoint_id = ep.id
        db.session.remove()
    return endpoint_id, secret


def make_delivery(app, org_id: int, *, channel: str = "email", status: str = "sent", source: str = "sla-reminders",
                  target: str = "ops@alpha.example", error: str = "", attempts: int = 1,
                  created_at: dt.datetime = T0) -> int:
    from zentro.extensions import db
    from zentro.notify.models import Delivery

    with app.app_context():
        d = Delivery(org_id=org_id, source=source, channel=channel, target=target,
                     recipients=[target] if channel != "webhook" else [], subject=f"[Zentro] {source}",
                     status=status, attempts=attempts, error=error, created_at=created_at,
                     finished_at=created_at if status != "queued" else None)
        db.session.add(d)
        db.session.commit()
        delivery_id = d.id
        db.session.remove()
    return delivery_id
