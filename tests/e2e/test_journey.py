"""A user's first journey through Zentro in a real browser (Chromium via Playwright).

Sign in through the form, switch organisation from the top bar, create an API key in
Settings, use it against the API, revoke it, sign out, and check that a copied session
cookie is dead afterwards. Full-page screenshots of every step land in
test-results/e2e/ at the repo root (gitignored) for people to look at.

Needs the system Chromium at /usr/bin/chromium (no browser download): without it the test
is skipped, or fails when ZENTRO_REQUIRE_SERVICES=1.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e.conftest import SHOTS, TIMEOUT_MS

pytestmark = pytest.mark.e2e


@pytest.fixture
def shots():
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("[0-9]*.png"):
        old.unlink()
    return SHOTS


def test_sign_in_switch_org_api_key_lifecycle_sign_out(browser, shots, live_server, make_member):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    owner = make_member("alpha", "owner")
    beta_id = make_member("beta", "member", email=owner.email).org_id  # same user, second org
    base = live_server.url

    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=base)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page_errors: list[str] = []
    bad_responses: list[str] = []
    dialogs: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))

    def console(msg):
        # Chromium asks for /favicon.ico on its own; there is none yet (reported, not this test's concern)
        if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico"):
            page_errors.append(f"{msg.text} at {msg.location.get('url')}")

    page.on("console", console)
    page.on("response", lambda r: bad_responses.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)

    def shot(name: str) -> None:
        page.screenshot(path=str(shots / name), full_page=True)

    main = page.locator("main")
    flashes = page.locator(".flashes")

    try:
        # 1. sign in through the form
        page.goto("/login")
        expect(page).to_have_title(re.compile("Sign in"))
        shot("01-login.png")
        page.get_by_label("Email").fill(owner.email)
        page.get_by_label("Password").fill(owner.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(base + "/")
        expect(main.get_by_role("heading", level=1)).to_have_text("Alpha")
        expect(page.locator("header.topbar")).to_contain_text(owner.email)
        shot("02-overview.png")

        # 2. switch the active org from the top bar (the select submits itself on change)
        switcher = page.locator("#org_id")
        expect(switcher.locator("option:checked")).to_contain_text("Alpha")
        expect(page.locator("form.org-switch").get_by_role("button", name="Switch")).to_be_visible()
        switcher.select_option(str(beta_id))
        expect(flashes).to_contain_text("Switched to Beta")
        expect(main.get_by_role("heading", level=1)).to_have_text("Beta")
        expect(page.locator("#org_id option:checked")).to_contain_text("Beta · member")
        shot("03-switched-org.png")

        # 3. Settings → API keys: create a key, see the one-time secret and the table row
        page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
        expect(page).to_have_url(base + "/settings/api-keys")
        expect(main.get_by_role("heading", level=1)).to_have_text("API keys")
        expect(main).to_contain_text("Beta")
        shot("04-api-keys.png")
        page.get_by_label("Name", exact=True).fill("ci pipeline")
        page.get_by_role("button", name="Create key").click()
        expect(flashes).to_contain_text("ci pipeline")
        secret_el = page.locator("#new-secret")
        expect(secret_el).to_have_text(re.compile(r"^\s*zentro_pk_\S+\s*$"))
        secret = secret_el.inner_text().strip()
        prefix = secret[:len("zentro_pk_") + 8]
        row = page.locator("table.secrets tbody tr", has_text="ci pipeline")
        expect(row).to_have_count(1)
        expect(row).to_contain_text(prefix)
        expect(row.locator(".pill")).to_have_text("active")
        expect(page.locator("table.secrets")).not_to_contain_text(secret)  # the table never shows the full secret
        shot("05-key-created.png")

        # responsive check: the same page on a phone-sized viewport
        page.set_viewport_size({"width": 390, "height": 844})
        expect(row).to_be_visible()
        shot("06-api-keys-390px.png")
        page.set_viewport_size({"width": 1280, "height": 800})

        # 4. the key works against the API, acting in the org it was created in
        resp = requests.get(f"{base}/api/audit/export", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
        assert resp.status_code == 200, resp.text
        assert resp.headers["Content-Type"].startswith("text/csv")
        assert "api_key.created" in resp.text
        assert "zentro-audit-beta-" in resp.headers.get("Content-Disposition", "")

        # 5. revoke it from the table, accepting the confirm() dialog
        row.get_by_role("button", name="Revoke").click()
        expect(flashes).to_contain_text("revoked")
        expect(row.locator(".pill")).to_have_text("revoked")
        expect(row.get_by_role("button", name="Revoke")).to_have_count(0)
        expect(page.locator("#new-secret")).to_have_count(0)  # the secret is not shown again
        assert dialogs and "ci pipeline" in dialogs[0], dialogs
        shot("07-key-revoked.png")
        resp = requests.get(f"{base}/api/audit/export", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
        assert resp.status_code == 401, resp.text
        assert resp.json()["error_code"] == "UNAUTHORIZED"

        # 6. sign out; a session cookie copied beforehand no longer works
        copied = {c["name"]: c["value"] for c in context.cookies(base)}
        assert "session" in copied, copied
        still_on = requests.get(f"{base}/", cookies=copied, allow_redirects=False, timeout=10)
        assert still_on.status_code == 200 and "Beta" in still_on.text  # proves the copy is a live session
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(re.compile(r"/login$"))
        expect(flashes).to_contain_text("You are signed out.")
        expect(page.locator("header.topbar")).to_have_count(0)
        shot("08-signed-out.png")
        replay = requests.get(f"{base}/", cookies=copied, allow_redirects=False, timeout=10)
        assert replay.status_code == 302, replay.text
        assert urlsplit(replay.headers["Location"]).path == "/login"

        assert not bad_responses, bad_responses
        assert not page_errors, page_errors
    except BaseException:
        page.screenshot(path=str(shots / "99-failure.png"), full_page=True)
        raise
    finally:
        context.close()
