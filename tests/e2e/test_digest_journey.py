"""A compliance owner's digest journey in a real browser (Chromium via Playwright), against a real SMTP server
and a Slack Web API stand-in on 127.0.0.1.

Sign in, open Settings → Digests, turn on the compliance program digest with a Slack channel and save; press
"Send now" and read the outcome in the row; press it again and read that nothing was sent twice; open the
delivery log and find the e-mail (sent) and the Slack message (sent) with their targets; open the digest's
preview from the row. Screenshots land in test-results/e2e/digests/ (or $ZENTRO_SHOTS_DIR).
"""
from __future__ import annotations


import pytest

from tests.e2e.conftest import TIMEOUT_MS, shots_folder, signed_in_page
from tests.http_stub import StubServer
from tests.notify.servers import SmtpServer, slack_api

pytestmark = pytest.mark.e2e


@pytest.fixture
def shots():
    return shots_folder("digests")


@pytest.fixture
def channels(app, monkeypatch):
    smtp = SmtpServer()
    stub = StubServer()
    monkeypatch.setitem(app.config, "ZENTRO_SMTP_URL", smtp.url)
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_BOT_TOKEN", "xoxb-test-token")
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_API_URL", slack_api(stub))
    yield smtp, stub
    smtp.stop()
    stub.stop()


def test_owner_schedules_sends_and_audits_a_digest(app, browser, shots, live_server, make_member, channels):
    from playwright.sync_api import expect

    smtp, stub = channels
    expect.set_options(timeout=TIMEOUT_MS)
    owner = make_member("acme", "owner", email="owner@acme.example", plan="enterprise")
    context, page, errors = signed_in_page(browser, live_server.url, owner)
    page.get_by_role("link", name="Digests").click()
    expect(page.get_by_role("heading", name="Digests", exact=True)).to_be_visible()

    row = page.locator("#digest-row-digest")
    row.get_by_label("Send Compliance program digest on its schedule").check()
    row.get_by_label("Slack channel for Compliance program digest").fill("#compliance")
    row.get_by_role("button", name="Save").click()
    row = page.locator("#digest-row-digest")
    expect(row).to_contain_text("Saved.")
    expect(row).to_contain_text("Next: ")
    expect(row.locator(".nt-when").first).to_contain_text("UTC")
    page.screenshot(path=str(shots / "digests-1-saved.png"), full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Send now").click()
    row = page.locator("#digest-row-digest")
    expect(row.get_by_role("status")).to_contain_text("email sent")
    assert len(smtp.messages) == 1 and smtp.messages[0]["To"] == "owner@acme.example"
    posted = [c for c in stub.calls if c.path.endswith("/chat.postMessage")]
    assert len(posted) == 1 and posted[0].json["channel"] == "#compliance"
    page.screenshot(path=str(shots / "digests-2-sent.png"), full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Send now").click()
    expect(page.locator("#digest-row-digest").get_by_role("status")).to_contain_text("Already delivered")
    assert len(smtp.messages) == 1  # not twice in one period

    page.get_by_role("link", name="Delivery log").first.click()
    expect(page.get_by_role("heading", name="Delivery log")).to_be_visible()
    log = page.locator("table")
    expect(log).to_contain_text("owner@acme.example")
    expect(log).to_contain_text("#compliance")
    sent_rows = page.locator("tr", has_text="digest").filter(has_text="sent")
    expect(sent_rows).to_have_count(3)  # e-mail, Slack, and the webhook row says why it was not sent
    page.screenshot(path=str(shots / "digests-3-log.png"), full_page=True)

    page.get_by_role("link", name="Digests").click()
    page.locator("#digest-row-digest").get_by_role("link", name="Preview").click()
    expect(page.get_by_role("heading", name="Compliance program digest")).to_be_visible()
    assert errors == []
    context.close()
