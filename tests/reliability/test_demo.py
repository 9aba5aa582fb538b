"""The demo seed: idempotent, and it tells the stories the pages are meant to show."""
from __future__ import annotations

from sqlalchemy import func, select

from zentro.extensions import db
from zentro.incidents.models import Incident
from zentro.reliability import attack_paths, service
from zentro.reliability.demo import seed_reliability
from zentro.reliability.models import ChangeEvent, Service, ServiceDependency, SliSample

from .helpers import T0


def counts(org_id):
    return {m.__tablename__: db.session.scalar(select(func.count()).select_from(m).where(m.org_id == org_id))
            for m in (Service, ServiceDependency, SliSample, ChangeEvent, Incident)}


def test_seed_is_idempotent_and_realistic(app, ctx, owner):
    org = owner.org_id
    done = seed_reliability(org, now=T0)
    assert "service payments-api" in done and "edge api-gateway → payments-api" in done
    first = counts(org)
    assert first["services"] == 9 and first["service_dependencies"] == 10 and first["sli_samples"] > 8 * 700
    assert seed_reliability(org, now=T0) == []
    assert counts(org) == first

    by = {s.name: s for s in service.all_services(org)}
    summary = {r["name"]: r for r in service.budget_summary(org, now=T0)["services"]}
    assert summary["search-service"]["burn_rate_6h"] >= 6  # the burn in progress
    assert summary["payments-api"]["status"] == "warning"  # the outage nine days ago left < 25 %
    assert summary["auth-service"]["source"] == "derived_from_incidents"
    assert summary["api-gateway"]["status"] == "ok"

    burns = db.session.scalars(select(Incident).where(Incident.org_id == org, Incident.source == "slo")).all()
    assert [(i.dedupe_key, i.severity) for i in burns] == [(f"slo-burn:{by['search-service'].id}:page-6h", "critical")]

    paths = attack_paths.simulate(org)["paths"]
    assert paths and paths[0]["entry"]["name"] == "partner-portal"  # the critical Struts finding, internet-facing
    deploys = db.session.scalars(select(ChangeEvent.ref).where(ChangeEvent.service_id == by["payments-api"].id)).all()
    assert set(deploys) == {"v2.14.0", "v2.13.4"}


def test_seed_fills_in_what_is_missing(app, ctx, owner):
    org = owner.org_id
    seed_reliability(org, now=T0)
    gone = db.session.scalar(select(ServiceDependency).where(ServiceDependency.org_id == org).limit(1))
    db.session.delete(gone)
    db.session.commit()
    assert len(seed_reliability(org, now=T0)) == 1
    assert counts(org)["service_dependencies"] == 10
