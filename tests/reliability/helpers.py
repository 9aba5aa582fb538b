"""Plain helpers for the reliability tests."""
from __future__ import annotations

import datetime as dt

from zentro.audit.service import Actor
from zentro.extensions import db
from zentro.reliability.models import Service, ServiceDependency, SliSample

T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)
TEST_ACTOR = Actor("system", "", "test")


def iso(d: dt.datetime) -> str:
    return d.isoformat().replace("+00:00", "Z")


def add_service(app, org_id: int, name: str, *, tier: int = 2, environment: str = "production",
                internet_facing: bool = False, slo_target: float = 99.9) -> int:
    with app.app_context():
        svc = Service(org_id=org_id, name=name, tier=tier, environment=environment, internet_facing=internet_facing,
                      slo_target=slo_target)
        db.session.add(svc)
        db.session.commit()
        sid = svc.id
        db.session.remove()
    return sid


def add_edge(app, org_id: int, a: int, b: int) -> None:
    with app.app_context():
        db.session.add(ServiceDependency(org_id=org_id, service_id=a, depends_on_id=b))
        db.session.commit()
        db.session.remove()


def add_samples(app, org_id: int, service_id: int, samples) -> None:
    """samples: (window_start, window_end, good, total) tuples, stored as they are (no alerting)."""
    with app.app_context():
        for ws, we, good, total in samples:
            db.session.add(SliSample(org_id=org_id, service_id=service_id, window_start=ws, window_end=we, good=good,
                                     total=total))
        db.session.commit()
        db.session.remove()
