"""Gap remediation tracking: the write API (create, change, every refusal leaving the table and the audit log
unchanged, another org's ids 404), the audit trail, the page and its forms, and the demo seed."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from zentro.automations.models import Playbook
from zentro.compliance import report_registry as registry
from zentro.compliance.gap_tracking import TRACKING_TAGS
from zentro.compliance.models import GapRemediation
from zentro.extensions import db
from zentro.platform.types import utcnow

from tests.compliance.register_helpers import (DAY, Api, admin, error_of, iso, member, member_api, other_api,  # noqa: F401
                                               owner, stranger, viewer, viewer_api)

URL = "/api/governance/compliance/gap-remediations"


def soon(days=10) -> str:
    return iso(utcnow() + days * DAY)


def playbook(app, org_id: int, name: str = "Restart gw") -> int:
    with app.app_context():
        pb = Playbook(org_id=org_id, name=name, steps=[])
        db.session.add(pb)
        db.session.commit()
        pid = pb.id
        db.session.remove()
    return pid


@pytest.fixture
def state(app):
    """state() → the gap_remediations rows and the audit events, to assert a refusal changed nothing."""

    def take():
        with app.app_context():
            out = {t: [tuple(r) for r in db.session.execute(sa.text(f'SELECT * FROM "{t}" ORDER BY id'))]
                   for t in ("gap_remediations", "audit_events")}
            db.session.remove()
        return out

    return take


def audit_of(app, target_id: int) -> list[tuple[str, list[str], dict]]:
    from zentro.audit.models import AuditEvent, AuditTag

    with app.app_context():
        events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.target_type == "gap_remediation",
                                                                AuditEvent.target_id == str(target_id))
                                    .order_by(AuditEvent.id)).all()
        out = []
        for e in events:
            tags = sorted(db.session.scalars(sa.select(AuditTag.tag).where(AuditTag.event_id == e.id)))
            out.append((e.action, tags, json.loads(e.data)))
        db.session.remove()
    return out


def test_create_and_change_a_tracking_row(app, member_api, owner, member, state):
    pid = playbook(app, owner.org_id)
    resp = member_api.post(URL, json={"control": "SOC2:CC7.4", "owner_id": member.user_id, "playbook_id": pid,
                                      "runbook_url": "https://runbooks.example.com/gw", "due_at": soon(14),
                                      "note": "Game day next sprint."})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    row = resp.get_json()
    assert (row["control"], row["status"], row["owner"], row["playbook"]) == (
        "SOC2:CC7.4", "open", member.email, "Restart gw")
    assert row["closed_at"] is None and row["control_title"]
    rid = row["id"]
    # audited with the monitoring tags, not the remediated control's own tag (that would be evidence for it)
    ((action, tags, data),) = audit_of(app, rid)
    assert action == "gap_remediation.created" and tags == sorted(TRACKING_TAGS) and data["control"] == "SOC2:CC7.4"

    resp = member_api.patch(f"{URL}/{rid}", json={"status": "done"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    done = resp.get_json()
    assert done["status"] == "done" and done["closed_at"] is not None
    assert done["owner"] == member.email and done["playbook_id"] == pid  # untouched fields stay
    resp = member_api.patch(f"{URL}/{rid}", json={"status": "in_progress", "owner_id": None, "playbook_id": None,
                                                  "runbook_url": "", "due_at": None})
    back = resp.get_json()
    assert back["status"] == "in_progress" and back["closed_at"] is None
    assert (back["owner_id"], back["playbook_id"], back["runbook_url"], back["due_at"]) == (None, None, "", None)
    events = audit_of(app, rid)
    assert [e[0] for e in events] == ["gap_remediation.created", "gap_remediation.updated", "gap_remediation.updated"]
    assert events[1][2]["changes"] == {"status": "done"} and events[1][2]["closed_at"]
    assert all(e[1] == sorted(TRACKING_TAGS) for e in events)
    # a PATCH that changes nothing records nothing
    before = state()
    assert member_api.patch(f"{URL}/{rid}", json={"status": "in_progress"}).status_code == 200
    assert state() == before


def test_the_report_shows_the_row(app, member_api, owner):
    rid = member_api.post(URL, json={"control": "SOC2:CC7.4", "status": "in_progress"}).get_json()["id"]
    with app.app_context():
        rep = registry.build("gap-remediations", owner.org_id)
        rows = {r["control"]: r for r in rep.section("queue").iter_rows()}
        db.session.remove()
    assert rows["SOC2:CC7.4"]["tracking"] == "in_progress" and rows["SOC2:CC7.4"]["remediation_id"] == rid
    assert rep.summary["tracked"] == 1 and rep.summary["in_progress"] == 1


@pytest.mark.parametrize("body,status,code", [
    ({"control": "SOC2:CC99.9"}, 400, "VALIDATION_ERROR"),
    ({"control": "SOC2:CC7.4", "runbook_url": "ftp://runbooks.example.com/x"}, 400, "VALIDATION_ERROR"),
    ({"control": "SOC2:CC7.4", "runbook_url": "javascript:alert(1)"}, 400, "VALIDATION_ERROR"),
    ({"control": "SOC2:CC7.4", "status": "closed"}, 400, "VALIDATION_ERROR"),
    ({"control": "SOC2:CC7.4", "due_at": "2020-01-01T00:00:00Z"}, 400, "VALIDATION_ERROR"),
    ({"control": "SOC2:CC7.4", "due_at": "2099-01-01T00:00:00Z"}, 400, "VALIDATION_ERROR"),
    ({"control": "SOC2:CC7.4", "colour": "red"}, 400, "VALIDATION_ERROR"),
    ({"control": "SOC2:CC7.4", "owner_id": "1"}, 400, "VALIDATION_ERROR"),
    ({"control": "SOC2:CC7.4", "owner_id": 999999}, 404, "NOT_FOUND"),
    ({"control": "SOC2:CC7.4", "playbook_id": 999999}, 404, "NOT_FOUND"),
])
def test_bad_input_is_refused_and_changes_nothing(member_api, owner, state, body, status, code):
    before = state()
    error_of(member_api.post(URL, json=body), status, code)
    assert state() == before


def test_refusals_that_need_other_rows(app, member_api, viewer_api, owner, viewer, stranger, state):
    theirs = playbook(app, stranger.org_id, "Their playbook")
    before = state()
    body = error_of(member_api.post(URL, json={"control": "SOC2:CC7.4", "playbook_id": theirs}), 404, "NOT_FOUND")
    assert body["errors"][0]["loc"] == ["playbook_id"]
    error_of(member_api.post(URL, json={"control": "SOC2:CC7.4", "owner_id": stranger.user_id}), 404, "NOT_FOUND")
    error_of(member_api.post(URL, json={"control": "SOC2:CC7.4", "owner_id": viewer.user_id}), 409, "CONFLICT")
    error_of(viewer_api.post(URL, json={"control": "SOC2:CC7.4"}), 403, "FORBIDDEN")
    assert state() == before
    assert member_api.post(URL, json={"control": "SOC2:CC7.4"}).status_code == 201
    after = state()
    body = error_of(member_api.post(URL, json={"control": "SOC2:CC7.4"}), 409, "CONFLICT")
    assert "already has a gap remediation" in body["detail"]
    assert state() == after


def test_patch_refusals_and_other_orgs(app, member_api, viewer_api, other_api, owner, state):
    rid = member_api.post(URL, json={"control": "SOC2:CC7.4"}).get_json()["id"]
    before = state()
    error_of(other_api.patch(f"{URL}/{rid}", json={"status": "done"}), 404, "NOT_FOUND")
    error_of(viewer_api.patch(f"{URL}/{rid}", json={"status": "done"}), 403, "FORBIDDEN")
    error_of(member_api.patch(f"{URL}/{rid}", json={"status": "finished"}), 400, "VALIDATION_ERROR")
    error_of(member_api.patch(f"{URL}/{rid}", json={"status": None}), 400, "VALIDATION_ERROR")
    error_of(member_api.patch(f"{URL}/{rid}", json={"control": "SOC2:CC6.1"}), 400, "VALIDATION_ERROR")
    error_of(member_api.patch(f"{URL}/{rid}", json={"due_at": "2020-01-01T00:00:00Z"}), 400, "VALIDATION_ERROR")
    error_of(member_api.patch(f"{URL}/{rid}", json={"runbook_url": "file:///etc/passwd"}), 400, "VALIDATION_ERROR")
    error_of(member_api.patch(f"{URL}/{rid}", json={"playbook_id": 999999}), 404, "NOT_FOUND")
    error_of(member_api.patch(f"{URL}/999999", json={"status": "done"}), 404, "NOT_FOUND")
    assert state() == before
    # the other org's own row is out of reach of ours too
    theirs = other_api.post(URL, json={"control": "SOC2:CC7.4"}).get_json()["id"]
    error_of(member_api.patch(f"{URL}/{theirs}", json={"status": "done"}), 404, "NOT_FOUND")


# --- the page -----------------------------------------------------------------------------------------------

def test_the_page_tracks_and_edits(app, sign_in, owner, member, viewer):
    pid = playbook(app, owner.org_id)
    s = sign_in(member)
    page = s.get("/compliance/gap-remediations")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Gap remediation queue" in html and "Track a gap" in html and 'id="gap-queue"' in html
    resp = s.post("/compliance/gap-remediations", data={
        "csrf_token": s.csrf, "control": "SOC2:CC7.4", "status": "in_progress", "owner_id": str(member.user_id),
        "playbook_id": str(pid), "runbook_url": "https://runbooks.example.com/gw",
        "due_at": (utcnow() + 7 * DAY).date().isoformat(), "note": "Game day."})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    with app.app_context():
        row = db.session.scalars(sa.select(GapRemediation).where(GapRemediation.org_id == owner.org_id)).one()
        rid, due = row.id, row.due_at
        db.session.remove()
    html = s.get("/compliance/gap-remediations").get_data(as_text=True)
    assert f'id="remediation-{rid}"' in html and "Restart gw" in html
    # bad input re-renders with the message, changes nothing
    resp = s.post("/compliance/gap-remediations", data={"csrf_token": s.csrf, "control": "SOC2:NOPE"})
    assert resp.status_code == 400 and "unknown control tag" in resp.get_data(as_text=True).lower()
    resp = s.post("/compliance/gap-remediations", data={"csrf_token": s.csrf, "control": "SOC2:CC7.4"})
    assert resp.status_code == 409
    # edit: done, keeping owner, playbook and due date (empty date field)
    resp = s.post(f"/compliance/gap-remediations/{rid}", data={
        "csrf_token": s.csrf, "status": "done", "owner_id": str(member.user_id), "playbook_id": str(pid),
        "runbook_url": "https://runbooks.example.com/gw", "due_at": "", "note": "Done."})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    with app.app_context():
        row = db.session.get(GapRemediation, rid)
        assert (row.status, row.owner_id, row.playbook_id, row.due_at, row.note) == ("done", member.user_id, pid,
                                                                                       due, "Done.")
        assert row.closed_at is not None
        db.session.remove()
    resp = s.post(f"/compliance/gap-remediations/{rid}", data={"csrf_token": s.csrf, "status": "done",
                                                              "runbook_url": "ftp://x"})
    assert resp.status_code == 400 and "Runbook" in resp.get_data(as_text=True)
    # a viewer sees the queue but no forms, and cannot post
    v = sign_in(viewer)
    html = v.get("/compliance/gap-remediations").get_data(as_text=True)
    assert "Track a gap" not in html and 'id="gap-queue"' in html
    assert v.post("/compliance/gap-remediations", data={"csrf_token": v.csrf, "control": "SOC2:CC6.1"}).status_code == 403


def test_another_orgs_row_is_404_on_the_page(app, sign_in, member, stranger, other_api):
    theirs = other_api.post(URL, json={"control": "SOC2:CC7.4"}).get_json()["id"]
    s = sign_in(member)
    assert s.post(f"/compliance/gap-remediations/{theirs}", data={"csrf_token": s.csrf, "status": "done"}
                  ).status_code == 404


# --- demo ---------------------------------------------------------------------------------------------------

def test_demo_seed_is_idempotent_and_links_playbooks(ctx, make_member):
    from zentro.automations.demo import seed_automations
    from zentro.compliance.demo_program import seed_program
    from zentro.compliance.demo_registers import seed_compliance
    from zentro.incidents.demo import seed_incidents
    from zentro.reliability.demo import seed_reliability

    owner = make_member("demo", "owner")
    make_member("demo", "member")
    now = utcnow()
    for seed in (seed_reliability, seed_incidents, seed_compliance, seed_automations):
        seed(owner.org_id, now)
    notes = seed_program(owner.org_id, now)
    db.session.commit()
    rows = db.session.scalars(sa.select(GapRemediation).where(GapRemediation.org_id == owner.org_id)).all()
    assert len(rows) == 6 and any(r.playbook_id for r in rows) and any(r.runbook_url for r in rows)
    assert {r.status for r in rows} == {"open", "in_progress", "done", "wont_fix"}
    assert all((r.closed_at is not None) == (r.status in ("done", "wont_fix")) for r in rows)
    assert "Gap remediations: 6 rows" in " ".join(notes)
    assert seed_program(owner.org_id, now) == ["Gap remediations already seeded (nothing duplicated)."]
    rep = registry.build("gap-remediations", owner.org_id, now)
    assert rep.summary["overdue"] >= 1
    rows = {r["control"]: r for r in rep.section("queue").iter_rows()}
    if "SOC2:CC7.4" in rows:  # the demo policy allows the api-gateway restart playbook
        assert rows["SOC2:CC7.4"]["suggestion"] == "playbook"
    kpi = registry.build("kpi-trends", owner.org_id, now)
    assert kpi.summary["remediations_closed"] == 2
