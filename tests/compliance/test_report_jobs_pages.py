"""Developers › Generated reports (/reports/generated): the list with status and download links, the generate form
(inline build, refused input re-rendered with the reason and nothing created), viewers see no form and cannot post,
a queued row polls itself over HTMX, another org's row is 404."""
from __future__ import annotations

import sqlalchemy as sa

from tests.compliance.report_job_helpers import make_report_job, seed_incident_dataset
from zentro.compliance.models import ReportJob
from zentro.extensions import db

PAGE = "/reports/generated"


def _jobs(app):
    with app.app_context():
        rows = [(j.kind, j.status, j.params) for j in db.session.scalars(sa.select(ReportJob).order_by(ReportJob.id))]
        db.session.remove()
    return rows


def test_generate_from_the_form_and_download(app, monkeypatch, make_member, sign_in):
    monkeypatch.setitem(app.config, "ZENTRO_REPORT_JOB_EXECUTION", "inline")
    owner = make_member("alpha", "owner")
    with app.app_context():
        ids = seed_incident_dataset(owner.org_id)
        db.session.remove()
    client = sign_in(owner)
    page = client.get(PAGE)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Generate a report" in html and "No reports generated yet." in html
    assert 'href="/reports/generated"' in html and 'aria-current="page"' in html  # linked from the nav
    resp = client.post(PAGE, data={"kind": "incident-summary", "start": "2025-06-01", "end": "2025-06-07",
                                   "service_ids": [str(ids["api"])]})
    assert resp.status_code == 302
    ((kind, status, params),) = _jobs(app)
    assert (kind, status) == ("incident-summary", "done")
    assert params == {"start": "2025-06-01T00:00:00Z", "end": "2025-06-08T00:00:00Z", "service_ids": [ids["api"]]}
    html = client.get(PAGE).get_data(as_text=True)
    assert "queued" in html and "Incident summary" in html  # the flash
    assert 'href="/api/v1/reports/1/download?format=pdf"' in html and "hx-trigger" not in html
    pdf = client.get("/api/v1/reports/1/download?format=pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")

    posture = client.post(PAGE, data={"kind": "compliance-posture", "start": "2025-05-01", "end": "2025-06-30",
                                      "frameworks": ["soc2", "hipaa"]})
    assert posture.status_code == 302 and _jobs(app)[-1][2]["frameworks"] == ["SOC2", "HIPAA"]


def test_refused_form_input_is_shown_and_creates_nothing(app, make_member, sign_in):
    client = sign_in(make_member("alpha", "owner"))
    for data, reason in (({"kind": "incident-summary", "start": "2025-06-09", "end": "2025-06-01"}, "start must be before end"),
                         ({"kind": "incident-summary", "start": "yesterday"}, "is not a date"),
                         ({"kind": "nope"}, "Choose a report kind"),
                         ({"kind": "incident-summary", "service_ids": ["999"]}, "Unknown service id(s): 999"),
                         # beyond INTEGER (PostgreSQL would refuse the query): unknown, not a server error
                         ({"kind": "incident-summary", "service_ids": ["99999999999"]},
                          "Unknown service id(s): 99999999999")):
        resp = client.post(PAGE, data=data)
        assert resp.status_code == 400 and reason in resp.get_data(as_text=True), data
    assert _jobs(app) == []


def test_viewers_see_the_list_but_no_form(app, make_member, sign_in):
    owner = make_member("alpha", "owner")
    with app.app_context():
        make_report_job(owner.org_id, owner.user_id, status="failed")
        db.session.execute(sa.update(ReportJob).values(error="OSError: disk full"))
        db.session.commit()
        db.session.remove()
    viewer = sign_in(make_member("alpha", "viewer"))
    html = viewer.get(PAGE).get_data(as_text=True)
    assert "Generate a report" not in html and "OSError: disk full" in html and "failed" in html
    assert viewer.post(PAGE, data={"kind": "incident-summary"}).status_code == 403
    assert len(_jobs(app)) == 1


def test_a_queued_row_polls_itself_and_other_orgs_rows_are_404(app, make_member, sign_in):
    owner = make_member("alpha", "owner")
    with app.app_context():
        job_id = make_report_job(owner.org_id, owner.user_id, status="queued")
        db.session.commit()
        db.session.remove()
    client = sign_in(owner)
    row = client.get(f"{PAGE}/{job_id}/row")
    html = row.get_data(as_text=True)
    assert row.status_code == 200 and f'hx-get="/reports/generated/{job_id}/row"' in html and "every 2s" in html
    assert "building" in html
    other = sign_in(make_member("bravo", "owner"))
    assert other.get(f"{PAGE}/{job_id}/row").status_code == 404
    assert "ALPHA-PRIVATE" not in other.get(PAGE).get_data(as_text=True)
