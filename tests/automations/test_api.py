"""The automations HTTP API: dry-run → execute over the wire, policy blocks as 409 envelopes, and the
bad-input story of every endpoint (malformed, oversized, wrong type, another org's ids 404, viewer 403,
replayed with an Idempotency-Key), plus playbook and guardrail CRUD."""
from __future__ import annotations

import pytest

from tests.automations.helpers import (DRY_RUN, EXECUTE, GUARDRAILS, PLAYBOOKS, REMEDIATE, block_of, make_playbook,
                                       make_services)
from tests.compliance.register_helpers import (admin, admin_api, api, error_of, member, member_api, other_api,  # noqa: F401
                                               owner, rows, stranger, viewer, viewer_api)
from zentro.extensions import db


@pytest.fixture
def svc(app, owner):
    with app.app_context():
        ids = make_services(owner.org_id, {"db": 0, "api": 1, "web": 2}, [("api", "db"), ("web", "api")])
        db.session.commit()
    return ids


def restart(service_id):
    return [{"action": "restart", "service_id": service_id}]


def dry_run(client, steps, **kw) -> dict:
    resp = client.post(DRY_RUN, json={"steps": steps, **kw})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def run_body(dry: dict, **kw) -> dict:
    return {"dry_run_id": dry["id"], "plan_hash": dry["plan_hash"], "approval_note": "Pool exhausted",
            "rollback_plan": "Scale back to 3", **kw}


def test_dry_run_then_execute(member_api, svc, rows):
    dry = dry_run(member_api, restart(svc["db"]))
    assert dry["persisted"] and dry["verdict"] == "pass" and dry["fresh"]
    assert dry["plan"] == [{"action": "restart", "service_id": svc["db"], "service": "db", "params": {}}]
    assert [s["name"] for s in dry["blast_radius"]["services"]] == ["db", "api", "web"]
    assert dry["action_key"] == "restart:db" and dry["summary"] == "restart db"
    assert {r["name"] for r in dry["slo_impact"]} == {"db", "api", "web"}
    resp = member_api.post(EXECUTE, json=run_body(dry))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    ex = resp.get_json()
    assert ex["mode"] == "manual" and ex["status"] == "recorded" and "ZENTRO_ROBOT_API_URL unset" in ex["detail"]
    assert ex["created_by"].startswith("member-") and rows("automation_executions") == 1


def test_dry_run_without_persisting_answers_200_and_stores_nothing(member_api, svc, rows):
    resp = member_api.post(DRY_RUN, json={"steps": restart(svc["api"]), "persist": False})
    assert resp.status_code == 200 and resp.get_json()["id"] is None and not resp.get_json()["persisted"]
    assert rows("automation_dry_runs") == 0 and rows("audit_events", action="automation.dry_run") == 0


@pytest.mark.parametrize("body", [
    {},
    {"playbook_id": 1, "steps": [{"action": "restart", "service_id": 1}]},
    {"steps": []},
    {"steps": [{"action": "scale", "service_id": 1, "params": {"replicas": 0}}]},
    {"steps": [{"action": "block_address", "service_id": 1, "params": {"cidr": "not-an-ip"}}]},
    {"steps": [{"action": "run_command", "service_id": 1, "params": {"command": "x" * 501}}]},
    {"steps": [{"action": "restart", "service_id": "1"}]},
    {"steps": [{"action": "restart", "service_id": 1}] * 51},
    {"steps": [{"action": "restart", "service_id": 1}], "persist": "yes"},
    {"steps": [{"action": "restart", "service_id": 1}], "extra": 1},
])
def test_dry_run_bad_input_is_400(member_api, svc, rows, body):
    error_of(member_api.post(DRY_RUN, json=body), 400, "VALIDATION_ERROR")
    assert rows("automation_dry_runs") == 0


def test_dry_run_malformed_and_wrong_media_type(member_api, svc):
    error_of(member_api.post(DRY_RUN, data="{", headers={"Content-Type": "application/json"}), 400, "VALIDATION_ERROR")
    error_of(member_api.post(DRY_RUN, data="steps=1", headers={"Content-Type": "text/plain"}), 415,
             "UNSUPPORTED_MEDIA_TYPE")


def test_dry_run_of_another_orgs_objects_is_404(app, member_api, svc, stranger, rows):
    with app.app_context():
        theirs = make_services(stranger.org_id, {"theirs": 0})["theirs"]
        pb = make_playbook(stranger.org_id)
        db.session.commit()
    error_of(member_api.post(DRY_RUN, json={"steps": restart(theirs)}), 404, "NOT_FOUND")
    error_of(member_api.post(DRY_RUN, json={"playbook_id": pb}), 404, "NOT_FOUND")
    error_of(member_api.post(DRY_RUN, json={"steps": restart(svc["db"]), "incident_id": 999}), 404, "NOT_FOUND")
    assert rows("automation_dry_runs") == 0


def test_execute_refusal_is_a_409_envelope_with_its_block(member_api, svc, rows):
    dry = dry_run(member_api, restart(svc["db"]))
    resp = member_api.post(EXECUTE, json=run_body(dry, approval_note=""))
    assert block_of(resp) == "missing_approval_note"
    body = resp.get_json()
    assert "approval note" in body["detail"] and body["errors"][0]["policy_block_id"]
    assert rows("policy_blocks", reason_code="missing_approval_note", operation="execute") == 1
    # absent note and rollback are blocks too, not a 400
    assert block_of(member_api.post(EXECUTE, json={"dry_run_id": dry["id"], "plan_hash": dry["plan_hash"]})) \
        == "missing_approval_note"


@pytest.mark.parametrize("patch", [{"approval_note": "x" * 4001}, {"rollback_plan": 7}, {"dry_run_id": "1"},
                                   {"plan_hash": "not hex"}, {"approval_id": 0}, {"unknown": True}])
def test_execute_bad_input_is_400_and_no_block(member_api, svc, rows, patch):
    dry = dry_run(member_api, restart(svc["db"]))
    error_of(member_api.post(EXECUTE, json=run_body(dry, **patch)), 400, "VALIDATION_ERROR")
    assert rows("policy_blocks") == 0 and rows("automation_executions") == 0


def test_execute_wrong_tenant_is_404_and_viewer_is_403(member_api, other_api, viewer_api, svc, rows):
    dry = dry_run(member_api, restart(svc["db"]))
    for client, status, code in ((other_api, 404, "NOT_FOUND"), (viewer_api, 403, "FORBIDDEN")):
        for url in (EXECUTE, REMEDIATE):
            error_of(client.post(url, json=run_body(dry)), status, code)
    error_of(viewer_api.post(DRY_RUN, json={"steps": restart(svc["db"])}), 403, "FORBIDDEN")
    assert rows("policy_blocks") == 0 and rows("automation_executions") == 0


def test_execute_replayed_with_an_idempotency_key_runs_once(member_api, svc, rows):
    dry = dry_run(member_api, restart(svc["db"]))
    headers = {"Idempotency-Key": "exec-1"}
    first = member_api.post(EXECUTE, json=run_body(dry), headers=headers)
    again = member_api.post(EXECUTE, json=run_body(dry), headers=headers)
    assert first.status_code == again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert first.get_json()["id"] == again.get_json()["id"] and rows("automation_executions") == 1
    # without the key, a second submit is a dry_run_used block
    assert block_of(member_api.post(EXECUTE, json=run_body(dry))) == "dry_run_used"


def test_remediate_without_an_accepted_policy_is_blocked(member_api, svc, rows):
    dry = dry_run(member_api, restart(svc["db"]))
    assert block_of(member_api.post(REMEDIATE, json=run_body(dry))) == "no_accepted_policy"
    assert rows("policy_blocks", operation="remediate", reason_code="no_accepted_policy") == 1


def test_api_key_scope_is_enforced(app, member, svc, make_api_key):
    from tests.compliance.register_helpers import Api

    reader = Api(app.test_client(), make_api_key(member, scopes=["automations:read"]))
    error_of(reader.post(DRY_RUN, json={"steps": restart(svc["db"])}), 403, "FORBIDDEN")
    assert reader.get(PLAYBOOKS).status_code == 200


# --- playbooks ------------------------------------------------------------------------------------

def test_playbook_crud(member_api, admin_api, svc, rows):
    body = {"name": "Restart db", "steps": [{"action": "restart", "service_id": svc["db"]},
                                            {"action": "toggle_flag", "service_id": svc["api"],
                                             "params": {"flag": "read_only", "on": True}}]}
    resp = member_api.post(PLAYBOOKS, json=body)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    pb = resp.get_json()
    assert pb["steps"][0] == {"action": "restart", "service_id": svc["db"], "params": {}}
    error_of(member_api.post(PLAYBOOKS, json={**body, "name": "restart DB"}), 409, "CONFLICT")
    assert member_api.get(f"{PLAYBOOKS}/{pb['id']}").get_json()["name"] == "Restart db"
    patched = member_api.patch(f"{PLAYBOOKS}/{pb['id']}", json={"description": "When the pool is exhausted"})
    assert patched.status_code == 200 and patched.get_json()["description"] == "When the pool is exhausted"
    listed = member_api.get(f"{PLAYBOOKS}?limit=1").get_json()
    assert [p["id"] for p in listed["data"]] == [pb["id"]] and listed["next_cursor"] is None
    error_of(member_api.delete(f"{PLAYBOOKS}/{pb['id']}"), 403, "FORBIDDEN")
    assert admin_api.delete(f"{PLAYBOOKS}/{pb['id']}").status_code == 200
    error_of(member_api.get(f"{PLAYBOOKS}/{pb['id']}"), 404, "NOT_FOUND")
    assert rows("audit_events", action="playbook.deleted") == 1


@pytest.mark.parametrize("body, status", [
    ({"name": "", "steps": [{"action": "restart", "service_id": 1}]}, 400),
    ({"name": " padded", "steps": [{"action": "restart", "service_id": 1}]}, 400),
    ({"name": "x" * 121, "steps": [{"action": "restart", "service_id": 1}]}, 400),
    ({"name": "ok", "steps": []}, 400),
    ({"name": "ok", "steps": [{"action": "scale", "service_id": 1}]}, 400),
    ({"name": "ok", "steps": [{"action": "restart", "service_id": 999}]}, 404),
    ({"name": "ok", "steps": [{"action": "restart", "service_id": 1}], "enabled": 1}, 400),
])
def test_playbook_validation(member_api, svc, rows, body, status):
    error_of(member_api.post(PLAYBOOKS, json=body), status, {400: "VALIDATION_ERROR", 404: "NOT_FOUND"}[status])
    assert rows("playbooks") == 0


def test_playbook_patch_validation_and_tenancy(app, member_api, other_api, viewer_api, svc, owner):
    with app.app_context():
        pb = make_playbook(owner.org_id, restart(svc["db"]))
        db.session.commit()
    error_of(member_api.patch(f"{PLAYBOOKS}/{pb}", json={"steps": None}), 400, "VALIDATION_ERROR")
    error_of(member_api.patch(f"{PLAYBOOKS}/{pb}", json={"steps": [{"action": "restart"}]}), 400, "VALIDATION_ERROR")
    error_of(other_api.get(f"{PLAYBOOKS}/{pb}"), 404, "NOT_FOUND")
    error_of(other_api.patch(f"{PLAYBOOKS}/{pb}", json={"name": "mine"}), 404, "NOT_FOUND")
    error_of(viewer_api.patch(f"{PLAYBOOKS}/{pb}", json={"name": "mine"}), 403, "FORBIDDEN")


# --- guardrails -----------------------------------------------------------------------------------

def test_guardrail_crud_and_effect(admin_api, member_api, svc, admin):
    body = {"name": "Protect tier 0", "kind": "tier_protection", "params": {"max_tier": 0}}
    error_of(member_api.post(GUARDRAILS, json=body), 403, "FORBIDDEN")
    resp = admin_api.post(GUARDRAILS, json=body)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    g = resp.get_json()
    assert g["scope"] == "org" and g["params"] == {"max_tier": 0}
    assert dry_run(member_api, restart(svc["db"]))["verdict"] == "needs_approval"
    patched = admin_api.patch(f"{GUARDRAILS}/{g['id']}", json={"enabled": False})
    assert patched.status_code == 200 and not patched.get_json()["enabled"]
    assert dry_run(member_api, restart(svc["db"]))["verdict"] == "pass"
    approvers = admin_api.post(GUARDRAILS, json={"name": "DB owners", "kind": "required_approvers",
                                                 "service_id": svc["db"], "params": {"approvers": [admin.email.upper()]}})
    assert approvers.status_code == 201 and approvers.get_json()["params"]["approvers"] == [admin.email]
    assert admin_api.delete(f"{GUARDRAILS}/{g['id']}").status_code == 200


@pytest.mark.parametrize("body, status", [
    ({"name": "w", "kind": "maintenance_window", "params": {"weekdays": ["mon"], "start": "25:00", "end": "02:00"}}, 400),
    ({"name": "w", "kind": "maintenance_window", "params": {"weekdays": [], "start": "01:00", "end": "02:00"}}, 400),
    ({"name": "w", "kind": "maintenance_window",
      "params": {"weekdays": ["mon"], "start": "01:00", "end": "02:00", "tz": "Mars/Olympus"}}, 400),
    ({"name": "t", "kind": "tier_protection", "params": {"max_tier": 4}}, 400),
    ({"name": "r", "kind": "max_blast_radius", "params": {"max_services": 0}}, 400),
    ({"name": "f", "kind": "change_freeze", "params": {"starts_at": "2026-03-05T00:00:00Z",
                                                       "ends_at": "2026-03-04T00:00:00Z", "reason": "close"}}, 400),
    ({"name": "f", "kind": "change_freeze", "params": {"starts_at": "2026-03-05T00:00:00", "ends_at":
                                                       "2026-03-06T00:00:00Z", "reason": "naive start"}}, 400),
    ({"name": "a", "kind": "required_approvers", "params": {"approvers": ["nobody@acme.example"]}}, 404),
    ({"name": "a", "kind": "required_approvers", "params": {"approvers": ["x@y.z"], "min": 2}}, 400),
    ({"name": "s", "kind": "tier_protection", "service_id": 999, "params": {"max_tier": 0}}, 404),
    ({"name": "k", "kind": "no_such_kind", "params": {}}, 400),
    ({"name": "k", "kind": "tier_protection", "params": {"max_tier": 0, "extra": 1}}, 400),
])
def test_guardrail_validation(admin_api, svc, rows, body, status):
    error_of(admin_api.post(GUARDRAILS, json=body), status, {400: "VALIDATION_ERROR", 404: "NOT_FOUND"}[status])
    assert rows("guardrails") == 0


def test_viewer_cannot_be_a_named_approver(admin_api, svc, viewer, rows):
    error_of(admin_api.post(GUARDRAILS, json={"name": "a", "kind": "required_approvers",
                                              "params": {"approvers": [viewer.email]}}), 409, "CONFLICT")
    assert rows("guardrails") == 0


def test_guardrail_patch_validates_params_by_kind(admin_api, other_api, svc):
    g = admin_api.post(GUARDRAILS, json={"name": "Radius", "kind": "max_blast_radius",
                                         "params": {"max_services": 5}}).get_json()
    error_of(admin_api.patch(f"{GUARDRAILS}/{g['id']}", json={"params": {"max_tier": 0}}), 400, "VALIDATION_ERROR")
    ok = admin_api.patch(f"{GUARDRAILS}/{g['id']}", json={"params": {"max_services": 2}, "service_id": svc["db"]})
    assert ok.status_code == 200 and ok.get_json()["params"] == {"max_services": 2} and ok.get_json()["scope"] == "service"
    org_wide = admin_api.patch(f"{GUARDRAILS}/{g['id']}", json={"service_id": None})
    assert org_wide.get_json()["service_id"] is None
    error_of(other_api.delete(f"{GUARDRAILS}/{g['id']}"), 404, "NOT_FOUND")
