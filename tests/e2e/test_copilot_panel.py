"""The copilot panel in a real browser: on the incident page a responder asks why it is happening; the
answer streams in (SSE over fetch) and then shows the records it used as links. Screenshots land in
test-results/e2e/copilot-*.png."""
from __future__ import annotations

import re

import pytest

from tests.copilot.helpers import seed_org
from tests.e2e.conftest import SHOTS, TIMEOUT_MS

pytestmark = pytest.mark.e2e


def test_ask_the_copilot_on_the_incident_page(browser, live_server, make_member, app, monkeypatch):
    from playwright.sync_api import expect

    monkeypatch.setitem(app.config, "OPENAI_API_KEY", None)
    monkeypatch.setitem(app.config, "ZENTRO_REASONING_API_URL", None)
    expect.set_options(timeout=TIMEOUT_MS)
    SHOTS.mkdir(parents=True, exist_ok=True)
    sre = make_member("alpha", "owner")
    seed = seed_org(app, sre.org_id)

    page = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    streamed: list[str] = []
    page.on("response", lambda r: streamed.append(r.headers.get("content-type", "")) if "/api/copilot/chat" in r.url else None)
    page.goto("/login")
    page.get_by_label("Email").fill(sre.email)
    page.get_by_label("Password").fill(sre.password)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"/incidents/{seed.incident_id}")

    panel = page.locator("#copilot")
    question = panel.get_by_label("Question for the copilot")
    expect(question).to_be_visible()
    question.fill("What is the likely cause?")
    panel.get_by_role("button", name="Ask", exact=True).click()

    answer = panel.locator(".copilot-assistant").last
    expect(answer).to_contain_text("Deploy of checkout 42 — confidence 0.82")
    link = answer.get_by_role("link", name=re.compile(rf"RCA run #{seed.run_id}"))
    expect(link).to_have_attribute("href", f"/incidents/{seed.incident_id}/rca")
    expect(answer.get_by_role("link", name=re.compile("Checkout latency spike after deploy"))).to_have_attribute(
        "href", f"/incidents/{seed.past_id}")
    assert streamed and streamed[0].startswith("text/event-stream")
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(SHOTS / "copilot-01-answer.png"))

    panel.get_by_role("button", name="What should we do next?").click()
    expect(panel.locator(".copilot-assistant")).to_have_count(2)
    expect(panel.locator(".copilot-assistant").last.get_by_role("link", name="Runbook for checkout")).to_be_visible()
    panel.screenshot(path=str(SHOTS / "copilot-02-next-steps.png"))
    assert errors == []
