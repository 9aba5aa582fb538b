"""/api/v1/incidents: list with filters and cursors, create, read, patch, timeline, notes — and every way
of getting it wrong (bad input, wrong role, wrong org, invalid transition) changing nothing."""
from __future__ import annotations

import pytest

from .incident_helpers import audit_actions, audit_count, load, make_incident, make_service

API = "/api/v1/incidents"


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def owner(make_member):
    return make_member("alpha", "owner")


@pytest.fixture
def api(app, owner, make_api_key):
    """A test client calling the API as alpha's owner with an API key."""
    key = make_api_key(owner)
    client = app.test_client()

    class Caller:
        def get(self, url, **kw):
            return client.get(url, headers=bearer(key) | kw.pop("headers", {}), **kw)

        def post(self, url, **kw):
            return client.post(url, headers=bearer(key) | kw.pop("headers", {}), **kw)

        def patch(self, url, **kw):
            return client.patch(url, headers=bearer(key) | kw.pop("headers", {}), **kw)

    return Caller()


# --- list ------------------------------------------------------------------------------------------------

def test_list_is_newest_first_and_cursor_paginated(app, owner, api):
    for i in range(5):
        make_incident(app, owner.org_id, f"incident {i}")
    seen, cursor = [], None
    while True:
        resp = api.get(API, query_string={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert resp.status_code == 200
        body = resp.get_json()
        seen += [i["ref"] for i in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["INC-5", "INC-4", "INC-3", "INC-2", "INC-1"]
    assert set(body["data"][0]) >= {"id", "ref", "title", "severity", "status", "service_name", "commander_email"}
    assert "X-RateLimit-Limit" in resp.headers


def test_list_filters(app, owner, api):
    svc = make_service(app, owner.org_id, "payments-api")
    make_incident(app, owner.org_id, "Payments down", "critical", service_id=svc)
    make_incident(app, owner.org_id, "Search slow", "low", status="resolved")
    make_incident(app, owner.org_id, "Payments slow", "medium", status="acknowledged", service_id=svc)

    def titles(**q):
        resp = api.get(API, query_string=q)
        assert resp.status_code == 200, resp.get_json()
        return [i["title"] for i in resp.get_json()["data"]]

    assert titles() == ["Payments slow", "Search slow", "Payments down"]
    assert titles(status="active") == ["Payments slow", "Payments down"]
    assert titles(status="resolved") == ["Search slow"]
    assert titles(severity="critical") == ["Payments down"]
    assert titles(service_id=svc) == ["Payments slow", "Payments down"]
    assert titles(q="slow") == ["Payments slow", "Search slow"]
    assert titles(q="INC-2") == ["Search slow"]


@pytest.mark.parametrize("query", [{"severity": "sev1"}, {"status": "escalated"}, {"limit": 0}, {"limit": 201},
                                   {"cursor": "not-a-cursor"}, {"service_id": "abc"}, {"q": "x" * 201},
                                   {"unexpected": "1"}])
def test_list_rejects_bad_query(api, query):
    resp = api.get(API, query_string=query)
    assert resp.status_code == 400
    assert resp.get_json()["error_code"] == "VALIDATION_ERROR"


def test_list_never_shows_another_orgs_incidents(app, make_member, api):
    other = make_member("bravo", "owner")
    make_incident(app, other.org_id, "bravo secret")
    assert api.get(API).get_json()["data"] == []
    assert api.get(API, query_string={"q": "bravo"}).get_json()["data"] == []


# --- create ----------------------------------------------------------------------------------------------

def test_create_returns_201_with_location_and_audits(app, owner, api):
    svc = make_service(app, owner.org_id, "payments-api")
    resp = api.post(API, json={"title": "  Card payments failing ", "severity": "critical", "service_id": svc,
                               "description": "Stripe returns 502"})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["ref"], body["title"], body["severity"], body["status"], body["service_name"]) == (
        "INC-1", "Card payments failing", "critical", "open", "payments-api")
    assert resp.headers["Location"].endswith(f"{API}/{body['id']}")
    assert audit_actions(app, owner.org_id, body["id"]) == ["incident.created"]
    assert api.get(resp.headers["Location"]).get_json()["id"] == body["id"]


@pytest.mark.parametrize("payload", [
    {"severity": "high"},                                       # no title
    {"title": ""}, {"title": "   "}, {"title": "\x1c"},       # blank titles
    {"title": "t" * 301},                                       # over-long title
    {"title": "ok", "severity": "urgent"},                      # invalid severity
    {"title": "ok", "description": "d" * 10_001},
    {"title": "ok", "service_id": 0},
    {"title": "ok", "status": "resolved"},                      # extra field
    {"title": 42},
])
def test_create_rejects_bad_input_and_creates_nothing(app, owner, api, payload):
    before = audit_count(app, owner.org_id)
    resp = api.post(API, json=payload)
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error_code"] == "VALIDATION_ERROR"
    assert api.get(API).get_json()["data"] == [] and audit_count(app, owner.org_id) == before


def test_create_with_another_orgs_service_is_404(app, make_member, owner, api):
    foreign = make_service(app, make_member("bravo", "owner").org_id, "their-service")
    resp = api.post(API, json={"title": "x", "service_id": foreign})
    assert resp.status_code == 404 and resp.get_json()["detail"] == "Service not found"
    assert api.get(API).get_json()["data"] == []


def test_create_needs_member_role_and_write_scope(app, make_member, make_api_key, owner):
    client = app.test_client()
    viewer_key = make_api_key(make_member("alpha", "viewer"))
    read_key = make_api_key(owner, ["incidents:read"])
    other_scope = make_api_key(owner, ["audit:read"])
    assert client.post(API, json={"title": "x"}, headers=bearer(viewer_key)).status_code == 403
    assert client.post(API, json={"title": "x"}, headers=bearer(read_key)).status_code == 403
    assert client.get(API, headers=bearer(read_key)).status_code == 200
    assert client.get(API, headers=bearer(other_scope)).status_code == 403
    assert client.get(API).status_code == 401
    assert client.get(API, headers=bearer(viewer_key)).get_json()["data"] == []


def test_create_is_idempotent_with_a_key(app, owner, api):
    first = api.post(API, json={"title": "once"}, headers={"Idempotency-Key": "k-1"})
    again = api.post(API, json={"title": "once"}, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true" and again.get_json()["id"] == first.get_json()["id"]
    assert len(api.get(API).get_json()["data"]) == 1


# --- read and patch --------------------------------------------------------------------------------------

def test_other_orgs_incident_is_404_everywhere(app, make_member, api):
    theirs = make_incident(app, make_member("bravo", "owner").org_id, "bravo secret")
    before = load(app, theirs)
    for resp in (api.get(f"{API}/{theirs}"), api.patch(f"{API}/{theirs}", json={"status": "acknowledged"}),
                 api.get(f"{API}/{theirs}/timeline"), api.post(f"{API}/{theirs}/notes", json={"body": "hi"}),
                 api.get(f"{API}/999999")):
        assert resp.status_code == 404 and resp.get_json()["error_code"] == "NOT_FOUND"
        assert "bravo secret" not in resp.get_data(as_text=True)
    assert load(app, theirs) == before


def test_patch_walks_the_lifecycle_and_audits_each_step(app, owner, api):
    inc = make_incident(app, owner.org_id)
    for to in ("acknowledged", "mitigated", "resolved", "closed"):
        resp = api.patch(f"{API}/{inc}", json={"status": to})
        assert resp.status_code == 200 and resp.get_json()["status"] == to
    assert resp.get_json()["closed_at"] is not None
    assert audit_actions(app, owner.org_id, inc) == ["incident.created", "incident.acknowledged",
                                                     "incident.mitigated", "incident.resolved", "incident.closed"]


def test_invalid_transition_is_409_and_the_whole_patch_changes_nothing(app, owner, api):
    inc = make_incident(app, owner.org_id, severity="low")
    before, n_audit = load(app, inc), audit_count(app, owner.org_id)
    resp = api.patch(f"{API}/{inc}", json={"severity": "critical", "title": "renamed", "status": "closed"})
    assert resp.status_code == 409 and resp.get_json()["error_code"] == "CONFLICT"
    assert "cannot become closed" in resp.get_json()["detail"]
    assert load(app, inc) == before and audit_count(app, owner.org_id) == n_audit


@pytest.mark.parametrize("payload", [{"status": "escalated"}, {"severity": "sev0"}, {"title": "t" * 301},
                                     {"title": ""}, {"status": None}, {"legal_hold": "yes"},
                                     {"commander_id": "me"}, {"commander_id": "7"}, {"commander_id": True},
                                     {"commander_id": 0}, {"color": "red"}])
def test_patch_rejects_bad_input(app, owner, api, payload):
    inc = make_incident(app, owner.org_id)
    before = load(app, inc)
    resp = api.patch(f"{API}/{inc}", json=payload)
    assert resp.status_code == 400, resp.get_json()
    assert load(app, inc) == before


def test_patch_severity_title_description_and_commander(app, make_member, owner, api):
    sre = make_member("alpha", "member")
    inc = make_incident(app, owner.org_id, "Old title")
    resp = api.patch(f"{API}/{inc}", json={"severity": "critical", "title": "New title", "description": "More",
                                           "commander_id": sre.user_id})
    body = resp.get_json()
    assert resp.status_code == 200
    assert (body["severity"], body["title"], body["description"], body["commander_id"], body["commander_email"]) == (
        "critical", "New title", "More", sre.user_id, sre.email)
    assert api.patch(f"{API}/{inc}", json={"commander_id": None}).get_json()["commander_id"] is None
    # JSON Schema counts 7.0 as an integer, so the API does too
    assert api.patch(f"{API}/{inc}", json={"commander_id": float(sre.user_id)}).get_json()["commander_id"] == sre.user_id
    assert audit_actions(app, owner.org_id, inc)[1:] == ["incident.details_changed", "incident.severity_changed",
                                                         "incident.commander_assigned", "incident.commander_assigned",
                                                         "incident.commander_assigned"]


def test_commander_from_another_org_is_404_and_changes_nothing(app, make_member, owner, api):
    outsider = make_member("bravo", "owner")
    inc = make_incident(app, owner.org_id, severity="low")
    before = load(app, inc)
    resp = api.patch(f"{API}/{inc}", json={"commander_id": outsider.user_id, "severity": "high"})
    assert resp.status_code == 404 and resp.get_json()["detail"] == "User not found"
    assert load(app, inc) == before


def test_empty_patch_changes_nothing(app, owner, api):
    inc = make_incident(app, owner.org_id)
    before = load(app, inc)
    assert api.patch(f"{API}/{inc}", json={}).status_code == 200
    assert load(app, inc) == before


def test_legal_hold_is_owner_or_admin_only(app, make_member, make_api_key, owner, api):
    inc = make_incident(app, owner.org_id)
    member_key = make_api_key(make_member("alpha", "member"))
    admin_key = make_api_key(make_member("alpha", "admin"))
    client = app.test_client()
    before = load(app, inc)
    resp = client.patch(f"{API}/{inc}", json={"legal_hold": True, "severity": "low"}, headers=bearer(member_key))
    assert resp.status_code == 403 and "legal hold" in resp.get_json()["detail"]
    assert load(app, inc) == before
    assert client.patch(f"{API}/{inc}", json={"severity": "low"}, headers=bearer(member_key)).status_code == 200
    resp = client.patch(f"{API}/{inc}", json={"legal_hold": True}, headers=bearer(admin_key))
    assert resp.status_code == 200 and resp.get_json()["legal_hold"] is True
    assert api.patch(f"{API}/{inc}", json={"legal_hold": False}).get_json()["legal_hold"] is False
    assert audit_actions(app, owner.org_id, inc)[-2:] == ["incident.legal_hold_set", "incident.legal_hold_released"]


def test_viewer_cannot_patch_or_add_notes(app, make_member, make_api_key, owner):
    inc = make_incident(app, owner.org_id)
    key = make_api_key(make_member("alpha", "viewer"))
    client = app.test_client()
    before = load(app, inc)
    assert client.patch(f"{API}/{inc}", json={"status": "acknowledged"}, headers=bearer(key)).status_code == 403
    assert client.post(f"{API}/{inc}/notes", json={"body": "hi"}, headers=bearer(key)).status_code == 403
    assert client.get(f"{API}/{inc}", headers=bearer(key)).status_code == 200
    assert load(app, inc) == before


def test_session_callers_need_the_csrf_header(app, owner, sign_in):
    inc = make_incident(app, owner.org_id)
    signed = sign_in(owner)
    assert signed.client.patch(f"{API}/{inc}", json={"status": "acknowledged"}).status_code == 403
    assert signed.patch(f"{API}/{inc}", json={"status": "acknowledged"}).get_json()["status"] == "acknowledged"


# --- timeline and notes ----------------------------------------------------------------------------------

def test_notes_and_timeline(app, owner, api):
    inc = make_incident(app, owner.org_id)
    resp = api.post(f"{API}/{inc}/notes", json={"body": "  Rolled back deploy 2026.11.3  "})
    assert resp.status_code == 201
    note = resp.get_json()
    assert (note["kind"], note["body"], note["actor_type"]) == ("note", "Rolled back deploy 2026.11.3", "api_key")
    api.patch(f"{API}/{inc}", json={"status": "acknowledged"})
    page = api.get(f"{API}/{inc}/timeline", query_string={"limit": 2}).get_json()
    assert [e["kind"] for e in page["data"]] == ["status", "note"]  # newest first
    rest = api.get(f"{API}/{inc}/timeline", query_string={"limit": 2, "cursor": page["next_cursor"]}).get_json()
    assert [e["kind"] for e in rest["data"]] == ["created"] and rest["next_cursor"] is None
    assert audit_actions(app, owner.org_id, inc)[1] == "incident.note_added"


@pytest.mark.parametrize("payload", [{}, {"body": ""}, {"body": "  "}, {"body": "n" * 10_001}, {"body": 5},
                                     {"body": "ok", "pinned": True}])
def test_bad_notes_are_400(app, owner, api, payload):
    inc = make_incident(app, owner.org_id)
    before = audit_count(app, owner.org_id)
    resp = api.post(f"{API}/{inc}/notes", json=payload)
    assert resp.status_code == 400
    assert audit_count(app, owner.org_id) == before


def test_openapi_documents_the_incident_operations(app):
    spec = app.test_client().get("/openapi.json").get_json()
    ops = spec["paths"]
    assert {"get", "post"} <= set(ops["/api/v1/incidents"])
    assert {"get", "patch"} <= set(ops["/api/v1/incidents/{incident_id}"])
    patch = ops["/api/v1/incidents/{incident_id}"]["patch"]
    assert patch["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/IncidentOut"}
    create = spec["components"]["schemas"]["CreateIncidentIn"]
    assert create["additionalProperties"] is False and create["properties"]["title"]["maxLength"] == 300
    evidence = ops["/api/incidents/{incident_id}/evidence"]["get"]["responses"]["200"]
    assert evidence["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/IncidentEvidenceOut"}
