"""Attestation, exception and policy services with an injected clock: derived states, the validity rule,
evidence counts from tagged audit rows (one grouped query), role rules, and bad input that changes nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from zentro.audit.models import AuditEvent
from zentro.compliance import attestations as att
from zentro.extensions import db
from zentro.platform.errors import ApiError

from .register_helpers import (DAY, T0, TEST_ACTOR, admin, count_statements, member, owner, rows, snapshot,  # noqa: F401
                               stranger, tag_events, viewer)


def _refused(status: int, fn, *args, **kw) -> ApiError:
    with pytest.raises(ApiError) as info:
        fn(*args, **kw)
    db.session.rollback()
    assert info.value.status == status, info.value.detail
    return info.value


def _assign(owner_id, org_id, tag="SOC2:CC6.1", due=10, now=T0):
    return att.assign(org_id, control=tag, owner_id=owner_id, due_at=now + due * DAY, actor=TEST_ACTOR, now=now)


def _events(org_id, action):
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.org_id == org_id, AuditEvent.action == action)))


# --- validity rule and derived states -------------------------------------------------------------

@pytest.mark.parametrize("tag,days", [
    ("SOC2:CC7.2", 30),  # monitoring: the catalog's 30-day SLA
    ("SOC2:CC6.1", 90),  # operational
    ("ISO27001:A.8.13", 90),
    ("SOC2:CC1.1", 365),  # governance
    ("ISO27001:A.5.1", 365),
])
def test_validity_is_the_catalog_freshness_capped_at_a_year(ctx, tag, days):
    assert att.validity_days(tag) == days


def test_derived_states_follow_the_clock(ctx, owner):
    a = _assign(owner.user_id, owner.org_id, "SOC2:CC6.1", due=10)
    assert att.state_of(a, T0 + 9 * DAY) == "assigned"
    assert att.state_of(a, T0 + 10 * DAY) == "overdue"  # due passed, not attested
    assert [r["control"] for r in att.overdue(owner.org_id, T0 + 11 * DAY)] == ["SOC2:CC6.1"]
    assert att.overdue(owner.org_id, T0 + 9 * DAY) == []

    when = T0 + 12 * DAY
    att.attest(owner.org_id, a.id, user_id=owner.user_id, note="Checked 40 accounts.", actor=TEST_ACTOR, now=when)
    a = att.get_attestation(owner.org_id, a.id)
    assert a.attested_at == when and a.valid_until == when + 90 * DAY and a.attested_by_id == owner.user_id
    assert att.state_of(a, when + 89 * DAY) == "attested"
    assert att.state_of(a, when + 90 * DAY) == "expired"
    assert att.overdue(owner.org_id, when + 200 * DAY) == []  # expired is not overdue
    board = att.board(owner.org_id, when + 91 * DAY)
    assert board["counts"] == {"assigned": 0, "overdue": 0, "attested": 0, "expired": 1, "rejected": 0}


def test_monitoring_control_attestation_lasts_thirty_days(ctx, owner):
    a = _assign(owner.user_id, owner.org_id, "SOC2:CC7.2")
    att.attest(owner.org_id, a.id, user_id=owner.user_id, note="Paging tested.", actor=TEST_ACTOR, now=T0 + DAY)
    assert att.get_attestation(owner.org_id, a.id).valid_until == T0 + 31 * DAY


def test_attest_records_the_control_tag_but_assign_and_reject_do_not(ctx, owner):
    a = _assign(owner.user_id, owner.org_id, "ISO27001:A.8.13")
    att.attest(owner.org_id, a.id, user_id=owner.user_id, note="Restore test passed.", actor=TEST_ACTOR, now=T0 + DAY)
    att.reject(owner.org_id, a.id, user_id=owner.user_id, note="The restore was from staging.", actor=TEST_ACTOR,
               now=T0 + 2 * DAY)
    (assigned,), (attested,), (rejected,) = (_events(owner.org_id, f"attestation.{x}")
                                             for x in ("assigned", "attested", "rejected"))
    assert attested.control_tags.split() == sorted(["ISO27001:A.8.13", "SOC2:CC2.1", "ISO27001:A.5.36"])
    assert assigned.control_tags.split() == rejected.control_tags.split() == ["ISO27001:A.5.36", "SOC2:CC2.1"]
    assert attested.created_at == T0 + DAY  # the injected clock


def test_reject_stops_the_statement_and_the_owner_attests_again(ctx, owner, member):
    a = _assign(member.user_id, owner.org_id, "SOC2:CC6.1", due=5)
    att.attest(owner.org_id, a.id, user_id=member.user_id, note="Reviewed.", actor=TEST_ACTOR, now=T0 + DAY,
               evidence=[{"kind": "url", "ref": "https://wiki.example.com/review"}])
    _refused(403, att.reject, owner.org_id, a.id, user_id=member.user_id, note="no", actor=TEST_ACTOR, now=T0 + DAY)
    att.reject(owner.org_id, a.id, user_id=owner.user_id, note="Evidence is last year's.", actor=TEST_ACTOR,
               now=T0 + 2 * DAY)
    a = att.get_attestation(owner.org_id, a.id)
    assert (a.status, a.valid_until, a.note, a.evidence) == ("rejected", None, "Evidence is last year's.", [])
    assert att.state_of(a, T0 + 3 * DAY) == "rejected"
    assert att.state_of(a, T0 + 6 * DAY) == "overdue"  # rejected and past due
    e = _refused(409, att.reject, owner.org_id, a.id, user_id=owner.user_id, note="again", actor=TEST_ACTOR,
                 now=T0 + 3 * DAY)
    assert "only an attested" in e.detail.lower()
    att.attest(owner.org_id, a.id, user_id=member.user_id, note="Fresh review.", actor=TEST_ACTOR, now=T0 + 4 * DAY)
    assert att.state_of(att.get_attestation(owner.org_id, a.id), T0 + 5 * DAY) == "attested"


# --- who may attest, and bad input ----------------------------------------------------------------

def test_only_the_owner_or_an_admin_attests(ctx, owner, admin, member, make_member):
    other_member = make_member("acme", "member")
    a = _assign(member.user_id, owner.org_id)
    _refused(403, att.attest, owner.org_id, a.id, user_id=other_member.user_id, note="x", actor=TEST_ACTOR, now=T0)
    assert att.get_attestation(owner.org_id, a.id).status == "assigned"
    att.attest(owner.org_id, a.id, user_id=admin.user_id, note="Admin attests.", actor=TEST_ACTOR, now=T0)
    att.attest(owner.org_id, a.id, user_id=member.user_id, note="Owner attests.", actor=TEST_ACTOR, now=T0 + DAY)
    assert att.get_attestation(owner.org_id, a.id).note == "Owner attests."


@pytest.mark.parametrize("fields,status,field", [
    ({"control": "SOC2:CC99.9"}, 400, "control"),
    ({"control": "soc2:cc6.1"}, 400, "control"),
    ({"control": ""}, 400, "control"),
    ({"due": -1}, 400, "due_at"),
    ({"due": 0}, 400, "due_at"),
    ({"due": 731}, 400, "due_at"),
    ({"owner": "stranger"}, 404, "owner_id"),
    ({"owner": "viewer"}, 409, "owner_id"),
])
def test_assign_refuses_bad_input_and_stores_nothing(ctx, owner, viewer, stranger, snapshot, fields, status, field):
    before = snapshot()
    owner_id = {"stranger": stranger.user_id, "viewer": viewer.user_id}.get(fields.get("owner"), owner.user_id)
    e = _refused(status, att.assign, owner.org_id, control=fields.get("control", "SOC2:CC6.1"), owner_id=owner_id,
                 due_at=T0 + fields.get("due", 10) * DAY, actor=TEST_ACTOR, now=T0)
    assert e.errors and e.errors[0]["loc"][0] == field
    assert snapshot() == before


def test_one_attestation_per_control(ctx, owner, rows):
    _assign(owner.user_id, owner.org_id, "SOC2:CC6.1")
    e = _refused(409, _assign, owner.user_id, owner.org_id, "SOC2:CC6.1")
    assert "already has an attestation" in e.detail
    assert rows("attestations") == 1


def test_naive_due_date_is_refused(ctx, owner):
    e = _refused(400, att.assign, owner.org_id, control="SOC2:CC6.1", owner_id=owner.user_id,
                 due_at=(T0 + DAY).replace(tzinfo=None), actor=TEST_ACTOR, now=T0)
    assert e.errors[0]["loc"][0] == "due_at"


@pytest.mark.parametrize("note,evidence,status", [
    ("", [], 400),
    ("   \n ", [], 400),
    ("x" * 4001, [], 400),
    ("bell \x07", [], 400),
    ("ok", [{"kind": "url", "ref": "http://insecure.example.com"}], 400),
    ("ok", [{"kind": "url", "ref": "javascript:alert(1)"}], 400),
    ("ok", [{"kind": "audit_event", "ref": "12"}], 400),
    ("ok", [{"kind": "ticket", "ref": "JIRA-1"}], 400),
    ("ok", [{"kind": "url", "ref": "https://a.example"}] * 21, 400),
    ("ok", "other-org-event", 404),
    ("ok", [{"kind": "audit_event", "ref": 2_000_000_000}], 404),
])
def test_attest_refuses_bad_input_and_changes_nothing(ctx, app, owner, stranger, snapshot, note, evidence, status):
    a = _assign(owner.user_id, owner.org_id)
    if evidence == "other-org-event":
        evidence = [{"kind": "audit_event", "ref": tag_events(app, stranger.org_id, ["SOC2:CC6.1"], T0)[0]}]
    before = snapshot()
    _refused(status, att.attest, owner.org_id, a.id, user_id=owner.user_id, note=note, evidence=evidence,
             actor=TEST_ACTOR, now=T0)
    assert snapshot() == before


def test_evidence_is_deduplicated_and_kept(ctx, app, owner):
    a = _assign(owner.user_id, owner.org_id)
    (event_id,) = tag_events(app, owner.org_id, ["SOC2:CC6.1"], T0 - DAY)
    refs = [{"kind": "audit_event", "ref": event_id}, {"kind": "url", "ref": "https://wiki.example.com/x"},
            {"kind": "audit_event", "ref": event_id}]
    att.attest(owner.org_id, a.id, user_id=owner.user_id, note="ok", evidence=refs, actor=TEST_ACTOR, now=T0)
    assert att.get_attestation(owner.org_id, a.id).evidence == refs[:2]


def test_other_orgs_attestation_is_not_found(ctx, owner, stranger):
    a = _assign(owner.user_id, owner.org_id)
    _refused(404, att.get_attestation, stranger.org_id, a.id)
    _refused(404, att.attest, stranger.org_id, a.id, user_id=stranger.user_id, note="x", actor=TEST_ACTOR, now=T0)


# --- the board ------------------------------------------------------------------------------------

def test_board_counts_tagged_audit_rows_of_the_last_90_days_in_one_query(ctx, app, owner, member, stranger):
    now = T0 + 100 * DAY
    org = owner.org_id
    _assign(owner.user_id, org, "SOC2:CC6.1", due=200)
    _assign(member.user_id, org, "ISO27001:A.5.15", due=50)  # overdue at `now`
    _assign(owner.user_id, org, "SOC2:CC7.2", due=200)
    tag_events(app, org, ["SOC2:CC6.1"], now - DAY, n=3)
    tag_events(app, org, ["SOC2:CC6.1", "ISO27001:A.5.15"], now - 89 * DAY)  # one event, two tags: both count
    tag_events(app, org, ["SOC2:CC6.1"], now - 91 * DAY, n=2)  # too old
    tag_events(app, org, ["SOC2:CC6.1"], now + DAY)  # after now
    tag_events(app, org, ["SOC2:CC6.2"], now - DAY)  # another control
    tag_events(app, stranger.org_id, ["SOC2:CC6.1"], now - DAY, n=5)  # another org
    with count_statements(db.engine, "audit_tags") as seen:
        board = att.board(org, now)
    assert len(seen) == 1 and "GROUP BY" in seen[0]
    by_tag = {r["control"]: r for r in board["attestations"]}
    assert by_tag["SOC2:CC6.1"]["evidence_count_90d"] == 4
    assert by_tag["ISO27001:A.5.15"]["evidence_count_90d"] == 1
    assert by_tag["SOC2:CC7.2"]["evidence_count_90d"] == 0
    assert by_tag["ISO27001:A.5.15"]["state"] == "overdue" and by_tag["ISO27001:A.5.15"]["days_overdue"] == 50
    assert by_tag["SOC2:CC6.1"]["control_title"] == "Logical access security"
    assert by_tag["ISO27001:A.5.15"]["owner"]["email"] == member.email
    assert board["attestations"][0]["control"] == "ISO27001:A.5.15"  # overdue first
    assert board["counts"] == {"assigned": 2, "overdue": 1, "attested": 0, "expired": 0, "rejected": 0}

    only_member = att.board(org, now, owner_id=member.user_id)
    assert [r["control"] for r in only_member["attestations"]] == ["ISO27001:A.5.15"]
    assert only_member["counts"]["assigned"] == 2  # counts are over the whole board
    assert [r["control"] for r in att.board(org, now, state="assigned")["attestations"]] == ["SOC2:CC6.1",
                                                                                            "SOC2:CC7.2"]
    assert att.board(stranger.org_id, now)["attestations"] == []


# --- exceptions -----------------------------------------------------------------------------------

def _open(org_id, user_id, approver_id, expires=30, tag="ISO27001:A.8.8", now=T0):
    return att.open_exception(org_id, control=tag, reason="Legacy appliance.", compensating_control="Isolated VLAN.",
                              approver_id=approver_id, expires_at=now + expires * DAY, user_id=user_id,
                              actor=TEST_ACTOR, now=now)


def test_exception_states_and_close(ctx, owner, admin):
    exc = _open(owner.org_id, owner.user_id, admin.user_id, expires=30)
    assert att.exception_state(exc, T0 + 29 * DAY) == "open"
    assert att.exception_state(exc, T0 + 30 * DAY) == "expired"
    reg = att.list_exceptions(owner.org_id, T0 + DAY)
    assert reg["counts"] == {"open": 1, "expired": 0, "closed": 0}
    assert reg["exceptions"][0]["approver"]["email"] == admin.email and reg["exceptions"][0]["days_left"] == 29
    att.close_exception(owner.org_id, exc.id, user_id=admin.user_id, actor=TEST_ACTOR, now=T0 + 2 * DAY)
    assert att.list_exceptions(owner.org_id, T0 + 3 * DAY)["counts"] == {"open": 0, "expired": 0, "closed": 1}
    e = _refused(409, att.close_exception, owner.org_id, exc.id, user_id=admin.user_id, actor=TEST_ACTOR)
    assert "already closed" in e.detail
    (opened,) = _events(owner.org_id, "control_exception.opened")
    assert "ISO27001:A.8.8" not in opened.control_tags.split()  # an exception is not evidence for its control


def test_one_year_is_the_longest_exception(ctx, owner):
    _open(owner.org_id, owner.user_id, owner.user_id, expires=365)
    _refused(400, _open, owner.org_id, owner.user_id, owner.user_id, expires=367)


@pytest.mark.parametrize("case,status,field", [
    ("unknown-tag", 400, "control"),
    ("past", 400, "expires_at"),
    ("too-far", 400, "expires_at"),
    ("member-approver", 409, "approver_id"),
    ("stranger-approver", 404, "approver_id"),
    ("member-opens", 403, None),
    ("empty-reason", 400, "reason"),
])
def test_open_exception_refuses_bad_input(ctx, owner, member, stranger, snapshot, case, status, field):
    kw = {"control": "ISO27001:A.8.8", "reason": "Legacy.", "compensating_control": "", "approver_id": owner.user_id,
          "expires_at": T0 + 30 * DAY, "user_id": owner.user_id}
    kw.update({"unknown-tag": {"control": "ISO27001:A.9.9"}, "past": {"expires_at": T0 - DAY},
               "too-far": {"expires_at": T0 + 400 * DAY}, "member-approver": {"approver_id": member.user_id},
               "stranger-approver": {"approver_id": stranger.user_id}, "member-opens": {"user_id": member.user_id},
               "empty-reason": {"reason": " "}}[case])
    before = snapshot()
    e = _refused(status, att.open_exception, owner.org_id, actor=TEST_ACTOR, now=T0, **kw)
    if field:
        assert e.errors[0]["loc"][0] == field
    assert snapshot() == before


# --- policies -------------------------------------------------------------------------------------

def _policy(org_id, name="Access review", tags=("SOC2:CC6.2", "ISO27001:A.5.18")):
    return att.create_policy(org_id, name=name, description="Quarterly.", control_tags=list(tags),
                             actions=["revoke_access"], actor=TEST_ACTOR, now=T0)


def test_policy_lifecycle_is_audited_with_its_own_tags(ctx, owner, member):
    pol = _policy(owner.org_id)
    assert pol.status == "draft"
    att.transition_policy(owner.org_id, pol.id, "review", user_id=member.user_id, actor=TEST_ACTOR, now=T0 + DAY)
    att.transition_policy(owner.org_id, pol.id, "draft", user_id=member.user_id, actor=TEST_ACTOR, now=T0 + DAY)
    att.transition_policy(owner.org_id, pol.id, "review", user_id=member.user_id, actor=TEST_ACTOR, now=T0 + DAY)
    _refused(403, att.transition_policy, owner.org_id, pol.id, "accepted", user_id=member.user_id, actor=TEST_ACTOR)
    assert att.get_policy(owner.org_id, pol.id).status == "review"
    att.transition_policy(owner.org_id, pol.id, "accepted", user_id=owner.user_id, actor=TEST_ACTOR, now=T0 + 2 * DAY)
    pol = att.get_policy(owner.org_id, pol.id)
    assert (pol.status, pol.accepted_at, pol.accepted_by_id) == ("accepted", T0 + 2 * DAY, owner.user_id)
    att.transition_policy(owner.org_id, pol.id, "retired", user_id=owner.user_id, actor=TEST_ACTOR, now=T0 + 3 * DAY)
    actions = [e.action for e in db.session.scalars(select(AuditEvent).where(AuditEvent.org_id == owner.org_id,
                                                                             AuditEvent.target_type == "policy")
                                                    .order_by(AuditEvent.seq))]
    assert actions == ["policy.created", "policy.submitted_for_review", "policy.returned_to_draft",
                       "policy.submitted_for_review", "policy.accepted", "policy.retired"]
    for e in _events(owner.org_id, "policy.accepted") + _events(owner.org_id, "policy.retired"):
        assert set(e.control_tags.split()) == {"SOC2:CC6.2", "ISO27001:A.5.18", "SOC2:CC5.3", "ISO27001:A.5.1"}


@pytest.mark.parametrize("path,to,reason", [
    ((), "accepted", "can move to review"),
    ((), "retired", "can move to review"),
    ((), "draft", "can move to review"),
    (("review",), "retired", "can move to accepted or draft"),
    (("review", "accepted"), "draft", "can move to retired"),
    (("review", "accepted", "retired"), "review", "retired is final"),
])
def test_invalid_transitions_are_409_with_the_reason(ctx, owner, path, to, reason):
    pol = _policy(owner.org_id)
    for step in path:
        att.transition_policy(owner.org_id, pol.id, step, user_id=owner.user_id, actor=TEST_ACTOR, now=T0)
    status = pol.status
    e = _refused(409, att.transition_policy, owner.org_id, pol.id, to, user_id=owner.user_id, actor=TEST_ACTOR)
    assert reason in e.detail
    assert att.get_policy(owner.org_id, pol.id).status == status
    _refused(400, att.transition_policy, owner.org_id, pol.id, "published", user_id=owner.user_id, actor=TEST_ACTOR)


def test_a_policy_without_tags_cannot_be_accepted(ctx, owner):
    pol = _policy(owner.org_id, tags=())
    att.transition_policy(owner.org_id, pol.id, "review", user_id=owner.user_id, actor=TEST_ACTOR, now=T0)
    e = _refused(409, att.transition_policy, owner.org_id, pol.id, "accepted", user_id=owner.user_id, actor=TEST_ACTOR)
    assert "control tag" in e.detail


def _count(model, **where) -> int:
    from sqlalchemy import func

    return db.session.scalar(select(func.count()).select_from(model).filter_by(**where))


def test_policy_edits_only_in_draft_and_names_are_unique(ctx, owner):
    from zentro.compliance.models import Policy

    pol = _policy(owner.org_id)
    other = _policy(owner.org_id, name="Change approval")
    att.update_policy(owner.org_id, pol.id, {"control_tags": ["SOC2:CC6.3", "SOC2:CC6.3"], "actions": []},
                      actor=TEST_ACTOR, now=T0)
    assert att.policy_json(att.get_policy(owner.org_id, pol.id))["control_tags"] == ["SOC2:CC6.3"]
    events = _count(AuditEvent, action="policy.updated")
    att.update_policy(owner.org_id, pol.id, {"control_tags": ["SOC2:CC6.3"]}, actor=TEST_ACTOR, now=T0)  # no-op
    assert _count(AuditEvent, action="policy.updated") == events
    e = _refused(409, att.update_policy, owner.org_id, other.id, {"name": "ACCESS REVIEW"}, actor=TEST_ACTOR)
    assert "already exists" in e.detail
    _refused(409, _policy, owner.org_id, name="access review")
    _refused(400, att.update_policy, owner.org_id, pol.id, {"control_tags": ["SOC2:NOPE"]}, actor=TEST_ACTOR)
    _refused(400, att.update_policy, owner.org_id, pol.id, {"name": None}, actor=TEST_ACTOR)
    att.transition_policy(owner.org_id, pol.id, "review", user_id=owner.user_id, actor=TEST_ACTOR, now=T0)
    e = _refused(409, att.update_policy, owner.org_id, pol.id, {"description": "new"}, actor=TEST_ACTOR)
    assert "back to draft" in e.detail
    assert att.get_policy(owner.org_id, pol.id).description == "Quarterly."
    assert _count(Policy) == 2
