"""The demo incidents: realistic, through the service (timeline + audit), idempotent."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from zentro.audit.models import AuditEvent
from zentro.audit.service import verify_chain
from zentro.extensions import db
from zentro.incidents import service
from zentro.incidents.demo import TITLES, seed_incidents
from zentro.incidents.models import Alert, Incident

from .incident_helpers import make_service

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)


def test_seed_incidents_is_realistic_audited_and_idempotent(app, ctx, make_member):
    owner = make_member("acme", "owner")
    sre = make_member("acme", "member")
    payments = make_service(app, owner.org_id, "payments-api")
    assert seed_incidents(owner.org_id, now=NOW) == 5
    assert seed_incidents(owner.org_id, now=NOW) == 0  # nothing duplicated
    incs = {i.title: i for i in db.session.scalars(select(Incident).where(Incident.org_id == owner.org_id))}
    assert set(incs) == set(TITLES)
    assert {i.status for i in incs.values()} == {"open", "acknowledged", "mitigated", "resolved", "closed"}
    latency = incs[TITLES[0]]
    assert (latency.service_id, latency.commander_id, latency.alert_count) == (payments, sre.user_id, 3)
    assert incs[TITLES[1]].severity == "critical" and incs[TITLES[4]].legal_hold
    assert incs[TITLES[3]].service_id is None  # no such service in this org: none is invented
    for inc in incs.values():
        events = service.timeline(owner.org_id, inc.id)
        assert [e.created_at for e in events] == sorted(e.created_at for e in events)
        assert all(e.created_at <= NOW for e in events)
        n_alerts = db.session.scalar(select(func.count()).select_from(Alert).where(Alert.incident_id == inc.id))
        assert n_alerts == sum(1 for e in events if e.kind == "alert")
        audited = db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.target_type == "incident", AuditEvent.target_id == str(inc.id)))
        assert audited >= 1
    assert verify_chain(owner.org_id).ok
