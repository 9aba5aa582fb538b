"""Committee settings and staffing actions: the API (validation, roles, transitions, audit, tenant isolation) and
the pages (settings form with the defaults, the tracker with its add form and status buttons)."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from zentro.audit.models import AuditEvent, AuditTag
from zentro.compliance.models import CommitteeSettings, StaffingAction
from zentro.extensions import db

from tests.compliance.analytics_helpers import staffing_action
from tests.compliance.register_helpers import (admin, admin_api, api, error_of, member, member_api, other_api,  # noqa: F401
                                               owner, stranger, viewer, viewer_api)

SETTINGS = "/api/governance/compliance/committee-settings"
ACTIONS = "/api/governance/compliance/staffing-actions"


def _audit(app, org_id: int, action: str) -> list[tuple[AuditEvent, list[str]]]:
    with app.app_context():
        events = list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.org_id == org_id,
                                                                     AuditEvent.action == action)))
        out = [(e, sorted(db.session.scalars(sa.select(AuditTag.tag).where(AuditTag.event_id == e.id))))
               for e in events]
        db.session.remove()
    return out


# --- committee settings -------------------------------------------------------------------------------------

def test_settings_are_the_defaults_until_saved_and_any_member_reads_them(viewer_api):
    body = viewer_api.get(SETTINGS).get_json()
    assert body["stored"] is False and body["updatedAt"] is None
    assert (body["capacityHoursPerWeek"], body["densityWarn"], body["densityCritical"], body["completionSlaDays"],
            body["bundleCadenceDays"], body["escalationEmails"]) == (40.0, 8, 15, 14, 30, [])
    assert body["effortHours"]["checkpoint"] == 6.0 and body["defaults"]["effortHours"]["attestation"] == 2.0


def test_admin_saves_settings_merged_and_audited(app, admin_api, viewer_api, admin):
    resp = admin_api.put(SETTINGS, json={"capacityHoursPerWeek": 32.5, "densityWarn": 5, "densityCritical": 9,
                                         "escalationEmails": ["cc@acme.example", "CC@acme.example", "ops@acme.example"],
                                         "effortHours": {"checkpoint": 8, "vendor_review": 0.25}})
    assert resp.status_code == 200, resp.get_json()
    body = viewer_api.get(SETTINGS).get_json()
    assert body["stored"] is True and body["updatedAt"]
    assert (body["capacityHoursPerWeek"], body["densityWarn"], body["densityCritical"], body["completionSlaDays"]) == \
        (32.5, 5, 9, 14)
    assert body["escalationEmails"] == ["cc@acme.example", "ops@acme.example"]  # duplicates (any case) dropped
    assert body["effortHours"] == {"attestation": 2.0, "vendor_review": 0.25, "vendor_report": 1.0, "bundle": 3.0,
                                   "checkpoint": 8.0, "evidence_request": 2.0}
    # a second PUT changes only what it sends
    assert admin_api.put(SETTINGS, json={"completionSlaDays": 21, "effortHours": {"bundle": 4}}).status_code == 200
    body = viewer_api.get(SETTINGS).get_json()
    assert (body["completionSlaDays"], body["capacityHoursPerWeek"], body["effortHours"]["checkpoint"],
            body["effortHours"]["bundle"]) == (21, 32.5, 8.0, 4.0)
    events = _audit(app, admin.org_id, "committee.settings_updated")
    assert len(events) == 2 and all(tags == ["ISO27001:A.5.4", "SOC2:CC1.2"] for _, tags in events)
    first = min(events, key=lambda e: e[0].id)[0]
    assert json.loads(first.data)["first_save"] is True and json.loads(first.data)["changed"]["densityWarn"] == 5


@pytest.mark.parametrize("body,field", [
    ({"capacityHoursPerWeek": 0}, "capacityHoursPerWeek"),
    ({"capacityHoursPerWeek": 1001}, "capacityHoursPerWeek"),
    ({"densityWarn": 15}, "densityWarn"),  # not below the stored critical (15)
    ({"densityWarn": 6, "densityCritical": 6}, "densityWarn"),
    ({"densityCritical": 3.5}, "densityCritical"),
    ({"densityWarn": True}, "densityWarn"),
    ({"completionSlaDays": 91}, "completionSlaDays"),
    ({"bundleCadenceDays": -1}, "bundleCadenceDays"),
    ({"escalationEmails": ["not-an-email"]}, "escalationEmails"),
    ({"escalationEmails": [f"p{i}@acme.example" for i in range(21)]}, "escalationEmails"),
    ({"effortHours": {"incident": 2}}, "effortHours"),
    ({"effortHours": {"checkpoint": 0.1}}, "effortHours"),
    ({"effortHours": {"checkpoint": 201}}, "effortHours"),
    ({"capacity": 10}, "capacity"),
])
def test_bad_settings_are_400_and_change_nothing(app, admin_api, admin, body, field):
    body_out = error_of(admin_api.put(SETTINGS, json=body), 400, "VALIDATION_ERROR")
    assert field in str(body_out.get("errors") or body_out["detail"])
    with app.app_context():
        assert db.session.get(CommitteeSettings, admin.org_id) is None


def test_only_owners_and_admins_change_settings(member_api, viewer_api):
    error_of(member_api.put(SETTINGS, json={"densityWarn": 3}), 403, "FORBIDDEN")
    error_of(viewer_api.put(SETTINGS, json={"densityWarn": 3}), 403, "FORBIDDEN")


def test_settings_feed_the_reports(api, app):
    assert api.put(SETTINGS, json={"capacityHoursPerWeek": 12, "bundleCadenceDays": 0}).status_code == 200
    doc = api.get("/api/governance/compliance/committee-capacity-budget?weeks=2").get_json()
    assert doc["summary"]["capacity_hours_per_week"] == 12.0 and doc["summary"]["settings"] == "stored"
    assert doc["summary"]["total_needed_hours"] == 0.0  # no scheduled bundles any more


# --- staffing actions ---------------------------------------------------------------------------------------

def test_create_stores_the_monday_and_audits(app, admin_api, admin, member):
    resp = admin_api.post(ACTIONS, json={"weekStart": "2026-12-03", "kind": "rebalance", "title": "Move reviews",
                                         "hours": 4.5, "ownerId": member.user_id, "note": "from the digest"})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["weekStart"] == "2026-11-30" and body["status"] == "proposed" and body["owner"]["id"] == member.user_id
    assert body["next"] == ["tracked", "dismissed"] and body["completedAt"] is None
    assert body["slaDueAt"] == "2026-12-14T00:00:00Z"
    (event, tags), = _audit(app, admin.org_id, "staffing_action.created")
    assert tags == ["ISO27001:A.5.2", "SOC2:CC1.3"] and json.loads(event.data)["week_start"] == "2026-11-30"
    # without an owner: unassigned
    body = admin_api.post(ACTIONS, json={"weekStart": "2026-12-07", "kind": "add_capacity", "title": "Contractor"}
                          ).get_json()
    assert body["owner"] is None and body["hours"] == 0.0


@pytest.mark.parametrize("body,status", [
    ({"weekStart": "2026-02-30", "kind": "defer", "title": "x"}, 400),
    ({"weekStart": "next week", "kind": "defer", "title": "x"}, 400),
    ({"weekStart": 20261130, "kind": "defer", "title": "x"}, 400),
    ({"weekStart": "2026-11-30", "kind": "hire", "title": "x"}, 400),
    ({"weekStart": "2026-11-30", "kind": "defer", "title": " padded"}, 400),
    ({"weekStart": "2026-11-30", "kind": "defer", "title": ""}, 400),
    ({"weekStart": "2026-11-30", "kind": "defer", "title": "x", "hours": -1}, 400),
    ({"weekStart": "2026-11-30", "kind": "defer", "title": "x", "hours": "3"}, 400),
    ({"weekStart": "2026-11-30", "kind": "defer", "title": "x", "status": "tracked"}, 400),
    ({"weekStart": "2026-11-30", "kind": "defer", "title": "x", "ownerId": 999999}, 404),
])
def test_bad_actions_are_refused(app, admin_api, admin, body, status):
    error_of(admin_api.post(ACTIONS, json=body), status, {400: "VALIDATION_ERROR", 404: "NOT_FOUND"}[status])
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(StaffingAction)) == 0


def test_owner_must_be_member_or_above_of_this_org(admin_api, viewer, stranger):
    base = {"weekStart": "2026-11-30", "kind": "defer", "title": "x"}
    error_of(admin_api.post(ACTIONS, json={**base, "ownerId": viewer.user_id}), 409, "CONFLICT")
    error_of(admin_api.post(ACTIONS, json={**base, "ownerId": stranger.user_id}), 404, "NOT_FOUND")


def test_members_and_viewers_cannot_write_actions(app, member_api, viewer_api, owner):
    base = {"weekStart": "2026-11-30", "kind": "defer", "title": "x"}
    error_of(member_api.post(ACTIONS, json=base), 403, "FORBIDDEN")
    error_of(viewer_api.post(ACTIONS, json=base), 403, "FORBIDDEN")
    with app.app_context():
        aid = staffing_action(owner.org_id, dt.date(2026, 11, 30)).id
        db.session.commit()
    error_of(member_api.patch(f"{ACTIONS}/{aid}", json={"status": "tracked"}), 403, "FORBIDDEN")
    error_of(member_api.delete(f"{ACTIONS}/{aid}"), 403, "FORBIDDEN")


def test_status_transitions_and_edits(app, admin_api, admin, member):
    aid = admin_api.post(ACTIONS, json={"weekStart": "2026-11-30", "kind": "defer", "title": "Defer renewals",
                                        "hours": 2}).get_json()["id"]
    error_of(admin_api.patch(f"{ACTIONS}/{aid}", json={"status": "completed"}), 409, "CONFLICT")  # not tracked yet
    body = admin_api.patch(f"{ACTIONS}/{aid}", json={"status": "tracked", "ownerId": member.user_id, "hours": 3,
                                                     "title": "Defer two renewals"}).get_json()
    assert (body["status"], body["owner"]["id"], body["hours"], body["title"], body["next"]) == \
        ("tracked", member.user_id, 3.0, "Defer two renewals", ["completed", "dismissed"])
    assert admin_api.patch(f"{ACTIONS}/{aid}", json={"ownerId": None}).get_json()["owner"] is None
    body = admin_api.patch(f"{ACTIONS}/{aid}", json={"status": "completed"}).get_json()
    assert body["status"] == "completed" and body["completedAt"] and body["next"] == []
    error_of(admin_api.patch(f"{ACTIONS}/{aid}", json={"status": "dismissed"}), 409, "CONFLICT")
    error_of(admin_api.patch(f"{ACTIONS}/{aid}", json={"title": "late edit"}), 409, "CONFLICT")
    error_of(admin_api.patch(f"{ACTIONS}/{aid}", json={"status": "done"}), 400, "VALIDATION_ERROR")
    error_of(admin_api.patch(f"{ACTIONS}/{aid}", json={"completedAt": "2026-01-01T00:00:00Z"}), 400,
             "VALIDATION_ERROR")
    assert admin_api.patch(f"{ACTIONS}/{aid}", json={"status": "completed"}).status_code == 200  # same status: no-op
    updates = _audit(app, admin.org_id, "staffing_action.updated")
    assert len(updates) == 3
    assert {"from": "tracked", "to": "completed"} in [json.loads(e.data).get("status") for e, _ in updates]
    tracker = admin_api.get(ACTIONS).get_json()
    assert tracker["summary"]["completed"] == 1 and tracker["summary"]["completion_rate_pct"] == 100.0


def test_dismiss_from_proposed_and_delete(app, admin_api, admin):
    aid = admin_api.post(ACTIONS, json={"weekStart": "2026-11-30", "kind": "consolidate", "title": "x"}
                         ).get_json()["id"]
    assert admin_api.patch(f"{ACTIONS}/{aid}", json={"status": "dismissed"}).get_json()["status"] == "dismissed"
    assert admin_api.delete(f"{ACTIONS}/{aid}").status_code == 204
    error_of(admin_api.delete(f"{ACTIONS}/{aid}"), 404, "NOT_FOUND")
    assert len(_audit(app, admin.org_id, "staffing_action.deleted")) == 1


def test_another_orgs_action_is_404_and_untouched(app, other_api, owner):
    with app.app_context():
        aid = staffing_action(owner.org_id, dt.date(2026, 11, 30), title="ALPHA only").id
        db.session.commit()
    error_of(other_api.patch(f"{ACTIONS}/{aid}", json={"status": "tracked"}), 404, "NOT_FOUND")
    error_of(other_api.delete(f"{ACTIONS}/{aid}"), 404, "NOT_FOUND")
    assert other_api.get(ACTIONS).get_json()["summary"]["actions"] == 0
    with app.app_context():
        assert db.session.get(StaffingAction, aid).status == "proposed"


# --- pages --------------------------------------------------------------------------------------------------

def test_committee_page_shows_defaults_then_saves(app, sign_in, admin, viewer):
    page = sign_in(viewer).get("/compliance/committee")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "No committee settings are saved yet" in html and "defaults" in html
    assert "Save settings" not in html
    client = sign_in(admin)
    form = {"csrf_token": client.csrf, "capacityHoursPerWeek": "30", "densityWarn": "4", "densityCritical": "3",
            "completionSlaDays": "10", "bundleCadenceDays": "30", "escalationEmails": "a@acme.example, b@acme.example",
            **{f"effort_{k}": "2" for k in ("attestation", "vendor_review", "vendor_report", "bundle", "checkpoint",
                                            "evidence_request")}}
    resp = client.post("/compliance/committee", data=form)
    assert resp.status_code == 400 and "must be below density critical" in resp.get_data(as_text=True)
    assert 'value="30"' in resp.get_data(as_text=True)  # what was typed stays
    resp = client.post("/compliance/committee", data={**form, "densityCritical": "12"})
    assert resp.status_code == 302
    html = client.get("/compliance/committee").get_data(as_text=True)
    assert "No committee settings are saved yet" not in html and "a@acme.example, b@acme.example" in html
    with app.app_context():
        row = db.session.get(CommitteeSettings, admin.org_id)
        assert (row.capacity_hours_per_week, row.density_warn, row.density_critical, row.effort_hours["checkpoint"]) \
            == (30.0, 4, 12, 2.0)


def test_tracker_page_add_track_complete_delete(app, sign_in, admin, member):
    client = sign_in(admin)
    page = client.get("/compliance/staffing-actions")
    assert page.status_code == 200 and "No staffing actions yet" in page.get_data(as_text=True)
    resp = client.post("/compliance/staffing-actions", data={
        "csrf_token": client.csrf, "weekStart": "2026-12-02", "kind": "rebalance", "ownerId": str(member.user_id),
        "hours": "5", "title": "Split the vendor reviews", "note": ""})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    bad = client.post("/compliance/staffing-actions", data={"csrf_token": client.csrf, "weekStart": "soon",
                                                            "kind": "rebalance", "title": "x", "hours": ""})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.get_data(as_text=True)
    with app.app_context():
        row = db.session.scalar(sa.select(StaffingAction))
        aid, week = row.id, row.week_start
    assert week == dt.date(2026, 11, 30)
    html = client.get("/compliance/staffing-actions").get_data(as_text=True)
    assert "Split the vendor reviews" in html and ">Track</button>" in html
    assert client.post(f"/compliance/staffing-actions/{aid}/status",
                       data={"csrf_token": client.csrf, "status": "completed"}).status_code == 409
    for to in ("tracked", "completed"):
        assert client.post(f"/compliance/staffing-actions/{aid}/status",
                           data={"csrf_token": client.csrf, "status": to}).status_code == 302
    with app.app_context():
        assert db.session.get(StaffingAction, aid).completed_at is not None
    assert client.post(f"/compliance/staffing-actions/{aid}/delete", data={"csrf_token": client.csrf}).status_code == 302
    with app.app_context():
        assert db.session.get(StaffingAction, aid) is None


def test_tracker_page_is_read_only_for_members(sign_in, member, owner, app):
    with app.app_context():
        staffing_action(owner.org_id, dt.date(2026, 11, 30), title="Visible to members")
        db.session.commit()
    client = sign_in(member)
    html = client.get("/compliance/staffing-actions").get_data(as_text=True)
    assert "Visible to members" in html and "Propose action" not in html
    resp = client.post("/compliance/staffing-actions", data={"csrf_token": client.csrf, "weekStart": "2026-12-02",
                                                             "kind": "defer", "title": "x"})
    assert resp.status_code == 403


def test_a_suggestion_is_tracked_from_the_page(app, sign_in, admin, api):
    """Capacity 1 h/week: each scheduled bundle (3 h, the first due now, then every 30 days) leaves a 2 h shortfall
    in its week; the tracker suggests adding capacity and a Track button proposes exactly that action (then that
    suggestion is gone)."""
    assert api.put(SETTINGS, json={"capacityHoursPerWeek": 1}).status_code == 200
    client = sign_in(admin)
    html = client.get("/compliance/staffing-actions").get_data(as_text=True)
    assert "Add 2 owner-hours for the week of" in html
    suggested = api.get(ACTIONS).get_json()["sections"]["suggested"]["rows"]
    assert len(suggested) in (3, 4) and all(x["kind"] == "add_capacity" and x["hours"] == 2.0 for x in suggested)
    g = suggested[0]
    resp = client.post("/compliance/staffing-actions", data={
        "csrf_token": client.csrf, "weekStart": g["week"], "kind": g["kind"], "title": g["title"],
        "hours": str(g["hours"]), "ownerId": "", "note": "Suggested by committee-capacity-budget"})
    assert resp.status_code == 302
    doc = api.get(ACTIONS).get_json()
    assert doc["summary"]["proposed"] == 1 and doc["summary"]["suggested_untracked"] == len(suggested) - 1
    assert g["week"] not in [x["week"] for x in doc["sections"]["suggested"]["rows"]]
    (row,) = doc["sections"]["actions"]["rows"]
    assert (row["kind"], row["hours"], row["owner"]) == ("add_capacity", 2.0, "")


def test_mentioned_keys_are_whole_keys():
    from zentro.compliance.reports.staffing_actions import mentioned_keys

    assert mentioned_keys("Move attestation:12 and bundle:2026-12-01. Then evidence-request:9") == {
        "attestation:12", "bundle:2026-12-01", "evidence-request:9"}
    assert "attestation:1" not in mentioned_keys("Move attestation:12")
