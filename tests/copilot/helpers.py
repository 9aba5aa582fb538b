"""Seed data for copilot tests: an org with a tier-0 service, a live incident with a timeline, an RCA run,
a past similar incident, a playbook and a pending approval; ``Seed`` keeps the ids the answers must cite."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from zentro.audit.service import SYSTEM
from zentro.automations.models import Approval, Playbook
from zentro.extensions import db
from zentro.incidents.models import RcaRun
from zentro.incidents.service import add_note, create_incident, transition
from zentro.reliability.models import Service

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)


@dataclass
class Seed:
    service_id: int
    other_service_id: int
    incident_id: int
    incident_number: int
    past_id: int
    note_id: int
    run_id: int
    playbook_id: int
    approval_id: int


def seed_org(app, org_id: int) -> Seed:
    with app.app_context():
        svc = Service(org_id=org_id, name="checkout", tier=0, runbook_url="https://runbooks.example/checkout")
        other = Service(org_id=org_id, name="search", tier=2)
        db.session.add_all([svc, other])
        db.session.flush()
        past = create_incident(org_id, title="Checkout latency spike after deploy", severity="high", actor=SYSTEM,
                               service_id=svc.id)
        past.started_at = NOW - dt.timedelta(days=20)
        transition(past, "resolved", SYSTEM, note="Rolled back release 41", now=NOW - dt.timedelta(days=20, hours=-1))
        inc = create_incident(org_id, title="Checkout latency spike", severity="high", actor=SYSTEM, service_id=svc.id)
        inc.started_at = NOW - dt.timedelta(minutes=30)
        note = add_note(inc, "p99 at 4 s since 11:30", SYSTEM, now=NOW - dt.timedelta(minutes=20))
        db.session.flush()
        run = RcaRun(org_id=org_id, incident_id=inc.id, status="succeeded", progress=100, finished_at=NOW,
                     hypotheses=[{"rank": 1, "title": "Deploy of checkout 42", "category": "change", "confidence": 0.82,
                                  "detail": "", "factors": [],
                                  "evidence": [{"type": "timeline_event", "id": note.id, "summary": "p99 note",
                                                "incident_id": inc.id},
                                               {"type": "incident", "id": past.id, "summary": "past spike"}]},
                                 {"rank": 2, "title": "Similar past incident", "category": "similar_incident",
                                  "confidence": 0.4, "detail": "", "factors": [],
                                  "evidence": [{"type": "incident", "id": 999_999, "summary": "purged"}]}])
        playbook = Playbook(org_id=org_id, name="Restart checkout", steps=[
            {"action": "restart", "service_id": svc.id, "params": {}}])
        unrelated = Playbook(org_id=org_id, name="Scale search", steps=[
            {"action": "scale", "service_id": other.id, "params": {"replicas": 4}}])
        db.session.add_all([run, playbook, unrelated])
        db.session.flush()
        approval = Approval(org_id=org_id, incident_id=inc.id, playbook_id=playbook.id, plan_hash="a" * 64,
                            action_key="restart:checkout", summary="Restart checkout", status="pending")
        db.session.add(approval)
        db.session.commit()
        seed = Seed(svc.id, other.id, inc.id, inc.number, past.id, note.id, run.id, playbook.id, approval.id)
        db.session.remove()
    return seed


def refs(body: dict) -> set[tuple[str, object]]:
    return {(r["type"], r["id"]) for r in body["references"]}


def sse_events(raw: str) -> list[tuple[str, dict]]:
    out = []
    for block in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def make_copilot_thread(org_id: int, user_id: int, mark: str = "ALPHA-PRIVATE") -> int:
    """A thread of ``user_id`` with one question and one answer (tenant-isolation factory: flushes only)."""
    from zentro.copilot.models import CopilotMessage, CopilotThread

    thread = CopilotThread(org_id=org_id, user_id=user_id, title=f"{mark} thread")
    db.session.add(thread)
    db.session.flush()
    db.session.add_all([CopilotMessage(org_id=org_id, thread_id=thread.id, role="user", content=f"{mark} question"),
                        CopilotMessage(org_id=org_id, thread_id=thread.id, role="assistant", content=f"{mark} answer",
                                       mode="guided", references=[])])
    db.session.flush()
    return thread.id
