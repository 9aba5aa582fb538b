"""The SDK end-to-end against the real app in-process (httpx.WSGITransport): the incident lifecycle, alert
ingest with dedupe, vulnerability findings, an RCA run, webhooks with rotation and a signed test delivery, the
delivery log, compliance exports and bundles, an assessor token; and the refusals a client must be able to tell
apart: another org's id, a viewer's mutation, a key without the scope, a malformed body, an Idempotency-Key
replay and mismatch, and the rate limiter's 429."""
from __future__ import annotations

import io
import json
import zipfile

import pytest

from tests.http_stub import stub_server  # noqa: F401
from tests.notify.servers import allow_private, verify_signature, webhook_receiver
from tests.platform.test_isolation import org_state
from zentro.client import (AuthenticationError, IdempotencyMismatchError, NotFoundError, PermissionDeniedError,
                           RateLimitError, ValidationError, models)
from zentro.extensions import db
from zentro.incidents import rca


@pytest.fixture
def owner(make_member):
    return make_member("alpha", "owner")


@pytest.fixture
def z(sdk, owner, make_api_key):
    return sdk(make_api_key(owner))


def _state(app, org_id):
    with app.app_context():
        state = org_state(org_id)
        db.session.remove()
    return state


# --- incidents ---------------------------------------------------------------------------------------------

def test_incident_lifecycle_create_note_ack_resolve(z):
    inc = z.incidents.create("Checkout 502s", severity="high", description="since deploy 4121")
    assert (inc["ref"], inc["status"], inc["severity"]) == (f"INC-{inc['number']}", "open", "high")
    assert z.last_response.status_code == 201 and z.last_rate_limit.limit == 60

    note = z.incidents.add_note(inc["id"], "Rolling back 4.2.1")
    assert note["kind"] == "note" and note["body"] == "Rolling back 4.2.1"
    acked = z.incidents.acknowledge(inc["id"])
    assert acked["status"] == "acknowledged" and acked["acknowledged_at"] is not None
    resolved = z.incidents.resolve(inc["id"])
    assert resolved["status"] == "resolved" and models.parse_time(resolved["resolved_at"]).tzinfo is not None
    assert z.incidents.get(inc["id"])["status"] == "resolved"

    kinds = [e["kind"] for e in z.incidents.timeline(inc["id"], limit=1)]  # one per page: follows cursors
    assert kinds[-1] == "created" and "note" in kinds and kinds.count("status") == 2
    assert [i["id"] for i in z.incidents.list(status="resolved")] == [inc["id"]]
    assert list(z.incidents.list(status="active")) == []
    md = z.incidents.export_markdown(inc["id"])
    assert isinstance(md, str) and "Checkout 502s" in md and "Rolling back 4.2.1" in md
    assert z.incidents.evidence(inc["id"])["incident"]["id"] == inc["id"]


def test_update_sends_only_given_fields_and_invalid_moves_are_typed(app, z, owner):
    inc = z.incidents.create("Disk full")
    changed = z.incidents.update(inc["id"], title="Disk full on db-2", severity="critical")
    assert (changed["title"], changed["severity"], changed["status"]) == ("Disk full on db-2", "critical", "open")
    before = _state(app, owner.org_id)
    with pytest.raises(ValidationError) as info:
        z.incidents.update(inc["id"], severity="apocalyptic")
    assert info.value.status == 400 and info.value.errors[0]["loc"] == ["severity"]
    with pytest.raises(ValidationError):
        z.incidents.create("   ")
    assert _state(app, owner.org_id) == before


def test_pagination_over_many_incidents(z):
    made = [z.incidents.create(f"Incident {n}")["id"] for n in range(7)]
    page = z.incidents.list(limit=3)
    assert len(page.data) == 3 and page.next_cursor
    assert [i["id"] for i in page] == sorted(made, reverse=True)
    assert [len(p.data) for p in page.pages()] == [3, 3, 1]


def test_another_orgs_incident_is_not_found(sdk, z, make_member, make_api_key):
    theirs = sdk(make_api_key(make_member("beta", "owner"))).incidents.create("Theirs")
    with pytest.raises(NotFoundError) as info:
        z.incidents.get(theirs["id"])
    assert info.value.error_code == "NOT_FOUND" and info.value.request_id
    with pytest.raises(NotFoundError):
        z.incidents.acknowledge(theirs["id"])
    with pytest.raises(NotFoundError):
        z.rca.start(theirs["id"])


def test_viewer_key_and_unscoped_key_cannot_mutate(app, sdk, z, owner, make_member, make_api_key):
    inc = z.incidents.create("Read me")
    viewer = sdk(make_api_key(make_member("alpha", "viewer")))
    assert viewer.incidents.get(inc["id"])["title"] == "Read me"
    read_only = sdk(make_api_key(owner, scopes=["incidents:read"]))
    read_only.incidents.list()  # first use stamps the key's last_used_at
    before = _state(app, owner.org_id)
    with pytest.raises(PermissionDeniedError) as info:
        viewer.incidents.resolve(inc["id"])
    assert info.value.status == 403 and "viewer" in info.value.detail
    with pytest.raises(PermissionDeniedError) as info:
        read_only.incidents.create("Nope")
    assert "incidents:write" in info.value.detail
    with pytest.raises(PermissionDeniedError):
        read_only.webhooks.list()
    assert _state(app, owner.org_id) == before
    with pytest.raises(AuthenticationError):
        sdk("zentro_pk_not-a-real-key").incidents.list()


def test_idempotency_key_replays_and_mismatch_is_typed(app, z, owner):
    first = z.incidents.create("Once", idempotency_key="create-once")
    again = z.incidents.create("Once", idempotency_key="create-once")
    assert again == first and z.last_response.headers["Idempotent-Replayed"] == "true"
    assert [i["id"] for i in z.incidents.list()] == [first["id"]]
    with pytest.raises(IdempotencyMismatchError) as info:
        z.incidents.create("Twice", idempotency_key="create-once")
    assert info.value.status == 422


def test_the_rate_limiter_429_is_retried_after_retry_after_then_raised(sdk, owner, make_api_key, waits):
    z = sdk(make_api_key(owner), max_retries=2)
    for _ in range(60):  # the free plan's 60 calls a minute
        z.incidents.list(limit=1)
    assert z.last_rate_limit.remaining == 0
    with pytest.raises(RateLimitError) as info:
        z.incidents.list(limit=1)
    e = info.value
    assert e.status == 429 and e.error_code == "RATE_LIMIT_EXCEEDED" and 0 < e.retry_after <= 60
    assert len(waits) == 2 and all(0 < w <= 60 for w in waits)  # slept (recorded) Retry-After twice, then gave up


# --- ingest, findings, RCA ------------------------------------------------------------------------------------

def test_alert_ingest_opens_an_incident_then_dedupes(sdk, z, owner, make_ingest_token):
    ingest = sdk(ingest_token=make_ingest_token(owner))
    alert = {"dedupe_key": "checkout-5xx", "title": "Checkout 5xx above 2%", "severity": "high"}
    first = ingest.alerts.send(alert)
    r = first["results"][0]
    assert first["accepted"] == 1 and r["outcome"] == "created" and r["incident_ref"].startswith("INC-")
    second = ingest.alerts.send(dict(alert, title="Checkout 5xx above 3%"), source="zentro")
    assert second["results"][0]["outcome"] == "deduped" and second["results"][0]["incident_id"] == r["incident_id"]
    inc = z.incidents.get(r["incident_id"])
    assert inc["alert_count"] == 2 and inc["dedupe_key"] == "checkout-5xx"
    with pytest.raises(ValidationError):
        ingest.alerts.send({"title": "no dedupe key"}, source="zentro")
    with pytest.raises(PermissionDeniedError):  # an ingest token is only for ingest
        sdk(make_ingest_token(owner)).incidents.list()


def test_vulnerability_findings(sdk, z, owner, make_ingest_token):
    ingest = sdk(ingest_token=make_ingest_token(owner))
    out = ingest.vulnerabilities.send({"findings": [
        {"finding_id": "F-1", "title": "OpenSSL RCE", "severity": "critical", "asset": "web-1", "cve": "CVE-2026-0001"},
        {"finding_id": "F-2", "title": "Weak TLS", "severity": "low", "asset": "web-2"}]})
    assert out["accepted"] == 2 and out["results"][0]["incident_outcome"] == "created"
    assert {f["finding_key"] for f in z.findings.list()} == {"F-1", "F-2"}
    crit = list(z.findings.list(severity="critical"))
    assert [f["title"] for f in crit] == ["OpenSSL RCE"]
    assert z.findings.get(crit[0]["id"])["cve"] == "CVE-2026-0001"
    summary = z.findings.summary()
    assert summary["open"] == 2 and summary["by_severity"]["critical"] == {"open": 1, "total": 1}
    assert z.findings.by_source()[0]["source"] == "generic"


def test_rca_run_wait_and_latest(app, z):
    inc = z.incidents.create("Latency spike", severity="high")
    with pytest.raises(NotFoundError):
        z.rca.latest(inc["id"])
    rca.set_executor(app, rca.InlineExecutor())
    try:
        run = z.rca.start(inc["id"], window_hours=6)
    finally:
        rca.set_executor(app, None)
    assert run["incident_id"] == inc["id"] and z.last_response.status_code == 202
    done = z.rca.wait(run["id"], timeout=5)
    assert done["status"] == "succeeded" and done["hypotheses"]
    assert all(0 <= h["confidence"] <= 1 for h in done["hypotheses"])
    assert z.rca.latest(inc["id"])["id"] == run["id"] == z.rca.get(run["id"])["id"]


def test_rca_cancel(app, z):
    inc = z.incidents.create("Queue backlog")

    class Hold:  # queued, never started: a run the client can cancel
        def submit(self, app, run_id):
            pass

    rca.set_executor(app, Hold())
    try:
        run = z.rca.start(inc["id"])
    finally:
        rca.set_executor(app, None)
    assert run["status"] == "queued"
    assert z.rca.cancel(run["id"])["status"] == "cancelled"


# --- webhooks and deliveries ----------------------------------------------------------------------------------

def test_webhooks_crud_test_and_rotate(app, monkeypatch, stub_server, z, sdk, make_member, make_api_key):
    allow_private(app, monkeypatch)
    url = webhook_receiver(stub_server)
    hook = z.webhooks.create(url, ["incident.opened"], description="Ops bridge")
    secret = hook["secret"]
    assert secret.startswith("whsec_") and hook["secret_prefix"] == secret[:12]
    listed = list(z.webhooks.list())
    assert [w["id"] for w in listed] == [hook["id"]] and "secret" not in listed[0]

    updated = z.webhooks.update(hook["id"], events=["incident.opened", "digest.*"], enabled=False)
    assert updated["events"] == ["incident.opened", "digest.*"] and updated["enabled"] is False
    assert z.webhooks.get(hook["id"])["description"] == "Ops bridge"

    rotated = z.webhooks.rotate_secret(hook["id"])
    assert rotated["secret"] != secret and rotated["secret"].startswith("whsec_")
    result = z.webhooks.test(hook["id"])
    assert result["ok"] is True and result["status_code"] == 200
    assert verify_signature(rotated["secret"], stub_server.requests_to("/hooks/zentro")[-1])
    assert not verify_signature(secret, stub_server.requests_to("/hooks/zentro")[-1])

    delivery = z.deliveries.get(result["delivery_id"])
    assert delivery["channel"] == "webhook" and delivery["webhook"]["message_id"] == result["message_id"]
    assert [d["id"] for d in z.deliveries.list(channel="webhook")] == [result["delivery_id"]]

    member = sdk(make_api_key(make_member("alpha", "member")))
    with pytest.raises(PermissionDeniedError):
        member.webhooks.create(url, ["*"])
    z.webhooks.delete(hook["id"])
    with pytest.raises(NotFoundError):
        z.webhooks.get(hook["id"])


# --- compliance --------------------------------------------------------------------------------------------

def test_compliance_exports_in_every_format(z):
    z.incidents.create("Evidence, please")  # an audited, control-tagged change
    assert "readiness" in json.dumps(z.compliance.summary()).lower()
    csv_text = z.compliance.export()
    assert isinstance(csv_text, str) and "incident.created" in csv_text
    as_json = z.compliance.export(format="json", period_days=7)
    assert isinstance(as_json, (dict, list))
    assert isinstance(z.compliance.crosswalk(format="csv"), str)
    assert isinstance(z.compliance.framework_pack("hipaa"), dict)
    oscal = z.compliance.framework_pack("fedramp-poam", format="oscal")
    assert "plan-of-action-and-milestones" in oscal
    with pytest.raises(ValueError):
        z.compliance.framework_pack("made-up")
    with pytest.raises(ValidationError):
        z.compliance.summary(period_days=0)


def test_compliance_workbook_bundles_and_assessor(app, sdk, z, owner):
    workbook = z.compliance.workbook(period_days=30)
    assert zipfile.ZipFile(io.BytesIO(workbook)).namelist()
    bundle = z.compliance.create_bundle(window="7d")
    detail = z.compliance.get_bundle(bundle["id"])
    assert detail["verification"]["ok"] is True
    zipped = z.compliance.download_bundle(bundle["id"])
    assert zipfile.ZipFile(io.BytesIO(zipped)).testzip() is None
    assert [b["id"] for b in z.compliance.list_bundles()][0] == bundle["id"]
    assert z.compliance.public_key().startswith("-----BEGIN PUBLIC KEY-----")

    from zentro.audit.service import SYSTEM
    from zentro.compliance import assessor

    with app.app_context():
        _, token = assessor.create_token(owner.org_id, "Auditor", ["crosswalk"], 30, SYSTEM)
        db.session.remove()
    auditor = sdk(token)
    assert isinstance(auditor.compliance.assessor("crosswalk", format="csv"), str)
    with pytest.raises(PermissionDeniedError):
        auditor.compliance.assessor("workbook")
    with pytest.raises(PermissionDeniedError):
        auditor.incidents.list()


def test_a_retired_version_is_gone(z):
    from zentro.client import GoneError

    with pytest.raises(GoneError):
        z.request("GET", "/api/v0/incidents")
    assert z.request("GET", "/api/v1/incidents", params={"limit": 1}) == {"data": [], "next_cursor": None}
