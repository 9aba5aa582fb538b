"""The automations core at the service level, with an injected clock: plans and hashes, blast radius
with transitive dependents, SLO impact, each guardrail kind, every execute/remediate refusal (its
reason_code and its PolicyBlock row), concurrency, and the robot backend (real local HTTP server)."""
from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from sqlalchemy import func, select

from tests.automations.helpers import (ACTOR, MINUTE, T0, add_deploy, make_guardrail, make_playbook,
                                       make_services)
from tests.http_stub import stub_server  # noqa: F401
from zentro.automations import service
from zentro.automations.models import Approval, DryRun, Execution, PolicyBlock
from zentro.automations.service import PolicyBlocked
from zentro.compliance.models import Policy
from zentro.extensions import db
from zentro.incidents.models import TimelineEvent
from zentro.incidents.service import create_incident
from zentro.platform.errors import ApiError
from zentro.reliability.models import SliSample

DAY = dt.timedelta(days=1)


@pytest.fixture
def org(ctx, make_member):
    """An org with db -> api -> web (web depends on api, api on db), an unrelated batch service."""
    m = make_member("acme", "owner")
    ids = make_services(m.org_id, {"db": 0, "api": 1, "web": 2, "batch": 3}, [("api", "db"), ("web", "api")])
    db.session.commit()
    return {"org_id": m.org_id, "user_id": m.user_id, **ids}


def run(org, steps=None, playbook_id=None, now=T0, **kw) -> DryRun:
    return service.dry_run(org["org_id"], actor=ACTOR, user_id=org["user_id"], steps=steps, playbook_id=playbook_id,
                           now=now, **kw)


def restart(service_id: int) -> list[dict]:
    return [{"action": "restart", "service_id": service_id, "params": {}}]


def execute(org, dry: DryRun, now=T0 + MINUTE, fn=service.execute, **kw) -> Execution:
    args = {"plan_hash": dry.plan_hash, "approval_note": "Error rate spike after deploy", "rollback_plan": "Redeploy v41",
            **kw}
    return fn(org["org_id"], actor=ACTOR, user_id=org["user_id"], dry_run_id=dry.id, now=now, **args)


def blocks(org_id: int) -> list[str]:
    return list(db.session.scalars(select(PolicyBlock.reason_code).where(PolicyBlock.org_id == org_id)
                                   .order_by(PolicyBlock.id)))


def refused(org, code: str, call, executions: int = 0) -> PolicyBlocked:
    before = blocks(org["org_id"])
    with pytest.raises(PolicyBlocked) as exc:
        call()
    assert exc.value.reason_code == code and exc.value.status == 409, exc.value.detail
    assert blocks(org["org_id"]) == [*before, code]
    assert db.session.scalar(select(func.count()).select_from(Execution)) == executions
    return exc.value


# --- plans ----------------------------------------------------------------------------------------

def test_plan_hash_is_canonical_and_action_key_sorted(org):
    a = [{"action": "scale", "service_id": org["api"], "service": "api", "params": {"replicas": 3}},
         {"action": "restart", "service_id": org["db"], "service": "db", "params": {}},
         {"action": "restart", "service_id": org["db"], "service": "db", "params": {}}]
    reordered_keys = [{"params": s["params"], "service": s["service"], "service_id": s["service_id"],
                       "action": s["action"]} for s in a]
    assert service.plan_hash(a) == service.plan_hash(reordered_keys)
    assert service.plan_hash(a) != service.plan_hash(list(reversed(a)))  # order of steps matters
    assert len(service.plan_hash(a)) == 64
    assert service.plan_action_key(a) == "restart:db,scale:api"


def test_rollback_resolves_to_previous_deploy(org):
    add_deploy(org["org_id"], org["api"], "v41", T0 - 2 * DAY)
    add_deploy(org["org_id"], org["api"], "v42", T0 - DAY)
    plan = service.plan_from(org["org_id"], steps=[{"action": "rollback_deploy", "service_id": org["api"]}])
    assert plan == [{"action": "rollback_deploy", "service_id": org["api"], "service": "api",
                     "params": {"to_ref": "v41"}}]
    explicit = service.plan_from(org["org_id"], steps=[{"action": "rollback_deploy", "service_id": org["api"],
                                                        "params": {"to_ref": "v30"}}])
    assert explicit[0]["params"] == {"to_ref": "v30"}


@pytest.mark.parametrize("step, where", [
    ({"action": "scale", "params": {"replicas": 0}}, "replicas"),
    ({"action": "scale", "params": {"replicas": 1001}}, "replicas"),
    ({"action": "scale", "params": {"replicas": "3"}}, "replicas"),
    ({"action": "block_address", "params": {"cidr": "10.0.0.300/8"}}, "cidr"),
    ({"action": "run_command", "params": {"command": "x" * 501}}, "command"),
    ({"action": "toggle_flag", "params": {"flag": "checkout_v2", "on": "yes"}}, "on"),
    ({"action": "reboot_datacenter", "params": {}}, "steps"),
    ({"action": "restart", "params": {"force": True}}, "force"),
])
def test_invalid_steps_are_400_naming_the_field(org, step, where):
    with pytest.raises(ApiError) as exc:
        service.plan_from(org["org_id"], steps=[{"service_id": org["db"], **step}])
    assert exc.value.status == 400
    assert any(where in e["loc"] for e in exc.value.errors), exc.value.errors


def test_step_count_limits_and_foreign_service(org, make_member):
    with pytest.raises(ApiError) as exc:
        service.plan_from(org["org_id"], steps=[])
    assert exc.value.status == 400
    with pytest.raises(ApiError) as exc:
        service.plan_from(org["org_id"], steps=restart(org["db"]) * 51)
    assert exc.value.status == 400
    other = make_member("globex", "owner")
    theirs = make_services(other.org_id, {"theirs": 0})["theirs"]
    db.session.commit()
    with pytest.raises(ApiError) as exc:
        service.plan_from(org["org_id"], steps=restart(theirs))
    assert exc.value.status == 404


def test_block_address_normalises_the_network(org):
    plan = service.plan_from(org["org_id"], steps=[{"action": "block_address", "service_id": org["web"],
                                                    "params": {"cidr": "203.0.113.7/24"}}])
    assert plan[0]["params"] == {"cidr": "203.0.113.0/24"}


# --- dry-run --------------------------------------------------------------------------------------

def test_dry_run_blast_radius_includes_transitive_dependents(org):
    dry = run(org, restart(org["db"]))
    radius = dry.blast_radius
    assert [(s["name"], s["role"], s["depth"]) for s in radius["services"]] == [
        ("db", "touched", 0), ("api", "dependent", 1), ("web", "dependent", 2)]
    assert (radius["touched"], radius["dependents"], radius["total"]) == (1, 2, 3)
    assert radius["by_tier"] == {"0": 1, "1": 1, "2": 1} and radius["most_critical_tier"] == 0
    assert dry.verdict == "pass" and dry.checks == []
    assert dry.expires_at == T0 + 15 * MINUTE


def test_slo_impact_uses_the_remaining_budget_and_states_the_assumption(org):
    # db: 30 days of SLI with 20 000 bad of 40 000 000 total at 99.9 %: budget 40 000, half used
    db.session.add(SliSample(org_id=org["org_id"], service_id=org["db"], window_start=T0 - 30 * DAY + MINUTE,
                             window_end=T0, good=40_000_000 - 20_000, total=40_000_000))
    db.session.commit()
    impact = {row["name"]: row for row in run(org, restart(org["db"])).slo_impact}
    assert impact["db"]["budget_source"] == "sli" and impact["db"]["remaining_ratio_30d"] == pytest.approx(0.5, abs=1e-3)
    budget_minutes = 30 * 24 * 60 * 0.001  # 43.2 minutes of budget at 99.9 %
    assert impact["db"]["risk_minutes"] == 1.0
    assert impact["db"]["predicted_budget_cost"] == pytest.approx(1 / budget_minutes, abs=1e-6)
    assert impact["db"]["predicted_remaining_ratio"] == pytest.approx(0.5 - 1 / budget_minutes, abs=1e-3)
    assert "restart" in impact["db"]["assumption"] and "1 minute" in impact["db"]["assumption"]
    # dependents feel the same minutes; without data a full budget is assumed and said
    assert impact["web"]["role"] == "dependent" and impact["web"]["risk_minutes"] == 1.0
    assert impact["web"]["remaining_ratio_30d"] == 1.0 and "full budget is assumed" in impact["web"]["assumption"]
    assert set(impact) == {"db", "api", "web"}


def test_persisted_dry_run_is_audited_and_on_the_timeline(org):
    inc = create_incident(org["org_id"], title="DB saturation", severity="high", actor=ACTOR)
    db.session.commit()
    dry = run(org, restart(org["db"]), incident_id=inc.id)
    assert dry.id is not None
    ev = db.session.scalar(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id,
                                                       TimelineEvent.kind == "dry_run"))
    assert ev.data["dry_run_id"] == dry.id and "restart db" in ev.body
    from zentro.audit.models import AuditEvent
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "automation.dry_run"))
    assert "SOC2:CC8.1" in audit.control_tags and "ISO27001:A.8.32" in audit.control_tags


def test_not_persisted_dry_run_stores_nothing(org):
    dry = run(org, restart(org["db"]), persist=False)
    assert dry.id is None and dry.plan_hash
    assert db.session.scalar(select(func.count()).select_from(DryRun)) == 0


def test_dry_run_of_a_disabled_playbook_is_refused(org):
    pb = make_playbook(org["org_id"], restart(org["db"]))
    service.update_playbook(org["org_id"], pb, {"enabled": False}, actor=ACTOR)
    with pytest.raises(ApiError) as exc:
        run(org, playbook_id=pb)
    assert exc.value.status == 409


# --- guardrail kinds ------------------------------------------------------------------------------

def verdicts(org, steps, now=T0) -> list[tuple[str, str]]:
    return [(c["kind"], c["verdict"]) for c in run(org, steps, now=now, persist=False).checks]


@pytest.mark.parametrize("params, now, expected", [
    ({"weekdays": ["wed"], "start": "10:00", "end": "14:00"}, T0, "pass"),  # Wed 12:00
    ({"weekdays": ["wed"], "start": "13:00", "end": "14:00"}, T0, "needs_approval"),
    ({"weekdays": ["thu"], "start": "10:00", "end": "14:00"}, T0, "needs_approval"),
    ({"weekdays": ["wed"], "start": "13:00", "end": "14:00", "block_outside": True}, T0, "blocked"),
    ({"weekdays": ["tue"], "start": "22:00", "end": "13:00"}, T0, "pass"),  # opened Tue 22:00, closes Wed 13:00
    ({"weekdays": ["tue"], "start": "22:00", "end": "11:00"}, T0, "needs_approval"),  # closed Wed 11:00
    ({"weekdays": ["tue"], "start": "22:00", "end": "02:00"}, T0.replace(hour=1), "pass"),  # Wed 01:00, opened Tue
    ({"weekdays": ["wed"], "start": "22:00", "end": "02:00"}, T0.replace(hour=1), "needs_approval"),
    ({"weekdays": ["wed"], "start": "00:00", "end": "00:00"}, T0, "pass"),  # all day
])
def test_maintenance_window(org, params, now, expected):
    make_guardrail(org["org_id"], "maintenance_window", {"tz": "UTC", "block_outside": False, **params})
    db.session.commit()
    assert verdicts(org, restart(org["db"]), now) == [("maintenance_window", expected)]


def test_tier_protection_looks_at_touched_services_only(org):
    make_guardrail(org["org_id"], "tier_protection", {"max_tier": 0})
    db.session.commit()
    assert verdicts(org, restart(org["db"])) == [("tier_protection", "needs_approval")]
    assert verdicts(org, restart(org["web"])) == [("tier_protection", "pass")]
    # db is not in web's radius (web depends on api, not the other way round)


def test_max_blast_radius_blocks_beyond_the_limit(org):
    make_guardrail(org["org_id"], "max_blast_radius", {"max_services": 2})
    db.session.commit()
    dry = run(org, restart(org["db"]), persist=False)  # db + api + web = 3
    assert dry.verdict == "blocked" and "3 services" in dry.checks[0]["reason"]
    assert verdicts(org, restart(org["api"])) == [("max_blast_radius", "pass")]  # api + web


def test_required_approvers_and_change_freeze(org):
    make_guardrail(org["org_id"], "required_approvers", {"approvers": ["lead@acme.example"], "min": 1})
    make_guardrail(org["org_id"], "change_freeze", {"starts_at": "2026-03-04T00:00:00Z", "ends_at": "2026-03-05T00:00:00Z",
                                                    "reason": "Quarter close"})
    db.session.commit()
    dry = run(org, restart(org["batch"]), persist=False)
    assert [(c["kind"], c["verdict"]) for c in dry.checks] == [("required_approvers", "needs_approval"),
                                                               ("change_freeze", "blocked")]
    assert dry.checks[0]["approvers"] == ["lead@acme.example"] and "Quarter close" in dry.checks[1]["reason"]
    assert dry.verdict == "blocked"
    assert verdicts(org, restart(org["batch"]), T0 + DAY) == [("required_approvers", "needs_approval"),
                                                              ("change_freeze", "pass")]


def test_service_scoped_guardrails_apply_within_the_blast_radius(org):
    make_guardrail(org["org_id"], "max_blast_radius", {"max_services": 1}, service_id=org["web"])
    make_guardrail(org["org_id"], "tier_protection", {"max_tier": 3}, service_id=org["batch"])
    off = make_guardrail(org["org_id"], "change_freeze", {"starts_at": "2026-01-01T00:00:00Z",
                                                          "ends_at": "2027-01-01T00:00:00Z", "reason": "off"})
    from zentro.automations.models import Guardrail
    db.session.get(Guardrail, off).enabled = False
    db.session.commit()
    # web is a dependent of db: its rule applies; batch is not in the radius: its rule does not
    assert verdicts(org, restart(org["db"])) == [("max_blast_radius", "blocked")]
    assert verdicts(org, restart(org["batch"])) == [("tier_protection", "needs_approval")]


# --- execute: the happy path and every refusal ----------------------------------------------------

def test_execute_happy_path_records_a_manual_execution(org, app, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_ROBOT_API_URL", None)
    inc = create_incident(org["org_id"], title="Latency", severity="high", actor=ACTOR)
    db.session.commit()
    dry = run(org, restart(org["api"]), incident_id=inc.id)
    ex = execute(org, dry)
    assert (ex.mode, ex.status, ex.dry_run_id, ex.incident_id) == ("manual", "recorded", dry.id, inc.id)
    assert "ZENTRO_ROBOT_API_URL unset" in ex.detail and "person" in ex.detail
    kinds = list(db.session.scalars(select(TimelineEvent.kind).where(TimelineEvent.incident_id == inc.id)
                                    .order_by(TimelineEvent.id)))
    assert kinds[-2:] == ["dry_run", "execution"]
    from zentro.audit.models import AuditEvent
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "automation.executed"))
    assert json.loads(audit.data)["rollback_plan"] == "Redeploy v41" and "SOC2:CC8.1" in audit.control_tags
    assert blocks(org["org_id"]) == []


def test_blocked_verdict_is_refused(org):
    make_guardrail(org["org_id"], "max_blast_radius", {"max_services": 1})
    db.session.commit()
    dry = run(org, restart(org["db"]))
    err = refused(org, "dry_run_not_successful", lambda: execute(org, dry))
    assert "blast radius" in err.detail


def test_changed_hash_is_refused(org):
    dry = run(org, restart(org["db"]))
    refused(org, "plan_changed", lambda: execute(org, dry, plan_hash="0" * 64))


def test_playbook_edited_after_the_dry_run_is_refused(org):
    pb = make_playbook(org["org_id"], restart(org["db"]))
    db.session.commit()
    dry = run(org, playbook_id=pb)
    service.update_playbook(org["org_id"], pb, {"steps": restart(org["api"])}, actor=ACTOR)
    refused(org, "plan_changed", lambda: execute(org, dry))


def test_new_deploy_changes_what_a_rollback_plans(org):
    add_deploy(org["org_id"], org["api"], "v41", T0 - 2 * DAY)
    add_deploy(org["org_id"], org["api"], "v42", T0 - DAY)
    pb = make_playbook(org["org_id"], [{"action": "rollback_deploy", "service_id": org["api"]}])
    db.session.commit()
    dry = run(org, playbook_id=pb)
    add_deploy(org["org_id"], org["api"], "v43", T0)  # the rollback would now go to v42
    db.session.commit()
    refused(org, "plan_changed", lambda: execute(org, dry))


def test_stale_dry_run_is_refused(org):
    dry = run(org, restart(org["db"]))
    err = refused(org, "dry_run_stale", lambda: execute(org, dry, now=T0 + 15 * MINUTE))
    assert "15 minutes" in err.detail


@pytest.mark.parametrize("field, code", [("approval_note", "missing_approval_note"),
                                         ("rollback_plan", "missing_rollback_plan")])
def test_missing_note_or_rollback_is_refused(org, field, code):
    dry = run(org, restart(org["db"]))
    refused(org, code, lambda: execute(org, dry, **{field: "   "}))


def test_used_dry_run_is_refused(org):
    dry = run(org, restart(org["db"]))
    execute(org, dry)
    before = blocks(org["org_id"])
    with pytest.raises(PolicyBlocked) as exc:
        execute(org, dry)
    assert exc.value.reason_code == "dry_run_used" and blocks(org["org_id"]) == [*before, "dry_run_used"]
    assert db.session.scalar(select(func.count()).select_from(Execution)) == 1


def approval_guardrail(org):
    make_guardrail(org["org_id"], "tier_protection", {"max_tier": 0})
    db.session.commit()


def test_missing_approval_is_refused(org):
    approval_guardrail(org)
    dry = run(org, restart(org["db"]))
    err = refused(org, "approval_required", lambda: execute(org, dry))
    assert "none was requested" in err.detail and "db (tier 0)" in err.detail


@pytest.mark.parametrize("status, says", [("pending", "still pending"), ("rejected", "rejected by")])
def test_pending_or_rejected_approval_is_refused(org, status, says):
    approval_guardrail(org)
    dry = run(org, restart(org["db"]))
    a = Approval(org_id=org["org_id"], dry_run_id=dry.id, plan_hash=dry.plan_hash, action_key="restart:db",
                 status=status, decided_by_id=org["user_id"] if status == "rejected" else None)
    db.session.add(a)
    db.session.commit()
    err = refused(org, "approval_required", lambda: execute(org, dry))
    assert says in err.detail and f"#{a.id}" in err.detail


def test_approved_approval_is_consumed_once(org):
    approval_guardrail(org)
    dry = run(org, restart(org["db"]))
    a = Approval(org_id=org["org_id"], dry_run_id=dry.id, plan_hash=dry.plan_hash, action_key="restart:db",
                 status="approved")
    db.session.add(a)
    db.session.commit()
    assert execute(org, dry).approval_id == a.id
    again = run(org, restart(org["db"]), now=T0 + 2 * MINUTE)  # the same plan, a new dry-run
    err = refused(org, "approval_required", lambda: execute(org, again, now=T0 + 3 * MINUTE), executions=1)
    assert "already used" in err.detail


def test_approval_of_another_plan_is_refused(org):
    approval_guardrail(org)
    dry = run(org, restart(org["db"]))
    other = Approval(org_id=org["org_id"], plan_hash="f" * 64, action_key="restart:web", status="approved")
    db.session.add(other)
    db.session.commit()
    err = refused(org, "approval_required", lambda: execute(org, dry, approval_id=other.id))
    assert "another plan" in err.detail


def test_wrong_tenant_dry_run_is_404_not_a_block(org, make_member):
    other = make_member("globex", "owner")
    theirs = make_services(other.org_id, {"x": 2})["x"]
    db.session.commit()
    dry = service.dry_run(other.org_id, actor=ACTOR, user_id=other.user_id, steps=restart(theirs), now=T0)
    with pytest.raises(ApiError) as exc:
        execute(org, dry)
    assert exc.value.status == 404 and not isinstance(exc.value, PolicyBlocked)
    assert db.session.scalar(select(func.count()).select_from(PolicyBlock)) == 0


# --- remediate ------------------------------------------------------------------------------------

def accept_policy(org, actions: list[str], status: str = "accepted") -> Policy:
    pol = Policy(org_id=org["org_id"], name=f"Policy {actions}", status=status, control_tags="SOC2:CC8.1",
                 actions=actions)
    db.session.add(pol)
    db.session.commit()
    return pol


def test_remediate_needs_an_accepted_policy_covering_every_step(org):
    accept_policy(org, ["restart:db"], status="review")  # not accepted: does not count
    accept_policy(org, ["restart:api"])  # accepted, but covers only one step
    steps = restart(org["db"]) + restart(org["api"])
    dry = run(org, steps)
    err = refused(org, "no_accepted_policy", lambda: execute(org, dry, fn=service.remediate))
    assert db.session.scalar(select(func.count()).select_from(Execution)) == 0
    assert "restart:api,restart:db" in err.detail
    covering = accept_policy(org, ["restart:*"])
    ex = execute(org, run(org, steps, now=T0 + MINUTE), now=T0 + 2 * MINUTE, fn=service.remediate)
    assert (ex.kind, ex.policy_id) == ("remediate", covering.id)


def test_policy_covering_matches_patterns(org):
    plan = [{"action": "scale", "service_id": org["api"], "service": "api", "params": {"replicas": 2}}]
    assert service.policy_covering(org["org_id"], plan) is None
    pol = accept_policy(org, ["restart:*", "scale:ap?"])
    assert service.policy_covering(org["org_id"], plan).id == pol.id


# --- concurrency ----------------------------------------------------------------------------------

def test_integrity_error_on_double_execute_is_a_dry_run_used_block(org, monkeypatch):
    """The unique dry_run_id is the last line: a racing execute that passed the checks is refused."""
    dry = run(org, restart(org["db"]))
    execute(org, dry)
    monkeypatch.setattr(service, "_execution_of", lambda dry_run_id: None)  # as if the other had not committed yet
    refused_before = blocks(org["org_id"])
    with pytest.raises(PolicyBlocked) as exc:
        execute(org, dry)
    assert exc.value.reason_code == "dry_run_used"
    assert blocks(org["org_id"]) == [*refused_before, "dry_run_used"]
    assert db.session.scalar(select(func.count()).select_from(Execution)) == 1


def test_concurrent_double_execute_runs_once(org, app):
    dry = run(org, restart(org["db"]))
    dry_id, plan_hash = dry.id, dry.plan_hash
    db.session.remove()
    barrier, outcomes = threading.Barrier(2), []

    def attempt():
        with app.app_context():
            barrier.wait()
            try:
                service.execute(org["org_id"], actor=ACTOR, user_id=org["user_id"], dry_run_id=dry_id,
                                plan_hash=plan_hash, approval_note="n", rollback_plan="r", now=T0 + MINUTE)
                outcomes.append("executed")
            except PolicyBlocked as exc:
                outcomes.append(exc.reason_code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["dry_run_used", "executed"]
    assert db.session.scalar(select(func.count()).select_from(Execution)) == 1


# --- robot backend --------------------------------------------------------------------------------

def robot_config(app, monkeypatch, url):
    monkeypatch.setitem(app.config, "ZENTRO_ROBOT_API_URL", url)
    monkeypatch.setitem(app.config, "ZENTRO_CONNECTORS_ALLOW_PRIVATE", True)


def test_robot_receives_exactly_the_plan(org, app, monkeypatch, stub_server):  # noqa: F811
    stub_server.route("POST", "/robot/executions", lambda req: (202, {"accepted": True}))
    robot_config(app, monkeypatch, stub_server.url + "/robot/")
    dry = run(org, restart(org["db"]) + [{"action": "scale", "service_id": org["api"], "params": {"replicas": 4}}])
    ex = execute(org, dry)
    assert (ex.mode, ex.status, ex.robot_status) == ("robot", "succeeded", 202)
    (call,) = stub_server.calls
    assert call.path == "/robot/executions"
    assert call.json["plan"] == dry.plan and call.json["plan_hash"] == dry.plan_hash
    assert call.json["execution_id"] == ex.id and call.json["org"] == "acme"
    assert call.json["rollback_plan"] == "Redeploy v41" and call.json["requested_by"].endswith("@acme.example")


def test_robot_failure_is_recorded_as_failed(org, app, monkeypatch, stub_server):  # noqa: F811
    stub_server.route("POST", "/executions", lambda req: (500, {"error": "robot arm jammed"}))
    robot_config(app, monkeypatch, stub_server.url)
    ex = execute(org, run(org, restart(org["db"])))
    assert (ex.mode, ex.status, ex.robot_status) == ("robot", "failed", 500)
    assert "HTTP 500" in ex.detail and "did not accept" in ex.detail


def test_robot_on_a_private_address_is_refused_unless_allowed(org, app, monkeypatch, stub_server):  # noqa: F811
    stub_server.route("POST", "/executions", lambda req: (202, {}))
    monkeypatch.setitem(app.config, "ZENTRO_ROBOT_API_URL", stub_server.url)
    monkeypatch.setitem(app.config, "ZENTRO_CONNECTORS_ALLOW_PRIVATE", False)
    ex = execute(org, run(org, restart(org["db"])))
    assert ex.status == "failed" and "loopback" in ex.detail and stub_server.calls == []
