"""One class per API area, reached as attributes of ``Zentro`` (``client.incidents``, ``client.alerts`` ...).

Methods mirror the server routes one to one (paths and bodies as in ``/openapi.json``). Mutations take an
optional ``idempotency_key``; without one the client makes a uuid4 key per call and reuses it across retries.
PATCH-style ``update`` methods send only the fields you pass (``UNSET`` is "leave alone"; ``None`` is a real
null where the API allows one, e.g. unassigning an incident's commander)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, TypeVar

from zentro.client import errors
from zentro.client.models import (AlertIngestResult, Bundle, Delivery, DeliveryDetail, Finding, FindingIngestResult,
                                  FindingSummary, GateDecision, GateRules, Incident, Integration, IntegrationTestResult,
                                  Plans, Provider, RcaRun, ReportJob, Subscription, TimelineEvent, Webhook,
                                  WebhookTestResult, WebhookWithSecret)
from zentro.client.pagination import Page

if TYPE_CHECKING:
    from zentro.client import Zentro

T = TypeVar("T")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()


def _fields(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not UNSET}


class Resource:
    def __init__(self, client: "Zentro"):
        self._client = client
        self._t = client._transport

    def _page(self, path: str, params: dict[str, Any]) -> Page[Any]:
        def fetch(cursor: str | None) -> dict[str, Any]:
            return self._t.json("GET", path, params={**params, "cursor": cursor})

        return Page.first(fetch)

    def _wait(self, get: Callable[[], T], done: Callable[[T], bool], timeout: float, poll_interval: float,
              what: str) -> T:
        """Poll ``get`` until ``done``; raise TimeoutError after ``timeout`` seconds (client's clock and sleep)."""
        clock, deadline = self._client.clock, self._client.clock() + timeout
        while True:
            current = get()
            if done(current):
                return current
            if clock() + poll_interval > deadline:
                raise errors.TimeoutError(f"{what} did not finish within {timeout:g} s.")
            self._t.sleep(poll_interval)


# --- incidents ---------------------------------------------------------------------------------------------

class Incidents(Resource):
    """``/api/v1/incidents`` and the exports under ``/api/incidents/{id}/``. Scope ``incidents:read|write``."""

    def list(self, *, status: str | None = None, severity: str | None = None, service_id: int | None = None,
             q: str | None = None, limit: int | None = None) -> Page[Incident]:
        """Newest first. ``status``: active, all, or one status (default all)."""
        return self._page("/api/v1/incidents", {"status": status, "severity": severity, "service_id": service_id,
                                                "q": q, "limit": limit})

    def get(self, incident_id: int) -> Incident:
        return self._t.json("GET", f"/api/v1/incidents/{int(incident_id)}")

    def create(self, title: str, *, severity: str = UNSET, service_id: int | None = UNSET, description: str = UNSET,
               idempotency_key: str | None = None) -> Incident:
        return self._t.json("POST", "/api/v1/incidents", idempotency_key=idempotency_key,
                            json=_fields(title=title, severity=severity, service_id=service_id, description=description))

    def update(self, incident_id: int, *, status: str = UNSET, severity: str = UNSET, commander_id: int | None = UNSET,
               title: str = UNSET, description: str = UNSET, legal_hold: bool = UNSET,
               idempotency_key: str | None = None) -> Incident:
        """Change only the fields given, in one transaction (legal_hold: owner/admin)."""
        return self._t.json("PATCH", f"/api/v1/incidents/{int(incident_id)}", idempotency_key=idempotency_key,
                            json=_fields(status=status, severity=severity, commander_id=commander_id, title=title,
                                         description=description, legal_hold=legal_hold))

    def acknowledge(self, incident_id: int, *, idempotency_key: str | None = None) -> Incident:
        return self.update(incident_id, status="acknowledged", idempotency_key=idempotency_key)

    def mitigate(self, incident_id: int, *, idempotency_key: str | None = None) -> Incident:
        return self.update(incident_id, status="mitigated", idempotency_key=idempotency_key)

    def resolve(self, incident_id: int, *, idempotency_key: str | None = None) -> Incident:
        return self.update(incident_id, status="resolved", idempotency_key=idempotency_key)

    def close(self, incident_id: int, *, idempotency_key: str | None = None) -> Incident:
        return self.update(incident_id, status="closed", idempotency_key=idempotency_key)

    def timeline(self, incident_id: int, *, limit: int | None = None) -> Page[TimelineEvent]:
        """Newest first, like every list."""
        return self._page(f"/api/v1/incidents/{int(incident_id)}/timeline", {"limit": limit})

    def add_note(self, incident_id: int, body: str, *, idempotency_key: str | None = None) -> TimelineEvent:
        return self._t.json("POST", f"/api/v1/incidents/{int(incident_id)}/notes", json={"body": body},
                            idempotency_key=idempotency_key)

    def export_markdown(self, incident_id: int) -> str:
        """The incident as Markdown: header table, description, timeline."""
        return self._t.download(f"/api/incidents/{int(incident_id)}/export")

    def review_markdown(self, incident_id: int) -> str:
        """The post-incident review (Markdown)."""
        return self._t.download(f"/api/incidents/{int(incident_id)}/review")

    def evidence(self, incident_id: int) -> dict[str, Any]:
        """The evidence pack: incident, timeline, alerts, RCA runs, automations and audit rows with chain hashes."""
        return self._t.download(f"/api/incidents/{int(incident_id)}/evidence")


# --- ingest (alert-ingest token) ------------------------------------------------------------------------------

class Alerts(Resource):
    """``POST /api/integrations/alerts`` with the client's ``ingest_token`` (``zentro_it_…``)."""

    def send(self, payload: dict[str, Any] | list[Any], *, source: str | None = None) -> AlertIngestResult:
        """Send one vendor payload. The format is detected from the payload, or forced with ``source`` (zentro,
        datadog, alertmanager, prometheus, grafana, pagerduty, newrelic). An open incident with the same dedupe key
        absorbs the alert; otherwise one opens. Redeliveries dedupe by delivery key, so no Idempotency-Key is sent
        (429 is still retried; 5xx is not)."""
        return self._t.json("POST", "/api/integrations/alerts", params={"source": source}, json=payload,
                            auth="ingest", idempotent=False)


class Vulnerabilities(Resource):
    """``POST /api/integrations/vulnerabilities`` with the ingest token (Qualys, Tenable or generic findings)."""

    def send(self, payload: dict[str, Any] | list[Any], *, source: str | None = None) -> FindingIngestResult:
        return self._t.json("POST", "/api/integrations/vulnerabilities", params={"source": source}, json=payload,
                            auth="ingest", idempotent=False)


class Findings(Resource):
    """``/api/v1/findings`` (read-only; scope ``findings:read``)."""

    def list(self, *, severity: str | None = None, status: str | None = None, source: str | None = None,
             service_id: int | None = None, q: str | None = None, limit: int | None = None) -> Page[Finding]:
        return self._page("/api/v1/findings", {"severity": severity, "status": status, "source": source,
                                               "service_id": service_id, "q": q, "limit": limit})

    def get(self, finding_id: int) -> Finding:
        return self._t.json("GET", f"/api/v1/findings/{int(finding_id)}")

    def summary(self) -> FindingSummary:
        return self._t.json("GET", "/api/v1/findings/summary")

    def by_source(self) -> list[dict[str, Any]]:
        return self._t.json("GET", "/api/v1/findings/by-source")["data"]


# --- RCA -----------------------------------------------------------------------------------------------------

RCA_FINISHED = ("succeeded", "failed", "cancelled")


class Rca(Resource):
    """Root-cause analysis runs (scope ``incidents:read|write``)."""

    def start(self, incident_id: int, *, window_hours: int | None = None,
              idempotency_key: str | None = None) -> RcaRun:
        """Queue a run (202). 409 while another run of the incident is active; 429 over the plan's analyses/hour."""
        return self._t.json("POST", f"/api/incidents/{int(incident_id)}/rca/run", idempotency_key=idempotency_key,
                            json=_fields(window_hours=window_hours if window_hours is not None else UNSET))

    def get(self, run_id: int) -> RcaRun:
        return self._t.json("GET", f"/api/v1/rca-runs/{int(run_id)}")

    def latest(self, incident_id: int) -> RcaRun:
        """The incident's most recent run, whatever its status (NotFoundError if it has none)."""
        return self._t.json("GET", f"/api/incidents/{int(incident_id)}/rca/latest")

    def cancel(self, run_id: int, *, idempotency_key: str | None = None) -> RcaRun:
        return self._t.json("POST", f"/api/v1/rca-runs/{int(run_id)}/cancel", idempotency_key=idempotency_key)

    def wait(self, run_id: int, *, timeout: float = 120.0, poll_interval: float = 1.0) -> RcaRun:
        """Poll until the run succeeded, failed or was cancelled; the finished run (check its ``status``)."""
        return self._wait(lambda: self.get(run_id), lambda r: r["status"] in RCA_FINISHED, timeout, poll_interval,
                          f"RCA run {run_id}")


# --- webhooks and the delivery log -------------------------------------------------------------------------------

class Webhooks(Resource):
    """``/api/v1/webhooks`` (owner/admin; scope ``webhooks:read|write``). The signing secret comes back only from
    ``create`` and ``rotate_secret``; verify deliveries per Standard Webhooks (see docs/notifications.md)."""

    def list(self, *, limit: int | None = None) -> Page[Webhook]:
        return self._page("/api/v1/webhooks", {"limit": limit})

    def get(self, webhook_id: int) -> Webhook:
        return self._t.json("GET", f"/api/v1/webhooks/{int(webhook_id)}")

    def create(self, url: str, events: Iterable[str], *, description: str = UNSET, enabled: bool = UNSET,
               idempotency_key: str | None = None) -> WebhookWithSecret:
        return self._t.json("POST", "/api/v1/webhooks", idempotency_key=idempotency_key,
                            json=_fields(url=url, events=list(events), description=description, enabled=enabled))

    def update(self, webhook_id: int, *, url: str = UNSET, description: str = UNSET, events: Iterable[str] = UNSET,
               enabled: bool = UNSET, idempotency_key: str | None = None) -> Webhook:
        return self._t.json("PATCH", f"/api/v1/webhooks/{int(webhook_id)}", idempotency_key=idempotency_key,
                            json=_fields(url=url, description=description,
                                         events=list(events) if events is not UNSET else UNSET, enabled=enabled))

    def delete(self, webhook_id: int, *, idempotency_key: str | None = None) -> None:
        self._t.json("DELETE", f"/api/v1/webhooks/{int(webhook_id)}", idempotency_key=idempotency_key)

    def test(self, webhook_id: int, *, idempotency_key: str | None = None) -> WebhookTestResult:
        """Send a signed webhook.test now (one attempt). ``ok`` is False when the endpoint did not answer 2xx."""
        return self._t.json("POST", f"/api/v1/webhooks/{int(webhook_id)}/test", idempotency_key=idempotency_key)

    def rotate_secret(self, webhook_id: int, *, idempotency_key: str | None = None) -> WebhookWithSecret:
        return self._t.json("POST", f"/api/v1/webhooks/{int(webhook_id)}/rotate-secret",
                            idempotency_key=idempotency_key)


class Deliveries(Resource):
    """``/api/v1/deliveries``: the delivery log (member and above; scope ``deliveries:read``)."""

    def list(self, *, source: str | None = None, channel: str | None = None, status: str | None = None,
             limit: int | None = None) -> Page[Delivery]:
        return self._page("/api/v1/deliveries", {"source": source, "channel": channel, "status": status,
                                                 "limit": limit})

    def get(self, delivery_id: int) -> DeliveryDetail:
        return self._t.json("GET", f"/api/v1/deliveries/{int(delivery_id)}")


# --- compliance exports ----------------------------------------------------------------------------------------

COMPLIANCE = "/api/governance/compliance"
FRAMEWORK_PACKS = ("type-ii", "iso-assessment", "pci-dss", "hipaa", "nist-csf", "cis-v8", "cmmc-l2", "gdpr-art32",
                   "fedramp-poam")


class Compliance(Resource):
    """Compliance exports under ``/api/governance/compliance`` (scope ``compliance:read``; bundles ``:write``).

    Downloads come back by media type: ``format="json"`` → parsed JSON, csv / markdown / html / ics → str,
    pdf / zip → bytes. ``period_days`` is the evidence window ending now."""

    def _get(self, slug: str, **params: Any) -> Any:
        return self._t.download(f"{COMPLIANCE}/{slug}", params=params)

    def summary(self, *, period_days: int = 30, format: Literal["json", "csv"] = "json") -> Any:
        return self._get("summary", periodDays=period_days, format=format)

    def program(self, *, period_days: int = 30, format: Literal["json", "csv"] = "json") -> Any:
        return self._get("program", periodDays=period_days, format=format)

    def export(self, *, period_days: int = 30, format: Literal["csv", "json"] = "csv",
               framework: str | None = None) -> Any:
        """The evidence pack: tagged audit events and accepted policies (CSV by default)."""
        return self._get("export", periodDays=period_days, format=format, framework=framework)

    def crosswalk(self, *, period_days: int = 30, format: Literal["json", "csv"] = "json",
                  framework: str | None = None) -> Any:
        return self._get("crosswalk", periodDays=period_days, format=format, framework=framework)

    def evidence_freshness(self, *, period_days: int = 30, format: Literal["json", "csv"] = "json",
                           framework: str | None = None) -> Any:
        return self._get("evidence-freshness", periodDays=period_days, format=format, framework=framework)

    def baseline_comparison(self, *, period_days: int = 30, format: Literal["json", "csv"] = "json") -> Any:
        return self._get("baseline-comparison", periodDays=period_days, format=format)

    def framework_pack(self, slug: str, *, period_days: int = 30, format: str = "json") -> Any:
        """A framework pack: type-ii, iso-assessment, pci-dss, hipaa, nist-csf, cis-v8, cmmc-l2, gdpr-art32, or
        fedramp-poam (which also takes format="oscal")."""
        if slug not in FRAMEWORK_PACKS:
            raise ValueError(f"Unknown framework pack {slug!r}; one of {', '.join(FRAMEWORK_PACKS)}.")
        return self._get(slug, periodDays=period_days, format=format)

    def report(self, slug: str, *, format: str = "json", **params: Any) -> Any:
        """Any compliance analytics report by its slug (docs/reports.md lists them and their parameters), e.g.
        ``report("executive-summary", format="pdf")``."""
        return self._get(slug, format=format, **params)

    def workbook(self, *, period_days: int = 90) -> bytes:
        """The unified assessor workbook ZIP (kept as a bundle of kind workbook)."""
        return self._get("workbook", periodDays=period_days)

    def list_bundles(self, *, limit: int | None = None) -> Page[Bundle]:
        return self._page(f"{COMPLIANCE}/bundles", {"limit": limit})

    def create_bundle(self, *, window: str | None = None, period_days: int | None = None, deliver: bool = UNSET,
                      idempotency_key: str | None = None) -> Bundle:
        """The next signed evidence bundle (owner/admin); exactly one of ``window`` (7d/30d/90d/365d) and
        ``period_days``."""
        body = _fields(window=window if window is not None else UNSET,
                       periodDays=period_days if period_days is not None else UNSET, deliver=deliver)
        return self._t.json("POST", f"{COMPLIANCE}/bundles", json=body, idempotency_key=idempotency_key)

    def get_bundle(self, bundle_id: int) -> dict[str, Any]:
        """Metadata, files and a fresh verification of the stored ZIP."""
        return self._t.json("GET", f"{COMPLIANCE}/bundles/{int(bundle_id)}")

    def download_bundle(self, bundle_id: int) -> bytes:
        return self._t.download(f"{COMPLIANCE}/bundles/{int(bundle_id)}/download")

    def public_key(self) -> str:
        """The Ed25519 public key (PEM) that verifies bundle manifests."""
        return self._t.download(f"{COMPLIANCE}/bundles/public-key")

    def assessor(self, resource: str, **params: Any) -> Any:
        """With an assessor token as the client's key: read one granted resource (evidence-export, crosswalk,
        workbook, a framework pack ...), passing the resource's own query parameters (``periodDays``, ``format``)."""
        return self._t.download(f"{COMPLIANCE}/assessor/{resource}", params=params)


# --- integrations, generated reports, billing, deploy gates ---------------------------------------------------

class Integrations(Resource):
    """``/api/v1/integrations``: connected providers and their health (scope ``integrations:read|write``; changes
    owner/admin). Secrets are write-only: stored encrypted, never returned."""

    def providers(self) -> list[Provider]:
        """The provider catalogue: kind, config and secret fields, scopes."""
        return self._t.json("GET", "/api/v1/integrations/providers")["data"]

    def list(self, *, provider: str | None = None, status: str | None = None,
             limit: int | None = None) -> Page[Integration]:
        return self._page("/api/v1/integrations", {"provider": provider, "status": status, "limit": limit})

    def get(self, integration_id: int) -> Integration:
        return self._t.json("GET", f"/api/v1/integrations/{int(integration_id)}")

    def create(self, provider: str, name: str, *, config: dict[str, Any] | None = None,
               secrets: dict[str, str] | None = None, idempotency_key: str | None = None) -> Integration:
        """A source's answer carries its ingest token under ``ingest.token``, once."""
        body = _fields(provider=provider, name=name, config=config if config is not None else UNSET,
                       secrets=secrets if secrets is not None else UNSET)
        return self._t.json("POST", "/api/v1/integrations", json=body, idempotency_key=idempotency_key)

    def update(self, integration_id: int, *, name: str = UNSET, config: dict[str, Any] = UNSET,
               secrets: dict[str, str | None] = UNSET, rotate_ingest_token: bool = UNSET,
               idempotency_key: str | None = None) -> Integration:
        """``config`` is merged (null resets a field); ``secrets`` set or replace (null removes one)."""
        return self._t.json("PATCH", f"/api/v1/integrations/{int(integration_id)}", idempotency_key=idempotency_key,
                            json=_fields(name=name, config=config, secrets=secrets,
                                         rotate_ingest_token=rotate_ingest_token))

    def delete(self, integration_id: int, *, idempotency_key: str | None = None) -> None:
        self._t.json("DELETE", f"/api/v1/integrations/{int(integration_id)}", idempotency_key=idempotency_key)

    def test(self, integration_id: int, *, idempotency_key: str | None = None) -> IntegrationTestResult:
        """One bounded probe now; ``outcome`` healthy, failing or not_testable (200 either way)."""
        return self._t.json("POST", f"/api/v1/integrations/{int(integration_id)}/test", idempotency_key=idempotency_key)


REPORT_FINISHED = ("done", "failed")


class Reports(Resource):
    """Generated reports: ``/api/v1/reports`` (scope ``reports:read|write``). A job is queued (202), built once into
    PDF, JSON, CSV and HTML, then downloaded."""

    def generate(self, kind: str, *, start: str | None = None, end: str | None = None, period_days: int | None = None,
                 service_ids: Iterable[int] | None = None, frameworks: Iterable[str] | None = None,
                 idempotency_key: str | None = None) -> ReportJob:
        """``kind``: incident-summary or compliance-posture. ``start``/``end``: ISO dates or datetimes (UTC)."""
        body = {k: v for k, v in {"kind": kind, "start": start, "end": end, "period_days": period_days,
                                  "service_ids": list(service_ids) if service_ids is not None else None,
                                  "frameworks": list(frameworks) if frameworks is not None else None}.items()
                if v is not None}
        return self._t.json("POST", "/api/v1/reports/generate", json=body, idempotency_key=idempotency_key)

    def list(self, *, kind: str | None = None, status: str | None = None,
             limit: int | None = None) -> Page[ReportJob]:
        return self._page("/api/v1/reports", {"kind": kind, "status": status, "limit": limit})

    def get(self, job_id: int) -> ReportJob:
        return self._t.json("GET", f"/api/v1/reports/{int(job_id)}")

    def download(self, job_id: int, *, format: Literal["pdf", "json", "csv", "html"] = "pdf") -> Any:
        """pdf → bytes, json → parsed value, csv/html → str. ConflictError until the job is done."""
        return self._t.download(f"/api/v1/reports/{int(job_id)}/download", params={"format": format})

    def delete(self, job_id: int, *, idempotency_key: str | None = None) -> None:
        self._t.json("DELETE", f"/api/v1/reports/{int(job_id)}", idempotency_key=idempotency_key)

    def wait(self, job_id: int, *, timeout: float = 120.0, poll_interval: float = 1.0) -> ReportJob:
        """Poll until the job is done or failed; the finished job (check its ``status``)."""
        return self._wait(lambda: self.get(job_id), lambda j: j["status"] in REPORT_FINISHED, timeout,
                          poll_interval, f"Report job {job_id}")


class Billing(Resource):
    """Plans and the organisation's subscription (Lemon Squeezy); scope ``billing:read|write``."""

    def plans(self) -> Plans:
        """``data`` (each plan with its limits), ``current_plan``, ``alert_ingest_requires_paid``."""
        return self._t.json("GET", "/api/v1/billing/plans")

    def subscription(self) -> Subscription:
        return self._t.json("GET", "/api/v1/billing/subscription")

    def checkout(self, plan: Literal["pro", "enterprise"], *, idempotency_key: str | None = None) -> str:
        """The hosted checkout URL for this organisation (owner/admin)."""
        return self._t.json("POST", "/api/v1/billing/checkout", json={"plan": plan},
                            idempotency_key=idempotency_key)["url"]

    def portal(self, *, idempotency_key: str | None = None) -> str:
        """The customer portal URL of the organisation's subscription (owner/admin)."""
        return self._t.json("POST", "/api/v1/billing/portal", idempotency_key=idempotency_key)["url"]


class Gates(Resource):
    """Deploy gates (scope ``gates:read|write``): ask in CI whether a service may deploy now; manage its rules."""

    def check(self, service: str | int, *, ref: str | None = None, pipeline: str | None = None,
              environment: str | None = None) -> GateDecision:
        """``GET /api/v1/gates/{service}`` (name or id): ``decision`` pass or fail with every check's verdict.
        Recorded and audited with ref / pipeline / environment."""
        from urllib.parse import quote

        return self._t.json("GET", f"/api/v1/gates/{quote(str(service), safe='')}",
                            params={"ref": ref, "pipeline": pipeline, "environment": environment})

    def rules(self, service_id: int) -> GateRules:
        return self._t.json("GET", f"/api/v1/services/{int(service_id)}/gates")

    def update_rules(self, service_id: int, *, enabled: bool = UNSET, block_severities: Iterable[str] = UNSET,
                     include_dependencies: bool = UNSET, error_budget: bool = UNSET,
                     min_remaining_percent: float = UNSET, freeze: bool = UNSET,
                     require_maintenance_window: bool = UNSET, idempotency_key: str | None = None) -> GateRules:
        """Change the rules given; the others stay (owner/admin)."""
        body = _fields(enabled=enabled, block_severities=list(block_severities) if block_severities is not UNSET
                       else UNSET, include_dependencies=include_dependencies, error_budget=error_budget,
                       min_remaining_percent=min_remaining_percent, freeze=freeze,
                       require_maintenance_window=require_maintenance_window)
        return self._t.json("PATCH", f"/api/v1/services/{int(service_id)}/gates", json=body,
                            idempotency_key=idempotency_key)

    def decisions(self, service_id: int, *, limit: int | None = None) -> Page[GateDecision]:
        """Recorded decisions of the service, newest first."""
        return self._page(f"/api/v1/services/{int(service_id)}/gates/decisions", {"limit": limit})
