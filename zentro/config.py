"""Every Zentro setting, read from ``ZENTRO_*`` environment variables.

Each entry documents itself; ``README.md`` lists the same table (a test keeps the two in step).
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = ROOT / "instance"


@dataclass(frozen=True)
class Setting:
    env: str
    key: str
    default: object
    kind: type
    help: str


SETTINGS: list[Setting] = [
    Setting("ZENTRO_DATABASE_URL", "SQLALCHEMY_DATABASE_URI", None, str,
            "SQLAlchemy URL. Default: SQLite file instance/zentro.db. Production: postgresql+psycopg://user@host/db"),
    Setting("ZENTRO_SECRET_KEY", "SECRET_KEY", None, str,
            "Signs session cookies and CSRF tokens and encrypts stored webhook and integration secrets. Default: a random key kept in instance/secret_key (one host only)."),
    Setting("ZENTRO_SECRET_KEY_FALLBACKS", "SECRET_KEY_FALLBACKS", (), list,
            "Earlier secret keys, comma-separated, while SECRET_KEY is rotated: sessions signed and secrets encrypted with them stay valid until `zentro secrets rotate` has re-encrypted what is stored (docs/deploy.md)."),
    Setting("ZENTRO_MAX_CONTENT_LENGTH", "MAX_CONTENT_LENGTH", 1_048_576, int,
            "Largest accepted request body in bytes; larger bodies get 413 PAYLOAD_TOO_LARGE."),
    Setting("ZENTRO_RATELIMIT_STORAGE_URI", "RATELIMIT_STORAGE_URI", "memory://", str,
            "Flask-Limiter storage. memory:// is per process: use redis://host:6379/0 whenever more than one worker runs."),
    Setting("ZENTRO_RATELIMIT_KEY_PREFIX", "RATELIMIT_KEY_PREFIX", "", str,
            "Prefix of the rate-limit keys in the shared storage, so several deployments can share one Redis."),
    Setting("ZENTRO_RATELIMIT_ENABLED", "RATELIMIT_ENABLED", True, bool,
            "Set to 0 to switch API rate limiting off (benchmarks only)."),
    Setting("ZENTRO_ANON_RATE_LIMIT", "ZENTRO_ANON_RATE_LIMIT", "60/minute", str,
            "Limit for unauthenticated API calls, per client address."),
    Setting("ZENTRO_LOGIN_RATE_LIMIT", "ZENTRO_LOGIN_RATE_LIMIT", "5/minute;20/hour", str,
            "Failed sign-ins allowed per client address and email before 429."),
    Setting("ZENTRO_IDEMPOTENCY_TTL_HOURS", "ZENTRO_IDEMPOTENCY_TTL_HOURS", 24, int,
            "How long an Idempotency-Key and its stored response are kept."),
    Setting("ZENTRO_SESSION_COOKIE_SECURE", "SESSION_COOKIE_SECURE", False, bool,
            "Send the session cookie over HTTPS only (set to 1 behind TLS)."),
    Setting("ZENTRO_SESSION_HOURS", "ZENTRO_SESSION_HOURS", 12, int,
            "Idle-independent lifetime of a sign-in session; after it the user signs in again."),
    Setting("ZENTRO_DEMO_PASSWORD", "ZENTRO_DEMO_PASSWORD", "zentro-demo-2026", str,
            "Password given to the demo users that `zentro demo` creates."),
    Setting("ZENTRO_LOG_LEVEL", "ZENTRO_LOG_LEVEL", "INFO", str, "Python log level."),
    Setting("ZENTRO_PROXY_HOPS", "ZENTRO_PROXY_HOPS", 0, int,
            "How many proxies (load balancers) sit in front of Zentro and set X-Forwarded-For/-Proto/-Host: their values are trusted for that many hops (client address for rate limits and audit, https links). 0: none trusted."),
    Setting("ZENTRO_LOG_FORMAT", "ZENTRO_LOG_FORMAT", "text", str,
            "Log line format: text (human-readable) or json (one JSON object per line with time, level, logger, message, request_id, org and user)."),
    Setting("ZENTRO_METRICS_TOKEN", "ZENTRO_METRICS_TOKEN", None, str,
            "Bearer token that GET /metrics (Prometheus exposition) requires. Unset: /metrics answers 404."),
    Setting("ZENTRO_ALERT_WEBHOOK_SIGNING_SECRET", "ZENTRO_ALERT_WEBHOOK_SIGNING_SECRET", None, str,
            "When set, alert and vulnerability ingest require an HMAC-SHA256 signature header over the raw body."),
    Setting("ZENTRO_ALERT_SIGNATURE_TOLERANCE_SECONDS", "ZENTRO_ALERT_SIGNATURE_TOLERANCE_SECONDS", 300, int,
            "How old a signed ingest request's timestamp may be before it is refused as a replay."),
    Setting("ZENTRO_ALERT_INGEST_REQUIRE_PAID", "ZENTRO_ALERT_INGEST_REQUIRE_PAID", False, bool,
            "When on, free-plan orgs get 402 PAYMENT_REQUIRED from alert ingest."),
    Setting("ZENTRO_RESOLVE_MITIGATES_INCIDENT", "ZENTRO_RESOLVE_MITIGATES_INCIDENT", True, bool,
            "When every alert folded into an incident has resolved, mark the incident mitigated."),
    Setting("ZENTRO_MAX_ALERTS_PER_REQUEST", "ZENTRO_MAX_ALERTS_PER_REQUEST", 500, int,
            "Most alerts one ingest request may carry (Alertmanager batches); more is 413."),
    Setting("ZENTRO_RCA_EXECUTION", "ZENTRO_RCA_EXECUTION", "thread", str,
            "Where RCA runs execute: thread (a background thread of the web worker) or inline (before the request answers)."),
    Setting("ZENTRO_STORAGE_DIR", "ZENTRO_STORAGE_DIR", None, str,
            "Directory of the artifact store (evidence bundles, workbooks). Default: instance/storage. Shared storage when several hosts run."),
    Setting("ZENTRO_BUNDLE_SIGNING_KEY", "ZENTRO_BUNDLE_SIGNING_KEY", None, str,
            "Ed25519 private key (PEM, PKCS#8) that signs bundle manifests. Default: generated once into instance/bundle-signing-key.pem (one host only)."),
    Setting("ZENTRO_BUNDLE_CRON_SECRET", "ZENTRO_BUNDLE_CRON_SECRET", None, str,
            "Bearer secret of POST /api/governance/compliance/bundles/scheduled. Unset: that entrypoint answers 404."),
    Setting("ZENTRO_WEBHOOK_ALLOW_PRIVATE", "ZENTRO_WEBHOOK_ALLOW_PRIVATE", False, bool,
            "Allow outgoing webhooks (bundle delivery, customer webhooks) to private, loopback and link-local addresses."),
    Setting("ZENTRO_RETENTION_CRON_SECRET", "ZENTRO_RETENTION_CRON_SECRET", None, str,
            "Bearer secret of POST /api/deployment/retention/scheduled (the retention purge). Unset: that entrypoint answers 404."),
    Setting("ZENTRO_DRY_RUN_TTL_MINUTES", "ZENTRO_DRY_RUN_TTL_MINUTES", 15, int,
            'How long a successful dry-run stays fresh: execute and remediate refuse an older one.'),
    Setting("ZENTRO_ROBOT_API_URL", "ZENTRO_ROBOT_API_URL", None, str,
            'Base URL of the automation robot backend: executions are sent there and /api/robot/* proxies to it. Unset: executions are recorded as manual and the proxy answers 503.'),
    Setting("ZENTRO_REASONING_API_URL", "ZENTRO_REASONING_API_URL", None, str,
            "Base URL of the reasoning backend: the copilot's second choice and the target of /api/reasoning/*. Unset: the proxy answers 503."),
    Setting("ZENTRO_CONNECTORS_ALLOW_PRIVATE", "ZENTRO_CONNECTORS_ALLOW_PRIVATE", False, bool,
            'Allow the robot, reasoning and OpenAI-compatible URLs to resolve to private, loopback and link-local addresses.'),
    Setting("ZENTRO_CONNECTOR_TIMEOUT_SECONDS", "ZENTRO_CONNECTOR_TIMEOUT_SECONDS", 10, int,
            'Timeout of each request to the robot and reasoning backends (probes use at most 3 s).'),
    Setting("ZENTRO_PROXY_MAX_BODY_BYTES", "ZENTRO_PROXY_MAX_BODY_BYTES", 1_048_576, int,
            'Largest request or response body the /api/reasoning/* and /api/robot/* proxies pass through (larger: 413 or 502).'),
    Setting("ZENTRO_SLACK_BOT_TOKEN", "ZENTRO_SLACK_BOT_TOKEN", None, str,
            'Slack bot token (xoxb-…): approval requests are posted with Approve/Reject buttons. Unset: Slack shows as not configured.'),
    Setting("ZENTRO_SLACK_APPROVALS_CHANNEL", "ZENTRO_SLACK_APPROVALS_CHANNEL", None, str,
            'Slack channel id or name that approval requests are posted to.'),
    Setting("ZENTRO_SLACK_API_URL", "ZENTRO_SLACK_API_URL", 'https://slack.com/api/', str,
            'Base URL of the Slack Web API (tests point it at a local server).'),
    Setting("ZENTRO_SLACK_SIGNING_SECRET", "ZENTRO_SLACK_SIGNING_SECRET", None, str,
            'Slack app signing secret: POST /api/integrations/slack/approvals verifies X-Slack-Signature with it. Unset: that endpoint answers 503.'),
    Setting("OPENAI_API_KEY", "OPENAI_API_KEY", None, str,
            "API key of an OpenAI-compatible chat API: the copilot's first choice. When set, the copilot requires a signed-in session."),
    Setting("ZENTRO_OPENAI_BASE_URL", "ZENTRO_OPENAI_BASE_URL", 'https://api.openai.com/v1', str,
            'Base URL of the OpenAI-compatible API.'),
    Setting("ZENTRO_OPENAI_MODEL", "ZENTRO_OPENAI_MODEL", 'gpt-4o-mini', str,
            'Chat model the copilot asks for.'),
    Setting("ZENTRO_COPILOT_ANON_RATE_LIMIT", "ZENTRO_COPILOT_ANON_RATE_LIMIT", '10/minute;100/day', str,
            'Per-IP limit on anonymous POST /api/copilot/chat (allowed only while OPENAI_API_KEY is unset).'),
    Setting("ZENTRO_POLICY_SUGGESTION_MIN_APPROVALS", "ZENTRO_POLICY_SUGGESTION_MIN_APPROVALS", 3, int,
            'A policy is suggested for an action approved at least this many times and never rejected.'),
    Setting("ZENTRO_PUBLIC_URL", "ZENTRO_PUBLIC_URL", None, str,
            "Base URL people reach Zentro at (https://zentro.example.com): links in e-mails, Slack messages and webhooks. Unset: messages carry no links."),
    Setting("ZENTRO_SMTP_URL", "ZENTRO_SMTP_URL", None, str,
            "Outgoing mail server: smtp://user:password@host:587 (STARTTLS when offered), smtps://host:465, or smtp://host:25. Unset: e-mail deliveries are logged as not sent."),
    Setting("ZENTRO_MAIL_FROM", "ZENTRO_MAIL_FROM", "Zentro <zentro@localhost>", str,
            "From address of every e-mail Zentro sends."),
    Setting("ZENTRO_SMTP_TIMEOUT_SECONDS", "ZENTRO_SMTP_TIMEOUT_SECONDS", 10, int,
            "Timeout of each SMTP connection."),
    Setting("ZENTRO_WEBHOOK_TIMEOUT_SECONDS", "ZENTRO_WEBHOOK_TIMEOUT_SECONDS", 5, int,
            "Timeout of each customer webhook delivery attempt."),
    Setting("ZENTRO_WEBHOOK_CONCURRENCY", "ZENTRO_WEBHOOK_CONCURRENCY", 8, int,
            "Webhook endpoints the outbox drain serves at once (PostgreSQL; SQLite sends one at a time). One endpoint's "
            "messages always go out one at a time, in the order they were queued."),
    Setting("ZENTRO_SCHEDULER", "ZENTRO_SCHEDULER", False, bool,
            "Run the in-process job scheduler (digests, webhook outbox, retention, bundles). Every process may run it: one leader at a time runs the jobs. `make run` turns it on."),
    Setting("ZENTRO_SCHEDULER_LEASE_SECONDS", "ZENTRO_SCHEDULER_LEASE_SECONDS", 30, int,
            "How long scheduler leadership lasts without renewal; a crashed leader is replaced after at most this long."),
    Setting("ZENTRO_SCHEDULER_TICK_SECONDS", "ZENTRO_SCHEDULER_TICK_SECONDS", 60, int,
            "How often the scheduler looks for digests whose per-org schedule is due (a digest goes out at most this long after its time)."),
    Setting("ZENTRO_INTEGRATION_PROBE_TIMEOUT_SECONDS", "ZENTRO_INTEGRATION_PROBE_TIMEOUT_SECONDS", 5, int,
            "Timeout of an integration's connection test (POST /api/v1/integrations/{id}/test): one bounded request to the provider."),
    Setting("ZENTRO_INTEGRATIONS_ALLOW_PRIVATE", "ZENTRO_INTEGRATIONS_ALLOW_PRIVATE", False, bool,
            "Allow integration endpoints (Datadog, PagerDuty, Qualys, SMTP ... base URLs) to resolve to private, loopback and link-local addresses."),
    Setting("ZENTRO_REPORT_JOB_EXECUTION", "ZENTRO_REPORT_JOB_EXECUTION", "thread", str,
            "Where generated reports (POST /api/v1/reports/generate) are built: thread (a background thread of the web worker; the scheduler picks up any left behind) or inline (before the request answers)."),
    Setting("ZENTRO_LEMONSQUEEZY_SIGNING_SECRET", "ZENTRO_LEMONSQUEEZY_SIGNING_SECRET", None, str,
            "Lemon Squeezy webhook signing secret: POST /api/webhooks/lemonsqueezy verifies X-Signature with it. Unset: that endpoint answers 503."),
    Setting("ZENTRO_LEMONSQUEEZY_MODE", "ZENTRO_LEMONSQUEEZY_MODE", "live", str,
            "Which Lemon Squeezy events change plans: live (production) or test (a test-mode store). Events of the "
            "other mode are recorded as wrong_mode and change nothing."),
    Setting("ZENTRO_LEMONSQUEEZY_VARIANT_PRO", "ZENTRO_LEMONSQUEEZY_VARIANT_PRO", None, str,
            "Lemon Squeezy variant id(s) of the Pro plan (comma separated): a subscription to one of them puts the org on pro."),
    Setting("ZENTRO_LEMONSQUEEZY_VARIANT_ENTERPRISE", "ZENTRO_LEMONSQUEEZY_VARIANT_ENTERPRISE", None, str,
            "Lemon Squeezy variant id(s) of the Enterprise plan (comma separated)."),
    Setting("ZENTRO_LEMONSQUEEZY_CHECKOUT_URL_PRO", "ZENTRO_LEMONSQUEEZY_CHECKOUT_URL_PRO", None, str,
            "Lemon Squeezy hosted checkout URL of the Pro plan (https://STORE.lemonsqueezy.com/buy/...). Unset: the plan cannot be bought in the app."),
    Setting("ZENTRO_LEMONSQUEEZY_CHECKOUT_URL_ENTERPRISE", "ZENTRO_LEMONSQUEEZY_CHECKOUT_URL_ENTERPRISE", None, str,
            "Lemon Squeezy hosted checkout URL of the Enterprise plan."),
    Setting("ZENTRO_LEMONSQUEEZY_PORTAL_URL", "ZENTRO_LEMONSQUEEZY_PORTAL_URL", None, str,
            "Customer portal URL (https://STORE.lemonsqueezy.com/billing) used when a subscription carries none of its own."),
    Setting("ZENTRO_DIGEST_CRON_SECRET", "ZENTRO_DIGEST_CRON_SECRET", None, str,
            "Bearer secret of POST /api/governance/compliance/digest/scheduled. Unset: that entrypoint answers 404."),
    Setting("ZENTRO_SLA_CRON_SECRET", "ZENTRO_SLA_CRON_SECRET", None, str,
            "Bearer secret of POST /api/governance/compliance/sla-reminders/scheduled. Unset: that entrypoint answers 404."),
    Setting("ZENTRO_EVIDENCE_REQUEST_SLA_CRON_SECRET", "ZENTRO_EVIDENCE_REQUEST_SLA_CRON_SECRET", None, str,
            "Bearer secret of POST /api/governance/compliance/evidence-request-sla/scheduled. Unset: that entrypoint answers 404."),
    Setting("ZENTRO_MAPPING_DIGEST_CRON_SECRET", "ZENTRO_MAPPING_DIGEST_CRON_SECRET", None, str,
            "Bearer secret of POST /api/governance/compliance/mapping-digest/scheduled. Unset: that entrypoint answers 404."),
    Setting("ZENTRO_PEAK_WEEK_STAFFING_DIGEST_CRON_SECRET", "ZENTRO_PEAK_WEEK_STAFFING_DIGEST_CRON_SECRET", None, str,
            "Bearer secret of POST /api/governance/compliance/peak-week-staffing-digest/scheduled. Unset: that entrypoint answers 404."),
    Setting("ZENTRO_STAFFING_OVERDUE_REMINDER_CRON_SECRET", "ZENTRO_STAFFING_OVERDUE_REMINDER_CRON_SECRET", None, str,
            "Bearer secret of POST /api/governance/compliance/staffing-action-reminders/scheduled. Unset: that entrypoint answers 404."),
    Setting("ZENTRO_STAFFING_COMPLETION_ROLLUP_CRON_SECRET", "ZENTRO_STAFFING_COMPLETION_ROLLUP_CRON_SECRET", None, str,
            "Bearer secret of POST /api/governance/compliance/staffing-completion-rollup/scheduled. Unset: that entrypoint answers 404."),
    Setting("ZENTRO_STAFFING_SLA_BREACH_DIGEST_CRON_SECRET", "ZENTRO_STAFFING_SLA_BREACH_DIGEST_CRON_SECRET", None, str,
            "Bearer secret of POST /api/governance/compliance/staffing-sla-breach-digest/scheduled. Unset: that entrypoint answers 404."),
    Setting("ZENTRO_CROSS_STAFFING_COMMITTEE_ESCALATION_CRON_SECRET", "ZENTRO_CROSS_STAFFING_COMMITTEE_ESCALATION_CRON_SECRET", None, str,
            "Bearer secret of POST /api/governance/compliance/cross-staffing-committee-escalation/scheduled. Unset: that entrypoint answers 404."),
    Setting("ZENTRO_STAFFING_DIGEST_AUTO_CHAIN_CRON_SECRET", "ZENTRO_STAFFING_DIGEST_AUTO_CHAIN_CRON_SECRET", None, str,
            "Bearer secret of POST /api/governance/compliance/staffing-digest-auto-chain/scheduled. Unset: that entrypoint answers 404."),
    Setting("ZENTRO_OBLIGATION_COMMITTEE_DIGEST_CRON_SECRET", "ZENTRO_OBLIGATION_COMMITTEE_DIGEST_CRON_SECRET", None, str,
            "Bearer secret of POST /api/governance/compliance/committee-digest/scheduled. Unset: that entrypoint answers 404."),
    Setting("ZENTRO_OBLIGATION_DENSITY_ALERT_CRON_SECRET", "ZENTRO_OBLIGATION_DENSITY_ALERT_CRON_SECRET", None, str,
            "Bearer secret of POST /api/governance/compliance/obligation-density-alerts/scheduled. Unset: that entrypoint answers 404."),
    Setting("ZENTRO_ATTESTATION_RENEWAL_CRON_SECRET", "ZENTRO_ATTESTATION_RENEWAL_CRON_SECRET", None, str,
            "Bearer secret of POST /api/governance/compliance/attestation-renewal/scheduled. Unset: that entrypoint answers 404."),
]


def _coerce(raw: str, kind: type) -> object:
    if kind is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind is int:
        return int(raw)
    if kind is list:
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _instance_secret_key() -> str:
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    path = INSTANCE_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def load_config(overrides: dict | None = None) -> dict:
    cfg: dict = {}
    for s in SETTINGS:
        raw = os.environ.get(s.env)
        cfg[s.key] = _coerce(raw, s.kind) if raw not in (None, "") else s.default
        if s.kind is list:
            cfg[s.key] = list(cfg[s.key])
    if not cfg["SQLALCHEMY_DATABASE_URI"]:
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
        cfg["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{INSTANCE_DIR / 'zentro.db'}"
    url = cfg["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url[len("postgres://"):]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    cfg["SQLALCHEMY_DATABASE_URI"] = url
    cfg.update(
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_DURATION=0,
        WTF_CSRF_CHECK_DEFAULT=False,  # checked in platform.auth for cookie-authenticated requests only
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_HEADERS=["X-CSRFToken", "X-CSRF-Token"],
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_STRATEGY="fixed-window",
        RATELIMIT_SWALLOW_ERRORS=True,
        # Redis down: each worker keeps counting the same limits in its own memory (looser by the number of
        # workers, never off) and goes back to Redis once it answers again (Flask-Limiter checks with backoff).
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
    )
    if overrides:
        cfg.update(overrides)
    if not cfg.get("SECRET_KEY"):
        cfg["SECRET_KEY"] = _instance_secret_key()
    return cfg
