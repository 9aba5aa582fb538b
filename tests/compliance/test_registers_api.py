"""The registers API: every endpoint's happy path and its bad-input story (malformed, wrong type,
unknown control tag, wrong role 403, another org's id 404, duplicate 409, invalid transition 409 with the
reason), each leaving the registers and the audit log unchanged; API-key scopes."""
from __future__ import annotations

import datetime as dt

import pytest

from zentro.platform.types import utcnow

from .register_helpers import (ATTESTATIONS, DAY, EXCEPTIONS, POLICIES, VENDORS, Api, admin, admin_api, api,  # noqa: F401
                               error_of, iso, member, member_api, other_api, owner, rows, snapshot, stranger,
                               tag_events, viewer, viewer_api)


def soon(days=10) -> str:
    return iso(utcnow() + days * DAY)


def assign(api, owner_id, control="SOC2:CC6.1", days=10) -> dict:
    resp = api.post(ATTESTATIONS, json={"control": control, "owner_id": owner_id, "due_at": soon(days)})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def add_vendor(api, name="Amazon Web Services", **fields) -> dict:
    body = {"name": name, "category": "cloud-infrastructure", "risk_tier": "critical", "report_type": "soc2-type-ii",
            "report_expires_at": soon(200), **fields}
    resp = api.post(VENDORS, json=body)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def create_policy(api, name="Access review", tags=("SOC2:CC6.2",)) -> dict:
    resp = api.post(POLICIES, json={"name": name, "control_tags": list(tags), "actions": ["revoke_access"]})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def open_exception(api, approver_id, control="ISO27001:A.8.8") -> dict:
    resp = api.post(EXCEPTIONS, json={"control": control, "reason": "Legacy appliance", "approver_id": approver_id,
                                      "compensating_control": "VLAN isolation", "expires_at": soon(60)})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


# --- attestations ---------------------------------------------------------------------------------

def test_attestation_flow(app, api, member_api, owner, member, rows):
    a = assign(api, member.user_id, "SOC2:CC6.1")
    assert a["state"] == "assigned" and a["owner"]["email"] == member.email and a["control_title"]
    (event_id,) = tag_events(app, owner.org_id, ["SOC2:CC6.1"], utcnow() - DAY)
    resp = member_api.post(f"{ATTESTATIONS}/{a['id']}/attest", json={
        "note": "Reviewed 40 accounts.", "evidence": [{"kind": "audit_event", "ref": event_id},
                                                      {"kind": "url", "ref": "https://wiki.example.com/review"}]})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["state"] == "attested" and body["validity_days"] == 90 and body["evidence_refs"] == 2
    valid_until = dt.datetime.fromisoformat(body["valid_until"].replace("Z", "+00:00"))
    assert abs(valid_until - (utcnow() + 90 * DAY)) < dt.timedelta(minutes=1)
    board = api.get(ATTESTATIONS).get_json()
    assert board["counts"]["attested"] == 1 and board["attestations"][0]["evidence_count_90d"] >= 2
    assert api.get(f"{ATTESTATIONS}/{a['id']}").get_json()["note"] == "Reviewed 40 accounts."
    rejected = api.post(f"{ATTESTATIONS}/{a['id']}/reject", json={"note": "Wrong quarter."})
    assert rejected.status_code == 200 and rejected.get_json()["state"] == "rejected"
    assert rows("audit_events", action="attestation.rejected") == 1


def test_board_filters(api, owner, member):
    assign(api, member.user_id, "SOC2:CC6.1")
    assign(api, owner.user_id, "SOC2:CC7.2")
    only = api.get(f"{ATTESTATIONS}?owner={member.user_id}").get_json()
    assert [r["control"] for r in only["attestations"]] == ["SOC2:CC6.1"] and only["total"] == 2
    assert api.get(f"{ATTESTATIONS}?state=overdue").get_json()["attestations"] == []
    for bad in ("state=late", "owner=0", "owner=abc", "owner=99999999999", "surprise=1"):
        error_of(api.get(f"{ATTESTATIONS}?{bad}"), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("body,status,field", [
    ({"control": "SOC2:CC99.1"}, 400, "control"),
    ({"control": 61}, 400, "control"),
    ({"control": None}, 400, "control"),
    ({"owner_id": "1"}, 400, "owner_id"),
    ({"owner_id": True}, 400, "owner_id"),
    ({"owner_id": 0}, 400, "owner_id"),
    ({"due_at": "2020-01-01T00:00:00Z"}, 400, "due_at"),
    ({"due_at": "2030-13-01"}, 400, "due_at"),
    ({"due_at": "2027-01-01T00:00:00"}, 400, "due_at"),  # no timezone
    ({"extra": 1}, 400, "extra"),
    ({"owner_id": "stranger"}, 404, "owner_id"),
    ({"owner_id": "viewer"}, 409, "owner_id"),
])
def test_assign_bad_input_changes_nothing(api, owner, stranger, viewer, snapshot, body, status, field):
    payload = {"control": "SOC2:CC6.1", "owner_id": owner.user_id, "due_at": soon()}
    payload.update(body)
    if payload["owner_id"] in ("stranger", "viewer"):
        payload["owner_id"] = {"stranger": stranger.user_id, "viewer": viewer.user_id}[payload["owner_id"]]
    before = snapshot()
    resp = api.post(ATTESTATIONS, json=payload)
    body = error_of(resp, status, {400: "VALIDATION_ERROR", 404: "NOT_FOUND", 409: "CONFLICT"}[status])
    assert body["errors"][0]["loc"][0] == field
    assert snapshot() == before


def test_malformed_bodies_are_400(api, snapshot):
    before = snapshot()
    for url in (ATTESTATIONS, VENDORS, POLICIES, EXCEPTIONS):
        error_of(api.post(url, data="{not json", headers={"Content-Type": "application/json"}), 400,
                 "VALIDATION_ERROR")
        error_of(api.post(url, json=[1, 2]), 400, "VALIDATION_ERROR")
        error_of(api.post(url, json={"name": "a\u0000b", "control": "SOC2:CC6.1"}), 400, "VALIDATION_ERROR")
        error_of(api.post(url, data="name=x", headers={"Content-Type": "application/x-www-form-urlencoded"}), 415,
                 "UNSUPPORTED_MEDIA_TYPE")
    assert snapshot() == before


def test_assign_and_reject_need_admin_attest_needs_owner_or_admin(api, member_api, viewer_api, owner, member,
                                                                  make_member, make_api_key, app, snapshot):
    a = assign(api, member.user_id)
    other_member = Api(app.test_client(), make_api_key(make_member("acme", "member")))
    before = snapshot()
    error_of(member_api.post(ATTESTATIONS, json={"control": "SOC2:CC7.2", "owner_id": member.user_id,
                                                 "due_at": soon()}), 403, "FORBIDDEN")
    error_of(viewer_api.post(f"{ATTESTATIONS}/{a['id']}/attest", json={"note": "x"}), 403, "FORBIDDEN")
    body = error_of(other_member.post(f"{ATTESTATIONS}/{a['id']}/attest", json={"note": "x"}), 403, "FORBIDDEN")
    assert "owner" in body["detail"]
    error_of(member_api.post(f"{ATTESTATIONS}/{a['id']}/reject", json={"note": "x"}), 403, "FORBIDDEN")
    assert viewer_api.get(ATTESTATIONS).status_code == 200
    assert snapshot() == before


@pytest.mark.parametrize("body,status", [
    ({}, 400),
    ({"note": ""}, 400),
    ({"note": 5}, 400),
    ({"note": "x" * 4001}, 400),
    ({"note": "ok", "evidence": "https://a.example"}, 400),
    ({"note": "ok", "evidence": [{"kind": "url", "ref": "ftp://a.example"}]}, 400),
    ({"note": "ok", "evidence": [{"kind": "audit_event", "ref": -1}]}, 400),
    ({"note": "ok", "evidence": [{"kind": "audit_event"}]}, 400),
    ({"note": "ok", "evidence": [{"kind": "audit_event", "ref": 2_000_000_000}]}, 404),
])
def test_attest_bad_input_changes_nothing(api, owner, snapshot, body, status):
    a = assign(api, owner.user_id)
    before = snapshot()
    resp = api.post(f"{ATTESTATIONS}/{a['id']}/attest", json=body)
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert snapshot() == before


def test_reject_an_unattested_one_is_409(api, owner, snapshot):
    a = assign(api, owner.user_id)
    before = snapshot()
    body = error_of(api.post(f"{ATTESTATIONS}/{a['id']}/reject", json={"note": "no"}), 409, "CONFLICT")
    assert "assigned" in body["detail"]
    error_of(api.post(f"{ATTESTATIONS}/{a['id']}/reject", json={}), 400, "VALIDATION_ERROR")
    assert snapshot() == before


def test_duplicate_assignment_is_409(api, owner, rows):
    assign(api, owner.user_id)
    error_of(api.post(ATTESTATIONS, json={"control": "SOC2:CC6.1", "owner_id": owner.user_id, "due_at": soon()}),
             409, "CONFLICT")
    assert rows("attestations") == 1


# --- exceptions -----------------------------------------------------------------------------------

def test_exception_flow(api, admin, rows):
    e = open_exception(api, admin.user_id)
    assert e["state"] == "open" and e["approver"]["email"] == admin.email and e["days_left"] in (59, 60)
    assert api.get(EXCEPTIONS).get_json()["counts"] == {"open": 1, "expired": 0, "closed": 0}
    closed = api.post(f"{EXCEPTIONS}/{e['id']}/close")
    assert closed.status_code == 200 and closed.get_json()["state"] == "closed"
    body = error_of(api.post(f"{EXCEPTIONS}/{e['id']}/close"), 409, "CONFLICT")
    assert "already closed" in body["detail"]
    assert rows("audit_events", action="control_exception.closed") == 1


@pytest.mark.parametrize("body,status,field", [
    ({"control": "ISO27001:A.99"}, 400, "control"),
    ({"reason": ""}, 400, "reason"),
    ({"expires_at": "2020-01-01T00:00:00Z"}, 400, "expires_at"),
    ({"expires_at": "far"}, 400, "expires_at"),
    ({"approver_id": "1"}, 400, "approver_id"),
    ({"approver_id": "member"}, 409, "approver_id"),
    ({"approver_id": "stranger"}, 404, "approver_id"),
])
def test_open_exception_bad_input(api, owner, member, stranger, snapshot, body, status, field):
    payload = {"control": "ISO27001:A.8.8", "reason": "Legacy", "approver_id": owner.user_id, "expires_at": soon(30)}
    payload.update(body)
    if payload["approver_id"] in ("member", "stranger"):
        payload["approver_id"] = {"member": member.user_id, "stranger": stranger.user_id}[payload["approver_id"]]
    before = snapshot()
    resp = api.post(EXCEPTIONS, json=payload)
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.get_json()["errors"][0]["loc"][0] == field
    assert snapshot() == before


def test_exceptions_need_admin(api, member_api, owner, snapshot):
    e = open_exception(api, owner.user_id)
    before = snapshot()
    error_of(member_api.post(EXCEPTIONS, json={"control": "ISO27001:A.8.8", "reason": "x", "approver_id": owner.user_id,
                                               "expires_at": soon()}), 403, "FORBIDDEN")
    error_of(member_api.post(f"{EXCEPTIONS}/{e['id']}/close"), 403, "FORBIDDEN")
    assert member_api.get(EXCEPTIONS).status_code == 200
    assert snapshot() == before


# --- policies -------------------------------------------------------------------------------------

def test_policy_flow_and_transition_rules(api, member_api, rows, snapshot):
    p = create_policy(member_api, "Access review", ["SOC2:CC6.2", "ISO27001:A.5.18"])
    assert p["status"] == "draft" and p["next"] == ["review"]
    patched = member_api.patch(f"{POLICIES}/{p['id']}", json={"description": "Quarterly review."})
    assert patched.status_code == 200 and patched.get_json()["description"] == "Quarterly review."
    moved = member_api.post(f"{POLICIES}/{p['id']}/transition", json={"to": "review"})
    assert moved.get_json()["status"] == "review"

    before = snapshot()
    body = error_of(member_api.post(f"{POLICIES}/{p['id']}/transition", json={"to": "accepted"}), 403, "FORBIDDEN")
    assert "owner or admin" in body["detail"]
    body = error_of(member_api.post(f"{POLICIES}/{p['id']}/transition", json={"to": "retired"}), 409, "CONFLICT")
    assert "from review it can move to accepted or draft" in body["detail"]
    error_of(member_api.post(f"{POLICIES}/{p['id']}/transition", json={"to": "published"}), 400, "VALIDATION_ERROR")
    error_of(member_api.post(f"{POLICIES}/{p['id']}/transition", json={}), 400, "VALIDATION_ERROR")
    body = error_of(member_api.patch(f"{POLICIES}/{p['id']}", json={"name": "Renamed"}), 409, "CONFLICT")
    assert "draft" in body["detail"]
    assert snapshot() == before

    accepted = api.post(f"{POLICIES}/{p['id']}/transition", json={"to": "accepted"}).get_json()
    assert accepted["status"] == "accepted" and accepted["accepted_by"] and accepted["accepted_at"]
    listed = api.get(POLICIES).get_json()
    assert listed["counts"]["accepted"] == 1 and listed["policies"][0]["control_tags"] == ["SOC2:CC6.2",
                                                                                           "ISO27001:A.5.18"]
    assert rows("audit_events", action="policy.accepted") == 1


@pytest.mark.parametrize("body,field", [
    ({"name": ""}, "name"),
    ({"name": " Leading"}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "ok", "control_tags": ["SOC2:CC6.2", "NOPE:1"]}, "control_tags"),
    ({"name": "ok", "control_tags": "SOC2:CC6.2"}, "control_tags"),
    ({"name": "ok", "actions": ["rm -rf /"]}, "actions"),
    ({"name": "ok", "status": "accepted"}, "status"),
])
def test_policy_bad_input(api, snapshot, body, field):
    before = snapshot()
    resp = error_of(api.post(POLICIES, json=body), 400, "VALIDATION_ERROR")
    assert resp["errors"][0]["loc"][0] == field
    assert snapshot() == before


def test_duplicate_policy_is_409_and_viewers_cannot_write(api, viewer_api, rows):
    p = create_policy(api)
    error_of(api.post(POLICIES, json={"name": "ACCESS REVIEW"}), 409, "CONFLICT")
    create_policy(api, "Überprüfung der Zugänge")  # non-ASCII: SQLite's lower() folds ASCII only
    error_of(api.post(POLICIES, json={"name": "Überprüfung der Zugänge"}), 409, "CONFLICT")
    error_of(api.patch(f"{POLICIES}/{p['id']}", json={"name": "Überprüfung der Zugänge"}), 409, "CONFLICT")
    error_of(viewer_api.post(POLICIES, json={"name": "Viewer policy"}), 403, "FORBIDDEN")
    error_of(viewer_api.patch(f"{POLICIES}/{p['id']}", json={"description": "x"}), 403, "FORBIDDEN")
    error_of(viewer_api.post(f"{POLICIES}/{p['id']}/transition", json={"to": "review"}), 403, "FORBIDDEN")
    assert rows("policies") == 2


# --- vendors --------------------------------------------------------------------------------------

def test_vendor_flow(api, owner, rows):
    v = add_vendor(api, handles_phi=True, owner_id=owner.user_id)
    assert v["report_status"] == "valid" and "SOC2:CC6.4" in v["inherited_controls"]
    assert v["baa_missing"] is True and v["owner"]["email"] == owner.email and v["review_days"] == 90
    assert v["inherited_detail"][0]["title"]
    patched = api.patch(f"{VENDORS}/{v['id']}", json={"baa": True, "report_type": "iso27001", "risk_tier": "low"})
    body = patched.get_json()
    assert patched.status_code == 200 and body["baa_missing"] is False and body["review_days"] == 730
    reviewed = api.post(f"{VENDORS}/{v['id']}/review", json={"note": "Bridge letter received."}).get_json()
    assert reviewed["last_review_at"] and reviewed["review_overdue"] is False
    reg = api.get(VENDORS).get_json()
    assert reg["summary"]["total"] == 1 and reg["vendors"][0]["name"] == "Amazon Web Services"
    assert api.get(f"{VENDORS}/{v['id']}").get_json()["report_type"] == "iso27001"
    assert rows("audit_events", action="vendor.reviewed") == 1


@pytest.mark.parametrize("body,status,field", [
    ({"category": "crypto"}, 400, "category"),
    ({"risk_tier": "severe"}, 400, "risk_tier"),
    ({"report_type": "soc3"}, 400, "report_type"),
    ({"report_expires_at": None}, 400, "report_expires_at"),
    ({"report_type": "none"}, 400, "report_expires_at"),
    ({"baa": "true"}, 400, "baa"),
    ({"handles_phi": 1}, 400, "handles_phi"),
    ({"website": "ftp://x.example"}, 400, "website"),
    ({"owner_id": 0}, 400, "owner_id"),
    ({"owner_id": "stranger"}, 404, "owner_id"),
    ({"inherited_controls": ["SOC2:CC6.1"]}, 400, "inherited_controls"),
])
def test_add_vendor_bad_input(api, stranger, snapshot, body, status, field):
    payload = {"name": "Stripe", "category": "payment-processor", "risk_tier": "high", "report_type": "soc2-type-ii",
               "report_expires_at": soon(100), **body}
    if payload.get("owner_id") == "stranger":
        payload["owner_id"] = stranger.user_id
    before = snapshot()
    resp = api.post(VENDORS, json=payload)
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.get_json()["errors"][0]["loc"][0] == field
    assert snapshot() == before


def test_vendor_duplicates_roles_and_patch_errors(api, member_api, viewer_api, snapshot):
    v = add_vendor(api, "Stripe", category="payment-processor")
    add_vendor(api, "Okta", category="identity-provider")
    add_vendor(api, "Société Générale", category="payment-processor")  # non-ASCII names clash as 409 too
    before = snapshot()
    error_of(api.post(VENDORS, json={"name": "stripe", "category": "monitoring", "risk_tier": "low"}), 409, "CONFLICT")
    error_of(api.patch(f"{VENDORS}/{v['id']}", json={"name": "OKTA"}), 409, "CONFLICT")
    error_of(api.post(VENDORS, json={"name": "Société Générale", "category": "monitoring", "risk_tier": "low"}), 409,
             "CONFLICT")
    error_of(api.patch(f"{VENDORS}/{v['id']}", json={"category": None}), 400, "VALIDATION_ERROR")
    error_of(api.patch(f"{VENDORS}/{v['id']}", json={"report_expires_at": None}), 400, "VALIDATION_ERROR")
    error_of(api.patch(f"{VENDORS}/{v['id']}", json={"risk_tier": "huge"}), 400, "VALIDATION_ERROR")
    error_of(member_api.post(VENDORS, json={"name": "New", "category": "monitoring", "risk_tier": "low"}), 403,
             "FORBIDDEN")
    error_of(member_api.patch(f"{VENDORS}/{v['id']}", json={"risk_tier": "low"}), 403, "FORBIDDEN")
    error_of(member_api.post(f"{VENDORS}/{v['id']}/review", json={}), 403, "FORBIDDEN")
    error_of(api.post(f"{VENDORS}/{v['id']}/review", json={"note": 7}), 400, "VALIDATION_ERROR")
    assert viewer_api.get(VENDORS).status_code == 200
    assert snapshot() == before


# --- tenancy and scopes ---------------------------------------------------------------------------

def test_other_orgs_ids_are_404_everywhere(api, other_api, owner, snapshot):
    a = assign(api, owner.user_id)
    e = open_exception(api, owner.user_id)
    p = create_policy(api)
    v = add_vendor(api)
    before = snapshot()
    for method, url, body in [
        ("get", f"{ATTESTATIONS}/{a['id']}", None),
        ("post", f"{ATTESTATIONS}/{a['id']}/attest", {"note": "x"}),
        ("post", f"{ATTESTATIONS}/{a['id']}/reject", {"note": "x"}),
        ("post", f"{EXCEPTIONS}/{e['id']}/close", None),
        ("patch", f"{POLICIES}/{p['id']}", {"description": "x"}),
        ("post", f"{POLICIES}/{p['id']}/transition", {"to": "review"}),
        ("get", f"{VENDORS}/{v['id']}", None),
        ("patch", f"{VENDORS}/{v['id']}", {"risk_tier": "low"}),
        ("post", f"{VENDORS}/{v['id']}/review", {}),
    ]:
        error_of(getattr(other_api, method)(url, json=body), 404, "NOT_FOUND")
    assert other_api.get(ATTESTATIONS).get_json()["attestations"] == []
    assert other_api.get(VENDORS).get_json()["vendors"] == []
    assert other_api.get(POLICIES).get_json()["policies"] == []
    assert other_api.get(EXCEPTIONS).get_json()["exceptions"] == []
    assert snapshot() == before


def test_api_key_scopes(app, owner, make_api_key, snapshot):
    read_only = Api(app.test_client(), make_api_key(owner, ["compliance:read"]))
    wrong = Api(app.test_client(), make_api_key(owner, ["services:read"]))
    before = snapshot()
    for url in (ATTESTATIONS, VENDORS, POLICIES, EXCEPTIONS):
        assert read_only.get(url).status_code == 200
        error_of(wrong.get(url), 403, "FORBIDDEN")
    error_of(read_only.post(POLICIES, json={"name": "x"}), 403, "FORBIDDEN")
    error_of(read_only.post(VENDORS, json={"name": "x", "category": "monitoring", "risk_tier": "low"}), 403,
             "FORBIDDEN")
    assert snapshot() == before


def test_anonymous_is_401(app):
    client = app.test_client()
    for url in (ATTESTATIONS, VENDORS, POLICIES, EXCEPTIONS):
        error_of(client.get(url), 401, "UNAUTHORIZED")
