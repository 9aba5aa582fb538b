"""Logs and metrics: request-scoped JSON logging, the access line, and the Prometheus metrics behind ``/metrics``.

Rules (see docs/observability.md):
- Every log record carries ``request_id``, ``org`` (slug) and ``user`` (an email, or ``<kind>:<prefix>`` for an API
  key / ingest / assessor token): from the request when there is one, else the request-id context variable (jobs,
  CLI), else null. With ``ZENTRO_LOG_FORMAT=json`` the root logger writes one JSON object per line (time in ISO UTC,
  level, logger, message, those fields and any ``extra``). ``text`` keeps the stdlib look.
- One access line per request on logger ``zentro.access`` (INFO): method, path *without* the query string (it may
  carry tokens), route (the URL rule), status, duration_ms. Headers, cookies and bodies are never logged.
- Metrics are module-level objects created once per process (several apps in one process share them).
  ``route`` is the URL rule (``/api/v1/incidents/<int:incident_id>``), never the raw path; no rule → ``unmatched``.
  Label values come from small fixed sets (methods, rules, statuses, sources, outcomes, job names).
- Numbers that must be right whatever worker or host answers the scrape (outbox depth, delivery log, scheduler
  leadership, last job outcomes) are read from the database at scrape time by ``DatabaseCollector``.
- With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn with several workers; it must be set before the process starts),
  in-process counters live in that directory and the exposition merges every worker's files.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import time
from typing import Iterable

from flask import Flask, g, has_request_context, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

try:  # python-json-logger 3+
    from pythonjsonlogger.json import JsonFormatter
except ImportError:  # pragma: no cover - python-json-logger 2.x
    from pythonjsonlogger.jsonlogger import JsonFormatter

log = logging.getLogger("zentro.observability")
access_log = logging.getLogger("zentro.access")

METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
LABEL_MAX = 80  # longest label value we pass through (sources, job names); longer is cut

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests answered, by method, URL rule and status.",
                        ["method", "route", "status"])
HTTP_DURATION = Histogram("http_request_duration_seconds", "Time from the first request hook to the response "
                          "(streamed bodies not included), by method and URL rule.", ["method", "route"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
INGEST = Counter("zentro_ingest_total", "Ingested items after commit, by kind (alert|vulnerability), source and "
                 "outcome (as in the ingest response).", ["kind", "source", "outcome"])
JOB_RUNS = Counter("zentro_job_runs_total", "Scheduler job runs finished in this process, by job and status "
                   "(ok|failed).", ["job", "status"])


def _label(value: object) -> str:
    return str(value or "")[:LABEL_MAX] or "unknown"


def count_ingest(kind: str, results: Iterable) -> None:
    """Count one committed ingest request's results (AlertResult has .source; FindingResult its .finding)."""
    for r in results:
        source = getattr(r, "source", None) or getattr(getattr(r, "finding", None), "source", None)
        INGEST.labels(kind, _label(source), _label(r.outcome)).inc()


def count_job_run(job: str, status: str) -> None:
    JOB_RUNS.labels(_label(job), _label(status)).inc()


# --- logging -------------------------------------------------------------------------------------------

def principal_label(p) -> str | None:
    """Who is calling, safe to log: the user's email for sessions, ``<kind>:<prefix>`` for tokens (the prefix is
    the public part shown in the UI; the secret never is)."""
    if p is None:
        return None
    if p.scheme == "session":
        return p.user.email if p.user is not None else None
    prefix = getattr(p.credential, "prefix", "") or ""
    return f"{p.scheme}:{prefix}" if prefix else p.scheme


class RequestContextFilter(logging.Filter):
    """Adds request_id, org and user to every record passing the handler (kept when a caller set them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = org = user = None
        if has_request_context():
            rid = g.get("request_id")
            p = g.get("principal")
            if p is not None:
                org, user = p.org.slug, principal_label(p)
        if not rid:
            from zentro.audit.service import current_request_id

            rid = current_request_id.get() or None
        for name, value in (("request_id", rid), ("org", org), ("user", user)):
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class ZentroJsonFormatter(JsonFormatter):
    """JSON lines: time (ISO 8601 UTC, ms), level, logger, message, request_id, org, user, then any extras."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(org)s %(user)s",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})

    def formatTime(self, record, datefmt=None):  # noqa: N802 (logging API)
        stamp = dt.datetime.fromtimestamp(record.created, dt.timezone.utc)
        return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def configure_logging(app: Flask) -> None:
    """Apply ZENTRO_LOG_FORMAT / ZENTRO_LOG_LEVEL to the root logger. Idempotent per process: the handler this
    installs is marked and replaced on the next call, never stacked."""
    root = logging.getLogger()
    level = app.config.get("ZENTRO_LOG_LEVEL") or "INFO"
    for h in [h for h in root.handlers if getattr(h, "_zentro", False)]:
        root.removeHandler(h)
    if (app.config.get("ZENTRO_LOG_FORMAT") or "text").strip().lower() != "json":
        logging.basicConfig(level=level)  # today's text lines (no-op when the root already has handlers)
        return
    for h in [h for h in root.handlers if type(h) is logging.StreamHandler]:
        root.removeHandler(h)  # basicConfig's plain text handler: JSON replaces it, not doubles it
    handler = logging.StreamHandler(sys.stderr)
    handler._zentro = True
    handler.setFormatter(ZentroJsonFormatter())
    handler.addFilter(RequestContextFilter())
    root.addHandler(handler)
    root.setLevel(level)


# --- request hooks -------------------------------------------------------------------------------------

def _start_timer() -> None:
    g._obs_started = time.perf_counter()


def _observe(response):
    started = g.pop("_obs_started", None)
    elapsed = time.perf_counter() - started if started is not None else 0.0
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    method = request.method if request.method in METHODS else "OTHER"
    status = response.status_code
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(elapsed)
    ms = round(elapsed * 1000, 1)
    access_log.info("%s %s %s %.1fms", method, request.path, status, ms,
                    extra={"method": method, "path": request.path, "route": route, "status": status,
                           "duration_ms": ms})
    return response


def init_app(app: Flask) -> None:
    """Call once in create_app, before the other request hooks: the timer starts first and (after_request runs
    in reverse order) the access line and metrics see the final response."""
    configure_logging(app)
    app.before_request(_start_timer)
    app.after_request(_observe)


# --- exposition ----------------------------------------------------------------------------------------

class _InProcess:
    """The default registry's metrics (this process's counters, plus process_* / python_* info)."""

    def collect(self):
        yield from REGISTRY.collect()


class DatabaseCollector:
    """Gauges read from the database at scrape time, so every worker answers the same. Needs an app context.
    A few aggregate queries, each on an index or a table the scheduler keeps small (job_runs is pruned);
    the delivery-log count scans notification_deliveries (see docs/observability.md)."""

    def __init__(self, now: dt.datetime | None = None):
        self.now = now

    def collect(self):
        from sqlalchemy import func, select

        from zentro.extensions import db
        from zentro.notify.models import CHANNELS, DELIVERY_STATUSES, Delivery, OutboxMessage
        from zentro.platform.models import JobRun
        from zentro.platform.scheduler import lease_state
        from zentro.platform.types import utcnow

        now = self.now or utcnow()
        up = GaugeMetricFamily("zentro_metrics_database_up", "1 when the database-backed gauges were read at this "
                               "scrape; 0 when the database could not be queried (they are then missing).")
        try:
            outbox = dict(db.session.execute(
                select(OutboxMessage.status, func.count()).where(OutboxMessage.status.in_(("pending", "failed")))
                .group_by(OutboxMessage.status)).all())
            oldest_due = db.session.scalar(select(func.min(OutboxMessage.next_attempt_at)).where(
                OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now))
            deliveries = db.session.execute(select(Delivery.channel, Delivery.status, func.count())
                                            .group_by(Delivery.channel, Delivery.status)).all()
            last_runs = db.session.execute(select(JobRun.job, JobRun.status, func.max(JobRun.finished_at))
                                           .where(JobRun.status.in_(("ok", "failed")))
                                           .group_by(JobRun.job, JobRun.status)).all()
            lease = lease_state(now)
            db.session.rollback()  # read-only; end the transaction rather than hold it for the rest of the scrape
        except Exception as exc:  # noqa: BLE001 — a scrape still answers (in-process metrics) when the database is down
            db.session.rollback()
            log.warning("metrics: database gauges unavailable (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up

        depth = GaugeMetricFamily("zentro_webhook_outbox_depth", "Webhook outbox messages waiting (pending: "
                                  "to be sent or retried) or given up (failed: retries exhausted).", labels=["status"])
        for status in ("pending", "failed"):
            depth.add_metric([status], outbox.get(status, 0))
        yield depth
        age = GaugeMetricFamily("zentro_webhook_outbox_oldest_due_seconds", "Seconds the oldest due pending webhook "
                                "message has been waiting for the drain job (0 when none is due).")
        age.add_metric([], max(0.0, (now - oldest_due).total_seconds()) if oldest_due is not None else 0.0)
        yield age

        counts = {(c, s): 0 for c in CHANNELS for s in DELIVERY_STATUSES}
        for channel, status, n in deliveries:
            counts[(_label(channel), _label(status))] = n
        rows = GaugeMetricFamily("zentro_notification_deliveries", "Rows in the delivery log by channel and status "
                                 "(queued|sent|not_sent|failed); falls when retention prunes the log.",
                                 labels=["channel", "status"])
        failures = GaugeMetricFamily("zentro_delivery_failures", "Failed rows in the delivery log by channel (a "
                                     "count from the database: use delta()/increase() over a window).",
                                     labels=["channel"])
        for (channel, status), n in sorted(counts.items()):
            rows.add_metric([channel, status], n)
        for channel in sorted({c for c, _ in counts}):
            failures.add_metric([channel], counts.get((channel, "failed"), 0))
        yield rows
        yield failures

        last = GaugeMetricFamily("zentro_job_last_finished_timestamp_seconds", "Unix time of each job's latest "
                                 "finished run by status (ok|failed), from the job_runs table (every process, "
                                 "including `zentro jobs run`).", labels=["job", "status"])
        for job, status, finished in sorted(last_runs, key=lambda r: (r[0], r[1])):
            if finished is not None:
                last.add_metric([_label(job), status], finished.timestamp())
        yield last

        leader = GaugeMetricFamily("zentro_scheduler_leader", "1 while some scheduler process holds a live lease "
                                   "(jobs are running somewhere), else 0.")
        leader.add_metric([], 1 if lease is not None and lease.active else 0)
        yield leader


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or ""


def exposition(now: dt.datetime | None = None) -> bytes:
    """The text exposition: in-process metrics (every worker's, merged, in multiprocess mode) plus the database
    gauges. A fresh registry per scrape, so nothing is registered twice."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_InProcess())
    registry.register(DatabaseCollector(now))
    return generate_latest(registry)
