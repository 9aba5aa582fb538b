"""Audit-season checkpoints: the API (list, create, patch, delete; admin-only changes, validation, audit, tenant
isolation), the checkpoints page and the consolidation page, and the demo seed. ``make_audit_checkpoint`` is the
tenant-isolation factory (tests/platform/test_isolation.py FACTORIES)."""
from __future__ import annotations

import datetime as dt

import pytest

from zentro.extensions import db
from zentro.platform.types import utcnow

from tests.compliance.register_helpers import (MARK, Api, admin, admin_api, api, error_of, iso, member,  # noqa: F401
                                               member_api, other_api, owner, rows, stranger, viewer, viewer_api)

CHECKPOINTS = "/api/governance/compliance/checkpoints"
DAY = dt.timedelta(days=1)


def make_audit_checkpoint(org_id: int, owner_id: int | None = None) -> int:
    from zentro.compliance.models import AuditCheckpoint

    row = AuditCheckpoint(org_id=org_id, name=f"{MARK} checkpoint", framework="SOC2", owner_id=owner_id,
                          due_at=utcnow() + 20 * DAY, status="planned")
    db.session.add(row)
    db.session.flush()
    return row.id


def test_create_list_patch_delete(app, api, owner, member, rows):
    due = (utcnow() + 30 * DAY).replace(microsecond=0)
    resp = api.post(CHECKPOINTS, json={"name": "SOC 2 fieldwork starts", "framework": "soc2",
                                       "owner_id": member.user_id, "due_at": iso(due)})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    c = resp.get_json()
    assert (c["framework"], c["framework_slug"], c["status"], c["state"], c["days_left"]) == \
        ("SOC2", "soc2", "planned", "planned", 30)
    assert c["owner"]["id"] == member.user_id and c["done_at"] is None
    api.post(CHECKPOINTS, json={"name": "ISO stage 2", "framework": "ISO27001", "due_at": iso(utcnow() - 2 * DAY)})
    listed = api.get(CHECKPOINTS).get_json()
    assert listed["counts"] == {"planned": 1, "overdue": 1, "done": 0} and listed["total"] == 2
    assert [x["name"] for x in listed["checkpoints"]] == ["ISO stage 2", "SOC 2 fieldwork starts"]

    url = f"{CHECKPOINTS}/{c['id']}"
    done = api.patch(url, json={"status": "done"}).get_json()
    assert done["status"] == "done" and done["state"] == "done" and done["done_at"]
    again = api.patch(url, json={"status": "done"}).get_json()
    assert again["done_at"] == done["done_at"]  # unchanged: no-op
    reopened = api.patch(url, json={"status": "planned", "name": "Fieldwork", "framework": "pci-dss",
                                    "owner_id": None}).get_json()
    assert (reopened["status"], reopened["done_at"], reopened["name"], reopened["framework"], reopened["owner"]) == \
        ("planned", None, "Fieldwork", "PCIDSS", None)
    actions = ["checkpoint.created", "checkpoint.created", "checkpoint.done", "checkpoint.updated"]
    with app.app_context():
        got = db.session.execute(db.text("SELECT action FROM audit_events WHERE action LIKE 'checkpoint.%' "
                                         "ORDER BY seq")).scalars().all()
        tags = db.session.execute(db.text("SELECT DISTINCT tag FROM audit_tags t JOIN audit_events e ON "
                                          "e.id = t.event_id WHERE e.action LIKE 'checkpoint.%' ORDER BY tag")
                                  ).scalars().all()
    assert got == actions and tags == ["ISO27001:A.5.35", "SOC2:CC4.1"]
    gone = api.delete(url)
    assert gone.status_code == 200 and gone.get_json()["name"] == "Fieldwork"
    assert rows("audit_checkpoints") == 1 and rows("audit_events", action="checkpoint.deleted") == 1
    error_of(api.get(url), 404, "NOT_FOUND")


@pytest.mark.parametrize("body,status,code", [
    ({"name": "x", "framework": "sox", "due_at": "2027-01-01T00:00:00Z"}, 400, "VALIDATION_ERROR"),
    ({"name": "", "framework": "soc2", "due_at": "2027-01-01T00:00:00Z"}, 400, "VALIDATION_ERROR"),
    ({"name": " padded", "framework": "soc2", "due_at": "2027-01-01T00:00:00Z"}, 400, "VALIDATION_ERROR"),
    ({"name": "x", "framework": "soc2", "due_at": "2027-01-01"}, 400, "VALIDATION_ERROR"),
    ({"name": "x", "framework": "soc2", "due_at": "2099-01-01T00:00:00Z"}, 400, "VALIDATION_ERROR"),
    ({"name": "x", "framework": "soc2", "due_at": "2001-01-01T00:00:00Z"}, 400, "VALIDATION_ERROR"),
    ({"name": "x", "framework": "soc2", "due_at": "2027-01-01T00:00:00Z", "status": "done"}, 400, "VALIDATION_ERROR"),
    ({"name": "x", "framework": "soc2", "due_at": "2027-01-01T00:00:00Z", "owner_id": 999999}, 404, "NOT_FOUND"),
])
def test_create_refusals(api, owner, rows, body, status, code):
    body = dict(body)
    if body.get("due_at") == "2027-01-01T00:00:00Z":
        body["due_at"] = iso(utcnow() + 40 * DAY)
    error_of(api.post(CHECKPOINTS, json=body), status, code)
    assert rows("audit_checkpoints") == 0


def test_roles_and_tenants(app, api, admin_api, member_api, viewer_api, other_api, viewer, owner, stranger, rows):
    body = {"name": "Evidence freeze", "framework": "iso27001", "due_at": iso(utcnow() + 10 * DAY)}
    assert admin_api.post(CHECKPOINTS, json=body).status_code == 201
    error_of(member_api.post(CHECKPOINTS, json=body), 403, "FORBIDDEN")
    error_of(viewer_api.post(CHECKPOINTS, json=body), 403, "FORBIDDEN")
    error_of(api.post(CHECKPOINTS, json={**body, "owner_id": viewer.user_id}), 409, "CONFLICT")
    error_of(api.post(CHECKPOINTS, json={**body, "owner_id": stranger.user_id}), 404, "NOT_FOUND")
    cid = api.get(CHECKPOINTS).get_json()["checkpoints"][0]["id"]
    assert viewer_api.get(CHECKPOINTS).get_json()["total"] == 1
    error_of(member_api.patch(f"{CHECKPOINTS}/{cid}", json={"status": "done"}), 403, "FORBIDDEN")
    for call in (other_api.get, other_api.delete):
        error_of(call(f"{CHECKPOINTS}/{cid}"), 404, "NOT_FOUND")
    error_of(other_api.patch(f"{CHECKPOINTS}/{cid}", json={"status": "done"}), 404, "NOT_FOUND")
    assert other_api.get(CHECKPOINTS).get_json()["total"] == 0
    for bad in ({"status": "cancelled"}, {"name": None}, {"due_at": None}, {"framework": "nope"}, {"extra": 1}):
        error_of(api.patch(f"{CHECKPOINTS}/{cid}", json=bad), 400, "VALIDATION_ERROR")
    assert rows("audit_checkpoints", status="planned") == 1


def test_done_checkpoints_leave_the_obligations(app, api, owner):
    from zentro.compliance import obligations as obl

    resp = api.post(CHECKPOINTS, json={"name": "Kick-off", "framework": "soc2", "due_at": iso(utcnow() + 3 * DAY)})
    cid = resp.get_json()["id"]
    with app.app_context():
        assert [o.key for o in obl.load(owner.org_id, utcnow(), kinds=("checkpoint",))] == [f"checkpoint:{cid}"]
    api.patch(f"{CHECKPOINTS}/{cid}", json={"status": "done"})
    with app.app_context():
        assert obl.load(owner.org_id, utcnow(), kinds=("checkpoint",)) == []


# --- pages ---------------------------------------------------------------------------------------------------

def test_checkpoints_page_add_and_mark_done(app, sign_in, owner, member, viewer, rows):
    s = sign_in(owner)
    page = s.get("/compliance/checkpoints")
    assert page.status_code == 200 and "Audit season checkpoints" in page.get_data(as_text=True)
    day = (utcnow() + 12 * DAY).date().isoformat()
    resp = s.post("/compliance/checkpoints", data={"name": "Fieldwork", "framework": "soc2", "owner_id": "",
                                                   "due_at": day, "csrf_token": s.csrf})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    html = s.get("/compliance/checkpoints").get_data(as_text=True)
    assert "Fieldwork" in html and day in html
    bad = s.post("/compliance/checkpoints", data={"name": "X", "framework": "sox", "due_at": day,
                                                  "csrf_token": s.csrf})
    assert bad.status_code == 400 and "Framework" in bad.get_data(as_text=True)
    bad = s.post("/compliance/checkpoints", data={"name": "X", "framework": "soc2", "due_at": "soon",
                                                  "csrf_token": s.csrf})
    assert bad.status_code == 400
    with app.app_context():
        cid = db.session.execute(db.text("SELECT id FROM audit_checkpoints")).scalar()
    assert s.post(f"/compliance/checkpoints/{cid}/status", data={"status": "done", "csrf_token": s.csrf}).status_code == 302
    assert rows("audit_checkpoints", status="done") == 1
    v = sign_in(viewer)
    assert "Add a checkpoint" not in v.get("/compliance/checkpoints").get_data(as_text=True)
    assert v.post(f"/compliance/checkpoints/{cid}/status", data={"status": "planned"}).status_code == 403
    assert s.post(f"/compliance/checkpoints/{cid}/delete", data={"csrf_token": s.csrf}).status_code == 302
    assert rows("audit_checkpoints") == 0


def test_consolidation_page_sets_step_status(app, sign_in, owner, member, viewer, rows):
    from tests.compliance.engine_helpers import attestation

    with app.app_context():
        a = attestation(owner.org_id, "SOC2:CC6.1", due_at=utcnow() + 3 * DAY, owner_id=member.user_id).id
        attestation(owner.org_id, "ISO27001:A.5.15", due_at=utcnow() + 5 * DAY, owner_id=member.user_id)
        db.session.commit()
    key = f"attestation:{a}~14d"
    m = sign_in(member)
    html = m.get("/compliance/consolidation").get_data(as_text=True)
    assert key in html and "Confirm shared scope" in html and "Record reuse in the audit log" in html
    resp = m.post("/compliance/consolidation/steps", data={"cluster_key": key, "step": "2", "status": "in_progress",
                                                           "csrf_token": m.csrf})
    assert resp.status_code == 302
    assert rows("consolidation_play_steps", cluster_key=key, step=2, status="in_progress") == 1
    bad = m.post("/compliance/consolidation/steps", data={"cluster_key": "attestation:1~99d", "step": "2",
                                                          "status": "done", "csrf_token": m.csrf})
    assert bad.status_code == 404 and "No consolidation cluster" in bad.get_data(as_text=True)
    bad = m.post("/compliance/consolidation/steps", data={"cluster_key": key, "step": "9", "status": "done",
                                                          "csrf_token": m.csrf})
    assert bad.status_code == 400
    v = sign_in(viewer)
    assert "<select name=\"status\"" not in v.get("/compliance/consolidation").get_data(as_text=True)
    assert v.post("/compliance/consolidation/steps", data={"cluster_key": key, "step": "1", "status": "done"}
                  ).status_code == 403
    assert rows("consolidation_play_steps") == 1


# --- demo seed -----------------------------------------------------------------------------------------------

def test_seed_obligations_is_idempotent_and_makes_clusters(app, owner, member):
    from zentro.compliance import report_registry as registry
    from zentro.compliance.demo_obligations import seed_obligations
    from zentro.compliance.demo_registers import seed_compliance

    now = utcnow()
    with app.app_context():
        seed_compliance(owner.org_id, now)
        first = seed_obligations(owner.org_id, now)
        db.session.commit()
        again = seed_obligations(owner.org_id, now)
        n = db.session.execute(db.text("SELECT COUNT(*) FROM audit_checkpoints")).scalar()
        report = registry.build("obligation-consolidation", owner.org_id, now)
        forecast = registry.build("obligation-forecast", owner.org_id, now)
        db.session.remove()
    assert first and again == ["Audit-season checkpoints already seeded (nothing duplicated)."]
    assert n >= 5
    assert report.summary["plays"] >= 1 and report.summary["plays_in_progress"] >= 1
    assert forecast.summary["milestones"] >= 3
