"""Browser journeys: where screenshots go and how long a step may wait (the ``browser`` fixture, Debian's
Chromium driven by Playwright, is in tests/conftest.py: other packages' page tests use it too)."""
from __future__ import annotations

import os
from pathlib import Path

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "e2e"
TIMEOUT_MS = 15_000




def signed_in_page(browser, base_url: str, member, **context_options):
    """A new browser context signed in as ``member`` (the sign-in form, as a person would), its page and the list
    the page's JavaScript errors are collected in."""
    context = browser.new_context(viewport={"width": 1360, "height": 900}, base_url=base_url, **context_options)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/login")
    page.fill("input[name=email]", member.email)
    page.fill("input[name=password]", member.password)
    page.click("button[type=submit]")
    return context, page, errors


def shots_folder(journey: str) -> Path:
    """Where a journey's screenshots go: test-results/e2e/<journey>/, or $ZENTRO_SHOTS_DIR when set."""
    folder = Path(os.environ.get("ZENTRO_SHOTS_DIR") or SHOTS / journey)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
