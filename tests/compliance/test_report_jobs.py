"""Report jobs, service level: the incident-summary figures pinned on a hand-built dataset, an empty period, the
compliance-posture report on seeded compliance data, the claim (two workers build a job once), failures (no
artifacts, error kept), stale jobs requeued, and the scheduler job."""
from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
import sqlalchemy as sa

from tests.compliance import engine_helpers as eh
from tests.compliance.report_job_helpers import END, EXPECTED, EXPECTED_SLO, RUN_AT, START, seed_incident_dataset
from zentro.audit.models import AuditEvent
from zentro.audit.service import SYSTEM
from zentro.compliance import report_jobs as jobs
from zentro.compliance import report_registry as registry
from zentro.compliance.models import ReportJob
from zentro.compliance.reporting import to_dict
from zentro.extensions import db
from zentro.platform.storage import get_storage


@pytest.fixture
def owner(make_member):
    return make_member("alpha", "owner")


def summary_report(org_id, **params):
    return registry.build("incident-summary", org_id, RUN_AT, start=START.isoformat(), end=END.isoformat(), **params)


def test_incident_summary_figures_on_the_hand_built_dataset(ctx, owner):
    ids = seed_incident_dataset(owner.org_id)
    doc = to_dict(summary_report(owner.org_id))
    s = doc["summary"]
    assert {k: s[k] for k in EXPECTED} == EXPECTED
    slo_rows = {r["service"]: (r["attainment"], r["met"], r["budget_used_pct"], r["source"])
                for r in doc["sections"]["slo"]["rows"]}
    assert slo_rows == EXPECTED_SLO
    sev = {r["severity"]: r for r in doc["sections"]["severity"]["rows"]}
    assert (sev["critical"]["incidents"], sev["critical"]["mtta_minutes"], sev["critical"]["mttr_minutes"]) == (2, 3.0, 35.0)
    assert (sev["low"]["open"], sev["low"]["mtta_minutes"]) == (1, None)
    assert [r["ref"] for r in doc["sections"]["incidents"]["rows"]] == ["INC-2", "INC-3", "INC-4", "INC-5", "INC-6"]
    times = {(r["measure"], r["scope"]): r["mean_seconds"] for r in doc["sections"]["response_times"]["rows"]}
    assert times[("MTTA", "all")] == 270.0 and times[("MTTR", "critical")] == 2100.0

    only_db = to_dict(summary_report(owner.org_id, services=str(ids["db"])))["summary"]
    assert (only_db["incidents"], only_db["by_service"]) == (2, {"db": 2})
    assert only_db["response_seconds"]["MTTR"] == {"count": 2, "mean": 1200.0, "median": 1200.0, "p90": 1800.0}


def test_incident_summary_charts_daily_buckets_stacked_by_severity(ctx, owner):
    seed_incident_dataset(owner.org_id)
    rep = summary_report(owner.org_id)
    chart = next(c for c in rep.charts if c.key == "incidents")
    assert chart.labels == [f"2025-06-0{d}" for d in range(1, 8)] and chart.stacked
    crit = next(s for s in chart.series if s.name == "critical")
    assert crit.values == [1.0, 0, 0, 0, 0, 1.0, 0]
    slo_chart = next(c for c in rep.charts if c.key == "slo")
    assert slo_chart.labels == ["api", "db"] and slo_chart.series[0].values == [50.0, 9.9]
    assert slo_chart.every_label  # services are names: with many, their labels slant rather than drop out


def test_an_empty_period_renders_and_says_so(ctx, owner):
    rep = registry.build("incident-summary", owner.org_id, RUN_AT, start="2024-01-01", end="2024-02-01")
    assert rep.summary["incidents"] == 0 and rep.summary["response_seconds"]["MTTA"]["mean"] is None and rep.summary["mtta"] == "–"
    assert "No incidents started in this period." in rep.notes
    from zentro.compliance import renderers

    pdf = renderers.to_pdf(rep)
    assert pdf.startswith(b"%PDF")


def test_the_period_is_checked(ctx, owner):
    from zentro.platform.errors import ApiError

    for params in ({"start": "2025-06-08", "end": "2025-06-01"}, {"start": "2024-01-01", "end": "2025-06-01"},
                   {"end": "2030-01-01"}):
        with pytest.raises(ApiError) as exc:
            registry.build("incident-summary", owner.org_id, RUN_AT, **params)
        assert exc.value.status == 400


def test_compliance_posture_on_seeded_compliance_data(ctx, owner):
    now = eh.NOW
    eh.evidence(owner.org_id, "SOC2:CC6.1", "SOC2:CC7.2", at=eh.days_ago(3), n=3)
    eh.evidence(owner.org_id, "SOC2:CC8.1", at=eh.days_ago(10))
    db.session.commit()
    rep = registry.build("compliance-posture", owner.org_id, now, start=eh.days_ago(28).isoformat(),
                         end=now.isoformat(), frameworks="soc2")
    doc = to_dict(rep)
    from zentro.compliance import engine

    direct = engine.assess(owner.org_id, "SOC2", 28, now)
    assert doc["summary"]["readiness"] == direct.readiness and doc["summary"]["frameworks"] == 1
    assert doc["summary"]["gaps"] == len(direct.gaps) and doc["summary"]["trend_weeks"] == 4
    assert [r["name"] for r in doc["sections"]["frameworks"]["rows"]] == ["SOC 2"]
    assert len(doc["sections"]["trend"]["rows"]) == 4
    assert {r["control"] for r in doc["sections"]["gaps"]["rows"]} == {g.tag for g in direct.gaps}
    every = registry.build("compliance-posture", owner.org_id, now, periodDays=28, end=now.isoformat())
    assert every.summary["frameworks"] == 9


# --- jobs ----------------------------------------------------------------------------------------------------

def _job(org_id, kind="incident-summary", **kw):
    params = jobs.resolve_params(org_id, kind, start=START.isoformat(), end=END.isoformat(), now=RUN_AT, **kw)
    return jobs.create_job(org_id, kind, params, SYSTEM, now=RUN_AT)


def _row(job_id):
    """The job as it is now (a detached copy; the read transaction is ended so workers can write)."""
    from types import SimpleNamespace

    db.session.expire_all()
    row = db.session.get(ReportJob, job_id)
    out = None if row is None else SimpleNamespace(**{c.key: getattr(row, c.key) for c in ReportJob.__table__.c})
    db.session.rollback()
    return out


def test_a_job_builds_once_and_stores_every_format(app, ctx, owner):
    seed_incident_dataset(owner.org_id)
    job_id = _job(owner.org_id)
    assert jobs.execute(app, job_id, RUN_AT) is True
    assert jobs.execute(app, job_id, RUN_AT) is False  # already claimed: nothing happens
    job = _row(job_id)
    assert job.status == "done" and job.attempts == 1 and job.error == ""
    store = get_storage(app)
    by_fmt = {a["format"]: a for a in job.artifacts}
    assert set(by_fmt) == {"pdf", "json", "csv", "html"}
    import hashlib

    for fmt, a in by_fmt.items():
        assert a["key"] == f"reports/org-{owner.org_id}/{job_id}-incident-summary.{fmt}"
        data = store.read(a["key"])
        assert len(data) == a["size"] and hashlib.sha256(data).hexdigest() == a["sha256"]
    doc = json.loads(store.read(by_fmt["json"]["key"]))
    assert {k: doc["summary"][k] for k in EXPECTED} == EXPECTED
    actions = [e.action for e in db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.org_id == owner.org_id, AuditEvent.action.startswith("report.")).order_by(AuditEvent.seq))]
    assert actions == ["report.requested", "report.generated"]


def test_two_concurrent_workers_build_a_job_once(app, ctx, owner, monkeypatch):
    seed_incident_dataset(owner.org_id)
    job_id = _job(owner.org_id)
    db.session.remove()
    built, real = [], jobs.render_all
    gate = threading.Barrier(2)

    def counting(report, org_name):
        built.append(threading.current_thread().name)
        return real(report, org_name)

    monkeypatch.setattr(jobs, "render_all", counting)
    real_claim, results = jobs.claim, []

    def racing_claim(jid, now):
        gate.wait(timeout=10)  # both workers reach the claim before either makes it
        return real_claim(jid, now)

    monkeypatch.setattr(jobs, "claim", racing_claim)
    workers = [threading.Thread(target=lambda: results.append(jobs.run_pending(app, RUN_AT)), name=f"w{i}")
               for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert len(built) == 1
    assert sorted(r["built"] for r in results) == [0, 1] and sorted(r["skipped"] for r in results) == [0, 1]
    job = _row(job_id)
    assert job.status == "done" and job.attempts == 1


def test_a_failing_build_ends_failed_with_the_error_and_no_artifacts(app, ctx, owner, monkeypatch):
    job_id = _job(owner.org_id)
    real_put = get_storage(app).put
    puts = []

    def put_then_break(key, data):
        puts.append(key)
        out = real_put(key, data)
        if len(puts) == 2:
            raise OSError("disk full")
        return out

    monkeypatch.setattr(get_storage(app), "put", put_then_break)
    jobs.execute(app, job_id, RUN_AT)
    job = _row(job_id)
    assert job.status == "failed" and job.error == "OSError: disk full" and job.artifacts == []
    assert puts and not any(get_storage(app).exists(k) for k in puts)  # what was stored is removed again
    failed = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.org_id == owner.org_id,
                                                           AuditEvent.action == "report.failed"))
    assert failed is not None and "disk full" in json.loads(failed.data)["error"]


def test_a_build_that_raises_fails_the_job(app, ctx, owner, monkeypatch):
    job_id = _job(owner.org_id)
    d = registry.get("incident-summary")

    def boom(ctx_):
        raise ValueError("the figures do not add up")

    monkeypatch.setattr(d, "build", boom)
    jobs.execute(app, job_id, RUN_AT)
    job = _row(job_id)
    assert (job.status, job.error, job.artifacts) == ("failed", "ValueError: the figures do not add up", [])


def test_stale_running_jobs_are_requeued_then_failed(app, ctx, owner):
    seed_incident_dataset(owner.org_id)
    job_id = _job(owner.org_id)
    assert jobs.claim(job_id, RUN_AT)  # a worker claimed it and died
    assert jobs.run_pending(app, RUN_AT + dt.timedelta(minutes=5)) == {"requeued": 0, "built": 0, "skipped": 0}
    assert _row(job_id).status == "running"
    out = jobs.run_pending(app, RUN_AT + dt.timedelta(minutes=11))
    assert out["requeued"] == 1 and out["built"] == 1
    job = _row(job_id)
    assert job.status == "done" and job.attempts == 2

    stuck = _job(owner.org_id)
    db.session.execute(sa.update(ReportJob).where(ReportJob.id == stuck).values(
        status="running", attempts=jobs.MAX_ATTEMPTS, updated_at=RUN_AT))
    db.session.commit()
    jobs.run_pending(app, RUN_AT + dt.timedelta(minutes=11))
    job = _row(stuck)
    assert job.status == "failed" and "Abandoned" in job.error


def test_the_scheduler_job_builds_queued_jobs(app, ctx, owner):
    from zentro import jobs as scheduled

    seed_incident_dataset(owner.org_id)
    job_id = _job(owner.org_id)
    scheduled.load(app)
    from zentro.platform import scheduler

    assert scheduler.JOBS["report-jobs"].seconds == 5
    detail = scheduled.report_jobs_job(RUN_AT)
    assert detail == "report jobs: requeued 0, built 1, skipped 0"
    assert _row(job_id).status == "done"


def test_deleting_a_job_removes_its_files(app, ctx, owner):
    seed_incident_dataset(owner.org_id)
    job_id = _job(owner.org_id)
    jobs.execute(app, job_id, RUN_AT)
    keys = [a["key"] for a in _row(job_id).artifacts]
    jobs.delete_job(app, owner.org_id, job_id, SYSTEM)
    assert _row(job_id) is None and not any(get_storage(app).exists(k) for k in keys)
