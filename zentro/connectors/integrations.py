"""Integrations: the provider catalogue, validation, create / update / delete, and the connection test.

Rules
* One catalogue (``PROVIDERS``): key, label, kind (alert_source | vulnerability_source | notification | backend),
  a strict pydantic model for the configuration and one for the secrets, what Zentro does with the connection
  (``scopes``), and a probe.
* Secrets (API keys, app keys, bot tokens, passwords) are write-only: stored together as one Fernet token under
  the key zentro.platform.secretbox derives from SECRET_KEY, never returned. Responses carry ``secrets_set`` (names)
  and ``secret_hints`` (the last 4 characters of secrets of 16 characters or more). A secret set to null in a
  PATCH is removed; audit rows name changed secrets, never their values.
* Sources (alert_source, vulnerability_source) get an alert-ingest token (``zentro_it_…``) on create. The token is
  in the create answer (and a rotate answer) only, with the ingest URL, headers, an example payload the ingest
  endpoint accepts and a curl line; reads show the URL and the token's prefix. Rotating revokes the old token at
  once; deleting the integration revokes its token and removes the row (hard delete; the audit log keeps it).
  "Last sync" of a source is when its token last authenticated an ingest request (``last_used_at``, kept to the
  minute); for the others it is the last successful connection test.
* URLs: http(s), a host, no credentials, query or fragment, at most 500 characters. A literal private, loopback
  or link-local IP address is refused at once unless ZENTRO_INTEGRATIONS_ALLOW_PRIVATE; host names are checked
  when the test connects (every resolved address; no redirects followed).
* The test makes one real, bounded request (ZENTRO_INTEGRATION_PROBE_TIMEOUT_SECONDS) to the configured
  endpoint and records the verdict: healthy (the provider accepted the credentials), failing (with the reason,
  HTTP status, latency), or not_testable when there is nothing outbound to call (an inbound-only source without
  an API key) — never a fake ok.
* Names are unique per organisation (409). Service functions take the org id and ``now``; they commit.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from zentro.accounts.models import IngestToken, Org, User
from zentro.accounts.service import create_ingest_token
from zentro.audit.service import Actor, record
from zentro.connectors import service as backends
from zentro.connectors.models import Integration
from zentro.extensions import db
from zentro.platform import secretbox
from zentro.platform.errors import ApiError, not_found
from zentro.platform.outbound import MAX_DETAIL, AddressRefused, address_refusal, check_base_url, guarded_client, \
    resolve_checked
from zentro.platform.types import iso, utcnow

SETTING = "ZENTRO_INTEGRATIONS_ALLOW_PRIVATE"
MAX_NAME = 100
MAX_URL = 500
HINT_MIN_LENGTH = 16
ACCESS_TAGS = ("SOC2:CC6.1",)
REVOKE_TAGS = ("SOC2:CC6.2",)
MONITOR_TAGS = ("SOC2:CC7.2",)
ALERTS_PATH = "/api/integrations/alerts"
VULNS_PATH = "/api/integrations/vulnerabilities"

Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_URL)]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# --- configuration and secret models, one pair per provider --------------------------------------------

class DatadogConfig(_Strict):
    api_url: Url = Field("https://api.datadoghq.com", description="Datadog API base URL of your site "
                                                                  "(https://api.datadoghq.eu, https://api.us5.datadoghq.com ...).")


class DatadogSecrets(_Strict):
    api_key: Secret | None = Field(None, description="API key: the test calls GET /api/v1/validate with it.")
    app_key: Secret | None = Field(None, description="Application key (stored for API calls that need one).")


class AlertmanagerConfig(_Strict):
    url: Url | None = Field(None, description="Alertmanager base URL; the test calls GET {url}/-/healthy.")


class AlertmanagerSecrets(_Strict):
    bearer_token: Secret | None = Field(None, description="Sent as Authorization: Bearer to a protected Alertmanager.")


class PagerDutyConfig(_Strict):
    api_url: Url = Field("https://api.pagerduty.com", description="PagerDuty REST API base URL.")


class PagerDutySecrets(_Strict):
    api_key: Secret | None = Field(None, description="REST API key: the test calls GET /abilities with it.")


class NewRelicConfig(_Strict):
    api_url: Url = Field("https://api.newrelic.com", description="NerdGraph base URL (https://api.eu.newrelic.com "
                                                                 "for the EU region).")


class NewRelicSecrets(_Strict):
    api_key: Secret | None = Field(None, description="User API key (NRAK-…): the test asks NerdGraph who it is.")


class QualysConfig(_Strict):
    api_url: Url = Field(description="Your Qualys platform's API server (https://qualysapi.qualys.com, "
                                     "https://qualysapi.qg2.apps.qualys.eu ...).")
    username: Text = Field("", description="API user name (basic auth for the test).")


class QualysSecrets(_Strict):
    password: Secret | None = Field(None, description="API user's password.")


class TenableConfig(_Strict):
    api_url: Url = Field("https://cloud.tenable.com", description="Tenable Vulnerability Management API base URL.")


class TenableSecrets(_Strict):
    access_key: Secret | None = Field(None, description="API access key.")
    secret_key: Secret | None = Field(None, description="API secret key.")


class SlackConfig(_Strict):
    api_url: Url | None = Field(None, description="Slack Web API base URL (default: the server's ZENTRO_SLACK_API_URL, "
                                                  "https://slack.com/api/).")
    default_channel: Text = Field("", description="Channel for messages (#ops).")


class SlackSecrets(_Strict):
    bot_token: Secret = Field(description="Bot token (xoxb-…): the test calls auth.test with it.")


class SmtpConfig(_Strict):
    host: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=253,
                                           pattern=r"^[A-Za-z0-9.\-:\[\]]+$")] = Field(description="SMTP server host.")
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = Field("starttls", description="starttls: upgrade after EHLO "
                                                         "(refused if the server does not offer it); tls: TLS from the "
                                                         "start (port 465); none: plain text.")
    username: Text = Field("", description="Login (the test logs in when a username and password are set).")
    from_address: Text = Field("", description="Sender address for mail sent through this server.")


class SmtpSecrets(_Strict):
    password: Secret | None = Field(None, description="Password for the login.")


class BackendConfig(_Strict):
    base_url: Url = Field(description="Base URL of the backend; the test calls GET {base_url}/health (the base URL "
                                      "itself when /health is 404).")


class NoSecrets(_Strict):
    pass


# --- probes ------------------------------------------------------------------------------------------

@dataclass
class ProbeContext:
    allow_private: bool
    timeout: float
    slack_api_url: str = "https://slack.com/api/"
    last_received_at: dt.datetime | None = None
    secret_values: tuple[str, ...] = ()
    clock: Callable[[], float] = time.perf_counter


def _result(outcome: str, detail: str, ctx: ProbeContext, *, http_status: int | None = None,
            latency_ms: float | None = None, target: str = "") -> dict:
    for value in ctx.secret_values:  # never echo a secret back, whatever the provider answered
        if value and len(value) >= 4:
            detail = detail.replace(value, "[secret]")
    return {"outcome": outcome, "detail": detail[:MAX_DETAIL], "http_status": http_status,
            "latency_ms": latency_ms, "target": target}


def _excerpt(resp: httpx.Response) -> str:
    text = " ".join(resp.text[:300].split())
    return f": {text[:200]}" if text else ""


def _http_probe(ctx: ProbeContext, method: str, url: str, *, headers: dict | None = None, json_body: Any = None,
                auth: tuple[str, str] | None = None,
                judge: Callable[[httpx.Response], tuple[bool, str]] | None = None) -> dict:
    """One request through the guarded client; healthy when ``judge`` (default: a 2xx) says so."""
    target = f"{method} {_origin(url)}{urlsplit(url).path}"
    refusal = check_base_url(url)
    if refusal:
        return _result("failing", refusal, ctx, target=target)
    started = ctx.clock()

    def elapsed() -> float:
        return round((ctx.clock() - started) * 1000, 1)

    try:
        with guarded_client(allow_private=ctx.allow_private, timeout=ctx.timeout, setting=SETTING) as client:
            resp = client.request(method, url, headers={"User-Agent": "Zentro-Integration-Test/1", **(headers or {})},
                                  json=json_body, auth=auth)
            resp.read()
    except AddressRefused as exc:
        return _result("failing", str(exc), ctx, target=target)
    except httpx.TimeoutException:
        return _result("failing", f"timed out after {ctx.timeout:g} s", ctx, latency_ms=elapsed(), target=target)
    except httpx.HTTPError as exc:
        return _result("failing", f"{type(exc).__name__}: {exc}", ctx, latency_ms=elapsed(), target=target)
    latency = elapsed()
    if 300 <= resp.status_code < 400:
        return _result("failing", f"HTTP {resp.status_code}: redirects are not followed (check the URL)", ctx,
                       http_status=resp.status_code, latency_ms=latency, target=target)
    ok, why = judge(resp) if judge else (resp.is_success, "")
    if ok:
        return _result("healthy", why or f"HTTP {resp.status_code}", ctx, http_status=resp.status_code,
                       latency_ms=latency, target=target)
    return _result("failing", why or f"HTTP {resp.status_code}{_excerpt(resp)}", ctx, http_status=resp.status_code,
                   latency_ms=latency, target=target)


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _inbound_only(ctx: ProbeContext, what: str, missing: str) -> dict:
    seen = (f"last {what} received at {iso(ctx.last_received_at)}" if ctx.last_received_at
            else f"no {what} received yet")
    return _result("not_testable", f"Inbound only: {missing}, so there is nothing to call; {seen}.", ctx)


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + path


def probe_datadog(cfg: dict, sec: dict, ctx: ProbeContext) -> dict:
    if not sec.get("api_key"):
        return _inbound_only(ctx, "alert", "no API key is configured")

    def judge(resp):
        body = _json(resp)
        if resp.is_success and isinstance(body, dict) and body.get("valid") is True:
            return True, f"HTTP {resp.status_code}: API key valid"
        return False, ""

    return _http_probe(ctx, "GET", _join(cfg["api_url"], "/api/v1/validate"), headers={"DD-API-KEY": sec["api_key"]},
                       judge=judge)


def probe_alertmanager(cfg: dict, sec: dict, ctx: ProbeContext) -> dict:
    if not cfg.get("url"):
        return _inbound_only(ctx, "alert", "no Alertmanager URL is configured")
    headers = {"Authorization": f"Bearer {sec['bearer_token']}"} if sec.get("bearer_token") else {}
    return _http_probe(ctx, "GET", _join(cfg["url"], "/-/healthy"), headers=headers)


def probe_pagerduty(cfg: dict, sec: dict, ctx: ProbeContext) -> dict:
    if not sec.get("api_key"):
        return _inbound_only(ctx, "alert", "no REST API key is configured")
    return _http_probe(ctx, "GET", _join(cfg["api_url"], "/abilities"),
                       headers={"Authorization": f"Token token={sec['api_key']}",
                                "Accept": "application/vnd.pagerduty+json;version=2"})


def probe_newrelic(cfg: dict, sec: dict, ctx: ProbeContext) -> dict:
    if not sec.get("api_key"):
        return _inbound_only(ctx, "alert", "no User API key is configured")

    def judge(resp):
        body = _json(resp)
        if not resp.is_success or not isinstance(body, dict):
            return False, ""
        if body.get("errors"):
            messages = [e.get("message", "") for e in body["errors"] if isinstance(e, dict)]
            return False, f"HTTP {resp.status_code}: NerdGraph refused the key: {'; '.join(messages)[:200]}"
        user = ((body.get("data") or {}).get("actor") or {}).get("user") or {}
        return (True, f"HTTP {resp.status_code}: authenticated as {user.get('email')}") if user.get("email") else (
            False, f"HTTP {resp.status_code}: NerdGraph answered without a user")

    return _http_probe(ctx, "POST", _join(cfg["api_url"], "/graphql"),
                       headers={"API-Key": sec["api_key"], "Content-Type": "application/json"},
                       json_body={"query": "{ actor { user { email } } }"}, judge=judge)


def probe_qualys(cfg: dict, sec: dict, ctx: ProbeContext) -> dict:
    if not (cfg.get("username") and sec.get("password")):
        return _inbound_only(ctx, "finding", "no API username and password are configured")
    return _http_probe(ctx, "GET", _join(cfg["api_url"], "/msp/about.php"), headers={"X-Requested-With": "Zentro"},
                       auth=(cfg["username"], sec["password"]))


def probe_tenable(cfg: dict, sec: dict, ctx: ProbeContext) -> dict:
    if not (sec.get("access_key") and sec.get("secret_key")):
        return _inbound_only(ctx, "finding", "no API access and secret keys are configured")
    return _http_probe(ctx, "GET", _join(cfg["api_url"], "/session"),
                       headers={"X-ApiKeys": f"accessKey={sec['access_key']};secretKey={sec['secret_key']}",
                                "Accept": "application/json"})


def probe_slack(cfg: dict, sec: dict, ctx: ProbeContext) -> dict:
    from slack_sdk import WebClient  # noqa: PLC0415
    from slack_sdk.errors import SlackApiError  # noqa: PLC0415

    base = cfg.get("api_url") or ctx.slack_api_url
    base = base if base.endswith("/") else base + "/"
    target = f"POST {_origin(base)}{urlsplit(base).path}auth.test"
    refusal = check_base_url(base)
    if refusal:
        return _result("failing", refusal, ctx, target=target)
    parts = urlsplit(base)
    try:  # slack_sdk connects by itself: check the address policy first
        resolve_checked(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                        allow_private=ctx.allow_private, setting=SETTING)
    except AddressRefused as exc:
        return _result("failing", str(exc), ctx, target=target)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        return _result("failing", f"cannot resolve {parts.hostname}: {exc}", ctx, target=target)
    started = ctx.clock()
    try:
        resp = WebClient(token=sec["bot_token"], base_url=base, timeout=max(1, round(ctx.timeout))).auth_test()
    except SlackApiError as exc:
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        return _result("failing", f"Slack answered {exc.response.status_code}: {data.get('error') or 'unknown error'}",
                       ctx, http_status=exc.response.status_code,
                       latency_ms=round((ctx.clock() - started) * 1000, 1), target=target)
    except Exception as exc:  # noqa: BLE001 - timeouts, refused connections: a failing test, said as it is
        return _result("failing", f"{type(exc).__name__}: {exc}", ctx,
                       latency_ms=round((ctx.clock() - started) * 1000, 1), target=target)
    who = " ".join(x for x in (f"as {resp.get('user')}" if resp.get("user") else "",
                                f"in {resp.get('team')}" if resp.get("team") else "") if x)
    return _result("healthy", f"auth.test ok{(' ' + who) if who else ''}", ctx, http_status=resp.status_code,
                   latency_ms=round((ctx.clock() - started) * 1000, 1), target=target)


class _Pinned:
    """smtplib connects to the address that passed the policy check; TLS still verifies the host name."""

    pinned_ip = ""

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((self.pinned_ip, port), timeout, self.source_address)
        if isinstance(self, smtplib.SMTP_SSL):
            return self.context.wrap_socket(sock, server_hostname=self._host)
        return sock


class _PinnedSMTP(_Pinned, smtplib.SMTP):
    pass


class _PinnedSMTPSSL(_Pinned, smtplib.SMTP_SSL):
    pass


def probe_smtp(cfg: dict, sec: dict, ctx: ProbeContext) -> dict:
    host, port, security = cfg["host"].strip("[]"), cfg["port"], cfg["security"]
    target = f"smtp {host}:{port} ({security})"
    started = ctx.clock()

    def elapsed() -> float:
        return round((ctx.clock() - started) * 1000, 1)

    try:
        ip = resolve_checked(host, port, allow_private=ctx.allow_private, setting=SETTING)[0]
    except AddressRefused as exc:
        return _result("failing", str(exc), ctx, target=target)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        return _result("failing", f"cannot resolve {host}: {exc}", ctx, target=target)
    context = ssl.create_default_context()
    steps = []
    try:
        server = (_PinnedSMTPSSL(timeout=ctx.timeout, context=context) if security == "tls"
                  else _PinnedSMTP(timeout=ctx.timeout))
        server.pinned_ip = ip
        with server:
            code, banner = server.connect(host, port)
            steps.append(f"connected ({code})")
            server.ehlo()
            steps.append("EHLO ok")
            if security == "starttls":
                if not server.has_extn("starttls"):
                    return _result("failing", "the server does not offer STARTTLS (choose security \"none\" only for "
                                              "a trusted network)", ctx, latency_ms=elapsed(), target=target)
                server.starttls(context=context)
                server.ehlo()
                steps.append("STARTTLS ok")
            if cfg.get("username") and sec.get("password"):
                server.login(cfg["username"], sec["password"])
                steps.append("login ok")
            else:
                steps.append("no login configured")
    except smtplib.SMTPAuthenticationError as exc:
        return _result("failing", f"login refused: {exc.smtp_code} {exc.smtp_error.decode(errors='replace')}", ctx,
                       latency_ms=elapsed(), target=target)
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        what = f"timed out after {ctx.timeout:g} s" if isinstance(exc, (socket.timeout, TimeoutError)) else \
            f"{type(exc).__name__}: {exc}"
        return _result("failing", what, ctx, latency_ms=elapsed(), target=target)
    return _result("healthy", "; ".join(steps), ctx, latency_ms=elapsed(), target=target)


def _backend_probe(name: str) -> Callable[[dict, dict, ProbeContext], dict]:
    def run(cfg: dict, sec: dict, ctx: ProbeContext) -> dict:
        out = backends.probe(name, cfg["base_url"], allow_private=ctx.allow_private, timeout=ctx.timeout,
                             clock=ctx.clock)
        target = f"GET {_origin(cfg['base_url'])}{out['path'] or '/health'}"
        if out["ok"]:
            return _result("healthy", f"HTTP {out['status']} from {out['path']}", ctx, http_status=out["status"],
                           latency_ms=out["latency_ms"], target=target)
        return _result("failing", out["error"] or "no answer", ctx, http_status=out["status"],
                       latency_ms=out["latency_ms"], target=target)
    return run


# --- the catalogue -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Provider:
    key: str
    label: str
    kind: str
    description: str
    config_model: type[BaseModel]
    secrets_model: type[BaseModel]
    scopes: tuple[str, ...]
    probe: Callable[[dict, dict, ProbeContext], dict]
    url_fields: tuple[str, ...] = ()
    ingest_source: str | None = None  # the ?source= the ingest endpoint expects
    setup: tuple[str, ...] = ()
    payload_template: dict | None = None
    example_payload: dict = field(default_factory=dict)


DATADOG_TEMPLATE = {
    "id": "$ID", "title": "$EVENT_TITLE", "body": "$EVENT_MSG", "date": "$DATE", "last_updated": "$LAST_UPDATED",
    "event_type": "$EVENT_TYPE", "alert_id": "$ALERT_ID", "aggregate": "$AGGREG_KEY",
    "alert_transition": "$ALERT_TRANSITION", "alert_type": "$ALERT_TYPE", "alert_priority": "$ALERT_PRIORITY",
    "alert_title": "$ALERT_TITLE", "tags": "$TAGS", "hostname": "$HOSTNAME", "link": "$LINK"}
NEWRELIC_TEMPLATE = {
    "issueId": "{{issueId}}", "issueUrl": "{{issuePageUrl}}", "title": "{{annotations.title.[0]}}",
    "priority": "{{priority}}", "state": "{{state}}", "impactedEntities": "{{json entitiesData.names}}",
    "createdAt": "{{createdAt}}", "updatedAt": "{{updatedAt}}", "alertPolicyNames": "{{json accumulations.policyName}}",
    "alertConditionNames": "{{json accumulations.conditionName}}"}

PROVIDERS: dict[str, Provider] = {p.key: p for p in (
    Provider("datadog", "Datadog", "alert_source", "Monitor notifications through Datadog's Webhooks integration.",
             DatadogConfig, DatadogSecrets, ("alerts:ingest", "datadog:validate"), probe_datadog, ("api_url",),
             "datadog",
             ("In Datadog, open Integrations › Webhooks and add a webhook with the URL below.",
              "Add the custom header Authorization: Bearer <token>.",
              "Paste the payload template below, then mention @webhook-<name> in your monitors."),
             DATADOG_TEMPLATE,
             {"id": "7319875264123456789", "title": "[Triggered on {service:checkout}] Checkout 5xx above 2%",
              "body": "5xx rate 3.4% over the last 5 minutes", "date": "1767355200000",
              "event_type": "query_alert_monitor", "alert_id": "48151623", "aggregate": "zentro-setup-check",
              "alert_transition": "Triggered", "alert_type": "error", "alert_priority": "P2",
              "alert_title": "Checkout 5xx above 2%", "tags": "service:checkout,env:prod", "hostname": "web-1"}),
    Provider("alertmanager", "Prometheus Alertmanager", "alert_source",
             "Alertmanager (or Grafana alerting) webhook receivers.",
             AlertmanagerConfig, AlertmanagerSecrets, ("alerts:ingest", "alertmanager:health"), probe_alertmanager,
             ("url",), "alertmanager",
             ("Add a receiver with webhook_configs: - url: <the URL below>, send_resolved: true.",
              "Under http_config, set authorization: {type: Bearer, credentials: <token>}.",
              "Route the alerts you want in Zentro to that receiver."),
             None,
             {"version": "4", "groupKey": "{}:{alertname=\"HighErrorRate\"}", "status": "firing",
              "receiver": "zentro", "groupLabels": {"alertname": "HighErrorRate"},
              "commonLabels": {"alertname": "HighErrorRate", "severity": "critical"}, "commonAnnotations": {},
              "externalURL": "http://alertmanager.example:9093",
              "alerts": [{"status": "firing", "fingerprint": "5f2c0e1d9a8b7c6d",
                          "labels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"},
                          "annotations": {"summary": "Checkout error rate above 5%"},
                          "startsAt": "2026-01-05T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}]}),
    Provider("pagerduty", "PagerDuty", "alert_source",
             "PagerDuty v3 webhook subscriptions (incident events), or Events API v2 senders pointed at Zentro.",
             PagerDutyConfig, PagerDutySecrets, ("alerts:ingest", "pagerduty:abilities"), probe_pagerduty,
             ("api_url",), "pagerduty",
             ("In PagerDuty, open Integrations › Generic Webhooks (v3) and add a subscription with the URL below.",
              "Add the custom header Authorization: Bearer <token>.",
              "Subscribe to incident.triggered, incident.acknowledged and incident.resolved."),
             None,
             {"event": {"id": "01DEN3M1S3PEYFJUCDNLOT4XSS", "event_type": "incident.triggered",
                        "resource_type": "incident", "occurred_at": "2026-01-05T10:00:00Z",
                        "data": {"id": "Q2PD7SMPS2KGZM", "type": "incident", "title": "Checkout latency above SLO",
                                 "status": "triggered", "urgency": "high", "service": {"summary": "checkout"},
                                 "priority": {"summary": "P2"}}}}),
    Provider("newrelic", "New Relic", "alert_source", "New Relic workflows with a webhook destination.",
             NewRelicConfig, NewRelicSecrets, ("alerts:ingest", "newrelic:nerdgraph"), probe_newrelic, ("api_url",),
             "newrelic",
             ("In New Relic, add a Webhook destination with the URL below and Bearer authorization <token>.",
              "In a workflow, notify that destination with the payload template below."),
             NEWRELIC_TEMPLATE,
             {"issueId": "b3c1a2d4-zentro-setup-check", "issueUrl": "https://one.newrelic.com/alerts-ai/issues/b3c1a2d4",
              "title": "Checkout p99 latency above 2 s", "priority": "HIGH", "state": "ACTIVATED",
              "impactedEntities": ["checkout"], "createdAt": 1767355200000, "updatedAt": 1767355200000,
              "alertPolicyNames": ["Checkout"], "alertConditionNames": ["p99 latency"]}),
    Provider("qualys", "Qualys VMDR", "vulnerability_source",
             "Qualys host detections, pushed by your export job.",
             QualysConfig, QualysSecrets, ("vulnerabilities:ingest", "qualys:about"), probe_qualys, ("api_url",),
             "qualys",
             ("Have your export job POST each batch of host detections (JSON, {\"findings\": [...]}) to the URL below.",
              "Send Authorization: Bearer <token> and Content-Type: application/json."),
             None,
             {"qid": 38170, "ip": "10.0.4.12", "dns": "checkout-web-1.prod.internal",
              "title": "SSL Certificate - Expired", "severity": 4, "status": "Active", "cve": "CVE-2023-1234",
              "cvss3_base": 7.5}),
    Provider("tenable", "Tenable", "vulnerability_source",
             "Tenable Vulnerability Management / Nessus findings, pushed by your export job.",
             TenableConfig, TenableSecrets, ("vulnerabilities:ingest", "tenable:session"), probe_tenable, ("api_url",),
             "tenable",
             ("Have your export job POST the vulnerability export's findings (JSON, {\"findings\": [...]}) to the URL "
              "below.",
              "Send Authorization: Bearer <token> and Content-Type: application/json."),
             None,
             {"asset": {"uuid": "0f3c1d2e-4b5a-6978-8a9b-0c1d2e3f4a5b", "hostname": "payments-db-1",
                        "ipv4": "10.0.9.4"},
              "plugin": {"id": 156032, "name": "Apache Log4j RCE", "cve": ["CVE-2021-44228"],
                         "cvss3_base_score": 10.0},
              "severity": "critical", "state": "OPEN"}),
    Provider("slack", "Slack", "notification", "A Slack app's bot token for messages and approvals.",
             SlackConfig, SlackSecrets, ("chat:write",), probe_slack, ("api_url",)),
    Provider("smtp", "SMTP", "notification", "An SMTP server for e-mail.", SmtpConfig, SmtpSecrets,
             ("mail:send",), probe_smtp),
    Provider("reasoning", "Reasoning backend", "backend", "The reasoning service the copilot and RCA may call.",
             BackendConfig, NoSecrets, ("reasoning:call",), _backend_probe("reasoning"), ("base_url",)),
    Provider("robot", "Automation robot", "backend", "The robot that runs automation steps.",
             BackendConfig, NoSecrets, ("robot:call",), _backend_probe("robot"), ("base_url",)),
)}
PROVIDER_KEYS = tuple(PROVIDERS)
SOURCE_KINDS = ("alert_source", "vulnerability_source")


def _fields(model: type[BaseModel]) -> list[dict]:
    out = []
    for name, f in model.model_fields.items():
        schema = model.model_json_schema()["properties"][name]
        out.append({"name": name, "required": f.is_required(), "description": f.description or "",
                    "default": None if f.is_required() else f.default,
                    "type": schema.get("type") or next((s.get("type") for s in schema.get("anyOf", [])
                                                        if s.get("type") != "null"), "string"),
                    **({"choices": list(schema["enum"])} if "enum" in schema else {})})
    return out


def catalogue() -> list[dict]:
    """Every provider with its fields (for forms and GET /api/v1/integrations/providers)."""
    return [{"key": p.key, "label": p.label, "kind": p.kind, "description": p.description, "scopes": list(p.scopes),
             "config_fields": _fields(p.config_model), "secret_fields": _fields(p.secrets_model),
             "ingest_path": _ingest_path(p)} for p in PROVIDERS.values()]


def _ingest_path(p: Provider) -> str | None:
    if p.kind == "alert_source":
        return ALERTS_PATH
    if p.kind == "vulnerability_source":
        return VULNS_PATH
    return None


# --- validation --------------------------------------------------------------------------------------

def _origin(url: str) -> str:
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"
    except ValueError:
        return ""


def provider_of(key: str) -> Provider:
    p = PROVIDERS.get(key)
    if p is None:
        raise ApiError(400, f"Unknown provider {key[:40]!r}; use one of {', '.join(PROVIDER_KEYS)}.")
    return p


def _errors(exc: ValidationError, where: str) -> list[dict]:
    return [{"loc": [where, *[str(x) for x in e["loc"]]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)]


def check_url(url: str, where: str, *, allow_private: bool) -> str:
    """The URL if it can be configured; 400 naming the field otherwise (no DNS here: the test resolves)."""
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ApiError(400, f"{where}: the URL must not contain spaces or control characters.")
    refusal = check_base_url(url)
    if refusal:
        raise ApiError(400, f"{where}: {refusal}")
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ApiError(400, f"{where}: give the base URL without a ?query or #fragment.")
    try:
        ip = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return url
    reason = address_refusal(str(ip))
    if reason and not allow_private:
        raise ApiError(400, f"{where}: refused: {reason} (set {SETTING}=1 to allow)")
    return url


def validate(p: Provider, config: dict, secrets: dict | None, *, allow_private: bool) -> tuple[dict, dict]:
    """(clean config, secrets without empty values) or 400 with every problem located under config/secrets.
    ``secrets`` None: they are not being changed (and not checked)."""
    try:
        cfg = p.config_model.model_validate(config).model_dump()
    except ValidationError as exc:
        raise ApiError(400, f"Invalid configuration for {p.label}", errors=_errors(exc, "config")) from None
    try:
        sec = p.secrets_model.model_validate(secrets).model_dump() if secrets is not None else {}
    except ValidationError as exc:
        raise ApiError(400, f"Invalid secrets for {p.label}", errors=_errors(exc, "secrets")) from None
    for name in p.url_fields:
        if cfg.get(name):
            cfg[name] = check_url(cfg[name], f"config.{name}", allow_private=allow_private)
    if p.key == "smtp":
        host = cfg["host"].strip("[]")
        try:
            reason = address_refusal(str(ipaddress.ip_address(host)))
        except ValueError:
            reason = ""
        if reason and not allow_private:
            raise ApiError(400, f"config.host: refused: {reason} (set {SETTING}=1 to allow)")
    return cfg, {k: v for k, v in sec.items() if v}


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ApiError(400, "Give the integration a name.")
    if len(name) > MAX_NAME:
        raise ApiError(400, f"The name may be at most {MAX_NAME} characters.")
    if any(ord(c) < 32 for c in name):
        raise ApiError(400, "The name must not contain control characters.")
    return name


def _name_taken(org_id: int, name: str, except_id: int | None = None) -> bool:
    q = select(Integration.id).where(Integration.org_id == org_id, Integration.name == name)
    if except_id is not None:
        q = q.where(Integration.id != except_id)
    return db.session.scalar(q) is not None


def _conflict(name: str) -> ApiError:
    return ApiError(409, f"An integration named {name!r} already exists in this organisation.")


# --- secrets -----------------------------------------------------------------------------------------

def _hint(value: str) -> str:
    return "…" + value[-4:] if len(value) >= HINT_MIN_LENGTH else ""


def _store_secrets(row: Integration, secrets: dict) -> None:
    row.secrets_ciphertext = secretbox.encrypt(json.dumps(secrets, sort_keys=True)) if secrets else None
    row.secret_hints = {k: _hint(v) for k, v in sorted(secrets.items())}


def read_secrets(row: Integration) -> dict:
    """The decrypted secrets (for a probe). Raises 409 when no configured key opens them (SECRET_KEY
    changed without the old key in ZENTRO_SECRET_KEY_FALLBACKS)."""
    if not row.secrets_ciphertext:
        return {}
    try:
        return json.loads(secretbox.decrypt(row.secrets_ciphertext))
    except secretbox.Unreadable:
        raise ApiError(409, "This integration's secrets cannot be decrypted (the server's SECRET_KEY changed "
                            "without the old key as a fallback); set them again with PATCH.") from None


# --- Zentro's own outgoing e-mail and Slack ----------------------------------------------------------

OUTGOING_PROVIDERS = ("slack", "smtp")


def outgoing(org_id: int, provider: str) -> tuple[Integration, dict, dict] | None:
    """The org's newest Slack or SMTP integration with its config and decrypted secrets, or None. The org's
    e-mail and Slack deliveries (digests, notifications) go through it instead of the server-wide
    ZENTRO_SMTP_URL / ZENTRO_SLACK_BOT_TOKEN. Raises 409 when its secrets can no longer be decrypted."""
    if provider not in OUTGOING_PROVIDERS:
        raise ValueError(provider)
    row = db.session.scalar(select(Integration).where(Integration.org_id == org_id, Integration.provider == provider)
                            .order_by(Integration.id.desc()).limit(1))
    if row is None:
        return None
    return row, dict(row.config or {}), read_secrets(row)


# --- queries and JSON --------------------------------------------------------------------------------

def integrations_query(org_id: int, *, provider: str | None = None, status: str | None = None):
    q = select(Integration).where(Integration.org_id == org_id)
    if provider:
        q = q.where(Integration.provider == provider)
    if status:
        q = q.where(Integration.status == status)
    return q


def get_integration(org_id: int, integration_id: int) -> Integration:
    row = db.session.scalar(select(Integration).where(Integration.org_id == org_id, Integration.id == integration_id))
    if row is None:
        raise not_found("Integration")
    return row


def tokens_of(org_id: int, rows: list[Integration]) -> dict[int, IngestToken]:
    ids = [r.ingest_token_id for r in rows if r.ingest_token_id]
    if not ids:
        return {}
    return {t.id: t for t in db.session.scalars(select(IngestToken).where(IngestToken.org_id == org_id,
                                                                          IngestToken.id.in_(ids)))}


def ingest_url(p: Provider, public_base: str) -> str | None:
    path = _ingest_path(p)
    return f"{public_base.rstrip('/')}{path}?source={p.ingest_source}" if path else None


def ingest_json(p: Provider, tok: IngestToken | None, public_base: str, plaintext: str | None = None) -> dict | None:
    """How a source pushes to Zentro. ``token`` is the plaintext, present only right after create/rotate."""
    if p.kind not in SOURCE_KINDS:
        return None
    url = ingest_url(p, public_base)
    shown = plaintext or "<token>"
    body = json.dumps(p.example_payload, separators=(",", ":"))
    return {"url": url, "token": plaintext, "token_prefix": tok.prefix if tok else None,
            "token_revoked": bool(tok is None or tok.revoked_at is not None),
            "headers": {"Authorization": f"Bearer {shown}", "Content-Type": "application/json"},
            "setup": list(p.setup), "payload_template": p.payload_template, "example_payload": p.example_payload,
            "curl": (f"curl -sS -X POST '{url}' -H 'Authorization: Bearer {shown}' "
                     f"-H 'Content-Type: application/json' --data '{body}'")}


def last_sync(row: Integration, tok: IngestToken | None) -> dt.datetime | None:
    return tok.last_used_at if PROVIDERS[row.provider].kind in SOURCE_KINDS and tok else row.last_ok_at


def integration_json(row: Integration, tok: IngestToken | None, public_base: str,
                     plaintext_token: str | None = None) -> dict:
    p = PROVIDERS[row.provider]
    return {"id": row.id, "provider": row.provider, "provider_label": p.label, "kind": row.kind, "name": row.name,
            "config": dict(row.config or {}), "secrets_set": sorted((row.secret_hints or {}).keys()),
            "secret_hints": {k: v for k, v in (row.secret_hints or {}).items() if v},
            "scopes": list(p.scopes),
            "health": {"status": row.status, "last_checked_at": iso(row.last_checked_at),
                       "last_ok_at": iso(row.last_ok_at), "last_error": row.last_error,
                       "http_status": row.last_http_status, "latency_ms": row.latency_ms},
            "last_sync_at": iso(last_sync(row, tok)),
            "last_received_at": iso(tok.last_used_at) if tok and p.kind in SOURCE_KINDS else None,
            "ingest": ingest_json(p, tok, public_base, plaintext_token),
            "created_at": iso(row.created_at), "updated_at": iso(row.updated_at)}


# --- create / update / delete ------------------------------------------------------------------------

def _hosts(p: Provider, cfg: dict) -> dict:
    out = {n: urlsplit(cfg[n]).hostname for n in p.url_fields if cfg.get(n)}
    if p.key == "smtp":
        out["host"] = cfg["host"]
    return out


def _audit(row: Integration, action: str, actor: Actor, now: dt.datetime, tags=ACCESS_TAGS, **data) -> None:
    p = PROVIDERS[row.provider]
    record(row.org_id, action, actor, target_type="integration", target_id=row.id, control_tags=list(tags), now=now,
           data={"provider": row.provider, "name": row.name, "hosts": _hosts(p, row.config or {}), **data})


def _issue_token(org_id: int, name: str, actor: Actor, user_id: int | None) -> tuple[IngestToken, str]:
    org = db.session.get(Org, org_id)
    user = db.session.get(User, user_id) if user_id else None
    return create_ingest_token(org, f"Integration: {name}"[:100], actor, user)


def _revoke(tok: IngestToken | None, actor: Actor, now: dt.datetime) -> None:
    if tok is not None and tok.revoked_at is None:
        tok.revoked_at = now
        record(tok.org_id, "ingest_token.revoked", actor, target_type="ingest_token", target_id=tok.id,
               control_tags=list(REVOKE_TAGS), data={"prefix": tok.prefix}, now=now)


def create_integration(org_id: int, *, provider: str, name: str, config: dict, secrets: dict, actor: Actor,
                       allow_private: bool, user_id: int | None = None,
                       now: dt.datetime | None = None) -> tuple[Integration, str | None]:
    """Validate everything, issue the ingest token of a source, store the row. Returns (row, plaintext token or
    None). Commits."""
    now = now or utcnow()
    p = provider_of(provider)
    name = check_name(name)
    cfg, sec = validate(p, config or {}, secrets or {}, allow_private=allow_private)
    if _name_taken(org_id, name):
        raise _conflict(name)
    tok, plaintext = (_issue_token(org_id, name, actor, user_id) if p.kind in SOURCE_KINDS else (None, None))
    row = Integration(org_id=org_id, provider=p.key, kind=p.kind, name=name, config=cfg, status="untested",
                      last_error="", ingest_token_id=tok.id if tok else None, created_by_id=user_id,
                      created_at=now, updated_at=now)
    _store_secrets(row, sec)
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:  # a concurrent create took the name between the check and the insert
        db.session.rollback()
        if tok is not None:
            _revoke(db.session.get(IngestToken, tok.id), actor, now)
            db.session.commit()
        raise _conflict(name) from None
    _audit(row, "integration.created", actor, now, secrets_set=sorted(sec),
           ingest_token_prefix=tok.prefix if tok else None)
    db.session.commit()
    return row, plaintext


def update_integration(org_id: int, integration_id: int, changes: dict, *, actor: Actor, allow_private: bool,
                       user_id: int | None = None, now: dt.datetime | None = None) -> tuple[Integration, str | None]:
    """Apply ``changes``: name; config (merged; null resets a field to its default); secrets (set, or null to
    remove); rotate_ingest_token. Changed configuration or secrets reset health to untested. Returns (row, new
    plaintext token or None). Commits."""
    now = now or utcnow()
    row = get_integration(org_id, integration_id)
    p = PROVIDERS[row.provider]
    changed: list[str] = []
    new_name = check_name(changes["name"]) if changes.get("name") is not None else row.name
    cfg, sec = dict(row.config or {}), None
    if changes.get("config") is not None:
        for k, v in changes["config"].items():
            if v is None:
                cfg.pop(k, None)
            else:
                cfg[k] = v
    secret_changes = changes.get("secrets") or {}
    current: dict = {}
    if secret_changes:
        try:
            current = read_secrets(row)
        except ApiError:  # unreadable (SECRET_KEY changed): the values sent now replace them
            current = {}
    merged = {**current, **{k: v for k, v in secret_changes.items() if v is not None}}
    for k, v in secret_changes.items():
        if v is None:
            merged.pop(k, None)
    cfg, sec = validate(p, cfg, merged if secret_changes else None, allow_private=allow_private)
    rotate = bool(changes.get("rotate_ingest_token"))
    if rotate and p.kind not in SOURCE_KINDS:
        raise ApiError(400, f"{p.label} integrations have no ingest token to rotate.")
    if new_name != row.name:
        if _name_taken(org_id, new_name, except_id=row.id):
            raise _conflict(new_name)
        changed.append("name")
    if cfg != (row.config or {}):
        changed.append("config")
    secrets_changed = sorted(k for k in set(current) | set(merged) if current.get(k) != merged.get(k)) \
        if secret_changes else []
    if not changed and not secrets_changed and not rotate:
        return row, None
    plaintext = None
    if rotate:
        old = db.session.get(IngestToken, row.ingest_token_id) if row.ingest_token_id else None
        tok, plaintext = _issue_token(org_id, new_name, actor, user_id)  # commits
        row = get_integration(org_id, integration_id)
        _revoke(old, actor, now)
        row.ingest_token_id = tok.id
    row.name, row.config = new_name, cfg
    if secrets_changed:
        _store_secrets(row, sec)
    if "config" in changed or secrets_changed:
        row.status, row.last_error = "untested", ""
    row.updated_at = now
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise _conflict(new_name) from None
    if changed or secrets_changed:
        _audit(row, "integration.updated", actor, now, changed=changed, secrets_changed=secrets_changed)
    if rotate:
        _audit(row, "integration.token_rotated", actor, now, ingest_token_prefix=tok.prefix)
    db.session.commit()
    return row, plaintext


def delete_integration(org_id: int, integration_id: int, *, actor: Actor, now: dt.datetime | None = None) -> None:
    """Revoke the ingest token (further pushes get 401) and remove the row. Commits."""
    now = now or utcnow()
    row = get_integration(org_id, integration_id)
    tok = db.session.get(IngestToken, row.ingest_token_id) if row.ingest_token_id else None
    _revoke(tok, actor, now)
    _audit(row, "integration.deleted", actor, now, tags=REVOKE_TAGS, ingest_token_revoked=tok.prefix if tok else None)
    db.session.delete(row)
    db.session.commit()


# --- the connection test -----------------------------------------------------------------------------

def test_integration(org_id: int, integration_id: int, *, actor: Actor, allow_private: bool, timeout: float,
                     slack_api_url: str = "https://slack.com/api/", now: dt.datetime | None = None,
                     clock: Callable[[], float] = time.perf_counter) -> dict:
    """Run the provider's probe (one bounded request), record the health and audit ``integration.tested``.
    Commits (before the network call too: no write transaction is held while the provider answers)."""
    row = get_integration(org_id, integration_id)
    p = PROVIDERS[row.provider]
    sec = read_secrets(row)
    tok = db.session.get(IngestToken, row.ingest_token_id) if row.ingest_token_id else None
    ctx = ProbeContext(allow_private=allow_private, timeout=timeout, slack_api_url=slack_api_url,
                       last_received_at=tok.last_used_at if tok else None,
                       secret_values=tuple(v for v in sec.values() if isinstance(v, str)), clock=clock)
    cfg = dict(row.config or {})
    db.session.commit()
    result = p.probe(cfg, sec, ctx)
    now = now or utcnow()
    row = get_integration(org_id, integration_id)
    row.status = result["outcome"]
    row.last_checked_at = now
    row.last_error = result["detail"] if result["outcome"] == "failing" else ""
    row.last_http_status, row.latency_ms = result["http_status"], result["latency_ms"]
    if result["outcome"] == "healthy":
        row.last_ok_at = now
    _audit(row, "integration.tested", actor, now, tags=MONITOR_TAGS, outcome=result["outcome"],
           http_status=result["http_status"], latency_ms=result["latency_ms"],
           **({"error": row.last_error} if row.last_error else {}))
    db.session.commit()
    return {**result, "status": row.status, "checked_at": iso(now)}

