"""Remediation proposals: propose → preview (a stored dry-run) → approve/reject (owner/admin, not the
proposer) → apply (a guarded remediation: fresh preview, approval where a guardrail demands one, an
accepted policy covering the plan; every refusal a policy block), with tenancy and bad input."""
from __future__ import annotations

import pytest

from tests.automations.helpers import GUARDRAILS, PLAYBOOKS, REMEDIATIONS, block_of, make_services
from tests.compliance.register_helpers import (admin, admin_api, api, error_of, member, member_api, other_api,  # noqa: F401
                                               owner, rows, stranger, viewer, viewer_api)
from zentro.compliance.models import Policy
from zentro.extensions import db

APPLY = {"approval_note": "Connection pool exhausted", "rollback_plan": "Nothing to undo: restart is idempotent"}


@pytest.fixture
def playbook(app, owner, member_api):
    with app.app_context():
        ids = make_services(owner.org_id, {"db": 0, "web": 2}, [("web", "db")])
        db.session.commit()
    resp = member_api.post(PLAYBOOKS, json={"name": "Restart db", "steps": [{"action": "restart", "service_id": ids["db"]}]})
    assert resp.status_code == 201
    return resp.get_json()["id"]


def propose(client, playbook_id) -> dict:
    resp = client.post(REMEDIATIONS, json={"title": "Restart the database", "rationale": "Pool exhausted",
                                           "playbook_id": playbook_id})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def accept_policy(app, org_id, actions=("restart:*",)):
    with app.app_context():
        db.session.add(Policy(org_id=org_id, name="Restarts", status="accepted", control_tags="SOC2:CC8.1",
                              actions=list(actions)))
        db.session.commit()


def act(client, rid, what, body=None):
    return client.post(f"{REMEDIATIONS}/{rid}/{what}", json=body or {})


def test_propose_preview_approve_apply(app, owner, member_api, admin_api, playbook, rows):
    admin_api.post(GUARDRAILS, json={"name": "Tier 0", "kind": "tier_protection", "params": {"max_tier": 0}})
    r = propose(member_api, playbook)
    assert r["status"] == "proposed" and r["preview"] is None and r["source"] == "manual"
    assert block_of(act(member_api, r["id"], "apply", APPLY)) == "dry_run_missing"
    preview = act(member_api, r["id"], "preview").get_json()["preview"]
    assert preview["verdict"] == "needs_approval" and preview["plan"][0]["service"] == "db"
    # needs an approval first, then an accepted policy
    assert block_of(act(member_api, r["id"], "apply", APPLY)) == "approval_required"
    approved = act(admin_api, r["id"], "approve", {"note": "Agreed"})
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"
    assert approved.get_json()["decided_by"].startswith("admin-") and approved.get_json()["approval_id"]
    assert block_of(act(member_api, r["id"], "apply", APPLY)) == "no_accepted_policy"
    accept_policy(app, owner.org_id)
    applied = act(member_api, r["id"], "apply", APPLY)
    assert applied.status_code == 200, applied.get_data(as_text=True)
    body = applied.get_json()
    assert body["status"] == "applied" and body["execution"]["kind"] == "remediate"
    assert body["execution"]["approval_id"] == body["approval_id"] and body["execution"]["policy_id"]
    assert rows("policy_blocks", operation="apply") == 3
    error_of(act(member_api, r["id"], "apply", APPLY), 409, "CONFLICT")  # applied is final
    assert member_api.get(f"{REMEDIATIONS}?status=applied").get_json()["data"][0]["id"] == r["id"]


def test_apply_without_a_guardrail_needs_only_a_policy_and_notes(app, owner, member_api, playbook):
    r = propose(member_api, playbook)
    act(member_api, r["id"], "preview")
    accept_policy(app, owner.org_id, ["restart:db"])
    assert block_of(act(member_api, r["id"], "apply", {**APPLY, "rollback_plan": ""})) == "missing_rollback_plan"
    assert act(member_api, r["id"], "apply", APPLY).get_json()["status"] == "applied"


def test_approve_rules(member_api, admin_api, api, playbook, rows):
    mine = propose(admin_api, playbook)
    error_of(act(api, mine["id"], "approve"), 409, "CONFLICT")  # no preview yet
    act(admin_api, mine["id"], "preview")
    error_of(act(admin_api, mine["id"], "approve"), 403, "FORBIDDEN")  # the proposer
    error_of(act(member_api, mine["id"], "approve"), 403, "FORBIDDEN")  # below admin
    assert act(api, mine["id"], "approve").get_json()["status"] == "approved"
    again = act(api, mine["id"], "approve")
    error_of(again, 409, "CONFLICT")
    assert "already approved" in again.get_json()["detail"]
    assert rows("automation_approvals", status="approved") == 1


def test_reject_needs_a_note_and_is_final(member_api, admin_api, playbook):
    r = propose(member_api, playbook)
    error_of(act(admin_api, r["id"], "reject", {"note": ""}), 400, "VALIDATION_ERROR")
    error_of(act(admin_api, r["id"], "reject", {}), 400, "VALIDATION_ERROR")
    error_of(act(member_api, r["id"], "reject", {"note": "no"}), 403, "FORBIDDEN")
    rejected = act(admin_api, r["id"], "reject", {"note": "Fix the pool size instead"})
    assert rejected.get_json()["status"] == "rejected" and rejected.get_json()["decision_note"] == "Fix the pool size instead"
    for what in ("preview", "approve", "apply"):
        error_of(act(admin_api, r["id"], what, APPLY if what == "apply" else {}), 409, "CONFLICT")


def test_preview_of_a_changed_playbook_sends_it_back_to_proposed(app, owner, member_api, admin_api, playbook):
    r = propose(member_api, playbook)
    act(member_api, r["id"], "preview")
    assert act(admin_api, r["id"], "approve").get_json()["status"] == "approved"
    with app.app_context():
        web = make_services(owner.org_id, {"cache": 1})["cache"]
        db.session.commit()
    member_api.patch(f"{PLAYBOOKS}/{playbook}", json={"steps": [{"action": "restart", "service_id": web}]})
    # applying the old preview is a changed plan; a new preview needs a new approval
    assert block_of(act(member_api, r["id"], "apply", APPLY)) == "plan_changed"
    again = act(member_api, r["id"], "preview").get_json()
    assert again["status"] == "proposed" and again["approval_id"] is None


@pytest.mark.parametrize("body, status", [
    ({"title": "", "playbook_id": 1}, 400),
    ({"title": "t", "playbook_id": "1"}, 400),
    ({"title": "t", "playbook_id": 1, "source": "rca"}, 400),
    ({"title": "x" * 301, "playbook_id": 1}, 400),
    ({"title": "t", "playbook_id": 999}, 404),
    ({"title": "t", "playbook_id": 1, "incident_id": 999}, 404),
])
def test_create_validation(member_api, playbook, rows, body, status):
    error_of(member_api.post(REMEDIATIONS, json=body), status, {400: "VALIDATION_ERROR", 404: "NOT_FOUND"}[status])
    assert rows("remediations") == 0


def test_tenancy_and_roles(member_api, other_api, viewer_api, playbook, rows):
    r = propose(member_api, playbook)
    error_of(other_api.get(f"{REMEDIATIONS}/{r['id']}"), 404, "NOT_FOUND")
    for what, body in (("preview", {}), ("approve", {}), ("reject", {"note": "x"}), ("apply", APPLY)):
        error_of(act(other_api, r["id"], what, body), 404, "NOT_FOUND")
    error_of(act(viewer_api, r["id"], "preview"), 403, "FORBIDDEN")
    error_of(viewer_api.post(REMEDIATIONS, json={"title": "t", "playbook_id": playbook}), 403, "FORBIDDEN")
    assert other_api.get(REMEDIATIONS).get_json()["data"] == []
    assert rows("automation_dry_runs") == 0 and rows("policy_blocks") == 0
