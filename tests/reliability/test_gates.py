"""Deploy gate checks, each failing and passing on a hand-built dataset, through GET /api/v1/gates/{service}
at a fixed clock (NOW, a Monday noon UTC)."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.reliability.gate_helpers import HOUR, NOW, add_guardrail, add_incident, freeze, gate_rows, window
from tests.reliability.helpers import add_edge, add_samples, add_service

DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    from zentro.reliability import gates_api

    monkeypatch.setattr(gates_api, "utcnow", lambda: NOW)


@pytest.fixture
def shop(app, owner):
    """checkout → payments → ledger (checkout depends on payments, which depends on ledger); search apart."""
    ids = {name: add_service(app, owner.org_id, name) for name in ("checkout", "payments", "ledger", "search")}
    add_edge(app, owner.org_id, ids["checkout"], ids["payments"])
    add_edge(app, owner.org_id, ids["payments"], ids["ledger"])
    return ids


def gate(api, service, **params):
    resp = api.get(f"/api/v1/gates/{service}", query_string=params)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert resp.headers["X-Zentro-Gate"] == body["decision"]
    return body


def check(body, name):
    return next(c for c in body["checks"] if c["check"] == name)


def set_rules(api, service_id, **rules):
    resp = api.patch(f"/api/v1/services/{service_id}/gates", json=rules)
    assert resp.status_code == 200, resp.get_data(as_text=True)


def test_quiet_service_passes_with_the_default_rules(api, shop):
    body = gate(api, "checkout")
    assert body["decision"] == "pass" and body["reasons"] == []
    verdicts = {c["check"]: c["verdict"] for c in body["checks"]}
    assert verdicts == {"incidents": "pass", "dependency_incidents": "pass", "error_budget": "skipped",
                        "freeze": "pass", "maintenance_window": "skipped"}
    assert "unknown" in check(body, "error_budget")["reason"]  # no samples, no incidents: said so, not a fake pass
    assert body["rules"]["block_severities"] == ["critical", "high"] and body["rules"]["configured"] is False
    assert body["service"] == {"id": shop["checkout"], "name": "checkout"}
    assert body["evaluated_at"] == "2026-03-02T12:00:00Z"


def test_critical_incident_on_the_service_fails(app, api, owner, shop):
    ref = add_incident(app, owner.org_id, shop["checkout"], "critical", title="Checkout 500s")
    body = gate(api, "checkout")
    assert body["decision"] == "fail"
    c = check(body, "incidents")
    assert c["verdict"] == "fail" and ref in c["reason"] and "Checkout 500s" in c["reason"]
    assert [r["ref"] for r in c["refs"]] == [ref] and c["refs"][0]["kind"] == "incident"
    assert c["reason"] in body["reasons"]


@pytest.mark.parametrize("status", ["acknowledged", "mitigated"])
def test_active_but_not_open_incident_still_blocks(app, api, owner, shop, status):
    add_incident(app, owner.org_id, shop["checkout"], "high", status=status)
    assert check(gate(api, "checkout"), "incidents")["verdict"] == "fail"


def test_incident_on_a_transitive_dependency_fails(app, api, owner, shop):
    ref = add_incident(app, owner.org_id, shop["ledger"], "high")
    body = gate(api, "checkout")
    assert body["decision"] == "fail"
    assert check(body, "incidents")["verdict"] == "pass"
    dep = check(body, "dependency_incidents")
    assert dep["verdict"] == "fail" and ref in dep["reason"] and "ledger" in dep["reason"]
    assert dep["refs"][0]["service"] == "ledger"
    # a service that does not depend on ledger is not held up by it
    assert gate(api, "search")["decision"] == "pass"


def test_dependency_incident_passes_when_dependencies_are_excluded(app, api, owner, shop):
    add_incident(app, owner.org_id, shop["payments"], "critical")
    set_rules(api, shop["checkout"], include_dependencies=False)
    body = gate(api, "checkout")
    assert body["decision"] == "pass"
    assert check(body, "dependency_incidents")["verdict"] == "skipped"


def test_medium_incident_passes_with_default_severities_and_fails_when_configured(app, api, owner, shop):
    add_incident(app, owner.org_id, shop["checkout"], "medium")
    assert gate(api, "checkout")["decision"] == "pass"
    set_rules(api, shop["checkout"], block_severities=["medium", "critical"])
    body = gate(api, "checkout")
    assert body["decision"] == "fail" and check(body, "incidents")["verdict"] == "fail"
    assert body["rules"]["block_severities"] == ["critical", "medium"]


def test_resolved_incident_passes(app, api, owner, shop):
    add_incident(app, owner.org_id, shop["checkout"], "critical", status="resolved", started=NOW - 2 * HOUR)
    body = gate(api, "checkout")
    assert body["decision"] == "pass", body["reasons"]
    assert check(body, "incidents")["verdict"] == "pass"


def test_exhausted_error_budget_fails_and_a_healthy_one_passes(app, api, owner, shop):
    add_samples(app, owner.org_id, shop["checkout"], [(NOW - 2 * DAY, NOW - DAY, 900, 1000)])  # 100 bad, budget 1
    add_samples(app, owner.org_id, shop["search"], [(NOW - 2 * DAY, NOW - DAY, 1000, 1000)])
    body = gate(api, "checkout")
    assert body["decision"] == "fail"
    c = check(body, "error_budget")
    assert c["verdict"] == "fail" and "exhausted" in c["reason"] and c["refs"][0]["source"] == "sli"
    ok = check(gate(api, "search"), "error_budget")
    assert ok["verdict"] == "pass" and "100 %" in ok["reason"]


def test_budget_figure_is_the_one_the_slo_endpoint_reports(app, api, owner, shop):
    add_samples(app, owner.org_id, shop["checkout"], [(NOW - 2 * DAY, NOW - DAY, 9_995, 10_000)])  # half spent
    set_rules(api, shop["checkout"], min_remaining_percent=60)
    body = gate(api, "checkout")
    c = check(body, "error_budget")
    assert c["verdict"] == "fail" and c["refs"][0]["remaining_percent"] == 50.0 and "below the required 60 %" in c["reason"]
    set_rules(api, shop["checkout"], min_remaining_percent=40)
    assert check(gate(api, "checkout"), "error_budget")["verdict"] == "pass"
    set_rules(api, shop["checkout"], error_budget=False, min_remaining_percent=60)
    assert check(gate(api, "checkout"), "error_budget")["verdict"] == "skipped"


def test_budget_derived_from_incidents_counts_like_the_slo_page(app, api, owner, shop):
    # a critical incident open 2 h on a 99.9 % SLO spends 120 of 43.2 allowed minutes in 30 days
    add_incident(app, owner.org_id, shop["search"], "critical", status="resolved", started=NOW - 5 * HOUR,
                 ended=NOW - 3 * HOUR)
    c = check(gate(api, "search"), "error_budget")
    assert c["verdict"] == "fail" and c["refs"][0]["source"] == "derived_from_incidents"


@pytest.mark.parametrize("starts,ends,verdict", [
    (NOW - HOUR, NOW + HOUR, "fail"),       # active
    (NOW + HOUR, NOW + 2 * HOUR, "pass"),   # not started
    (NOW - 2 * HOUR, NOW - HOUR, "pass"),   # ended
    (NOW - HOUR, NOW, "pass"),              # ends exactly now: over
    (NOW, NOW + HOUR, "fail"),              # starts exactly now: in force
])
def test_org_wide_freeze(app, api, owner, shop, starts, ends, verdict):
    gid = freeze(app, owner.org_id, starts, ends)
    body = gate(api, "checkout")
    c = check(body, "freeze")
    assert c["verdict"] == verdict and body["decision"] == verdict
    if verdict == "fail":
        assert "quarter close" in c["reason"] and c["refs"][0]["id"] == gid


def test_freeze_scoping(app, api, owner, shop):
    freeze(app, owner.org_id, NOW - HOUR, NOW + HOUR, service_id=shop["search"])
    assert check(gate(api, "checkout"), "freeze")["verdict"] == "pass"  # scoped to another service
    assert check(gate(api, "search"), "freeze")["verdict"] == "fail"
    freeze(app, owner.org_id, NOW - HOUR, NOW + HOUR, service_id=shop["ledger"])  # a dependency of checkout
    assert check(gate(api, "checkout"), "freeze")["verdict"] == "fail"
    set_rules(api, shop["checkout"], include_dependencies=False)
    assert check(gate(api, "checkout"), "freeze")["verdict"] == "pass"
    set_rules(api, shop["search"], freeze=False)
    assert check(gate(api, "search"), "freeze")["verdict"] == "skipped"


def test_disabled_freeze_guardrail_does_not_block(app, api, owner, shop):
    add_guardrail(app, owner.org_id, "change_freeze", {"starts_at": "2026-03-01T00:00:00Z",
                                                      "ends_at": "2026-03-09T00:00:00Z", "reason": "x"}, enabled=False)
    assert gate(api, "checkout")["decision"] == "pass"


def test_maintenance_window_required(app, api, owner, shop):
    set_rules(api, shop["checkout"], require_maintenance_window=True)
    body = gate(api, "checkout")  # required, but no window exists
    assert body["decision"] == "fail" and "no enabled maintenance_window" in check(body, "maintenance_window")["reason"]
    window(app, owner.org_id, ["mon"], "13:00", "15:00")  # later today: outside
    c = check(gate(api, "checkout"), "maintenance_window")
    assert c["verdict"] == "fail" and "outside" in c["reason"] and "Mon 12:00" in c["reason"]
    wid = window(app, owner.org_id, ["mon", "tue"], "11:30", "12:30", service_id=shop["checkout"])  # inside
    body = gate(api, "checkout")
    assert body["decision"] == "pass" and check(body, "maintenance_window")["refs"][0]["id"] == wid
    # without the rule the windows do not matter
    assert check(gate(api, "search"), "maintenance_window")["verdict"] == "skipped"


def test_maintenance_window_scoped_to_another_service_does_not_apply(app, api, owner, shop):
    set_rules(api, shop["checkout"], require_maintenance_window=True)
    window(app, owner.org_id, ["mon"], "11:00", "13:00", service_id=shop["search"])
    assert check(gate(api, "checkout"), "maintenance_window")["verdict"] == "fail"


def test_maintenance_window_across_midnight(app, api, owner, shop, monkeypatch):
    from zentro.reliability import gates_api

    set_rules(api, shop["checkout"], require_maintenance_window=True)
    window(app, owner.org_id, ["sun"], "22:00", "02:00")  # Sunday night into Monday
    monkeypatch.setattr(gates_api, "utcnow", lambda: NOW.replace(hour=1))  # Monday 01:00
    assert gate(api, "checkout")["decision"] == "pass"
    monkeypatch.setattr(gates_api, "utcnow", lambda: NOW.replace(hour=3))
    assert gate(api, "checkout")["decision"] == "fail"


def test_disabled_gate_passes_and_says_so(app, api, owner, shop):
    add_incident(app, owner.org_id, shop["checkout"], "critical")
    freeze(app, owner.org_id, NOW - HOUR, NOW + HOUR)
    set_rules(api, shop["checkout"], enabled=False)
    body = gate(api, "checkout")
    assert body["decision"] == "pass" and body["reasons"] == []
    assert [c["check"] for c in body["checks"]] == ["enabled"]
    assert body["checks"][0]["verdict"] == "skipped" and "disabled" in body["checks"][0]["reason"]
    assert "disabled" in body["summary"]
    decisions, events = gate_rows(app, owner.org_id)
    assert len(decisions) == 1 and len(events) == 1  # still recorded


def test_several_failures_are_all_reported(app, api, owner, shop):
    add_incident(app, owner.org_id, shop["checkout"], "critical")
    add_incident(app, owner.org_id, shop["payments"], "high")
    freeze(app, owner.org_id, NOW - HOUR, NOW + HOUR)
    body = gate(api, "checkout")
    failed = [c["check"] for c in body["checks"] if c["verdict"] == "fail"]
    assert {"incidents", "dependency_incidents", "freeze"} <= set(failed)
    assert len(body["reasons"]) == len(failed)
    assert body["summary"].startswith(f"fail: {len(failed)} check(s) failed")
