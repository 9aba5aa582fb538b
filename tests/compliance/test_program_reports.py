"""The program reports (gap-remediations, risk-heatmap, executive-summary, benchmarking, posture-score,
control-health-scorecard, kpi-trends) on one hand-built dataset at a fixed NOW: their key numbers pinned, each
served format parsed, bad parameters refused."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

from zentro.automations.models import Playbook
from zentro.compliance import engine
from zentro.compliance import report_registry as registry
from zentro.compliance.catalog import load_catalog
from zentro.compliance.reports import _program as prog
from zentro.compliance.reports.benchmarking import cohorts, percentile_of
from zentro.compliance.reporting import to_dict
from zentro.extensions import db
from zentro.platform.types import utcnow
from zentro.reliability.models import Service

from tests.compliance import analytics_helpers as ah
from tests.compliance import engine_helpers as eh
from tests.compliance.analytics_helpers import csv_blocks, get_report

NOW = eh.NOW  # 2025-06-30 12:00 UTC
DAY = dt.timedelta(days=1)


def ago(days: float, now: dt.datetime = NOW) -> dt.datetime:
    return now - days * DAY


def build_dataset(org: int, member_id: int, now: dt.datetime = NOW) -> dict:
    """Evidence for SOC2:CC6.1 (attested, so it passes), four vendors (valid / expired with an overdue review /
    expiring / no report), four attestations (attested, overdue, expired, assigned), an open exception, an accepted
    policy allowing a restart playbook on a service with a runbook, and four gap remediation rows."""
    eh.evidence(org, "SOC2:CC6.1", at=ago(2, now), n=3)
    v = {
        "cloudy": eh.vendor(org, "Cloudy", ["SOC2:CC6.4", "ISO27001:A.7.1"], expires=ago(-100, now), tier="critical",
                            next_review_at=ago(-30, now)),
        "paymo": eh.vendor(org, "Paymo", ["SOC2:CC6.5"], expires=ago(12, now), tier="high",
                           next_review_at=ago(5, now)),
        "mailer": eh.vendor(org, "Mailer", [], expires=ago(-20, now), tier="medium"),
        "counsel": eh.vendor(org, "Counsel", [], expires=None, tier="low"),
    }
    a = {
        "attested": eh.attestation(org, "SOC2:CC6.1", due_at=ago(15, now), status="attested",
                                   attested_at=ago(10, now), valid_until=ago(-80, now)),
        "overdue": eh.attestation(org, "SOC2:CC7.2", due_at=ago(5, now), owner_id=member_id),
        "expired": eh.attestation(org, "ISO27001:A.8.13", due_at=ago(110, now), status="attested",
                                  attested_at=ago(100, now), valid_until=ago(10, now)),
        "assigned": eh.attestation(org, "SOC2:CC1.1", due_at=ago(-20, now), created_at=ago(1, now)),
    }
    exc = eh.exception(org, "SOC2:CC6.6", expires_at=ago(-20, now), opened_at=ago(10, now))
    eh.policy(org, "Gateway restarts", ["SOC2:CC7.4"], accepted_at=now, updated_at=now)
    pol = db.session.scalars(db.select(eh.Policy).where(eh.Policy.org_id == org)).one()
    pol.actions = ["restart:gw"]
    svc = ah.service(org, "gw")
    svc.runbook_url = "https://runbooks.example.com/gw"
    pb = Playbook(org_id=org, name="Restart gw", steps=[{"action": "restart", "service_id": svc.id, "params": {}}])
    db.session.add(pb)
    db.session.flush()
    r = {
        "overdue": ah.gap_remediation(org, "SOC2:CC7.4", status="in_progress", owner_id=member_id,
                                      playbook_id=pb.id, due_at=ago(3, now)),
        "resolved": ah.gap_remediation(org, "SOC2:CC6.1", status="done", closed_at=ago(6, now)),
        "done_gap": ah.gap_remediation(org, "ISO27001:A.8.8", status="done", closed_at=ago(20, now)),
        "open": ah.gap_remediation(org, "PCIDSS:11.3", status="open", due_at=ago(-10, now), created_at=ago(2, now)),
    }
    db.session.commit()
    return {"vendors": v, "attestations": a, "exception": exc, "playbook": pb, "service": svc, "remediations": r}


@pytest.fixture
def org(ctx, make_member):
    owner = make_member("acme", "owner", email="owner@acme.example")
    member = make_member("acme", "member", email="member@acme.example")
    data = build_dataset(owner.org_id, member.user_id)
    return owner.org_id, data


def expected_gaps() -> set[str]:
    """Every control but SOC2:CC6.1 (fresh direct evidence + valid attestation = 100) and its full-strength
    crosswalk neighbours (fresh full-crosswalk evidence = 70) is under 70."""
    cat = load_catalog()
    passing = {"SOC2:CC6.1", *(t for t, s in cat.neighbours("SOC2:CC6.1") if s == "full")}
    return set(cat.all_tags()) - passing


# --- gap-remediations ---------------------------------------------------------------------------------------

def test_gap_remediation_queue(org):
    org_id, data = org
    rep = registry.build("gap-remediations", org_id, NOW)
    gaps = expected_gaps()
    s = rep.summary
    assert s["gaps"] == len(gaps)
    assert (s["tracked"], s["untracked"]) == (3, len(gaps) - 3)
    assert (s["open"], s["in_progress"], s["done"], s["wont_fix"]) == (1, 1, 1, 0)
    assert s["overdue"] == 1 and s["resolved_by_evidence"] == 1
    rows = {r["control"]: r for r in to_dict(rep)["sections"]["queue"]["rows"]}
    assert set(rows) == gaps
    cc74 = rows["SOC2:CC7.4"]
    # the accepted policy makes CC7.4's evidence partial (50 points), no attestation
    assert (cc74["score"], cc74["band"], cc74["weight_at_risk"]) == (50.0, "medium", round(
        load_catalog().control("SOC2:CC7.4").weight * 20, 1))
    assert cc74["tracking"] == "in_progress" and cc74["owner"] == "member@acme.example"
    assert cc74["playbook"] == "Restart gw" and cc74["overdue"] is True and cc74["days_overdue"] == 3
    assert cc74["suggestion"] == "playbook" and cc74["suggested_playbook"] == "Restart gw"
    assert cc74["suggested_runbook"] == "https://runbooks.example.com/gw"
    assert cc74["suggested_policy"] == "Gateway restarts" and "allows every step" in cc74["suggestion_basis"]
    assert rows["ISO27001:A.8.8"]["tracking"] == "done" and rows["PCIDSS:11.3"]["tracking"] == "open"
    assert rows["SOC2:CC6.6"]["tracking"] == "untracked" and "open exception" in rows["SOC2:CC6.6"]["reason"]
    assert rows["SOC2:CC6.6"]["suggestion"] == "none"
    # worst first: weight at risk never rises down the queue
    risks = [r["weight_at_risk"] for r in to_dict(rep)["sections"]["queue"]["rows"]]
    assert risks == sorted(risks, reverse=True)
    resolved = to_dict(rep)["sections"]["resolved"]["rows"]
    assert [(r["control"], r["tracking"], r["outcome"], r["score"]) for r in resolved] == [
        ("SOC2:CC6.1", "done", "resolved by evidence", 100.0)]
    # the framework filter
    soc2 = registry.build("gap-remediations", org_id, NOW, framework="soc2")
    assert soc2.summary["gaps"] == len([t for t in gaps if t.startswith("SOC2:")])
    assert soc2.summary["tracked"] == 1 and soc2.summary["resolved_by_evidence"] == 1


def test_suggestions_fall_back_to_runbook_then_policy(org, make_member):
    org_id, data = org
    from zentro.compliance.gap_tracking import Suggester

    # a second accepted policy naming the service but no playbook it allows (wrong action)
    eh.policy(org_id, "Edge blocks", ["ISO27001:A.8.20"], accepted_at=NOW, updated_at=NOW)
    eh.policy(org_id, "Paper only", ["ISO27001:A.5.1"], accepted_at=NOW, updated_at=NOW)
    for p in db.session.scalars(db.select(eh.Policy).where(eh.Policy.org_id == org_id)):
        if p.name == "Edge blocks":
            p.actions = ["block_address:gw"]
    db.session.flush()
    s = Suggester(org_id)
    assert s.suggest("ISO27001:A.8.20").kind == "runbook"
    assert s.suggest("ISO27001:A.8.20").runbook_url == "https://runbooks.example.com/gw"
    assert s.suggest("ISO27001:A.5.1").kind == "policy"
    assert s.suggest("PCIDSS:11.3").kind == "none"
    # a disabled playbook is never suggested
    data["playbook"].enabled = False
    db.session.flush()
    assert Suggester(org_id).suggest("SOC2:CC7.4").kind == "runbook"


# --- risk-heatmap -------------------------------------------------------------------------------------------

def test_risk_heatmap(org):
    org_id, _ = org
    rep = registry.build("risk-heatmap", org_id, NOW)
    gaps = expected_gaps()
    s = rep.summary
    assert s["gaps"] == len(gaps)
    assert (s["vendors"], s["vendors_at_risk"], s["critical_high_vendors_at_risk"]) == (4, 2, 1)
    doc = to_dict(rep)
    matrix = {r["tier"]: r for r in doc["sections"]["vendors"]["rows"]}
    assert [(t, matrix[t]["valid"], matrix[t]["expiring"], matrix[t]["expired"], matrix[t]["missing"])
            for t in prog.TIERS] == [("critical", 1, 0, 0, 0), ("high", 0, 0, 1, 0), ("medium", 0, 1, 0, 0),
                                     ("low", 0, 0, 0, 1)]
    # bands: CC7.4 (policy, 50) and the inherited/partial controls are "medium"; CC6.6 (exception, no evidence: 0)
    fw = {r["framework"]: r for r in doc["sections"]["frameworks"]["rows"]}
    assert sum(fw[k]["critical"] + fw[k]["high"] + fw[k]["medium"] + fw[k]["low"] for k in fw) == len(gaps)
    assert s["bands"]["high"] == 0 and s["bands"]["low"] == 0  # no 25-39 or 55-69 scores in this dataset
    cat = load_catalog()
    partial = {t for t, st in cat.neighbours("SOC2:CC6.1") if st != "full"}
    medium = partial | {"SOC2:CC7.4", "SOC2:CC6.4", "ISO27001:A.7.1"} | {
        t for t, _ in cat.neighbours("SOC2:CC7.4")}  # the policy is evidence for CC7.4's equivalents too
    medium &= gaps
    assert s["bands"]["medium"] == len(medium)
    assert s["bands"]["critical"] == len(gaps) - len(medium)
    # hotspots: combined weight at risk = own + gap neighbours', ranked
    spots = doc["sections"]["hotspots"]["rows"]
    assert len(spots) == 10 and s["top_hotspot"] == spots[0]["control"]
    res = engine.assess_all(org_id, 30, NOW)
    scores = {c.tag: c for fr in res.values() for c in fr.controls}
    top = spots[0]
    linked = [t for t, _ in cat.neighbours(top["control"]) if t in gaps]
    war = lambda t: round(scores[t].weight * (70 - scores[t].score), 1)  # noqa: E731
    assert top["linked_gaps"] == len(linked)
    assert top["combined_weight_at_risk"] == round(war(top["control"]) + sum(war(t) for t in linked), 1)
    assert [x["combined_weight_at_risk"] for x in spots] == sorted((x["combined_weight_at_risk"] for x in spots),
                                                                   reverse=True)
    assert {c.key for c in rep.charts} == {"framework_bands", "vendor_matrix", "hotspots"}


# --- posture-score ------------------------------------------------------------------------------------------

def test_posture_score_components_and_weights(org):
    org_id, _ = org
    rep = registry.build("posture-score", org_id, NOW, weeks=4)
    s = rep.summary
    res = engine.assess_all(org_id, 30, NOW)
    total_w = sum(c.weight for fr in res.values() for c in fr.controls)
    readiness = round(sum(c.weight * c.score for fr in res.values() for c in fr.controls) / total_w, 1)
    controls = sum(len(fr.controls) for fr in res.values())
    gap_pressure = round(100 * (1 - len(expected_gaps()) / controls), 1)
    assert s["readiness"] == readiness
    assert s["attestations"] == 25.0  # 1 attested and valid of 4
    assert s["vendors"] == 50.0  # Cloudy (valid, review ahead) and Mailer (expiring, no review date) of 4
    assert s["gap_pressure"] == gap_pressure
    assert s["risk"] == 80.0  # 100 - 10 x 1 open exception - 10 x 1 expired vendor report
    expected = round(0.35 * readiness + 0.15 * 25.0 + 0.15 * 50.0 + 0.20 * gap_pressure + 0.15 * 80.0, 1)
    assert s["score"] == expected
    comps = {r["component"]: r for r in to_dict(rep)["sections"]["components"]["rows"]}
    assert sum(r["effective_weight"] for r in comps.values()) == pytest.approx(1.0)
    assert comps["risk"]["contribution"] == 12.0
    trend = to_dict(rep)["sections"]["trend"]["rows"]
    assert len(trend) == 4 and trend[-1]["score"] == s["score"]
    assert s["change"] == round(s["score"] - trend[0]["score"], 1)
    # at the end of the first week (June 10): no exception yet, Paymo's report still valid (risk 100); A.8.13 still
    # attested, CC6.1 and CC7.2 merely assigned, CC1.1 not created yet (1 of 3)
    assert trend[0]["risk"] == 100.0 and trend[0]["attestations"] == round(100 / 3, 1)


def test_posture_without_attestations_or_vendors_rescales(ctx, make_member):
    owner = make_member("empty", "owner")
    rep = registry.build("posture-score", owner.org_id, NOW)
    s = rep.summary
    assert s["attestations"] is None and s["vendors"] is None
    assert s["risk"] == 100.0 and s["gap_pressure"] == 0.0 and s["readiness"] == 0.0
    # readiness 0 (0.35), gap pressure 0 (0.20), risk 100 (0.15): 15 / 0.70
    assert s["score"] == round(100 * 0.15 / 0.70, 1)


# --- control-health-scorecard -------------------------------------------------------------------------------

def test_control_health_scorecard(org):
    org_id, _ = org
    rep = registry.build("control-health-scorecard", org_id, NOW, window="30d")
    rows = {r["framework"]: r for r in to_dict(rep)["sections"]["scorecard"]["rows"]}
    soc2, iso = rows["SOC2"], rows["ISO27001"]
    assert (soc2["inherited_controls"], soc2["inherited_covered"], soc2["inherited_coverage"]) == (2, 1, 50.0)
    assert (iso["inherited_controls"], iso["inherited_covered"], iso["inherited_coverage"]) == (1, 1, 100.0)
    assert rows["PCIDSS"]["inherited_coverage"] is None and rows["PCIDSS"]["inherited_rag"] == "green"
    assert soc2["inherited_rag"] == "amber" and soc2["readiness_rag"] == "red" and soc2["rag"] == "red"
    assert "inherited coverage amber" in soc2["rag_reason"]
    assert (soc2["remediations_closed"], iso["remediations_closed"]) == (1, 1)
    assert soc2["gaps_resolved"] == 1  # CC6.1 was a gap 30 days ago
    full = [t for t, st in load_catalog().neighbours("SOC2:CC6.1") if st == "full"]
    s = rep.summary
    assert s["gaps_resolved"] == 1 + len(full)
    assert s["remediations_closed"] == 2 and (s["inherited_controls"], s["inherited_covered"]) == (3, 2)
    assert s["red"] + s["amber"] + s["green"] == s["frameworks"] == len(load_catalog().frameworks)
    base = {b.key: b for b in engine.baseline_comparison(org_id, 30, NOW)}
    assert soc2["readiness_change"] == base["SOC2"].delta and soc2["readiness"] == base["SOC2"].current.readiness
    # a 7-day window: the ISO remediation closed 20 days ago falls out
    week = registry.build("control-health-scorecard", org_id, NOW, window="7d")
    assert week.summary["remediations_closed"] == 1


# --- kpi-trends ---------------------------------------------------------------------------------------------

def test_kpi_trends(org):
    org_id, _ = org
    rep = registry.build("kpi-trends", org_id, NOW, weeks=4)
    rows = to_dict(rep)["sections"]["weekly"]["rows"]
    assert [r["week_start"] for r in rows] == ["2025-06-03", "2025-06-10", "2025-06-17", "2025-06-24"]
    assert [r["remediations_closed"] for r in rows] == [0, 1, 0, 1]  # closed 20 and 6 days ago
    assert [r["remediations_opened"] for r in rows] == [0, 0, 0, 1]  # PCIDSS:11.3, created 2 days ago
    assert [r["attested"] for r in rows] == [0, 0, 1, 0]  # CC6.1, attested 10 days ago
    assert [r["attestations_created"] for r in rows] == [0, 0, 0, 1]
    assert [r["evidence_events"] for r in rows] == [0, 0, 0, 3]
    s = rep.summary
    assert (s["remediations_closed"], s["velocity_per_week"], s["attested"], s["evidence_events"]) == (2, 0.5, 1, 3)
    res = engine.assess_all(org_id, 30, NOW, trend_weeks=4)
    assert [r["SOC2"] for r in rows] == [p.readiness for p in res["SOC2"].trend]
    assert s["readiness_end"] == prog.program_readiness(res.values())
    assert s["readiness_change"] == round(s["readiness_end"] - s["readiness_start"], 1)
    assert {c.kind for c in rep.charts} == {"line"}


# --- benchmarking -------------------------------------------------------------------------------------------

def test_percentile_interpolation():
    pts = {"p25": 40, "p50": 60, "p75": 75, "p90": 85}
    assert percentile_of(20, pts) == 12.5
    assert percentile_of(40, pts) == 25.0
    assert percentile_of(50, pts) == 37.5
    assert percentile_of(80, pts) == 82.5
    assert percentile_of(95, pts) == 96.7
    assert percentile_of(0, pts) == 0.0 and percentile_of(100, pts) == 100.0


def test_cohorts_file_is_labelled_illustrative():
    doc = cohorts()
    assert "ILLUSTRATIVE" in doc["source"] and "not survey data" in doc["source"].lower()
    assert doc["default"] in doc["cohorts"]
    frameworks = set(load_catalog().frameworks)
    for cohort in doc["cohorts"].values():
        assert set(cohort["percentiles"]) == frameworks


def test_benchmarking(org):
    org_id, _ = org
    rep = registry.build("benchmarking", org_id, NOW, cohort="saas-startup")
    assert any("ILLUSTRATIVE" in n for n in rep.notes)
    pts = cohorts()["cohorts"]["saas-startup"]["percentiles"]
    rows = {r["framework"]: r for r in to_dict(rep)["sections"]["frameworks"]["rows"]}
    res = engine.assess_all(org_id, 30, NOW)
    for key, fr in res.items():
        assert rows[key]["readiness"] == fr.readiness
        assert rows[key]["percentile"] == percentile_of(fr.readiness, pts[key])
        assert rows[key]["gap_to_p50"] == round(pts[key]["p50"] - fr.readiness, 1)
    s = rep.summary
    assert s["cohort"] == "saas-startup" and s["data"] == "illustrative" and s["frameworks"] == 9
    positions = sorted(r["percentile"] for r in rows.values())
    assert s["median_position"] == positions[4]
    assert s["below_p25"] == sum(r["readiness"] < r["p25"] for r in rows.values())


# --- executive-summary --------------------------------------------------------------------------------------

def test_executive_summary_and_leadership_actions(org):
    org_id, data = org
    rep = registry.build("executive-summary", org_id, NOW)
    s = rep.summary
    res = engine.assess_all(org_id, 30, NOW)
    base = engine.baseline_comparison(org_id, 30, NOW)
    assert s["program_readiness"] == prog.program_readiness(res.values())
    assert s["prior_readiness"] == prog.program_readiness(b.prior for b in base)
    assert s["gaps"] == len(expected_gaps())
    assert s["attestations"] == {"assigned": 1, "attested": 1, "overdue": 1, "expired": 1, "rejected": 0, "total": 4}
    assert s["vendor_reports"] == {"valid": 1, "expiring": 1, "expired": 1, "missing": 1}
    assert (s["vendor_reviews_overdue"], s["open_exceptions"]) == (1, 1)
    actions = to_dict(rep)["sections"]["actions"]["rows"]
    spots = prog.hotspots(prog.load(org_id, NOW), 5)
    untracked = [x["control"] for x in spots if x["control"] not in
                 {"SOC2:CC7.4", "SOC2:CC6.1", "ISO27001:A.8.8", "PCIDSS:11.3"}][:2]
    exc_id = data["exception"].id
    assert [(a["rule"], a["action"], a["figure"]) for a in actions] == [
        ("overdue_attestations", "Renew 1 overdue attestation owned by member@acme.example",
         "1 overdue, the oldest 5 days past due"),
        ("expired_attestations", "Re-attest 1 expired attestation", "1 attested controls whose validity has lapsed"),
        ("expired_vendor_report", "Collect the renewed SOC 2 Type II report from Paymo",
         "high tier vendor; report expired 12 days ago"),
        ("expiring_vendor_report", "Request the renewed SOC 2 Type II report from Mailer", "report expires in 20 days"),
        ("vendor_review_overdue", "Review vendor Paymo", "review 5 days overdue (high tier)"),
        *[("untracked_hotspot", a["action"], a["figure"]) for a in actions if a["rule"] == "untracked_hotspot"],
        ("overdue_remediations", "Chase 1 overdue gap remediation", "1 past due, the oldest by 3 days"),
        ("exception_expiring", f"Decide on exception #{exc_id} for SOC2:CC6.6: renew it or close the gap",
         "expires in 20 days"),
    ]
    hot = [a for a in actions if a["rule"] == "untracked_hotspot"]
    assert [a["action"].split()[7] for a in hot] == untracked
    assert [a["rank"] for a in actions] == list(range(1, len(actions) + 1))
    assert s["leadership_actions"] == len(actions) == 9
    fws = {r["framework"]: r for r in to_dict(rep)["sections"]["frameworks"]["rows"]}
    assert fws["SOC2"]["delta"] == next(b.delta for b in base if b.key == "SOC2")
    assert [r["id"] for r in to_dict(rep)["sections"]["exceptions"]["rows"]] == [exc_id]


def test_a_readiness_drop_becomes_an_action(ctx, make_member):
    """Every GDPR control attested 60 days ago, valid until 10 days ago: 30 attestation points each a period ago,
    none now — GDPR drops exactly 30 points."""
    owner = make_member("acme", "owner")
    for c in load_catalog().framework("GDPR").controls:
        eh.attestation(owner.org_id, c.tag, due_at=ago(70), status="attested", attested_at=ago(60),
                       valid_until=ago(10))
    rep = registry.build("executive-summary", owner.org_id, NOW)
    drops = [a for a in to_dict(rep)["sections"]["actions"]["rows"] if a["rule"] == "readiness_drop"]
    assert [(a["action"], a["figure"], a["metric"]) for a in drops] == [
        ("Investigate the GDPR Article 32 readiness drop", "-30.0 points vs 30 days ago (30.0 → 0.0)", -30.0)]
    expired = [a for a in to_dict(rep)["sections"]["actions"]["rows"] if a["rule"] == "expired_attestations"]
    n = len(load_catalog().framework("GDPR").controls)
    assert expired[0]["action"] == f"Re-attest {n} expired attestations"


# --- an empty org -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("slug", ["gap-remediations", "risk-heatmap", "executive-summary", "benchmarking",
                                  "posture-score", "control-health-scorecard", "kpi-trends"])
def test_an_empty_org_is_a_valid_report(ctx, make_member, slug):
    owner = make_member("empty", "owner")
    doc = to_dict(registry.build(slug, owner.org_id, NOW))
    assert doc["report"] == slug
    if slug == "gap-remediations":
        assert doc["summary"]["tracked"] == 0 and doc["summary"]["gaps"] == len(load_catalog().all_tags())
    if slug == "risk-heatmap":
        assert doc["summary"]["vendors"] == 0 and doc["summary"]["vendors_at_risk"] == 0
    if slug == "executive-summary":
        assert doc["sections"]["actions"]["rows"][0]["rule"] == "untracked_hotspot"
        assert doc["summary"]["open_exceptions"] == 0
    if slug == "kpi-trends":
        assert doc["summary"]["remediations_closed"] == 0 and doc["summary"]["evidence_events"] == 0


# --- endpoints: every format, bad parameters ------------------------------------------------------------------

@pytest.fixture
def live(app, make_member, make_api_key):
    """The dataset relative to the real clock, and an API key of the org's viewer."""
    owner = make_member("acme", "owner", plan="enterprise", email="owner@acme.example")
    member = make_member("acme", "member", plan="enterprise", email="member@acme.example")
    viewer = make_member("acme", "viewer", plan="enterprise")
    with app.app_context():
        build_dataset(owner.org_id, member.user_id, utcnow())
        db.session.remove()
    return app.test_client(), {"Authorization": f"Bearer {make_api_key(viewer)}"}


FORMATS = [("gap-remediations", "json"), ("gap-remediations", "csv"), ("risk-heatmap", "json"),
           ("risk-heatmap", "csv"), ("executive-summary", "json"), ("executive-summary", "csv"),
           ("executive-summary", "markdown"), ("executive-summary", "html"), ("executive-summary", "pdf"),
           ("benchmarking", "json"), ("benchmarking", "csv"), ("posture-score", "json"), ("posture-score", "csv"),
           ("control-health-scorecard", "json"), ("control-health-scorecard", "csv"), ("kpi-trends", "json"),
           ("kpi-trends", "csv")]


def test_the_formats_each_report_declares():
    declared = {(slug, fmt) for slug in {s for s, _ in FORMATS} for fmt in registry.get(slug).formats}
    assert declared == set(FORMATS)
    assert registry.get("executive-summary").formats == ("json", "markdown", "html", "csv", "pdf")
    assert {registry.get(s).category for s, _ in FORMATS} == {"Program"}


@pytest.mark.parametrize("slug,fmt", FORMATS)
def test_each_format_parses(live, slug, fmt):
    client, headers = live
    resp = get_report(client, slug, headers=headers, format=fmt)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:400]
    body = resp.get_data()
    if fmt == "json":
        doc = json.loads(body)
        assert doc["report"] == slug and doc["summary"]
        if slug == "gap-remediations":
            assert doc["summary"]["tracked"] == 3 and doc["summary"]["overdue"] == 1
        if slug == "benchmarking":
            assert any("ILLUSTRATIVE" in n for n in doc["notes"])
        if slug == "risk-heatmap":
            assert doc["summary"]["vendors_at_risk"] == 2
    elif fmt == "csv":
        text = body.decode("utf-8")
        blocks = csv_blocks(text)
        summary = dict(row for row in blocks["Summary"][1:])
        assert "attachment" in resp.headers["Content-Disposition"]
        if slug == "gap-remediations":
            assert summary["tracked"] == "3" and summary["resolved_by_evidence"] == "1"
            queue = blocks["Remediation queue (worst first)"]
            header = queue[0]
            cc74 = next(dict(zip(header, r)) for r in queue[1:] if r[0] == "SOC2:CC7.4")
            assert cc74["Tracking"] == "in_progress" and cc74["Suggested playbook"] == "Restart gw"
        if slug == "executive-summary":
            actions = blocks["Leadership actions"]
            assert actions[0] == ["Rank", "Action", "Figure", "Metric", "Rule", "Link"] and len(actions) == 10
        if slug == "benchmarking":
            first = next(csv.reader(io.StringIO(text)))
            assert first[0].startswith("# Note: Benchmark cohorts are ILLUSTRATIVE")
        if slug == "posture-score":
            assert summary["risk"] == "80.0" and summary["attestations"] == "25.0"
        if slug == "kpi-trends":
            assert len(blocks["Weekly KPIs"]) == 13  # header + 12 weeks
        if slug == "control-health-scorecard":
            rows = blocks["Scorecard by framework"]
            soc2 = dict(zip(rows[0], next(r for r in rows[1:] if r[0] == "SOC2")))
            assert soc2["Inherited coverage %"] == "50.0" and soc2["Remediations closed"] == "1"
        list(csv.reader(io.StringIO(text)))
    elif fmt == "markdown":
        text = body.decode("utf-8")
        assert "Executive compliance summary" in text and "Leadership actions" in text
        assert "Collect the renewed SOC 2 Type II report from Paymo" in text
    elif fmt == "html":
        text = body.decode("utf-8")
        assert "<html" in text.lower() and "Leadership actions" in text and "Paymo" in text
    elif fmt == "pdf":
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(body))
        text = "".join(page.extract_text() for page in reader.pages)
        assert "Executive" in text and "Paymo" in text


@pytest.mark.parametrize("slug,params", [
    ("gap-remediations", {"periodDays": "0"}), ("gap-remediations", {"framework": "sox"}),
    ("gap-remediations", {"bogus": "1"}), ("gap-remediations", {"format": "pdf"}),
    ("risk-heatmap", {"periodDays": "731"}), ("risk-heatmap", {"format": "xml"}),
    ("executive-summary", {"periodDays": "many"}), ("executive-summary", {"format": "zip"}),
    ("benchmarking", {"cohort": "unicorns"}), ("benchmarking", {"format": "html"}),
    ("posture-score", {"weeks": "0"}), ("posture-score", {"weeks": "27"}),
    ("control-health-scorecard", {"window": "14d"}), ("control-health-scorecard", {"periodDays": "30"}),
    ("kpi-trends", {"weeks": "53"}), ("kpi-trends", {"window": "30d"}),
])
def test_bad_parameters_are_400(live, slug, params):
    client, headers = live
    resp = get_report(client, slug, headers=headers, **params)
    assert resp.status_code == 400, (slug, params, resp.get_data(as_text=True)[:300])
    assert resp.get_json()["error_code"] == "VALIDATION_ERROR"


def test_parameters_are_echoed(live):
    client, headers = live
    doc = get_report(client, "benchmarking", headers=headers, cohort="fintech").get_json()
    assert doc["params"]["cohort"] == "fintech" and doc["summary"]["cohort_label"]
    doc = get_report(client, "gap-remediations", headers=headers, framework="iso27001").get_json()
    assert doc["params"]["framework"] == "ISO27001"
    assert {r["framework"] for r in doc["sections"]["queue"]["rows"]} == {"ISO27001"}
