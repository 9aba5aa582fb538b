"""The vendor register: inheritance rules as data (schema-checked against the catalog), inheritance by
category and report type, review cadence by tier, report status, BAA/DPA flags and reused evidence
counts from tagged audit rows (one query), with an injected clock."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from zentro.audit.models import AuditEvent
from zentro.compliance import vendors
from zentro.compliance.catalog import load_catalog
from zentro.compliance.models import Vendor
from zentro.extensions import db
from zentro.platform.errors import ApiError

from .register_helpers import DAY, T0, TEST_ACTOR, count_statements, member, owner, stranger, tag_events, viewer  # noqa: F401


def _refused(status: int, fn, *args, **kw) -> ApiError:
    with pytest.raises(ApiError) as info:
        fn(*args, **kw)
    db.session.rollback()
    assert info.value.status == status, info.value.detail
    return info.value


def _add(org_id, name="AWS", now=T0, **fields):
    base = {"category": "cloud-infrastructure", "risk_tier": "critical", "report_type": "soc2-type-ii",
            "report_expires_at": now + 200 * DAY}
    return vendors.add(org_id, name=name, actor=TEST_ACTOR, now=now, **{**base, **fields})


def _count(model, **where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).filter_by(**where))


# --- the rules file -------------------------------------------------------------------------------

def test_shipped_rules_pass_the_schema_check():
    rules = vendors.read_rules()
    catalog = load_catalog()
    assert set(rules.categories) == set(vendors.CATEGORIES)
    assert {t: rules.review_days(t) for t in vendors.VENDOR_TIERS} == {"critical": 90, "high": 180, "medium": 365,
                                                                        "low": 730}
    for name, rule in rules.categories.items():
        for scope in vendors.SCOPES:
            for tag in getattr(rule.controls, scope):
                assert catalog.has(tag), f"{name}.{scope}: {tag}"
                assert tag.split(":")[0] in ("SOC2", "ISO27001")


def _write(tmp_path, mutate):
    doc = json.loads(vendors.RULES_FILE.read_text())
    mutate(doc)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["categories"]["monitoring"]["controls"]["physical"].append("SOC2:CC99.1"), "unknown control tag"),
    (lambda d: d["categories"]["monitoring"]["controls"]["physical"].append("SOC2:CC6.4"), "lists a tag twice"),
    (lambda d: d["categories"].pop("monitoring"), "missing monitoring"),
    (lambda d: d["categories"].__setitem__("crypto-exchange", d["categories"]["monitoring"]), "unexpected crypto"),
    (lambda d: d["risk_tiers"]["low"].__setitem__("review_days", 0), "review_days"),
    (lambda d: d["report_types"]["iso27001"].__setitem__("unlocks", ["physical", "everything"]), "unlocks"),
    (lambda d: d["report_types"].pop("none"), "missing none"),
    (lambda d: d.pop("about"), "about"),
    (lambda d: d["categories"]["monitoring"]["controls"].pop("service"), "service"),
])
def test_broken_rules_are_refused_naming_the_item(tmp_path, mutate, message):
    with pytest.raises(vendors.RulesError) as info:
        vendors.read_rules(_write(tmp_path, mutate))
    assert message in str(info.value)


def test_unreadable_rules_are_refused(tmp_path):
    bad = tmp_path / "rules.json"
    bad.write_text("{not json")
    with pytest.raises(vendors.RulesError, match="cannot be read"):
        vendors.read_rules(bad)
    with pytest.raises(vendors.RulesError, match="missing"):
        vendors.read_rules(tmp_path / "absent.json")


# --- inheritance ----------------------------------------------------------------------------------

def test_inheritance_follows_category_and_report_type():
    rules = vendors.load_rules()
    cloud = rules.inherited("cloud-infrastructure", "soc2-type-ii")
    assert {"SOC2:CC6.4", "ISO27001:A.7.1", "ISO27001:A.7.11", "SOC2:A1.2", "ISO27001:A.8.14"} <= set(cloud)
    assert rules.inherited("cloud-infrastructure", "iso27001") == cloud  # no service scope for hosting
    pay_soc2 = rules.inherited("payment-processor", "soc2-type-ii")
    pay_iso = rules.inherited("payment-processor", "iso27001")
    assert "SOC2:CC6.7" in pay_soc2 and "SOC2:CC6.7" not in pay_iso  # ISO unlocks physical + hosting only
    assert "SOC2:CC6.4" in pay_iso
    assert "ISO27001:A.8.5" in rules.inherited("identity-provider", "soc2-type-ii")
    for category in vendors.CATEGORIES:
        assert rules.inherited(category, "none") == []
        assert rules.inherited(category, "soc2-type-i") == []
    assert rules.inherited("professional-services", "soc2-type-ii") == []


def test_add_stores_inherited_controls_and_the_review_date(ctx, owner):
    v = _add(owner.org_id, category="payment-processor", risk_tier="high", report_type="iso27001")
    assert v.inherited_controls == vendors.load_rules().inherited("payment-processor", "iso27001")
    assert v.next_review_at == T0 + 180 * DAY and v.last_review_at is None
    (event,) = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "vendor.added"))
    assert event.control_tags.split() == ["ISO27001:A.5.19", "SOC2:CC9.2"]
    assert json.loads(event.data)["inherited_controls"] == v.inherited_controls


@pytest.mark.parametrize("tier,days", [("critical", 90), ("high", 180), ("medium", 365), ("low", 730)])
def test_review_cadence_by_tier(ctx, owner, tier, days):
    v = _add(owner.org_id, risk_tier=tier)
    assert v.next_review_at == T0 + days * DAY
    vendors.record_review(owner.org_id, v.id, actor=TEST_ACTOR, now=T0 + 30 * DAY)
    v = vendors.get_vendor(owner.org_id, v.id)
    assert (v.last_review_at, v.next_review_at) == (T0 + 30 * DAY, T0 + (30 + days) * DAY)


def test_update_recomputes_inheritance_and_review(ctx, owner):
    v = _add(owner.org_id, risk_tier="critical", report_type="soc2-type-ii")
    # without a review, the cadence counts from the day the vendor was added
    vendors.update(owner.org_id, v.id, {"risk_tier": "low"}, actor=TEST_ACTOR, now=T0 + 10 * DAY)
    assert vendors.get_vendor(owner.org_id, v.id).next_review_at == T0 + 730 * DAY
    vendors.record_review(owner.org_id, v.id, actor=TEST_ACTOR, now=T0 + 20 * DAY)
    vendors.update(owner.org_id, v.id, {"risk_tier": "high"}, actor=TEST_ACTOR, now=T0 + 25 * DAY)
    assert vendors.get_vendor(owner.org_id, v.id).next_review_at == T0 + 200 * DAY
    # dropping the report drops the inheritance and its expiry
    vendors.update(owner.org_id, v.id, {"report_type": "none"}, actor=TEST_ACTOR, now=T0 + 26 * DAY)
    v = vendors.get_vendor(owner.org_id, v.id)
    assert (v.inherited_controls, v.report_expires_at) == ([], None)
    assert _count(AuditEvent, action="vendor.updated") == 3
    vendors.update(owner.org_id, v.id, {"risk_tier": "high", "notes": ""}, actor=TEST_ACTOR, now=T0)  # no change
    assert _count(AuditEvent, action="vendor.updated") == 3
    (review,) = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "vendor.reviewed"))
    assert "ISO27001:A.5.22" in review.control_tags.split()


# --- the register ---------------------------------------------------------------------------------

def test_report_status_boundaries(ctx, owner):
    now = T0 + 100 * DAY
    names = {"valid": 31, "expiring": 30, "expiring-soon": 1, "expired": 0, "long-expired": -5}
    for name, days in names.items():
        _add(owner.org_id, name=name, report_expires_at=now + days * DAY)
    _add(owner.org_id, name="no-report", report_type="none", report_expires_at=None)
    reg = vendors.register(owner.org_id, now)
    status = {v["name"]: v["report_status"] for v in reg["vendors"]}
    assert status == {"valid": "valid", "expiring": "expiring", "expiring-soon": "expiring", "expired": "expired",
                      "long-expired": "expired", "no-report": "none"}
    active = {v["name"]: v["inheritance_active"] for v in reg["vendors"]}
    assert active == {"valid": True, "expiring": True, "expiring-soon": True, "expired": False,
                      "long-expired": False, "no-report": False}
    assert reg["summary"]["by_report_status"] == {"valid": 1, "expiring": 2, "expired": 2, "none": 1}


def test_review_overdue_and_agreement_flags(ctx, owner):
    _add(owner.org_id, name="hosting", risk_tier="critical", handles_phi=True, baa=False, handles_personal_data=True,
         dpa=True)
    _add(owner.org_id, name="counsel", category="professional-services", risk_tier="low", report_type="none",
         report_expires_at=None, handles_personal_data=True)
    _add(owner.org_id, name="chat", category="communications", risk_tier="medium", handles_phi=True, baa=True)
    reg = vendors.register(owner.org_id, T0 + 91 * DAY)
    by = {v["name"]: v for v in reg["vendors"]}
    assert by["hosting"]["review_overdue"] and not by["chat"]["review_overdue"] and not by["counsel"]["review_overdue"]
    assert (by["hosting"]["baa_missing"], by["hosting"]["dpa_missing"]) == (True, False)
    assert (by["counsel"]["baa_missing"], by["counsel"]["dpa_missing"]) == (False, True)
    assert (by["chat"]["baa_missing"], by["chat"]["dpa_missing"]) == (False, False)
    assert [v["name"] for v in reg["vendors"]] == ["hosting", "chat", "counsel"]  # by tier
    s = reg["summary"]
    assert (s["reviews_overdue"], s["baa_missing"], s["dpa_missing"]) == (1, 1, 1)
    assert s["by_tier"] == {"critical": 1, "high": 0, "medium": 1, "low": 1}


def test_reused_evidence_counts_each_event_once_in_one_query(ctx, app, owner, stranger):
    now = T0 + 100 * DAY
    org = owner.org_id
    _add(org, name="aws", category="cloud-infrastructure", now=T0)  # physical + hosting: SOC2:CC6.4, ISO A.7.x, ...
    _add(org, name="okta", category="identity-provider", now=T0)  # ... plus ISO27001:A.8.5
    _add(org, name="counsel", category="professional-services", report_type="none", report_expires_at=None, now=T0)
    tag_events(app, org, ["SOC2:CC6.4", "ISO27001:A.7.2"], now - DAY, n=2)  # both vendors inherit both tags
    tag_events(app, org, ["ISO27001:A.8.5"], now - 10 * DAY, n=3)  # okta only
    tag_events(app, org, ["SOC2:A1.2"], now - 89 * DAY)  # aws only (hosting)
    tag_events(app, org, ["SOC2:CC6.4"], now - 91 * DAY, n=4)  # outside the window
    tag_events(app, org, ["SOC2:CC7.2"], now - DAY)  # inherited by nobody
    tag_events(app, stranger.org_id, ["SOC2:CC6.4"], now - DAY, n=6)  # another org
    with count_statements(db.engine, "audit_tags") as seen:
        reg = vendors.register(org, now)
    assert len(seen) == 1
    counts = {v["name"]: v["reused_evidence_count"] for v in reg["vendors"]}
    assert counts == {"aws": 3, "okta": 5, "counsel": 0}


# --- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields,status,field", [
    ({"report_expires_at": None}, 400, "report_expires_at"),  # a report needs its expiry
    ({"report_type": "none"}, 400, "report_expires_at"),  # no report, no expiry
    ({"report_expires_at": T0 + 5 * 366 * DAY}, 400, "report_expires_at"),
    ({"category": "crypto-exchange"}, 400, "category"),
    ({"risk_tier": "extreme"}, 400, "risk_tier"),
    ({"report_type": "pci-aoc"}, 400, "report_type"),
    ({"website": "javascript:alert(1)"}, 400, "website"),
    ({"baa": "yes"}, 400, "baa"),
    ({"name": " padded"}, 400, "name"),
    ({"name": ""}, 400, "name"),
    ({"notes": "x" * 4001}, 400, "notes"),
    ({"owner": "stranger"}, 404, "owner_id"),
    ({"owner": "viewer"}, 409, "owner_id"),
])
def test_add_refuses_bad_input_and_stores_nothing(ctx, owner, viewer, stranger, fields, status, field):
    fields = dict(fields)
    who = fields.pop("owner", None)
    if who:
        fields["owner_id"] = {"stranger": stranger.user_id, "viewer": viewer.user_id}[who]
    e = _refused(status, _add, owner.org_id, **fields)
    assert e.errors[0]["loc"][0] == field
    assert _count(Vendor) == 0 and _count(AuditEvent, target_type="vendor") == 0


def test_duplicate_names_are_409_case_insensitively(ctx, owner, stranger):
    _add(owner.org_id, name="Stripe")
    _refused(409, _add, owner.org_id, name="stripe")
    other = _add(owner.org_id, name="Okta")
    _refused(409, vendors.update, owner.org_id, other.id, {"name": "STRIPE"}, actor=TEST_ACTOR)
    _add(stranger.org_id, name="Stripe")  # another org may use the name
    assert _count(Vendor, org_id=owner.org_id) == 2
    assert vendors.get_vendor(owner.org_id, other.id).name == "Okta"


def test_update_refuses_bad_input_and_other_orgs(ctx, owner, stranger):
    v = _add(owner.org_id)
    _refused(400, vendors.update, owner.org_id, v.id, {"category": None}, actor=TEST_ACTOR)
    _refused(400, vendors.update, owner.org_id, v.id, {"report_expires_at": None}, actor=TEST_ACTOR)
    _refused(400, vendors.update, owner.org_id, v.id, {"colour": "red"}, actor=TEST_ACTOR)
    _refused(404, vendors.update, stranger.org_id, v.id, {"risk_tier": "low"}, actor=TEST_ACTOR)
    _refused(404, vendors.record_review, stranger.org_id, v.id, actor=TEST_ACTOR)
    v = vendors.get_vendor(owner.org_id, v.id)
    assert (v.category, v.risk_tier, v.last_review_at) == ("cloud-infrastructure", "critical", None)
    assert _count(AuditEvent, action="vendor.updated") == 0
