"""Browser check of the reliability pages against a live server with the demo data: the services list,
an SLO page and the dependency graph render their SVG pictures inside the page (no horizontal
overflow), and full-page screenshots land in test-results/screens/reliability/ (gitignored) for people to look at.

Needs the system Chromium at /usr/bin/chromium; skipped without it (fails when ZENTRO_REQUIRE_SERVICES=1)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from zentro.extensions import db

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screens" / "reliability"
PASSWORD = "demo-password-for-screens"

pytestmark = pytest.mark.e2e


@pytest.fixture
def browser():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        if os.environ.get("ZENTRO_REQUIRE_SERVICES") == "1":
            pytest.fail(f"no Chromium at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def demo(app):
    from zentro.accounts.demo import seed_demo
    from zentro.accounts.service import get_org
    from zentro.reliability.demo import seed_reliability

    with app.app_context():
        seed_demo(PASSWORD)
        org = get_org("acme")
        seed_reliability(org.id)
        from zentro.reliability.service import all_services

        ids = {s.name: s.id for s in all_services(org.id)}
        db.session.remove()
    return ids


def _no_horizontal_overflow(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "page scrolls sideways"


def test_reliability_pages_in_a_browser(live_server, browser, demo):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(15_000)
    page.goto(live_server.url + "/login")
    page.fill("input[name=email]", "owner@acme.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")

    page.goto(live_server.url + "/services")
    rows = page.locator("table.rel-services tbody tr")
    assert rows.count() == 9
    assert page.locator("text=from incidents").count() == 1  # auth-service posts no SLI
    _no_horizontal_overflow(page)
    page.screenshot(path=str(SHOTS / "services-list.png"), full_page=True)

    page.goto(f"{live_server.url}/services/{demo['search-service']}")
    for chart in ("burndown", "burnbars", "dailyburn"):
        box = page.locator(f"svg#{chart}").bounding_box()
        assert box and box["width"] > 300 and box["height"] > 100, chart
    assert page.locator("span.rel-status", has_text="firing").count() == 1  # the 6-hour page rule
    _no_horizontal_overflow(page)
    page.screenshot(path=str(SHOTS / "slo-search-service.png"), full_page=True)

    page.goto(f"{live_server.url}/services/{demo['payments-api']}")
    page.screenshot(path=str(SHOTS / "slo-payments-api.png"), full_page=True)

    page.goto(live_server.url + "/services/graph")
    graph = page.locator("svg#depgraph")
    card = page.locator("section.rel-graph").bounding_box()
    box = graph.bounding_box()
    assert box["width"] <= card["width"] and box["height"] > 200
    assert page.locator("svg#depgraph g.node").count() == 9
    assert page.locator("svg#depgraph path.edge.hot").count() >= 1
    _no_horizontal_overflow(page)
    page.screenshot(path=str(SHOTS / "dependency-graph.png"), full_page=True)
    # a node is a link to its SLO page
    page.locator(f"svg#depgraph a[href='/services/{demo['payments-api']}']").click()
    page.wait_for_url(f"{live_server.url}/services/{demo['payments-api']}")

    narrow = browser.new_page(viewport={"width": 420, "height": 900})
    narrow.context.add_cookies(page.context.cookies())
    narrow.goto(f"{live_server.url}/services/{demo['payments-api']}")
    narrow.screenshot(path=str(SHOTS / "slo-payments-api-narrow.png"), full_page=True)
