"""Deploy gate API: lookup by id and by name, recorded decisions (one stored row and one audit event per
call, with the pipeline's context), the rules endpoints (defaults, partial PATCH, validation, roles,
scopes, other orgs, idempotency), the decisions list, and the panel on the service page."""
from __future__ import annotations

import json

import pytest

from tests.reliability.conftest import Api
from tests.reliability.gate_helpers import NOW, add_incident, audit_actions, gate_rows, rule_row
from tests.reliability.helpers import add_service


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    from zentro.reliability import gates_api

    monkeypatch.setattr(gates_api, "utcnow", lambda: NOW)


@pytest.fixture
def sid(app, owner):
    return add_service(app, owner.org_id, "Payments API")


def rules_url(service_id: int) -> str:
    return f"/api/v1/services/{service_id}/gates"


# --- the gate ---------------------------------------------------------------------------------------

def test_gate_by_id_and_by_name(api, sid):
    by_id = api.get(f"/api/v1/gates/{sid}")
    by_name = api.get("/api/v1/gates/Payments%20API")
    by_lower = api.get("/api/v1/gates/payments%20api")
    for resp in (by_id, by_name, by_lower):
        assert resp.status_code == 200 and resp.get_json()["service"] == {"id": sid, "name": "Payments API"}
        assert resp.headers["X-Zentro-Gate"] == "pass"


def test_name_with_a_slash_and_a_numeric_name(app, api, owner, sid):
    slashed = add_service(app, owner.org_id, "edge/api")
    assert api.get("/api/v1/gates/edge/api").get_json()["service"]["id"] == slashed
    numeric = add_service(app, owner.org_id, "9000")  # no service has id 9000: the name matches
    assert api.get("/api/v1/gates/9000").get_json()["service"]["id"] == numeric


@pytest.mark.parametrize("key", ["nope", "999999", "99999999999999999999", "a%00b", "x" * 101])
def test_unknown_service_is_404_and_records_nothing(app, api, owner, sid, key):
    resp = api.get(f"/api/v1/gates/{key}")
    assert resp.status_code == 404 and resp.get_json()["error_code"] == "NOT_FOUND"
    assert "X-Zentro-Gate" not in resp.headers
    assert gate_rows(app, owner.org_id) == ([], [])


def test_other_orgs_service_is_404_by_id_and_by_name(app, api, other_api, owner, sid):
    assert other_api.get(f"/api/v1/gates/{sid}").status_code == 404
    assert other_api.get("/api/v1/gates/Payments%20API").status_code == 404
    assert gate_rows(app, owner.org_id) == ([], [])


def test_every_evaluation_stores_one_decision_and_one_audit_event_with_its_context(app, api, owner, sid):
    ref = add_incident(app, owner.org_id, sid, "critical")
    params = {"ref": "9fceb02d0ae598e95dc970b74767f19372d61af8", "pipeline": "github-actions/deploy#412",
              "environment": "production"}
    first = api.get(f"/api/v1/gates/{sid}", query_string=params).get_json()
    assert first["decision"] == "fail" and first["context"] == params
    decisions, events = gate_rows(app, owner.org_id)
    assert len(decisions) == 1 and len(events) == 1
    row, event = decisions[0], events[0]
    assert row.id == first["decision_id"] and row.decision == "fail" and row.context == params
    assert row.service_id == sid and row.actor_type == "api_key" and owner.email in row.actor_label
    assert row.audit_event_id == event.id == first["audit_event_id"]
    data = json.loads(event.data)
    assert data["decision_id"] == row.id and data["decision"] == "fail" and data["context"] == params
    assert data["checks"]["incidents"] == "fail" and ref in data["reasons"][0]
    assert set(event.control_tags.split()) >= {"SOC2:CC8.1", "ISO27001:A.8.32"}
    assert event.target_type == "service" and event.target_id == str(sid)
    # the same call again is a second piece of evidence, not a replay
    second = api.get(f"/api/v1/gates/{sid}").get_json()
    assert second["decision_id"] != first["decision_id"] and second["context"] == {"ref": None, "pipeline": None,
                                                                                    "environment": None}
    decisions, events = gate_rows(app, owner.org_id)
    assert len(decisions) == 2 and len(events) == 2


@pytest.mark.parametrize("params", [
    {"ref": "x" * 201}, {"pipeline": "p" * 201}, {"environment": "e" * 65},
    {"ref": "abc\ndef"}, {"environment": "prod\x1b[31m"}, {"pipeline": "a\x85b"}, {"branch": "main"},
])
def test_bad_context_is_400_and_records_nothing(app, api, owner, sid, params):
    resp = api.get(f"/api/v1/gates/{sid}", query_string=params)
    assert resp.status_code == 400 and resp.get_json()["error_code"] == "VALIDATION_ERROR"
    assert gate_rows(app, owner.org_id) == ([], [])


def test_viewer_key_with_gates_read_may_ask_and_a_key_without_it_may_not(app, owner, make_member, make_api_key, sid):
    viewer = make_member("acme", "viewer", plan="enterprise")
    ci = Api(app.test_client(), make_api_key(viewer, scopes=["gates:read"]))
    assert ci.get(f"/api/v1/gates/{sid}").status_code == 200
    services_only = Api(app.test_client(), make_api_key(owner, scopes=["services:read"]))
    resp = services_only.get(f"/api/v1/gates/{sid}")
    assert resp.status_code == 403 and "gates:read" in resp.get_json()["detail"]
    assert len(gate_rows(app, owner.org_id)[0]) == 1


def test_session_and_anonymous(app, owner, sign_in, sid):
    signed = sign_in(owner)
    assert signed.get(f"/api/v1/gates/{sid}").get_json()["actor"]["type"] == "user"
    resp = app.test_client().get(f"/api/v1/gates/{sid}")
    assert resp.status_code == 401 and resp.get_json()["error_code"] == "UNAUTHORIZED"


def test_decision_survives_service_deletion_by_name(app, api, owner, sid):
    api.get(f"/api/v1/gates/{sid}")
    assert api.delete(f"/api/v1/services/{sid}").status_code == 200
    decisions, _ = gate_rows(app, owner.org_id)
    assert decisions[0].service_id is None and decisions[0].service_name == "Payments API"


# --- rules ------------------------------------------------------------------------------------------

DEFAULTS = {"enabled": True, "block_severities": ["critical", "high"], "include_dependencies": True,
            "error_budget": True, "min_remaining_percent": 0.0, "freeze": True, "require_maintenance_window": False,
            "configured": False, "updated_at": None}


def test_rules_default_until_configured(api, viewer_api, sid):
    assert api.get(rules_url(sid)).get_json() == DEFAULTS
    assert viewer_api.get(rules_url(sid)).get_json() == DEFAULTS


def test_patch_changes_only_the_fields_sent_and_audits_before_after(app, api, owner, sid):
    resp = api.patch(rules_url(sid), json={"block_severities": ["high", "critical", "high", "medium"],
                                           "min_remaining_percent": 25})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["block_severities"] == ["critical", "high", "medium"] and body["min_remaining_percent"] == 25.0
    assert body["configured"] is True and body["updated_at"] == "2026-03-02T12:00:00Z"
    assert {k: body[k] for k in ("enabled", "include_dependencies", "error_budget", "freeze",
                                 "require_maintenance_window")} == {
        "enabled": True, "include_dependencies": True, "error_budget": True, "freeze": True,
        "require_maintenance_window": False}
    body = api.patch(rules_url(sid), json={"freeze": False}).get_json()
    assert body["freeze"] is False and body["block_severities"] == ["critical", "high", "medium"]
    assert api.get(rules_url(sid)).get_json() == body
    events = audit_actions(app, owner.org_id)
    assert [e.action for e in events] == ["gate.rules_updated", "gate.rules_updated"]
    first = json.loads(events[0].data)
    assert first["from"] == {"block_severities": ["critical", "high"], "min_remaining_percent": 0.0}
    assert first["to"] == {"block_severities": ["critical", "high", "medium"], "min_remaining_percent": 25.0}
    assert json.loads(events[1].data)["from"] == {"freeze": True}
    # a PATCH that changes nothing records nothing
    assert api.patch(rules_url(sid), json={"freeze": False}).status_code == 200
    assert api.patch(rules_url(sid), json={}).status_code == 200
    assert len(audit_actions(app, owner.org_id)) == 2


@pytest.mark.parametrize("body", [
    {"enabled": "yes"}, {"enabled": None}, {"block_severities": ["urgent"]}, {"block_severities": "high"},
    {"block_severities": ["high"] * 5}, {"min_remaining_percent": -1}, {"min_remaining_percent": 100.5},
    {"min_remaining_percent": "10"}, {"min_remaining_percent": True}, {"freeze": 1}, {"extra": True},
    {"freeze": False, "unknown": 1},
])
def test_bad_patch_is_400_and_changes_nothing(app, api, owner, sid, body):
    resp = api.patch(rules_url(sid), json=body)
    assert resp.status_code == 400 and resp.get_json()["error_code"] == "VALIDATION_ERROR", resp.get_data(as_text=True)
    assert rule_row(app, owner.org_id, sid) is None and audit_actions(app, owner.org_id) == []


def test_malformed_json_is_400(app, api, owner, sid):
    resp = api.patch(rules_url(sid), data="{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and rule_row(app, owner.org_id, sid) is None


def test_member_and_viewer_cannot_patch(app, owner, member_api, viewer_api, sid):
    for client in (member_api, viewer_api):
        resp = client.patch(rules_url(sid), json={"enabled": False})
        assert resp.status_code == 403 and resp.get_json()["error_code"] == "FORBIDDEN"
    assert rule_row(app, owner.org_id, sid) is None


def test_admin_may_patch(app, owner, make_member, make_api_key, sid):
    admin = Api(app.test_client(), make_api_key(make_member("acme", "admin", plan="enterprise")))
    assert admin.patch(rules_url(sid), json={"enabled": False}).get_json()["enabled"] is False


def test_key_without_gates_write_cannot_patch(app, owner, make_api_key, sid):
    reader = Api(app.test_client(), make_api_key(owner, scopes=["gates:read", "services:write"]))
    resp = reader.patch(rules_url(sid), json={"enabled": False})
    assert resp.status_code == 403 and "gates:write" in resp.get_json()["detail"]
    assert rule_row(app, owner.org_id, sid) is None
    writer = Api(app.test_client(), make_api_key(owner, scopes=["gates:write"]))
    assert writer.patch(rules_url(sid), json={"enabled": False}).status_code == 200


def test_other_orgs_service_rules_are_404(app, other_api, owner, sid):
    assert other_api.get(rules_url(sid)).status_code == 404
    assert other_api.patch(rules_url(sid), json={"enabled": False}).status_code == 404
    assert other_api.get(rules_url(sid) + "/decisions").status_code == 404
    assert rule_row(app, owner.org_id, sid) is None
    assert other_api.get(rules_url(999999)).status_code == 404


def test_idempotency_key_replays_a_patch(app, api, owner, sid):
    headers = {"Idempotency-Key": "gate-rules-1"}
    first = api.patch(rules_url(sid), json={"enabled": False}, headers=headers)
    again = api.patch(rules_url(sid), json={"enabled": False}, headers=headers)
    assert again.status_code == 200 and again.get_json() == first.get_json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = api.patch(rules_url(sid), json={"enabled": True}, headers=headers)
    assert other.status_code == 422 and other.get_json()["error_code"] == "IDEMPOTENCY_MISMATCH"
    assert len(audit_actions(app, owner.org_id)) == 1 and rule_row(app, owner.org_id, sid)["enabled"] is False


# --- decisions list ---------------------------------------------------------------------------------

def test_decisions_are_listed_newest_first_with_cursor_pagination(app, api, viewer_api, owner, sid):
    other = add_service(app, owner.org_id, "search")
    ids = [api.get(f"/api/v1/gates/{sid}", query_string={"ref": f"v{i}"}).get_json()["decision_id"] for i in range(3)]
    api.get(f"/api/v1/gates/{other}")
    page = viewer_api.get(rules_url(sid) + "/decisions", query_string={"limit": 2}).get_json()
    assert [d["decision_id"] for d in page["data"]] == ids[::-1][:2]
    assert page["data"][0]["context"]["ref"] == "v2" and page["data"][0]["decision"] == "pass"
    rest = viewer_api.get(rules_url(sid) + "/decisions", query_string={"limit": 2, "cursor": page["next_cursor"]})
    assert [d["decision_id"] for d in rest.get_json()["data"]] == [ids[0]] and rest.get_json()["next_cursor"] is None
    assert viewer_api.get(rules_url(sid) + "/decisions", query_string={"cursor": "bogus!"}).status_code == 400


def test_listing_decisions_needs_gates_read(app, owner, make_api_key, sid):
    key = Api(app.test_client(), make_api_key(owner, scopes=["services:read"]))
    assert key.get(rules_url(sid) + "/decisions").status_code == 403
    assert key.get(rules_url(sid)).status_code == 403


# --- the panel on the service page ------------------------------------------------------------------

def test_service_page_panel_shows_rules_preview_and_recent_decisions(app, api, owner, make_member, sign_in, sid):
    add_incident(app, owner.org_id, sid, "critical", title="Card auth failing")
    api.get(f"/api/v1/gates/{sid}", query_string={"ref": "release-2026.03.02", "pipeline": "deploy-prod"})
    viewer = sign_in(make_member("acme", "viewer", plan="enterprise"))
    page = viewer.get(f"/services/{sid}").get_data(as_text=True)
    assert f"/services/{sid}/gate-panel" in page
    panel = viewer.get(f"/services/{sid}/gate-panel")
    assert panel.status_code == 200
    html = panel.get_data(as_text=True)
    assert "Deploy gate" in html and "fail" in html and "Card auth failing" in html
    assert "release-2026.03.02" in html and "deploy-prod" in html
    assert "not recorded" in html  # the preview is not evidence and says so
    assert len(gate_rows(app, owner.org_id)[0]) == 1  # viewing the panel recorded nothing
    other = sign_in(make_member("globex", "owner", plan="enterprise"))
    assert other.get(f"/services/{sid}/gate-panel").status_code == 404


GATE_FORM = {"enabled": "on", "block_severities": ["critical"], "include_dependencies": "on", "error_budget": "on",
             "min_remaining_percent": "25", "freeze": "on"}  # maintenance window unticked: absent from the form


def test_admin_changes_the_rules_from_the_panel_form(app, owner, make_member, sign_in, sid):
    admin = sign_in(make_member("acme", "admin", plan="enterprise"))
    panel = admin.get(f"/services/{sid}/gate-panel").get_data(as_text=True)
    assert "Change the rules" in panel and "Save rules" in panel
    resp = admin.post(f"/services/{sid}/gate-rules", data=GATE_FORM, headers={"HX-Request": "true"})
    assert resp.status_code == 200 and "Rules saved." in resp.get_data(as_text=True)
    row = rule_row(app, owner.org_id, sid)
    assert row["block_severities"] == ["critical"] and row["min_remaining_percent"] == 25.0
    assert row["require_maintenance_window"] is False and row["enabled"] is True
    (event,) = [e for e in audit_actions(app, owner.org_id) if e.action == "gate.rules_updated"]
    assert json.loads(event.data)["to"] == {"block_severities": ["critical"], "min_remaining_percent": 25.0}
    # unticking a box turns that rule off (the form always sends every rule)
    admin.post(f"/services/{sid}/gate-rules", data={k: v for k, v in GATE_FORM.items() if k != "freeze"})
    assert rule_row(app, owner.org_id, sid)["freeze"] is False


@pytest.mark.parametrize("percent", ["150", "-1", "lots"])
def test_a_bad_form_value_is_shown_and_changes_nothing(app, owner, make_member, sign_in, sid, percent):
    admin = sign_in(make_member("acme", "admin", plan="enterprise"))
    resp = admin.post(f"/services/{sid}/gate-rules", data={**GATE_FORM, "min_remaining_percent": percent})
    assert resp.status_code == 400 and "Not saved" in resp.get_data(as_text=True)
    assert rule_row(app, owner.org_id, sid) is None and audit_actions(app, owner.org_id) == []


def test_members_and_other_orgs_cannot_change_rules_from_the_page(app, owner, make_member, sign_in, sid):
    member = sign_in(make_member("acme", "member", plan="enterprise"))
    assert "Save rules" not in member.get(f"/services/{sid}/gate-panel").get_data(as_text=True)
    assert member.post(f"/services/{sid}/gate-rules", data=GATE_FORM).status_code == 403
    other = sign_in(make_member("globex", "owner", plan="enterprise"))
    assert other.post(f"/services/{sid}/gate-rules", data=GATE_FORM).status_code == 404
    assert rule_row(app, owner.org_id, sid) is None
