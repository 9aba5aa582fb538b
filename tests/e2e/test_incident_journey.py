"""The incident journey in a real browser: an alert arrives from Alertmanager, an incident opens,
an SRE finds it in the live list, acknowledges it, adds a note, runs an RCA, resolves it and
downloads the post-incident review. Screenshots land in test-results/e2e/incident-*.png."""
from __future__ import annotations

import re

import pytest
import requests

from tests.e2e.conftest import SHOTS, TIMEOUT_MS

pytestmark = pytest.mark.e2e


def alertmanager_payload(status: str) -> dict:
    return {
        "version": "4", "groupKey": '{}:{alertname="CheckoutErrors"}', "status": status, "receiver": "zentro",
        "groupLabels": {"alertname": "CheckoutErrors"}, "commonLabels": {"alertname": "CheckoutErrors"},
        "commonAnnotations": {}, "externalURL": "http://alertmanager.example", "truncatedAlerts": 0,
        "alerts": [{
            "status": status,
            "labels": {"alertname": "CheckoutErrors", "severity": "critical", "service": "checkout"},
            "annotations": {"summary": "Checkout 5xx above 5%", "description": "5xx ratio 7.2% for 10 minutes"},
            "startsAt": "2026-11-25T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-25T10:40:00Z",
            "generatorURL": "http://prometheus.example/graph", "fingerprint": "c0ffee1234567890",
        }],
    }


def test_alert_to_review(browser, live_server, make_member, make_ingest_token, app):
    from playwright.sync_api import expect

    from zentro.incidents import rca

    expect.set_options(timeout=TIMEOUT_MS)
    SHOTS.mkdir(parents=True, exist_ok=True)
    sre = make_member("alpha", "owner", plan="pro")
    token = make_ingest_token(sre, "alertmanager prod")
    base = live_server.url

    page = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base, accept_downloads=True).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/login")
    page.get_by_label("Email").fill(sre.email)
    page.get_by_label("Password").fill(sre.password)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/incidents")
    expect(page.get_by_text("Live: refreshes")).to_be_visible()

    # the alert arrives while the list is open; the live refresh shows it without a reload
    resp = requests.post(f"{base}/api/integrations/alerts", json=alertmanager_payload("firing"),
                         headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert resp.status_code == 202, resp.text
    ref = resp.json()["results"][0]["incident_ref"]
    row = page.get_by_role("link", name=re.compile(rf"{ref}\b.*Checkout 5xx"))
    expect(row).to_be_visible(timeout=25_000)
    page.screenshot(path=str(SHOTS / "incident-01-list.png"), full_page=True)

    row.click()
    expect(page.get_by_role("heading", name=re.compile("Checkout 5xx"))).to_be_visible()
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_text(re.compile("open → acknowledged"))).to_be_visible()

    page.get_by_placeholder("What you saw, tried or decided").fill("Rolled back checkout to 2026.11.24.")
    page.get_by_role("button", name="Add note").click()
    expect(page.get_by_text("Rolled back checkout to 2026.11.24.")).to_be_visible()

    rca.set_executor(app, rca.InlineExecutor())  # the run finishes inside the request: no waiting on a thread
    try:
        # Adding the note re-rendered the detail body, whose panels load themselves again: wait until the RCA panel
        # is the loaded one and nothing is in flight, or the run's answer lands on the placeholder the load replaces.
        expect(page.locator(".rca-panel[hx-trigger='load']")).to_have_count(0)
        expect(page.locator(".htmx-request")).to_have_count(0)
        page.get_by_role("button", name="Run RCA").click()
        expect(page.locator(".rca-hypotheses li").first).to_be_visible()
    finally:
        rca.set_executor(app, None)
    page.screenshot(path=str(SHOTS / "incident-02-rca.png"), full_page=True)

    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_text(re.compile("acknowledged → resolved"))).to_be_visible()

    with page.expect_download() as download:
        page.get_by_role("link", name="Post-incident review").click()
    review = open(download.value.path(), encoding="utf-8").read()
    assert ref in review and "Checkout 5xx" in review and "Rolled back checkout" in review
    assert re.search(r"^#", review, re.M)
    page.screenshot(path=str(SHOTS / "incident-03-resolved.png"), full_page=True)
    assert not errors, errors
