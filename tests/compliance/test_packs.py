"""Framework packs and the shared report definition: the pack arithmetic (SPRS, CIS implementation groups, CSF
tiers, HIPAA required/addressable, GDPR DPA bands, POA&M rows and OSCAL ids) on hand-built data, and the renderer
(one Report -> JSON and CSV, streamed)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid

import pytest

from tests.compliance.engine_helpers import NOW, attestation, days_ago, evidence, exception, vendor
from zentro.compliance import packs, reporting
from zentro.compliance.catalog import load_catalog
from zentro.compliance.reporting import Report, Section, columns
from zentro.extensions import db
from zentro.platform.errors import ApiError


@pytest.fixture
def org(app, make_member):
    member = make_member("alpha", "owner")
    with app.app_context():
        yield member.org_id
        db.session.rollback()
        db.session.remove()


def passing(org_id, tag, at=NOW):
    """Fresh direct evidence (70) + a valid attestation (30): the control scores 100."""
    evidence(org_id, tag, at=at - dt.timedelta(days=1))
    attestation(org_id, tag, due_at=at - dt.timedelta(days=10), status="attested", attested_at=at - dt.timedelta(days=5),
                valid_until=at + dt.timedelta(days=300))


def rows(report, key):
    return list(report.section(key).iter_rows())


# --- reporting ------------------------------------------------------------------------------------------------

def _report(calls=None):
    def lazy():
        if calls is not None:
            calls.append(1)
        for i in range(1203):
            yield {"n": i, "when": NOW, "tags": ["A", "B"], "ok": i % 2 == 0, "none": None}

    return Report("demo", "Demo", {"period_days": 30}, {"total": 1203, "nested": {"x": 1}},
                  [Section("numbers", "Numbers", columns("n", ("when", "When"), "tags", "ok", "none"), lazy),
                   Section("small", "Small", columns("k"), [{"k": "v,with comma"}])], NOW)


def test_json_render_matches_the_dict_and_streams_lazily():
    calls = []
    report = _report(calls)
    chunks = reporting.iter_json(report)
    next(chunks)
    assert calls == []  # the rows are read only when their section is written
    body = json.loads(reporting.render(report, "json"))
    assert body == reporting.to_dict(_report())
    assert body["summary"] == {"total": 1203, "nested": {"x": 1}}
    first = body["sections"]["numbers"]["rows"][0]
    assert first == {"n": 0, "when": "2025-06-30T12:00:00Z", "tags": ["A", "B"], "ok": True, "none": None}
    assert len(body["sections"]["numbers"]["rows"]) == 1203
    assert len(list(reporting.iter_json(_report()))) > 3  # several chunks, not one string


def test_csv_blocks_layout():
    text = reporting.render(_report(), "csv").decode()
    lines = text.split("\r\n")
    assert lines[:3] == ["# Summary", "Metric,Value", "total,1203"]  # nested values are JSON-only
    i = lines.index("# Numbers")
    assert lines[i - 1] == "" and lines[i + 1] == "N,When,Tags,Ok,None"
    assert lines[i + 2] == "0,2025-06-30T12:00:00Z,A B,true,"
    assert '"v,with comma"' in text
    assert len(list(reporting.iter_csv(_report()))) >= 3  # flushed every 500 rows


def test_csv_table_layout_is_one_plain_table():
    report = _report()
    report.csv_layout = "table"
    parsed = list(csv.reader(io.StringIO(reporting.render(report, "csv").decode())))
    assert parsed[0] == ["N", "When", "Tags", "Ok", "None"] and len(parsed) == 1204


def test_parse_format():
    assert reporting.parse_format(("json", "csv"), None) == "json"
    assert reporting.parse_format(("csv", "json"), "") == "csv"
    assert reporting.parse_format(("json", "csv"), "csv") == "csv"
    with pytest.raises(ApiError) as err:
        reporting.parse_format(("json", "csv"), "pdf")
    assert err.value.status == 400 and "json, csv" in err.value.detail
    with pytest.raises(ValueError):
        reporting.render(_report(), "xml")


# --- packs ------------------------------------------------------------------------------------------------------

def test_every_pack_builds_and_renders_for_the_workbook(org):
    assert set(packs.PACKS) == {"type-ii", "iso-assessment", "pci-dss", "hipaa", "nist-csf", "cis-v8", "cmmc-l2",
                                "gdpr-art32", "fedramp-poam", "crosswalk"}
    for slug, pack in packs.PACKS.items():
        report = pack.build(org, 30, NOW)
        assert report.slug == slug and report.generated_at == NOW
        assert json.loads(reporting.render(report, "json"))["report"] == slug
        assert reporting.render(report, "csv").decode().strip()
        if pack.framework_key:
            assert load_catalog().framework(pack.framework_key)


def test_sprs_score(org):
    cat = load_catalog()
    fw = cat.framework("NIST800171")
    assert len(fw.controls) == 110 and sum(c.attrs["points"] for c in fw.controls) == 313
    nothing = packs.build_cmmc(org, 30, NOW).summary
    assert (nothing["sprs_score"], nothing["points_lost"]) == (-203, 313)  # 110 - 313, also the floor
    five = next(c for c in fw.controls if c.attrs["points"] == 5)
    one = next(c for c in fw.controls if c.attrs["points"] == 1)
    passing(org, five.tag)
    passing(org, one.tag)
    evidence(org, next(c for c in fw.controls if c.attrs["points"] == 3).tag, at=days_ago(1))  # 70: passing too
    report = packs.build_cmmc(org, 30, NOW)
    assert report.summary["points_lost"] == 313 - 5 - 1 - 3
    assert report.summary["sprs_score"] == 110 - (313 - 9) == -194
    deducted = {r["control"]: r["points_deducted"] for r in rows(report, "controls")}
    assert deducted[five.tag] == 0 and deducted[one.tag] == 0
    assert sum(deducted.values()) == 304


def test_sprs_floor_is_applied():
    class FakeControl:
        def __init__(self, points):
            self.attrs, self.state = {"points": points}, "failing"

    class FakeResult:
        controls = [FakeControl(300), FakeControl(100)]

    assert packs.sprs_score(FakeResult()) == (-203, 400)


def test_cis_implementation_groups(org):
    cat = load_catalog()
    fw = cat.framework("CISV8")
    ig1 = next(c for c in fw.controls if c.attrs["ig"] == [1, 2, 3])
    ig3 = next(c for c in fw.controls if c.attrs["ig"] == [3])
    passing(org, ig1.tag)
    passing(org, ig3.tag)
    groups = {g["group"]: g for g in rows(packs.build_cis(org, 30, NOW), "implementation_groups")}
    members = {n: [c for c in fw.controls if n in c.attrs["ig"]] for n in (1, 2, 3)}
    # crosswalk neighbours of the two safeguards may pick up partial credit: compute from the engine's scores
    from zentro.compliance import engine

    scores = {c.tag: c.score for c in engine.assess(org, "CISV8", 30, NOW).controls}
    assert scores[ig1.tag] == 100 and scores[ig3.tag] == 100
    for n in (1, 2, 3):
        expected = round(sum(c.weight * scores[c.tag] for c in members[n]) / sum(c.weight for c in members[n]), 1)
        assert groups[f"IG{n}"]["readiness"] == expected
        assert groups[f"IG{n}"]["safeguards"] == len(members[n])
    assert len(members[1]) < len(members[2]) < len(members[3]) == len(fw.controls)
    assert groups["IG1"]["passing"] == 1 + sum(1 for c in members[1] if c.tag != ig1.tag and scores[c.tag] >= 70)
    assert groups["IG3"]["passing"] >= 2


@pytest.mark.parametrize("readiness,tier,name", [(0, 1, "Partial"), (39.9, 1, "Partial"), (40, 2, "Risk Informed"),
                                                 (59.9, 2, "Risk Informed"), (60, 3, "Repeatable"),
                                                 (79.9, 3, "Repeatable"), (80, 4, "Adaptive"), (100, 4, "Adaptive")])
def test_csf_tier_bands(readiness, tier, name):
    assert packs.csf_tier(readiness) == (tier, name)


def test_csf_functions_get_tiers_from_their_readiness(org):
    fw = load_catalog().framework("NISTCSF")
    for c in fw.controls:
        if c.family == "DE":
            passing(org, c.tag)
    report = packs.build_csf(org, 30, NOW)
    functions = {r["function"]: r for r in rows(report, "functions")}
    assert functions["DE"]["readiness"] == 100 and functions["DE"]["tier_name"] == "Adaptive"
    for fn in functions.values():
        assert (fn["tier"], fn["tier_name"]) == packs.csf_tier(fn["readiness"])
    assert report.summary["function_DE_tier"] == 4


def test_hipaa_required_vs_addressable_and_baa(org):
    fw = load_catalog().framework("HIPAA")
    required = [c for c in fw.controls if c.attrs["required"]]
    passing(org, required[0].tag)
    vendor(org, "PHI Host", [], expires=NOW + dt.timedelta(days=90), handles_phi=True, baa=True)
    vendor(org, "PHI Mailer", ["HIPAA:" + required[0].id], expires=NOW + dt.timedelta(days=90), handles_phi=True,
           baa=False)
    vendor(org, "No PHI", [], expires=None)
    report = packs.build_hipaa(org, 30, NOW)
    kinds = {r["kind"]: r for r in rows(report, "required_vs_addressable")}
    assert kinds["required"]["controls"] == len(required)
    assert kinds["addressable"]["controls"] == len(fw.controls) - len(required)
    assert kinds["required"]["passing"] >= 1
    baa = {r["vendor"]: r for r in rows(report, "baa_vendors")}
    assert set(baa) == {"PHI Host", "PHI Mailer"}
    assert baa["PHI Mailer"]["status"] == "BAA missing" and baa["PHI Host"]["status"] == "BAA in place"
    assert baa["PHI Mailer"]["hipaa_controls_inherited"] == ["HIPAA:" + required[0].id]
    assert report.summary["baa_missing"] == 1
    assert {r["family"] for r in rows(report, "safeguards")} == {"164.308", "164.310", "164.312"}


def test_gdpr_dpa_bands(org):
    vendor(org, "Processor A", [], expires=None, handles_personal_data=True, dpa=True)
    vendor(org, "Processor B", [], expires=None, handles_personal_data=True, dpa=False)
    vendor(org, "Not a processor", [], expires=None)
    bands = rows(packs.build_gdpr(org, 30, NOW), "dpa_bands")
    assert bands == [{"band": "DPA present", "vendors": 1, "names": ["Processor A"]},
                     {"band": "DPA missing", "vendors": 1, "names": ["Processor B"]}]


def test_poam_rows_ratings_and_dates(org):
    cat = load_catalog()
    fw = cat.framework("NIST80053")
    ok, stale = fw.controls[0], fw.controls[1]
    passing(org, ok.tag)
    evidence(org, stale.tag, at=days_ago(stale.freshness_days + 20))  # went stale 20 days ago
    exc = exception(org, fw.controls[2].tag, reason="Scanner outage", compensating="Manual review",
                    opened_at=days_ago(4))
    report = packs.build_poam(org, 30, NOW)
    items = {r["Weakness Source Identifier"]: r for r in rows(report, "poam")}
    assert ok.tag not in items
    assert len(items) == report.summary["open_items"] == len(fw.controls) - 1
    row = items[stale.tag]
    assert row["POAM ID"] == f"ZEN-{stale.id}" and row["Controls"] == stale.id
    assert row["Original Detection Date"] == days_ago(20).date()
    assert row["Original Risk Rating"] == ("High" if stale.weight >= 1.5 else "Moderate")
    assert row["Scheduled Completion Date"] == days_ago(20).date() + dt.timedelta(
        days=packs.POAM_DAYS[row["Original Risk Rating"]])
    assert "stale" in row["Weakness Description"]
    with_exc = items[fw.controls[2].tag]
    assert with_exc["Deviation Rationale"].startswith(f"Exception #{exc.id}: Scanner outage")
    assert with_exc["Operational Requirement"] == "Yes"
    assert set(row) == set(packs.POAM_COLUMNS)
    assert report.summary["high"] + report.summary["moderate"] + report.summary["low"] == len(items)


def test_oscal_poam_ids_are_stable_uuid5(org, make_member):
    doc = packs.oscal_poam(org, 30, NOW)["plan-of-action-and-milestones"]
    again = packs.oscal_poam(org, 30, NOW + dt.timedelta(hours=1))["plan-of-action-and-milestones"]
    assert [i["uuid"] for i in doc["poam-items"]] == [i["uuid"] for i in again["poam-items"]]
    assert doc["uuid"] == again["uuid"] and doc["metadata"]["oscal-version"] == "1.1.2"
    item = doc["poam-items"][0]
    tag = "NIST80053:" + item["props"][0]["value"].removeprefix("ZEN-")
    assert item["uuid"] == str(uuid.uuid5(packs.OSCAL_NS, f"org-{org}:poam-item:{tag}"))
    assert uuid.UUID(item["uuid"]).version == 5
    obs = {o["uuid"] for o in doc["observations"]}
    risks = {r["uuid"] for r in doc["risks"]}
    for entry in doc["poam-items"]:
        assert entry["related-observations"][0]["observation-uuid"] in obs
        assert entry["related-risks"][0]["risk-uuid"] in risks
    # fixing a control changes the document uuid, never the other items' uuids
    passing(org, tag)
    fixed = packs.oscal_poam(org, 30, NOW)["plan-of-action-and-milestones"]
    assert fixed["uuid"] != doc["uuid"]
    assert {i["uuid"] for i in fixed["poam-items"]} == {i["uuid"] for i in doc["poam-items"]} - {item["uuid"]}


# --- the evidence export: PostgreSQL renders the audit rows with COPY, byte for byte as Python would ------

def test_export_csv_is_the_same_whichever_renderer_writes_it(org):
    """On PostgreSQL the export's audit rows come from COPY … TO STDOUT; the text must equal what the row-by-row
    writer produces (quoting, empty fields, timestamps with and without microseconds, line ends, the policies
    after the events). On SQLite there is no fast path and the rows are written one by one."""
    from zentro.audit.service import Actor, current_request_id, record
    from tests.compliance.engine_helpers import policy

    current_request_id.set("")  # (an earlier request in this thread may have left its id for record() to use)
    record(org, "odd.values", Actor("user", "7", 'Ann "the, auditor" O\'Neil'), target_type="vendor",
           target_id="a,b", control_tags=["SOC2:CC6.1", "ISO27001:A.5.9"], request_id="", now=days_ago(3))
    record(org, "plain", Actor("system", "", ""), control_tags=["SOC2:CC7.2"], now=days_ago(2).replace(microsecond=0))
    record(org, "untagged", Actor("system", "", "zentro"), now=days_ago(1))  # not evidence: no tags
    record(org, "whole.second", Actor("system", "", "zentro"), control_tags=["SOC2:CC8.1"],
           now=days_ago(1).replace(microsecond=123456))
    policy(org, "Access reviews, quarterly", ["SOC2:CC6.2"])
    db.session.commit()
    report = packs.build_export(org, 30, NOW)
    fast = report.sections[0].csv_text()
    slow_report = packs.build_export(org, 30, NOW)
    slow_report.sections[0].csv_text = None
    slow = "".join(reporting.iter_csv(slow_report))
    if db.engine.dialect.name != "postgresql":
        assert fast is None
    else:
        assert fast is not None
        assert "".join(reporting.iter_csv(report)) == slow
    rows = list(csv.reader(io.StringIO(slow)))
    assert [r[6] for r in rows[1:]] == ["odd.values", "plain", "whole.second", "policy.accepted"]
    assert rows[1][5] == 'Ann "the, auditor" O\'Neil' and rows[1][8] == "a,b" and rows[1][11] == ""
    assert "." not in rows[2][3] and rows[2][3].endswith("Z")  # no fraction when there is none
    assert rows[3][3].endswith(".123456Z")
    assert slow.count("\r\n") == len(rows)


def test_export_csv_framework_filter_matches_on_both_renderers(org):
    evidence(org, "SOC2:CC7.2", at=days_ago(2))
    evidence(org, "PCIDSS:1.1", at=days_ago(2))
    db.session.commit()
    report = packs.build_export(org, 30, NOW, "ISO27001")
    slow_report = packs.build_export(org, 30, NOW, "ISO27001")
    slow_report.sections[0].csv_text = None
    slow = "".join(reporting.iter_csv(slow_report))
    assert "".join(reporting.iter_csv(report)) == slow
    tags = [r[10] for r in csv.reader(io.StringIO(slow))][1:]
    iso_equivalents = set().union(*(load_catalog().equivalents(t) for t in load_catalog().tags_for("ISO27001")))
    assert tags == [t for t in ("SOC2:CC7.2", "PCIDSS:1.1") if t in iso_equivalents] and "SOC2:CC7.2" in tags
