"""The "Scope & controls" reports on hand-built datasets at a fixed NOW (registry.build pins the numbers), their
JSON and CSV endpoints (parsed), bad parameters (400 envelope), empty orgs and tenant isolation."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

from zentro.audit.service import SYSTEM, record
from zentro.automations.models import Guardrail
from zentro.compliance import engine
from zentro.compliance import report_registry as registry
from zentro.compliance.catalog import load_catalog
from zentro.compliance.models import Attestation, Vendor
from zentro.compliance.reporting import to_dict
from zentro.compliance.reports import regulatory_impact
from zentro.compliance.vendors import load_rules
from zentro.extensions import db
from zentro.incidents.models import Incident
from zentro.platform.types import utcnow

from .analytics_helpers import (NOW, checkpoint, committee, csv_blocks, days_ago, depends, gap_remediation,  # noqa: F401
                                get_report, scope, service)
from .engine_helpers import attestation, evidence, exception, policy
from .register_helpers import api, error_of, other_api, owner, stranger  # noqa: F401

EXPECTED_SOC2_XW, EXPECTED_PCI_XW, EXPECTED_PCI_CROSSWALK, EXPECTED_PCI_GAPS = 2, 4, 183, 63
EXPECTED_PCI_BASE, EXPECTED_PCI_SCENARIO = 7.5, 9.2
SLUGS = ("scope-boundary", "control-graph", "control-ownership", "policy-drift", "regulatory-impact",
         "inherited-control-gaps")


def rows(report, key: str) -> list[dict]:
    return to_dict(report)["sections"][key]["rows"]


def on_service(org_id: int, service_id: int, *tags: str, at: dt.datetime, n: int = 1) -> None:
    for _ in range(n):
        record(org_id, "service.change_recorded", SYSTEM, target_type="service", target_id=service_id,
               control_tags=tags, now=at)
    db.session.flush()


def incident(org_id: int, service_id: int, now: dt.datetime = NOW) -> Incident:
    at = days_ago(4, now)
    row = Incident(org_id=org_id, number=1, title="Checkout errors", service_id=service_id, started_at=at,
                   created_at=at, updated_at=at, last_seen_at=at)
    db.session.add(row)
    db.session.flush()
    return row


def vendor_row(org_id: int, name: str, category: str, tier: str, report_type: str, expires: dt.datetime | None,
               owner_id: int | None = None) -> Vendor:
    row = Vendor(org_id=org_id, name=name, category=category, risk_tier=tier, report_type=report_type,
                 report_expires_at=expires, owner_id=owner_id,
                 inherited_controls=load_rules().inherited(category, report_type), created_at=days_ago(400))
    db.session.add(row)
    db.session.flush()
    return row


@pytest.fixture
def people(make_member):
    """(owner, admin, member) of one org."""
    o = make_member("acme", "owner", email="olga@acme.example", plan="enterprise")
    a = make_member("acme", "admin", email="adam@acme.example", plan="enterprise")
    m = make_member("acme", "member", email="mia@acme.example", plan="enterprise")
    return o, a, m


# --- scope-boundary ---------------------------------------------------------------------------------------

def build_scope_dataset(org_id: int, now: dt.datetime = NOW) -> dict[str, int]:
    """pay (in: SOC2 + PCI, cardholder + pii), db (in: PCI, cardholder), web (out), mail (unmapped); edges
    pay→db inside, web→pay crossing, pay→mail crossing (unmapped end), web→mail outside. Evidence about pay: two
    change events (PCIDSS:6.5 + SOC2:CC8.1) 5 days ago and one event on its incident (SOC2:CC7.3) 3 days ago;
    about db: one event 100 days ago (outside the 90-day window); about web (out of scope): one event."""
    ids = {n: service(org_id, n).id for n in ("pay", "db", "web", "mail")}
    scope(org_id, ids["pay"], ["SOC2", "PCIDSS"], data_classes=["pii", "cardholder"])
    scope(org_id, ids["db"], ["PCIDSS"], data_classes=["cardholder"])
    scope(org_id, ids["web"], [], in_scope=False)
    for a, b in (("pay", "db"), ("web", "pay"), ("pay", "mail"), ("web", "mail")):
        depends(org_id, ids[a], ids[b])
    on_service(org_id, ids["pay"], "PCIDSS:6.5", "SOC2:CC8.1", at=days_ago(5, now), n=2)
    inc = incident(org_id, ids["pay"], now)
    record(org_id, "incident.acknowledged", SYSTEM, target_type="incident", target_id=inc.id,
           control_tags=("SOC2:CC7.3",), now=days_ago(3, now))
    on_service(org_id, ids["db"], "PCIDSS:10.2", at=days_ago(100, now))
    on_service(org_id, ids["web"], "SOC2:CC6.1", at=days_ago(2, now))
    evidence(org_id, "SOC2:CC6.6", at=days_ago(1, now))  # about nothing in particular: not boundary evidence
    db.session.commit()
    return ids


def test_scope_boundary_pins(app, ctx, people):
    org = people[0].org_id
    build_scope_dataset(org)
    r = registry.build("scope-boundary", org, NOW)
    s = r.summary
    assert {k: s[k] for k in ("services", "in_scope", "out_of_scope", "unmapped", "flows", "flows_inside",
                              "flows_crossing", "flows_outside", "frameworks_in_scope", "boundary_events")} == {
        "services": 4, "in_scope": 2, "out_of_scope": 1, "unmapped": 1, "flows": 4, "flows_inside": 1,
        "flows_crossing": 2, "flows_outside": 1, "frameworks_in_scope": 2, "boundary_events": 5}
    assert s["data_classes"] == {"pii": 1, "phi": 0, "cardholder": 2, "credentials": 0, "customer-content": 0,
                                 "financial": 0}
    systems = {x["service"]: x for x in rows(r, "systems")}
    assert systems["pay"]["audit_rows"] == 5 and systems["pay"]["controls_tagged"] == 3
    assert systems["pay"]["flows_inside"] == 1 and systems["pay"]["flows_crossing"] == 2
    assert systems["db"]["audit_rows"] == 0 and systems["db"]["flows_crossing"] == 0
    frameworks = {x["framework"]: x for x in rows(r, "frameworks")}
    assert set(frameworks) == {"SOC2", "PCIDSS"}
    assert frameworks["SOC2"]["systems"] == 1 and frameworks["SOC2"]["controls"] == 61
    assert frameworks["SOC2"]["evidenced_direct"] == 2  # CC8.1, CC7.3
    assert frameworks["PCIDSS"]["system_names"] == ["db", "pay"] and frameworks["PCIDSS"]["evidenced_direct"] == 1
    catalog = load_catalog()
    seen = {"PCIDSS:6.5", "SOC2:CC8.1", "SOC2:CC7.3"}
    for key, row in frameworks.items():  # crosswalk-inclusive count: the engine's one-hop equivalents
        expected = sum(1 for t in catalog.tags_for(key) if catalog.equivalents(t) & seen)
        assert row["evidenced_with_crosswalk"] == expected
        assert row["coverage_pct"] == round(100 * expected / row["controls"], 1)
    assert frameworks["SOC2"]["evidenced_with_crosswalk"] == EXPECTED_SOC2_XW
    assert frameworks["PCIDSS"]["evidenced_with_crosswalk"] == EXPECTED_PCI_XW
    flows = rows(r, "flows")
    assert [f["classification"] for f in flows] == ["crossing", "crossing", "inside", "outside"]
    assert flows[0]["from"] == "pay" and flows[0]["to"] == "mail" and flows[0]["data_classes"] == ["pii", "cardholder"]
    unmapped = rows(r, "unmapped")
    assert [(u["service"], u["flows_to_in_scope"]) for u in unmapped] == [("mail", 1)]
    # the default window is 30 days; a 7-day window ending 4 days later drops the 5-day-old change events
    assert registry.build("scope-boundary", org, NOW, window="7d").summary["boundary_events"] == 5
    assert registry.build("scope-boundary", org, NOW + dt.timedelta(days=4), window="7d").summary[
        "boundary_events"] == 1


# --- control-graph ----------------------------------------------------------------------------------------

def test_control_graph_pins(app, ctx, people):
    org = people[0].org_id
    evidence(org, "PCIDSS:6.5", "SOC2:CC8.1", "ISO27001:A.8.32", at=days_ago(5), n=3)
    evidence(org, "PCIDSS:6.5", "SOC2:CC8.1", at=days_ago(200))  # outside the (30-day default) window
    evidence(org, "PCIDSS:10.2", "SOC2:CC7.2", at=days_ago(2))
    policy(org, "Change policy", ["PCIDSS:6.5", "PCIDSS:10.2", "SOC2:CC8.1"])
    policy(org, "Logging", ["PCIDSS:10.2", "SOC2:CC8.1"])
    policy(org, "Draft", ["PCIDSS:1.1", "PCIDSS:1.2"], status="draft", accepted_at=None)
    db.session.commit()
    catalog = load_catalog()
    r = registry.build("control-graph", org, NOW, framework="pci-dss")
    s = r.summary
    pci = set(catalog.tags_for("PCIDSS"))
    xw = [e for e in catalog.crosswalk.edges if e.from_ in pci or e.to in pci]
    assert s["selected_controls"] == 63
    assert s["crosswalk_edges"] == len(xw) == EXPECTED_PCI_CROSSWALK
    assert s["crosswalk_full"] + s["crosswalk_partial"] == s["crosswalk_edges"]
    assert s["thematic_edges"] == 63 - 12  # one star per family, 12 families
    # co-occurring pairs touching PCI in the window: (6.5, CC8.1) 3, (6.5, A.8.32) 3, (10.2, CC7.2) 1
    audit = {(e["source"], e["target"]): e["weight"] for e in rows(r, "edges") if e["kind"] == "shared_audit"}
    assert audit == {("ISO27001:A.8.32", "PCIDSS:6.5"): 3.0, ("PCIDSS:6.5", "SOC2:CC8.1"): 3.0,
                     ("PCIDSS:10.2", "SOC2:CC7.2"): 1.0}
    shared = {(e["source"], e["target"]): e["weight"] for e in rows(r, "edges") if e["kind"] == "shared_policy"}
    assert shared == {("PCIDSS:10.2", "PCIDSS:6.5"): 1.0, ("PCIDSS:10.2", "SOC2:CC8.1"): 2.0,
                      ("PCIDSS:6.5", "SOC2:CC8.1"): 1.0}
    assert s["shared_audit_edges"] == 3 and s["shared_policy_edges"] == 3 and not s["shared_audit_truncated"]
    assert s["edges"] == s["crosswalk_edges"] + 51 + 3 + 3
    nodes = {n["control"]: n for n in rows(r, "nodes")}
    externals = {t for e in xw for t in (e.from_, e.to) if t not in pci} | {"SOC2:CC8.1", "ISO27001:A.8.32",
                                                                          "SOC2:CC7.2"}
    assert s["nodes"] == 63 + len(externals) and not nodes["SOC2:CC8.1"]["in_selection"]
    n65 = nodes["PCIDSS:6.5"]
    assert n65["shared_audit"] == 2 and n65["shared_policy"] == 2 and n65["thematic"] == 1
    assert n65["crosswalk"] == sum(1 for e in xw if "PCIDSS:6.5" in (e.from_, e.to))
    assert n65["degree"] == n65["crosswalk"] + 1 + 2 + 2
    hubs = rows(r, "hubs")
    assert hubs[0]["control"] == s["most_connected"]
    assert hubs[0]["cross_degree"] == max(n["cross_degree"] for n in nodes.values() if n["in_selection"])
    assert s["max_degree"] == max(n["degree"] for n in nodes.values() if n["in_selection"])
    # the whole catalog: every control a node, all crosswalk edges, every family a star
    whole = registry.build("control-graph", org, NOW).summary
    assert whole["nodes"] == len(catalog.all_tags()) and whole["crosswalk_edges"] == len(catalog.crosswalk.edges)
    assert whole["thematic_edges"] == len(catalog.all_tags()) - sum(len(f.families)
                                                                    for f in catalog.frameworks.values())
    assert whole["shared_audit_edges"] == 4  # + (A.8.32, CC8.1)
    assert whole["shared_policy_edges"] == 3


# --- control-ownership ------------------------------------------------------------------------------------

def test_control_ownership_pins(app, ctx, people):
    o, a, m = people
    org = o.org_id
    pay = service(org, "pay").id
    scope(org, pay, ["SOC2", "PCIDSS"])
    scope(org, service(org, "web").id, ["SOC2"])
    attestation(org, "SOC2:CC8.1", due_at=days_ago(20), status="attested", attested_at=days_ago(20),
                valid_until=days_ago(-70), owner_id=m.user_id)
    attestation(org, "PCIDSS:10.2", due_at=days_ago(-30), owner_id=a.user_id, created_at=days_ago(300))
    attestation(org, "PCIDSS:10.2", due_at=days_ago(2), owner_id=m.user_id, created_at=days_ago(40))  # latest
    attestation(org, "SOC2:CC6.1", due_at=days_ago(-10))  # no owner: no R
    exception(org, "PCIDSS:6.5").approver_id = a.user_id
    exception(org, "PCIDSS:1.1", expires_at=days_ago(1)).approver_id = a.user_id  # expired: not consulted
    gap_remediation(org, "SOC2:CC7.3", owner_id=m.user_id)
    gap_remediation(org, "SOC2:CC7.4", owner_id=m.user_id, status="done")  # closed: not consulted
    v = vendor_row(org, "Cloudy", "cloud-infrastructure", "critical", "soc2-type-ii", days_ago(-100), owner_id=a.user_id)
    vendor_row(org, "Old", "saas-productivity", "high", "soc2-type-ii", days_ago(5), owner_id=m.user_id)  # expired
    committee(org, escalation_emails=["board@acme.example", "cfo@acme.example"])
    db.session.commit()
    r = registry.build("control-ownership", org, NOW)
    s = r.summary
    inherited_outside = [t for t in v.inherited_controls if not t.startswith("SOC2:")]
    extra = {"ISO27001:A.8.14", *inherited_outside}  # Old's A.8.14 etc. listed too (inheritance data), any vendor
    old_outside = [t for t in load_rules().inherited("saas-productivity", "soc2-type-ii") if not t.startswith("SOC2:")]
    extra |= set(old_outside)
    assert s["basis"] == "audit scope" and s["frameworks"] == ["soc2", "iso27001", "pci-dss"]
    assert s["controls"] == 61 + 63 + len(extra)
    assert s["with_responsible"] == 2 and s["without_responsible"] == s["controls"] - 2
    assert s["accountable_vendor"] == len(v.inherited_controls)
    assert s["with_consulted"] == 2 and s["informed_recipients"] == 2
    assert s["attestation_states"]["attested"] == 1 and s["attestation_states"]["overdue"] == 1
    assert s["attestation_states"]["assigned"] == 1
    matrix = {x["control"]: x for x in rows(r, "matrix")}
    assert matrix["PCIDSS:10.2"]["responsible"] == m.email and matrix["PCIDSS:10.2"]["attestation_state"] == "overdue"
    assert matrix["SOC2:CC8.1"]["responsible"] == m.email and matrix["SOC2:CC8.1"]["attestation_state"] == "attested"
    assert matrix["SOC2:CC6.1"]["no_responsible"] and matrix["SOC2:CC6.1"]["attestation_state"] == "assigned"
    assert matrix["SOC2:CC6.4"]["accountable"] == a.email and matrix["SOC2:CC6.4"]["accountable_source"] == "vendor: Cloudy"
    assert matrix["SOC2:CC1.1"]["accountable"] == o.email and matrix["SOC2:CC1.1"]["accountable_source"] == "org owner"
    assert matrix["PCIDSS:6.5"]["consulted"] == [a.email] and matrix["SOC2:CC7.3"]["consulted"] == [m.email]
    assert matrix["PCIDSS:1.1"]["consulted"] == [] and matrix["SOC2:CC7.4"]["consulted"] == []
    assert matrix["SOC2:CC1.1"]["informed"] == ["board@acme.example", "cfo@acme.example"]
    assert matrix["SOC2:CC1.1"]["scope_systems"] == 2 and matrix["PCIDSS:1.1"]["scope_systems"] == 1
    assert not matrix["ISO27001:A.7.1"]["in_scope"]
    people_rows = {p["person"]: p for p in rows(r, "people")}
    assert people_rows[m.email]["responsible"] == 2 and people_rows[m.email]["consulted"] == 1
    assert people_rows[a.email]["accountable"] == len(v.inherited_controls) and people_rows[a.email]["consulted"] == 1
    # an explicit framework selection lists exactly its controls
    only = registry.build("control-ownership", org, NOW, framework="pci-dss")
    assert only.summary["controls"] == 63 and only.summary["with_responsible"] == 1


# --- policy-drift -----------------------------------------------------------------------------------------

def build_drift_dataset(org_id: int, admin_id: int) -> None:
    pay = service(org_id, "pay").id
    scope(org_id, pay, ["PCIDSS"])
    evidence(org_id, "PCIDSS:6.5", "SOC2:CC8.1", at=days_ago(5), n=2)  # fresh, direct
    evidence(org_id, "PCIDSS:10.2", at=days_ago(100))  # stale
    attestation(org_id, "PCIDSS:6.5", due_at=days_ago(-20), status="attested", attested_at=days_ago(5),
                valid_until=days_ago(-85))
    exception(org_id, "PCIDSS:6.5")  # caps 6.5 at 50: a gap despite fresh evidence and a valid attestation
    attestation(org_id, "SOC2:CC8.1", due_at=days_ago(-20), status="attested", attested_at=days_ago(5),
                valid_until=days_ago(-85))
    policy(org_id, "Change policy", ["PCIDSS:6.5", "PCIDSS:10.2", "SOC2:CC8.1"], accepted_at=days_ago(10))
    policy(org_id, "Logging policy", ["PCIDSS:10.2", "PCIDSS:10.4"], status="review", accepted_at=None)
    policy(org_id, "Crypto policy", ["PCIDSS:3.5"], status="draft", accepted_at=None)
    policy(org_id, "Old firewall policy", ["PCIDSS:1.1"], status="retired", accepted_at=None)
    db.session.add(Guardrail(org_id=org_id, service_id=pay, name="Protect tier 0", kind="tier_protection",
                             params={"max_tier": 0}))
    db.session.add(Guardrail(org_id=org_id, name="Holiday freeze", kind="change_freeze", params={}, enabled=False))
    db.session.commit()


def test_policy_drift_pins(app, ctx, people):
    org = people[0].org_id
    build_drift_dataset(org, people[1].user_id)
    r = registry.build("policy-drift", org, NOW)
    s = r.summary
    fr = engine.assess(org, "PCIDSS", 30, NOW)
    assert fr.control("PCIDSS:6.5").score == 50.0  # 70 + 30 capped by the exception
    assert fr.control("PCIDSS:10.2").score == 50.0  # accepted policy only: partial evidence, no attestation
    assert s["frameworks"] == ["pci-dss"] and s["gaps"] == len(fr.gaps) == EXPECTED_PCI_GAPS
    assert s["accepted_policies"] == 1 and s["drifting_policies"] == 1 and s["drift_pairs"] == 2
    drift = rows(r, "drift")
    assert [(d["policy"], d["control"], d["score"]) for d in drift] == [
        ("Change policy", "PCIDSS:6.5", 50.0), ("Change policy", "PCIDSS:10.2", 50.0)]
    assert "exception" in drift[0]["reason"]
    assert s["guardrails_enabled"] == 1 and s["guardrails_drifting"] == 1
    g = rows(r, "guardrails")[0]
    assert g["guardrail"] == "Protect tier 0" and g["service"] == "pay" and g["gap_controls"] == ["PCIDSS:6.5"]
    assert g["control_states"][0] == "SOC2:CC8.1 passing (100)"
    assert s["would_help_policies"] == 2 and s["would_help_pairs"] == 3
    assert {(h["policy"], h["control"]) for h in rows(r, "would_help")} == {
        ("Logging policy", "PCIDSS:10.2"), ("Logging policy", "PCIDSS:10.4"), ("Crypto policy", "PCIDSS:3.5")}
    uncovered = {u["control"] for u in rows(r, "uncovered")}
    assert s["uncovered_gaps"] == len(uncovered) == EXPECTED_PCI_GAPS - 4  # 6.5, 10.2, 10.4, 3.5 are named
    assert "PCIDSS:1.1" in uncovered  # a retired policy covers nothing
    # SOC 2 selected instead: CC8.1 passes, so the change policy does not drift there
    soc = registry.build("policy-drift", org, NOW, framework="soc2").summary
    assert soc["drift_pairs"] == 0 and soc["guardrails_drifting"] == 1


# --- regulatory-impact ------------------------------------------------------------------------------------

def test_scenario_file_is_consistent():
    doc = regulatory_impact.read_scenarios()
    catalog = load_catalog()
    assert doc.scenarios[0].key == "pci-dss-v4-future-dated" and "MODELLED" in " ".join(doc.about)
    for s in doc.scenarios:
        for a in s.add:
            assert not catalog.has(f"{s.framework}:{a.id}") and a.maps_to and all(catalog.has(t) for t in a.maps_to)
        assert all(catalog.has(t) for t in (*s.remove, *s.reweight))


def test_scenario_file_refuses_unknown_or_existing_controls(tmp_path):
    doc = json.loads(regulatory_impact.SCENARIOS_FILE.read_text())
    bad = json.loads(json.dumps(doc))
    bad["scenarios"][0]["add"][0]["id"] = "6.5"  # exists in the catalog
    (tmp_path / "a.json").write_text(json.dumps(bad))
    with pytest.raises(regulatory_impact.ScenarioError, match="already exists"):
        regulatory_impact.read_scenarios(tmp_path / "a.json")
    bad = json.loads(json.dumps(doc))
    bad["scenarios"][1]["remove"] = ["HIPAA:164.999"]
    (tmp_path / "b.json").write_text(json.dumps(bad))
    with pytest.raises(regulatory_impact.ScenarioError, match="not a HIPAA control"):
        regulatory_impact.read_scenarios(tmp_path / "b.json")
    bad = json.loads(json.dumps(doc))
    bad["scenarios"][0]["add"][0]["maps_to"] = ["PCIDSS:99.9"]
    (tmp_path / "c.json").write_text(json.dumps(bad))
    with pytest.raises(regulatory_impact.ScenarioError, match="unknown control"):
        regulatory_impact.read_scenarios(tmp_path / "c.json")


def build_impact_dataset(org_id: int) -> None:
    evidence(org_id, "PCIDSS:6.5", at=days_ago(5), n=2)
    evidence(org_id, "PCIDSS:8.4", at=days_ago(2))  # 8.4.2 (MFA into the CDE) inherits this evidence
    attestation(org_id, "PCIDSS:6.5", due_at=days_ago(-20), status="attested", attested_at=days_ago(5),
                valid_until=days_ago(-85))
    evidence(org_id, "NIST800171:3.12.4", at=days_ago(3))  # the SSP requirement Rev 3 moves
    evidence(org_id, "ISO27001:A.8.16", at=days_ago(1))  # a new-in-2022 control, weighted double
    db.session.commit()


def test_regulatory_impact_pins(app, ctx, people):
    org = people[0].org_id
    build_impact_dataset(org)
    r = registry.build("regulatory-impact", org, NOW)
    s = r.summary
    fr = engine.assess(org, "PCIDSS", 30, NOW)
    total_w = sum(c.weight for c in fr.controls)
    added = [(x.weight, fr.control(x.maps_to[0]).evidence_points)
             for x in regulatory_impact.load_scenarios().scenarios[0].add]
    assert sum(w for w, _ in added) == 12.5
    expected = round((sum(c.weight * c.score for c in fr.controls) + sum(w * p for w, p in added))
                     / (total_w + 12.5), 1)
    assert s["scenario"] == "pci-dss-v4-future-dated" and s["baseline_readiness"] == fr.readiness == EXPECTED_PCI_BASE
    assert s["scenario_readiness"] == expected == EXPECTED_PCI_SCENARIO
    assert s["delta"] == round(expected - fr.readiness, 1)
    assert s["new_gaps"] == 10 and s["effort_hours"] == 80.0 and s["hours_per_new_gap"] == 8
    changes = {c["control"]: c for c in rows(r, "changes")}
    assert len(changes) == 11 and changes["PCIDSS:8.4.2"]["score"] == 70.0 and not changes["PCIDSS:8.4.2"]["new_gap"]
    assert changes["PCIDSS:8.4.2"]["mapped_to"] == ["PCIDSS:8.4 (full, 70 pts)"]
    assert changes["PCIDSS:6.4.3"]["score"] == 0.0 and changes["PCIDSS:6.4.3"]["new_gap"]
    assert len(rows(r, "new_gaps")) == 10

    everything = registry.build("regulatory-impact", org, NOW, scenario="all")
    by_key = {x["scenario"]: x for x in rows(everything, "scenarios")}
    assert list(by_key) == list(regulatory_impact.SCENARIO_KEYS)
    nist = by_key["nist-800-171-rev3"]
    assert nist["added"] == 9 and nist["removed"] == 1 and nist["gaps_dropped"] == 0
    # 03.15.02 maps to the (evidenced) 3.12.4: passes; the other eight are new gaps
    assert nist["new_gaps"] == 8 and nist["effort_hours"] == 64.0
    iso = by_key["iso27001-2022-transition"]
    assert iso["reweighted"] == 11 and iso["added"] == 0 and iso["new_gaps"] == 0 and iso["effort_hours"] == 0
    iso_fr = engine.assess(org, "ISO27001", 30, NOW)
    weights = {c.tag: c.weight for c in iso_fr.controls}
    weights.update(regulatory_impact.load_scenarios().scenarios[3].reweight)
    assert iso["scenario_readiness"] == engine.weighted_mean((weights[c.tag], c.score) for c in iso_fr.controls)
    hipaa = by_key["hipaa-security-rule-nprm"]
    assert hipaa["reweighted"] == sum(1 for c in load_catalog().framework("HIPAA").controls
                                      if c.attrs.get("required") is False) and hipaa["new_gaps"] == 7
    assert everything.summary["new_gaps"] == 10 + 7 + 8 and everything.summary["effort_hours"] == 200.0
    assert everything.summary["scenarios"] == 4


# --- inherited-control-gaps -------------------------------------------------------------------------------

def build_vendor_dataset(org_id: int, now: dt.datetime = NOW) -> None:
    vendor_row(org_id, "Cloudy", "cloud-infrastructure", "critical", "soc2-type-ii", days_ago(-100, now))  # 16, covered
    vendor_row(org_id, "PayCo", "payment-processor", "high", "iso27001", days_ago(5, now))  # 9 supposed, report expired
    vendor_row(org_id, "Helpdesk", "saas-productivity", "low", "none", None)  # 7 supposed, no report
    vendor_row(org_id, "IdP", "identity-provider", "medium", "iso27001", days_ago(-200, now))  # 5 covered, 2 service
    evidence(org_id, "SOC2:CC6.7", at=days_ago(3, now))  # PayCo's transmission control: own evidence
    evidence(org_id, "ISO27001:A.8.5", at=days_ago(200, now))  # IdP's authentication: outside the window
    attestation(org_id, "SOC2:PI1.3", due_at=days_ago(-20, now), status="attested", attested_at=days_ago(5, now),
                valid_until=days_ago(-85, now))
    db.session.commit()


def test_inherited_control_gaps_pins(app, ctx, people):
    org = people[0].org_id
    build_vendor_dataset(org)
    r = registry.build("inherited-control-gaps", org, NOW)
    s = r.summary
    assert s["vendors"] == 4 and s["inherited_controls"] == 16 + 9 + 7 + 7
    assert s["covered_by_report"] == 16 + 5 and s["attested"] == 1
    # PayCo: 9 supposed − CC6.7 (own evidence) − A.8.24 (CC6.7 is its crosswalk equivalent) − PI1.3 (attested)
    assert s["gaps"] == 6 + 7 + 2 and s["vendors_with_gaps"] == 3
    assert s["gaps_by_tier"] == {"critical": 0, "high": 6, "medium": 2, "low": 7}
    vendors = {v["vendor"]: v for v in rows(r, "vendors")}
    assert [v["vendor"] for v in rows(r, "vendors")] == ["Cloudy", "PayCo", "IdP", "Helpdesk"]  # tier order
    assert vendors["PayCo"]["report_status"] == "expired" and vendors["PayCo"]["gaps"] == 6
    assert vendors["IdP"]["covered_by_report"] == 5 and vendors["IdP"]["gaps"] == 2
    controls = {(c["vendor"], c["control"]): c for c in rows(r, "controls")}
    assert controls[("PayCo", "SOC2:CC6.7")]["own_evidence"] == 1 and not controls[("PayCo", "SOC2:CC6.7")]["gap"]
    assert controls[("PayCo", "SOC2:PI1.3")]["attested"] and not controls[("PayCo", "SOC2:PI1.3")]["gap"]
    idp = controls[("IdP", "ISO27001:A.8.5")]
    assert idp["report_valid"] and not idp["type_covers"] and idp["gap"] and idp["scope"] == "service"
    assert "does not cover service controls" in idp["reason"]
    assert controls[("Helpdesk", "SOC2:CC6.4")]["reason"].startswith("no assurance report")
    # a year-long window reaches the old A.8.5 evidence: one gap fewer
    assert registry.build("inherited-control-gaps", org, NOW, window="365d").summary["gaps"] == 14


# --- empty orgs, endpoints, parameters, isolation ---------------------------------------------------------

@pytest.mark.parametrize("slug", SLUGS)
def test_empty_org_gives_an_empty_report(app, ctx, people, slug):
    r = registry.build(slug, people[0].org_id, NOW)
    doc = to_dict(r)
    assert doc["report"] == slug
    if slug == "control-graph":  # the catalog's structure is there without any org data
        assert r.summary["shared_audit_edges"] == 0 and r.summary["shared_policy_edges"] == 0
    elif slug == "regulatory-impact":
        assert r.summary["baseline_readiness"] == 0.0 and r.summary["new_gaps"] == 11
    elif slug == "policy-drift":
        assert r.summary["drift_pairs"] == 0 and r.summary["guardrails_enabled"] == 0
    else:
        assert all(not s["rows"] for s in doc["sections"].values()), slug


def seed_all(org_id: int, admin_id: int) -> None:
    """The scope and vendor datasets relative to the real now (endpoint tests run at the wall clock)."""
    now = utcnow()
    build_scope_dataset(org_id, now)
    build_vendor_dataset(org_id, now)
    policy(org_id, "Change policy", ["PCIDSS:6.5", "SOC2:CC8.1"])
    db.session.commit()


@pytest.mark.parametrize("slug", SLUGS)
def test_endpoints_serve_json_and_csv(app, api, owner, slug):
    with app.app_context():
        # endpoint tests run at the real now: move the dataset there
        seed_all(owner.org_id, owner.user_id)
    resp = get_report(api.client, slug, headers=api.headers)
    assert resp.status_code == 200 and resp.mimetype == "application/json", resp.get_data(as_text=True)[:300]
    doc = json.loads(resp.get_data())
    assert doc["report"] == slug and doc["sections"]
    resp = get_report(api.client, slug, headers=api.headers, format="csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    text = resp.get_data(as_text=True)
    blocks = csv_blocks(text)
    assert blocks["Summary"][0] == ["Metric", "Value"]
    for section in doc["sections"].values():
        block = blocks[section["title"]]
        assert block[0] == [c["title"] for c in section["columns"]] and len(block) - 1 == len(section["rows"])
    assert sum(1 for _ in csv.reader(io.StringIO(text))) >= len(blocks) * 2


def test_endpoint_numbers_match_the_service(app, api, owner):
    """The endpoint serves what registry.build computes at the same moment (JSON summary and CSV summary)."""
    with app.app_context():
        seed_all(owner.org_id, owner.user_id)
    for slug in SLUGS:
        doc = get_report(api.client, slug, headers=api.headers).get_json()
        with app.app_context():
            expected = to_dict(registry.build(slug, owner.org_id, utcnow()))["summary"]
        assert doc["summary"] == expected, slug
        if slug == "scope-boundary":
            assert doc["summary"]["boundary_events"] == 5 and doc["summary"]["flows_crossing"] == 2
        if slug == "inherited-control-gaps":
            # as the pinned dataset (15 gaps), but the scope dataset's SOC2:CC6.1/CC6.6 events are crosswalk
            # evidence for IdP's A.8.5 and A.5.17: 13
            assert doc["summary"]["gaps"] == 13 and doc["summary"]["covered_by_report"] == 21
        blocks = csv_blocks(get_report(api.client, slug, headers=api.headers, format="csv").get_data(as_text=True))
        summary = dict(blocks["Summary"][1:])
        scalar = {k: v for k, v in expected.items() if not isinstance(v, (dict, list))}
        assert set(summary) == set(scalar), slug
        for k, v in scalar.items():
            assert summary[k] == ("" if v is None else str(v).lower() if isinstance(v, bool) else str(v)), (slug, k)


@pytest.mark.parametrize("slug,params", [
    ("scope-boundary", {"window": "14d"}), ("scope-boundary", {"periodDays": "30"}),
    ("control-graph", {"framework": "sox"}), ("control-graph", {"window": "1y"}),
    ("control-ownership", {"framework": "pci-dss,nope"}), ("control-ownership", {"window": "90d"}),
    ("policy-drift", {"periodDays": "0"}), ("policy-drift", {"periodDays": "731"}),
    ("policy-drift", {"framework": "x" * 301}),
    ("regulatory-impact", {"scenario": "pci-dss-v5"}), ("regulatory-impact", {"periodDays": "abc"}),
    ("inherited-control-gaps", {"window": "45d"}), ("inherited-control-gaps", {"tier": "high"}),
    *[(slug, {"format": "pdf"}) for slug in SLUGS],
])
def test_bad_parameters_are_400(api, owner, slug, params):
    error_of(get_report(api.client, slug, headers=api.headers, **params), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("slug", SLUGS)
def test_reports_read_only_their_own_org(app, api, other_api, owner, stranger, slug):
    with app.app_context():
        seed_all(owner.org_id, owner.user_id)
    theirs = get_report(other_api.client, slug, headers=other_api.headers)
    assert theirs.status_code == 200
    body = theirs.get_data(as_text=True)
    for name in ('"pay"', "Cloudy", "PayCo", "Change policy"):
        assert name not in body, (slug, name)
