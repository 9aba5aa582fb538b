"""Approvals: requesting one for a dry-run (timeline, audit, Slack status), deciding once (a second
decision changes nothing and says so, also under concurrency), who may decide (owner/admin, named
approvers; never the requester or a viewer), tenancy, and an approval unlocking execute."""
from __future__ import annotations

import threading

import pytest

from tests.automations.helpers import APPROVALS, DRY_RUN, EXECUTE, GUARDRAILS, block_of, make_services
from tests.compliance.register_helpers import (admin, admin_api, api, error_of, member, member_api, other_api,  # noqa: F401
                                               owner, rows, stranger, viewer, viewer_api)
from zentro.audit.service import Actor
from zentro.automations import approvals
from zentro.extensions import db
from zentro.incidents.service import create_incident


@pytest.fixture
def world(app, owner, admin_api):
    """db (tier 0) protected by tier_protection; an incident to put things on the timeline."""
    with app.app_context():
        ids = make_services(owner.org_id, {"db": 0, "web": 2}, [("web", "db")])
        inc = create_incident(owner.org_id, title="DB down", severity="critical", actor=Actor("system", "", "t"))
        db.session.commit()
        ids["incident"] = inc.id
    assert admin_api.post(GUARDRAILS, json={"name": "Tier 0", "kind": "tier_protection",
                                            "params": {"max_tier": 0}}).status_code == 201
    return ids


def checked(client, world) -> dict:
    resp = client.post(DRY_RUN, json={"steps": [{"action": "restart", "service_id": world["db"]}],
                                      "incident_id": world["incident"]})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.get_json()["verdict"] == "needs_approval"
    return resp.get_json()


def request(client, dry) -> dict:
    resp = client.post(APPROVALS, json={"dry_run_id": dry["id"], "note": "Pool exhausted"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def decide(client, approval_id, decision="approve", note="ok"):
    return client.post(f"{APPROVALS}/{approval_id}/decide", json={"decision": decision, "note": note})


def test_request_is_pending_on_the_timeline_and_not_posted_without_slack(member_api, world, rows):
    dry = checked(member_api, world)
    a = request(member_api, dry)
    assert a["status"] == "pending" and a["plan_hash"] == dry["plan_hash"] and a["action_key"] == "restart:db"
    assert "tier ≤ 0" in a["reason"] and "Pool exhausted" in a["reason"] and a["requested_by"].startswith("member-")
    assert a["slack_status"].startswith("not configured")
    assert rows("timeline_events", kind="approval") == 1 and rows("audit_events", action="approval.requested") == 1
    # asking again returns the open request instead of a second one
    assert request(member_api, dry)["id"] == a["id"] and rows("automation_approvals") == 1
    listed = member_api.get(f"{APPROVALS}?status=pending").get_json()["data"]
    assert [x["id"] for x in listed] == [a["id"]]
    assert member_api.get(f"{APPROVALS}?status=approved").get_json()["data"] == []


def test_blocked_or_foreign_dry_run_cannot_be_approved(app, member_api, other_api, admin_api, world, rows):
    dry = checked(member_api, world)
    error_of(other_api.post(APPROVALS, json={"dry_run_id": dry["id"]}), 404, "NOT_FOUND")
    admin_api.post(GUARDRAILS, json={"name": "Tiny", "kind": "max_blast_radius", "params": {"max_services": 1}})
    blocked = member_api.post(DRY_RUN, json={"steps": [{"action": "restart", "service_id": world["db"]}]}).get_json()
    assert blocked["verdict"] == "blocked"
    error_of(member_api.post(APPROVALS, json={"dry_run_id": blocked["id"]}), 409, "CONFLICT")
    error_of(member_api.post(APPROVALS, json={"dry_run_id": "1"}), 400, "VALIDATION_ERROR")
    error_of(member_api.post(APPROVALS, json={"dry_run_id": dry["id"], "note": "x" * 4001}), 400, "VALIDATION_ERROR")
    assert rows("automation_approvals") == 0


def test_decide_once_then_execute(member_api, admin_api, api, world, rows):
    dry = checked(member_api, world)
    assert block_of(member_api.post(EXECUTE, json={"dry_run_id": dry["id"], "plan_hash": dry["plan_hash"],
                                                   "approval_note": "n", "rollback_plan": "r"})) == "approval_required"
    a = request(member_api, dry)
    first = decide(admin_api, a["id"], "approve", "Go ahead")
    assert first.status_code == 200, first.get_data(as_text=True)
    body = first.get_json()
    assert body["changed"] and body["approval"]["status"] == "approved" and body["approval"]["decided_via"] == "api"
    assert body["message"].startswith("Approved by admin-")
    second = decide(api, a["id"], "reject", "No")
    assert second.status_code == 200 and not second.get_json()["changed"]
    assert second.get_json()["approval"]["status"] == "approved"
    assert second.get_json()["message"].startswith("Already approved by admin-")
    assert rows("audit_events", action="approval.approved") == 1 and rows("audit_events", action="approval.rejected") == 0
    assert rows("timeline_events", kind="approval") == 2
    resp = member_api.post(EXECUTE, json={"dry_run_id": dry["id"], "plan_hash": dry["plan_hash"],
                                          "approval_note": "Approved in #ops", "rollback_plan": "Restart again"})
    assert resp.status_code == 201 and resp.get_json()["approval_id"] == a["id"]


def test_rejected_approval_blocks_execute(member_api, admin_api, world):
    dry = checked(member_api, world)
    a = request(member_api, dry)
    assert decide(admin_api, a["id"], "reject", "Not during peak").get_json()["approval"]["status"] == "rejected"
    resp = member_api.post(EXECUTE, json={"dry_run_id": dry["id"], "plan_hash": dry["plan_hash"],
                                          "approval_note": "n", "rollback_plan": "r"})
    assert block_of(resp) == "approval_required" and "rejected by admin-" in resp.get_json()["detail"]


def test_who_may_decide(app, make_member, make_api_key, admin_api, member_api, viewer_api, other_api, world, rows):
    from tests.compliance.register_helpers import Api

    dry = checked(admin_api, world)
    a = request(admin_api, dry)
    error_of(decide(admin_api, a["id"]), 403, "FORBIDDEN")  # the requester
    error_of(decide(viewer_api, a["id"]), 403, "FORBIDDEN")
    refused = decide(member_api, a["id"])
    error_of(refused, 403, "FORBIDDEN")
    assert "owner or admin" in refused.get_json()["detail"]
    error_of(decide(other_api, a["id"]), 404, "NOT_FOUND")
    error_of(other_api.get(f"{APPROVALS}/{a['id']}"), 404, "NOT_FOUND")
    error_of(decide(member_api, a["id"], decision="maybe"), 400, "VALIDATION_ERROR")
    assert rows("automation_approvals", status="pending") == 1
    # a member named by a required_approvers guardrail may decide the plans it applied to
    lead = make_member("acme", "member", email="lead@acme.example", plan="enterprise")
    assert admin_api.post(GUARDRAILS, json={"name": "DB leads", "kind": "required_approvers", "service_id": world["db"],
                                            "params": {"approvers": ["lead@acme.example"]}}).status_code == 201
    lead_api = Api(app.test_client(), make_api_key(lead))
    error_of(decide(lead_api, a["id"]), 403, "FORBIDDEN")  # not named on the plan this approval was checked with
    named = request(admin_api, checked(admin_api, world))
    assert decide(lead_api, named["id"]).get_json()["changed"] is True


def test_concurrent_decisions_change_once(app, member_api, owner, admin, world, rows):
    a = request(member_api, checked(member_api, world))
    barrier, results = threading.Barrier(2), []

    def attempt(user_id, approve):
        with app.app_context():
            barrier.wait()
            try:
                _, changed = approvals.decide(owner.org_id, a["id"], approve=approve, user_id=user_id,
                                              actor=Actor("user", str(user_id), "u"), note="", via="app")
                results.append(changed)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt, args=(owner.user_id, True)),
               threading.Thread(target=attempt, args=(admin.user_id, False))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [False, True]
    assert rows("audit_events", action="approval.approved") + rows("audit_events", action="approval.rejected") == 1
