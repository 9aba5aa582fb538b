"""The staffing digests on hand-built datasets at a fixed NOW (Monday 2025-06-30 12:00 UTC): the peak-week
staffing digest, staffing action reminders, the completion rollup, the SLA breach digest, the cross-staffing
committee escalation and the auto-chain. Each preview's summary and rows are pinned; each is served as JSON and
CSV, refuses bad parameters and reads only its own org; delivered through ``digests.deliver`` each goes to the
right people, sends nothing when empty, and the chain delivers its three parts in order, once per period."""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from zentro.compliance import digests
from zentro.compliance.reporting import to_dict
from zentro.extensions import db
from zentro.notify.models import Delivery, DigestRun

from tests.compliance.digest_helpers import build, rows, summary
from tests.compliance.analytics_helpers import (NOW, checkpoint, committee, csv_blocks, evidence_request,
                                                get_report, staffing_action)
from tests.compliance.engine_helpers import attestation

UTC = dt.timezone.utc
D = dt.date
W0, W1, W2, W3, W4 = (D(2025, 6, 30) + dt.timedelta(weeks=i) for i in range(5))
ROLLUP = "staffing-completion-rollup"
PEAK = "peak-week-staffing-digest"
REMIND = "staffing-action-reminders"
BREACH = "staffing-sla-breach-digest"
ESCALATE = "cross-staffing-committee-escalation"
CHAIN = "staffing-digest-auto-chain"


def at(day: D, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@pytest.fixture
def people(app, make_member):
    """acme: a (owner), adm (admin), b and c (members), v (viewer); globex: its owner."""
    return SimpleNamespace(
        a=make_member("acme", "owner", email="a@acme.example", plan="enterprise"),
        adm=make_member("acme", "admin", email="adm@acme.example", plan="enterprise"),
        b=make_member("acme", "member", email="b@acme.example", plan="enterprise"),
        c=make_member("acme", "member", email="c@acme.example", plan="enterprise"),
        v=make_member("acme", "viewer", email="v@acme.example", plan="enterprise"),
        other=make_member("globex", "owner", email="boss@globex.example", plan="enterprise"))


# --- the staffing action dataset --------------------------------------------------------------------------

def seed_actions(org: int, p) -> dict[str, int]:
    """Completion SLA 10 days (an action is past its SLA from its week's Thursday 00:00 UTC of the next week),
    escalation list board@acme.example, no scheduled bundles. Staffing actions (week, status, owner, hours,
    created → completed; SLA due = week + 10 days):

    A1  06-02 tracked   b  4 h  05-30            due 06-12: past SLA 18 days; week ended 21 days ago
    A2  06-23 proposed  c  3 h  06-20            due 07-03: not past SLA; week ended today 00:00
    A3  06-16 tracked   —  2 h  06-12            due 06-26: past SLA 4 days; week ended 7 days ago
    A4  06-30 tracked   a  5 h  06-28            current week
    A5  06-09 completed b  2 h  06-05 → 06-12    on time (due 06-19), 18 days ago
    A6  06-16 completed c  6 h  06-10 → 06-27    late (due 06-26), 3 days ago
    A7  06-23 completed a  1 h  06-24 → 06-29    on time (due 07-03), yesterday
    A8  06-16 dismissed b  1 h  06-13
    A9  07-07 proposed  c  2 h  06-29            next week
    A10 06-02 completed a  1 h  05-28 → 06-22    late (due 06-12)
    A11 06-09 tracked   c  3 h  06-25            due 06-19: past SLA 11 days (created after the SLA passed)
    """
    committee(org, completion_sla_days=10, escalation_emails=["board@acme.example"], bundle_cadence_days=0)
    spec = {
        "A1": (D(2025, 6, 2), "tracked", p.b, 4, D(2025, 5, 30), None, "rebalance"),
        "A2": (D(2025, 6, 23), "proposed", p.c, 3, D(2025, 6, 20), None, "add_capacity"),
        "A3": (D(2025, 6, 16), "tracked", None, 2, D(2025, 6, 12), None, "defer"),
        "A4": (D(2025, 6, 30), "tracked", p.a, 5, D(2025, 6, 28), None, "consolidate"),
        "A5": (D(2025, 6, 9), "completed", p.b, 2, D(2025, 6, 5), D(2025, 6, 12), "defer"),
        "A6": (D(2025, 6, 16), "completed", p.c, 6, D(2025, 6, 10), D(2025, 6, 27), "consolidate"),
        "A7": (D(2025, 6, 23), "completed", p.a, 1, D(2025, 6, 24), D(2025, 6, 29), "rebalance"),
        "A8": (D(2025, 6, 16), "dismissed", p.b, 1, D(2025, 6, 13), None, "defer"),
        "A9": (D(2025, 7, 7), "proposed", p.c, 2, D(2025, 6, 29), None, "rebalance"),
        "A10": (D(2025, 6, 2), "completed", p.a, 1, D(2025, 5, 28), D(2025, 6, 22), "rebalance"),
        "A11": (D(2025, 6, 9), "tracked", p.c, 3, D(2025, 6, 25), None, "rebalance"),
    }
    ids = {}
    for name, (week, status, owner, hours, created, completed, kind) in spec.items():
        ids[name] = staffing_action(org, week, kind=kind, status=status, owner_id=owner.user_id if owner else None,
                                    title=f"{name}: {kind} for the week of {week.isoformat()}", hours=hours,
                                    created_at=at(created),
                                    completed_at=at(completed) if completed else None).id
    db.session.commit()
    return ids


def rollup_email(org: int, when: dt.datetime, *, status: str = "sent", channel: str = "email",
                 source: str = ROLLUP) -> Delivery:
    """A delivery-log row standing for a staffing completion rollup e-mail that went out at ``when``."""
    row = Delivery(org_id=org, source=source, channel=channel, target="board@acme.example",
                   recipients=["board@acme.example"], subject="[Zentro] Staffing completion rollup", status=status,
                   attempts=1, created_at=when, finished_at=when + dt.timedelta(seconds=5))
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def actions(app, people):
    with app.app_context():
        ids = seed_actions(people.a.org_id, people)
        db.session.remove()
    return people.a.org_id, ids


# --- staffing-action-reminders ----------------------------------------------------------------------------

def test_reminders_list_open_actions_whose_week_is_over(app, actions):
    org, ids = actions
    with app.app_context():
        rep = build(REMIND, org)
    assert summary(rep) == {"reminders": 4, "owners": 2, "unassigned": 1, "hours": 12.0, "past_sla": 3,
                            "oldest_week": "2025-06-02", "max_days_past_week": 21, "completion_sla_days": 10}
    got = [(r["id"], r["week"], r["week_ended"], r["owner"], r["status"], r["age_days"], r["days_past_week"],
            r["past_sla"], r["days_past_sla"]) for r in rows(rep, "reminders")]
    assert got == [
        (ids["A1"], "2025-06-02", "2025-06-09T00:00:00Z", "b@acme.example", "tracked", 31, 21, True, 18),
        (ids["A11"], "2025-06-09", "2025-06-16T00:00:00Z", "c@acme.example", "tracked", 5, 14, True, 11),
        (ids["A3"], "2025-06-16", "2025-06-23T00:00:00Z", "", "tracked", 18, 7, True, 4),
        (ids["A2"], "2025-06-23", "2025-06-30T00:00:00Z", "c@acme.example", "proposed", 10, 0, False, None),
    ]
    assert rows(rep, "owners") == [
        {"owner": "b@acme.example", "actions": 1, "hours": 4.0, "past_sla": 1, "oldest_week": "2025-06-02",
         "max_days_past_week": 21},
        {"owner": "c@acme.example", "actions": 2, "hours": 6.0, "past_sla": 1, "oldest_week": "2025-06-09",
         "max_days_past_week": 14},
        {"owner": "(unassigned)", "actions": 1, "hours": 2.0, "past_sla": 1, "oldest_week": "2025-06-16",
         "max_days_past_week": 7},
    ]


def test_reminders_a_week_is_over_at_the_next_monday_midnight(app, actions):
    org, ids = actions
    with app.app_context():
        before = build(REMIND, org, now=at(W0, 0) - dt.timedelta(seconds=1))
        on_the_dot = build(REMIND, org, now=at(W0, 0))
    assert ids["A2"] not in [r["id"] for r in rows(before, "reminders")]
    assert ids["A2"] in [r["id"] for r in rows(on_the_dot, "reminders")]


# --- staffing-sla-breach-digest ---------------------------------------------------------------------------

def test_breach_digest_lists_open_actions_past_the_sla(app, actions):
    org, ids = actions
    with app.app_context():
        rep = build(BREACH, org)
    assert summary(rep) == {"breaches": 3, "owners": 2, "unassigned": 1, "hours": 9.0, "max_days_past_sla": 18,
                            "oldest_sla_due": "2025-06-12T00:00:00Z", "completion_sla_days": 10}
    got = [(r["id"], r["week"], r["owner"], r["sla_due"], r["days_past_sla"], r["age_days"])
           for r in rows(rep, "breaches")]
    assert got == [(ids["A1"], "2025-06-02", "b@acme.example", "2025-06-12T00:00:00Z", 18, 31),
                   (ids["A11"], "2025-06-09", "c@acme.example", "2025-06-19T00:00:00Z", 11, 5),
                   (ids["A3"], "2025-06-16", "", "2025-06-26T00:00:00Z", 4, 18)]
    assert [(r["owner"], r["breaches"], r["hours"], r["max_days_past_sla"], r["oldest_week"])
            for r in rows(rep, "owners")] == [("b@acme.example", 1, 4.0, 18, "2025-06-02"),
                                              ("c@acme.example", 1, 3.0, 11, "2025-06-09"),
                                              ("(unassigned)", 1, 2.0, 4, "2025-06-16")]


def test_breach_digest_agrees_with_the_staffing_tracker(app, actions):
    """The same past-SLA rule and figures as the staffing-actions report, for a shorter SLA too."""
    org, _ = actions
    with app.app_context():
        committee(org, completion_sla_days=3)
        db.session.commit()
        rep = build(BREACH, org)
        tracker = build("staffing-actions", org)
    past = {r["id"]: r for r in rows(tracker, "actions") if r["past_sla"]}
    assert {r["id"]: r["days_past_sla"] for r in rows(rep, "breaches")} == \
        {i: r["days_past_sla"] for i, r in past.items()}
    assert rep.summary["breaches"] == tracker.summary["past_sla"] == 4  # A2 (due 06-26) joins


# --- staffing-completion-rollup ---------------------------------------------------------------------------

def test_rollup_pins_the_week_completions_rates_and_owners(app, actions):
    org, ids = actions
    with app.app_context():
        rep = build(ROLLUP, org)
    assert summary(rep) == {
        "period_days": 7, "completed_in_period": 2, "completed_hours_in_period": 7.0,
        "completed_within_sla_in_period": 1, "on_time_rate_pct": 50.0, "avg_days_to_complete": 11.0,
        "actions": 11, "completed": 4, "completion_rate_pct": 40.0, "open": 6, "proposed": 2, "tracked": 4,
        "past_sla": 3, "open_hours": 19.0, "completion_sla_days": 10}
    assert [(r["id"], r["owner"], r["completed_at"], r["days_to_complete"], r["sla_due"], r["within_sla"])
            for r in rows(rep, "completed")] == [
        (ids["A6"], "c@acme.example", "2025-06-27T12:00:00Z", 17, "2025-06-26T00:00:00Z", False),
        (ids["A7"], "a@acme.example", "2025-06-29T12:00:00Z", 5, "2025-07-03T00:00:00Z", True)]
    assert rows(rep, "owners") == [
        {"owner": "a@acme.example", "open": 1, "past_sla": 0, "open_hours": 5.0, "completed_in_period": 1,
         "completed_within_sla": 1},
        {"owner": "b@acme.example", "open": 1, "past_sla": 1, "open_hours": 4.0, "completed_in_period": 0,
         "completed_within_sla": 0},
        {"owner": "c@acme.example", "open": 3, "past_sla": 1, "open_hours": 8.0, "completed_in_period": 1,
         "completed_within_sla": 0},
        {"owner": "(unassigned)", "open": 1, "past_sla": 1, "open_hours": 2.0, "completed_in_period": 0,
         "completed_within_sla": 0}]
    assert [r["id"] for r in rows(rep, "open")] == [ids[k] for k in ("A1", "A11", "A3", "A2", "A4", "A9")]


def test_rollup_over_a_longer_period_and_the_tracker_agree(app, actions):
    org, ids = actions
    with app.app_context():
        month = build(ROLLUP, org, periodDays=30)
        tracker = build("staffing-actions", org)
    s = month.summary
    assert (s["period_days"], s["completed_in_period"], s["completed_hours_in_period"],
            s["completed_within_sla_in_period"], s["on_time_rate_pct"], s["avg_days_to_complete"]) == \
        (30, 4, 10.0, 2, 50.0, 13.5)  # A5 (7 days, on time) and A10 (25 days, late) join
    assert [r["id"] for r in rows(month, "completed")] == [ids["A5"], ids["A10"], ids["A6"], ids["A7"]]
    t = tracker.summary
    assert (s["completion_rate_pct"], s["open"], s["past_sla"], s["open_hours"]) == \
        (t["completion_rate_pct"], t["open"], t["past_sla"], t["open_hours"])


# --- cross-staffing-committee-escalation ------------------------------------------------------------------

def test_escalation_without_any_rollup_email_escalates_nothing_and_says_so(app, actions):
    org, _ = actions
    with app.app_context():
        rollup_email(org, at(D(2025, 6, 27), 16), status="not_sent")  # never went out
        rollup_email(org, at(D(2025, 6, 27), 16), channel="slack")  # not the e-mail
        rep = build(ESCALATE, org)
    s = summary(rep)
    assert (s["rollup_sent"], s["last_rollup_at"], s["escalations"], s["open_breaches"]) == (False, None, 0, 3)
    assert s["basis"] == "No staffing completion rollup e-mail has been sent yet: nothing is escalated."
    assert rep.notes == [s["basis"]]
    assert rows(rep, "escalations") == [] and rows(rep, "escalation_emails") == [{"email": "board@acme.example"}]


def test_escalation_only_escalates_breaches_that_predate_the_sent_rollup(app, actions, people):
    org, ids = actions
    with app.app_context():
        sent = rollup_email(org, at(D(2025, 6, 20), 16))
        # none of these is the org's last sent rollup e-mail
        rollup_email(org, at(D(2025, 6, 27), 16), status="not_sent")
        rollup_email(org, at(D(2025, 6, 27), 16), channel="slack")
        rollup_email(org, at(D(2025, 6, 28), 9), source=BREACH)
        rollup_email(org, at(D(2025, 7, 1), 16))  # after now
        rollup_email(people.other.org_id, at(D(2025, 6, 27), 16))  # another org's
        sent_at = sent.finished_at
        rep = build(ESCALATE, org)
    s = summary(rep)
    # A1 was past its SLA (06-12) when the rollup went out on 06-20; A3's SLA passed after (06-26); A11 was
    # created after it; A10 was past its SLA then but is completed now
    assert s == {"rollup_sent": True, "last_rollup_at": "2025-06-20T16:00:05Z",
                 "basis": "Breaches already past their SLA when the staffing completion rollup e-mail was sent at "
                          "2025-06-20 16:00 UTC and still open now.",
                 "escalations": 1, "open_breaches": 3, "owners": 1, "unassigned": 0, "hours": 4.0,
                 "max_days_past_sla": 18, "escalation_emails": 1, "completion_sla_days": 10}
    assert sent_at == at(D(2025, 6, 20), 16) + dt.timedelta(seconds=5)
    (row,) = rows(rep, "escalations")
    assert (row["id"], row["owner"], row["sla_due"], row["days_past_sla"], row["days_past_sla_at_rollup"]) == \
        (ids["A1"], "b@acme.example", "2025-06-12T00:00:00Z", 18, 8)
    assert rows(rep, "owners") == [{"owner": "b@acme.example", "breaches": 1, "hours": 4.0, "max_days_past_sla": 18,
                                    "oldest_week": "2025-06-02"}]
    assert rep.notes == []

    with app.app_context():  # a later rollup e-mail reported A11 and A3 too
        rollup_email(org, at(D(2025, 6, 27), 16, 30))
        later = build(ESCALATE, org)
    assert later.summary["escalations"] == 3
    assert [r["id"] for r in rows(later, "escalations")] == [ids["A1"], ids["A11"], ids["A3"]]


# --- peak-week-staffing-digest ----------------------------------------------------------------------------

def seed_load(org: int, p) -> dict:
    """Capacity 10 h/week; effort attestation 2, checkpoint 6, evidence request 3; no bundles. Owner pool a, b, c.

    - W1 (07-07): a's checkpoint (6 h) and attestation (2 h), b's attestation (2 h), an unassigned evidence
      request (3 h): 13 h, 3 h short, a carries 8 h against a fair share of 4.33 h → coincident
    - W2 (07-14): a, b and c two attestations each (4 h each): 12 h, 2 h short, balanced → not coincident
    - W3 (07-21): a's three attestations (6 h): within capacity
    - W4 (07-28): a's two checkpoints (12 h): 2 h short, fair share 4 h → coincident; a tracked add_capacity
      action of 2 h covers the shortfall (residual 0)
    """
    committee(org, capacity_hours_per_week=10.0, bundle_cadence_days=0, completion_sla_days=14,
              effort_hours={"attestation": 2, "checkpoint": 6, "evidence_request": 3})

    def day(week: D, offset: int) -> dt.datetime:
        return at(week + dt.timedelta(days=offset))

    ids = {"cp1": checkpoint(org, "Fieldwork kick-off", "SOC2", due_at=day(W1, 1), owner_id=p.a.user_id).id,
           "a1": attestation(org, "SOC2:CC6.3", due_at=day(W1, 2), owner_id=p.a.user_id).id,
           "b1": attestation(org, "SOC2:CC8.1", due_at=day(W1, 2), owner_id=p.b.user_id).id,
           "er": evidence_request(org, "Access review export", ["SOC2:CC6.1"], due_at=day(W1, 3)).id}
    for who, controls in ((p.a, ("SOC2:CC7.2", "SOC2:CC7.3")), (p.b, ("SOC2:CC6.6", "SOC2:CC6.7")),
                          (p.c, ("SOC2:CC6.2", "SOC2:CC6.8"))):
        for n, control in enumerate(controls):
            attestation(org, control, due_at=day(W2, 1 + n), owner_id=who.user_id)
    for n, control in enumerate(("SOC2:CC1.1", "SOC2:CC1.2", "SOC2:CC1.3")):
        attestation(org, control, due_at=day(W3, n), owner_id=p.a.user_id)
    ids["cp2"] = checkpoint(org, "Evidence freeze", "ISO27001", due_at=day(W4, 1), owner_id=p.a.user_id).id
    ids["cp3"] = checkpoint(org, "Report", "SOC2", due_at=day(W4, 2), owner_id=p.a.user_id).id
    ids["relief"] = staffing_action(org, W4, kind="add_capacity", status="tracked", hours=2, owner_id=p.a.user_id,
                                    title="Borrow two hours from the platform team",
                                    created_at=at(D(2025, 6, 27))).id
    staffing_action(org, W1, kind="rebalance", status="dismissed", hours=1, title="Decided against",
                    created_at=at(D(2025, 6, 27)))
    db.session.commit()
    return ids


@pytest.fixture
def load(app, people):
    with app.app_context():
        ids = seed_load(people.a.org_id, people)
        db.session.remove()
    return people.a.org_id, ids


def test_peak_week_digest_pins_the_coincident_weeks(app, load):
    org, ids = load
    with app.app_context():
        rep = build(PEAK, org)
    assert summary(rep) == {
        "weeks": 13, "capacity_hours_per_week": 10.0, "shortfall_weeks": 3, "imbalanced_weeks": 2,
        "coincident_weeks": 2, "first_week": "2025-07-07", "shortfall_hours": 5.0, "relief_hours": 2.0,
        "residual_shortfall_hours": 3.0, "overload_hours": 11.67, "overload_hours_after": 5.67,
        "suggested_relief": 4, "suggested_relief_hours": 14.0, "planned_actions": 1}
    w1, w4 = rows(rep, "weeks")
    assert w1 == {"week": "2025-07-07", "obligations": 4, "needed_hours": 13.0, "capacity_hours": 10.0,
                  "utilisation_pct": 130.0, "shortfall_hours": 3.0, "relief_hours": 0.0,
                  "residual_shortfall_hours": 3.0, "owners_with_load": 2, "fair_share_hours": 4.33,
                  "most_loaded_owner": "a@acme.example", "most_loaded_hours": 8.0, "max_owner_share_pct": 61.5,
                  "unassigned_hours": 3.0, "overload_hours_before": 3.67, "overload_hours_after": 1.67,
                  "rebalance_moves": 2, "hours_to_move": 5.0}
    assert w4 == {"week": "2025-07-28", "obligations": 2, "needed_hours": 12.0, "capacity_hours": 10.0,
                  "utilisation_pct": 120.0, "shortfall_hours": 2.0, "relief_hours": 2.0,
                  "residual_shortfall_hours": 0.0, "owners_with_load": 1, "fair_share_hours": 4.0,
                  "most_loaded_owner": "a@acme.example", "most_loaded_hours": 12.0, "max_owner_share_pct": 100.0,
                  "unassigned_hours": 0.0, "overload_hours_before": 8.0, "overload_hours_after": 4.0,
                  "rebalance_moves": 1, "hours_to_move": 6.0}
    moved_cp = min(f"checkpoint:{ids['cp2']}", f"checkpoint:{ids['cp3']}")  # equal effort: the smaller key moves
    assert [(r["week"], r["kind"], r["owner"], r["hours"], r["obligation"], r["source"])
            for r in rows(rep, "relief")] == [
        ("2025-07-07", "add_capacity", "", 3.0, "", "committee-capacity-budget"),
        ("2025-07-07", "rebalance", "b@acme.example", 2.0, f"attestation:{ids['a1']}", "obligation-load-balancing"),
        ("2025-07-07", "rebalance", "c@acme.example", 3.0, f"evidence-request:{ids['er']}",
         "obligation-load-balancing"),
        ("2025-07-28", "rebalance", "b@acme.example", 6.0, moved_cp, "obligation-load-balancing")]
    assert rows(rep, "relief")[0]["title"] == "Add 3 owner-hours for the week of 2025-07-07"
    assert [(r["id"], r["week"], r["status"]) for r in rows(rep, "actions")] == \
        [(ids["relief"], "2025-07-28", "tracked")]
    assert rep.charts[0].labels == ["2025-07-07", "2025-07-28"]


def test_peak_week_digest_agrees_with_the_budget_and_the_load_balancing(app, load):
    org, _ = load
    with app.app_context():
        rep = build(PEAK, org)
        budget = build("committee-capacity-budget", org)
        balancing = build("obligation-load-balancing", org)
    assert rep.summary["shortfall_weeks"] == budget.summary["shortfall_weeks"]
    peaks = {r["week"]: r for r in rows(balancing, "peak_weeks")}
    for w in rows(rep, "weeks"):
        assert w["overload_hours_before"] == peaks[w["week"]]["overload_hours_before"]
        assert w["fair_share_hours"] == peaks[w["week"]]["fair_share_hours"]
        assert w["rebalance_moves"] == peaks[w["week"]]["suggestions"]
    assert peaks["2025-07-14"]["overload_hours_before"] == 0.0  # the balanced shortfall week is left out


def test_peak_week_digest_is_empty_when_relief_or_capacity_removes_the_coincidence(app, load):
    org, _ = load
    with app.app_context():
        committee(org, capacity_hours_per_week=13.0)
        db.session.commit()
        rep = build(PEAK, org)
    assert (rep.summary["shortfall_weeks"], rep.summary["coincident_weeks"], rep.summary["first_week"]) == (0, 0, None)
    assert rows(rep, "weeks") == [] and rows(rep, "relief") == [] and rep.charts == []
    with app.app_context():
        assert digests.get(PEAK).is_empty(rep)


# --- over HTTP: JSON, CSV, bad parameters -----------------------------------------------------------------

@pytest.mark.parametrize("slug,section,title", [
    (REMIND, "reminders", "Open actions whose week is over"),
    (BREACH, "breaches", "Open actions past the completion SLA"),
    (ROLLUP, "open", "Open actions"),
    (ESCALATE, "escalations", "Breaches still open after the last rollup"),
    (CHAIN, "steps", "Steps, in order"),
])
def test_previews_as_json_and_csv(app, actions, people, make_api_key, slug, section, title):
    """Served to a viewer at the real now: every action of the dataset is in the past, so the counts are known."""
    org, _ = actions
    with app.app_context():
        rollup_email(org, at(D(2025, 6, 20), 16))
    headers = {"Authorization": f"Bearer {make_api_key(people.v)}"}
    client = app.test_client()
    doc = get_report(client, slug, headers=headers).get_json()
    assert doc["report"] == slug and section in doc["sections"]
    expected = {REMIND: ("reminders", 6), BREACH: ("breaches", 6), ROLLUP: ("open", 6),
                ESCALATE: ("escalations", 1), CHAIN: ("steps", 3)}[slug]
    assert doc["summary"][expected[0]] == expected[1]
    assert len(doc["sections"][section]["rows"]) == expected[1]
    resp = get_report(client, slug, headers=headers, format="csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    blocks = csv_blocks(resp.get_data(as_text=True))
    assert len(blocks[title]) == expected[1] + 1 and blocks["Summary"][0] == ["Metric", "Value"]


def test_peak_week_preview_over_http(app, people, make_api_key):
    """The load dataset relative to the real now's week: the same two coincident weeks."""
    from zentro.compliance.obligations import week_start
    from zentro.platform.types import utcnow

    now = utcnow()
    shift = week_start(now) - W0
    with app.app_context():
        org = people.a.org_id
        ids = seed_load(org, people)
        from zentro.compliance.models import AuditCheckpoint, Attestation, EvidenceRequest, StaffingAction

        for model, col in ((Attestation, "due_at"), (AuditCheckpoint, "due_at"), (EvidenceRequest, "due_at")):
            for row in db.session.scalars(select(model).where(model.org_id == org)):
                setattr(row, col, getattr(row, col) + shift)
        for row in db.session.scalars(select(StaffingAction).where(StaffingAction.org_id == org)):
            row.week_start = row.week_start + shift
        db.session.commit()
        db.session.remove()
    headers = {"Authorization": f"Bearer {make_api_key(people.b)}"}
    client = app.test_client()
    doc = get_report(client, PEAK, headers=headers, weeks=5).get_json()
    assert doc["summary"]["coincident_weeks"] == 2 and doc["summary"]["weeks"] == 5
    assert [r["week"] for r in doc["sections"]["weeks"]["rows"]] == \
        [(W1 + shift).isoformat(), (W4 + shift).isoformat()]
    resp = get_report(client, PEAK, headers=headers, format="csv", weeks=1)  # the current week only: nothing
    blocks = csv_blocks(resp.get_data(as_text=True))
    assert ["coincident_weeks", "0"] in blocks["Summary"] and len(blocks["Weeks with a shortfall and a load imbalance"]) == 1
    assert ids


@pytest.mark.parametrize("slug,bad", [
    (PEAK, {"weeks": "0"}), (PEAK, {"weeks": "53"}), (PEAK, {"weeks": "many"}), (PEAK, {"format": "pdf"}),
    (REMIND, {"bogus": "1"}), (REMIND, {"weeks": "4"}), (REMIND, {"format": "html"}),
    (BREACH, {"bogus": "1"}), (BREACH, {"format": "xml"}),
    (ROLLUP, {"periodDays": "0"}), (ROLLUP, {"periodDays": "731"}), (ROLLUP, {"periodDays": "week"}),
    (ROLLUP, {"format": "pdf"}),
    (ESCALATE, {"bogus": "1"}), (ESCALATE, {"format": "html"}),
    (CHAIN, {"periodDays": "7"}), (CHAIN, {"format": "pdf"}),
])
def test_bad_parameters_are_400_and_change_nothing(app, actions, people, make_api_key, slug, bad):
    headers = {"Authorization": f"Bearer {make_api_key(people.a)}"}
    resp = get_report(app.test_client(), slug, headers=headers, **bad)
    assert resp.status_code == 400, (slug, bad, resp.get_data(as_text=True)[:300])
    body = resp.get_json()
    assert body["error_code"] == "VALIDATION_ERROR" and body["detail"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(DigestRun)) == 0


def test_previews_read_only_their_own_org(app, actions, load, people):
    """Another org's staffing actions, settings and sent rollup e-mails change none of the previews."""
    org, _ = actions
    slugs = (PEAK, REMIND, BREACH, ROLLUP, ESCALATE, CHAIN)
    with app.app_context():
        rollup_email(org, at(D(2025, 6, 20), 16))
        before = {s: to_dict(build(s, org)) for s in slugs}
        other = people.other.org_id
        committee(other, capacity_hours_per_week=1.0, completion_sla_days=1,
                  escalation_emails=["spy@globex.example"])
        for week in (D(2025, 5, 5), W1, W4):
            staffing_action(other, week, kind="add_capacity", status="tracked", hours=50,
                            owner_id=people.other.user_id, created_at=at(D(2025, 5, 1)))
        staffing_action(other, D(2025, 6, 2), status="completed", created_at=at(D(2025, 5, 1)),
                        completed_at=at(D(2025, 6, 29)))
        attestation(other, "SOC2:CC6.1", due_at=at(W1), owner_id=people.other.user_id)
        rollup_email(other, at(D(2025, 6, 29), 16))
        after = {s: to_dict(build(s, org)) for s in slugs}
    assert before == after


# --- delivery: recipients, empty digests, the escalation, the chain ----------------------------------------

def email_of(result) -> Delivery:
    return next(x for x in result.deliveries if x.channel == "email")


def test_reminders_go_to_the_owners_of_those_actions_and_the_admins(app, actions):
    org, _ = actions
    with app.app_context():
        result = digests.deliver(REMIND, org, now=NOW, trigger="manual", channels=["email"])
        assert result.outcome == "not_sent"  # SMTP is not configured in tests: recorded, never "sent"
        assert email_of(result).recipients == ["a@acme.example", "adm@acme.example", "b@acme.example",
                                               "c@acme.example"]
        assert result.run.summary["reminders"] == 4 and result.period == "2025-06-30"


def test_breach_digest_goes_to_the_committee_and_the_owners(app, actions):
    org, _ = actions
    with app.app_context():
        result = digests.deliver(BREACH, org, now=NOW, trigger="manual", channels=["email"])
        assert email_of(result).recipients == ["a@acme.example", "adm@acme.example", "b@acme.example",
                                               "board@acme.example", "c@acme.example"]
        assert digests.get(BREACH).channels == ("email", "slack")


def test_rollup_and_peak_week_go_to_the_committee(app, load):
    org, _ = load
    with app.app_context():
        committee(org, escalation_emails=["board@acme.example"])
        db.session.commit()
        for slug in (ROLLUP, PEAK):
            result = digests.deliver(slug, org, now=NOW, trigger="manual", channels=["email"])
            assert email_of(result).recipients == ["a@acme.example", "adm@acme.example", "board@acme.example"]
            assert result.period == "2025-W27"


def test_empty_staffing_digests_send_nothing(app, people):
    org = people.a.org_id
    with app.app_context():
        for slug in (PEAK, REMIND, BREACH, ESCALATE):
            result = digests.deliver(slug, org, now=NOW, trigger="manual")
            assert result.outcome == "nothing_to_send", slug
            assert result.deliveries == [] and result.run.status == "nothing_to_send"
        rollup = digests.deliver(ROLLUP, org, now=NOW, trigger="manual")  # a rollup is always sent
        assert rollup.outcome == "not_sent" and {x.channel for x in rollup.deliveries} == {"email", "slack", "webhook"}
        assert db.session.scalar(select(func.count()).select_from(Delivery)) == 3


def test_escalation_delivers_only_the_breaches_that_predate_a_sent_rollup(app, actions):
    org, ids = actions
    with app.app_context():
        nothing = digests.deliver(ESCALATE, org, now=NOW, trigger="manual")
        assert nothing.outcome == "nothing_to_send" and nothing.run.summary["rollup_sent"] is False

        rollup_email(org, at(D(2025, 6, 20), 16))
        later = NOW + dt.timedelta(weeks=1)  # the next week's run (a new period)
        result = digests.deliver(ESCALATE, org, now=later, trigger="manual")
        assert result.outcome == "not_sent" and result.period == "2025-W28"
        assert result.run.summary["escalations"] == 1
        assert email_of(result).recipients == ["a@acme.example", "adm@acme.example", "board@acme.example"]
        assert [x.channel for x in result.deliveries] == ["email", "slack"]


def sent_email(org_id, recipients, message, *, source, run_id=None, now=None):
    """Stands in for the SMTP transport (tested in tests/notify): records the e-mail as sent."""
    row = Delivery(org_id=org_id, source=source, run_id=run_id, channel="email", target=", ".join(recipients),
                   recipients=list(recipients), subject=message.subject, status="sent", attempts=1, created_at=now,
                   finished_at=now)
    db.session.add(row)
    db.session.flush()
    return row


def test_the_chain_delivers_rollup_breaches_escalation_in_order_once_per_period(app, actions, monkeypatch):
    from zentro.notify import channels

    monkeypatch.setattr(channels, "send_email", sent_email)
    org, ids = actions
    friday = at(D(2025, 7, 4), 16, 30)
    with app.app_context():
        preview = build(CHAIN, org, now=friday)
        assert [r["would_send"] for r in rows(preview, "steps")] == ["sends", "sends", "nothing to send"]

        result = digests.deliver(CHAIN, org, now=friday, trigger="cron")
        assert [p.digest for p in result.parts] == [ROLLUP, BREACH, ESCALATE]
        assert [p.outcome for p in result.parts] == ["partial", "partial", "partial"]
        assert result.outcome == "delivered" and result.period == "2025-W27"
        runs = db.session.execute(select(DigestRun.digest, DigestRun.trigger).order_by(DigestRun.id)).all()
        assert [tuple(r) for r in runs] == [(CHAIN, "cron"), (ROLLUP, "chain"), (BREACH, "chain"),
                                            (ESCALATE, "chain")]
        emails = db.session.execute(select(Delivery.source, Delivery.recipients).where(Delivery.channel == "email")
                                    .order_by(Delivery.id)).all()
        assert [e.source for e in emails] == [ROLLUP, BREACH, ESCALATE]
        # the rollup the chain just sent is what the escalation measured from: every breach whose SLA had passed
        # by then (A1, A11, A3 and A2, due 07-03) and that existed is escalated
        assert result.parts[2].run.summary["last_rollup_at"] == "2025-07-04T16:30:00Z"
        assert result.parts[2].run.summary["escalations"] == 4
        assert emails[2].recipients == ["a@acme.example", "adm@acme.example", "board@acme.example"]
        before = (db.session.scalar(select(func.count()).select_from(DigestRun)),
                  db.session.scalar(select(func.count()).select_from(Delivery)))

        again = digests.deliver(CHAIN, org, now=friday + dt.timedelta(minutes=5), trigger="cron")
        assert again.outcome == "already_delivered" and again.parts == []
        for slug in (ROLLUP, BREACH, ESCALATE):  # each part is idempotent on its own too
            assert digests.deliver(slug, org, now=friday + dt.timedelta(minutes=5)).outcome == "already_delivered"
        after = (db.session.scalar(select(func.count()).select_from(DigestRun)),
                 db.session.scalar(select(func.count()).select_from(Delivery)))
        assert after == before

        preview = build(CHAIN, org, now=friday + dt.timedelta(minutes=5))
        assert [r["would_send"] for r in rows(preview, "steps")] == \
            ["already ran: the chain was delivered this period"] * 3


def test_chain_preview_pins_each_part_and_the_steps(app, actions):
    org, _ = actions
    with app.app_context():
        rollup_email(org, at(D(2025, 6, 20), 16))
        rep = build(CHAIN, org)
        parts = {s: build(s, org) for s in (ROLLUP, BREACH, ESCALATE)}
    assert summary(rep) == {"period": "2025-W27", "steps": 3, "steps_sending": 3, "rollup_completed_in_period": 2,
                            "rollup_on_time_rate_pct": 50.0, "rollup_completion_rate_pct": 40.0, "sla_breaches": 3,
                            "escalations": 1, "last_rollup_at": "2025-06-20T16:00:05Z"}
    steps = rows(rep, "steps")
    assert [(s["step"], s["digest"], s["period"], s["would_send"], s["channels"]) for s in steps] == [
        (1, ROLLUP, "2025-W27", "sends", ["email", "slack", "webhook"]),
        (2, BREACH, "2025-06-30", "sends", ["email", "slack"]),
        (3, ESCALATE, "2025-W27", "sends", ["email", "slack"])]
    assert steps[1]["recipients"] == ["a@acme.example", "adm@acme.example", "b@acme.example", "board@acme.example",
                                      "c@acme.example"]
    assert steps[0]["headline"] == "completed_in_period: 2; on_time_rate_pct: 50; open: 6; past_sla: 3"
    for key, slug in (("rollup", ROLLUP), ("breaches", BREACH), ("escalation", ESCALATE)):
        figures = {r["figure"]: r["value"] for r in rows(rep, key)}
        assert figures == summary(parts[slug]), key
