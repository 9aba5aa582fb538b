"""Services API: CRUD, dependency edges, change events, SLI samples, and bad input that changes nothing."""
from __future__ import annotations

import datetime as dt

import pytest

from zentro.platform.types import utcnow

from .helpers import iso

SERVICES = "/api/v1/services"


def create(api, name="payments-api", **fields):
    resp = api.post(SERVICES, json={"name": name, **fields})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def error_of(resp, status, code):
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["error_code"] == code and body["detail"]
    return body


def test_create_read_list_patch_delete(api, rows):
    assert create(api, "integral-float", tier=1.0)["tier"] == 1  # JSON Schema calls 1.0 an integer
    made = create(api, "payments-api", tier=0, environment="production", internet_facing=False, owner="team-payments",
                  runbook_url="https://runbooks.example.com/payments", slo_target=99.95, description="Card payments")
    assert made["tier"] == 0 and made["slo_target"] == 99.95 and made["depends_on"] == []
    sid = made["id"]
    got = api.get(f"{SERVICES}/{sid}").get_json()
    assert got["owner"] == "team-payments" and got["runbook_url"] == "https://runbooks.example.com/payments"

    create(api, "auth-service")
    listed = api.get(SERVICES + "?limit=1").get_json()
    assert [s["name"] for s in listed["data"]] == ["auth-service"] and listed["next_cursor"]
    rest = api.get(SERVICES + f"?limit=2&cursor={listed['next_cursor']}").get_json()
    assert [s["name"] for s in rest["data"]] == ["payments-api", "integral-float"] and rest["next_cursor"] is None

    patched = api.patch(f"{SERVICES}/{sid}", json={"tier": 1, "internet_facing": True}).get_json()
    assert patched["tier"] == 1 and patched["internet_facing"] is True and patched["owner"] == "team-payments"
    assert rows("audit_events", action="service.updated") == 1
    api.patch(f"{SERVICES}/{sid}", json={"tier": 1})  # no change, nothing recorded
    assert rows("audit_events", action="service.updated") == 1

    gone = api.delete(f"{SERVICES}/{sid}")
    assert gone.status_code == 200 and gone.get_json()["name"] == "payments-api"
    error_of(api.get(f"{SERVICES}/{sid}"), 404, "NOT_FOUND")
    assert rows("audit_events", action="service.deleted") == 1


@pytest.mark.parametrize("body,field", [
    ({"name": "x", "tier": 4}, "tier"),
    ({"name": "x", "tier": -1}, "tier"),
    ({"name": "x", "tier": "1"}, "tier"),
    ({"name": "x", "tier": True}, "tier"),
    ({"name": "x", "tier": 1.5}, "tier"),
    ({"name": "x", "runbook_url": "javascript:alert(1)"}, "runbook_url"),
    ({"name": "x", "runbook_url": "ftp://files.example.com/runbook"}, "runbook_url"),
    ({"name": "x", "runbook_url": "https://exa mple.com"}, "runbook_url"),
    ({"name": "x", "slo_target": 100}, "slo_target"),
    ({"name": "x", "slo_target": 89.9}, "slo_target"),
    ({"name": "x", "environment": "prod"}, "environment"),
    ({"name": ""}, "name"),
    ({"name": " leading-space"}, "name"),
    ({"name": "<script>"}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": "x", "surprise": 1}, "surprise"),
])
def test_bad_service_input_is_400_and_stores_nothing(api, rows, body, field):
    body = error_of(api.post(SERVICES, json=body), 400, "VALIDATION_ERROR")
    assert body["errors"][0]["loc"][0] == field
    assert rows("services") == 0


def test_duplicate_name_is_409_case_insensitively(api, rows):
    create(api, "payments-api")
    error_of(api.post(SERVICES, json={"name": "Payments-API"}), 409, "CONFLICT")
    other = create(api, "ledger")
    error_of(api.patch(f"{SERVICES}/{other['id']}", json={"name": "payments-api"}), 409, "CONFLICT")
    assert rows("services") == 2
    assert api.get(f"{SERVICES}/{other['id']}").get_json()["name"] == "ledger"


def test_viewer_reads_but_cannot_mutate(api, viewer_api, member_api, rows):
    sid = create(api, "payments-api")["id"]
    assert viewer_api.get(SERVICES).status_code == 200
    error_of(viewer_api.post(SERVICES, json={"name": "new"}), 403, "FORBIDDEN")
    error_of(viewer_api.patch(f"{SERVICES}/{sid}", json={"tier": 0}), 403, "FORBIDDEN")
    error_of(viewer_api.post(f"{SERVICES}/{sid}/changes", json={"summary": "deploy"}), 403, "FORBIDDEN")
    # deleting is for owners and admins; a member may edit but not delete
    assert member_api.patch(f"{SERVICES}/{sid}", json={"owner": "team-x"}).status_code == 200
    error_of(member_api.delete(f"{SERVICES}/{sid}"), 403, "FORBIDDEN")
    assert rows("services") == 1


def test_api_key_scopes(app, owner, make_api_key, rows):
    from .conftest import Api

    read_only = Api(app.test_client(), make_api_key(owner, ["services:read"]))
    assert read_only.get(SERVICES).status_code == 200
    error_of(read_only.post(SERVICES, json={"name": "x"}), 403, "FORBIDDEN")
    wrong = Api(app.test_client(), make_api_key(owner, ["audit:read"]))
    error_of(wrong.get(SERVICES), 403, "FORBIDDEN")
    assert rows("services") == 0


def test_other_orgs_ids_are_404_everywhere(api, other_api, rows):
    a = create(api, "payments-api")["id"]
    b = create(api, "postgres")["id"]
    mine = create(other_api, "mine")["id"]
    for method, url, body in [
        ("get", f"{SERVICES}/{a}", None), ("patch", f"{SERVICES}/{a}", {"tier": 0}), ("delete", f"{SERVICES}/{a}", None),
        ("post", f"{SERVICES}/{a}/dependencies", {"depends_on_id": b}),
        ("delete", f"{SERVICES}/{a}/dependencies/{b}", None),
        ("post", f"{SERVICES}/{a}/changes", {"summary": "x"}), ("get", f"{SERVICES}/{a}/changes", None),
        ("post", f"{SERVICES}/{a}/sli", sample(utcnow() - dt.timedelta(hours=1), utcnow(), 1, 1)),
        ("get", f"/api/services/{a}/slo", None), ("get", f"/api/attack-paths/simulate?targetServiceId={a}", None),
        # an edge from my service to another org's service: the target is not found either
        ("post", f"{SERVICES}/{mine}/dependencies", {"depends_on_id": a}),
    ]:
        error_of(getattr(other_api, method)(url, json=body), 404, "NOT_FOUND")
    assert [s["name"] for s in other_api.get(SERVICES).get_json()["data"]] == ["mine"]
    assert rows("service_dependencies") == 0 and rows("change_events") == 0 and rows("sli_samples") == 0


def test_dependencies_refuse_self_duplicates_and_cycles(api, rows):
    web, gw, pay, db_ = (create(api, n)["id"] for n in ("web", "gateway", "payments", "postgres"))
    for a, b in ((web, gw), (gw, pay), (pay, db_)):
        resp = api.post(f"{SERVICES}/{a}/dependencies", json={"depends_on_id": b})
        assert resp.status_code == 201 and resp.get_json()["depends_on_id"] == b
    assert api.get(f"{SERVICES}/{gw}").get_json()["depends_on"] == [pay]

    assert "itself" in error_of(api.post(f"{SERVICES}/{gw}/dependencies", json={"depends_on_id": gw}), 409,
                                "CONFLICT")["detail"]
    assert "already" in error_of(api.post(f"{SERVICES}/{web}/dependencies", json={"depends_on_id": gw}), 409,
                                 "CONFLICT")["detail"]
    cycle = error_of(api.post(f"{SERVICES}/{db_}/dependencies", json={"depends_on_id": web}), 409, "CONFLICT")
    assert "cycle" in cycle["detail"] and "postgres → web → gateway → payments → postgres" in cycle["detail"]
    error_of(api.post(f"{SERVICES}/{web}/dependencies", json={"depends_on_id": 999999}), 404, "NOT_FOUND")
    assert rows("service_dependencies") == 3

    removed = api.delete(f"{SERVICES}/{pay}/dependencies/{db_}")
    assert removed.status_code == 200 and removed.get_json()["depends_on_name"] == "postgres"
    error_of(api.delete(f"{SERVICES}/{pay}/dependencies/{db_}"), 404, "NOT_FOUND")
    # with the edge gone the reverse direction no longer closes a cycle
    assert api.post(f"{SERVICES}/{db_}/dependencies", json={"depends_on_id": web}).status_code == 201


def test_deleting_a_service_removes_its_edges_and_samples_but_keeps_incidents(app, api, owner, rows):
    from zentro.incidents import service as incidents

    from .helpers import TEST_ACTOR

    a, b = create(api, "a")["id"], create(api, "b")["id"]
    api.post(f"{SERVICES}/{a}/dependencies", json={"depends_on_id": b})
    now = utcnow()
    api.post(f"{SERVICES}/{b}/sli", json={"window_start": iso(now - dt.timedelta(hours=1)), "window_end": iso(now),
                                          "good": 10, "total": 10})
    with app.app_context():
        from zentro.extensions import db

        incidents.create_incident(owner.org_id, title="b is down", severity="high", actor=TEST_ACTOR, service_id=b)
        db.session.commit()
    assert api.delete(f"{SERVICES}/{b}").status_code == 200
    assert rows("service_dependencies") == 0 and rows("sli_samples") == 0
    assert rows("incidents") == 1 and rows("incidents", service_id=b) == 0


def test_change_events(api, rows):
    sid = create(api, "payments-api")["id"]
    now = utcnow()
    first = api.post(f"{SERVICES}/{sid}/changes", json={"kind": "deploy", "summary": "Deploy v2.14.0", "ref": "v2.14.0",
                                                        "occurred_at": iso(now - dt.timedelta(hours=2))})
    assert first.status_code == 201 and first.get_json()["kind"] == "deploy"
    assert api.post(f"{SERVICES}/{sid}/changes", json={"kind": "flag", "summary": "checkout-v2 on"}).status_code == 201
    listed = api.get(f"{SERVICES}/{sid}/changes").get_json()
    assert [c["kind"] for c in listed["data"]] == ["flag", "deploy"]
    assert rows("audit_events", action="service.change_recorded") == 2

    soon = iso(now + dt.timedelta(minutes=4))
    assert api.post(f"{SERVICES}/{sid}/changes", json={"summary": "clock skew", "occurred_at": soon}).status_code == 201
    for bad in ({"summary": "future", "occurred_at": iso(now + dt.timedelta(minutes=10))},
                {"summary": "naive time", "occurred_at": "2026-01-01T10:00:00"},
                {"summary": "   "}, {"summary": "x", "kind": "reboot"}, {"kind": "deploy"}):
        error_of(api.post(f"{SERVICES}/{sid}/changes", json=bad), 400, "VALIDATION_ERROR")
    assert rows("change_events") == 3


def sample(start, end, good, total):
    return {"window_start": iso(start), "window_end": iso(end), "good": good, "total": total}


def test_sli_single_sample_list_and_replace(api, rows):
    sid = create(api, "payments-api")["id"]
    now = utcnow().replace(microsecond=0)
    one = api.post(f"{SERVICES}/{sid}/sli", json=sample(now - dt.timedelta(minutes=10), now, 990, 1000))
    assert one.status_code == 201 and one.get_json()["stored"] == 1
    assert {r["rule"] for r in one.get_json()["rules"]} == {"page-1h", "page-6h", "ticket-3d"}
    many = api.post(f"{SERVICES}/{sid}/sli", json={"samples": [
        sample(now - dt.timedelta(minutes=20), now - dt.timedelta(minutes=10), 1000, 1000),
        sample(now - dt.timedelta(minutes=10), now, 1000, 1000),  # same window as before: replaces 990/1000
    ]})
    assert many.status_code == 201 and many.get_json()["stored"] == 1 and many.get_json()["replaced"] == 1
    assert rows("sli_samples") == 2 and rows("sli_samples", good=990) == 0
    assert rows("audit_events", action="service.sli_recorded") == 2


@pytest.mark.parametrize("case", ["good_gt_total", "negative", "future", "reversed", "too_long", "empty_list",
                                  "both_forms", "neither", "naive", "partial", "float_count"])
def test_bad_sli_is_400_and_stores_nothing(api, rows, case):
    sid = create(api, "payments-api")["id"]
    now = utcnow()
    hour = dt.timedelta(hours=1)
    body = {
        "good_gt_total": sample(now - hour, now, 11, 10),
        "negative": sample(now - hour, now, 0, -1),
        "future": sample(now, now + hour, 1, 1),
        "reversed": sample(now, now - hour, 1, 1),
        "too_long": sample(now - dt.timedelta(days=32), now, 1, 1),
        "empty_list": {"samples": []},
        "both_forms": {**sample(now - hour, now, 1, 1), "samples": [sample(now - hour, now, 1, 1)]},
        "neither": {},
        "naive": {"window_start": "2026-01-01T00:00:00", "window_end": "2026-01-01T01:00:00", "good": 1, "total": 1},
        "partial": {"window_start": iso(now - hour), "good": 1, "total": 1},
        "float_count": sample(now - hour, now, 1.5, 2),
    }[case]
    error_of(api.post(f"{SERVICES}/{sid}/sli", json=body), 400, "VALIDATION_ERROR")
    # one bad sample in a list refuses the whole list
    if case in ("good_gt_total", "future"):
        error_of(api.post(f"{SERVICES}/{sid}/sli", json={"samples": [sample(now - 2 * hour, now - hour, 5, 5), body]}),
                 400, "VALIDATION_ERROR")
    assert rows("sli_samples") == 0 and rows("audit_events", action="service.sli_recorded") == 0


def test_sli_zero_total_and_clock_skew_are_accepted(api, rows):
    sid = create(api, "batch")["id"]
    now = utcnow()
    assert api.post(f"{SERVICES}/{sid}/sli", json=sample(now - dt.timedelta(hours=1), now + dt.timedelta(minutes=4),
                                                         0, 0)).status_code == 201
    assert rows("sli_samples") == 1


def test_idempotency_key_replays_sli_post(api, rows):
    sid = create(api, "payments-api")["id"]
    now = utcnow()
    body = sample(now - dt.timedelta(hours=1), now, 5, 5)
    first = api.post(f"{SERVICES}/{sid}/sli", json=body, headers={"Idempotency-Key": "k1"})
    again = api.post(f"{SERVICES}/{sid}/sli", json=body, headers={"Idempotency-Key": "k1"})
    assert again.headers.get("Idempotent-Replayed") == "true" and again.get_json() == first.get_json()
    assert rows("sli_samples") == 1 and rows("audit_events", action="service.sli_recorded") == 1
