"""Retention purge vs legal holds, and the audit chain across purges (service level, injected time)."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import delete, func, select, update

from zentro.audit.models import AuditEvent, PurgeCheckpoint
from zentro.audit.service import verify_chain
from zentro.compliance import governance, retention
from zentro.extensions import db
from zentro.incidents import service as incidents
from zentro.incidents.models import Incident, TimelineEvent
from zentro.platform.types import utcnow

try:
    from .governance_helpers import DAY, TEST_ACTOR, actions, audit_at, checkpoints, incident, seqs, tag_rows
except ImportError:  # collected without the package __init__
    from governance_helpers import DAY, TEST_ACTOR, actions, audit_at, checkpoints, incident, seqs, tag_rows


@pytest.fixture
def org_id(make_member):
    return make_member("acme", "owner").org_id


@pytest.fixture
def now():
    # incident services stamp their own audit rows with the real clock, so the scenario is built around it
    return utcnow().replace(microsecond=0) + dt.timedelta(minutes=1)


def scenario(org_id: int, now: dt.datetime) -> dict:
    """Commercial tier (audit and incidents kept 365 days). Old rows: two unheld, one about a held incident,
    one more unheld; incidents: closed long ago (free / held), open since long ago, closed recently."""
    old = now - 400 * DAY
    held = incident(org_id, old, status="closed", hold=True, title="held")
    free = incident(org_id, old, status="closed", title="free")
    still_open = incident(org_id, old, status="open", title="still open")
    recent = incident(org_id, now - 10 * DAY, status="closed", title="recent")
    db.session.add(TimelineEvent(org_id=org_id, incident_id=free.id, kind="note", body="to go"))
    old1 = audit_at(org_id, old, "old.one")
    old2 = audit_at(org_id, old + DAY, "old.two")
    old_held = audit_at(org_id, old, "evidence.collected", target_type="incident", target_id=held.id)
    old3 = audit_at(org_id, old + 2 * DAY, "old.three")
    fresh = audit_at(org_id, now - DAY, "fresh.one")
    db.session.commit()
    return {"held": held.id, "free": free.id, "open": still_open.id, "recent": recent.id,
            "old": [(old1.id, old1.seq, old1.hash), (old2.id, old2.seq, old2.hash), (old3.id, old3.seq, old3.hash)],
            "old_held": (old_held.id, old_held.seq), "fresh": fresh.seq}


def test_purge_keeps_legal_holds_and_the_chain_verifies(app, ctx, org_id, now):
    s = scenario(org_id, now)
    (id1, q1, _), (id2, q2, h2), (id3, q3, h3) = s["old"]
    assert q2 == q1 + 1 and s["old_held"][1] == q2 + 1 and q3 == q2 + 2
    before = set(seqs(org_id))

    res = retention.purge(org_id, now)

    assert (res.audit_events, res.incidents) == (3, 1)
    assert set(seqs(org_id)) == (before - {q1, q2, q3}) | {max(before) + 1}  # plus the retention.purged event
    assert tag_rows([id1, id2, id3]) == 0 and tag_rows([s["old_held"][0]]) == 1
    # contiguous runs of purged seqs, each ending in the hash of its last row
    assert checkpoints(org_id) == [(q1, q2, h2, 2), (q3, q3, h3, 1)]
    result = verify_chain(org_id)
    assert result.ok, result
    # incidents: only the unheld one closed before the cutoff is gone, with its timeline
    remaining = set(db.session.scalars(select(Incident.id).where(Incident.org_id == org_id)))
    assert remaining == {s["held"], s["open"], s["recent"]}
    assert db.session.scalar(select(func.count()).select_from(TimelineEvent)
                             .where(TimelineEvent.incident_id == s["free"])) == 0
    # the purge is itself evidence, naming its checkpoints and what the hold kept
    (event,) = actions(org_id, "retention.purged")
    ids = list(db.session.scalars(select(PurgeCheckpoint.id).where(PurgeCheckpoint.org_id == org_id)
                                  .order_by(PurgeCheckpoint.from_seq)))
    data = json.loads(event.data)
    assert data["audit_events"] == 3 and data["incidents"] == 1 and data["checkpoint_ids"] == ids
    assert data["kept_for_legal_hold"] == {"audit_events": 1, "incidents": 1}
    assert set(event.control_tags.split()) == {"SOC2:CC6.5", "ISO27001:A.8.10", "ISO27001:A.5.33"}
    assert res.as_json()["checkpoints"][0]["id"] == ids[0]


def test_tampering_a_kept_row_after_a_purge_is_detected(app, ctx, org_id, now):
    s = scenario(org_id, now)
    retention.purge(org_id, now)
    row_id, seq = s["old_held"]  # the row right after the first purged run
    db.session.execute(update(AuditEvent).where(AuditEvent.id == row_id).values(data='{"forged":true}'))
    result = verify_chain(org_id)
    assert not result.ok and result.broken_seq == seq and "altered" in result.reason


def test_a_forged_or_missing_checkpoint_breaks_verification(app, ctx, org_id, now):
    s = scenario(org_id, now)
    retention.purge(org_id, now)
    (_, q1, _), (_, q2, _), (_, q3, _) = s["old"]
    first = db.session.scalar(select(PurgeCheckpoint).where(PurgeCheckpoint.from_seq == q1))
    real_hash = first.last_hash
    first.last_hash = "f" * 64
    db.session.flush()
    result = verify_chain(org_id)
    assert not result.ok and result.broken_seq == q2 + 1 and "checkpoint" in result.reason
    first.last_hash = real_hash
    db.session.flush()
    assert verify_chain(org_id).ok
    db.session.delete(db.session.scalar(select(PurgeCheckpoint).where(PurgeCheckpoint.from_seq == q3)))
    db.session.flush()
    result = verify_chain(org_id)
    assert not result.ok and result.broken_seq == q3 and "missing" in result.reason


def test_a_gap_not_exactly_covered_still_fails(app, ctx, org_id, now):
    s = scenario(org_id, now)
    retention.purge(org_id, now)
    row_id, seq = s["old_held"]
    # delete the kept row between the two checkpointed runs: q1..q2 and q3 are covered, seq is not
    db.session.execute(delete(AuditEvent).where(AuditEvent.id == row_id))
    result = verify_chain(org_id)
    assert not result.ok and result.broken_seq == seq and "missing" in result.reason


def test_a_checkpoint_overshooting_the_gap_does_not_bridge_it(app, ctx, org_id, now):
    for i in range(6):
        audit_at(org_id, now - DAY, f"row.{i}")
    db.session.commit()
    present = seqs(org_id)
    gone = present[-4]
    row = db.session.scalar(select(AuditEvent).where(AuditEvent.org_id == org_id, AuditEvent.seq == gone))
    db.session.add(PurgeCheckpoint(org_id=org_id, cutoff=now, from_seq=gone, to_seq=gone + 1, last_hash=row.hash,
                                   purged_events=2))
    db.session.delete(row)
    db.session.flush()
    result = verify_chain(org_id)
    assert not result.ok and result.broken_seq == gone


def test_second_purge_extends_the_chain_of_checkpoints(app, ctx, org_id, now):
    s = scenario(org_id, now)
    still_held = incident(org_id, now - 500 * DAY, status="closed", hold=True, title="still held")
    kept = audit_at(org_id, now - 500 * DAY, "evidence.kept", target_type="incident", target_id=still_held.id)
    db.session.commit()
    retention.purge(org_id, now)
    incidents.set_legal_hold(db.session.get(Incident, s["held"]), False, TEST_ACTOR)
    db.session.commit()

    later = now + 400 * DAY  # everything recorded so far is now past 365 days
    res = retention.purge(org_id, later)

    assert verify_chain(org_id).ok
    head_before_second = max(seqs(org_id)) - 1
    survivors = set(db.session.scalars(select(AuditEvent.id).where(AuditEvent.org_id == org_id)))
    held_rows = set(db.session.scalars(select(AuditEvent.id).where(
        AuditEvent.org_id == org_id, AuditEvent.target_type == "incident", AuditEvent.target_id == str(still_held.id))))
    head = db.session.scalar(select(AuditEvent.id).where(AuditEvent.org_id == org_id, AuditEvent.seq == head_before_second))
    second_event = actions(org_id, "retention.purged")[-1]
    assert kept.id in held_rows
    assert survivors == held_rows | {head, second_event.id}
    # the released incident and its old rows are gone now; the held one stays
    assert db.session.get(Incident, s["held"]) is None and db.session.get(Incident, still_held.id) is not None
    assert res.audit_events > 0 and res.incidents >= 2
    # ranges never overlap, and together with the survivors they tile 1..head
    ranges = [(f, t) for f, t, _, _ in checkpoints(org_id)]
    covered = [q for f, t in ranges for q in range(f, t + 1)]
    assert len(covered) == len(set(covered))
    assert sorted(covered + seqs(org_id)) == list(range(1, max(seqs(org_id)) + 1))


def test_batches_extend_one_checkpoint_across_transactions(app, ctx, org_id, now):
    rows = [audit_at(org_id, now - 400 * DAY, f"old.{i}") for i in range(10)]
    audit_at(org_id, now, "fresh")
    db.session.commit()
    expected = (rows[0].seq, rows[-1].seq, rows[-1].hash, 10)
    before = checkpoints(org_id)
    res = retention.purge(org_id, now, batch_size=3)
    assert res.audit_events == 10
    assert [c for c in checkpoints(org_id) if c not in before] == [expected]
    assert verify_chain(org_id).ok


def test_the_chain_head_is_never_purged(app, ctx, org_id, now):
    for i in range(3):
        audit_at(org_id, now - DAY, f"row.{i}")
    db.session.commit()
    head = max(seqs(org_id))
    res = retention.purge(org_id, now + 1000 * DAY)
    assert res.audit_events == head - 1
    assert seqs(org_id) == [head, head + 1]
    assert verify_chain(org_id).ok


def test_dry_run_counts_what_the_purge_then_removes_and_changes_nothing(app, ctx, org_id, now):
    scenario(org_id, now)
    before = (seqs(org_id), checkpoints(org_id), db.session.scalar(select(func.count()).select_from(Incident)))
    preview = retention.purge(org_id, now, dry_run=True)
    assert (seqs(org_id), checkpoints(org_id), db.session.scalar(select(func.count()).select_from(Incident))) == before
    assert preview.dry_run and (preview.audit_events, preview.incidents) == (3, 1)
    assert (preview.audit_events_kept_for_hold, preview.incidents_kept_for_hold, preview.held_incidents) == (1, 1, 1)
    assert actions(org_id, "retention.purged") == []
    done = retention.purge(org_id, now)
    assert (done.audit_events, done.incidents) == (preview.audit_events, preview.incidents)


def test_an_override_shortens_retention(app, ctx, org_id, now):
    mid = audit_at(org_id, now - 40 * DAY, "forty.days.old").id
    db.session.commit()
    assert retention.purge(org_id, now, dry_run=True).audit_events == 0
    governance.update_profile(org_id, {"audit_retention_days": 30}, TEST_ACTOR)
    res = retention.purge(org_id, now)
    assert res.audit_days == 30 and res.audit_events >= 1
    assert db.session.get(AuditEvent, mid) is None
    assert verify_chain(org_id).ok


def test_a_hipaa_org_keeps_six_years(app, ctx, org_id, now):
    five_years = audit_at(org_id, now - 5 * 365 * DAY, "five.years").id
    seven_years = audit_at(org_id, now - 7 * 365 * DAY, "seven.years").id
    db.session.commit()
    governance.update_profile(org_id, {"deployment_tier": "hipaa"}, TEST_ACTOR)
    retention.purge(org_id, now)
    assert db.session.get(AuditEvent, five_years) is not None
    assert db.session.get(AuditEvent, seven_years) is None


def test_legal_holds_since_and_flagged_count(app, ctx, org_id, now, make_member):
    foreign_org = make_member("bravo", "owner").org_id
    held = incident(org_id, now - 5 * DAY, hold=True)
    other = incident(org_id, now - 5 * DAY)
    # placed again later (the helper placed it first, at the real time): "since" is the latest placement
    audit_at(org_id, now + dt.timedelta(hours=1), "incident.legal_hold_set", target_type="incident", target_id=held.id)
    audit_at(org_id, now - 3 * DAY, "note", target_type="incident", target_id=other.id)
    incident(foreign_org, now, hold=True, title="bravo private")
    db.session.commit()
    out = governance.legal_holds(org_id)
    assert [h["id"] for h in out["incidents"]] == [held.id]
    assert len(actions(org_id, "incident.legal_hold_set")) == 2
    assert out["incidents"][0]["since"] == (now + dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    expected = db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.org_id == org_id, AuditEvent.target_type == "incident", AuditEvent.target_id == str(held.id)))
    assert out["flagged_audit_events"] == expected == 3  # created, and the two placements
    incidents.set_legal_hold(held, False, TEST_ACTOR)
    db.session.commit()
    assert governance.legal_holds(org_id) == {"incidents": [], "held_incidents": 0, "flagged_audit_events": 0}


def test_run_retention_all_covers_every_org_and_survives_a_failure(app, ctx, org_id, now, make_member, monkeypatch):
    other = make_member("bravo", "owner").org_id
    old = {o: audit_at(o, now - 400 * DAY, "old").id for o in (org_id, other)}
    for o in (org_id, other):
        audit_at(o, now, "fresh")
    db.session.commit()
    real = retention.purge

    def flaky(oid, *a, **kw):
        if oid == org_id:
            raise RuntimeError("disk on fire")
        return real(oid, *a, **kw)

    monkeypatch.setattr(retention, "purge", flaky)
    out = {r["org_id"]: r for r in retention.run_retention_all(now)}
    assert "disk on fire" in out[org_id]["error"]
    assert out[other]["audit_events"] == 1 and db.session.get(AuditEvent, old[other]) is None
    monkeypatch.setattr(retention, "purge", real)
    out = {r["org_id"]: r for r in retention.run_retention_all(now)}
    assert out[org_id]["audit_events"] == 1 and out[other]["audit_events"] == 0
    assert verify_chain(org_id).ok and verify_chain(other).ok


def test_purge_of_an_unknown_org_is_not_found(app, ctx):
    from zentro.platform.errors import ApiError

    with pytest.raises(ApiError) as exc:
        retention.purge(987654, utcnow())
    assert exc.value.status == 404


def test_cli_function_reports_per_org(app, ctx, org_id, now):
    audit_at(org_id, now - 400 * DAY, "old")
    audit_at(org_id, now, "fresh")
    db.session.commit()
    lines, code = retention.run_cli("acme", dry_run=True, now=now)
    assert code == 0 and lines == [lines[0]] and "would purge 1 audit rows" in lines[0]
    lines, code = retention.run_cli("acme", dry_run=False, now=now)
    assert code == 0 and "purged 1 audit rows" in lines[0] and "1 checkpoint(s)" in lines[0]
    assert retention.run_cli("nope", dry_run=True, now=now) == (["No org 'nope'."], 2)
    lines, code = retention.run_cli(None, dry_run=True, now=now)
    assert code == 0 and len(lines) == 1
