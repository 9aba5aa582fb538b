"""The cross-request cache of derived compliance data: every write path to a source row (ORM, Core bulk, raw SQL,
another org, a rollback) is seen by the next read, values outside the watched tables (owner e-mails, committee
settings) are checked on every hit, and an unchanged org is answered from the cache."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from zentro.accounts.models import User
from zentro.compliance import derived_cache, engine
from zentro.compliance import obligations as obl
from zentro.compliance.models import Attestation, Vendor
from zentro.extensions import db

from tests.compliance import analytics_helpers as ah
from tests.compliance import engine_helpers as eh

NOW = dt.datetime(2026, 11, 4, 12, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def _empty_cache():
    derived_cache.clear()
    yield
    derived_cache.clear()


def keys(org_id: int, **kw) -> set[str]:
    """Keys of the org's obligations from its registers (scheduled bundles depend on ``now`` only)."""
    return {o.key for o in obl.load(org_id, NOW, **kw) if o.kind != "bundle"}


def installed_triggers() -> set[str]:
    if db.engine.dialect.name == "postgresql":
        q = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    else:
        q = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    return {name for (name,) in db.session.execute(sa.text(q))}


def test_every_watched_table_has_its_triggers(ctx):
    expected = {f"zentro_rev_{t}_{e}" for t in derived_cache.WATCHED_TABLES for e in ("insert", "update", "delete")}
    assert expected <= installed_triggers()


def test_an_unchanged_org_is_answered_from_the_cache(ctx, make_member):
    org = make_member("acme").org_id
    eh.attestation(org, "SOC2:CC6.1", due_at=NOW + 3 * DAY)
    db.session.commit()
    first = keys(org)
    misses = derived_cache.stats["misses"]
    hits = derived_cache.stats["hits"]
    assert keys(org) == first and keys(org, until=NOW + 30 * DAY) == first
    assert derived_cache.stats["misses"] == misses and derived_cache.stats["hits"] == hits + 2


@pytest.mark.parametrize("how", ["orm", "core", "raw_sql"])
def test_a_change_by_any_write_path_is_seen_by_the_next_read(ctx, make_member, how):
    org = make_member("acme").org_id
    a = eh.attestation(org, "SOC2:CC6.1", due_at=NOW + 3 * DAY)
    db.session.commit()
    assert keys(org, include_done=True) >= {f"attestation:{a.id}"}
    before = derived_cache.revision(org)
    if how == "orm":
        row = db.session.get(Attestation, a.id)
        row.status, row.attested_at, row.valid_until = "attested", NOW - DAY, NOW + 90 * DAY
    elif how == "core":
        db.session.execute(sa.update(Attestation).where(Attestation.id == a.id)
                           .values(status="attested", attested_at=NOW - DAY, valid_until=NOW + 90 * DAY))
    else:
        db.session.execute(sa.text("UPDATE attestations SET status = 'attested', attested_at = due_at, "
                                   "valid_until = due_at WHERE id = :id"), {"id": a.id})
    db.session.commit()
    assert derived_cache.revision(org) != before
    assert f"attestation-renewal:{a.id}" in keys(org)
    assert f"attestation:{a.id}" not in keys(org)


def test_bulk_inserts_and_deletes_are_seen(ctx, make_member):
    org = make_member("acme").org_id
    assert keys(org) == set()
    db.session.execute(sa.insert(Vendor), [{"org_id": org, "name": f"v{i}", "risk_tier": "high", "category": "saas",
                                            "inherited_controls": ["SOC2:CC6.4"], "next_review_at": NOW + i * DAY}
                                           for i in range(1, 4)])
    db.session.commit()
    assert len(keys(org)) == 3
    db.session.execute(sa.delete(Vendor).where(Vendor.org_id == org))
    db.session.commit()
    assert keys(org) == set()


def test_a_rolled_back_change_never_comes_back_from_the_cache(ctx, make_member):
    org = make_member("acme").org_id
    eh.attestation(org, "SOC2:CC6.1", due_at=NOW + 3 * DAY)
    db.session.commit()
    assert len(keys(org)) == 1
    eh.attestation(org, "SOC2:CC6.2", due_at=NOW + 4 * DAY)  # uncommitted: this transaction sees it ...
    assert len(keys(org)) == 2
    db.session.rollback()  # ... and after the rollback nobody does, even once the next change commits
    eh.attestation(org, "SOC2:CC6.3", due_at=NOW + 5 * DAY)
    db.session.commit()
    got = {o.title for o in obl.load(org, NOW, kinds=["attestation"])}
    assert got == {"Attest SOC2:CC6.1", "Attest SOC2:CC6.3"}


def test_another_orgs_writes_leave_this_orgs_entry_alone(ctx, make_member):
    mine = make_member("acme").org_id
    theirs = make_member("globex").org_id
    eh.attestation(mine, "SOC2:CC6.1", due_at=NOW + 3 * DAY)
    db.session.commit()
    mine_before = keys(mine)
    revision = derived_cache.revision(mine)
    eh.attestation(theirs, "SOC2:CC6.2", due_at=NOW + 3 * DAY)
    db.session.commit()
    assert derived_cache.revision(mine) == revision
    misses = derived_cache.stats["misses"]
    assert keys(mine) == mine_before and derived_cache.stats["misses"] == misses
    assert len(keys(theirs)) == 1


def test_owner_email_and_committee_effort_are_checked_on_every_hit(ctx, make_member):
    owner = make_member("acme", email="first@acme.example")
    eh.attestation(owner.org_id, "SOC2:CC6.1", due_at=NOW + 3 * DAY, owner_id=owner.user_id)
    db.session.commit()
    [o] = obl.load(owner.org_id, NOW, kinds=["attestation"])
    assert (o.owner, o.effort_hours) == ("first@acme.example", 2.0)
    db.session.get(User, owner.user_id).email = "renamed@acme.example"
    ah.committee(owner.org_id, effort_hours={"attestation": 5.0})
    db.session.commit()
    [o] = obl.load(owner.org_id, NOW, kinds=["attestation"])
    assert (o.owner, o.effort_hours) == ("renamed@acme.example", 5.0)


def test_horizons_on_the_cached_derivation_match_a_direct_filter(ctx, make_member):
    org = make_member("acme").org_id
    for i in range(-10, 30, 3):
        eh.attestation(org, f"SOC2:CC6.{i % 7}", due_at=NOW + i * DAY)
        ah.checkpoint(org, f"cp{i}", "SOC2", due_at=NOW + i * DAY, status="done" if i < 0 else "planned",
                      done_at=NOW + (i - 1) * DAY if i < 0 else None)
    db.session.commit()
    everything = obl.load(org, NOW, include_done=True)
    until, since, due_from = NOW + 10 * DAY, NOW - 5 * DAY, NOW - 7 * DAY
    got = obl.load(org, NOW, include_done=True, until=until, since=since, due_from=due_from,
                   kinds=["attestation", "checkpoint"])
    expected = [o for o in everything if o.kind in ("attestation", "checkpoint") and o.due_at >= due_from
                and ((o.status == "open" and o.due_at <= until)
                     or (o.status == "done" and o.completed_at is not None and o.completed_at >= since))]
    assert [o.key for o in got] == [o.key for o in expected] and expected


def test_engine_registers_are_shared_but_each_request_gets_its_own_state_caches(ctx, make_member):
    org = make_member("acme").org_id
    eh.attestation(org, "SOC2:CC6.1", due_at=NOW + 3 * DAY)
    db.session.commit()
    one, two = engine.load_registers(org), engine.load_registers(org)
    assert one is not two and one.attestations is two.attestations
    one._state_cache["probe"] = {}
    assert "probe" not in two._state_cache
    eh.exception(org, "SOC2:CC6.1")
    db.session.commit()
    assert engine.load_registers(org).exceptions.keys() == {"SOC2:CC6.1"}


def test_the_store_is_bounded_by_the_rows_it_holds(ctx, make_member, monkeypatch):
    orgs = [make_member(f"org{i}").org_id for i in range(3)]
    monkeypatch.setattr(derived_cache, "MAX_ITEMS", 10)
    calls = []

    def compute(org, n):
        def run():
            calls.append(org)
            return list(range(n))
        return run

    derived_cache.cached("probe", orgs[0], compute(orgs[0], 4), size=len)
    derived_cache.cached("probe", orgs[1], compute(orgs[1], 5), size=len)
    derived_cache.cached("probe", orgs[0], compute(orgs[0], 4), size=len)  # a hit: orgs[0] is now the most recent
    derived_cache.cached("probe", orgs[2], compute(orgs[2], 5), size=len)  # 4 + 5 + 5 > 10: orgs[1] goes
    assert calls == [orgs[0], orgs[1], orgs[2]]
    derived_cache.cached("probe", orgs[0], compute(orgs[0], 4), size=len)
    derived_cache.cached("probe", orgs[1], compute(orgs[1], 5), size=len)
    assert calls == [orgs[0], orgs[1], orgs[2], orgs[1]]
    derived_cache.cached("probe", orgs[2], compute(orgs[2], 11), size=len)  # larger than the budget: not kept
    derived_cache.cached("probe", orgs[2], compute(orgs[2], 11), size=len)
    assert calls[-2:] == [orgs[2], orgs[2]]
