"""GET /api/governance/policy-blocks/summary: window counts against the prior window, deltas, reasons,
operations, top playbooks and the caller's own blocks."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.automations.slack_helpers import DAY, T0, make_blocks, make_playbook
from zentro.automations import suggestions as svc
from zentro.extensions import db
from zentro.platform.types import utcnow

URL = "/api/governance/policy-blocks/summary"
HOUR = dt.timedelta(hours=1)


def _summary(app, org_id: int, window: str, user_id: int | None = None, now=T0) -> dict:
    with app.app_context():
        out = svc.policy_block_summary(org_id, window=window, user_id=user_id, now=now)
        db.session.remove()
    return out


def test_counts_deltas_and_reasons_per_window(app, make_member):
    owner, member = make_member("alpha", "owner"), make_member("alpha", "member")
    org = owner.org_id
    make_blocks(app, org, T0 - HOUR, "dry_run_stale", 3, user_id=member.user_id)
    make_blocks(app, org, T0 - 2 * DAY, "missing_rollback_plan", 1, user_id=owner.user_id, operation="remediate")
    make_blocks(app, org, T0 - 8 * DAY, "approval_required", 2, user_id=member.user_id)    # prior 7d, current 30d
    make_blocks(app, org, T0 - 40 * DAY, "no_accepted_policy", 4, user_id=member.user_id)  # prior 30d
    make_blocks(app, org, T0 + HOUR, "plan_changed", 9)                                    # after now: ignored
    make_blocks(app, org, T0 - 7 * DAY, "plan_changed", 1)  # exactly at the start: windows are [start, end)

    week = _summary(app, org, "7d")
    assert (week["count"], week["prior_count"], week["delta"], week["delta_pct"]) == (5, 2, 3, 150.0)
    assert week["current"] == {"start": "2026-02-23T12:00:00Z", "end": "2026-03-02T12:00:00Z"}
    assert week["prior"] == {"start": "2026-02-16T12:00:00Z", "end": "2026-02-23T12:00:00Z"}
    assert week["by_reason"] == [
        {"reason_code": "dry_run_stale", "label": "Dry-run older than the freshness limit", "count": 3,
         "share_pct": 60.0},
        {"reason_code": "missing_rollback_plan", "label": "No rollback plan", "count": 1, "share_pct": 20.0},
        {"reason_code": "plan_changed", "label": "Plan changed since the dry-run", "count": 1, "share_pct": 20.0}]
    assert week["by_operation"] == [{"operation": "execute", "count": 4}, {"operation": "remediate", "count": 1}]
    earlier = _summary(app, org, "7d", now=T0 - 5 * DAY)  # the week before holds none of these
    assert (earlier["count"], earlier["prior_count"], earlier["delta"], earlier["delta_pct"]) == (3, 0, 3, None)

    month = _summary(app, org, "30d")
    assert (month["count"], month["prior_count"], month["delta"], month["delta_pct"]) == (7, 4, 3, 75.0)
    assert [r["reason_code"] for r in month["by_reason"]] == ["dry_run_stale", "approval_required",
                                                              "missing_rollback_plan", "plan_changed"]


def test_no_prior_blocks_gives_a_null_percentage_and_a_drop_is_negative(app, make_member):
    owner = make_member("alpha", "owner")
    make_blocks(app, owner.org_id, T0 - HOUR, "plan_changed", 2)
    fresh = _summary(app, owner.org_id, "7d")
    assert (fresh["delta"], fresh["delta_pct"]) == (2, None)
    later = _summary(app, owner.org_id, "7d", now=T0 + 8 * DAY)
    assert (later["count"], later["prior_count"], later["delta"], later["delta_pct"]) == (0, 2, -2, -100.0)
    assert later["by_reason"] == [] and later["top_playbooks"] == []
    empty = _summary(app, owner.org_id, "30d", now=T0 - 100 * DAY)
    assert (empty["count"], empty["prior_count"], empty["delta_pct"]) == (0, 0, None)


def test_unknown_reason_codes_get_a_readable_label(app, make_member):
    owner = make_member("alpha", "owner")
    make_blocks(app, owner.org_id, T0 - HOUR, "change_freeze_active")
    assert _summary(app, owner.org_id, "7d")["by_reason"][0]["label"] == "Change freeze active"


def test_top_playbooks_and_mine(app, make_member):
    owner, member = make_member("alpha", "owner"), make_member("alpha", "member")
    org = owner.org_id
    deploy, restart, scale = (make_playbook(app, org, n) for n in ("deploy rollback", "restart web", "scale api"))
    make_blocks(app, org, T0 - HOUR, "dry_run_stale", 3, user_id=member.user_id, playbook_id=restart)
    make_blocks(app, org, T0 - HOUR, "plan_changed", 1, user_id=owner.user_id, playbook_id=deploy)
    make_blocks(app, org, T0 - HOUR, "plan_changed", 1, user_id=owner.user_id, playbook_id=scale)
    make_blocks(app, org, T0 - 9 * DAY, "plan_changed", 4, user_id=owner.user_id)

    out = _summary(app, org, "7d", user_id=owner.user_id)

    assert out["top_playbooks"] == [{"playbook_id": restart, "name": "restart web", "count": 3},
                                    {"playbook_id": deploy, "name": "deploy rollback", "count": 1},
                                    {"playbook_id": scale, "name": "scale api", "count": 1}]
    mine = out["mine"]
    assert (mine["count"], mine["prior_count"], mine["delta"], mine["delta_pct"]) == (2, 4, -2, -50.0)
    assert [r["reason_code"] for r in mine["by_reason"]] == ["plan_changed"]


def test_api_answers_for_the_callers_org_and_user(app, make_member, make_api_key, sign_in):
    owner, viewer = make_member("alpha", "owner"), make_member("alpha", "viewer")
    bravo = make_member("bravo", "owner")
    now = utcnow()
    make_blocks(app, owner.org_id, now - HOUR, "dry_run_stale", 2, user_id=owner.user_id)
    make_blocks(app, owner.org_id, now - 10 * DAY, "dry_run_stale", 1, user_id=owner.user_id)
    make_blocks(app, bravo.org_id, now - HOUR, "plan_changed", 5, user_id=bravo.user_id)

    as_owner = app.test_client().get(URL, headers={"Authorization": f"Bearer {make_api_key(owner)}"}).get_json()
    assert (as_owner["window"], as_owner["count"], as_owner["prior_count"]) == ("7d", 2, 1)
    assert as_owner["mine"]["count"] == 2
    as_viewer = sign_in(viewer).get(f"{URL}?window=30d")
    assert as_viewer.status_code == 200
    body = as_viewer.get_json()
    assert (body["count"], body["mine"]["count"]) == (3, 0)
    assert all(r["reason_code"] != "plan_changed" for r in body["by_reason"])  # bravo's blocks stay in bravo


@pytest.mark.parametrize("query", ["window=24h", "window=all", "window=", "window=7d&x=1", "window=7D"])
def test_bad_windows_are_400(app, make_member, make_api_key, query):
    key = make_api_key(make_member("alpha", "owner"))
    resp = app.test_client().get(f"{URL}?{query}", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 400 and resp.get_json()["error_code"] == "VALIDATION_ERROR"


def test_needs_credentials_and_the_automations_scope(app, make_member, make_api_key):
    owner = make_member("alpha", "owner")
    client = app.test_client()
    assert client.get(URL).status_code == 401
    narrow = make_api_key(owner, scopes=["audit:read"])
    assert client.get(URL, headers={"Authorization": f"Bearer {narrow}"}).status_code == 403
    reader = make_api_key(owner, scopes=["automations:read"])
    assert client.get(URL, headers={"Authorization": f"Bearer {reader}"}).status_code == 200
