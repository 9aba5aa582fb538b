"""Policy suggestions from approval history: thresholds, coverage, promotion into review (API and page)."""
from __future__ import annotations

import pytest

from tests.automations.slack_helpers import DAY, T0, make_approval
from zentro.audit.models import AuditEvent
from zentro.audit.service import SYSTEM
from zentro.automations import service as core
from zentro.automations import suggestions as svc
from zentro.compliance import attestations as att
from zentro.compliance.models import Policy
from zentro.extensions import db

LIST = "/api/approvals/policy-suggestions"
PROMOTE = "/api/approvals/policy-suggestions/promote"
KEY = "restart:checkout"


@pytest.fixture
def org(app, monkeypatch, make_member):
    monkeypatch.setitem(app.config, "ZENTRO_POLICY_SUGGESTION_MIN_APPROVALS", 3)
    return {"owner": make_member("alpha", "owner", email="olivia@alpha.example"),
            "admin": make_member("alpha", "admin", email="adam@alpha.example"),
            "member": make_member("alpha", "member"), "viewer": make_member("alpha", "viewer")}


def decisions(app, member, n: int, *, key: str = KEY, status: str = "approved", start=T0, by=None) -> None:
    for i in range(n):
        make_approval(app, member.org_id, action_key=key, status=status, decided_by=(by or member).user_id,
                      decided_at=start + i * DAY)


def _suggested(app, org_id: int) -> list[str]:
    with app.app_context():
        keys = [s.action_key for s in svc.suggestions(org_id)]
        db.session.remove()
    return keys


def _policy(app, org_id: int, actions: list[str], status: str) -> int:
    with app.app_context():
        p = Policy(org_id=org_id, name=f"manual {status} {actions}", status=status, actions=actions,
                   control_tags="SOC2:CC8.1")
        db.session.add(p)
        db.session.commit()
        pid = p.id
        db.session.remove()
    return pid


def _api(client, key):
    return {"Authorization": f"Bearer {key}"}


# --- thresholds and coverage -------------------------------------------------------------------------------

def test_threshold_minus_one_approvals_is_not_a_suggestion(app, org):
    decisions(app, org["owner"], 2)
    make_approval(app, org["owner"].org_id, action_key=KEY)  # pending requests do not count
    assert _suggested(app, org["owner"].org_id) == []
    decisions(app, org["admin"], 1, start=T0 + 5 * DAY)
    assert _suggested(app, org["owner"].org_id) == [KEY]


def test_a_single_rejection_rules_a_key_out(app, org):
    decisions(app, org["owner"], 5)
    decisions(app, org["admin"], 1, status="rejected", start=T0 + 9 * DAY)
    assert _suggested(app, org["owner"].org_id) == []


@pytest.mark.parametrize("status,patterns,suggested", [
    ("accepted", ["restart:*"], False), ("review", ["restart:checkout"], False), ("draft", ["*:checkout"], False),
    ("retired", ["restart:*"], True), ("accepted", ["restart:api"], True), ("accepted", ["Restart:checkout"], True),
])
def test_a_non_retired_policy_covering_the_key_rules_it_out(app, org, status, patterns, suggested):
    decisions(app, org["owner"], 3)
    _policy(app, org["owner"].org_id, patterns, status)
    assert _suggested(app, org["owner"].org_id) == ([KEY] if suggested else [])


def test_multi_step_keys_need_every_step_covered(app, org):
    key = "restart:checkout,scale:api"
    decisions(app, org["owner"], 3, key=key)
    _policy(app, org["owner"].org_id, ["restart:*"], "accepted")
    assert _suggested(app, org["owner"].org_id) == [key]
    _policy(app, org["owner"].org_id, ["scale:api"], "accepted")  # together two policies cover it, one does not
    assert _suggested(app, org["owner"].org_id) == [key]


def test_suggestion_list_shows_counts_window_and_approvers(app, org, make_api_key, make_member):
    decisions(app, org["owner"], 2)
    decisions(app, org["admin"], 2, start=T0 + 3 * DAY)
    decisions(app, org["owner"], 3, key="scale:api", start=T0 + 10 * DAY)
    decisions(app, make_member("bravo", "owner"), 5)  # another org's history

    resp = app.test_client().get(LIST, headers=_api(None, make_api_key(org["viewer"])))

    assert resp.status_code == 200
    body = resp.get_json()
    assert body["min_approvals"] == 3
    first, second = body["data"]
    assert (first["action_key"], first["approvals"], first["rejections"], first["steps"]) == (KEY, 4, 0, [KEY])
    assert first["first_decided_at"] == "2026-03-02T12:00:00Z" and first["last_decided_at"] == "2026-03-06T12:00:00Z"
    assert [a["email"] for a in first["approvers"]] == ["adam@alpha.example", "olivia@alpha.example"]
    assert "Approved 4 times" in first["evidence"]
    assert second["action_key"] == "scale:api"


# --- promotion -----------------------------------------------------------------------------------------------

def test_promote_creates_a_policy_in_review_with_evidence_and_audit(app, org, make_api_key):
    decisions(app, org["owner"], 2)
    decisions(app, org["admin"], 1, start=T0 + 4 * DAY)
    client, headers = app.test_client(), _api(None, make_api_key(org["admin"]))

    resp = client.post(PROMOTE, json={"action_key": f"  {KEY} "}, headers=headers)

    assert resp.status_code == 201, resp.get_data(as_text=True)
    policy = resp.get_json()["policy"]
    assert (policy["status"], policy["source"], policy["actions"]) == ("review", "suggestion", [KEY])
    assert policy["name"] == f"Pre-approved: {KEY}"
    assert set(policy["control_tags"]) >= {"SOC2:CC8.1", "ISO27001:A.8.32"}
    assert "Approved 3 times" in policy["description"]
    assert "adam@alpha.example" in policy["description"] and "olivia@alpha.example" in policy["description"]
    assert "2026-03-02T12:00:00Z" in policy["description"] and "2026-03-06T12:00:00Z" in policy["description"]
    assert policy["url"] == f"/compliance/policies/{policy['id']}"
    with app.app_context():
        event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "policy.suggestion_promoted"))
        assert event.target_id == str(policy["id"]) and "SOC2:CC8.1" in event.control_tags
        assert event.actor_type == "api_key" and "adam@alpha.example" in event.actor_label
    assert client.get(LIST, headers=headers).get_json()["data"] == []  # covered now, so no longer suggested


def test_promoted_policy_once_accepted_lets_remediation_find_it(app, org):
    decisions(app, org["owner"], 3)
    with app.app_context():
        policy, _ = svc.promote(org["owner"].org_id, KEY, actor=SYSTEM)
        plan = [{"action": "restart", "service_id": 1, "service": "checkout", "params": {}}]
        assert core.policy_covering(org["owner"].org_id, plan) is None  # in review: not yet
        att.accept_policy(org["owner"].org_id, policy.id, user_id=org["owner"].user_id, actor=SYSTEM)
        assert core.policy_covering(org["owner"].org_id, plan).id == policy.id


def test_promoting_twice_is_409_with_the_existing_policy(app, org, make_api_key):
    decisions(app, org["owner"], 3)
    client, headers = app.test_client(), _api(None, make_api_key(org["owner"]))
    first = client.post(PROMOTE, json={"action_key": KEY}, headers=headers).get_json()["policy"]["id"]

    again = client.post(PROMOTE, json={"action_key": KEY}, headers=headers)

    assert again.status_code == 409
    body = again.get_json()
    assert body["error_code"] == "ALREADY_COVERED" and body["policy_id"] == first and f"#{first}" in body["detail"]
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Policy)) == 1


def test_a_retired_promotion_can_be_promoted_again_under_a_new_name(app, org):
    decisions(app, org["owner"], 3)
    with app.app_context():
        first, _ = svc.promote(org["owner"].org_id, KEY, actor=SYSTEM)
        att.accept_policy(org["owner"].org_id, first.id, user_id=org["owner"].user_id, actor=SYSTEM)
        att.retire_policy(org["owner"].org_id, first.id, user_id=org["owner"].user_id, actor=SYSTEM)
        second, _ = svc.promote(org["owner"].org_id, KEY, actor=SYSTEM)
        assert second.id != first.id and second.name == f"Pre-approved: {KEY} (2)"


def test_long_action_keys_get_a_unique_short_name(app, org):
    key = ",".join(f"restart:service-{i:02d}-{'x' * 8}" for i in range(9))[:200]
    decisions(app, org["owner"], 3, key=key)
    with app.app_context():
        policy, _ = svc.promote(org["owner"].org_id, key, actor=SYSTEM)
        assert len(policy.name) <= 200 and policy.name.startswith("Pre-approved: restart:service-00")


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_only_owner_or_admin_may_promote(app, org, make_api_key, role):
    decisions(app, org["owner"], 3)
    resp = app.test_client().post(PROMOTE, json={"action_key": KEY}, headers=_api(None, make_api_key(org[role])))
    assert resp.status_code == 403 and resp.get_json()["error_code"] == "FORBIDDEN"
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Policy)) == 0


def test_a_key_that_is_not_a_suggestion_is_404(app, org, make_api_key, make_member):
    decisions(app, org["owner"], 2)  # one approval short
    bravo = make_member("bravo", "owner")
    decisions(app, bravo, 3, key="scale:api")  # a suggestion, but of another org
    headers = _api(None, make_api_key(org["owner"]))
    for key in (KEY, "scale:api", "no-such:thing"):
        resp = app.test_client().post(PROMOTE, json={"action_key": key}, headers=headers)
        assert resp.status_code == 404 and resp.get_json()["error_code"] == "NOT_FOUND"
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Policy)) == 0


@pytest.mark.parametrize("body", [{}, {"action_key": ""}, {"action_key": "   "}, {"action_key": "x" * 201},
                                  {"action_key": 7}, {"action_key": [KEY]}, {"action_key": KEY, "extra": 1}])
def test_malformed_promote_bodies_are_400(app, org, make_api_key, body):
    decisions(app, org["owner"], 3)
    resp = app.test_client().post(PROMOTE, json=body, headers=_api(None, make_api_key(org["owner"])))
    assert resp.status_code == 400 and resp.get_json()["error_code"] == "VALIDATION_ERROR"


# --- the page -------------------------------------------------------------------------------------------------

def test_page_lists_suggestions_and_promotes_into_the_policy_page(app, org, sign_in):
    decisions(app, org["owner"], 3)
    web = sign_in(org["admin"])
    page = web.get("/automations/policy-suggestions")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and KEY in html and "Promote to review" in html

    resp = web.post("/automations/policy-suggestions/promote", data={"action_key": KEY, "csrf_token": web.csrf})

    assert resp.status_code == 302 and "/compliance/policies/" in resp.headers["Location"]
    policy_page = web.get(resp.headers["Location"]).get_data(as_text=True)
    assert f"Pre-approved: {KEY}" in policy_page
    again = web.post("/automations/policy-suggestions/promote", data={"action_key": KEY, "csrf_token": web.csrf})
    assert again.status_code == 409 and "already covers" in again.get_data(as_text=True)
    listing = web.get("/automations/policy-suggestions").get_data(as_text=True)
    assert "Promoted policies" in listing and f"Pre-approved: {KEY}" in listing


def test_page_hides_promote_from_members_and_refuses_their_post(app, org, sign_in):
    decisions(app, org["owner"], 3)
    web = sign_in(org["member"])
    html = web.get("/automations/policy-suggestions").get_data(as_text=True)
    assert KEY in html and "Promote to review" not in html
    resp = web.post("/automations/policy-suggestions/promote", data={"action_key": KEY, "csrf_token": web.csrf})
    assert resp.status_code == 403


@pytest.mark.parametrize("key,status", [("", 400), ("x" * 300, 400), ("scale:nothing", 400)])
def test_page_refuses_bad_promotions_in_place(app, org, sign_in, key, status):
    web = sign_in(org["owner"])
    resp = web.post("/automations/policy-suggestions/promote", data={"action_key": key, "csrf_token": web.csrf})
    assert resp.status_code == status and 'role="alert"' in resp.get_data(as_text=True)


def test_concurrent_promotions_make_one_policy(app, org, make_api_key):
    import threading

    decisions(app, org["owner"], 3)
    keys = [make_api_key(org["owner"]), make_api_key(org["admin"])]
    statuses: list = [None, None]
    start = threading.Barrier(2)

    def run(i):
        client = app.test_client()
        start.wait()
        statuses[i] = client.post(PROMOTE, json={"action_key": KEY}, headers=_api(None, keys[i])).status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(statuses) == [201, 409]
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Policy)) == 1
