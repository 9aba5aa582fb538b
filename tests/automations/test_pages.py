"""Automation pages through the test client: the overview, playbook and guardrail forms (happy path,
refused input re-rendered with the reason and nothing changed, CSRF, roles), approvals (decide once,
self-approval refused), the execution log, the incident panel (dry-run → request approval → approve →
execute, refusals as policy blocks), tenant 404s and the demo seed."""
from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from tests.automations.helpers import make_playbook, make_services
from zentro.audit.service import Actor
from zentro.automations import approvals
from zentro.automations import service as auto
from zentro.automations.models import Approval, DryRun, Execution, Guardrail, Playbook, PolicyBlock
from zentro.extensions import db
from zentro.incidents import service as incidents
from zentro.incidents.models import TimelineEvent

HX = {"HX-Request": "true"}


@dataclass
class World:
    owner: object
    member: object
    viewer: object
    services: dict
    playbook_id: int
    incident_id: int
    other_playbook_id: int
    other_incident_id: int
    other_service_id: int


@pytest.fixture
def world(app, make_member) -> World:
    """Org alpha: api (tier 0) ← web (tier 1) ← edge (tier 2), batch (tier 3); tier-0 protection; a restart
    playbook on api; an incident on api. Org beta: its own playbook, incident and service."""
    owner, member = make_member("alpha", "owner"), make_member("alpha", "member")
    viewer, stranger = make_member("alpha", "viewer"), make_member("beta", "owner")
    with app.app_context():
        svc = make_services(owner.org_id, {"api": 0, "web": 1, "edge": 2, "batch": 3},
                            [("web", "api"), ("edge", "web")])
        db.session.add(Guardrail(org_id=owner.org_id, name="Tier-0 protection", kind="tier_protection",
                                 params={"max_tier": 0}))
        playbook_id = make_playbook(owner.org_id, [{"action": "restart", "service_id": svc["api"]}], name="Restart api")
        inc = incidents.create_incident(owner.org_id, title="api 5xx above 5 %", severity="high",
                                        actor=Actor("system", "", "test"), service_id=svc["api"])
        other = make_services(stranger.org_id, {"beta-svc": 2})["beta-svc"]
        other_pb = make_playbook(stranger.org_id, [{"action": "restart", "service_id": other}], name="Beta restart")
        other_inc = incidents.create_incident(stranger.org_id, title="beta down", severity="low",
                                              actor=Actor("system", "", "test"))
        db.session.commit()
        w = World(owner, member, viewer, svc, playbook_id, inc.id, other_pb, other_inc.id, other)
        db.session.remove()
    return w


def text(resp) -> str:
    return resp.get_data(as_text=True)


def count(app, model, *where) -> int:
    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(model).where(*where))
        db.session.remove()
    return n


def step_form(*rows: dict, **fields) -> dict:
    """The playbook form as the editor posts it: one value per row for every step field."""
    names = ("action", "service_id", "replicas", "to_ref", "flag", "on", "cidr", "command")
    data = {f"step_{n}": [str(r.get(n, "on" if n == "on" else "")) for r in rows] for n in names}
    return {"name": "Scale web", "description": "", "enabled": "on", **data, **fields}


# --- overview, nav, roles -----------------------------------------------------------------------

def test_overview_shows_playbooks_pending_executions_and_blocks(app, world, sign_in):
    with app.app_context():
        org = world.owner.org_id
        member = Actor("user", str(world.member.user_id), world.member.email)
        dry = auto.dry_run(org, actor=member, user_id=world.member.user_id, playbook_id=world.playbook_id,
                           incident_id=world.incident_id)
        approvals.request_approval(org, dry_run_id=dry.id, actor=member, user_id=world.member.user_id)
        with pytest.raises(auto.PolicyBlocked):
            auto.execute(org, actor=member, user_id=world.member.user_id, dry_run_id=dry.id, plan_hash=dry.plan_hash,
                         approval_note="restart it", rollback_plan="redeploy")
        db.session.remove()
    page = sign_in(world.viewer).get("/automations")
    assert page.status_code == 200
    html = text(page)
    assert "Restart api" in html and "needs approval" in html
    assert re.search(r"Pending approvals</dt><dd><a [^>]*>1</a>", html)
    assert "approval required" in html and "is still pending" in html  # the block and its reason
    assert 'aria-current="page">Automations</a>' in html
    assert "New playbook" not in html  # viewers get no mutating controls


def test_pages_need_a_session_and_answer_404_across_tenants(app, world, sign_in):
    assert app.test_client().get("/automations").status_code in (302, 401)
    owner = sign_in(world.owner)
    for url in (f"/automations/playbooks/{world.other_playbook_id}", f"/incidents/{world.other_incident_id}/automations"):
        assert owner.get(url).status_code == 404
    assert owner.post(f"/automations/playbooks/{world.other_playbook_id}", data=step_form()).status_code == 404
    assert owner.post(f"/automations/playbooks/{world.other_playbook_id}/delete").status_code == 404
    assert owner.post(f"/incidents/{world.other_incident_id}/automations/dry-run",
                      data={"playbook_id": world.other_playbook_id}).status_code == 404
    assert count(app, Playbook, Playbook.id == world.other_playbook_id) == 1


# --- playbooks ------------------------------------------------------------------------------------

def test_member_creates_a_playbook_with_ordered_steps(app, world, sign_in):
    member = sign_in(world.member)
    form = step_form({"action": "scale", "service_id": world.services["web"], "replicas": "6"},
                     {"action": "toggle_flag", "service_id": world.services["web"], "flag": "checkout.v2", "on": "off"},
                     {"action": "", "service_id": ""})  # the spare blank row is ignored
    resp = member.post("/automations/playbooks", data=form)
    assert resp.status_code == 303, text(resp)
    with app.app_context():
        pb = db.session.scalar(select(Playbook).where(Playbook.name == "Scale web"))
        assert pb.steps == [
            {"action": "scale", "service_id": world.services["web"], "params": {"replicas": 6}},
            {"action": "toggle_flag", "service_id": world.services["web"], "params": {"flag": "checkout.v2", "on": False}}]
        db.session.remove()
    detail = text(member.get(resp.headers["Location"]))
    assert "Playbook Scale web created." in detail
    assert '"replicas": 6' in detail and 'id="playbook-json"' in detail  # the playbook as data


def test_reordering_and_editing_a_playbook(app, world, sign_in):
    member = sign_in(world.member)
    rows = ({"action": "restart", "service_id": world.services["batch"]},
            {"action": "block_address", "service_id": world.services["edge"], "cidr": "203.0.113.9"})
    assert member.post("/automations/playbooks", data=step_form(*rows, name="Two steps")).status_code == 303
    with app.app_context():
        pb_id = db.session.scalar(select(Playbook.id).where(Playbook.name == "Two steps"))
        db.session.remove()
    resp = member.post(f"/automations/playbooks/{pb_id}", data=step_form(*reversed(rows), name="Two steps"))
    assert resp.status_code == 303
    with app.app_context():
        steps = db.session.get(Playbook, pb_id).steps
        assert [s["action"] for s in steps] == ["block_address", "restart"]
        assert steps[0]["params"] == {"cidr": "203.0.113.9/32"}
        db.session.remove()


@pytest.mark.parametrize("rows, fields, message", [
    (({"action": "scale", "replicas": "0"},), {}, "replicas"),
    (({"action": "scale", "replicas": "lots"},), {}, "replicas"),
    (({"action": "block_address", "cidr": "not-an-address"},), {}, "cidr has characters that are not allowed"),
    (({"action": "block_address", "cidr": "300.1.1.1"},), {}, "cidr must be an IPv4 or IPv6"),
    (({"action": "run_command", "command": "x" * 501},), {}, "command"),
    (({"action": "reboot_everything"},), {}, "Step"),
    ((), {}, "steps"),
    (({"action": "restart"},), {"name": ""}, "name"),
    (({"action": "restart"},), {"name": "x" * 121}, "at most 120"),
    (({"action": "restart"},), {"name": "bad\x00name"}, "NUL"),
    (({"action": "restart"},), {"description": "d" * 4001}, "at most 4000"),
])
def test_refused_playbook_input_rerenders_the_form(app, world, sign_in, rows, fields, message):
    member = sign_in(world.member)
    rows = [{"service_id": world.services["web"], **r} for r in rows]
    resp = member.post("/automations/playbooks", data=step_form(*rows, **{"name": "Refused", **fields}))
    assert resp.status_code == 400, text(resp)
    html = text(resp)
    assert "Not saved" in html or "Invalid" in html
    assert message.lower() in html.lower()
    assert 'name="step_action"' in html  # the editor again, not an error page
    assert count(app, Playbook, Playbook.org_id == world.owner.org_id) == 1


def test_playbook_naming_another_orgs_service_or_a_taken_name_is_refused(app, world, sign_in):
    member = sign_in(world.member)
    resp = member.post("/automations/playbooks", data=step_form({"action": "restart", "service_id": world.other_service_id}))
    assert resp.status_code == 400 and "not found in this organisation" in text(resp)
    resp = member.post("/automations/playbooks",
                       data=step_form({"action": "restart", "service_id": world.services["api"]}, name="Restart api"))
    assert resp.status_code == 409 and "already exists" in text(resp)
    assert count(app, Playbook, Playbook.org_id == world.owner.org_id) == 1


def test_playbook_forms_need_csrf_and_a_writing_role(app, world, sign_in):
    member = sign_in(world.member)
    no_token = member.client.post("/automations/playbooks", data=step_form({"action": "restart",
                                                                           "service_id": world.services["api"]}))
    assert no_token.status_code == 403 and "CSRF" in text(no_token)
    assert count(app, Playbook, Playbook.org_id == world.owner.org_id) == 1
    viewer = sign_in(world.viewer)
    assert viewer.post("/automations/playbooks", data=step_form({"action": "restart",
                                                                "service_id": world.services["api"]})).status_code == 403
    page = text(viewer.get(f"/automations/playbooks/{world.playbook_id}"))
    assert 'name="step_action"' not in page and "Delete playbook" not in page
    assert "can read playbooks but not change them" in page
    assert member.post(f"/automations/playbooks/{world.playbook_id}/delete").status_code == 403  # owner/admin only
    assert count(app, Playbook, Playbook.id == world.playbook_id) == 1
    owner = sign_in(world.owner)
    resp = owner.post(f"/automations/playbooks/{world.playbook_id}/delete")
    assert resp.status_code == 303 and count(app, Playbook, Playbook.id == world.playbook_id) == 0


# --- guardrails -----------------------------------------------------------------------------------

def guardrail_form(**fields) -> dict:
    return {"name": "Business hours", "service_id": "", "kind": "maintenance_window", "enabled": "on",
            "weekdays": ["mon", "tue"], "start": "09:00", "end": "17:00", "tz": "UTC", "max_tier": "0",
            "max_services": "", "starts_at": "", "ends_at": "", "reason": "", **fields}


def test_owner_manages_guardrails_members_read_them(app, world, sign_in):
    owner, member = sign_in(world.owner), sign_in(world.member)
    assert member.post("/automations/guardrails", data=guardrail_form()).status_code == 403
    assert "Add guardrail" not in text(member.get("/automations/guardrails"))
    resp = owner.post("/automations/guardrails", data=guardrail_form(service_id=str(world.services["web"])))
    assert resp.status_code == 303, text(resp)
    with app.app_context():
        g = db.session.scalar(select(Guardrail).where(Guardrail.name == "Business hours"))
        assert (g.kind, g.service_id) == ("maintenance_window", world.services["web"])
        assert g.params == {"weekdays": ["mon", "tue"], "start": "09:00", "end": "17:00", "tz": "UTC",
                            "block_outside": False}
        gid = g.id
        db.session.remove()
    listing = text(owner.get("/automations/guardrails"))
    assert "Changes mon, tue 09:00–17:00 UTC; outside: approval" in listing
    # edit: the kind stays, the params change
    resp = owner.post(f"/automations/guardrails/{gid}", data=guardrail_form(kind="tier_protection", start="08:00",
                                                                           block_outside="on"))
    assert resp.status_code == 303, text(resp)
    with app.app_context():
        g = db.session.get(Guardrail, gid)
        assert g.kind == "maintenance_window" and g.params["start"] == "08:00" and g.params["block_outside"] is True
        db.session.remove()
    assert owner.post(f"/automations/guardrails/{gid}/toggle", data={"enabled": "0"}).status_code == 303
    assert count(app, Guardrail, Guardrail.id == gid, Guardrail.enabled.is_(False)) == 1
    assert owner.post(f"/automations/guardrails/{gid}/toggle", data={"enabled": "maybe"}).status_code == 400
    assert owner.post(f"/automations/guardrails/{gid}/delete").status_code == 303
    assert count(app, Guardrail, Guardrail.id == gid) == 0


@pytest.mark.parametrize("fields, status, message", [
    ({"start": "25:00"}, 400, "start"),
    ({"weekdays": []}, 400, "weekdays"),
    ({"kind": "max_blast_radius", "max_services": "0"}, 400, "max_services"),
    ({"kind": "max_blast_radius", "max_services": "many"}, 400, "max_services"),
    ({"kind": "change_freeze", "starts_at": "2026-12-20T00:00", "ends_at": "2026-12-19T00:00", "reason": "holidays"},
     400, "must be after starts_at"),
    ({"kind": "change_freeze", "starts_at": "tomorrow", "ends_at": "2026-12-19T00:00", "reason": "x"}, 400, "starts_at"),
    ({"kind": "no_such_kind"}, 400, "kind"),
    ({"name": ""}, 400, "name"),
    ({"service_id": "999999"}, 400, "not found"),
])
def test_refused_guardrail_input_rerenders_the_form(app, world, sign_in, fields, status, message):
    resp = sign_in(world.owner).post("/automations/guardrails", data=guardrail_form(**fields))
    assert resp.status_code == status, text(resp)
    assert message.lower() in text(resp).lower() and "Add guardrail" in text(resp)
    assert count(app, Guardrail, Guardrail.org_id == world.owner.org_id) == 1


def test_required_approvers_must_be_members_who_may_decide(app, world, sign_in):
    owner = sign_in(world.owner)
    resp = owner.post("/automations/guardrails", data=guardrail_form(kind="required_approvers", name="Approvers",
                                                                    approvers=[world.viewer.email]))
    assert resp.status_code == 409 and "viewers cannot decide approvals" in text(resp)
    resp = owner.post("/automations/guardrails", data=guardrail_form(kind="required_approvers", name="Approvers",
                                                                    approvers=[world.member.email]))
    assert resp.status_code == 303
    page = text(owner.get("/automations/guardrails"))
    assert f"Approval by one of {world.member.email}" in page
    assert world.viewer.email not in page.split("New guardrail")[1]  # viewers are not offered as approvers


# --- approvals and executions ---------------------------------------------------------------------

def pending_approval(app, world) -> int:
    with app.app_context():
        member = Actor("user", str(world.member.user_id), world.member.email)
        dry = auto.dry_run(world.owner.org_id, actor=member, user_id=world.member.user_id,
                           playbook_id=world.playbook_id, incident_id=world.incident_id)
        approval_id = approvals.request_approval(world.owner.org_id, dry_run_id=dry.id, actor=member,
                                                 user_id=world.member.user_id, note="api is flapping").id
        db.session.remove()
    return approval_id


def test_approvals_page_decides_once_with_a_note(app, world, sign_in):
    approval_id = pending_approval(app, world)
    member, owner = sign_in(world.member), sign_in(world.owner)
    page = text(member.get("/automations/approvals"))
    assert "Slack not configured" in page and "Tier-0 protection" in page and "api is flapping" in page
    assert "You requested this approval; someone else has to decide it." in page  # no buttons for the requester
    refused = member.post(f"/automations/approvals/{approval_id}/decide", data={"decision": "approve", "note": "me"})
    assert refused.status_code == 403 and "someone else has to decide it" in text(refused)
    assert owner.post(f"/automations/approvals/{approval_id}/decide",
                      data={"decision": "maybe", "note": ""}).status_code == 400
    assert owner.post(f"/automations/approvals/{approval_id}/decide",
                      data={"decision": "approve", "note": "n" * 4001}).status_code == 400
    assert count(app, Approval, Approval.status == "pending") == 1

    resp = owner.post(f"/automations/approvals/{approval_id}/decide",
                      data={"decision": "approve", "note": "Checked the error budget"})
    assert resp.status_code == 303
    assert "Approved by" in text(owner.get(resp.headers["Location"]))
    again = owner.post(f"/automations/approvals/{approval_id}/decide", data={"decision": "reject", "note": "no"},
                       follow_redirects=True)
    assert "Already approved by" in text(again) and "nothing changed" in text(again)
    with app.app_context():
        a = db.session.get(Approval, approval_id)
        assert (a.status, a.decision_note, a.decided_via) == ("approved", "Checked the error budget", "app")
        db.session.remove()
    assert sign_in(world.viewer).post(f"/automations/approvals/{approval_id}/decide",
                                      data={"decision": "reject"}).status_code == 403


def test_a_named_approver_who_is_a_member_may_decide(app, world, sign_in, make_member):
    second = make_member("alpha", "member")
    with app.app_context():
        db.session.add(Guardrail(org_id=world.owner.org_id, name="Named", kind="required_approvers",
                                 params={"approvers": [second.email], "min": 1}))
        db.session.commit()
        db.session.remove()
    approval_id = pending_approval(app, world)
    page = text(sign_in(second).get("/automations/approvals"))
    assert f'action="/automations/approvals/{approval_id}/decide"' in page
    resp = sign_in(second).post(f"/automations/approvals/{approval_id}/decide", data={"decision": "reject", "note": "not now"})
    assert resp.status_code == 303 and count(app, Approval, Approval.status == "rejected") == 1


# --- the incident panel ---------------------------------------------------------------------------

def panel_url(world, tail: str = "") -> str:
    return f"/incidents/{world.incident_id}/automations{tail}"


def test_incident_panel_dry_run_approval_execute(app, world, sign_in):
    member, owner = sign_in(world.member), sign_in(world.owner)
    with app.app_context():  # an unrelated playbook is offered after the ones on the incident's service
        make_playbook(world.owner.org_id, [{"action": "restart", "service_id": world.services["batch"]}], name="Batch")
        db.session.commit()
        db.session.remove()
    panel = text(member.get(panel_url(world), headers=HX))
    assert panel.index("Restart api") < panel.index("Batch") and 'optgroup label="Targets api"' in panel
    assert "<html" not in panel  # a partial

    resp = member.post(panel_url(world, "/dry-run"), data={"playbook_id": world.playbook_id}, headers=HX)
    assert resp.status_code == 200, text(resp)
    html = text(resp)
    assert "needs approval" in html and "Touches protected services of tier ≤ 0: api (tier 0)" in html
    assert "Blast radius: 3 services" in html and "web" in html and "edge" in html  # transitive dependents
    assert "Request approval" in html and "incident_execute" not in html and 'name="approval_note"' not in html

    with app.app_context():
        dry_id = db.session.scalar(select(DryRun.id).where(DryRun.incident_id == world.incident_id))
        db.session.remove()
    resp = member.post(panel_url(world, "/approval"), data={"dry_run_id": dry_id, "note": "please"}, headers=HX)
    assert resp.status_code == 200 and "pending" in text(resp) and "Slack not configured" in text(resp)
    approval_id = pending_approval_id(app, dry_id)
    owner.post(f"/automations/approvals/{approval_id}/decide", data={"decision": "approve", "note": "go"})

    html = text(member.get(panel_url(world), headers=HX))
    assert "Approved" in html and 'name="approval_note"' in html
    assert "1. Restart of api needs no undo" in html  # the rollback suggestion is pre-filled
    assert "recorded as manual" in html

    refused = member.post(panel_url(world, "/execute"), headers=HX, data={
        "dry_run_id": dry_id, "plan_hash": plan_hash_of(app, dry_id), "approval_note": " ", "rollback_plan": "undo"})
    assert refused.status_code == 409 and "An approval note is required" in text(refused)
    assert count(app, PolicyBlock, PolicyBlock.reason_code == "missing_approval_note") == 1

    done = member.post(panel_url(world, "/execute"), headers=HX, data={
        "dry_run_id": dry_id, "plan_hash": plan_hash_of(app, dry_id), "approval_note": "api pods leak connections",
        "rollback_plan": "Redeploy api at the current ref"})
    assert done.status_code == 200, text(done)
    assert "No robot backend configured" in text(done) and "manual" in text(done)
    with app.app_context():
        ex = db.session.scalar(select(Execution).where(Execution.dry_run_id == dry_id))
        assert (ex.mode, ex.status, ex.approval_id) == ("manual", "recorded", approval_id)
        kinds = db.session.scalars(select(TimelineEvent.kind).where(TimelineEvent.incident_id == world.incident_id)).all()
        assert {"dry_run", "approval", "policy_block", "execution"} <= set(kinds)
        db.session.remove()
    log = text(member.get("/automations/executions"))
    assert "api pods leak connections" in log and "Redeploy api at the current ref" in log and f"#{approval_id}" in log


def pending_approval_id(app, dry_id: int) -> int:
    with app.app_context():
        aid = db.session.scalar(select(Approval.id).where(Approval.dry_run_id == dry_id))
        db.session.remove()
    return aid


def plan_hash_of(app, dry_id: int) -> str:
    with app.app_context():
        h = db.session.get(DryRun, dry_id).plan_hash
        db.session.remove()
    return h


def test_incident_panel_refuses_bad_input_and_viewers(app, world, sign_in):
    member, viewer = sign_in(world.member), sign_in(world.viewer)
    assert "Dry-run</button>" not in text(viewer.get(panel_url(world), headers=HX))
    assert viewer.post(panel_url(world, "/dry-run"), data={"playbook_id": world.playbook_id}).status_code == 403
    for data in ({}, {"playbook_id": "abc"}, {"playbook_id": world.other_playbook_id}):
        resp = member.post(panel_url(world, "/dry-run"), data=data, headers=HX)
        assert resp.status_code == 400, (data, text(resp))
    assert "Playbook not found" in text(resp)
    assert count(app, DryRun) == 0
    for tail in ("/approval", "/execute"):
        assert member.post(panel_url(world, tail), data={"dry_run_id": "1"}, headers=HX).status_code == 400
    # a dry-run of another incident is not this panel's
    with app.app_context():
        other = incidents.create_incident(world.owner.org_id, title="other", severity="low",
                                          actor=Actor("system", "", "t"))
        dry = auto.dry_run(world.owner.org_id, actor=Actor("system", "", "t"), user_id=None,
                           playbook_id=world.playbook_id, incident_id=other.id)
        dry_id = dry.id
        db.session.remove()
    resp = member.post(panel_url(world, "/execute"), headers=HX, data={"dry_run_id": dry_id, "approval_note": "x",
                                                                      "rollback_plan": "y"})
    assert resp.status_code == 400 and count(app, Execution) == 0


def test_incident_panel_works_without_javascript(app, world, sign_in):
    member = sign_in(world.member)
    resp = member.post(panel_url(world, "/dry-run"), data={"playbook_id": world.playbook_id})
    assert resp.status_code == 303 and "dry_run_id=" in resp.headers["Location"]
    page = text(member.get(resp.headers["Location"]))
    assert "<html" in page and "Dry-run #" in page and "needs approval" in page
    hook = text(member.get(f"/incidents/{world.incident_id}"))
    assert f'hx-get="/incidents/{world.incident_id}/automations"' in hook and "Open the automation panel" in hook


# --- demo -----------------------------------------------------------------------------------------

def test_demo_seed_is_idempotent_and_makes_a_policy_suggestion(app):
    from zentro.accounts.demo import seed_demo
    from zentro.accounts.service import get_org
    from zentro.automations import suggestions

    with app.app_context():
        seed_demo("demo-password-123")
        org = get_org("acme")
        before = {m: db.session.scalar(select(func.count()).select_from(m).where(m.org_id == org.id))
                  for m in (Playbook, Guardrail, Approval, Execution, PolicyBlock)}
        assert before == {Playbook: 4, Guardrail: 4, Approval: 5, Execution: 3, PolicyBlock: 1}
        assert [s.action_key for s in suggestions.suggestions(org.id)] == ["restart:api-gateway"]
        pending = approvals.list_approvals(org.id, status="pending")
        assert len(pending) == 1 and "payments-api" in pending[0].action_key
        seed_demo("demo-password-123")
        after = {m: db.session.scalar(select(func.count()).select_from(m).where(m.org_id == org.id)) for m in before}
        assert after == before
        db.session.remove()


def test_a_fresh_dry_run_of_an_approved_plan_uses_that_approval(app, world, sign_in):
    """The approval belongs to the plan: after the first dry-run expires, a new dry-run of the same plan
    shows the approval and executes with it instead of asking again."""
    approval_id = pending_approval(app, world)
    sign_in(world.owner).post(f"/automations/approvals/{approval_id}/decide", data={"decision": "approve", "note": "ok"})
    member = sign_in(world.member)
    html = text(member.post(panel_url(world, "/dry-run"), data={"playbook_id": world.playbook_id}, headers=HX))
    assert f"(#{approval_id})" in html and "Request approval" not in html
    with app.app_context():
        dry_id = db.session.scalar(select(func.max(DryRun.id)))
        db.session.remove()
    done = member.post(panel_url(world, "/execute"), headers=HX, data={
        "dry_run_id": dry_id, "plan_hash": plan_hash_of(app, dry_id), "approval_note": "n", "rollback_plan": "r"})
    assert done.status_code == 200 and count(app, Execution, Execution.approval_id == approval_id) == 1
