"""The register pages: they render the demo data, their forms work (with the CSRF token), bad form input
re-renders with the message and changes nothing, roles decide which forms show, other orgs' ids are 404;
and a browser pass that screenshots every page (test-results/screens/compliance-registers/)."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from zentro.compliance.models import Attestation, ControlException, Policy, Vendor
from zentro.extensions import db
from zentro.platform.types import utcnow

from .register_helpers import admin, member, owner, rows, snapshot, stranger, tag_events, viewer  # noqa: F401

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screens" / "compliance-registers"


def day(days: int) -> str:
    return (utcnow() + dt.timedelta(days=days)).date().isoformat()


@pytest.fixture
def demo(app, owner, member):
    from zentro.compliance.demo_registers import seed_compliance

    with app.app_context():
        seed_compliance(owner.org_id)
        ids = {
            "attestations": {a.control: a.id for a in db.session.scalars(select(Attestation))},
            "vendors": {v.name: v.id for v in db.session.scalars(select(Vendor))},
            "policies": {p.name: p.id for p in db.session.scalars(select(Policy))},
            "exceptions": {e.control: e.id for e in db.session.scalars(select(ControlException))},
        }
        db.session.remove()
    return ids


@pytest.fixture
def web(sign_in, owner):
    return sign_in(owner)


def text(resp) -> str:
    return resp.get_data(as_text=True)


# --- rendering ------------------------------------------------------------------------------------

def test_demo_data_renders_on_every_page(web, demo):
    board = text(web.get("/compliance/attestations"))
    assert "ISO27001:A.5.15" in board and "d overdue" in board and 'class="reg-row-bad"' in board
    assert re.search(r"<dt>overdue</dt>\s*<dd><a[^>]*>1</a>", board)
    assert 'name="csrf_token"' in board and "Assign a control" in board
    detail = text(web.get(f"/compliance/attestations/{demo['attestations']['SOC2:CC6.1']}"))
    assert "Quarterly access review done" in detail and "https://wiki.example.com/security/access-review-q1" in detail
    assert "attestation.attested" in detail and "Reject attestation" in detail
    exceptions = text(web.get("/compliance/exceptions"))
    assert "ISO27001:A.8.8" in exceptions and "Isolated VLAN" in exceptions and "Open exception" in exceptions
    policies = text(web.get("/compliance/policies"))
    assert "Production change approval" in policies and "Customer incident communication" in policies
    assert ">Accept<" in policies  # the one in review
    policy = text(web.get(f"/compliance/policies/{demo['policies']['Quarterly access review']}"))
    assert "ISO27001:A.5.18" in policy and "Only a draft can be edited" in policy
    vendors = text(web.get("/compliance/vendors"))
    for name in ("Amazon Web Services", "Stripe", "Okta", "Datadog", "Harbor &amp; Finch LLP"):
        assert name in vendors
    assert "Record review" in vendors and "(not counted)" in vendors  # Datadog's certificate expired
    vendor = text(web.get(f"/compliance/vendors/{demo['vendors']['Amazon Web Services']}"))
    assert "Physical access restriction" in vendor and "vendor.reviewed" in vendor and "every 90 days" in vendor


def test_board_filters(web, demo, member):
    page = text(web.get("/compliance/attestations?state=overdue"))
    assert "ISO27001:A.5.15</code>" in page and "SOC2:CC6.1</code>" not in page
    page = text(web.get(f"/compliance/attestations?owner={member.user_id}"))
    assert "SOC2:CC7.2" in page and "SOC2:CC6.1</code>" not in page
    assert web.get("/compliance/attestations?state=bogus&owner=x").status_code == 200  # ignored, not an error


def test_viewer_sees_no_forms(sign_in, viewer, demo):
    v = sign_in(viewer)
    for url in ("/compliance/attestations", "/compliance/exceptions", "/compliance/vendors", "/compliance/policies",
                f"/compliance/attestations/{demo['attestations']['SOC2:CC8.1']}",
                f"/compliance/vendors/{demo['vendors']['Stripe']}",
                f"/compliance/policies/{demo['policies']['Customer incident communication']}"):
        resp = v.get(url)
        assert resp.status_code == 200, url
        assert 'method="post" action="/compliance' not in text(resp), url
    assert v.post("/compliance/policies", data={"name": "x"}).status_code == 403


def test_other_orgs_ids_are_404(sign_in, stranger, demo, snapshot):
    s = sign_in(stranger)
    before = snapshot()
    a, v, p = demo["attestations"]["SOC2:CC8.1"], demo["vendors"]["Stripe"], demo["policies"]["Quarterly access review"]
    e = demo["exceptions"]["ISO27001:A.8.8"]
    for url in (f"/compliance/attestations/{a}", f"/compliance/vendors/{v}", f"/compliance/policies/{p}"):
        assert s.get(url).status_code == 404
    for url, data in ((f"/compliance/attestations/{a}/attest", {"note": "x"}),
                      (f"/compliance/attestations/{a}/attest", {"note": "x", "evidence": "not-a-ref"}),
                      (f"/compliance/attestations/{a}/reject", {"note": "x"}), (f"/compliance/exceptions/{e}/close", {}),
                      (f"/compliance/policies/{p}", {"name": "x"}), (f"/compliance/policies/{p}/transition", {"to": "retired"}),
                      (f"/compliance/vendors/{v}", {"name": "x", "category": "monitoring", "risk_tier": "low"}),
                      (f"/compliance/vendors/{v}", {"name": "x", "report_expires_at": "bad"}),
                      (f"/compliance/vendors/{v}/review", {})):
        assert s.post(url, data=data).status_code == 404, url
    assert snapshot() == before


def test_forms_need_the_csrf_token(app, owner, sign_in, snapshot):
    web = sign_in(owner)
    before = snapshot()
    resp = web.client.post("/compliance/vendors", data={"name": "No token", "category": "monitoring",
                                                        "risk_tier": "low"})
    assert resp.status_code == 403
    assert snapshot() == before


# --- attestation forms ----------------------------------------------------------------------------

def test_assign_attest_and_reject_through_the_forms(app, web, owner, member, sign_in, rows):
    resp = web.post("/compliance/attestations", data={"control": "SOC2:CC6.1", "owner_id": str(member.user_id),
                                                      "due_at": day(14)})
    assert resp.status_code == 302
    with app.app_context():
        att_id = db.session.scalar(select(Attestation.id))
        db.session.remove()
    (event_id,) = tag_events(app, owner.org_id, ["SOC2:CC6.1"], utcnow() - dt.timedelta(hours=1))
    m = sign_in(member)
    page = text(m.get(f"/compliance/attestations/{att_id}"))
    assert "Attest" in page and "Reject attestation" not in page
    resp = m.post(f"/compliance/attestations/{att_id}/attest",
                  data={"note": "Checked all 40 accounts.", "evidence": f"#{event_id}\nhttps://wiki.example.com/q1"})
    assert resp.status_code == 302
    page = text(m.get(f"/compliance/attestations/{att_id}"))
    assert "Checked all 40 accounts." in page and f"audit event #{event_id}: <code>test.evidence</code>" in page
    assert text(web.get("/compliance/attestations")).count("attested") >= 1
    assert web.post(f"/compliance/attestations/{att_id}/reject", data={"note": "Wrong quarter."}).status_code == 302
    assert "Wrong quarter." in text(web.get(f"/compliance/attestations/{att_id}"))
    assert rows("audit_events", action="attestation.rejected") == 1


@pytest.mark.parametrize("data,message,status", [
    ({"control": "SOC2:CC99.9"}, "unknown control tag", 400),
    ({"control": ""}, "Control: a catalog tag", 400),
    ({"due_at": "31/12/2026"}, "a date as YYYY-MM-DD", 400),
    ({"due_at": "2020-01-01"}, "Due: must be in the future", 400),
    ({"due_at": ""}, "Due: a date in the future", 400),
    ({"owner_id": ""}, "Owner: a member", 400),
    ({"owner_id": "viewer"}, "must be member or above", 409),
])
def test_assign_form_errors_keep_input_and_change_nothing(web, owner, viewer, snapshot, data, message, status):
    form = {"control": "SOC2:CC6.1", "owner_id": str(owner.user_id), "due_at": day(14), **data}
    if form["owner_id"] == "viewer":
        form["owner_id"] = str(viewer.user_id)
    before = snapshot()
    resp = web.post("/compliance/attestations", data=form)
    page = text(resp)
    assert resp.status_code == status and message in page and 'aria-invalid="true"' in page
    assert f'value="{form["control"]}"' in page  # what was typed stays
    assert snapshot() == before


@pytest.mark.parametrize("data,message", [
    ({"note": ""}, "Note: required"),
    ({"note": "ok", "evidence": "ftp://files.example"}, "is neither an audit event id nor an https:// address"),
    ({"note": "ok", "evidence": "99999999"}, "no audit event #99999999"),
])
def test_attest_form_errors(web, demo, snapshot, data, message):
    att_id = demo["attestations"]["SOC2:CC8.1"]
    before = snapshot()
    resp = web.post(f"/compliance/attestations/{att_id}/attest", data=data)
    assert resp.status_code == 400 and message in text(resp)
    assert snapshot() == before


def test_member_cannot_assign_or_attest_for_someone_else(sign_in, member, make_member, demo, snapshot):
    other = sign_in(make_member("acme", "member"))
    before = snapshot()
    assert other.post("/compliance/attestations", data={"control": "SOC2:CC6.2"}).status_code == 403
    # SOC2:CC8.1 belongs to the demo member, not to this one
    assert other.post(f"/compliance/attestations/{demo['attestations']['SOC2:CC8.1']}/attest",
                      data={"note": "mine now"}).status_code == 403
    assert snapshot() == before


# --- exception, policy and vendor forms -----------------------------------------------------------

def test_exception_forms(web, owner, admin, rows, snapshot):
    resp = web.post("/compliance/exceptions", data={"control": "ISO27001:A.8.8", "reason": "Legacy appliance",
                                                    "compensating_control": "VLAN", "approver_id": str(admin.user_id),
                                                    "expires_at": day(60)})
    assert resp.status_code == 302 and rows("control_exceptions", status="open") == 1
    before = snapshot()
    bad = web.post("/compliance/exceptions", data={"control": "ISO27001:A.8.8", "reason": "x",
                                                   "approver_id": str(admin.user_id), "expires_at": day(400)})
    assert bad.status_code == 400 and "at most one year ahead" in text(bad)
    assert snapshot() == before
    with web.client.application.app_context():
        exc_id = db.session.scalar(select(ControlException.id))
        db.session.remove()
    assert web.post(f"/compliance/exceptions/{exc_id}/close").status_code == 302
    again = web.post(f"/compliance/exceptions/{exc_id}/close")
    assert again.status_code == 409 and "already closed" in text(again)
    assert rows("control_exceptions", status="closed") == 1


def test_policy_forms(web, sign_in, member, rows, snapshot):
    m = sign_in(member)
    resp = m.post("/compliance/policies", data={"name": "Access review", "control_tags": "SOC2:CC6.2, ISO27001:A.5.18",
                                                "actions": "revoke_access", "description": "Quarterly."})
    assert resp.status_code == 302
    pid = int(resp.headers["Location"].rsplit("/", 1)[1])
    before = snapshot()
    bad = m.post(f"/compliance/policies/{pid}", data={"name": "Access review", "control_tags": "SOC2:CC6.2 BOGUS:1"})
    assert bad.status_code == 400 and "unknown control tag &#39;BOGUS:1&#39;" in text(bad)
    assert 'value="SOC2:CC6.2 BOGUS:1"' in text(bad)
    dup = m.post("/compliance/policies", data={"name": "ACCESS REVIEW"})
    assert dup.status_code == 409 and "already exists" in text(dup)
    assert snapshot() == before
    assert m.post(f"/compliance/policies/{pid}", data={"name": "Access review v2",
                                                       "control_tags": "SOC2:CC6.2"}).status_code == 302
    assert m.post(f"/compliance/policies/{pid}/transition", data={"to": "review"}).status_code == 302
    page = text(m.get(f"/compliance/policies/{pid}"))
    assert "Back to draft" in page and ">Accept<" not in page  # members do not accept
    assert m.post(f"/compliance/policies/{pid}/transition", data={"to": "accepted"}).status_code == 403
    wrong = web.post(f"/compliance/policies/{pid}/transition", data={"to": "retired", "back": "list"})
    assert wrong.status_code == 409 and "from review it can move to accepted or draft" in text(wrong)
    assert web.post(f"/compliance/policies/{pid}/transition", data={"to": "accepted", "back": "list"}).status_code == 302
    assert rows("policies", status="accepted") == 1 and rows("policies", name="Access review v2") == 1


def test_vendor_forms(web, owner, rows, snapshot):
    form = {"name": "Stripe", "category": "payment-processor", "risk_tier": "critical", "owner_id": str(owner.user_id),
            "report_type": "soc2-type-ii", "report_expires_at": day(200), "website": "https://stripe.com",
            "handles_personal_data": "on", "dpa": "on", "notes": "Card payments"}
    resp = web.post("/compliance/vendors", data=form)
    assert resp.status_code == 302
    vid = int(resp.headers["Location"].rsplit("/", 1)[1])
    page = text(web.get(f"/compliance/vendors/{vid}"))
    assert "Restricted transmission and movement of data" in page and "every 90 days" in page
    before = snapshot()
    dup = web.post("/compliance/vendors", data={**form, "name": "stripe"})
    assert dup.status_code == 409 and "already exists" in text(dup) and 'value="stripe"' in text(dup)
    for bad, message in (({"report_expires_at": ""}, "required with a soc2-type-ii report"),
                         ({"report_expires_at": "tomorrow"}, "a date as YYYY-MM-DD"),
                         ({"category": "crypto"}, "Category: one of"),
                         ({"website": "javascript:alert(1)"}, "Website: an http:// or https://")):
        resp = web.post(f"/compliance/vendors/{vid}", data={**form, **bad})
        assert resp.status_code == 400 and message in text(resp), bad
    assert snapshot() == before
    assert web.post(f"/compliance/vendors/{vid}", data=form).status_code == 302  # saved unchanged: nothing recorded
    assert rows("audit_events", action="vendor.updated") == 0
    edited = web.post(f"/compliance/vendors/{vid}", data={**form, "report_type": "iso27001", "risk_tier": "low"})
    assert edited.status_code == 302
    page = text(web.get(f"/compliance/vendors/{vid}"))
    assert "Restricted transmission" not in page and "every 730 days" in page
    assert web.post(f"/compliance/vendors/{vid}/review", data={"note": "Reviewed", "back": "list"}).status_code == 302
    assert rows("audit_events", action="vendor.reviewed") == 1 and rows("vendors") == 1


# --- browser --------------------------------------------------------------------------------------

PASSWORD = "demo-password-for-screens"




@pytest.mark.e2e
def test_register_pages_in_a_browser(app, live_server, browser):
    from zentro.accounts.demo import seed_demo
    from zentro.accounts.service import get_org
    from zentro.compliance.demo_registers import seed_compliance

    with app.app_context():
        seed_demo(PASSWORD)
        org_id = get_org("acme").id
        seed_compliance(org_id)
        ids = {"att": db.session.scalar(select(Attestation.id).where(Attestation.control == "SOC2:CC6.1")),
               "vendor": db.session.scalar(select(Vendor.id).where(Vendor.name == "Stripe")),
               "policy": db.session.scalar(select(Policy.id).where(Policy.name == "Customer incident communication"))}
        db.session.remove()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(15_000)
    page.goto(live_server.url + "/login")
    page.fill("input[name=email]", "owner@acme.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")

    def visit(path: str, shot: str) -> None:
        page.goto(live_server.url + path)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), f"{path} scrolls sideways"
        page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)

    visit("/compliance/attestations", "attestations")
    assert page.locator("#attestation-board tbody tr.reg-row-bad").count() == 1  # the overdue one stands out
    visit(f"/compliance/attestations/{ids['att']}", "attestation-detail")
    visit("/compliance/exceptions", "exceptions")
    visit("/compliance/policies", "policies")
    visit(f"/compliance/policies/{ids['policy']}", "policy-detail")
    visit("/compliance/vendors", "vendors")
    assert page.locator("#vendor-register tbody tr").count() == 5
    visit(f"/compliance/vendors/{ids['vendor']}", "vendor-detail")

    # a real form round trip in the browser: add a vendor, land on its page
    page.goto(live_server.url + "/compliance/vendors")
    page.fill("input[name=name]", "Twilio")
    page.select_option("select[name=category]", "communications")
    page.select_option("select[name=risk_tier]", "medium")
    page.select_option("select[name=report_type]", "soc2-type-ii")
    page.fill("input[name=report_expires_at]", day(120))
    page.click("form[action='/compliance/vendors'] button[type=submit]")
    page.wait_for_url(re.compile(r".*/compliance/vendors/\d+$"))
    assert page.locator("h1", has_text="Twilio").count() == 1
    assert page.locator("#inherited-controls tbody tr").count() == len(
        __import__("zentro.compliance.vendors", fromlist=["load_rules"]).load_rules().inherited("communications",
                                                                                               "soc2-type-ii"))
    page.screenshot(path=str(SHOTS / "vendor-added.png"), full_page=True)


def test_saving_the_edit_form_unchanged_records_nothing(app, web, demo, rows):
    """The form shows dates only; a stored expiry with a time of day is kept when its date is unchanged."""
    vid = demo["vendors"]["Stripe"]
    page = text(web.get(f"/compliance/vendors/{vid}"))
    edit = page[page.index('id="edit-heading"'):]
    form = dict(re.findall(r'<input[^>]*name="(\w+)"[^>]*value="([^"]*)"', edit))
    form.update({m[0]: m[1] for m in re.findall(r'<select name="(\w+)".*?<option value="([^"]*)" selected', edit, re.S)})
    form.update({name: "on" for name in re.findall(r'name="(\w+)" checked', edit)})
    form["notes"] = ""
    before = rows("audit_events", action="vendor.updated")
    assert web.post(f"/compliance/vendors/{vid}", data=form).status_code == 302
    assert rows("audit_events", action="vendor.updated") == before
