"""The automation journey in a real browser: a member opens an incident on a tier-0 service, dry-runs a
playbook, sees that the tier-0 guardrail needs an approval and requests it; an admin, in a second browser
context, approves it on the Approvals page with a note; the member executes with an approval note and a
rollback plan; the execution is recorded as manual (no robot backend) and the incident timeline shows
the dry-run, the approval and the execution. Screenshots land in test-results/e2e/automation-*.png."""
from __future__ import annotations

import re

import pytest

from tests.automations.helpers import make_playbook, make_services
from tests.e2e.conftest import SHOTS, TIMEOUT_MS
from zentro.audit.service import Actor
from zentro.automations.models import Guardrail
from zentro.extensions import db
from zentro.incidents import service as incidents

pytestmark = pytest.mark.e2e


def _sign_in(browser, base: str, member, errors: list[str]):
    page = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base).new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/login")
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in").click()
    return page


def test_incident_to_executed_playbook_with_an_in_app_approval(browser, live_server, make_member, app):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    SHOTS.mkdir(parents=True, exist_ok=True)
    admin, sre = make_member("alpha", "admin", plan="pro"), make_member("alpha", "member")
    make_member("alpha", "owner")
    with app.app_context():
        svc = make_services(sre.org_id, {"checkout": 0, "storefront": 1}, [("storefront", "checkout")])
        db.session.add(Guardrail(org_id=sre.org_id, name="Tier-0 protection", kind="tier_protection",
                                 params={"max_tier": 0}))
        make_playbook(sre.org_id, [{"action": "restart", "service_id": svc["checkout"]}], name="Restart checkout")
        inc = incidents.create_incident(sre.org_id, title="Checkout 5xx above 5 %", severity="critical",
                                        actor=Actor("system", "", "alertmanager"), service_id=svc["checkout"])
        db.session.commit()
        incident_url = f"/incidents/{inc.id}"
        db.session.remove()
    errors: list[str] = []

    # the member dry-runs the playbook from the incident and asks for approval
    page = _sign_in(browser, live_server.url, sre, errors)
    page.goto(incident_url)
    panel = page.locator(".auto-panel")
    expect(panel.get_by_label("Playbook")).to_have_value(re.compile(r"\d+"))
    panel.get_by_role("button", name="Dry-run").click()
    expect(panel.get_by_text("Touches protected services of tier ≤ 0: checkout (tier 0).")).to_be_visible()
    expect(panel.get_by_text("Blast radius: 2 services")).to_be_visible()
    expect(panel.get_by_role("button", name="Execute")).to_have_count(0)
    page.screenshot(path=str(SHOTS / "automation-01-dry-run.png"), full_page=True)
    panel.get_by_label("Note for the approver").fill("Checkout pods are wedged; a restart cleared it last week.")
    panel.get_by_role("button", name="Request approval").click()
    expect(panel.get_by_text(re.compile(r"Approval #\d+ pending"))).to_be_visible()
    expect(panel.get_by_text("Slack not configured", exact=False)).to_be_visible()

    # the admin approves it on the Approvals page, in a second browser context
    boss = _sign_in(browser, live_server.url, admin, errors)
    boss.goto("/automations/approvals")
    card = boss.locator(".auto-approval").first
    expect(card.get_by_text("Checkout pods are wedged", exact=False)).to_be_visible()
    card.get_by_label("Decision note").fill("Budget is fine; go ahead.")
    boss.screenshot(path=str(SHOTS / "automation-02-approvals.png"), full_page=True)
    card.get_by_role("button", name="Approve").click()
    expect(boss.get_by_text(re.compile(r"Approved by .* \(via app\)\."))).to_be_visible()

    # the member executes with a note and the pre-filled rollback plan
    page.reload()
    expect(panel.get_by_text(re.compile("Approved"))).to_be_visible()
    rollback = panel.get_by_label("Rollback plan")
    expect(rollback).to_have_value(re.compile("Restart of checkout needs no undo"))
    panel.get_by_label("Approval note").fill("Restarting checkout to clear wedged workers.")
    rollback.fill("Redeploy checkout at the current ref if it does not come back healthy.")
    panel.get_by_role("button", name="Execute").click()
    expect(panel.get_by_text("No robot backend configured", exact=False)).to_be_visible()
    timeline = page.locator(".inc-timeline")
    expect(timeline.get_by_text(re.compile(r"Execution #\d+ \(manual\)"))).to_be_visible()
    expect(timeline.get_by_text(re.compile(r"Dry-run #\d+ \(needs approval\)"))).to_be_visible()
    expect(timeline.get_by_text(re.compile(r"Approval #\d+ approved via app: Budget is fine"))).to_be_visible()
    page.screenshot(path=str(SHOTS / "automation-03-executed.png"), full_page=True)

    page.goto("/automations/executions")
    expect(page.get_by_text("Restarting checkout to clear wedged workers.")).to_be_visible()
    page.screenshot(path=str(SHOTS / "automation-04-log.png"), full_page=True)
    assert not errors, errors
