"""RCA runs over the API: start (202), status transitions and progress, one run at a time per incident
(409, also when two requests race), cancel, the SSE progress stream, the latest run, the plan's
analyses-per-hour quota (429), bad input, roles and scopes."""
from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from zentro.audit.models import AuditEvent
from zentro.audit.service import SYSTEM
from zentro.extensions import db
from zentro.incidents import rca, rca_api
from zentro.incidents.models import RcaRun, TimelineEvent
from zentro.incidents.service import create_incident
from zentro.platform.types import utcnow
from zentro.reliability.models import ChangeEvent, Service

from .rca_helpers import Stepper

STAGE_NAMES = [name for name, _ in rca.STAGES]


class Recorder:
    """Executor that only records what it was given (the run stays queued)."""

    def __init__(self) -> None:
        self.submitted: list[int] = []

    def submit(self, app, run_id: int) -> None:
        self.submitted.append(run_id)


@pytest.fixture
def inline(use_executor):
    return use_executor(rca.InlineExecutor())


@pytest.fixture
def setup(app, make_member, make_api_key, sign_in):
    """Org alpha (free) with a member, a viewer and an incident on checkout, deployed 20 minutes before."""

    def make(plan: str = "free", slug: str = "alpha"):
        member = make_member(slug, "member", plan=plan)
        viewer = make_member(slug, "viewer", plan=plan)
        with app.app_context():
            svc = Service(org_id=member.org_id, name="checkout")
            db.session.add(svc)
            db.session.flush()
            start = utcnow()
            db.session.add(ChangeEvent(org_id=member.org_id, service_id=svc.id, kind="deploy", summary="checkout v2",
                                       occurred_at=start - dt.timedelta(minutes=20)))
            inc = create_incident(member.org_id, title="Checkout 5xx", severity="high", actor=SYSTEM,
                                  service_id=svc.id, started_at=start)
            db.session.commit()
            incident_id = inc.id
            db.session.remove()
        return {"member": member, "viewer": viewer, "incident_id": incident_id, "key": make_api_key(member),
                "client": sign_in(member), "viewer_client": sign_in(viewer), "viewer_key": make_api_key(viewer)}

    return make


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def read_run(app, run_id: int) -> dict:
    with app.app_context():
        try:
            run = db.session.get(RcaRun, run_id)
            return rca.run_json(run) | {"running_incident_id": run.running_incident_id}
        finally:
            db.session.remove()


def count(app, model, *where) -> int:
    with app.app_context():
        try:
            return db.session.scalar(select(func.count()).select_from(model).where(*where))
        finally:
            db.session.remove()


def audit_actions(app, org_id: int) -> list[AuditEvent]:
    with app.app_context():
        try:
            rows = db.session.scalars(select(AuditEvent).where(AuditEvent.org_id == org_id, AuditEvent.action.like("rca.%"))
                                      .order_by(AuditEvent.seq)).all()
            db.session.expunge_all()
            return rows
        finally:
            db.session.remove()


def rca_events(app, incident_id: int) -> list[TimelineEvent]:
    with app.app_context():
        try:
            rows = db.session.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == incident_id,
                                                                  TimelineEvent.kind == "rca").order_by(TimelineEvent.id)).all()
            db.session.expunge_all()
            return rows
        finally:
            db.session.remove()


def parse_sse(text: str) -> list[tuple[str, object]]:
    """[(event name | 'comment' | 'retry', data)] in order."""
    out = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event, data = "message", []
        for line in block.split("\n"):
            if line.startswith(":"):
                out.append(("comment", line[1:].strip()))
            elif line.startswith("retry:"):
                out.append(("retry", int(line[6:])))
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            out.append((event, json.loads("\n".join(data))))
    return out


# ------------------------------------------------------------------------------------------ runs

def test_run_succeeds_with_hypotheses_timeline_and_audit(app, setup, inline):
    s = setup()
    resp = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run")
    assert resp.status_code == 202, resp.get_data(as_text=True)
    run = resp.get_json()
    assert run["status"] == "succeeded" and run["progress"] == 100 and run["incident_id"] == s["incident_id"]
    top = run["hypotheses"][0]
    assert top["rank"] == 1 and top["category"] == "change" and "checkout v2" in top["title"]
    assert run["created_by"] == s["member"].email and run["started_at"] and run["finished_at"]
    assert run["summary"]["window_hours"] == 6 and run["summary"]["changes_examined"] == 1

    latest = s["client"].get(f"/api/incidents/{s['incident_id']}/rca/latest")
    assert latest.status_code == 200 and latest.get_json() == run
    by_id = s["client"].get(f"/api/v1/rca-runs/{run['id']}", headers=bearer(s["key"]))
    assert by_id.get_json() == run

    events = rca_events(app, s["incident_id"])
    assert len(events) == 1 and top["title"] in events[0].body and events[0].data["run_id"] == run["id"]
    assert events[0].data["top"]["confidence"] == top["confidence"]
    audit = audit_actions(app, s["member"].org_id)
    assert [a.action for a in audit] == ["rca.requested", "rca.completed"]
    assert audit[0].actor_label == s["member"].email
    for a in audit:
        assert {"SOC2:CC7.4", "ISO27001:A.5.27"} <= set(a.control_tags.split())
        assert a.target_id == str(s["incident_id"])
    assert read_run(app, run["id"])["running_incident_id"] is None


def test_stepped_run_moves_through_every_stage_in_the_database(app, setup, use_executor):
    s = setup()
    stepper = use_executor(Stepper())
    resp = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run", json={"window_hours": 3})
    assert resp.status_code == 202 and resp.get_json()["status"] in ("queued", "running")
    run_id = resp.get_json()["id"]
    seen = []
    for expected in STAGE_NAMES:
        assert stepper.next_stage() == expected
        snap = read_run(app, run_id)
        assert snap["status"] == "running" and snap["stage"] == expected
        assert snap["running_incident_id"] == s["incident_id"]
        seen.append(snap["progress"])
        stepper.release()
    stepper.finish()
    assert seen == sorted(seen) and len(set(seen)) == len(seen) and seen[0] == 0 and seen[-1] < 100
    done = read_run(app, run_id)
    assert done["status"] == "succeeded" and done["progress"] == 100 and done["stage"] == "done"
    assert done["summary"]["window_hours"] == 3 and done["running_incident_id"] is None


def test_the_default_thread_executor_runs_in_the_background(app, setup):
    s = setup()
    resp = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run", headers=bearer(s["key"]))
    assert resp.status_code == 202
    executor = rca.get_executor(app)
    assert isinstance(executor, rca.ThreadExecutor)
    for t in executor.threads:
        t.join(timeout=30)
    assert read_run(app, resp.get_json()["id"])["status"] == "succeeded"


def test_second_run_while_one_is_running_is_409(app, setup, use_executor):
    s = setup()
    stepper = use_executor(Stepper())
    first = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run")
    assert first.status_code == 202
    assert stepper.next_stage() == STAGE_NAMES[0]
    second = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run", headers={"Idempotency-Key": "again-1"})
    assert second.status_code == 409 and second.get_json()["error_code"] == "CONFLICT"
    assert count(app, RcaRun) == 1
    stepper.finish()
    third = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run")
    assert third.status_code == 202
    stepper.finish()
    assert read_run(app, third.get_json()["id"])["status"] == "succeeded"


def test_two_racing_requests_start_exactly_one_run(app, setup, use_executor, make_api_key):
    s = setup()
    recorder = use_executor(Recorder())
    keys = [s["key"], make_api_key(s["member"], name="second key")]
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def start(key: str) -> None:
        client = app.test_client()
        barrier.wait(timeout=30)
        statuses.append(client.post(f"/api/incidents/{s['incident_id']}/rca/run", headers=bearer(key)).status_code)

    threads = [threading.Thread(target=start, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(statuses) == [202, 409]
    assert count(app, RcaRun) == 1 and len(recorder.submitted) == 1


def test_the_unique_running_incident_id_is_the_backstop(app, setup, use_executor, monkeypatch):
    s = setup()
    use_executor(Recorder())
    assert s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run").status_code == 202
    monkeypatch.setattr(rca, "_active_run", lambda incident_id: None)  # as if both checked before either inserted
    resp = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run")
    assert resp.status_code == 409 and resp.get_json()["error_code"] == "CONFLICT"
    assert count(app, RcaRun) == 1
    assert [a.action for a in audit_actions(app, s["member"].org_id)] == ["rca.requested"]


def test_an_abandoned_run_does_not_block_the_incident_forever(app, setup, use_executor):
    s = setup()
    use_executor(Recorder())
    with app.app_context():
        old = utcnow() - rca.STALE_AFTER - dt.timedelta(minutes=1)
        stale = RcaRun(org_id=s["member"].org_id, incident_id=s["incident_id"], running_incident_id=s["incident_id"],
                       status="running", created_at=old, updated_at=old)
        db.session.add(stale)
        db.session.commit()
        stale_id = stale.id
        db.session.remove()
    resp = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run")
    assert resp.status_code == 202
    gone = read_run(app, stale_id)
    assert gone["status"] == "failed" and "Abandoned" in gone["error"] and gone["running_incident_id"] is None


def test_a_failing_analysis_marks_the_run_failed(app, setup, inline, monkeypatch):
    s = setup()

    def boom(self):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(rca.Analysis, "changes", boom)
    resp = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run")
    assert resp.status_code == 202
    run = resp.get_json()
    assert run["status"] == "failed" and "RuntimeError" in run["error"] and "disk on fire" not in run["error"]
    assert read_run(app, run["id"])["running_incident_id"] is None
    assert [a.action for a in audit_actions(app, s["member"].org_id)] == ["rca.requested", "rca.failed"]
    assert rca_events(app, s["incident_id"]) == []


# ---------------------------------------------------------------------------------------- cancel

def test_cancel_a_running_run(app, setup, use_executor):
    s = setup()
    stepper = use_executor(Stepper())
    run_id = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run").get_json()["id"]
    assert stepper.next_stage() == STAGE_NAMES[0]
    stepper.release()
    assert stepper.next_stage() == STAGE_NAMES[1]
    resp = s["client"].post(f"/api/v1/rca-runs/{run_id}/cancel", headers=bearer(s["key"]))
    assert resp.status_code == 202 and resp.get_json()["status"] == "cancelled"
    stepper.finish()  # the worker notices and stops without writing anything
    run = read_run(app, run_id)
    assert run["status"] == "cancelled" and run["hypotheses"] == [] and run["running_incident_id"] is None
    assert run["stage"] == "cancelled"
    events = rca_events(app, s["incident_id"])
    assert [e.body for e in events] == [f"RCA run #{run_id} cancelled"]
    assert [a.action for a in audit_actions(app, s["member"].org_id)] == ["rca.requested", "rca.cancelled"]
    again = s["client"].post(f"/api/v1/rca-runs/{run_id}/cancel")
    assert again.status_code == 409 and again.get_json()["error_code"] == "CONFLICT"
    assert s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run").status_code == 202


def test_cancel_a_queued_run_before_it_starts(app, setup, use_executor):
    s = setup()
    recorder = use_executor(Recorder())
    run_id = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run").get_json()["id"]
    assert read_run(app, run_id)["status"] == "queued"
    assert s["client"].post(f"/api/v1/rca-runs/{run_id}/cancel").status_code == 202
    rca.execute_run(app, recorder.submitted[0])  # a late worker picks it up: nothing happens
    run = read_run(app, run_id)
    assert run["status"] == "cancelled" and run["started_at"] is None and run["hypotheses"] == []


def test_cancel_a_finished_run_is_409(app, setup, inline):
    s = setup()
    run_id = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run").get_json()["id"]
    resp = s["client"].post(f"/api/v1/rca-runs/{run_id}/cancel")
    assert resp.status_code == 409 and resp.get_json()["error_code"] == "CONFLICT"
    assert "not running" in resp.get_json()["detail"]
    assert read_run(app, run_id)["status"] == "succeeded"
    assert [a.action for a in audit_actions(app, s["member"].org_id)] == ["rca.requested", "rca.completed"]


# ------------------------------------------------------------------------------------------- SSE

def test_progress_stream_of_a_finished_run(app, setup, inline):
    s = setup()
    run = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run").get_json()
    resp = s["client"].get(f"/api/v1/rca-runs/{run['id']}/progress", headers=bearer(s["key"]))
    assert resp.status_code == 200 and resp.mimetype == "text/event-stream"
    assert resp.headers["Cache-Control"] == "no-cache"
    events = parse_sse(resp.get_data(as_text=True))
    assert events[0][0] == "retry"
    assert events[1] == ("progress", {"status": "succeeded", "progress": 100, "stage": "done"})
    assert events[-1][0] == "done" and events[-1][1] == run and len(events) == 3


def test_progress_stream_follows_a_run_to_done(app, setup, use_executor, monkeypatch):
    s = setup()
    stepper = use_executor(Stepper())
    run_id = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run").get_json()["id"]
    assert stepper.next_stage() == STAGE_NAMES[0]
    remaining = list(STAGE_NAMES[1:])

    def step(_seconds):  # each poll interval lets the worker run one stage
        stepper.release()
        if remaining:
            assert stepper.next_stage() == remaining.pop(0)
        else:
            stepper.threads[0].join(timeout=30)

    monkeypatch.setattr(rca_api, "sse_wait", step)
    events = parse_sse(s["client"].get(f"/api/v1/rca-runs/{run_id}/progress").get_data(as_text=True))
    progress = [data for name, data in events if name == "progress"]
    assert [p["stage"] for p in progress] == [*STAGE_NAMES, "done"]
    assert [p["progress"] for p in progress] == sorted(p["progress"] for p in progress)
    assert progress[-1] == {"status": "succeeded", "progress": 100, "stage": "done"}
    assert events[-1][0] == "done" and events[-1][1]["status"] == "succeeded" and events[-1][1]["hypotheses"]
    assert [name for name, _ in events].count("done") == 1


def test_progress_stream_reads_what_another_worker_writes(app, setup, use_executor, monkeypatch, database_url):
    """The run is executed elsewhere (here: rows written through a separate engine); the stream sees it
    because it polls the database, and it holds no connection between polls."""
    s = setup()
    use_executor(Recorder())
    run_id = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run").get_json()["id"]
    other = sa.create_engine(sa.engine.make_url(database_url))
    writes = [
        {"status": "running", "progress": 40, "stage": "upstream"},
        {"status": "running", "progress": 40, "stage": "upstream"},  # unchanged: no event
        {"status": "succeeded", "progress": 100, "stage": "done", "running_incident_id": None},
    ]
    pool_in_use = []

    def other_worker(_seconds):
        pool_in_use.append(db.engine.pool.checkedout())
        with other.begin() as conn:
            conn.execute(sa.update(RcaRun.__table__).where(RcaRun.__table__.c.id == run_id).values(**writes.pop(0)))

    monkeypatch.setattr(rca_api, "sse_wait", other_worker)
    try:
        events = parse_sse(s["client"].get(f"/api/v1/rca-runs/{run_id}/progress").get_data(as_text=True))
    finally:
        other.dispose()
    assert [d for n, d in events if n == "progress"] == [
        {"status": "queued", "progress": 0, "stage": "queued"},
        {"status": "running", "progress": 40, "stage": "upstream"},
        {"status": "succeeded", "progress": 100, "stage": "done"},
    ]
    assert events[-1][0] == "done" and events[-1][1]["id"] == run_id
    assert pool_in_use and set(pool_in_use) == {0}


def test_progress_stream_keeps_alive_and_closes_after_its_max_duration(app, setup, use_executor, monkeypatch):
    s = setup()
    use_executor(Recorder())  # never executed: the run stays queued
    run_id = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run").get_json()["id"]
    clock = [1000.0]
    monkeypatch.setattr(rca_api, "sse_clock", lambda: clock[0])
    monkeypatch.setattr(rca_api, "sse_wait", lambda seconds: clock.__setitem__(0, clock[0] + seconds))
    monkeypatch.setattr(rca_api, "SSE_MAX_SECONDS", 60.0)
    events = parse_sse(s["client"].get(f"/api/v1/rca-runs/{run_id}/progress").get_data(as_text=True))
    names = [n for n, _ in events]
    assert names.count("progress") == 1 and "done" not in names
    assert [d for n, d in events if n == "comment"] == ["keep-alive"] * 3  # at 15, 30 and 45 s
    assert events[-1][0] == "timeout" and events[-1][1]["status"] == "queued"


def test_progress_of_another_orgs_run_is_404(app, setup, inline, make_member, make_api_key):
    s = setup()
    run_id = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run").get_json()["id"]
    stranger = make_api_key(make_member("bravo", "owner", plan="enterprise"))
    for url in (f"/api/v1/rca-runs/{run_id}/progress", f"/api/v1/rca-runs/{run_id}",
                f"/api/incidents/{s['incident_id']}/rca/latest"):
        resp = app.test_client().get(url, headers=bearer(stranger))
        assert resp.status_code == 404 and resp.get_json()["error_code"] == "NOT_FOUND"
    resp = app.test_client().post(f"/api/v1/rca-runs/{run_id}/cancel", headers=bearer(stranger))
    assert resp.status_code == 404
    assert read_run(app, run_id)["status"] == "succeeded"


# -------------------------------------------------------------------------- latest, quota, input

def test_latest_is_404_before_any_run(setup):
    s = setup()
    resp = s["client"].get(f"/api/incidents/{s['incident_id']}/rca/latest")
    assert resp.status_code == 404 and resp.get_json()["error_code"] == "NOT_FOUND"
    assert "no RCA run" in resp.get_json()["detail"]
    assert s["client"].get("/api/incidents/999999/rca/latest").get_json()["detail"] == "Incident not found"
    assert s["client"].get("/api/v1/rca-runs/999999").status_code == 404


def test_free_plan_allows_two_analyses_per_hour(app, setup, inline):
    s = setup("free")
    for _ in range(2):
        assert s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run").status_code == 202
    resp = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run")
    assert resp.status_code == 429 and resp.get_json()["error_code"] == "RATE_LIMIT_EXCEEDED"
    assert 0 < int(resp.headers["Retry-After"]) <= 3600
    assert "free plan allows 2" in resp.get_json()["detail"]
    assert count(app, RcaRun) == 2


def test_runs_older_than_an_hour_do_not_count(app, setup, inline):
    s = setup("free")
    with app.app_context():
        old = utcnow() - dt.timedelta(minutes=61)
        for _ in range(5):
            db.session.add(RcaRun(org_id=s["member"].org_id, incident_id=s["incident_id"], status="succeeded",
                                  created_at=old, updated_at=old))
        db.session.commit()
        db.session.remove()
    assert s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run").status_code == 202


@pytest.mark.parametrize("plan,allowed", [("pro", 20), ("enterprise", None)])
def test_paid_plans_quota(app, setup, inline, plan, allowed):
    s = setup(plan)
    with app.app_context():
        at = utcnow() - dt.timedelta(minutes=30)
        for _ in range(20 if allowed else 50):
            db.session.add(RcaRun(org_id=s["member"].org_id, incident_id=s["incident_id"], status="succeeded",
                                  created_at=at, updated_at=at))
        db.session.commit()
        db.session.remove()
    resp = s["client"].post(f"/api/incidents/{s['incident_id']}/rca/run", headers=bearer(s["key"]))
    if allowed is None:
        assert resp.status_code == 202
    else:
        assert resp.status_code == 429 and resp.get_json()["error_code"] == "RATE_LIMIT_EXCEEDED"
        assert 1700 <= int(resp.headers["Retry-After"]) <= 1801  # the oldest run leaves the hour in ~30 min


@pytest.mark.parametrize("kwargs,status", [
    ({"json": {"window_hours": 0}}, 400),
    ({"json": {"window_hours": 73}}, 400),
    ({"json": {"window_hours": "six"}}, 400),
    ({"json": {"window_hours": 6, "model": "gpt"}}, 400),
    ({"json": [1, 2]}, 400),
    ({"data": "{not json", "content_type": "application/json"}, 400),
    ({"data": "window_hours=6", "content_type": "application/x-www-form-urlencoded"}, 415),
])
def test_bad_input_changes_nothing(app, setup, inline, kwargs, status):
    s = setup()
    resp = app.test_client().post(f"/api/incidents/{s['incident_id']}/rca/run", headers=bearer(s["key"]), **kwargs)
    assert resp.status_code == status and resp.get_json()["error_code"] in ("VALIDATION_ERROR", "UNSUPPORTED_MEDIA_TYPE")
    assert count(app, RcaRun) == 0


def test_unknown_incident_and_run_are_404(app, setup, inline):
    s = setup()
    assert s["client"].post("/api/incidents/999999/rca/run").status_code == 404
    assert s["client"].post("/api/v1/rca-runs/999999/cancel").status_code == 404
    assert s["client"].get("/api/incidents/abc/rca/latest").status_code == 404
    assert count(app, RcaRun) == 0


def test_viewers_and_read_only_keys_cannot_start_or_cancel(app, setup, inline, make_api_key):
    s = setup()
    url = f"/api/incidents/{s['incident_id']}/rca/run"
    assert s["viewer_client"].post(url).status_code == 403
    assert app.test_client().post(url, headers=bearer(s["viewer_key"])).status_code == 403
    read_only = make_api_key(s["member"], ["incidents:read"])
    resp = app.test_client().post(url, headers=bearer(read_only))
    assert resp.status_code == 403 and "incidents:write" in resp.get_json()["detail"]
    assert count(app, RcaRun) == 0
    run_id = s["client"].post(url).get_json()["id"]
    assert s["viewer_client"].post(f"/api/v1/rca-runs/{run_id}/cancel").status_code == 403
    # reading is fine for a viewer and a read-only key
    assert s["viewer_client"].get(f"/api/incidents/{s['incident_id']}/rca/latest").status_code == 200
    assert app.test_client().get(f"/api/v1/rca-runs/{run_id}", headers=bearer(read_only)).status_code == 200
    assert app.test_client().post(url).status_code == 401
