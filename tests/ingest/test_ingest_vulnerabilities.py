"""POST /api/integrations/vulnerabilities: findings upsert, and high/critical ones open one incident."""
from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

import ingest_payloads as P
from ingest_payloads import ALERTS, VULNS
from zentro.extensions import db
from zentro.incidents.models import Incident
from zentro.ingest.models import Finding
from zentro.ingest.signing import sign


def ok(resp, n: int | None = None) -> list[dict]:
    assert resp.status_code == 202, resp.get_data(as_text=True)
    if n is not None:
        assert resp.get_json()["accepted"] == n
    return resp.get_json()["results"]


def finding(app, finding_id: int) -> Finding:
    with app.app_context():
        f = db.session.get(Finding, finding_id)
        db.session.expunge(f)
        return f


def incident(app, incident_id: int) -> Incident:
    with app.app_context():
        inc = db.session.get(Incident, incident_id)
        db.session.expunge(inc)
        return inc


def test_qualys_detection_is_stored_and_opens_one_incident(app, post, count):
    [r] = ok(post(VULNS, P.qualys()), 1)
    assert (r["source"], r["finding_key"], r["severity"], r["status"], r["outcome"]) == (
        "qualys", "38170@10.0.4.12", "high", "open", "created")
    assert r["incident_outcome"] == "created" and r["incident_ref"] == "INC-1"
    f = finding(app, r["finding_id"])
    assert f.asset == "checkout-web-1.prod.internal" and f.cve == "CVE-2023-1234" and f.cvss == 7.5
    assert f.incident_id == r["incident_id"]
    assert f.first_seen_at.isoformat().startswith("2025-12-01")
    inc = incident(app, r["incident_id"])
    assert inc.severity == "high" and inc.dedupe_key == "vuln:qualys:38170@10.0.4.12"
    assert "SSL Certificate - Expired" in inc.title


def test_redelivery_upserts_and_folds_never_a_second_incident(app, post, count):
    [first] = ok(post(VULNS, P.qualys()))
    [again] = ok(post(VULNS, P.qualys()))
    assert again["outcome"] == "updated" and again["finding_id"] == first["finding_id"]
    assert again["incident_id"] == first["incident_id"] and again["incident_outcome"] == "deduped"
    assert count("findings") == 1 and count("incidents") == 1
    assert incident(app, first["incident_id"]).alert_count == 2
    f = finding(app, first["finding_id"])
    assert f.last_seen_at >= f.first_seen_at


def test_once_people_resolved_the_incident_a_still_open_finding_opens_no_other(app, post, count):
    from zentro.audit.service import SYSTEM
    from zentro.incidents.service import get_incident, transition

    [first] = ok(post(VULNS, P.tenable()))
    with app.app_context():
        inc = get_incident(finding(app, first["finding_id"]).org_id, first["incident_id"])
        transition(inc, "resolved", SYSTEM, note="risk accepted")
        db.session.commit()
    [again] = ok(post(VULNS, P.tenable()))
    assert again["incident_outcome"] is None and again["incident_id"] == first["incident_id"]
    assert count("incidents") == 1


def test_medium_and_low_findings_open_no_incident(post, count):
    results = ok(post(VULNS, {"findings": [P.qualys(severity=3), P.generic(severity="low"),
                                           P.tenable(severity=0)]}), 3)
    assert [r["severity"] for r in results] == ["medium", "low", "info"]
    assert all(r["incident_id"] is None for r in results)
    assert count("findings") == 3 and count("incidents") == 0


def test_severity_raised_to_critical_opens_the_incident_then(post, count):
    [r] = ok(post(VULNS, P.generic(severity="medium")))
    assert r["incident_id"] is None
    [r2] = ok(post(VULNS, P.generic(severity="critical")))
    assert r2["incident_outcome"] == "created" and count("incidents") == 1


def test_fixed_marks_the_finding_and_mitigates_its_incident(app, post, count):
    [r] = ok(post(VULNS, P.tenable()))
    [fixed] = ok(post(VULNS, P.tenable(state="FIXED")))
    assert fixed["outcome"] == "fixed" and fixed["status"] == "fixed" and fixed["incident_outcome"] == "mitigated"
    f = finding(app, r["finding_id"])
    assert f.status == "fixed" and f.fixed_at is not None
    assert incident(app, r["incident_id"]).status == "mitigated"
    # the fix came back: a new occurrence; the mitigated incident is still active, so it folds there
    [back] = ok(post(VULNS, P.tenable(state="REOPENED")))
    assert back["outcome"] == "reopened" and back["incident_id"] == r["incident_id"]
    assert finding(app, r["finding_id"]).fixed_at is None and count("incidents") == 1


def test_a_reopened_finding_whose_incident_was_resolved_opens_a_new_one(app, post, count):
    from zentro.audit.service import SYSTEM
    from zentro.incidents.service import get_incident, transition

    [r] = ok(post(VULNS, P.generic()))
    ok(post(VULNS, P.generic(status="fixed")))
    with app.app_context():
        transition(get_incident(finding(app, r["finding_id"]).org_id, r["incident_id"]), "resolved", SYSTEM)
        db.session.commit()
    [back] = ok(post(VULNS, P.generic()))
    assert back["outcome"] == "reopened" and back["incident_outcome"] == "created"
    assert back["incident_id"] != r["incident_id"] and count("incidents") == 2


def test_a_fixed_finding_seen_first_is_stored_without_incident(post, count):
    [r] = ok(post(VULNS, P.qualys(status="Fixed", severity=5)))
    assert r["status"] == "fixed" and r["incident_id"] is None and count("incidents") == 0


def test_assets_map_to_services_by_name_or_first_dns_label(app, post, owner, add_service):
    checkout = add_service(owner, "checkout-web-1")
    payments = add_service(owner, "payments-db-1")
    generic_svc = add_service(owner, "billing")
    [q] = ok(post(VULNS, P.qualys()))  # dns checkout-web-1.prod.internal → first label
    [t] = ok(post(VULNS, P.tenable()))  # hostname payments-db-1 → whole name
    [g] = ok(post(VULNS, P.generic(asset="10.1.2.3", service="Billing")))  # explicit service wins
    [n] = ok(post(VULNS, P.generic("other", asset="10.0.0.9")))  # an IP matches no service
    assert (q["service_id"], t["service_id"], g["service_id"], n["service_id"]) == (checkout, payments, generic_svc, None)
    assert incident(app, t["incident_id"]).service_id == payments


def test_source_override_header(post):
    resp = post(VULNS, P.generic(), headers={"X-Zentro-Vuln-Source": "qualys"})
    assert resp.status_code == 400 and "qid" in resp.get_data(as_text=True)
    assert post(VULNS, P.generic(), headers={"X-Zentro-Vuln-Source": "generic"}).status_code == 202


@pytest.mark.parametrize("payload,needle", [
    ({"foo": 1}, "unrecognised finding"),
    ({"findings": []}, "non-empty"),
    ({"findings": [P.qualys(), {"qid": 1, "severity": 4}]}, "findings/1/ip"),
    (P.qualys(severity=9), "severity"),
    (P.tenable(severity="apocalyptic"), "severity"),
    (P.tenable(state="MAYBE"), "state"),
    (P.generic(severity="urgent"), "severity"),
    (P.generic(cvss=11), "cvss"),
    (P.generic(extra_field=1), "extra_field"),
    (P.generic(finding_id="x" * 256), "finding_id"),
])
def test_malformed_findings_are_400_and_store_nothing(post, count, payload, needle):
    resp = post(VULNS, {"findings": [P.generic("good-one"), payload]} if "findings" not in payload else payload)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert needle in resp.get_data(as_text=True)
    assert count("findings") == 0 and count("incidents") == 0


def test_too_many_findings_is_413(app, post, count, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_MAX_ALERTS_PER_REQUEST", 2)
    resp = post(VULNS, {"findings": [P.generic(f"f{i}") for i in range(3)]})
    assert resp.status_code == 413 and count("findings") == 0


def test_vulnerability_ingest_takes_only_ingest_tokens_and_respects_signatures(app, owner, post, make_api_key, count,
                                                                               monkeypatch):
    assert post(VULNS, P.generic(), token=make_api_key(owner)).status_code == 403
    assert post(VULNS, P.generic(), token=None).status_code == 401
    monkeypatch.setitem(app.config, "ZENTRO_ALERT_WEBHOOK_SIGNING_SECRET", "s3cret")
    body = json.dumps(P.generic()).encode()
    assert post(VULNS, body).status_code == 401
    ts = int(time.time())
    assert post(VULNS, body, headers={"X-Zentro-Timestamp": str(ts), "X-Zentro-Signature": sign("s3cret", ts, body)}
                ).status_code == 202
    assert count("findings") == 1


def test_findings_of_one_org_stay_there(app, post, make_member, make_ingest_token, count):
    [mine] = ok(post(VULNS, P.generic()))
    other = make_member("globex", "owner", plan="enterprise")
    [theirs] = ok(post(VULNS, P.generic(), token=make_ingest_token(other)))
    assert theirs["finding_id"] != mine["finding_id"] and theirs["outcome"] == "created"
    assert theirs["incident_id"] != mine["incident_id"]
    assert incident(app, mine["incident_id"]).alert_count == 1


def test_audit_records_each_vulnerability_request(app, post, owner):
    from zentro.audit.models import AuditEvent

    ok(post(VULNS, {"findings": [P.qualys(), P.tenable(severity=1)]}))
    with app.app_context():
        rows = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "findings.ingested")).all()
        assert len(rows) == 1 and "ISO27001:A.8.8" in rows[0].control_tags.split()
        assert json.loads(rows[0].data)["outcomes"] == {"created": 2}


def test_alerts_and_findings_are_separate_endpoints(post):
    assert post(ALERTS, P.qualys()).status_code == 400
