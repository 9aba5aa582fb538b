"""A compliance lead's journey through the reports in a real browser (Chromium via Playwright).

Sign in, open the compliance dashboard, follow the Reports link of the compliance sub-navigation, open three
reports from the index (the calendar and the first two others listed), change the calendar's parameters and
submit the form, open the download menu and fetch its CSV (and the PDF of a report that has one) through the
browser context's request API. Full-page screenshots of every step land in test-results/e2e/reports/ (or
$ZENTRO_SHOTS_DIR) for people to look at; the PDF is saved next to them.

Needs the system Chromium at /usr/bin/chromium (no browser download): without it the test is skipped, or fails
when ZENTRO_REQUIRE_SERVICES=1.
"""
from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.conftest import SHOTS, TIMEOUT_MS

pytestmark = pytest.mark.e2e


@pytest.fixture
def shots():
    folder = Path(os.environ.get("ZENTRO_SHOTS_DIR") or SHOTS / "reports")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("reports-*.png"):
        old.unlink()
    return folder


def seed(app, org_id: int) -> None:
    """The demo org's data, so the reports have something to show."""
    from zentro.automations.demo import seed_automations
    from zentro.compliance.demo_analytics import seed_analytics_demo
    from zentro.compliance.demo_registers import seed_compliance
    from zentro.extensions import db
    from zentro.incidents.demo import seed_incidents
    from zentro.platform.types import utcnow
    from zentro.reliability.demo import seed_reliability

    now = utcnow()
    with app.app_context():
        seed_reliability(org_id, now)
        seed_incidents(org_id, now)
        seed_compliance(org_id, now)
        seed_automations(org_id, now)
        seed_analytics_demo(org_id, now)
        db.session.commit()
        db.session.remove()


def test_compliance_reports_journey(app, browser, shots, live_server, make_member):
    from playwright.sync_api import expect

    from zentro.compliance import report_registry as registry

    expect.set_options(timeout=TIMEOUT_MS)
    owner = make_member("acme", "owner", plan="enterprise")
    make_member("acme", "member", plan="enterprise")  # a second person (demo approvals need another decider)
    seed(app, owner.org_id)
    reports = registry.discover()
    base = live_server.url

    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page_errors: list[str] = []
    bad_responses: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    page.on("console", lambda msg: page_errors.append(f"{msg.text} at {msg.location.get('url')}")
            if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico") else None)
    page.on("response", lambda r: bad_responses.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    def shot(name: str) -> None:
        page.screenshot(path=str(shots / f"reports-{name}.png"), full_page=True)

    main = page.locator("main")
    subnav = page.get_by_role("navigation", name="Compliance areas")
    try:
        # 1. sign in, open the compliance dashboard
        page.goto("/login")
        page.get_by_label("Email").fill(owner.email)
        page.get_by_label("Password").fill(owner.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(base + "/")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Compliance").click()
        expect(page).to_have_url(base + "/compliance")
        expect(main.get_by_role("heading", level=1)).to_have_text("Compliance readiness")
        shot("01-dashboard")

        # 2. the Reports link of the compliance sub-navigation opens the index
        subnav.get_by_role("link", name="Reports").click()
        expect(page).to_have_url(base + "/compliance/reports")
        expect(main.get_by_role("heading", level=1)).to_have_text("Reports")
        expect(subnav.get_by_role("link", name="Reports")).to_have_attribute("aria-current", "page")
        index_links = main.locator("a.rpt-index-title")
        expect(index_links).to_have_count(len(reports))
        for category in {d.category for d in reports.values()}:
            expect(main.get_by_role("heading", level=2, name=category)).to_be_visible()
        shot("02-index")
        listed = [urlsplit(h).path.rsplit("/", 1)[-1] for h in index_links.evaluate_all("els => els.map(e => e.href)")]
        chosen = ["calendar"] + [s for s in listed if s != "calendar"][:2]

        # 3. open three reports from the index
        for n, slug in enumerate(chosen, 3):
            page.goto("/compliance/reports")
            main.get_by_role("link", name=reports[slug].title, exact=True).click()
            expect(page).to_have_url(base + f"/compliance/reports/{slug}")
            expect(main.get_by_role("heading", level=1)).to_have_text(reports[slug].title)
            expect(main.locator(".rpt-tiles, .rpt-breakdowns").first).to_be_visible()
            expect(main.get_by_role("heading", name="What the figures mean")).to_be_visible()
            for fig in main.locator("figure.rpt-figure svg[role=img]").all():
                box = fig.bounding_box()
                assert box and box["width"] > 200 and box["height"] > 40, (slug, box)
            shot(f"{n:02d}-{slug}")

        # 4. change the calendar's parameters and submit the form
        page.goto("/compliance/reports/calendar")
        form = main.get_by_role("form", name="Report parameters")
        form.get_by_label("Weeks").fill("6")
        form.get_by_label("Include overdue").uncheck()
        form.get_by_role("button", name="Update report").click()
        expect(page).to_have_url(re.compile(r"/compliance/reports/calendar\?.*weeks=6"))
        expect(form.get_by_label("Weeks")).to_have_value("6")
        expect(form.get_by_label("Include overdue")).not_to_be_checked()
        expect(main.locator(".rpt-params")).to_contain_text(re.compile(r"Weeks\s*6\s*Include overdue\s*no"))
        shot("06-calendar-6-weeks")

        # 5. the download menu: one link per format, carrying the parameters; the CSV downloads
        menu = main.locator("details.rpt-menu")
        menu.locator("summary").click()
        links = menu.get_by_role("link")
        expect(links).to_have_count(len(reports["calendar"].formats))
        shot("07-download-menu")
        hrefs = {a.get_attribute("data-format"): a.get_attribute("href") for a in links.all()}
        assert set(hrefs) == set(reports["calendar"].formats)
        for fmt, href in hrefs.items():
            assert parse_qs(urlsplit(href).query) == {"weeks": ["6"], "includeOverdue": ["false"], "format": [fmt]}
        resp = context.request.get(base + hrefs["csv"])
        assert resp.status == 200 and resp.headers["content-type"].startswith("text/csv")
        assert "attachment" in resp.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(resp.text())))
        assert ["# Obligations"] in rows
        resp = context.request.get(base + hrefs["json"])
        assert resp.status == 200 and resp.json()["params"]["weeks"] == 6

        # 6. invalid parameters: the form says why, no report
        form.get_by_label("Weeks").fill("99")
        form.get_by_role("button", name="Update report").click()
        expect(main.get_by_role("alert")).to_contain_text("less than or equal to 52")
        expect(main.locator("table.rpt-table")).to_have_count(0)
        shot("08-bad-parameters")
        bad_responses[:] = [b for b in bad_responses if "weeks=99" not in b]  # the expected 400 ...
        page_errors[:] = [e for e in page_errors if "weeks=99" not in e]  # ... which Chromium logs too

        # 7. a report with a printable document and a PDF: open its page and fetch both downloads
        with_pdf = next((d for d in sorted(reports.values(), key=lambda d: d.slug) if "pdf" in d.formats), None)
        if with_pdf is not None:
            page.goto(f"/compliance/reports/{with_pdf.slug}")
            expect(main.get_by_role("heading", level=1)).to_have_text(with_pdf.title)
            shot(f"09-{with_pdf.slug}")
            pdf = context.request.get(f"{base}/api/governance/compliance/{with_pdf.slug}?format=pdf")
            assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
            (shots / f"reports-{with_pdf.slug}.pdf").write_bytes(pdf.body())
            if "html" in with_pdf.formats:
                page.goto(f"/api/governance/compliance/{with_pdf.slug}?format=html")
                expect(page.get_by_role("heading", level=1)).to_have_text(with_pdf.title)
                shot(f"10-{with_pdf.slug}-printable")

        # 8. a phone-sized viewport
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto("/compliance/reports/calendar")
        expect(main.get_by_role("heading", level=1)).to_be_visible()
        shot("11-calendar-390px")

        assert not bad_responses, bad_responses
        assert not page_errors, page_errors
    except BaseException:
        page.screenshot(path=str(shots / "reports-99-failure.png"), full_page=True)
        raise
    finally:
        context.close()
