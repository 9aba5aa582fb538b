"""Assessor evidence requests: the API (create, read, edit, fulfil, cancel) with its bad-input, role, tenant and
state stories, the audit trail (control tags), the pages (queue, create form, detail, fulfil with a bundle picker,
history) and the demo seeder."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from zentro.audit.models import AuditEvent
from zentro.compliance import evidence_requests as svc
from zentro.compliance import report_registry as registry
from zentro.extensions import db
from zentro.platform.types import utcnow

from .engine_helpers import bundle
from .register_helpers import (DAY, Api, admin, admin_api, api, error_of, iso, member,  # noqa: F401
                               member_api, other_api, owner, rows, snapshot, stranger, viewer, viewer_api)

BASE = "/api/governance/compliance/evidence-requests"


def body(**over) -> dict:
    data = {"title": "Access review population", "controls": ["SOC2:CC6.1", "ISO27001:A.5.15"],
            "requestedBy": "auditor@assessor.example", "dueAt": iso(utcnow() + 10 * DAY), "note": "Q3 sample"}
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def create(api, **over) -> dict:
    resp = api.post(BASE, json=body(**over))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def make_bundle(app, org_id: int, seq: int = 1) -> int:
    with app.app_context():
        bid = bundle(org_id, seq, created_at=utcnow() - DAY).id
        db.session.commit()
    return bid


def events(app, org_id: int, request_id: int) -> list[AuditEvent]:
    with app.app_context():
        out = list(db.session.scalars(select(AuditEvent).where(
            AuditEvent.org_id == org_id, AuditEvent.target_type == "evidence_request",
            AuditEvent.target_id == str(request_id)).order_by(AuditEvent.seq)))
        db.session.expunge_all()
    return out


def test_create_read_and_audit(app, api, owner, member):
    r = create(api, ownerId=member.user_id)
    assert r["status"] == "open" and r["state"] == "open" and r["days_to_due"] in (9, 10)
    assert r["owner"]["email"] == member.email and r["frameworks"] == ["SOC2", "ISO27001"]
    assert r["control_titles"]["SOC2:CC6.1"] and r["url"] == f"/compliance/evidence-requests/{r['id']}"
    got = api.get(f"{BASE}/{r['id']}").get_json()
    assert got == r
    (ev,) = events(app, owner.org_id, r["id"])
    assert ev.action == "evidence_request.created"
    # asking for evidence is not evidence that the controls operate
    assert ev.control_tags == "ISO27001:A.5.35 SOC2:CC2.3"
    # snake_case field names are accepted too
    r2 = api.post(BASE, json={"title": "Other", "controls": ["SOC2:CC7.2"], "due_at": iso(utcnow() + 3 * DAY)})
    assert r2.status_code == 201 and r2.get_json()["requested_by"] == ""


@pytest.mark.parametrize("over,field", [
    ({"title": ""}, "title"), ({"title": " padded"}, "title"), ({"controls": []}, "controls"),
    ({"controls": ["SOC2:NOPE"]}, "controls"), ({"controls": [f"SOC2:CC{i}" for i in range(51)]}, "controls"),
    ({"dueAt": "2026-01-01"}, "dueAt"), ({"dueAt": "soon"}, "dueAt"), ({"ownerId": "3"}, "ownerId"),
    ({"extra": 1}, "extra"), ({"requestedAt": iso(utcnow() + 5 * DAY)}, "requestedAt"),
])
def test_create_bad_input(api, snapshot, rows, over, field):
    before = snapshot()
    err = error_of(api.post(BASE, json=body(**over)), 400, "VALIDATION_ERROR")
    assert field in str(err)
    assert snapshot() == before and rows("evidence_requests") == 0


def test_create_date_rules_and_owner(api, viewer, stranger, rows):
    err = error_of(api.post(BASE, json=body(requestedAt=iso(utcnow() - 5 * DAY), dueAt=iso(utcnow() - 6 * DAY))),
                   400, "VALIDATION_ERROR")
    assert "after the request date" in err["detail"]
    error_of(api.post(BASE, json=body(dueAt=iso(utcnow() + 800 * DAY))), 400, "VALIDATION_ERROR")
    error_of(api.post(BASE, json=body(ownerId=stranger.user_id)), 404, "NOT_FOUND")
    error_of(api.post(BASE, json=body(ownerId=viewer.user_id)), 409, "CONFLICT")
    assert rows("evidence_requests") == 0
    # a request logged after the fact may already be overdue
    r = create(api, requestedAt=iso(utcnow() - 20 * DAY), dueAt=iso(utcnow() - 2 * DAY))
    assert r["state"] == "overdue" and r["days_to_due"] in (-2, -3)


def test_roles(api, member_api, viewer_api, rows):
    error_of(member_api.post(BASE, json=body()), 403, "FORBIDDEN")
    error_of(viewer_api.post(BASE, json=body()), 403, "FORBIDDEN")
    r = create(api)
    error_of(member_api.patch(f"{BASE}/{r['id']}", json={"title": "x"}), 403, "FORBIDDEN")
    error_of(member_api.post(f"{BASE}/{r['id']}/cancel", json={}), 403, "FORBIDDEN")
    error_of(viewer_api.post(f"{BASE}/{r['id']}/fulfil", json={"fileRef": "https://x.example/f"}), 403, "FORBIDDEN")
    assert viewer_api.get(f"{BASE}/{r['id']}").status_code == 200
    resp = member_api.post(f"{BASE}/{r['id']}/fulfil", json={"fileRef": "https://drive.example.com/a.pdf"})
    assert resp.status_code == 200 and resp.get_json()["status"] == "fulfilled"


def test_patch(app, api, owner, member):
    r = create(api)
    due = utcnow() + 30 * DAY
    resp = api.patch(f"{BASE}/{r['id']}", json={"title": "Renamed", "controls": ["SOC2:CC7.2", "SOC2:CC7.2"],
                                                "ownerId": member.user_id, "dueAt": iso(due)})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    got = resp.get_json()
    assert got["title"] == "Renamed" and got["controls"] == ["SOC2:CC7.2"] and got["owner"]["id"] == member.user_id
    assert got["note"] == "Q3 sample"  # untouched
    resp = api.patch(f"{BASE}/{r['id']}", json={"ownerId": None})
    assert resp.get_json()["owner"] is None
    error_of(api.patch(f"{BASE}/{r['id']}", json={"title": None}), 400, "VALIDATION_ERROR")
    error_of(api.patch(f"{BASE}/{r['id']}", json={"controls": []}), 400, "VALIDATION_ERROR")
    error_of(api.patch(f"{BASE}/{r['id']}", json={"status": "fulfilled"}), 400, "VALIDATION_ERROR")
    evs = events(app, owner.org_id, r["id"])
    assert [e.action for e in evs] == ["evidence_request.created", "evidence_request.updated",
                                       "evidence_request.updated"]
    assert '"title":{"from":"Access review population","to":"Renamed"}' in evs[1].data


def test_fulfil_with_bundle_and_state_rules(app, api, member_api, other_api, owner, stranger):
    r = create(api)
    bid = make_bundle(app, owner.org_id)
    foreign = make_bundle(app, stranger.org_id)
    error_of(member_api.post(f"{BASE}/{r['id']}/fulfil", json={}), 400, "VALIDATION_ERROR")
    error_of(member_api.post(f"{BASE}/{r['id']}/fulfil", json={"fileRef": "ftp://x.example/f"}), 400,
             "VALIDATION_ERROR")
    error_of(member_api.post(f"{BASE}/{r['id']}/fulfil", json={"bundleId": foreign}), 404, "NOT_FOUND")
    error_of(member_api.post(f"{BASE}/{r['id']}/fulfil", json={"fulfilled_at": iso(utcnow())}), 400,
             "VALIDATION_ERROR")
    before = utcnow()
    resp = member_api.post(f"{BASE}/{r['id']}/fulfil", json={"bundleId": bid, "note": "Bundle 1 has it"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    got = resp.get_json()
    assert got["status"] == "fulfilled" and got["bundle"] == {"id": bid, "seq": 1, "kind": "evidence"}
    at = dt.datetime.fromisoformat(got["fulfilled_at"].replace("Z", "+00:00"))
    assert before - dt.timedelta(seconds=1) <= at <= utcnow() + dt.timedelta(seconds=1)
    assert got["days_to_due"] is None and got["note"].endswith("Bundle 1 has it")
    ev = events(app, owner.org_id, r["id"])[-1]
    assert ev.action == "evidence_request.fulfilled"
    assert ev.control_tags.split() == ["ISO27001:A.5.15", "ISO27001:A.5.35", "SOC2:CC2.3", "SOC2:CC6.1"]
    # not open any more
    error_of(member_api.post(f"{BASE}/{r['id']}/fulfil", json={"bundleId": bid}), 409, "CONFLICT")
    error_of(api.post(f"{BASE}/{r['id']}/cancel", json={}), 409, "CONFLICT")
    error_of(api.patch(f"{BASE}/{r['id']}", json={"title": "x"}), 409, "CONFLICT")
    # another organisation sees none of it
    for method, url, payload in (("get", f"{BASE}/{r['id']}", None), ("patch", f"{BASE}/{r['id']}", {"title": "x"}),
                                 ("post", f"{BASE}/{r['id']}/fulfil", {"fileRef": "https://x.example/f"}),
                                 ("post", f"{BASE}/{r['id']}/cancel", {})):
        error_of(getattr(other_api, method)(url, json=payload), 404, "NOT_FOUND")


def test_cancel(app, api, owner):
    r = create(api)
    resp = api.post(f"{BASE}/{r['id']}/cancel", json={"reason": "Withdrawn by the assessor"})
    assert resp.status_code == 200 and resp.get_json()["state"] == "cancelled"
    assert events(app, owner.org_id, r["id"])[-1].action == "evidence_request.cancelled"
    error_of(api.post(f"{BASE}/{r['id']}/fulfil", json={"fileRef": "https://x.example/f"}), 409, "CONFLICT")


def test_collection_get_is_the_report(api):
    create(api)
    got = api.get(BASE).get_json()
    assert got["report"] == "evidence-requests" and got["summary"]["open"] == 1


def test_service_with_injected_time(ctx, owner):
    from zentro.audit.service import SYSTEM

    now = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone.utc)
    row = svc.create(owner.org_id, {"title": "Pen test report", "controls": ["SOC2:CC4.1"],
                                    "requestedAt": now - 3 * DAY, "dueAt": now + 4 * DAY},
                     user_id=owner.user_id, actor=SYSTEM, now=now)
    assert svc.request_json(row, now)["days_to_due"] == 4
    assert svc.request_json(row, now + 5 * DAY)["state"] == "overdue"
    svc.fulfil(owner.org_id, row.id, {"fileRef": "http://intranet.example/pentest.pdf"}, user_id=owner.user_id,
               actor=SYSTEM, now=now + DAY)
    r = registry.build("evidence-requests", owner.org_id, now + 2 * DAY)
    (f,) = list(r.section("fulfilled").iter_rows())
    assert f["days_to_fulfil"] == 4.0 and f["on_time"] is True
    assert f["file_ref"] == "http://intranet.example/pentest.pdf"


# --- pages ----------------------------------------------------------------------------------------

def test_pages(app, sign_in, owner, member, viewer):
    bid = make_bundle(app, owner.org_id)
    s = sign_in(owner)
    page = s.get("/compliance/evidence-requests")
    assert page.status_code == 200 and "Log a request" in page.get_data(as_text=True)
    bad = s.post("/compliance/evidence-requests", data={"title": "SOC 2 walkthrough", "controls": "SOC2:NOPE",
                                                        "dueAt": (utcnow() + 5 * DAY).strftime("%Y-%m-%d")})
    assert bad.status_code == 400 and "unknown control tag" in bad.get_data(as_text=True).lower()
    resp = s.post("/compliance/evidence-requests", data={
        "title": "SOC 2 walkthrough", "controls": "SOC2:CC6.1, SOC2:CC6.2", "requestedBy": "Jo Auditor",
        "ownerId": str(member.user_id), "dueAt": (utcnow() + 5 * DAY).strftime("%Y-%m-%d"), "note": "by Friday"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    detail_url = resp.headers["Location"]
    rid = int(detail_url.rstrip("/").rsplit("/", 1)[1])
    html = s.get(detail_url).get_data(as_text=True)
    assert "SOC 2 walkthrough" in html and "Mark fulfilled" in html and "evidence_request.created" in html
    assert f'value="{bid}"' in html  # the bundle picker
    edit = s.post(f"/compliance/evidence-requests/{rid}/edit", data={
        "title": "SOC 2 walkthrough (Q4)", "controls": "SOC2:CC6.1", "dueAt": (utcnow() + 7 * DAY).strftime("%Y-%m-%d"),
        "ownerId": "", "requestedBy": "Jo Auditor", "note": ""})
    assert edit.status_code == 302
    nothing = s.post(f"/compliance/evidence-requests/{rid}/fulfil", data={"bundleId": "", "fileRef": ""})
    assert nothing.status_code == 400 and "bundleId" in nothing.get_data(as_text=True)
    done = s.post(f"/compliance/evidence-requests/{rid}/fulfil", data={"bundleId": str(bid), "fileRef": ""})
    assert done.status_code == 302
    html = s.get(detail_url).get_data(as_text=True)
    assert "bundle #1" in html and "evidence_request.fulfilled" in html and "Mark fulfilled" not in html
    queue = s.get("/compliance/evidence-requests").get_data(as_text=True)
    assert "SOC 2 walkthrough (Q4)" in queue
    # a viewer reads but gets no forms and cannot post
    v = sign_in(viewer)
    assert "Log a request" not in v.get("/compliance/evidence-requests").get_data(as_text=True)
    assert v.post("/compliance/evidence-requests", data={"title": "x"}).status_code == 403


def test_demo_seed(ctx, owner, member):
    from zentro.compliance.demo_evidence import seed_evidence

    bundle(owner.org_id, 1, created_at=utcnow() - 3 * DAY)
    db.session.commit()
    out = seed_evidence(owner.org_id)
    assert out[0].startswith("Evidence requests: 6")
    assert seed_evidence(owner.org_id) == ["Evidence requests already seeded (nothing duplicated)."]
    r = registry.build("evidence-requests", owner.org_id)
    assert r.summary["open"] == 3 and r.summary["overdue"] == 1 and r.summary["fulfilled_in_window"] == 2
    assert r.summary["on_time_rate"] == 50.0 and r.summary["cancelled"] == 1
