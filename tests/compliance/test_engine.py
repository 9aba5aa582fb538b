"""The readiness arithmetic, pinned on small hand-built datasets (see docs/compliance.md, "Readiness arithmetic").

Controls used (from the shipped catalog, checked in test_catalog_facts_these_tests_rely_on):
SOC2:CC1.3 (weight 1, SLA 365 d) --full-- ISO27001:A.5.2, --partial-- ISO27001:A.5.3;
SOC2:CC6.1 (weight 1.5, SLA 90 d) --full-- ISO27001:A.5.15, --partial-- ISO27001:A.5.9;
SOC2:CC7.2 (weight 2, SLA 30 d)."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from tests.compliance.engine_helpers import (NOW, attestation, days_ago, evidence, exception, policy, vendor)
from zentro.compliance import engine
from zentro.compliance.catalog import load_catalog
from zentro.extensions import db


@pytest.fixture
def org(app, make_member):
    member = make_member("alpha", "owner")
    with app.app_context():
        yield member.org_id
        db.session.rollback()
        db.session.remove()


def control(org_id, tag, now=NOW, period_days=30):
    return engine.snapshot(org_id, period_days, now).assess_control(tag)


def test_catalog_facts_these_tests_rely_on(app):
    cat = load_catalog()
    assert ("ISO27001:A.5.2", "full") in cat.neighbours("SOC2:CC1.3")
    assert ("ISO27001:A.5.3", "partial") in cat.neighbours("SOC2:CC1.3")
    assert ("ISO27001:A.5.15", "full") in cat.neighbours("SOC2:CC6.1")
    assert ("ISO27001:A.5.9", "partial") in cat.neighbours("SOC2:CC6.1")
    assert (cat.control("SOC2:CC1.3").weight, cat.control("SOC2:CC1.3").freshness_days) == (1.0, 365)
    assert (cat.control("SOC2:CC6.1").weight, cat.control("SOC2:CC6.1").freshness_days) == (1.5, 90)
    assert (cat.control("SOC2:CC7.2").weight, cat.control("SOC2:CC7.2").freshness_days) == (2.0, 30)


def test_no_evidence_scores_zero_and_says_why(org):
    c = control(org, "SOC2:CC6.1")
    assert (c.score, c.state, c.evidence_level, c.attestation) == (0.0, "failing", "none", "none")
    assert c.last_evidence_at is None and c.evidence_count == 0 and not c.fresh
    assert "No evidence" in c.reason and "no attestation assigned" in c.reason


def test_direct_evidence_counts_and_scores_70(org):
    evidence(org, "SOC2:CC6.1", at=days_ago(3), n=3)
    evidence(org, "SOC2:CC6.1", at=days_ago(45))  # outside the 30-day window, still within the 90-day SLA
    c = control(org, "SOC2:CC6.1")
    assert (c.direct_count, c.crosswalk_count, c.policy_count, c.evidence_count) == (3, 0, 0, 3)
    assert c.last_evidence_at == days_ago(3)
    assert c.fresh and c.evidence_level == "full"
    assert (c.score, c.state) == (70.0, "passing")


def test_evidence_on_another_org_or_after_now_does_not_count(org, make_member, app):
    other = make_member("bravo", "owner").org_id
    evidence(other, "SOC2:CC6.1", at=days_ago(1))
    evidence(org, "SOC2:CC6.1", at=NOW + dt.timedelta(hours=1))
    c = control(org, "SOC2:CC6.1")
    assert c.evidence_count == 0 and c.score == 0


def test_crosswalk_propagation_iso_evidence_credits_the_soc2_control(org):
    """Tag only ISO27001:A.5.15 (full edge to SOC2:CC6.1): the SOC 2 control is credited in full."""
    evidence(org, "ISO27001:A.5.15", at=days_ago(2), n=2)
    c = control(org, "SOC2:CC6.1")
    assert (c.direct_count, c.crosswalk_count) == (0, 2)
    assert (c.evidence_level, c.score, c.state) == ("full", 70.0, "passing")
    # and the other way round: the ISO control sees nothing tagged SOC 2, but its own direct evidence
    iso = control(org, "ISO27001:A.5.15")
    assert (iso.direct_count, iso.score) == (2, 70.0)


def test_partial_edge_earns_partial_credit(org):
    evidence(org, "ISO27001:A.5.9", at=days_ago(2))
    c = control(org, "SOC2:CC6.1")
    assert (c.crosswalk_count, c.evidence_level, c.score, c.state) == (1, "partial", 50.0, "at_risk")
    assert "partial crosswalk" in c.reason


def test_freshness_expires_when_now_moves_past_the_sla(org):
    evidence(org, "SOC2:CC6.1", at=days_ago(10))
    assert control(org, "SOC2:CC6.1").score == 70
    later = NOW + dt.timedelta(days=80)  # 90 days after the evidence: still fresh (SLA 90)
    assert control(org, "SOC2:CC6.1", now=later).evidence_level == "full"
    stale_now = NOW + dt.timedelta(days=81)  # 91 days after
    c = control(org, "SOC2:CC6.1", now=stale_now)
    assert (c.evidence_level, c.score, c.fresh, c.evidence_count) == ("stale", 25.0, False, 0)
    assert "stale" in c.reason and "90-day" in c.reason and "91 days ago" in c.reason


@pytest.mark.parametrize("rows,expected_state,points", [
    ([], "none", 0),
    ([dict(due_at=NOW + dt.timedelta(days=5))], "assigned", 15),
    ([dict(due_at=days_ago(5))], "overdue", 0),
    ([dict(due_at=days_ago(40), status="attested", attested_at=days_ago(30), valid_until=NOW + dt.timedelta(days=60))],
     "attested", 30),
    ([dict(due_at=days_ago(400), status="attested", attested_at=days_ago(390), valid_until=days_ago(25))], "expired", 0),
    ([dict(due_at=days_ago(5), status="rejected")], "overdue", 0),  # rejected: back with the owner, past due
    ([dict(due_at=days_ago(-5), status="rejected")], "assigned", 15),
    # the best state counts: an expired attestation plus a fresh assignment not yet due
    ([dict(due_at=days_ago(400), status="attested", attested_at=days_ago(390), valid_until=days_ago(25)),
      dict(due_at=NOW + dt.timedelta(days=10))], "assigned", 15),
    # attested later than now: as of now it is still only assigned/overdue
    ([dict(due_at=days_ago(5), status="attested", attested_at=NOW + dt.timedelta(days=1),
           valid_until=NOW + dt.timedelta(days=91))], "overdue", 0),
])
def test_attestation_states(org, rows, expected_state, points):
    for kw in rows:
        attestation(org, "SOC2:CC6.1", **kw)
    evidence(org, "SOC2:CC6.1", at=days_ago(1))
    c = control(org, "SOC2:CC6.1")
    assert (c.attestation, c.attestation_points, c.score) == (expected_state, points, 70.0 + points)
    if expected_state == "overdue":
        assert "ttestation overdue since 2025-06-25" in c.reason


def test_open_exception_caps_the_score_and_names_the_compensating_control(org):
    evidence(org, "SOC2:CC6.1", at=days_ago(1))
    attestation(org, "SOC2:CC6.1", due_at=days_ago(40), status="attested", attested_at=days_ago(30),
                valid_until=NOW + dt.timedelta(days=60))
    assert control(org, "SOC2:CC6.1").score == 100
    exc = exception(org, "SOC2:CC6.1", reason="Legacy VPN without MFA", compensating="IP allow-list and weekly log review")
    c = control(org, "SOC2:CC6.1")
    assert (c.score, c.state) == (50.0, "at_risk")
    assert f"Open exception #{exc.id} until 2025-08-29 (Legacy VPN without MFA)" in c.reason and "IP allow-list and weekly log review" in c.reason
    assert c.open_exceptions[0]["id"] == exc.id


def test_closed_or_expired_exceptions_do_not_cap(org):
    evidence(org, "SOC2:CC6.1", at=days_ago(1))
    exception(org, "SOC2:CC6.1", status="closed", closed_at=days_ago(1))
    exception(org, "SOC2:CC6.1", opened_at=days_ago(100), expires_at=days_ago(2))
    c = control(org, "SOC2:CC6.1")
    assert (c.score, c.open_exceptions) == (70.0, [])


def test_accepted_policy_counts_as_one_partial_item(org):
    policy(org, "Access policy", ["ISO27001:A.5.15", "SOC2:CC6.1"], accepted_at=days_ago(5))  # one item, two tags
    policy(org, "Draft policy", ["SOC2:CC6.1"], status="draft", accepted_at=None)
    c = control(org, "SOC2:CC6.1")
    assert (c.policy_count, c.direct_count, c.evidence_level, c.score) == (1, 0, "partial", 50.0)
    assert c.last_evidence_at == days_ago(5)
    assert "accepted policy" in c.reason


def test_vendor_inheritance_while_the_report_is_valid(org):
    vendor(org, "CloudCo", ["SOC2:CC6.4"], expires=NOW + dt.timedelta(days=100))
    vendor(org, "OldCo", ["SOC2:CC6.4"], expires=days_ago(1))
    c = control(org, "SOC2:CC6.4")
    assert (c.inherited_from, c.evidence_level, c.score, c.fresh) == (["CloudCo"], "partial", 50.0, True)
    assert "inheritance from CloudCo" in c.reason
    after = control(org, "SOC2:CC6.4", now=NOW + dt.timedelta(days=101))
    assert (after.inherited_from, after.score) == ([], 0.0)


def test_weighted_readiness_families_and_gaps(org):
    """SOC 2: CC6.1 (w 1.5) at 70, CC7.2 (w 2) at 50 (partial), the other 59 controls at 0."""
    evidence(org, "SOC2:CC6.1", at=days_ago(1))
    evidence(org, "ISO27001:A.8.15", at=days_ago(1))  # partial neighbour of SOC2:CC7.2
    cat = load_catalog()
    assert ("ISO27001:A.8.15", "partial") in cat.neighbours("SOC2:CC7.2")
    fw = engine.assess(org, "SOC2", now=NOW)
    total_weight = sum(c.weight for c in cat.framework("SOC2").controls)
    scores = {c.tag: c.score for c in fw.controls}
    assert scores["SOC2:CC6.1"] == 70 and scores["SOC2:CC7.2"] == 50
    expected = sum(c.weight * c.score for c in fw.controls) / total_weight
    assert fw.readiness == round(expected, 1) == round((1.5 * 70 + 2 * 50) / total_weight, 1)
    cc6 = next(f for f in fw.families if f.id == "CC6")
    cc6_controls = [c for c in cat.framework("SOC2").controls if c.family == "CC6"]
    assert cc6.readiness == round(1.5 * 70 / sum(c.weight for c in cc6_controls), 1)
    assert (cc6.passing, cc6.controls) == (1, len(cc6_controls))
    gaps = fw.gaps
    assert "SOC2:CC6.1" not in [g.tag for g in gaps]
    # worst first by weight x (70 - score): the 2.0-weight controls at 0 (140) come before CC7.2 (2 x 20 = 40)
    keys = [g.weight * (70 - g.score) for g in gaps]
    assert keys == sorted(keys, reverse=True)
    assert gaps[0].weight == 2.0 and gaps[0].score == 0
    assert [g.tag for g in gaps].index("SOC2:CC7.2") > [g.tag for g in gaps].index("SOC2:CC7.3")
    assert fw.counts == {"passing": 1, "at_risk": 1, "failing": 59}


def test_weighted_mean_rounds_to_one_decimal():
    assert engine.weighted_mean([(1, 70), (2, 0)]) == 23.3
    assert engine.weighted_mean([]) == 0.0


def test_weekly_trend_uses_the_same_scoring(org):
    """Evidence for CC7.2 (SLA 30 d) 50 days ago and today: fresh in weeks 4-8 after the first and again
    in the last week; in between it goes stale."""
    evidence(org, "SOC2:CC7.2", at=days_ago(50))
    evidence(org, "SOC2:CC7.2", at=days_ago(0.5), n=2)
    fw = engine.assess(org, "SOC2", now=NOW, trend_weeks=12)
    assert len(fw.trend) == 12
    tw = engine.trend_window(NOW, 12)
    assert fw.trend[-1].assessed_at == NOW and fw.trend[0].week_start == tw.start
    cat = load_catalog()
    total = sum(c.weight for c in cat.framework("SOC2").controls)
    by_week = {}
    for p in fw.trend:
        age = p.assessed_at - days_ago(50)
        if p.assessed_at < days_ago(50):
            expected = 0.0  # nothing yet
        elif age <= dt.timedelta(days=30):
            expected = round(2 * 70 / total, 1)  # fresh
        else:
            expected = round(2 * 25 / total, 1)  # stale
        if p.week == 11:
            expected = round(2 * 70 / total, 1)  # the new evidence
        by_week[p.week] = (p.readiness, expected)
        assert p.readiness == expected, (p.week, p.assessed_at, p.readiness, expected)
    assert {r for r, _ in by_week.values()} == {0.0, round(140 / total, 1), round(50 / total, 1)}
    assert fw.trend[-1].readiness == fw.readiness
    assert fw.trend[-1].evidence_events == 2
    assert sum(p.evidence_events for p in fw.trend) == 3


def test_trend_sees_attestations_and_exceptions_as_of_each_week(org):
    evidence(org, "SOC2:CC6.1", at=days_ago(1))
    evidence(org, "SOC2:CC6.1", at=days_ago(60))
    attestation(org, "SOC2:CC6.1", due_at=days_ago(20), status="attested", attested_at=days_ago(20),
                valid_until=NOW + dt.timedelta(days=70), created_at=days_ago(40))
    exception(org, "SOC2:CC6.1", opened_at=days_ago(12), expires_at=NOW + dt.timedelta(days=30))
    snap = engine.snapshot(org, 30, NOW, trend_weeks=12)
    fw = snap.assess("SOC2")
    total = sum(c.weight for c in fw.controls)
    weeks = {p.week: p for p in fw.trend}
    cur = snap.assess_control("SOC2:CC6.1")
    assert cur.score == 50  # capped now
    for p in fw.trend:
        at = p.assessed_at
        ev = 70 if at >= days_ago(60) else 0
        att = 0 if at < days_ago(40) else 30 if at >= days_ago(20) else 15 if at < days_ago(20) else 0
        score = ev + att
        if days_ago(12) <= at:
            score = min(score, 50)
        assert weeks[p.week].readiness == round(1.5 * score / total, 1), (p.week, at)


def test_assess_all_reads_audit_tags_with_two_grouped_queries(org, app):
    evidence(org, "SOC2:CC6.1", "ISO27001:A.5.15", at=days_ago(1))
    statements = []

    def spy(conn, cursor, statement, params, context, executemany):
        statements.append(statement)

    engine_ = db.engine
    sa.event.listen(engine_, "before_cursor_execute", spy)
    try:
        results = engine.assess_all(org, 30, NOW)
        with_trend = len([s for s in statements if "audit_tags" in s])
        statements.clear()
        engine.assess_all(org, 30, NOW, trend_weeks=12)
        trend_count = len([s for s in statements if "audit_tags" in s])
    finally:
        sa.event.remove(engine_, "before_cursor_execute", spy)
    assert set(results) == set(load_catalog().frameworks)
    assert with_trend == 2
    assert trend_count == 3
    assert all("GROUP BY" in s for s in statements if "audit_tags" in s)
    assert results["SOC2"].control("SOC2:CC6.1").score == 70
    assert results["ISO27001"].control("ISO27001:A.5.15").score == 70


def test_baseline_compares_with_the_prior_period(org):
    evidence(org, "SOC2:CC7.2", at=days_ago(5))  # fresh now; did not exist 30 days ago
    evidence(org, "SOC2:CC6.1", at=days_ago(100))  # stale now (SLA 90), fresh 30 days ago
    rows = {b.key: b for b in engine.baseline_comparison(org, 30, NOW)}
    soc2 = rows["SOC2"]
    total = sum(c.weight for c in soc2.current.controls)
    assert soc2.current.readiness == round((2 * 70 + 1.5 * 25) / total, 1)
    assert soc2.prior.readiness == round(1.5 * 70 / total, 1)
    assert soc2.delta == round(soc2.current.readiness - soc2.prior.readiness, 1)
    assert soc2.prior.now == days_ago(30)
    assert soc2.current.control("SOC2:CC7.2").direct_count == 1 and soc2.prior.control("SOC2:CC7.2").direct_count == 0


def test_naive_now_is_refused(org):
    with pytest.raises(ValueError):
        engine.assess(org, "SOC2", now=dt.datetime(2025, 1, 1))
