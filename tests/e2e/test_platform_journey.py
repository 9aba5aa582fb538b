"""An SRE lead's platform journey in a real browser (Chromium via Playwright), against a Datadog API stand-in on
127.0.0.1.

Sign in as owner, open Settings → Integrations, add a Datadog integration with an API key: the page shows the ingest
URL, the token (once) and an example payload; sending that example with that token opens an incident. Press Test:
the stand-in receives the key and the row turns healthy. Open Generated reports, generate an incident summary and
download its PDF. Open Billing and read the plan and its limits. The secret typed into the form appears on no page.
Screenshots land in test-results/e2e/platform/ (or $ZENTRO_SHOTS_DIR).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import TIMEOUT_MS, shots_folder, signed_in_page
from tests.http_stub import StubServer

pytestmark = pytest.mark.e2e

DD_KEY = "dd-api-key-e2e-0123456789abcdef"


@pytest.fixture
def shots():
    return shots_folder("platform")


@pytest.fixture
def datadog(app, monkeypatch):
    stub = StubServer().route("GET", "/api/v1/validate", lambda req: (200, {"valid": True}))
    monkeypatch.setitem(app.config, "ZENTRO_INTEGRATIONS_ALLOW_PRIVATE", True)
    monkeypatch.setitem(app.config, "ZENTRO_REPORT_JOB_EXECUTION", "inline")
    yield stub
    stub.stop()


def test_owner_connects_datadog_generates_a_report_and_reads_billing(app, browser, shots, live_server, make_member,
                                                                     datadog):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    owner = make_member("acme", "owner", email="owner@acme.example", plan="pro")
    context, page, errors = signed_in_page(browser, live_server.url, owner, accept_downloads=True)

    # --- integrations: add Datadog, read the one-time ingest setup, use it -------------------------------------
    page.get_by_role("link", name="Integrations").click()
    expect(page.get_by_role("heading", name="Integrations", exact=True)).to_be_visible()
    expect(page.locator("#integrations")).to_contain_text("No integrations yet")
    page.locator("select[name=provider]").select_option("datadog")
    form = page.locator("#add-integration")
    form.locator("input[name=name]").fill("Datadog production")
    form.locator("input[name='config.api_url']").fill(datadog.url)
    form.locator("input[name='secrets.api_key']").fill(DD_KEY)
    form.get_by_role("button", name="Add integration").click()
    once = page.locator("#ingest-once")
    expect(once).to_contain_text("Ingest setup for “Datadog production”")
    token = page.locator("#new-token").inner_text().strip()
    url = page.locator("#ingest-url").inner_text().strip()
    example = json.loads(page.locator("#example-payload").inner_text())
    assert token.startswith("zentro_it_") and url.startswith(live_server.url + "/api/integrations/alerts")
    page.screenshot(path=str(shots / "platform-1-integration-created.png"), full_page=True)

    example["date"] = str(int(time.time() * 1000))  # the alert fires now (the example carries a fixed date)
    sent = requests.post(url, json=example, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert sent.status_code in (200, 201, 202), sent.text
    result = sent.json()["results"][0]
    assert result["outcome"] == "created" and result["source"] == "datadog", result
    incident_ref = result["incident_ref"]

    row = page.locator("#integrations tr", has_text="Datadog production")
    expect(row).to_contain_text("untested")
    row.get_by_role("button", name="Test").click()
    row = page.locator("#integrations tr", has_text="Datadog production")
    expect(row).to_contain_text("healthy")
    validate = [c for c in datadog.calls if c.path == "/api/v1/validate"]
    assert len(validate) == 1 and {k.lower(): v for k, v in validate[0].headers.items()}["dd-api-key"] == DD_KEY
    page.reload()
    assert DD_KEY not in page.content() and token not in page.content()  # write-only, shown once
    page.screenshot(path=str(shots / "platform-2-integration-healthy.png"), full_page=True)

    # --- generated reports: an incident summary as PDF ---------------------------------------------------------
    page.get_by_role("link", name="Generated reports").click()
    expect(page.get_by_role("heading", name="Generated reports")).to_be_visible()
    page.locator("select[name=kind]").select_option("incident-summary")
    page.get_by_role("button", name="Generate").click()
    job_row = page.locator("tr[id^=report-job-]").first
    expect(job_row).to_contain_text("done")
    with page.expect_download() as info:
        job_row.get_by_role("link", name="PDF", exact=False).first.click()
    pdf = Path(info.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    page.screenshot(path=str(shots / "platform-3-report.png"), full_page=True)

    from io import BytesIO

    from pypdf import PdfReader

    text = "\n".join(p.extract_text() for p in PdfReader(BytesIO(pdf)).pages)
    assert "Incident summary" in text and "MTTA" in text
    job_id = job_row.get_attribute("id").removeprefix("report-job-")
    figures = requests.get(f"{live_server.url}/api/v1/reports/{job_id}/download?format=json", timeout=10,
                           cookies={c["name"]: c["value"] for c in context.cookies()}).json()
    assert figures["summary"]["incidents"] == 1, figures["summary"]  # the alert sent above, and nothing else
    page.goto("/incidents")
    expect(page.locator("main")).to_contain_text(incident_ref)

    # --- billing: the plan and its limits ----------------------------------------------------------------------
    page.get_by_role("link", name="Billing").click()
    expect(page.get_by_role("heading", name="Billing", exact=True)).to_be_visible()
    expect(page.locator("main")).to_contain_text("Current plan: Pro")
    expect(page.locator("main")).to_contain_text("300 per minute")
    expect(page.locator("main")).to_contain_text("not configured")
    page.screenshot(path=str(shots / "platform-4-billing.png"), full_page=True)
    assert errors == []
    context.close()
