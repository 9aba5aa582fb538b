"""Slack approvals: post an approval request with Approve/Reject buttons, update the message once it is
decided, and take the button clicks Slack sends back (``block_actions``).

Outbound calls use slack_sdk's WebClient against ``ZENTRO_SLACK_API_URL``; the click handler verifies
Slack's signature over the raw body with slack_sdk's SignatureVerifier (5-minute tolerance). Every
delivery and every click that names an existing org is a SlackEvent row, so the export shows what was
really sent, refused or failed — never "sent" when Slack did not take it.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
from flask import current_app
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import Clock, SignatureVerifier
from sqlalchemy import func, select

from zentro.accounts.models import Membership, Org, User
from zentro.audit.service import Actor, lock_org, record
from zentro.automations import approvals
from zentro.automations import service as core
from zentro.automations.models import Approval, SlackEvent
from zentro.extensions import db
from zentro.platform.errors import ApiError
from zentro.platform.types import iso, utcnow

log = logging.getLogger("zentro.automations.slack")

APPROVE, REJECT = "approval_approve", "approval_reject"
ACTION_IDS = {APPROVE: True, REJECT: False}
SLACK_HOOKS_HOST = "hooks.slack.com"
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_BUTTON_VALUE = re.compile(r"^([1-9][0-9]{0,9}):([1-9][0-9]{0,9})$")
_SECTION_LIMIT = 2900  # Slack refuses section text over 3000 characters
WINDOWS = {"24h": dt.timedelta(hours=24), "7d": dt.timedelta(days=7), "30d": dt.timedelta(days=30), "all": None}
NOT_CONFIGURED = "Slack approvals are not configured"


# --- configuration ------------------------------------------------------------------------------------

def configuration() -> dict:
    """Which Slack settings are present (never their values), for the settings page."""
    cfg = current_app.config
    return {"bot_token": bool(cfg.get("ZENTRO_SLACK_BOT_TOKEN")),
            "channel": cfg.get("ZENTRO_SLACK_APPROVALS_CHANNEL") or "",
            "signing_secret": bool(cfg.get("ZENTRO_SLACK_SIGNING_SECRET")),
            "api_url": cfg.get("ZENTRO_SLACK_API_URL") or ""}


def slack_client(token: str | None = None, base_url: str | None = None) -> WebClient:
    """The one WebClient setup: the server's bot token and API URL unless an org's integration gives its own."""
    cfg = current_app.config
    return WebClient(token=token or cfg["ZENTRO_SLACK_BOT_TOKEN"], base_url=base_url or cfg["ZENTRO_SLACK_API_URL"],
                     timeout=cfg["ZENTRO_CONNECTOR_TIMEOUT_SECONDS"])


def _missing_outbound_settings() -> str:
    cfg = current_app.config
    missing = [k for k in ("ZENTRO_SLACK_BOT_TOKEN", "ZENTRO_SLACK_APPROVALS_CHANNEL") if not cfg.get(k)]
    return " and ".join(missing)


# --- the event log ------------------------------------------------------------------------------------

def record_event(org_id: int, *, direction: str, kind: str, outcome: str, approval_id: int | None = None,
                 slack_user_id: str = "", slack_team_id: str = "", channel: str = "", message_ts: str = "",
                 action_id: str = "", user_id: int | None = None, detail: str = "",
                 now: dt.datetime | None = None) -> SlackEvent:
    """Add one SlackEvent to the session (the caller commits)."""
    event = SlackEvent(org_id=org_id, approval_id=approval_id, direction=direction, kind=kind, outcome=outcome,
                       slack_user_id=slack_user_id[:64], slack_team_id=slack_team_id[:64], channel=channel[:64],
                       message_ts=message_ts[:64], action_id=action_id[:100], user_id=user_id, detail=detail[:2000],
                       created_at=now or utcnow())
    db.session.add(event)
    return event


def recent_events(org_id: int, limit: int = 25) -> list[tuple[SlackEvent, str | None]]:
    """The org's newest Slack events with the Zentro user's email, for the settings page."""
    rows = db.session.execute(
        select(SlackEvent, User.email).outerjoin(User, User.id == SlackEvent.user_id)
        .where(SlackEvent.org_id == org_id).order_by(SlackEvent.created_at.desc(), SlackEvent.id.desc()).limit(limit))
    return [(event, email) for event, email in rows]


# --- messages -----------------------------------------------------------------------------------------

def _esc(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters (links, mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int = _SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _email(user_id: int | None) -> str:
    return core.user_emails([user_id]).get(user_id, "a deleted user") if user_id else "unknown"


def _request_section(approval: Approval) -> dict:
    lines = [f"*Approval #{approval.id}: {_esc(approval.summary or approval.action_key)}*",
             f"Actions: `{_esc(approval.action_key)}`",
             f"Requested by {_esc(_email(approval.requested_by_id))}"]
    if approval.reason:
        lines.append(f"Why approval is needed: {_esc(approval.reason)}")
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip("\n".join(lines))}}


def _button(text: str, action_id: str, value: str, style: str) -> dict:
    return {"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id,
            "value": value, "style": style}


def request_message(approval: Approval) -> tuple[str, list[dict]]:
    """(fallback text, Block Kit blocks) of a pending approval with Approve/Reject buttons."""
    value = f"{approval.org_id}:{approval.id}"
    text = f"Approval #{approval.id} requested: {approval.summary or approval.action_key}"
    blocks = [_request_section(approval),
              {"type": "actions", "block_id": f"approval:{approval.id}",
               "elements": [_button("Approve", APPROVE, value, "primary"), _button("Reject", REJECT, value, "danger")]}]
    return text, blocks


def decided_message(approval: Approval) -> tuple[str, list[dict]]:
    """The message after the decision: the request, who decided, how and the note; no buttons."""
    line = approvals.decision_message(approval, True)
    detail = f"*{_esc(line)}*" + (f"\nNote: {_esc(approval.decision_note)}" if approval.decision_note else "")
    return (f"Approval #{approval.id}: {line}",
            [_request_section(approval), {"type": "section", "text": {"type": "mrkdwn", "text": _clip(detail)}}])


def slack_error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        return f"Slack answered {exc.response.status_code}: {data.get('error') or 'unknown error'}"
    return f"{type(exc).__name__}: {exc}"


def _end_transaction() -> None:
    """Commit before a network call: SQLite transactions hold the write lock (BEGIN IMMEDIATE), and no
    transaction should stay open while Slack takes its time."""
    db.session.commit()


def _commit_quietly() -> None:
    try:
        db.session.commit()
    except Exception:  # noqa: BLE001 - the callers' contract is "never raises"
        log.exception("could not store the Slack delivery outcome")
        db.session.rollback()


def post_approval(approval: Approval, now: dt.datetime | None = None) -> None:
    """Post a pending approval to the approvals channel, or record why it was not posted. Never raises:
    the approval stands in the app whatever Slack does. Commits the delivery outcome."""
    try:
        missing = _missing_outbound_settings()
        if missing:
            approval.slack_status = f"not configured: {missing} not set"[:200]
            record_event(approval.org_id, direction="outbound", kind="post_message", outcome="not_configured",
                         approval_id=approval.id, detail=approval.slack_status, now=now)
            return _commit_quietly()
        channel = current_app.config["ZENTRO_SLACK_APPROVALS_CHANNEL"]
        text, blocks = request_message(approval)
        _end_transaction()
        try:
            resp = slack_client().chat_postMessage(channel=channel, text=text, blocks=blocks)
        except Exception as exc:  # noqa: BLE001 - SlackApiError, network errors, timeouts
            approval.slack_status = f"failed: {slack_error(exc)}"[:200]
            record_event(approval.org_id, direction="outbound", kind="post_message", outcome="failed",
                         approval_id=approval.id, channel=channel, detail=slack_error(exc), now=now)
            return _commit_quietly()
        approval.slack_channel = str(resp.get("channel") or channel)[:64]
        approval.slack_ts = str(resp.get("ts") or "")[:64]
        approval.slack_status = "posted"
        record_event(approval.org_id, direction="outbound", kind="post_message", outcome="sent",
                     approval_id=approval.id, channel=approval.slack_channel, message_ts=approval.slack_ts,
                     detail=f"posted to {approval.slack_channel}", now=now)
        _commit_quietly()
    except Exception:  # noqa: BLE001
        log.exception("posting approval %s to Slack failed unexpectedly", getattr(approval, "id", None))
        db.session.rollback()


def update_message(approval: Approval, now: dt.datetime | None = None) -> None:
    """Replace the posted approval message with its decision (chat.update). Never raises; records the
    outcome. Approvals that were never posted have nothing to update."""
    try:
        if not approval.slack_ts or not approval.slack_channel:
            return
        common = dict(direction="outbound", kind="update_message", approval_id=approval.id,
                      channel=approval.slack_channel, message_ts=approval.slack_ts, now=now)
        if not current_app.config.get("ZENTRO_SLACK_BOT_TOKEN"):
            record_event(approval.org_id, outcome="not_configured", detail="ZENTRO_SLACK_BOT_TOKEN not set", **common)
            return _commit_quietly()
        text, blocks = decided_message(approval)
        _end_transaction()
        try:
            slack_client().chat_update(channel=approval.slack_channel, ts=approval.slack_ts, text=text, blocks=blocks)
        except Exception as exc:  # noqa: BLE001
            record_event(approval.org_id, outcome="failed", detail=slack_error(exc), **common)
            return _commit_quietly()
        record_event(approval.org_id, outcome="sent", detail=text, **common)
        _commit_quietly()
    except Exception:  # noqa: BLE001
        log.exception("updating the Slack message of approval %s failed unexpectedly", getattr(approval, "id", None))
        db.session.rollback()


# --- response_url -------------------------------------------------------------------------------------

def _allowed_response_url(url: str) -> bool:
    """Slack's hooks host over https, or the configured Slack API host (tests point it at a local server)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname == SLACK_HOOKS_HOST and parts.port in (None, 443):
        return True
    api = urlsplit(current_app.config.get("ZENTRO_SLACK_API_URL") or "")
    return bool(api.hostname) and (parts.scheme, parts.hostname, parts.port) == (api.scheme, api.hostname, api.port)


def respond(response_url: str, *, text: str, blocks: list[dict] | None = None, replace_original: bool = True,
            ephemeral: bool = False) -> tuple[bool, str]:
    """POST a message to the interaction's response_url; (delivered, detail). Refuses other hosts."""
    if not _allowed_response_url(response_url):
        return False, f"refused response_url host {urlsplit(response_url).hostname or '(none)'}"
    payload: dict = {"replace_original": replace_original, "text": text}
    if blocks is not None:
        payload["blocks"] = blocks
    if ephemeral:
        payload["response_type"] = "ephemeral"
    try:
        resp = httpx.post(response_url, json=payload, timeout=current_app.config["ZENTRO_CONNECTOR_TIMEOUT_SECONDS"],
                          follow_redirects=False)
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if resp.status_code != 200:
        return False, f"response_url answered {resp.status_code}: {resp.text[:200]}"
    return True, f"response_url answered {resp.status_code}"


# --- inbound clicks -----------------------------------------------------------------------------------

class _FixedClock(Clock):
    def __init__(self, now: dt.datetime):
        self._now = now.timestamp()

    def now(self) -> float:
        return self._now


@dataclass
class Click:
    """One parsed button click."""

    org_id: int
    approval_id: int
    approve: bool
    action_id: str
    slack_user_id: str
    slack_team_id: str
    response_url: str
    channel: str
    message_ts: str


def verify_signature(raw_body: bytes, headers, now: dt.datetime | None = None) -> None:
    """401 unless X-Slack-Signature matches the raw body and X-Slack-Request-Timestamp is within 5 minutes;
    503 when no signing secret is configured."""
    secret = current_app.config.get("ZENTRO_SLACK_SIGNING_SECRET")
    if not secret:
        raise ApiError(503, f"{NOT_CONFIGURED}: ZENTRO_SLACK_SIGNING_SECRET is not set.")
    timestamp = headers.get("X-Slack-Request-Timestamp")
    signature = headers.get("X-Slack-Signature")
    if not timestamp or not signature:
        raise ApiError(401, "Send X-Slack-Request-Timestamp and X-Slack-Signature.")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise ApiError(401, "X-Slack-Request-Timestamp must be Unix time in seconds.")
    try:
        raw_body.decode("utf-8")  # Slack signs UTF-8 text; the verifier would raise on anything else
    except UnicodeDecodeError:
        raise ApiError(400, "The request body must be UTF-8 form data.") from None
    verifier = SignatureVerifier(secret, clock=_FixedClock(now) if now is not None else Clock())
    if not verifier.is_valid(raw_body, timestamp, signature):
        raise ApiError(401, "Invalid or stale Slack signature (the timestamp must be within 5 minutes).")


def _text(obj: dict, key: str, limit: int = 512) -> str:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value[:limit] if isinstance(value, str) else ""


def parse_click(raw_body: bytes) -> Click:
    """The one button click in a form-encoded ``payload=<json>`` block_actions body; 400 otherwise."""
    try:
        form = parse_qs(raw_body.decode("utf-8"), strict_parsing=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "Send application/x-www-form-urlencoded with payload=<json>.") from None
    if len(form.get("payload", [])) != 1:
        raise ApiError(400, "Send exactly one payload field.")
    try:
        payload = json.loads(form["payload"][0])
    except ValueError:
        raise ApiError(400, "The payload field is not JSON.") from None
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        raise ApiError(400, "Only block_actions payloads are accepted.")
    actions = payload.get("actions")
    if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
        raise ApiError(400, "A block_actions payload must carry exactly one action.")
    action_id, value = _text(actions[0], "action_id"), _text(actions[0], "value")
    if action_id not in ACTION_IDS:
        raise ApiError(400, f"Unknown action_id; expected {APPROVE} or {REJECT}.")
    match = _BUTTON_VALUE.fullmatch(value)
    if not match or int(match.group(1)) > 2_147_483_647 or int(match.group(2)) > 2_147_483_647:
        raise ApiError(400, "The button value must be <org id>:<approval id>.")
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    team = payload.get("team") if isinstance(payload.get("team"), dict) else {}
    slack_user_id = _text(user, "id", 64)
    if not slack_user_id:
        raise ApiError(400, "The payload names no Slack user.")
    container = payload.get("container") if isinstance(payload.get("container"), dict) else {}
    channel = payload.get("channel") if isinstance(payload.get("channel"), dict) else {}
    return Click(int(match.group(1)), int(match.group(2)), ACTION_IDS[action_id], action_id, slack_user_id,
                 _text(team, "id", 64) or _text(user, "team_id", 64), _text(payload, "response_url", 2048),
                 _text(channel, "id", 64) or _text(container, "channel_id", 64), _text(container, "message_ts", 64))


def _lookup_email(slack_user_id: str) -> str:
    """The Slack user's email via users.info (needs the bot token and users:read.email); "" if unknown."""
    if not current_app.config.get("ZENTRO_SLACK_BOT_TOKEN"):
        return ""
    _end_transaction()
    try:
        resp = slack_client().users_info(user=slack_user_id)
    except Exception as exc:  # noqa: BLE001 - an unreachable Slack means "not linked", not a 500
        log.info("users.info for %s failed: %s", slack_user_id, slack_error(exc))
        return ""
    profile = (resp.get("user") or {}).get("profile") or {}
    email = profile.get("email")
    return email.strip().lower() if isinstance(email, str) else ""


def map_user(org_id: int, slack_user_id: str) -> tuple[User | None, str]:
    """The org member whose Membership.slack_user_id is this Slack user, else the member with the Slack
    user's email; (user, how it was matched) or (None, why not)."""
    members = select(User).join(Membership, Membership.user_id == User.id).where(
        Membership.org_id == org_id, User.is_active.is_(True))
    linked = db.session.scalars(members.where(Membership.slack_user_id == slack_user_id)).all()
    if len(linked) == 1:
        return linked[0], "linked Slack user id"
    if len(linked) > 1:
        return None, "this Slack account is linked to several Zentro users of the organisation"
    email = _lookup_email(slack_user_id)
    if email:
        user = db.session.scalars(members.where(func.lower(User.email) == email)).one_or_none()
        if user is not None:
            return user, "Slack profile email"
    return None, "your Slack account is not linked to a Zentro user"


@dataclass
class ClickResult:
    outcome: str  # decided | already_decided | refused | not_found
    text: str
    approval_id: int | None = None
    delivered: bool | None = None  # whether the response_url update went through

    def json(self) -> dict:
        return {"ok": self.outcome in ("decided", "already_decided"), "outcome": self.outcome, "text": self.text,
                "approval_id": self.approval_id, "message_updated": self.delivered}


def _answer(click: Click, result: ClickResult, *, user_id: int | None, org_exists: bool, approval: Approval | None,
            now: dt.datetime | None) -> ClickResult:
    """Record the click, tell the clicker through response_url (the decided message replaces the original;
    refusals are ephemeral) and record that delivery."""
    common = dict(approval_id=result.approval_id, slack_user_id=click.slack_user_id,
                  slack_team_id=click.slack_team_id, channel=click.channel, message_ts=click.message_ts,
                  action_id=click.action_id, user_id=user_id, now=now)
    if org_exists:
        record_event(click.org_id, direction="inbound", kind="block_action", outcome=result.outcome,
                     detail=result.text, **common)
    if click.response_url:
        if result.outcome in ("decided", "already_decided") and approval is not None:
            text, blocks = decided_message(approval)
            message = dict(text=result.text if result.outcome == "already_decided" else text, blocks=blocks)
        else:
            message = dict(text=result.text, replace_original=False, ephemeral=True)
        _end_transaction()
        delivered, detail = respond(click.response_url, **message)
        result.delivered = delivered
        if org_exists:
            record_event(click.org_id, direction="outbound", kind="response_url",
                         outcome="sent" if delivered else "failed", detail=detail, **common)
    if org_exists:
        db.session.commit()
    return result


def handle_block_actions(raw_body: bytes, headers, now: dt.datetime | None = None) -> ClickResult:
    """Verify, parse and apply one Approve/Reject click. Errors in the request itself raise ApiError
    (503/401/400); outcomes Slack should not retry (not found, not linked, not allowed, already decided)
    are answered with 200 and recorded."""
    verify_signature(raw_body, headers, now)
    click = parse_click(raw_body)
    org_exists = db.session.get(Org, click.org_id) is not None
    approval = db.session.execute(select(Approval).where(
        Approval.org_id == click.org_id, Approval.id == click.approval_id)).scalar_one_or_none() if org_exists else None
    if approval is None:
        if not org_exists:
            log.warning("Slack click for unknown org %s (approval %s)", click.org_id, click.approval_id)
        return _answer(click, ClickResult("not_found", f"Approval #{click.approval_id} was not found."),
                       user_id=None, org_exists=org_exists, approval=None, now=now)
    user, how = map_user(click.org_id, click.slack_user_id)
    common = dict(org_exists=True, approval=approval, now=now)
    if approval.status != "pending":
        return _answer(click, ClickResult("already_decided", approvals.decision_message(approval, False),
                                          approval.id), user_id=user.id if user else None, **common)
    if user is None:
        return _answer(click, ClickResult("refused", f"Not decided: {how}. Ask an owner or admin to link it on the "
                                                     "Automations › Slack page.", approval.id), user_id=None, **common)
    reason = approvals.can_decide(click.org_id, approval, user.id)
    if reason:
        return _answer(click, ClickResult("refused", f"Not decided: {reason}", approval.id), user_id=user.id, **common)
    actor = Actor("user", str(user.id), f"{user.email} (Slack {click.slack_user_id})")
    try:
        approval, changed = approvals.decide(click.org_id, approval.id, approve=click.approve, user_id=user.id,
                                             actor=actor, note=f"Decided in Slack by {click.slack_user_id} ({how})",
                                             via="slack", now=now)
    except ApiError as exc:  # can_decide changed between the check and the decision
        db.session.rollback()
        return _answer(click, ClickResult("refused", f"Not decided: {exc.detail}", approval.id),
                       user_id=user.id, **common)
    if not changed:
        db.session.refresh(approval)
        return _answer(click, ClickResult("already_decided", approvals.decision_message(approval, False),
                                          approval.id), user_id=user.id, **common)
    return _answer(click, ClickResult("decided", approvals.decision_message(approval, True), approval.id),
                   user_id=user.id, **common)


# --- export -------------------------------------------------------------------------------------------

EXPORT_COLUMNS = ["time_utc", "direction", "kind", "outcome", "approval_id", "slack_user_id", "zentro_user_email",
                  "channel", "message_ts", "action_id", "detail"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP: prefix a quote)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def export_csv(org_id: int, window: str, now: dt.datetime | None = None) -> Iterator[str]:
    """The org's Slack events in the window, newest first, as CSV text chunks in constant memory."""
    query = (select(SlackEvent, User.email).outerjoin(User, User.id == SlackEvent.user_id)
             .where(SlackEvent.org_id == org_id))
    span = WINDOWS[window]
    if span is not None:
        query = query.where(SlackEvent.created_at >= (now or utcnow()) - span)
    query = query.order_by(SlackEvent.created_at.desc(), SlackEvent.id.desc())
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    result = db.session.execute(query.execution_options(yield_per=500, stream_results=True))
    for n, (e, email) in enumerate(result, 1):
        writer.writerow([safe_cell(v) for v in (iso(e.created_at), e.direction, e.kind, e.outcome, e.approval_id or "",
                                                e.slack_user_id, email or "", e.channel, e.message_ts, e.action_id,
                                                e.detail)])
        if n % 500 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


# --- linking members to Slack users --------------------------------------------------------------------

LINK_TAGS = ("SOC2:CC6.2", "ISO27001:A.5.18")  # who may decide approvals from Slack is an access right


def member_links(org_id: int) -> list[tuple[Membership, User]]:
    """The org's members with their Slack user ids, by email."""
    return list(db.session.execute(select(Membership, User).join(User, User.id == Membership.user_id)
                                   .where(Membership.org_id == org_id).order_by(User.email)).all())


def link_slack_user(org_id: int, membership_id: int, slack_user_id: str, *, actor: Actor, now: dt.datetime | None = None
                    ) -> Membership:
    """Set (or clear, with "") the Slack user id of one member: 400 for a malformed id, 404 for another
    org's membership, 409 when another member of the org already has it. Audited."""
    value = slack_user_id.strip().upper()
    if value and not SLACK_USER_ID.fullmatch(value):
        raise ApiError(400, "A Slack user id looks like U012AB3CD (U or W, then 2–20 letters or digits).",
                       errors=[{"loc": ["slack_user_id"], "msg": "malformed Slack user id", "type": "value_error"}])
    lock_org(org_id)
    membership = db.session.scalar(select(Membership).where(Membership.org_id == org_id,
                                                            Membership.id == membership_id))
    if membership is None:
        db.session.rollback()
        raise ApiError(404, "Member not found")
    before = membership.slack_user_id or ""
    if before == value:
        db.session.rollback()
        return membership
    if value and db.session.scalar(select(Membership.id).where(
            Membership.org_id == org_id, Membership.slack_user_id == value, Membership.id != membership_id).limit(1)):
        db.session.rollback()
        raise ApiError(409, f"Another member of this organisation is already linked to Slack user {value}.",
                       errors=[{"loc": ["slack_user_id"], "msg": "already linked", "type": "conflict"}])
    membership.slack_user_id = value or None
    user = db.session.get(User, membership.user_id)
    record(org_id, "membership.slack_user_linked" if value else "membership.slack_user_unlinked", actor,
           target_type="membership", target_id=membership.id, control_tags=LINK_TAGS, now=now,
           data={"user": user.email if user else "", "from": before, "to": value})
    db.session.commit()
    return membership
