"""Incident exports. The Markdown is rendered with markdown-it-py (CommonMark + GFM tables) and the HTML
inspected: the expected headings and tables, user text coming out exactly as typed (no stray Markdown,
no HTML). The evidence pack's audit rows are checked against the chain the way an auditor would."""
from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from markdown_it import MarkdownIt
from sqlalchemy import select

from zentro.audit.models import AuditEvent
from zentro.audit.service import Actor
from zentro.extensions import db
from zentro.incidents import exports, service
from zentro.incidents.api import IncidentEvidenceOut
from zentro.incidents.models import Alert, RcaRun
from zentro.platform.types import iso

from .incident_helpers import T0, Html, make_incident, squash

MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])
MIN = dt.timedelta(minutes=1)
HOSTILE_TITLE = ("# Not a heading | pipe `code` <script>alert(1)</script> *bold* _em_ [link](http://evil.example) "
                 "~~strike~~ &amp; back\\slash")
HOSTILE_NOTE = ("1. not a list\n- not a bullet\n> not a quote\n    not code\n---\n| a | b |\n"
                "<img src=x onerror=alert(1)>\n\nSecond paragraph with **stars**")
FOREIGN_TAGS = {"script", "img", "a", "em", "strong", "s", "del", "blockquote", "pre", "hr", "h3", "h4", "ul"}


def render(markdown: str) -> Html:
    return Html(MD.render(markdown))


@pytest.mark.parametrize("text", [
    "1. one", "1) one", "- dash", "+ plus", "* star", "# hash", "> quote", "===", "---", "    indented code",
    "<div>html</div>", "&copy; entity", "*a* _b_ **c**", "`tick`", "[a](http://b.example)", "![i](http://x.example/i.png)",
    "a | b | c", "~~gone~~", "back\\slash \\*", "<http://auto.example>", "line one\nline two", "x" * 3 + "|",
])
def test_md_text_renders_as_itself(text):
    para = render(exports.md_text(text))
    assert para.tags == ["p"], (text, MD.render(exports.md_text(text)))
    assert para.text.strip() == squash(text)
    cell = render(exports.md_table(["Field", "Value"], [["x", exports.md_text(text)]]))
    assert cell.tables[0][1] == ["x", squash(text)]


def test_md_block_keeps_paragraphs_and_line_breaks():
    out = render(exports.md_block(HOSTILE_NOTE))
    assert not FOREIGN_TAGS & set(out.tags) and "ol" not in out.tags and "table" not in out.tags
    assert [squash(p) for p in out.paragraphs] == [squash(HOSTILE_NOTE.split("\n\n")[0]),
                                                   "Second paragraph with **stars**"]
    assert out.tags.count("br") == 6
    assert render(exports.md_block("", "_None._")).tags == ["p", "em"]


@pytest.fixture
def record(app, make_member):
    """An incident with a hostile title, description and note, a few alerts folded in, two severity
    changes, a commander, and a known timeline (times injected)."""
    owner = make_member("alpha", "owner")
    sre = make_member("alpha", "member", email="sre@alpha.example")
    with app.app_context():
        ingest = Actor("ingest_token", "9", "Prom | *team*")
        inc = service.open_or_absorb(owner.org_id, dedupe_key="am:latency", title=HOSTILE_TITLE, severity="medium",
                                     actor=ingest, source="alertmanager", now=T0).incident
        inc.description = HOSTILE_NOTE
        service.open_or_absorb(owner.org_id, dedupe_key="am:latency", title=HOSTILE_TITLE, severity="high",
                               actor=ingest, source="alertmanager", now=T0 + 2 * MIN)
        service.open_or_absorb(owner.org_id, dedupe_key="am:latency", title=HOSTILE_TITLE, severity="low",
                               actor=ingest, source="alertmanager", now=T0 + 3 * MIN)
        db.session.flush()
        for n in range(2):
            db.session.add(Alert(org_id=owner.org_id, incident_id=inc.id, source="alertmanager", dedupe_key="am:latency",
                                 delivery_key=f"d{n}", status="firing", severity="high", title=f"p99 > 2s ({n})",
                                 service_name="payments-api", labels={"n": n}, raw={"n": n},
                                 starts_at=T0 + n * MIN, received_at=T0 + n * MIN))
        user = Actor("user", str(sre.user_id), sre.email)
        service.transition(inc, "acknowledged", user, now=T0 + 4 * MIN)
        service.assign_commander(inc, sre.user_id, user)
        service.set_severity(inc, "critical", user)
        service.add_note(inc, HOSTILE_NOTE, ingest, now=T0 + 10 * MIN)
        service.transition(inc, "mitigated", user, now=T0 + 38 * MIN)
        service.transition(inc, "resolved", user, now=T0 + 2 * 60 * MIN + 14 * MIN)
        service.transition(inc, "closed", user, now=T0 + 3 * 60 * MIN)
        db.session.commit()
        inc_id = inc.id
        db.session.remove()
    return owner, sre, inc_id


def test_incident_markdown_renders_cleanly(app, record):
    owner, sre, inc_id = record
    with app.app_context():
        rec = exports.gather(owner.org_id, inc_id)
        text = exports.render_incident_markdown(rec, T0 + 5 * 60 * MIN)
        n_events = service.timeline_count(owner.org_id, inc_id)
    out = render(text)
    assert out.headings == [("h1", f"INC-1: {squash(HOSTILE_TITLE)}"), ("h2", "Description"), ("h2", "Timeline")]
    assert not FOREIGN_TAGS & set(out.tags), sorted(set(out.tags))
    header, timeline = out.tables
    assert all(len(r) == 2 for r in header)
    fields = dict(header[1:])
    assert (fields["Reference"], fields["Status"], fields["Severity"], fields["Commander"]) == (
        "INC-1", "closed", "critical", sre.email)
    assert fields["Alerts folded in"] == "3" and fields["Dedupe key"] == "am:latency"
    assert timeline[0] == ["Time (UTC)", "Event", "Actor", "Details"]
    assert all(len(r) == 4 for r in timeline) and len(timeline) == n_events + 1
    note = next(r for r in timeline if r[1] == "Note")
    assert note[2] == "Prom | *team*" and note[3] == squash(HOSTILE_NOTE)
    assert squash(HOSTILE_NOTE.split("\n\n")[0]) in [squash(p) for p in out.paragraphs]


def test_review_computes_the_narrative_from_the_record(app, record):
    owner, sre, inc_id = record
    with app.app_context():
        db.session.add(RcaRun(org_id=owner.org_id, incident_id=inc_id, status="succeeded", progress=100,
                              finished_at=T0 + 20 * MIN, hypotheses=[
                                  {"title": "Deploy 2026.11.3 | pool *change*", "confidence": 0.72,
                                   "evidence": [{"kind": "change", "id": 3}, "timeline:5"]},
                                  {"title": "Upstream auth latency", "confidence": 0.2, "evidence": []}]))
        db.session.commit()
        rec = exports.gather(owner.org_id, inc_id)
        text = exports.render_review_markdown(rec, T0 + 5 * 60 * MIN)
        audit_rows = db.session.scalars(select(AuditEvent).where(
            AuditEvent.target_type == "incident", AuditEvent.target_id == str(inc_id)).order_by(AuditEvent.seq)).all()
        hashes = [r.hash for r in audit_rows]
    out = render(text)
    assert [h for h in out.headings] == [
        ("h1", f"Post-incident review: INC-1 {squash(HOSTILE_TITLE)}"), ("h2", "Summary"), ("h2", "Description"),
        ("h2", "Timeline"), ("h2", "Root-cause hypotheses"), ("h2", "Execution evidence"), ("h2", "Audit snapshot")]
    assert not (FOREIGN_TAGS - {"strong"}) & set(out.tags)
    summary = squash(out.paragraphs[1])
    for fact in ("INC-1 started 2026-03-02 09:00:00 UTC at medium severity.",
                 "It was resolved after 2 h 14 min and has been closed.",
                 "It was acknowledged 4 min after it started.",
                 "Impact was mitigated 38 min after the start.",
                 "3 alerts were folded into it.",
                 "Severity changed 2 times (medium → high → critical).",
                 f"The incident commander was {sre.email}.",
                 "Responders added 1 note."):
        assert fact in summary, (fact, summary)
    measures = dict(out.tables[0][1:])
    assert (measures["Time to acknowledge"], measures["Time to mitigate"], measures["Time to resolve"]) == (
        "4 min", "38 min", "2 h 14 min")
    assert measures["Severity"] == "critical (started at medium)" and measures["Severity changes"] == "2"
    assert "ol" in out.tags
    assert "1. Deploy 2026.11.3 | pool *change* (confidence 72 %) — evidence: change 3, timeline:5" not in out.text
    assert ("Deploy 2026.11.3 | pool *change* (confidence 72 %) — evidence: change 3, timeline:5"
            in squash(out.text))
    assert "No playbook dry-runs, approvals or executions are recorded for this incident" in out.text
    audit_table = out.tables[-1]
    assert audit_table[0] == ["Seq", "Time (UTC)", "Actor", "Action", "Controls", "Hash"]
    assert [r[-1] for r in audit_table[1:]] == hashes
    assert f"{len(hashes)} of {len(hashes)} hashes match" in out.text


def test_review_of_an_ongoing_incident(app, make_member):
    owner = make_member("alpha", "owner")
    inc_id = make_incident(app, owner.org_id, "Queue backlog", "low", now=T0)
    with app.app_context():
        rec = exports.gather(owner.org_id, inc_id)
        out = render(exports.render_review_markdown(rec, T0 + 90 * MIN))
    summary = squash(out.paragraphs[1])
    assert "It is still open after 1 h 30 min." in summary and "It was never acknowledged." in summary
    assert "No alerts were folded into it." in summary and "No incident commander was assigned." in summary
    assert "No root-cause analysis has been run for this incident." in out.text
    assert dict(out.tables[0][1:])["Duration"] == "1 h 30 min (ongoing)"


def _canonical_hash(row: dict, org_id: int) -> str:
    """The auditor's side of HASH_RECIPE, written from the recipe, not from the code."""
    payload = {"org_id": org_id, "seq": row["seq"], "created_at": row["created_at"],
               "actor": [row["actor_type"], row["actor_id"], row["actor_label"]], "action": row["action"],
               "target": [row["target_type"], row["target_id"]], "control_tags": row["control_tags"],
               "request_id": row["request_id"], "data": row["data"], "prev_hash": row["prev_hash"]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_evidence_pack(app, record, sign_in):
    owner, sre, inc_id = record
    resp = sign_in(owner).get(f"/api/incidents/{inc_id}/evidence")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="INC-1-evidence.json"'
    pack = resp.get_json()
    IncidentEvidenceOut.model_validate(pack)  # exactly the documented shape
    assert pack["incident"]["ref"] == "INC-1" and pack["incident"]["title"] == HOSTILE_TITLE
    with app.app_context():
        assert len(pack["timeline"]) == pack["timeline_total"] == service.timeline_count(owner.org_id, inc_id)
        chain = {r.seq: r.hash for r in db.session.scalars(
            select(AuditEvent).where(AuditEvent.org_id == owner.org_id))}
    assert [e["kind"] for e in pack["timeline"]][:2] == ["created", "alert"]  # oldest first
    assert [a["title"] for a in pack["alerts"]] == ["p99 > 2s (0)", "p99 > 2s (1)"] and pack["alerts_total"] == 2
    assert pack["rca_runs"] == []
    assert pack["automations"]["dry_runs"] == pack["automations"]["executions"] == []
    assert "No playbook dry-runs" in pack["automations"]["note"]
    rows = pack["audit"]["rows"]
    assert [r["action"] for r in rows] == [
        "incident.created", "incident.acknowledged", "incident.commander_assigned", "incident.severity_changed",
        "incident.note_added", "incident.mitigated", "incident.resolved", "incident.closed"]
    for row in rows:
        assert row["hash_matches_content"] is True
        assert _canonical_hash(row, owner.org_id) == row["hash"] == chain[row["seq"]]
        assert row["prev_hash"] == chain.get(row["seq"] - 1, "0" * 64)
        assert "SOC2:CC7.4" in row["control_tags"]


def test_evidence_pack_lists_rca_runs_and_reports_a_tampered_row(app, record, make_api_key):
    owner, _, inc_id = record
    with app.app_context():
        db.session.add(RcaRun(org_id=owner.org_id, incident_id=inc_id, status="failed", error="no data"))
        row = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "incident.note_added"))
        row.data = row.data.replace('"chars"', '"characters"')  # someone edits the log behind Zentro's back
        db.session.commit()
        seq = row.seq
        db.session.remove()
    key = make_api_key(owner, ["incidents:read"])
    pack = app.test_client().get(f"/api/incidents/{inc_id}/evidence", headers={"X-API-Key": key}).get_json()
    assert [(r["status"], r["error"]) for r in pack["rca_runs"]] == [("failed", "no data")]
    assert [r["seq"] for r in pack["audit"]["rows"] if not r["hash_matches_content"]] == [seq]


@pytest.mark.parametrize("kind,filename", [("export", "INC-1.md"), ("review", "INC-1-review.md")])
def test_markdown_downloads(app, record, make_member, sign_in, kind, filename):
    owner, _, inc_id = record
    viewer = sign_in(make_member("alpha", "viewer"))  # reading is enough
    resp = viewer.get(f"/api/incidents/{inc_id}/{kind}")
    assert resp.status_code == 200 and resp.mimetype == "text/markdown"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="{filename}"'
    html = render(resp.get_data(as_text=True))
    assert html.headings[0][0] == "h1" and "INC-1" in html.headings[0][1]
    assert "script" not in html.tags


@pytest.mark.parametrize("kind", ["export", "evidence", "review"])
def test_exports_of_another_org_are_404_and_need_a_scope(app, record, make_member, make_api_key, kind):
    _, _, inc_id = record
    other = make_member("bravo", "owner")
    client = app.test_client()
    resp = client.get(f"/api/incidents/{inc_id}/{kind}", headers={"Authorization": f"Bearer {make_api_key(other)}"})
    assert resp.status_code == 404 and "Not a heading" not in resp.get_data(as_text=True)
    owner = make_member("alpha", "owner")
    no_scope = make_api_key(owner, ["audit:read"])
    assert client.get(f"/api/incidents/{inc_id}/{kind}", headers={"Authorization": f"Bearer {no_scope}"}).status_code == 403
    assert client.get(f"/api/incidents/{inc_id}/{kind}").status_code == 401


def test_fmt_duration():
    cases = {0: "0 s", 59: "59 s", 60: "1 min", 3599: "59 min", 3600: "1 h", 3660: "1 h 1 min", 86400: "1 d",
             90000: "1 d 1 h", -5: "0 s"}
    for seconds, text in cases.items():
        assert exports.fmt_duration(dt.timedelta(seconds=seconds)) == text
    assert exports.fmt_duration(None) == "—" and iso(T0) == "2026-03-02T09:00:00Z"
