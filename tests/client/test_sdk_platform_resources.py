"""The SDK over this issue's newer endpoints, in-process: integrations (create a Datadog source whose ingest token
then feeds alerts through the SDK, a real connection test against a local stub, rotate, delete), generated reports
(generate → wait → download PDF and JSON), billing (plans, subscription, checkout refused when not configured) and
deploy gates (pass, fail on an open critical incident, rules, recorded decisions). Each module is skipped if it is
not in this checkout."""
from __future__ import annotations

import importlib.util

import pytest

from tests.http_stub import stub_server  # noqa: F401
from tests.notify.servers import header
from zentro.client import ConflictError, NotFoundError, PermissionDeniedError, ValidationError


def _needs(module: str):
    return pytest.mark.skipif(importlib.util.find_spec(module) is None, reason=f"{module} is not in this checkout")


@pytest.fixture
def owner(make_member):
    return make_member("alpha", "owner")


@pytest.fixture
def z(sdk, owner, make_api_key):
    return sdk(make_api_key(owner))


@_needs("zentro.connectors.integrations_api")
def test_integrations_through_the_sdk(app, monkeypatch, stub_server, sdk, z, make_member, make_api_key):
    monkeypatch.setitem(app.config, "ZENTRO_INTEGRATIONS_ALLOW_PRIVATE", True)
    stub_server.route("GET", "/api/v1/validate", lambda req: (200, {"valid": True}))
    assert "datadog" in {p["key"] for p in z.integrations.providers()}

    made = z.integrations.create("datadog", "Datadog prod", config={"api_url": stub_server.url},
                                 secrets={"api_key": "dd-secret-0123456789"})
    token = made["ingest"]["token"]
    assert made["provider"] == "datadog" and made["secrets_set"] == ["api_key"] and token.startswith("zentro_it_")
    assert "dd-secret-0123456789" not in str(z.integrations.get(made["id"]))

    result = z.integrations.test(made["id"])
    assert result["outcome"] == "healthy" and result["http_status"] == 200
    assert header(stub_server.requests_to("/api/v1/validate")[-1], "DD-API-KEY") == "dd-secret-0123456789"
    assert z.integrations.get(made["id"])["health"]["status"] == "healthy"
    assert [i["id"] for i in z.integrations.list(provider="datadog")] == [made["id"]]

    # the integration's ingest token is an ordinary ingest token for the SDK's alerts
    sent = sdk(ingest_token=token).alerts.send({"dedupe_key": "dd-1", "title": "CPU high"}, source="zentro")
    assert sent["results"][0]["outcome"] == "created"

    rotated = z.integrations.update(made["id"], name="Datadog production", rotate_ingest_token=True)
    assert rotated["name"] == "Datadog production" and rotated["ingest"]["token"] not in (None, token)
    viewer = sdk(make_api_key(make_member("alpha", "viewer")))
    with pytest.raises(PermissionDeniedError):
        viewer.integrations.delete(made["id"])
    with pytest.raises(ValidationError):
        z.integrations.create("no-such-provider", "x")
    z.integrations.delete(made["id"])
    with pytest.raises(NotFoundError):
        z.integrations.get(made["id"])


@_needs("zentro.compliance.report_jobs_api")
def test_generated_reports_through_the_sdk(app, monkeypatch, z):
    monkeypatch.setitem(app.config, "ZENTRO_REPORT_JOB_EXECUTION", "inline")
    z.incidents.create("Something to report", severity="high")
    job = z.reports.generate("incident-summary", period_days=7)
    assert job["kind"] == "incident-summary" and z.last_response.status_code == 202
    done = z.reports.wait(job["id"], timeout=5)
    assert done["status"] == "done", done.get("error")
    assert {a["format"] for a in done["artifacts"]} >= {"pdf", "json"}
    pdf = z.reports.download(job["id"])
    assert isinstance(pdf, bytes) and pdf.startswith(b"%PDF")
    as_json = z.reports.download(job["id"], format="json")
    assert isinstance(as_json, dict)
    assert [j["id"] for j in z.reports.list(kind="incident-summary")] == [job["id"]]
    with pytest.raises(ValidationError):
        z.reports.generate("no-such-report")
    z.reports.delete(job["id"])
    with pytest.raises(NotFoundError):
        z.reports.get(job["id"])


@_needs("zentro.compliance.report_jobs_api")
def test_a_report_cannot_be_downloaded_before_it_is_done(app, monkeypatch, z):
    monkeypatch.setitem(app.config, "ZENTRO_REPORT_JOB_EXECUTION", "inline")
    from zentro.compliance import report_jobs

    monkeypatch.setattr(report_jobs, "dispatch", lambda app, job_id: None)  # stays queued
    job = z.reports.generate("compliance-posture")
    assert job["status"] == "queued"
    with pytest.raises(ConflictError):
        z.reports.download(job["id"], format="pdf")


@_needs("zentro.billing.api")
def test_billing_through_the_sdk(app, monkeypatch, z):
    for key in ("ZENTRO_LEMONSQUEEZY_CHECKOUT_URL_PRO", "ZENTRO_LEMONSQUEEZY_CHECKOUT_URL_ENTERPRISE"):
        monkeypatch.setitem(app.config, key, None)
    plans = z.billing.plans()
    assert plans["current_plan"] == "free" and {p["plan"] for p in plans["data"]} == {"free", "pro", "enterprise"}
    sub = z.billing.subscription()
    assert sub["plan"] == "free" and sub["subscription"] is None
    with pytest.raises(ConflictError) as info:
        z.billing.checkout("pro")  # no checkout URL configured here
    assert info.value.error_code == "BILLING_NOT_CONFIGURED"


@_needs("zentro.reliability.gates_api")
def test_deploy_gates_through_the_sdk(z):
    svc = z.request("POST", "/api/v1/services", json={"name": "checkout"})
    passed = z.gates.check("checkout", ref="4f2a9c1", environment="production")
    assert passed["decision"] == "pass" and z.last_response.headers["X-Zentro-Gate"] == "pass"
    assert passed["context"]["ref"] == "4f2a9c1"

    z.incidents.create("Checkout down", severity="critical", service_id=svc["id"])
    failed = z.gates.check(svc["id"])
    assert failed["decision"] == "fail" and failed["reasons"]

    rules = z.gates.update_rules(svc["id"], block_severities=[])
    assert rules["block_severities"] == [] and z.gates.rules(svc["id"])["configured"] is True
    assert z.gates.check("checkout")["decision"] == "pass"
    assert [d["decision"] for d in z.gates.decisions(svc["id"])] == ["pass", "fail", "pass"]
    with pytest.raises(NotFoundError):
        z.gates.check("no-such-service")
