"""Report-job test data: ``make_report_job`` (the isolation harness's factory for ReportJob) and a hand-built
incident dataset whose MTTA/MTTR, counts and SLO attainment are worked out by hand in ``EXPECTED``."""
from __future__ import annotations

import datetime as dt

from zentro.audit.service import SYSTEM
from zentro.compliance.models import ReportJob
from zentro.extensions import db
from zentro.incidents.service import create_incident
from zentro.reliability.models import Service, SliSample

UTC = dt.timezone.utc
START = dt.datetime(2025, 6, 1, tzinfo=UTC)
END = dt.datetime(2025, 6, 8, tzinfo=UTC)  # a 7-day period, [START, END)
RUN_AT = dt.datetime(2025, 6, 10, 9, 0, tzinfo=UTC)


def make_report_job(org_id: int, user_id: int, *, status: str = "failed", kind: str = "incident-summary") -> int:
    """A job row of the org without artifacts (default: a failed one, so every route has a consistent row to read,
    list, refuse to download (409) and delete). The caller commits."""
    job = ReportJob(org_id=org_id, kind=kind, status=status, requested_by_id=user_id,
                    error="ALPHA-PRIVATE seeded job: not built" if status == "failed" else "",
                    requested_by="ALPHA-PRIVATE requester",
                    params={"start": "2025-06-01T00:00:00Z", "end": "2025-06-08T00:00:00Z", "service_ids": []},
                    artifacts=[], attempts=1 if status != "queued" else 0)
    db.session.add(job)
    db.session.flush()
    return job.id


def _incident(org_id, title, severity, service, started, ack=None, resolved=None, closed=None):
    inc = create_incident(org_id, title=title, severity=severity, actor=SYSTEM,
                          service_id=service.id if service else None, started_at=started, now=started)
    if ack is not None:
        inc.acknowledged_at, inc.status = started + dt.timedelta(seconds=ack), "acknowledged"
    if resolved is not None:
        inc.resolved_at, inc.status = started + dt.timedelta(seconds=resolved), "resolved"
    if closed is not None:
        inc.closed_at, inc.status = started + dt.timedelta(seconds=closed), "closed"
    return inc


def seed_incident_dataset(org_id: int) -> dict[str, int]:
    """Two services and seven incidents, five of them in [START, END). Returns the service ids."""
    api = Service(org_id=org_id, name="api", slo_target=99.9, created_at=START - dt.timedelta(days=90))
    dbs = Service(org_id=org_id, name="db", slo_target=99.0, created_at=START - dt.timedelta(days=90))
    db.session.add_all([api, dbs])
    db.session.flush()
    at = lambda day, hour: dt.datetime(2025, 6, day, hour, tzinfo=UTC)  # noqa: E731
    _incident(org_id, "Before the period", "critical", api, START - dt.timedelta(minutes=1), ack=30, resolved=60)
    _incident(org_id, "API 5xx spike", "critical", api, at(1, 10), ack=300, resolved=3600)
    _incident(org_id, "API latency", "high", api, at(2, 12), ack=600, resolved=7200)
    _incident(org_id, "DB replica lag", "medium", dbs, at(3, 8), ack=120, closed=1800)
    _incident(org_id, "Unowned disk alert", "low", None, at(5, 0))
    _incident(org_id, "DB primary down", "critical", dbs, at(6, 6), ack=60, resolved=600)
    _incident(org_id, "At the end (excluded)", "high", api, END, ack=10, resolved=20)
    # the api service reports SLI events for the whole period: 50 bad of 100 000
    db.session.add(SliSample(org_id=org_id, service_id=api.id, window_start=START, window_end=END, good=99_950,
                             total=100_000))
    db.session.commit()
    return {"api": api.id, "db": dbs.id}


# Worked out by hand from the dataset above.
EXPECTED = {
    "incidents": 5, "resolved": 4, "open": 1, "acknowledged": 4,
    "response_seconds": {"MTTA": {"count": 4, "mean": 270.0, "median": 210.0, "p90": 600.0},  # TTAs 60 120 300 600
                         "MTTR": {"count": 4, "mean": 3300.0, "median": 2700.0, "p90": 7200.0}},  # 600 1800 3600 7200
    "by_severity": {"critical": 2, "high": 1, "medium": 1, "low": 1},
    "by_service": {"api": 2, "db": 2, "(no service)": 1},
    "services_meeting_slo": 2, "services_with_slo_data": 2,
    "mtta": "4 min 30 s", "mttr": "55 min",
}
# api: SLI 99 950 / 100 000 good → 99.95 %, budget 100 events, 50 used; db: no samples, 10 critical minutes of
# 10 080 → 99.9008 %, budget 100.8 minutes, 9.9 % used.
EXPECTED_SLO = {"api": (99.95, True, 50.0, "sli"), "db": (99.9008, True, 9.9, "derived_from_incidents")}
