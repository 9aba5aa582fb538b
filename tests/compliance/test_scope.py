"""The audit scope register: GET lists every service with its decision (or unmapped) and the classified flows;
PUT (owner/admin) validates frameworks against the catalog and data classes against the fixed list, 404s another
org's service, is audited with the scope-definition controls and records nothing when nothing changes; the page
lists and edits; the demo seed is idempotent."""
from __future__ import annotations

import sqlalchemy as sa

from zentro.audit.models import AuditEvent
from zentro.compliance import scope
from zentro.compliance.catalog import load_catalog
from zentro.compliance.demo_scope import seed_scope
from zentro.compliance.models import ScopeMapping
from zentro.extensions import db

from .analytics_helpers import depends, service
from .analytics_helpers import scope as map_scope
from .register_helpers import (admin, admin_api, api, error_of, member, member_api, other_api, owner, rows,  # noqa: F401
                               stranger, viewer, viewer_api)

URL = "/api/governance/compliance/scope"


def services(app, org_id: int, *names: str) -> dict[str, int]:
    with app.app_context():
        ids = {n: service(org_id, n).id for n in names}
        db.session.commit()
    return ids


def events(app, org_id: int, action_prefix: str = "scope.") -> list[AuditEvent]:
    with app.app_context():
        out = list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.org_id == org_id,
                                                                  AuditEvent.action.like(f"{action_prefix}%"))
                                      .order_by(AuditEvent.id)))
        db.session.expunge_all()
        return out


def test_scope_tags_are_catalog_controls():
    catalog = load_catalog()
    assert all(catalog.has(t) for t in scope.SCOPE_TAGS)


def test_empty_org_lists_nothing(api, owner):
    body = api.get(URL).get_json()
    assert body["counts"] == {"services": 0, "in_scope": 0, "out_of_scope": 0, "unmapped": 0, "flows": 0,
                              "flows_inside": 0, "flows_crossing": 0, "flows_outside": 0}
    assert body["services"] == [] and body["flows"] == [] and "cardholder" in body["data_classes"]


def test_put_maps_a_service_and_get_classifies_flows(app, api, owner, rows):
    ids = services(app, owner.org_id, "payments", "db", "mailer", "search")
    with app.app_context():
        depends(owner.org_id, ids["payments"], ids["db"])
        depends(owner.org_id, ids["payments"], ids["mailer"])
        depends(owner.org_id, ids["search"], ids["mailer"])
        db.session.commit()
    resp = api.put(f"{URL}/{ids['payments']}", json={"inScope": True, "frameworks": ["pci-dss", "SOC2", "soc2"],
                                                     "dataClasses": ["pii", "cardholder"], "note": "CDE"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    row = resp.get_json()
    assert row["status"] == "in_scope" and row["frameworks"] == ["SOC2", "PCIDSS"]
    assert row["framework_slugs"] == ["soc2", "pci-dss"] and row["data_classes"] == ["pii", "cardholder"]
    assert api.put(f"{URL}/{ids['db']}", json={"in_scope": True, "frameworks": ["pci"], "data_classes": ["cardholder"]}
                   ).status_code == 200  # snake_case names are accepted too
    assert api.put(f"{URL}/{ids['search']}", json={"inScope": False}).status_code == 200

    body = api.get(URL).get_json()
    assert body["counts"] == {"services": 4, "in_scope": 2, "out_of_scope": 1, "unmapped": 1, "flows": 3,
                              "flows_inside": 1, "flows_crossing": 1, "flows_outside": 1}
    by_pair = {(f["from"], f["to"]): f for f in body["flows"]}
    assert by_pair[("payments", "db")]["classification"] == "inside"
    crossing = by_pair[("payments", "mailer")]
    assert crossing["classification"] == "crossing" and crossing["unmapped_end"] is True
    assert crossing["frameworks"] == ["SOC2", "PCIDSS"] and crossing["data_classes"] == ["pii", "cardholder"]
    assert by_pair[("search", "mailer")]["classification"] == "outside"
    assert {s["service"]: s["status"] for s in body["services"]}["mailer"] == "unmapped"

    audit = events(app, owner.org_id)
    assert [e.action for e in audit] == ["scope.mapped"] * 3
    assert audit[0].target_type == "service" and audit[0].target_id == str(ids["payments"])
    assert set(audit[0].control_tags.split()) == set(scope.SCOPE_TAGS)

    # the same decision again changes nothing and records nothing; a change is "scope.updated"
    same = {"inScope": True, "frameworks": ["soc2", "pci-dss"], "dataClasses": ["cardholder", "pii"], "note": "CDE"}
    assert api.put(f"{URL}/{ids['payments']}", json=same).status_code == 200
    assert len(events(app, owner.org_id)) == 3
    assert api.put(f"{URL}/{ids['payments']}", json={**same, "inScope": False}).get_json()["status"] == "out_of_scope"
    assert [e.action for e in events(app, owner.org_id)][-1] == "scope.updated"
    assert rows("scope_mappings") == 3


def test_put_bad_input_is_400_and_changes_nothing(app, api, owner, rows):
    sid = services(app, owner.org_id, "payments")["payments"]
    for body, field in [({"inScope": True, "frameworks": ["sox"]}, "frameworks"),
                        ({"inScope": True, "dataClasses": ["secrets"]}, "dataClasses"),
                        ({"inScope": "yes"}, "inScope"), ({}, "inScope"),
                        ({"inScope": True, "owner": "x"}, "owner"),
                        ({"inScope": True, "frameworks": "soc2"}, "frameworks"),
                        ({"inScope": True, "note": "x" * 4001}, "note")]:
        resp = api.put(f"{URL}/{sid}", json=body)
        err = error_of(resp, 400, "VALIDATION_ERROR")
        assert any(field in e["loc"] for e in err["errors"]), (body, err)
    assert rows("scope_mappings") == 0 and events(app, owner.org_id) == []


def test_put_other_orgs_or_missing_service_is_404(app, api, other_api, owner, stranger, rows):
    mine = services(app, owner.org_id, "payments")["payments"]
    theirs = services(app, stranger.org_id, "globex-db")["globex-db"]
    error_of(api.put(f"{URL}/{theirs}", json={"inScope": True}), 404, "NOT_FOUND")
    error_of(other_api.put(f"{URL}/{mine}", json={"inScope": True}), 404, "NOT_FOUND")
    error_of(api.put(f"{URL}/999999", json={"inScope": True}), 404, "NOT_FOUND")
    assert rows("scope_mappings") == 0
    assert other_api.get(URL).get_json()["counts"]["services"] == 1  # globex sees only its own


def test_put_needs_owner_or_admin(app, admin_api, member_api, viewer_api, owner, rows):
    sid = services(app, owner.org_id, "payments")["payments"]
    error_of(member_api.put(f"{URL}/{sid}", json={"inScope": True}), 403, "FORBIDDEN")
    error_of(viewer_api.put(f"{URL}/{sid}", json={"inScope": True}), 403, "FORBIDDEN")
    assert rows("scope_mappings") == 0
    assert viewer_api.get(URL).status_code == 200
    assert admin_api.put(f"{URL}/{sid}", json={"inScope": True}).status_code == 200


def test_page_lists_and_saves(app, owner, viewer, sign_in, rows):
    ids = services(app, owner.org_id, "payments", "mailer")
    with app.app_context():
        depends(owner.org_id, ids["payments"], ids["mailer"])
        map_scope(owner.org_id, ids["payments"], ["PCIDSS"], data_classes=["cardholder"])
        db.session.commit()
    seen = sign_in(viewer).get("/compliance/scope")
    html = seen.get_data(as_text=True)
    assert seen.status_code == 200 and "payments" in html and "crossing" in html and "unmapped" in html
    assert "Save scope" not in html  # viewers read only
    client = sign_in(owner)
    page = client.get("/compliance/scope").get_data(as_text=True)
    assert "Save scope" in page
    resp = client.post(f"/compliance/scope/{ids['mailer']}", data={
        "in_scope": "on", "frameworks": ["SOC2", "ISO27001"], "data_classes": ["pii"], "note": "Sends receipts"})
    assert resp.status_code == 302
    with app.app_context():
        m = db.session.scalar(sa.select(ScopeMapping).where(ScopeMapping.service_id == ids["mailer"]))
        assert m.in_scope and m.frameworks == ["SOC2", "ISO27001"] and m.data_classes == ["pii"]
    bad = client.post(f"/compliance/scope/{ids['mailer']}", data={"frameworks": ["SOX"]})
    assert bad.status_code == 400 and "Frameworks" in bad.get_data(as_text=True)
    assert sign_in(viewer).post(f"/compliance/scope/{ids['mailer']}", data={"in_scope": "on"}).status_code == 403


def test_seed_scope_is_idempotent(app, owner):
    names = ["web-frontend", "api-gateway", "auth-service", "payments-api", "postgres-primary", "partner-portal",
             "search-service", "search-index", "notifications-worker"]
    ids = services(app, owner.org_id, *names)
    with app.app_context():
        depends(owner.org_id, ids["payments-api"], ids["notifications-worker"])
        db.session.commit()
        done = seed_scope(owner.org_id)
        assert len(done) == 8
        assert seed_scope(owner.org_id) == ["Audit scope already seeded (nothing duplicated)."]
        rows_, flows = scope.load(owner.org_id)
        assert scope.counts(rows_, flows)["unmapped"] == 1 and flows[0]["classification"] == "crossing"
