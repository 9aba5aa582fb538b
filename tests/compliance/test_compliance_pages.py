"""The compliance pages render the engine's numbers: dashboard, framework control table (filters, HTMX partial,
bad filters), control page (breakdown, timeline, crosswalk, attestations, exceptions), auth and tenancy."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from tests.compliance.engine_helpers import attestation, bundle, evidence, exception, policy, vendor
from zentro.compliance import engine
from zentro.extensions import db
from zentro.platform.types import utcnow


@pytest.fixture
def world(app, make_member, sign_in):
    owner = make_member("alpha", "owner")
    viewer = make_member("alpha", "viewer")
    other = make_member("bravo", "owner")
    now = utcnow()
    with app.app_context():
        org = owner.org_id
        evidence(org, "SOC2:CC7.2", at=now - dt.timedelta(days=2), n=2, action="alert.triaged",
                 target_type="incident", target_id="77")
        evidence(org, "ISO27001:A.8.16", at=now - dt.timedelta(days=1), action="monitoring.reviewed")
        policy(org, "Monitoring policy", ["SOC2:CC7.2"], accepted_at=now - dt.timedelta(days=4))
        vendor(org, "AlphaCloud", ["SOC2:CC6.4"], expires=now + dt.timedelta(days=10), tier="critical",
               handles_phi=True, baa=False)
        attestation(org, "SOC2:CC7.2", due_at=now - dt.timedelta(days=6), owner_id=owner.user_id)
        exception(org, "SOC2:CC7.2", reason="Pager rotation gap", compensating="Manual on-call roster",
                  opened_at=now - dt.timedelta(days=3), expires_at=now + dt.timedelta(days=20))
        bundle(org, 1, created_at=now - dt.timedelta(days=1))
        evidence(other.org_id, "SOC2:CC7.2", at=now - dt.timedelta(days=1), action="bravo.private.action")
        db.session.commit()
        db.session.remove()
    out = {"owner": sign_in(owner), "viewer": sign_in(viewer), "other": sign_in(other), "anon": app.test_client(),
           "owner_email": owner.email}
    with app.app_context():  # after the sign-ins, which record tagged audit rows of their own
        out["results"] = engine.assess_all(owner.org_id, 30, utcnow())
        db.session.remove()
    return out


def test_dashboard_shows_every_framework_with_its_readiness(world):
    r = world["viewer"].get("/compliance")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    for fr in world["results"].values():
        assert f'href="/compliance/frameworks/{fr.slug}"' in html
        assert f"{fr.name}: {fr.readiness:g} % ready" in html
    assert html.count('class="spark"') == 9 and "<svg" in html
    assert 'aria-current="page">Dashboard' in html  # the sub-navigation
    assert "/compliance/assessor-tokens" in html and "/compliance/governance" in html
    # overdue attestation with its owner, vendor risk, bundle history
    assert world["owner_email"] in html and "SOC2:CC7.2" in html
    assert "handle PHI without a BAA: AlphaCloud" in html
    assert "reports expiring in 30 days: AlphaCloud" in html
    assert '/compliance/bundles/' in html


def test_framework_page_table_filters_and_downloads(world):
    soc2 = world["results"]["SOC2"]
    html = world["owner"].get("/compliance/frameworks/soc2").get_data(as_text=True)
    assert f"{soc2.readiness:g} %" in html
    assert "/api/governance/compliance/type-ii?format=csv" in html
    assert html.count('<th scope="row">') == 61
    assert 'id="fw-trend"' in html and 'id="fw-families"' in html
    cc72 = soc2.control("SOC2:CC7.2")
    assert cc72.score == 50 and cc72.state == "at_risk"
    filtered = world["owner"].get("/compliance/frameworks/soc2?family=CC7&state=at_risk").get_data(as_text=True)
    rows = re.findall(r'<th scope="row"><a href="/compliance/controls/([^"]+)"', filtered)
    expected = [c.tag for c in soc2.controls if c.family == "CC7" and c.state == "at_risk"]
    assert rows and [r.replace("%3A", ":") for r in rows] == expected
    partial = world["owner"].get("/compliance/frameworks/soc2?state=failing", headers={"HX-Request": "true"})
    body = partial.get_data(as_text=True)
    assert partial.status_code == 200 and body.lstrip().startswith('<div id="control-table">') and "<html" not in body
    assert body.count('<th scope="row">') == soc2.counts["failing"]
    # Back button after the filter pushed a URL: HTMX restores history with the whole page, not the table
    restore = world["owner"].get("/compliance/frameworks/soc2?state=failing",
                                 headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    page = restore.get_data(as_text=True)
    assert restore.status_code == 200 and "<html" in page and 'id="fw-trend"' in page


@pytest.mark.parametrize("query,message", [("family=ZZ", "Unknown family"), ("state=great", "Unknown state")])
def test_bad_filters_are_400_and_show_everything(world, query, message):
    r = world["owner"].get(f"/compliance/frameworks/soc2?{query}")
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert message in html and html.count('<th scope="row">') == 61


def test_framework_aliases_redirect_and_unknown_is_404(world):
    r = world["owner"].get("/compliance/frameworks/fedramp")
    assert r.status_code == 302 and r.headers["Location"].endswith("/compliance/frameworks/nist-800-53")
    assert world["owner"].get("/compliance/frameworks/cmmc-l2").headers["Location"].endswith("/nist-800-171")
    assert world["owner"].get("/compliance/frameworks/nope").status_code == 404
    for slug in ("iso27001", "pci-dss", "hipaa", "nist-csf", "cis-v8", "nist-800-171", "gdpr-art32", "nist-800-53"):
        assert world["viewer"].get(f"/compliance/frameworks/{slug}").status_code == 200


def test_control_page_breakdown_timeline_and_registers(world):
    r = world["owner"].get("/compliance/controls/SOC2:CC7.2")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "Score <span class=\"cmp-score cmp-warn\">50</span>" in html
    assert "capped at 50" in html and "Pager rotation gap" in html and "Manual on-call roster" in html
    assert "Monitoring policy" in html
    # timeline: newest first, the ISO row (full crosswalk equivalent) and the two incident rows linked to the incident
    actions = re.findall(r"<code>(alert\.triaged|monitoring\.reviewed)</code>", html)
    assert actions == ["monitoring.reviewed", "alert.triaged", "alert.triaged"]
    assert 'href="/incidents/77"' in html
    assert "ISO27001:A.8.16" in html and "full</span>" in html
    assert world["owner_email"] in html and "overdue" in html
    assert "bravo.private.action" not in html


def test_control_page_unknown_tag_is_404(world):
    assert world["owner"].get("/compliance/controls/SOC2:NOPE").status_code == 404
    assert world["owner"].get("/compliance/controls/garbage").status_code == 404


def test_other_org_sees_its_own_numbers(world):
    html = world["other"].get("/compliance/controls/SOC2:CC7.2").get_data(as_text=True)
    assert "bravo.private.action" in html and "alert.triaged" not in html and "Pager rotation gap" not in html
    dash = world["other"].get("/compliance").get_data(as_text=True)
    assert "AlphaCloud" not in dash


def test_pages_need_a_session(world, app, make_member, make_api_key):
    for url in ("/compliance", "/compliance/frameworks/soc2", "/compliance/controls/SOC2:CC6.1"):
        r = world["anon"].get(url)
        assert r.status_code == 302 and "/login" in r.headers["Location"]
    key = make_api_key(make_member("alpha", "owner"))
    assert world["anon"].get("/compliance", headers={"Authorization": f"Bearer {key}"}).status_code in (302, 403)


# --- browser -------------------------------------------------------------------------------------------------

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screens" / "compliance"
DEMO_PASSWORD = "demo-password-for-compliance-screens"




@pytest.fixture
def demo(app):
    from tests.compliance.engine_helpers import seed_engine_demo
    from zentro.accounts.demo import seed_demo
    from zentro.accounts.service import get_org

    with app.app_context():
        seed_demo(DEMO_PASSWORD)
        org = get_org("acme")
        now = utcnow()
        seed_engine_demo(org.id, now)  # (seed_demo already seeded the registers)
        db.session.commit()
        org_id = org.id
        db.session.remove()
    return org_id


def _fits(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "page scrolls sideways"


@pytest.mark.e2e
def test_compliance_pages_in_a_browser(live_server, browser, demo, app):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(15_000)
    page.goto(live_server.url + "/login")
    page.fill("input[name=email]", "owner@acme.example")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")

    page.goto(live_server.url + "/compliance")
    cards = page.locator("a.cmp-card")
    assert cards.count() == 9
    for i in range(9):
        box = cards.nth(i).locator("svg.spark").bounding_box()
        assert box and box["width"] > 100 and box["height"] > 20
    with app.app_context():
        soc2 = engine.assess(demo, "SOC2", 30, utcnow())
    assert page.locator("a.cmp-card", has_text="SOC 2").first.get_attribute("aria-label").startswith(
        f"SOC 2: {soc2.readiness:g} % ready")
    _fits(page)
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)

    page.locator("a.cmp-card", has_text="SOC 2").first.click()
    page.wait_for_url(live_server.url + "/compliance/frameworks/soc2")
    for chart in ("fw-trend", "fw-families"):
        box = page.locator(f"svg#{chart}").bounding_box()
        assert box and box["width"] > 300 and box["height"] > 100, chart
    assert page.locator("#control-table tbody tr").count() == 61
    _fits(page)
    page.screenshot(path=str(SHOTS / "framework-soc2.png"), full_page=True)
    page.screenshot(path=str(SHOTS / "framework-soc2-top.png"))
    # the HTMX filter swaps the table in place
    page.select_option("select[name=state]", "passing")
    page.locator("#control-table p[role=status]", has_text=", passing").wait_for()
    assert "state=passing" in page.url  # hx-push-url keeps the filter in the address
    assert page.locator("#control-table tbody tr").count() == soc2.counts["passing"]
    page.screenshot(path=str(SHOTS / "framework-soc2-passing.png"), full_page=True)

    page.goto(live_server.url + "/compliance/controls/SOC2:CC6.6")
    assert page.locator("dl.cmp-breakdown dd", has_text="capped at 50").count() == 1
    _fits(page)
    page.screenshot(path=str(SHOTS / "control-cc6-6.png"), full_page=True)
    page.screenshot(path=str(SHOTS / "control-cc6-6-top.png"))
    page.goto(live_server.url + "/compliance/controls/SOC2:CC7.2")
    assert page.locator("section[aria-labelledby=timeline-heading] tbody tr").count() == 50
    page.screenshot(path=str(SHOTS / "control-cc7-2.png"), full_page=True)

    narrow = browser.new_page(viewport={"width": 420, "height": 900})
    narrow.context.add_cookies(page.context.cookies())
    narrow.goto(live_server.url + "/compliance")
    narrow.screenshot(path=str(SHOTS / "dashboard-narrow.png"), full_page=True)
