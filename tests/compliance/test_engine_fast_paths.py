"""The engine's fast paths give exactly what the straightforward computation gives, on a random dataset:

* the weekly trend (``Registers.attestation_states`` / ``inherited_flags``, one pass over the rows) against
  ``attestation_state`` and ``gather_evidence`` per control and week end;
* ``load_registers`` reading column tuples against the ORM rows;
* ``_program.vendor_health_series`` against the per-vendor ``healthy_at`` / ``status_at`` loops;
* ``shared_reads`` (the committee meeting pack's memo) against fresh reads."""
from __future__ import annotations

import datetime as dt
import random

import pytest

from tests.compliance.engine_helpers import NOW, attestation, days_ago, evidence, exception, policy, vendor
from zentro.compliance import engine
from zentro.compliance.catalog import load_catalog
from zentro.compliance.models import Attestation
from zentro.compliance.reports import _program as prog
from zentro.extensions import db

DAY = dt.timedelta(days=1)
WEEKS = 12


@pytest.fixture
def org(app, make_member):
    member = make_member("alpha", "owner")
    with app.app_context():
        yield member.org_id
        db.session.rollback()
        db.session.remove()


def _random_org(org_id: int, seed: int) -> None:
    rng = random.Random(seed)
    cat = load_catalog()
    tags = [t for key in cat.frameworks for t in cat.tags_for(key)[:12]]
    tw = engine.trend_window(NOW, WEEKS)
    week_ends = [tw.week_end(w) for w in range(WEEKS)]
    for tag in tags:
        for _ in range(rng.randint(0, 4)):
            kind = rng.choice(["assigned", "attested", "rejected", "future", "on_week_end"])
            # dates on week ends exactly as well as in between, to exercise the <= / < boundaries
            due = rng.choice(week_ends) if rng.random() < 0.3 else days_ago(rng.uniform(-60, 120))
            created = rng.choice(week_ends) if rng.random() < 0.2 else days_ago(rng.uniform(0, 200))
            if kind in ("attested", "on_week_end"):
                att_at = rng.choice(week_ends) if kind == "on_week_end" else days_ago(rng.uniform(-3, 150))
                valid = rng.choice([None, att_at + rng.randint(0, 120) * DAY,
                                    rng.choice(week_ends), att_at - DAY])
                attestation(org_id, tag, due_at=due, status="attested", attested_at=att_at, valid_until=valid,
                            created_at=created, owner_id=None)
            elif kind == "future":
                attestation(org_id, tag, due_at=due, status="attested", attested_at=days_ago(-2),
                            valid_until=days_ago(-90), created_at=days_ago(-1))
            else:
                attestation(org_id, tag, due_at=due, status=kind, created_at=created)
        if rng.random() < 0.4:
            evidence(org_id, tag, at=days_ago(rng.uniform(0, 150)))
        if rng.random() < 0.05:
            exception(org_id, tag, opened_at=days_ago(rng.uniform(0, 90)), expires_at=days_ago(rng.uniform(-30, 60)))
    policy(org_id, "P", tags[3:9], accepted_at=days_ago(40))
    for i in range(12):
        created = rng.choice(week_ends) if i % 3 == 0 else days_ago(rng.uniform(0, 120))
        expires = rng.choice([None, rng.choice(week_ends), days_ago(rng.uniform(-60, 100))])
        vendor(org_id, f"V{i}", rng.sample(tags, 3), expires=expires, created_at=created,
               next_review_at=rng.choice([None, rng.choice(week_ends), days_ago(rng.uniform(-60, 60))]))
    db.session.commit()


def _straight_trend(snap: engine.Snapshot, key: str) -> list[list[float]]:
    """Per week, every control's score the straightforward way: ``attestation_state`` over every row and
    ``gather_evidence`` with the vendor names, at the week's end."""
    fw = snap.catalog.framework(key)
    tw = snap.trend
    edges = engine.edges_of(snap.catalog)
    tags = {t for c in fw.controls for t in edges[c.tag].equivalents}
    running = {t: snap.last_before_trend[t] for t in tags if t in snap.last_before_trend}
    out = []
    for week in range(tw.weeks):
        for t in tags:
            agg = snap.weekly.get(t, {}).get(week)
            if agg is not None:
                running[t] = engine._newer(running.get(t), agg.last)
        at = tw.week_end(week)
        out.append([engine.score_at(c, engine.gather_evidence(c, snap.catalog, {}, running, snap.registers, at, None),
                                    snap.registers, at) for c in fw.controls])
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_trend_fast_path_matches_the_straightforward_computation(org, seed):
    _random_org(org, seed)
    snap = engine.snapshot(org, 30, NOW, trend_weeks=WEEKS)
    tw = snap.trend
    moments = [tw.week_end(w) for w in range(WEEKS)]
    states = snap.registers.attestation_states(moments)
    flags = snap.registers.inherited_flags(moments)
    for tag, items in snap.registers.attestations.items():
        assert states[tag] == [engine.attestation_state(items, m) for m in moments], tag
    for tag, vendors in snap.registers.vendors_by_tag.items():
        assert flags[tag] == [any(v.valid_at(m) for v in vendors) for m in moments], tag
    for key in snap.catalog.frameworks:
        with_trend = snap.assess(key)
        plain = snap.assess(key, with_trend=False)
        assert [c.to_dict() for c in with_trend.controls] == [c.to_dict() for c in plain.controls]
        straight = _straight_trend(snap, key)
        assert [[with_trend.control_trends[c.tag][w] for c in with_trend.controls] for w in range(WEEKS)] == straight
        for w, point in enumerate(with_trend.trend):
            weights = [c.weight for c in with_trend.controls]
            expected = round(sum(x * s for x, s in zip(weights, straight[w])) / sum(weights), 1)
            assert point.readiness == expected


def test_registers_read_like_the_orm_rows(org):
    _random_org(org, 4)
    regs = engine.load_registers(org)
    rows = db.session.scalars(db.select(Attestation).where(Attestation.org_id == org)).all()
    got = sorted((i for items in regs.attestations.values() for i in items), key=lambda i: i.id)
    assert [tuple(i) for i in got] == [(r.id, r.control, r.status, r.owner_id, r.due_at, r.attested_at,
                                        r.valid_until, r.created_at) for r in sorted(rows, key=lambda r: r.id)]
    assert all(i.created_at.tzinfo is not None for i in got)


def test_vendor_health_series_matches_the_per_vendor_loops(org):
    _random_org(org, 5)
    vendors = prog.load_vendors(org)
    tw = engine.trend_window(NOW, WEEKS)
    moments = [tw.week_end(w) for w in range(WEEKS)] + [NOW]
    expected = []
    for at in moments:
        live = [v for v in vendors if v.created_at <= at]
        expected.append((sum(v.healthy_at(at) for v in live), len(live),
                         sum(v.status_at(at) == "expired" for v in live)))
    assert prog.vendor_health_series(vendors, moments) == expected


def test_shared_reads_memoise_and_match_fresh_reads(org):
    _random_org(org, 6)
    fresh = engine.assess_all(org, 30, NOW, trend_weeks=WEEKS)
    with engine.shared_reads():
        first = engine.load_registers(org)
        assert engine.load_registers(org) is first
        shared = engine.assess_all(org, 30, NOW, trend_weeks=WEEKS)
    assert engine.load_registers(org) is not first
    for key, fr in fresh.items():
        assert [c.to_dict() for c in fr.controls] == [c.to_dict() for c in shared[key].controls]
        assert [p.to_dict() for p in fr.trend] == [p.to_dict() for p in shared[key].trend]
