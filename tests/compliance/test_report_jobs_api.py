"""/api/v1/reports: generate (inline and thread execution) → status → download PDF/JSON; the list; bad input,
roles, API-key scopes, other orgs, downloads before the build, Idempotency-Key replays, delete."""
from __future__ import annotations

import io
import json

import pytest
import sqlalchemy as sa

from tests.compliance.report_job_helpers import END, EXPECTED, START, make_report_job, seed_incident_dataset
from tests.platform.test_isolation import org_state
from zentro.audit.models import AuditEvent
from zentro.compliance import report_jobs as jobs
from zentro.compliance import report_registry as registry
from zentro.compliance.models import ReportJob
from zentro.compliance.reporting import to_dict
from zentro.extensions import db
from zentro.platform.storage import get_storage

API = "/api/v1/reports"
RANGE = {"start": START.isoformat(), "end": END.isoformat()}


@pytest.fixture
def inline(app, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_REPORT_JOB_EXECUTION", "inline")


@pytest.fixture
def owner(make_member):
    return make_member("alpha", "owner")


@pytest.fixture
def client(owner, sign_in):
    return sign_in(owner)


@pytest.fixture
def services(app, owner):
    with app.app_context():
        ids = seed_incident_dataset(owner.org_id)
        db.session.remove()
    return ids


def _jobs_count(app, org_id=None):
    with app.app_context():
        q = sa.select(sa.func.count()).select_from(ReportJob)
        if org_id is not None:
            q = q.where(ReportJob.org_id == org_id)
        n = db.session.scalar(q)
        db.session.remove()
    return n


def _state(app, org_id):
    with app.app_context():
        state = org_state(org_id)
        db.session.remove()
    return state


def _generate(client, status=202, **body):
    resp = client.post(f"{API}/generate", json={"kind": "incident-summary", **RANGE, **body})
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp


def _actions(app, org_id):
    with app.app_context():
        out = [e.action for e in db.session.scalars(sa.select(AuditEvent).where(
            AuditEvent.org_id == org_id, AuditEvent.action.startswith("report.")).order_by(AuditEvent.seq))]
        db.session.remove()
    return out


# --- the happy path ----------------------------------------------------------------------------------------

def test_generate_inline_then_download_pdf_and_json(app, inline, owner, client, services):
    resp = _generate(client)
    job = resp.get_json()
    assert resp.headers["Location"] == f"{API}/{job['id']}"
    assert job["status"] == "done" and job["kind"] == "incident-summary" and job["title"] == "Incident summary"
    assert job["params"] == {"start": "2025-06-01T00:00:00Z", "end": "2025-06-08T00:00:00Z", "service_ids": []}
    assert {a["format"] for a in job["artifacts"]} == {"pdf", "json", "csv", "html"}
    assert all(a["size"] > 0 and len(a["sha256"]) == 64 for a in job["artifacts"])

    status = client.get(f"{API}/{job['id']}").get_json()
    assert status["status"] == "done" and status["artifacts"] == job["artifacts"]

    pdf = client.get(f"{API}/{job['id']}/download?format=pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert pdf.headers["Content-Disposition"].startswith('attachment; filename="zentro-incident-summary-alpha-')
    from pypdf import PdfReader

    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "Incident summary" in text and "4 min 30 s" in text and "270" in text  # the MTTA, both ways

    doc = client.get(f"{API}/{job['id']}/download?format=json").get_json()
    assert {k: doc["summary"][k] for k in EXPECTED} == EXPECTED
    with app.app_context():
        direct = to_dict(registry.build("incident-summary", owner.org_id, start=RANGE["start"], end=RANGE["end"]))
        db.session.remove()
    assert doc["summary"] == direct["summary"] and doc["sections"] == direct["sections"]
    csv_ = client.get(f"{API}/{job['id']}/download?format=csv")
    assert csv_.mimetype == "text/csv" and b"MTTA" in csv_.data
    assert _actions(app, owner.org_id) == ["report.requested", "report.generated", "report.downloaded",
                                           "report.downloaded", "report.downloaded"]


def test_service_filter_and_compliance_posture(app, inline, owner, client, services):
    job = _generate(client, service_ids=[services["db"], services["db"]]).get_json()
    assert job["params"]["service_ids"] == [services["db"]]
    doc = client.get(f"{API}/{job['id']}/download?format=json").get_json()
    assert doc["summary"]["by_service"] == {"db": 2}

    posture = client.post(f"{API}/generate", json={"kind": "compliance-posture", "period_days": 30,
                                                   "frameworks": ["soc2", "pci-dss"]})
    assert posture.status_code == 202, posture.get_data(as_text=True)
    body = posture.get_json()
    assert body["status"] == "done" and body["params"]["frameworks"] == ["SOC2", "PCIDSS"]
    doc = client.get(f"{API}/{body['id']}/download?format=json").get_json()
    assert doc["summary"]["frameworks"] == 2
    assert [r["name"] for r in doc["sections"]["frameworks"]["rows"]] == ["SOC 2", "PCI DSS"]


def test_thread_mode_builds_in_the_background(app, monkeypatch, client, services):
    monkeypatch.setitem(app.config, "ZENTRO_REPORT_JOB_EXECUTION", "thread")
    job = _generate(client).get_json()
    assert job["status"] in ("queued", "running", "done")
    for t in list(jobs.threads):
        t.join(timeout=60)
    for _ in range(100):  # bounded: the thread has ended; the row says done at the latest on the first read
        status = client.get(f"{API}/{job['id']}").get_json()["status"]
        if status in ("done", "failed"):
            break
    assert status == "done"
    assert client.get(f"{API}/{job['id']}/download?format=pdf").data.startswith(b"%PDF")


def test_list_is_newest_first_paginated_and_filtered(app, inline, owner, client, services):
    ids = [_generate(client).get_json()["id"] for _ in range(3)]
    with app.app_context():
        failed = make_report_job(owner.org_id, owner.user_id, status="failed", kind="compliance-posture")
        db.session.commit()
        db.session.remove()
    first = client.get(f"{API}?limit=2").get_json()
    second = client.get(f"{API}?limit=2&cursor={first['next_cursor']}").get_json()
    assert [j["id"] for j in first["data"] + second["data"]] == [failed, *ids[::-1]]
    assert second["next_cursor"] is None
    assert [j["id"] for j in client.get(f"{API}?status=failed").get_json()["data"]] == [failed]
    assert [j["id"] for j in client.get(f"{API}?kind=incident-summary").get_json()["data"]] == ids[::-1]
    assert client.get(f"{API}?status=nope").status_code == 400


# --- refusals ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body,expect", [
    ({"kind": "uptime"}, "kind"),
    ({"start": "2025-06-08", "end": "2025-06-01"}, "start must be before end"),
    ({"start": "2024-01-01", "end": "2025-06-01"}, "at most 366 days"),
    ({"start": "1969-12-01", "end": "1970-01-02"}, "1970-01-01"),
    ({"end": "2999-01-01"}, "future"),
    ({"start": "2025-06-01 noon"}, "ISO 8601"),
    ({"start": None, "end": None, "period_days": 0}, "period_days"),
    ({"start": None, "end": None, "period_days": "30"}, "period_days"),
    ({"service_ids": ["1"]}, "service_ids"),
    ({"service_ids": 1}, "service_ids"),
    ({"service_ids": [2_147_483_648]}, "service_ids"),  # beyond INTEGER: refused before any query
    ({"service_ids": [-1898708400837, 5]}, "service_ids"),
    ({"service_ids": [0]}, "service_ids"),
    ({"frameworks": ["soc2"]}, "compliance-posture report only"),
    ({"kind": "compliance-posture", "frameworks": ["sox"]}, "unknown framework"),
    ({"kind": "compliance-posture", "service_ids": [1]}, "incident-summary report only"),
    ({"period_days": 7}, "not all three"),
    ({"format": "pdf"}, "format"),
])
def test_bad_input_is_400_and_creates_nothing(app, inline, owner, client, body, expect):
    before = _state(app, owner.org_id)
    resp = client.post(f"{API}/generate", json={"kind": "incident-summary", **RANGE, **body})
    assert resp.status_code == 400, resp.get_data(as_text=True)
    err = resp.get_json()
    assert err["error_code"] == "VALIDATION_ERROR" and expect in json.dumps(err)
    assert _jobs_count(app) == 0 and _state(app, owner.org_id) == before


def test_another_orgs_service_id_is_refused(app, inline, make_member, client, services):
    other = make_member("bravo", "owner")
    with app.app_context():
        theirs = seed_incident_dataset(other.org_id)["api"]
        db.session.remove()
    resp = client.post(f"{API}/generate", json={"kind": "incident-summary", **RANGE, "service_ids": [services["api"], theirs]})
    assert resp.status_code == 400 and f"Unknown service id(s): {theirs}" in resp.get_json()["detail"]
    assert _jobs_count(app) == 0


def test_malformed_json_is_400(app, client):
    resp = client.post(f"{API}/generate", data="{nope", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.get_json()["error_code"] == "VALIDATION_ERROR"
    assert _jobs_count(app) == 0


def test_viewer_reads_but_cannot_generate_or_delete(app, inline, owner, client, make_member, sign_in, services):
    job = _generate(client).get_json()
    viewer = sign_in(make_member("alpha", "viewer"))
    before = _state(app, owner.org_id)
    resp = viewer.post(f"{API}/generate", json={"kind": "incident-summary", **RANGE})
    assert resp.status_code == 403 and resp.get_json()["error_code"] == "FORBIDDEN"
    assert viewer.delete(f"{API}/{job['id']}").status_code == 403
    assert _state(app, owner.org_id) == before and _jobs_count(app) == 1
    assert viewer.get(f"{API}/{job['id']}").status_code == 200
    assert viewer.get(f"{API}/{job['id']}/download?format=json").status_code == 200
    member = sign_in(make_member("alpha", "member"))
    assert member.post(f"{API}/generate", json={"kind": "incident-summary", **RANGE}).status_code == 202
    assert member.delete(f"{API}/{job['id']}").status_code == 403


def test_api_keys_need_the_reports_scopes(app, inline, owner, make_api_key, services):
    c = app.test_client()
    read_only = {"Authorization": f"Bearer {make_api_key(owner, scopes=['reports:read'])}"}
    other = {"Authorization": f"Bearer {make_api_key(owner, scopes=['incidents:read'])}"}
    writer = {"Authorization": f"Bearer {make_api_key(owner, scopes=['reports:write', 'reports:read'])}"}
    resp = c.post(f"{API}/generate", json={"kind": "incident-summary", **RANGE}, headers=read_only)
    assert resp.status_code == 403 and "reports:write" in resp.get_json()["detail"]
    assert _jobs_count(app) == 0
    assert c.get(API, headers=other).status_code == 403
    created = c.post(f"{API}/generate", json={"kind": "incident-summary", **RANGE}, headers=writer)
    assert created.status_code == 202
    job_id = created.get_json()["id"]
    assert c.get(f"{API}/{job_id}/download?format=pdf", headers=read_only).status_code == 200
    assert c.get(f"{API}/{job_id}/download?format=pdf", headers=other).status_code == 403


def test_another_orgs_report_is_404(app, inline, owner, client, make_member, sign_in, make_api_key, services):
    job = _generate(client).get_json()
    bravo = make_member("bravo", "owner")
    before = _state(app, owner.org_id)
    for c, headers in ((sign_in(bravo), {}), (app.test_client(), {"Authorization": f"Bearer {make_api_key(bravo)}"})):
        for url in (f"{API}/{job['id']}", f"{API}/{job['id']}/download?format=pdf",
                    f"{API}/{job['id']}/download?format=json"):
            resp = c.get(url, headers=headers)
            assert resp.status_code == 404 and resp.get_json()["error_code"] == "NOT_FOUND"
        assert c.delete(f"{API}/{job['id']}", headers=headers).status_code == 404
        assert c.get(API, headers=headers).get_json()["data"] == []
    assert _state(app, owner.org_id) == before


def test_download_before_done_is_409_and_a_bad_format_400(app, owner, client):
    with app.app_context():
        queued = make_report_job(owner.org_id, owner.user_id, status="queued")
        failed = make_report_job(owner.org_id, owner.user_id, status="failed")
        db.session.execute(sa.update(ReportJob).where(ReportJob.id == failed).values(error="OSError: disk full"))
        db.session.commit()
        db.session.remove()
    resp = client.get(f"{API}/{queued}/download?format=pdf")
    assert resp.status_code == 409 and resp.get_json()["error_code"] == "CONFLICT"
    assert "queued" in resp.get_json()["detail"]
    resp = client.get(f"{API}/{failed}/download")
    assert resp.status_code == 409 and "failed: OSError: disk full" in resp.get_json()["detail"]
    assert client.get(f"{API}/{queued}/download?format=docx").status_code == 400
    assert client.delete(f"{API}/{queued}").status_code == 409


def test_a_lost_artifact_is_410(app, inline, client, services):
    job = _generate(client).get_json()
    with app.app_context():
        key = db.session.get(ReportJob, job["id"]).artifacts[0]["key"]
        fmt = db.session.get(ReportJob, job["id"]).artifacts[0]["format"]
        get_storage(app).delete(key)
        db.session.remove()
    resp = client.get(f"{API}/{job['id']}/download?format={fmt}")
    assert resp.status_code == 410 and resp.get_json()["error_code"] == "GONE"


def test_idempotency_key_replays_the_same_job(app, inline, client, services):
    headers = {"Idempotency-Key": "gen-1"}
    body = {"kind": "incident-summary", **RANGE}
    first = client.post(f"{API}/generate", json=body, headers=headers)
    again = client.post(f"{API}/generate", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json()["id"] == first.get_json()["id"] and _jobs_count(app) == 1
    other = client.post(f"{API}/generate", json={**body, "service_ids": []}, headers=headers)
    assert other.status_code == 422 and _jobs_count(app) == 1


def test_admin_deletes_a_report_and_its_files(app, inline, owner, client, make_member, sign_in, services):
    job = _generate(client).get_json()
    with app.app_context():
        keys = [a["key"] for a in db.session.get(ReportJob, job["id"]).artifacts]
        db.session.remove()
    admin = sign_in(make_member("alpha", "admin"))
    assert admin.delete(f"{API}/{job['id']}").status_code == 204
    assert client.get(f"{API}/{job['id']}").status_code == 404
    assert not any(get_storage(app).exists(k) for k in keys)
    assert _actions(app, owner.org_id)[-1] == "report.deleted"


@pytest.mark.parametrize("body", [{"end": "0001-01-01", "start": None}, {"start": "9999-12-31", "period_days": 5,
                                                                          "end": None}])
def test_dates_at_the_edges_of_the_calendar_are_400(app, inline, client, body):
    resp = client.post(f"{API}/generate", json={"kind": "incident-summary", **body})
    assert resp.status_code == 400 and _jobs_count(app) == 0


@pytest.mark.parametrize("slug", ["incident-summary", "compliance-posture"])
@pytest.mark.parametrize("query", ["start=", "end=%20", "start=2026-02-30", "periodDays=0"])
def test_report_previews_refuse_empty_or_impossible_dates(client, slug, query):
    """An empty date is not "no date": leave the parameter out instead (the page form is what maps blanks)."""
    resp = client.get(f"/api/governance/compliance/{slug}?{query}")
    assert resp.status_code == 400 and resp.json["error_code"] == "VALIDATION_ERROR", resp.get_data(as_text=True)
