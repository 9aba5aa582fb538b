"""E-mail and Slack: send one ``Message`` now and record the outcome as a delivery-log row.

Each function adds its ``Delivery`` to the session and flushes; the caller commits. The network call is
made before the row is written, so no new write is pending while the server answers. Statuses:
``sent`` only when the SMTP server accepted the message / Slack answered ok; ``not_sent`` when the
channel is not configured or there is nobody to send to (``error`` says why); ``failed`` when it was
tried and refused (``error`` carries the server's or Slack's answer). Neither function raises for a
delivery problem.

Where a message goes (``email_route`` / ``slack_route``): an org that has an SMTP or Slack integration
(Settings → Integrations) sends through it — its host, login and sender, or its bot token, API URL and default
channel; its host must pass the outgoing address policy (``ZENTRO_INTEGRATIONS_ALLOW_PRIVATE``). Otherwise the
server-wide settings apply: e-mail through smtplib with ``ZENTRO_SMTP_URL``: ``smtp://[user:password@]host[:port]``
(STARTTLS when the server offers it, login when credentials are given; port 25 by default) or
``smtps://[user:password@]host[:port]`` (TLS from the start; port 465 by default); Slack through the slack_sdk
WebClient the approvals use (``ZENTRO_SLACK_BOT_TOKEN``, ``ZENTRO_SLACK_API_URL``).
"""
from __future__ import annotations

import datetime as dt
import logging
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from urllib.parse import quote, unquote, urlsplit

from email_validator import EmailNotValidError, validate_email
from flask import current_app

from zentro.extensions import db
from zentro.notify.messages import Message
from zentro.notify.models import Delivery
from zentro.platform.errors import ApiError
from zentro.platform.outbound import AddressRefused, resolve_checked
from zentro.platform.types import utcnow

log = logging.getLogger("zentro.notify.channels")

SMTP_NOT_CONFIGURED = "SMTP is not configured (no SMTP integration, and ZENTRO_SMTP_URL is unset)"
SLACK_NOT_CONFIGURED = "Slack is not configured (no Slack integration, and ZENTRO_SLACK_BOT_TOKEN is unset)"
MAX_RECIPIENTS = 100


@dataclass(frozen=True)
class Route:
    """Where one org's e-mail or Slack messages go. ``via`` names it for people ("integration “Ops mail”" or
    "server settings"); ``error`` says why nothing can be sent (not configured, secrets unreadable)."""

    via: str
    error: str = ""
    url: str = ""  # e-mail: smtp[s]://user:password@host:port
    sender: str = ""
    starttls: str = "auto"  # e-mail: auto (when offered), require, off
    check_host: bool = False  # an org's own host: the outgoing address policy applies
    token: str = ""  # Slack bot token
    api_url: str = ""
    default_channel: str = ""


def _org_integration(org_id: int, provider: str):
    from zentro.connectors.integrations import outgoing  # noqa: PLC0415 - connectors builds on notify's secrets

    return outgoing(org_id, provider)


def _integration_via(row) -> str:
    return f"integration “{row.name}”"


def email_route(org_id: int) -> Route:
    cfg_app = current_app.config
    default_sender = cfg_app.get("ZENTRO_MAIL_FROM") or "Zentro <zentro@localhost>"
    try:
        found = _org_integration(org_id, "smtp")
    except ApiError as exc:
        return Route(via="integration", error=exc.detail)
    if found:
        row, cfg, sec = found
        login = (f"{quote(cfg['username'], safe='')}:{quote(sec.get('password') or '', safe='')}@"
                 if cfg.get("username") else "")
        scheme = "smtps" if cfg.get("security") == "tls" else "smtp"
        return Route(via=_integration_via(row), url=f"{scheme}://{login}{cfg['host']}:{cfg['port']}",
                     sender=cfg.get("from_address") or default_sender, check_host=True,
                     starttls={"starttls": "require", "none": "off"}.get(cfg.get("security"), "auto"))
    url = cfg_app.get("ZENTRO_SMTP_URL") or ""
    return Route(via="server settings", url=url, sender=default_sender, error="" if url else SMTP_NOT_CONFIGURED)


def slack_route(org_id: int) -> Route:
    cfg_app = current_app.config
    try:
        found = _org_integration(org_id, "slack")
    except ApiError as exc:
        return Route(via="integration", error=exc.detail)
    if found:
        row, cfg, sec = found
        return Route(via=_integration_via(row), token=sec.get("bot_token") or "", check_host=True,
                     api_url=cfg.get("api_url") or cfg_app["ZENTRO_SLACK_API_URL"],
                     default_channel=cfg.get("default_channel") or "")
    token = cfg_app.get("ZENTRO_SLACK_BOT_TOKEN") or ""
    return Route(via="server settings", token=token, api_url=cfg_app["ZENTRO_SLACK_API_URL"],
                 error="" if token else SLACK_NOT_CONFIGURED)


def channel_status(org_id: int) -> dict:
    """Which channels can send for this org and through what (never the settings' values), for the
    delivery-log page."""
    mail, slack = email_route(org_id), slack_route(org_id)
    return {"email": not mail.error, "slack": not slack.error, "webhook": True, "mail_from": mail.sender,
            "email_via": mail.via, "slack_via": slack.via, "email_error": mail.error, "slack_error": slack.error}


def _host_refusal(host: str, port: int) -> str:
    """Why an org's own SMTP host or Slack API URL may not be reached (the outgoing address policy), or ''."""
    try:
        resolve_checked(host, port, allow_private=bool(current_app.config.get("ZENTRO_INTEGRATIONS_ALLOW_PRIVATE")),
                        setting="ZENTRO_INTEGRATIONS_ALLOW_PRIVATE")
    except AddressRefused as exc:
        return str(exc)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        return f"cannot resolve {host}: {exc}"
    return ""


def record_delivery(org_id: int, *, channel: str, source: str, run_id: int | None, target: str, recipients: list[str],
            subject: str, status: str, error: str, attempts: int, now: dt.datetime) -> Delivery:
    """Add one delivery-log row (flushed, not committed): the single place rows of any channel are written
    outside the webhook outbox."""
    d = Delivery(org_id=org_id, source=source[:80], run_id=run_id, channel=channel, target=target[:500],
                 recipients=recipients, subject=subject[:300], status=status, attempts=attempts, error=error[:500],
                 created_at=now, finished_at=now if status in ("sent", "failed", "not_sent") else None)
    db.session.add(d)
    db.session.flush()
    return d


def split_recipients(recipients: list[str]) -> tuple[list[str], list[str]]:
    """(valid normalised addresses without duplicates, invalid entries as given). Syntax only: no DNS."""
    valid: list[str] = []
    invalid: list[str] = []
    for raw in recipients or []:
        text = (raw or "").strip()
        if not text:
            continue
        try:
            address = validate_email(text, check_deliverability=False).normalized
        except EmailNotValidError:
            invalid.append(text[:100])
            continue
        if address.lower() not in {v.lower() for v in valid}:
            valid.append(address)
    return valid, invalid


def _join(parts: list[str], limit: int = 500) -> str:
    text = ", ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_email(message: Message, sender: str, recipients: list[str], now: dt.datetime) -> EmailMessage:
    """A text/plain part with a text/html alternative (when the message has HTML)."""
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = format_datetime(now)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "zentro.localhost"
    mail["Message-ID"] = make_msgid(domain=domain)
    mail.set_content(message.text or message.subject)
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    return mail


def _smtp_send(url: str, mail: EmailMessage, sender: str, recipients: list[str], timeout: float,
               starttls: str = "auto") -> dict:
    """Hand the message to the server; returns the recipients it refused (smtplib raises when it refused
    them all or the message itself). ``starttls``: auto (when offered), require (refuse a server without it),
    off (plain text; smtp:// only)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("ZENTRO_SMTP_URL must look like smtp://user:password@host:587 or smtps://host:465")
    user = unquote(parts.username) if parts.username else ""
    password = unquote(parts.password) if parts.password else ""
    context = ssl.create_default_context()
    if parts.scheme == "smtps":
        server: smtplib.SMTP = smtplib.SMTP_SSL(parts.hostname, parts.port or 465, timeout=timeout, context=context)
    else:
        server = smtplib.SMTP(parts.hostname, parts.port or 25, timeout=timeout)
    with server:
        server.ehlo()
        if parts.scheme == "smtp" and starttls != "off":
            if server.has_extn("starttls"):
                server.starttls(context=context)
                server.ehlo()
            elif starttls == "require":
                raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS, which this integration requires")
        if user:
            server.login(user, password)
        return server.send_message(mail, from_addr=parseaddr(sender)[1] or sender, to_addrs=recipients)


def _smtp_error(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "the server refused every recipient: " + "; ".join(
            f"{addr}: {code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
            for addr, (code, msg) in exc.recipients.items())
    if isinstance(exc, smtplib.SMTPResponseException):
        msg = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{type(exc).__name__}: {exc.smtp_code} {msg}"
    return f"{type(exc).__name__}: {exc}"


def send_email(org_id: int, recipients: list[str], message: Message, *, source: str, run_id: int | None = None,
               now: dt.datetime | None = None) -> Delivery:
    """E-mail ``message`` to ``recipients`` over SMTP and record the delivery (flushed, not committed).
    Invalid addresses are dropped and named in the row's error."""
    now = now or utcnow()
    valid, invalid = split_recipients(list(recipients or [])[:MAX_RECIPIENTS])
    notes = [f"invalid address(es) dropped: {', '.join(invalid)}"] if invalid else []
    common = dict(channel="email", source=source, run_id=run_id, target=_join(valid), recipients=valid,
                  subject=message.subject)
    route = email_route(org_id)
    if route.error:
        return record_delivery(org_id, status="not_sent", error="; ".join([route.error] + notes), attempts=0,
                       now=now, **common)
    if not valid:
        return record_delivery(org_id, status="not_sent", error="; ".join(["no recipients"] + notes), attempts=0, now=now,
                       **common)
    parts = urlsplit(route.url)
    refusal = _host_refusal(parts.hostname or "", parts.port or 25) if route.check_host else ""
    if refusal:
        return record_delivery(org_id, status="failed", error="; ".join([f"{route.via}: {refusal}"] + notes),
                               attempts=1, now=now, **common)
    timeout = float(current_app.config.get("ZENTRO_SMTP_TIMEOUT_SECONDS") or 10)
    try:
        refused = _smtp_send(route.url, build_email(message, route.sender, valid, now), route.sender, valid, timeout,
                             starttls=route.starttls)
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        return record_delivery(org_id, status="failed", error="; ".join([_smtp_error(exc)] + notes), attempts=1, now=now,
                       **common)
    if refused:
        notes.insert(0, "the server refused " + ", ".join(sorted(refused)))
    return record_delivery(org_id, status="sent", error="; ".join(notes), attempts=1, now=now, **common)


def send_slack(org_id: int, channel: str, message: Message, *, source: str, run_id: int | None = None,
               now: dt.datetime | None = None) -> Delivery:
    """Post ``message`` (its Block Kit blocks, the subject as the notification text) to ``channel`` and record
    the delivery (flushed, not committed)."""
    from zentro.automations.slack import slack_client, slack_error  # noqa: PLC0415 - one WebClient setup for Slack

    now = now or utcnow()
    route = slack_route(org_id)
    channel = (channel or "").strip() or route.default_channel
    common = dict(channel="slack", source=source, run_id=run_id, target=channel, recipients=[channel] if channel else [],
                  subject=message.subject)
    if route.error:
        return record_delivery(org_id, status="not_sent", error=route.error, attempts=0, now=now, **common)
    if not channel:
        return record_delivery(org_id, status="not_sent", error="no Slack channel is set for this delivery", attempts=0,
                       now=now, **common)
    api = urlsplit(route.api_url)
    refusal = (_host_refusal(api.hostname or "", api.port or (443 if api.scheme == "https" else 80))
               if route.check_host else "")
    if refusal:
        return record_delivery(org_id, status="failed", error=f"{route.via}: {refusal}", attempts=1, now=now, **common)
    kwargs = {"channel": channel, "text": message.subject}
    if message.blocks:
        kwargs["blocks"] = message.blocks
    try:
        slack_client(token=route.token, base_url=route.api_url).chat_postMessage(**kwargs)
    except Exception as exc:  # noqa: BLE001 - SlackApiError, network errors, timeouts: all recorded as failed
        return record_delivery(org_id, status="failed", error=slack_error(exc), attempts=1, now=now, **common)
    return record_delivery(org_id, status="sent", error="", attempts=1, now=now, **common)
