"""The compliance read endpoints through the test client: formats, CSV headers, validation, roles, scopes and
tenant isolation. Evidence is recorded "now" (the endpoints assess as of the real clock)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
import sqlalchemy as sa

from tests.compliance.engine_helpers import attestation, evidence, exception, policy, vendor
from zentro.audit.models import AuditTag
from zentro.compliance.catalog import load_catalog
from zentro.extensions import db
from zentro.platform.types import utcnow

BASE = "/api/governance/compliance"
SIGN_IN_NOISE = {"session.signed_in", "membership.created", "api_key.created"}  # tagged rows the fixtures' sign-ins write
GET_ENDPOINTS = ["summary", "program", "export", "crosswalk", "evidence-freshness", "baseline-comparison", "type-ii",
                 "iso-assessment", "pci-dss", "hipaa", "nist-csf", "cis-v8", "cmmc-l2", "gdpr-art32", "fedramp-poam"]


@pytest.fixture
def world(app, make_member, sign_in, make_api_key):
    owner = make_member("alpha", "owner")
    viewer = make_member("alpha", "viewer")
    other = make_member("bravo", "owner")
    now = utcnow()
    with app.app_context():
        evidence(owner.org_id, "SOC2:CC6.1", at=now - dt.timedelta(days=2), n=3, action="access.reviewed")
        evidence(owner.org_id, "ISO27001:A.5.15", at=now - dt.timedelta(days=1), action="alpha.iso.only")
        evidence(owner.org_id, "SOC2:CC7.2", at=now - dt.timedelta(days=45), action="alpha.old")
        policy(owner.org_id, "Alpha access policy", ["SOC2:CC6.2"], accepted_at=now - dt.timedelta(days=3))
        vendor(owner.org_id, "AlphaCloud", ["SOC2:CC6.4"], expires=now + dt.timedelta(days=20), tier="critical",
               handles_phi=True, baa=False, handles_personal_data=True, dpa=True,
               next_review_at=now - dt.timedelta(days=1))
        attestation(owner.org_id, "SOC2:CC6.1", due_at=now - dt.timedelta(days=3))
        exception(owner.org_id, "SOC2:CC6.1", opened_at=now - dt.timedelta(days=5), expires_at=now + dt.timedelta(days=30))
        evidence(other.org_id, "SOC2:CC8.1", at=now - dt.timedelta(days=1), action="bravo.secret")
        db.session.commit()
        db.session.remove()
    return {"owner": sign_in(owner), "viewer": sign_in(viewer), "other": sign_in(other),
            "key": make_api_key(owner), "read_key": make_api_key(owner, ["compliance:read"]),
            "wrong_key": make_api_key(owner, ["incidents:read"]), "anon": app.test_client(), "now": now}


@pytest.fixture
def owner(make_member, sign_in):
    return sign_in(make_member("alpha", "owner"))


def rows_of(body, section):
    return body["sections"][section]["rows"]


def test_summary_json(world, app):
    r = world["viewer"].get(f"{BASE}/summary")
    assert r.status_code == 200 and r.mimetype == "application/json"
    body = r.get_json()
    assert body["report"] == "summary" and body["params"]["period_days"] == 30
    soc2 = next(x for x in rows_of(body, "frameworks") if x["framework"] == "SOC2")
    cat = load_catalog()
    with app.app_context():  # every tag in the window (the fixture's rows plus sign-ins and memberships)
        tags = set(db.session.scalars(sa.select(AuditTag.tag).where(
            AuditTag.org_id == world["owner"].member.org_id,
            AuditTag.created_at >= world["now"] - dt.timedelta(days=30))))
    assert {"SOC2:CC6.1", "ISO27001:A.5.15"} <= tags
    # a control is covered when a tag in the window is among its equivalents, plus CC6.2 (the accepted policy)
    # and CC6.4 (inherited from AlphaCloud)
    covered = {t for t in cat.tags_for("SOC2") if cat.equivalents(t) & tags} | {"SOC2:CC6.2", "SOC2:CC6.4"}
    assert {"SOC2:CC5.2", "SOC2:CC6.3"} <= covered  # reached only through the crosswalk from ISO27001:A.5.15
    assert soc2["with_evidence"] == len(covered)
    assert soc2["controls"] == 61
    assert body["summary"]["soc2_coverage_pct"] == round(100 * len(covered) / 61, 1)
    assert any(g["framework"] == "ISO27001" for g in rows_of(body, "gaps"))


def test_summary_csv_has_header_rows(world):
    r = world["owner"].get(f"{BASE}/summary?format=csv&periodDays=7")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    text = r.get_data(as_text=True)
    lines = text.splitlines()
    assert lines[0] == "# Summary" and lines[1] == "Metric,Value"
    assert "# Coverage by framework" in lines
    header = lines[lines.index("# Coverage by framework") + 1]
    assert header.startswith("Framework,Name,Controls,With evidence,Coverage %,Readiness")


@pytest.mark.parametrize("query", ["periodDays=0", "periodDays=731", "periodDays=abc", "periodDays=7.5", "format=xml",
                                   "format=", "framework=nope", "bogus=1", "period_days=7"])
@pytest.mark.parametrize("endpoint", ["summary", "export", "crosswalk", "evidence-freshness", "fedramp-poam", "cis-v8"])
def test_bad_query_is_400_in_the_envelope(owner, endpoint, query):
    if query.startswith("framework") and endpoint not in ("export", "crosswalk", "evidence-freshness"):
        query = "framework=soc2"  # not accepted by the endpoint at all
    r = owner.get(f"{BASE}/{endpoint}?{query}")
    assert r.status_code == 400, (endpoint, query, r.get_data(as_text=True)[:200])
    assert r.get_json()["error_code"] == "VALIDATION_ERROR"


def test_oscal_only_on_the_poam(world):
    assert world["owner"].get(f"{BASE}/type-ii?format=oscal").status_code == 400
    assert world["owner"].get(f"{BASE}/fedramp-poam?format=oscal").status_code == 200


@pytest.mark.parametrize("endpoint", GET_ENDPOINTS)
def test_every_endpoint_answers_json_and_csv_to_a_viewer(world, endpoint):
    for fmt in ("json", "csv"):
        r = world["viewer"].get(f"{BASE}/{endpoint}?format={fmt}&periodDays=90")
        assert r.status_code == 200, (endpoint, fmt, r.get_data(as_text=True)[:300])
        text = r.get_data(as_text=True)
        if fmt == "json":
            body = json.loads(text)
            assert body["params"]["period_days"] == 90 and body["sections"]
        else:
            assert r.mimetype == "text/csv"
            assert list(csv.reader(io.StringIO(text)))[0]
        assert "bravo.secret" not in text


def test_api_key_scopes(world):
    auth = lambda k: {"Authorization": f"Bearer {k}"}  # noqa: E731
    assert world["anon"].get(f"{BASE}/program", headers=auth(world["read_key"])).status_code == 200
    assert world["anon"].get(f"{BASE}/program", headers={"X-API-Key": world["key"]}).status_code == 200
    r = world["anon"].get(f"{BASE}/program", headers=auth(world["wrong_key"]))
    assert r.status_code == 403 and "compliance:read" in r.get_json()["detail"]
    assert world["anon"].get(f"{BASE}/program").status_code == 401


def test_program_rollups(world):
    body = world["owner"].get(f"{BASE}/program").get_json()
    s = body["summary"]
    assert s["frameworks"] == 9
    assert (s["attestations_overdue"], s["attestations_total"]) == (1, 1)
    assert (s["vendors"], s["vendors_reports_expiring_30d"], s["vendors_reviews_overdue"]) == (1, 1, 1)
    assert (s["vendors_baa_missing"], s["vendors_dpa_missing"]) == (1, 0)
    vendors = {r["metric"]: r for r in rows_of(body, "vendors")}
    assert vendors["tier_critical"]["value"] == 1 and vendors["baa_missing"]["vendors"] == ["AlphaCloud"]
    fws = {r["framework"]: r for r in rows_of(body, "frameworks")}
    assert set(fws) == set(load_catalog().frameworks)
    assert s["readiness"] == round(sum(r["readiness"] for r in fws.values()) / 9, 1)
    gaps = rows_of(body, "gaps")
    assert [g["priority"] for g in gaps] == sorted((g["priority"] for g in gaps), reverse=True)


def test_other_org_sees_only_its_data(world):
    body = world["other"].get(f"{BASE}/export?format=json").get_json()
    actions = {r["action"] for r in rows_of(body, "evidence")} - SIGN_IN_NOISE
    assert actions == {"bravo.secret"}
    prog = world["other"].get(f"{BASE}/program").get_json()
    assert prog["summary"]["vendors"] == 0 and prog["summary"]["attestations_total"] == 0
    text = world["other"].get(f"{BASE}/hipaa?format=csv").get_data(as_text=True)
    assert "AlphaCloud" not in text


def test_export_csv_and_framework_filter(world):
    r = world["owner"].get(f"{BASE}/export")
    assert r.status_code == 200 and r.mimetype == "text/csv" and "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert list(rows[0].keys())[:4] == ["Kind", "Id", "Seq", "Occurred at"]
    kinds = [(x["Kind"], x["Action"]) for x in rows if x["Action"] not in SIGN_IN_NOISE]
    # 30 days: the 45-day-old row is out; 3 access reviews, the ISO row, then the accepted policy
    assert kinds == [("audit_event", "access.reviewed")] * 3 + [("audit_event", "alpha.iso.only"),
                                                                ("policy", "policy.accepted")]
    assert rows[-1]["Name"] == "Alpha access policy" and rows[-1]["Control tags"] == "SOC2:CC6.2"
    seqs = [int(x["Seq"]) for x in rows if x["Seq"]]
    assert seqs == sorted(seqs)
    wide = list(csv.DictReader(io.StringIO(world["owner"].get(f"{BASE}/export?periodDays=60").get_data(as_text=True))))
    assert "alpha.old" in {x["Action"] for x in wide}
    # PCI: CC6.1 / A.5.15 rows reach PCI only through their crosswalk equivalents
    cat = load_catalog()
    pci_tags = set().union(*(cat.equivalents(t) for t in cat.tags_for("PCIDSS")))
    body = world["owner"].get(f"{BASE}/export?format=json&framework=pci-dss").get_json()
    for row in rows_of(body, "evidence"):
        assert pci_tags & set(row["control_tags"].split())
    gdpr = world["owner"].get(f"{BASE}/export?format=json&framework=soc2&periodDays=60").get_json()
    assert {r["action"] for r in rows_of(gdpr, "evidence")} >= {"access.reviewed", "alpha.iso.only", "alpha.old"}


def test_crosswalk_matrix(world, app):
    with app.app_context():
        evidence(world["owner"].member.org_id, "SOC2:CC8.1", at=world["now"] - dt.timedelta(days=1), n=3)
        evidence(world["owner"].member.org_id, "ISO27001:A.8.9", at=world["now"] - dt.timedelta(days=1))
        db.session.commit()
    body = world["owner"].get(f"{BASE}/crosswalk").get_json()
    rows = rows_of(body, "matrix")
    row = next(r for r in rows if r["left_control"] == "SOC2:CC8.1" and r["right_control"] == "ISO27001:A.8.9")
    assert (row["strength"], row["left_evidence"], row["right_evidence"], row["evidence_flows"]) == ("partial", 3, 1, True)
    quiet = next(r for r in rows if r["left_control"] == "SOC2:CC8.1" and r["right_control"] == "ISO27001:A.8.25")
    assert (quiet["left_evidence"], quiet["right_evidence"]) == (3, 0)
    cat = load_catalog()
    soc_iso_edges = sum(1 for c in cat.framework("SOC2").controls for t, _ in cat.neighbours(c.tag)
                        if t.startswith("ISO27001:"))
    assert body["summary"]["edges"] == soc_iso_edges
    other = world["owner"].get(f"{BASE}/crosswalk?framework=pci-dss&format=csv").get_data(as_text=True)
    header = other.splitlines()[0]
    assert header.startswith("Framework,Control,Title,Evidence in period")
    assert "PCIDSS:" in other and ",ISO27001," in other


def test_evidence_freshness_queue(world):
    body = world["owner"].get(f"{BASE}/evidence-freshness?framework=soc2&format=json").get_json()
    controls = {r["control"]: r for r in rows_of(body, "controls")}
    assert controls["SOC2:CC7.2"]["status"] == "stale" and controls["SOC2:CC7.2"]["overdue_days"] == 15
    # the sign-ins just now carry SOC2:CC6.1
    assert controls["SOC2:CC6.1"]["status"] == "fresh" and controls["SOC2:CC6.1"]["age_days"] == 0
    assert controls["SOC2:CC6.4"]["status"] == "inherited"
    queue = rows_of(body, "stale_queue")
    assert queue[0]["control"] == "SOC2:CC7.2" and all(r["status"] in ("stale", "missing") for r in queue)
    assert all(r["framework"] == "SOC2" for r in controls.values())
    text = world["owner"].get(f"{BASE}/evidence-freshness?format=csv").get_data(as_text=True)
    assert text.splitlines()[0].startswith("Framework,Control,Title,Status,Last evidence,Age (days),SLA (days)")


def test_baseline_comparison(world):
    body = world["owner"].get(f"{BASE}/baseline-comparison").get_json()
    rows = {r["framework"]: r for r in rows_of(body, "frameworks")}
    assert len(rows) == 9
    soc2 = rows["SOC2"]
    assert soc2["delta"] == round(soc2["readiness"] - soc2["prior_readiness"], 1) and soc2["delta"] > 0


def test_type_ii_counts_bundles_holds_and_exceptions(world, app):
    from tests.compliance.engine_helpers import bundle
    from zentro.audit.service import SYSTEM
    from zentro.incidents.service import create_incident

    with app.app_context():
        org_id = world["owner"].member.org_id
        bundle(org_id, 1, created_at=world["now"] - dt.timedelta(days=3))
        bundle(org_id, 2, created_at=world["now"] - dt.timedelta(days=60))
        inc = create_incident(org_id, title="Held", severity="high", actor=SYSTEM)
        inc.legal_hold = True
        db.session.commit()
    body = world["owner"].get(f"{BASE}/type-ii").get_json()
    assert (body["summary"]["evidence_bundles"], body["summary"]["legal_holds"]) == (1, 1)
    assert body["summary"]["open_exceptions"] == 1
    exc = rows_of(body, "exceptions")
    assert exc[0]["control"] == "SOC2:CC6.1" and exc[0]["status"] == "open"
    assert len(rows_of(body, "trend")) == 12
    cc61 = next(r for r in rows_of(body, "controls") if r["control"] == "SOC2:CC6.1")
    assert cc61["score"] == 50 and len(cc61["trend"]) == 12


def test_packs_specifics(world):
    o = world["owner"]
    hipaa = o.get(f"{BASE}/hipaa").get_json()
    assert hipaa["summary"]["baa_missing"] == 1
    assert rows_of(hipaa, "baa_vendors")[0]["status"] == "BAA missing"
    assert {r["kind"] for r in rows_of(hipaa, "required_vs_addressable")} == {"required", "addressable"}
    csf = o.get(f"{BASE}/nist-csf").get_json()
    assert {r["function"] for r in rows_of(csf, "functions")} == {"GV", "ID", "PR", "DE", "RS", "RC"}
    assert all(r["tier_name"] == "Partial" for r in rows_of(csf, "functions"))  # almost nothing evidenced
    cis = o.get(f"{BASE}/cis-v8").get_json()
    assert [r["group"] for r in rows_of(cis, "implementation_groups")] == ["IG1", "IG2", "IG3"]
    cmmc = o.get(f"{BASE}/cmmc-l2").get_json()
    assert cmmc["summary"]["sprs_max"] == 110 and cmmc["summary"]["sprs_score"] >= -203
    gdpr = o.get(f"{BASE}/gdpr-art32").get_json()
    assert rows_of(gdpr, "dpa_bands")[0] == {"band": "DPA present", "vendors": 1, "names": ["AlphaCloud"]}
    iso = o.get(f"{BASE}/iso-assessment").get_json()
    assert [r["family"] for r in rows_of(iso, "themes")] == ["A.5", "A.6", "A.7", "A.8"]
    pci = o.get(f"{BASE}/pci-dss").get_json()
    assert [r["family"] for r in rows_of(pci, "requirements")] == [str(i) for i in range(1, 13)]


def test_fedramp_poam_formats(world):
    o = world["owner"]
    from zentro.compliance.packs import POAM_COLUMNS

    text = o.get(f"{BASE}/fedramp-poam?format=csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == POAM_COLUMNS and rows[0][0] == "POAM ID" and rows[0][26] == "Auto-Approve"
    cat = load_catalog()
    body = o.get(f"{BASE}/fedramp-poam").get_json()
    items = rows_of(body, "poam")
    assert len(items) == len(rows) - 1 == body["summary"]["open_items"]
    assert len(items) <= len(cat.framework("NIST80053").controls)
    first = items[0]
    assert first["POAM ID"] == f"ZEN-{first['Controls']}" and first["Weakness Source Identifier"].startswith("NIST80053:")
    oscal = o.get(f"{BASE}/fedramp-poam?format=oscal").get_json()
    poam = oscal["plan-of-action-and-milestones"]
    assert poam["metadata"]["oscal-version"].startswith("1.1")
    assert len(poam["poam-items"]) == len(items)
    again = o.get(f"{BASE}/fedramp-poam?format=oscal").get_json()["plan-of-action-and-milestones"]
    assert [i["uuid"] for i in again["poam-items"]] == [i["uuid"] for i in poam["poam-items"]]
    assert again["uuid"] == poam["uuid"]
    other = world["other"].get(f"{BASE}/fedramp-poam?format=oscal").get_json()["plan-of-action-and-milestones"]
    assert not {i["uuid"] for i in other["poam-items"]} & {i["uuid"] for i in poam["poam-items"]}
