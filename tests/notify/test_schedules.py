"""Per-org digest schedules: the /api/v1/digests API, the /settings/digests page, next-run computation and the
scheduler's side (due / mark_ran). Bad input of every kind answers the envelope and changes nothing."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from zentro.audit.models import AuditEvent
from zentro.audit.service import SYSTEM
from zentro.extensions import db
from zentro.notify import schedules
from zentro.notify.models import DigestRun, DigestSchedule

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 5, 12, 0, tzinfo=UTC)  # a Thursday
URL = "/api/v1/digests/sla-reminders/schedule"


def at(**kw) -> dt.datetime:
    return T0 + dt.timedelta(**kw)


def _state(app, org_id: int) -> tuple:
    """What a refused request must leave alone: the org's schedule rows and its audit trail."""
    with app.app_context():
        rows = db.session.execute(sa.select(DigestSchedule.digest, DigestSchedule.enabled, DigestSchedule.cron,
                                            DigestSchedule.channels, DigestSchedule.slack_channel,
                                            DigestSchedule.options, DigestSchedule.next_run_at)
                                  .where(DigestSchedule.org_id == org_id).order_by(DigestSchedule.digest)).all()
        audits = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                                   .where(AuditEvent.org_id == org_id))
        db.session.remove()
    return [tuple(r) for r in rows], audits


# --- next runs -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("cron,after,expected", [
    ("0 8 * * *", T0, dt.datetime(2026, 3, 6, 8, 0, tzinfo=UTC)),        # today's 08:00 has passed
    ("0 8 * * *", at(hours=-5), dt.datetime(2026, 3, 5, 8, 0, tzinfo=UTC)),
    ("0 8 * * 1", T0, dt.datetime(2026, 3, 9, 8, 0, tzinfo=UTC)),        # Monday, not Tuesday
    ("0 12 * * 4", T0, dt.datetime(2026, 3, 12, 12, 0, tzinfo=UTC)),     # exactly now: the next one
    ("0 8 1 1,4,7,10 *", T0, dt.datetime(2026, 4, 1, 8, 0, tzinfo=UTC)),
    ("30 16 * * 5", dt.datetime(2026, 12, 31, 23, 0, tzinfo=UTC), dt.datetime(2027, 1, 1, 16, 30, tzinfo=UTC)),
])
def test_next_fire_is_pinned(cron, after, expected):
    assert schedules.next_fire(cron, after) == expected


def test_enabling_and_changing_the_cron_recompute_the_next_run_others_keep_it(app, make_member):
    m = make_member("alpha", "owner")
    with app.app_context():
        def save(changes, now):
            schedules.update_schedule(m.org_id, "sla-reminders", changes, user_id=m.user_id, actor=SYSTEM, now=now)
            return db.session.get(DigestSchedule, (m.org_id, "sla-reminders"))

        row = save({"enabled": True}, T0)  # the digest's default, 0 8 * * *
        assert row.next_run_at == dt.datetime(2026, 3, 6, 8, 0, tzinfo=UTC)
        row = save({"slackChannel": "#grc"}, at(days=1))
        assert row.next_run_at == dt.datetime(2026, 3, 6, 8, 0, tzinfo=UTC) and row.slack_channel == "#grc"
        row = save({"cron": "0 8 * * 1"}, at(hours=1))
        assert row.next_run_at == dt.datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
        row = save({"cron": "  0   8 * * 1 "}, at(days=2))  # the same expression, spaced: unchanged
        assert row.cron == "0 8 * * 1" and row.next_run_at == dt.datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
        row = save({"enabled": False}, at(hours=2))
        assert row.next_run_at is None
        row = save({"cron": "0 9 * * *"}, at(hours=3))  # disabled: still no next run
        assert row.next_run_at is None
        row = save({"enabled": True, "cron": ""}, dt.datetime(2026, 3, 10, 7, 0, tzinfo=UTC))
        assert row.cron == "" and row.next_run_at == dt.datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
        db.session.remove()


def test_due_and_mark_ran(app, make_member):
    a = make_member("alpha", "owner")
    b = make_member("bravo", "owner")
    with app.app_context():
        for org_id, cron in ((a.org_id, "0 8 * * *"), (b.org_id, "0 9 * * *")):
            schedules.update_schedule(org_id, "sla-reminders", {"enabled": True, "cron": cron}, user_id=None,
                                      actor=SYSTEM, now=T0)
        schedules.update_schedule(a.org_id, "mapping-digest", {"enabled": True, "cron": "0 8 * * *"}, user_id=None,
                                  actor=SYSTEM, now=T0)
        eight = dt.datetime(2026, 3, 6, 8, 0, tzinfo=UTC)
        assert schedules.due("sla-reminders", eight - dt.timedelta(seconds=1)) == []
        assert [r.org_id for r in schedules.due("sla-reminders", eight)] == [a.org_id]
        assert [r.org_id for r in schedules.due("sla-reminders", eight + dt.timedelta(hours=1))] == [a.org_id, b.org_id]
        assert [r.digest for r in schedules.due("mapping-digest", eight)] == ["mapping-digest"]

        row = schedules.due("sla-reminders", eight)[0]
        late = eight + dt.timedelta(minutes=3)
        schedules.mark_ran(row, late)
        db.session.commit()
        row = db.session.get(DigestSchedule, (a.org_id, "sla-reminders"))
        assert row.last_run_at == late and row.next_run_at == eight + dt.timedelta(days=1)
        assert schedules.due("sla-reminders", late) == []

        # a scheduler that was down for days runs once, then resumes the regular times
        week_later = eight + dt.timedelta(days=7, minutes=30)
        due = {r.org_id: r for r in schedules.due("sla-reminders", week_later)}
        assert set(due) == {a.org_id, b.org_id}
        schedules.mark_ran(due[a.org_id], week_later)
        assert db.session.get(DigestSchedule, (a.org_id, "sla-reminders")).next_run_at == \
            eight + dt.timedelta(days=8)

        schedules.update_schedule(b.org_id, "sla-reminders", {"enabled": False}, user_id=None, actor=SYSTEM, now=T0)
        assert schedules.due("sla-reminders", week_later) == []
        db.session.remove()


def test_run_due_delivers_to_due_orgs_and_moves_their_schedule(app, make_member):
    from zentro.compliance.digests import run_due

    a = make_member("alpha", "owner")
    with app.app_context():
        schedules.update_schedule(a.org_id, "sla-reminders", {"enabled": True, "channels": ["email"]}, user_id=None,
                                  actor=SYSTEM, now=T0)
        eight = dt.datetime(2026, 3, 6, 8, 0, tzinfo=UTC)
        assert run_due("sla-reminders", eight - dt.timedelta(minutes=1)) == []
        results = run_due("sla-reminders", eight + dt.timedelta(seconds=20))
        assert [(r.org_id, r.run.trigger) for r in results] == [(a.org_id, "schedule")]
        row = db.session.get(DigestSchedule, (a.org_id, "sla-reminders"))
        assert row.next_run_at == eight + dt.timedelta(days=1)
        assert run_due("sla-reminders", eight + dt.timedelta(minutes=1)) == []
        assert db.session.scalar(sa.select(sa.func.count()).select_from(DigestRun)) == 1
        db.session.remove()


# --- the API -------------------------------------------------------------------------------------------

def test_list_shows_every_digest_with_defaults_until_saved(app, make_member, sign_in):
    from zentro.compliance.digests import discover

    viewer = sign_in(make_member("alpha", "viewer"))
    resp = viewer.get("/api/v1/digests")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["next_cursor"] is None
    by = {d["slug"]: d for d in body["data"]}
    assert set(by) == set(discover())
    sla = by["sla-reminders"]
    assert (sla["enabled"], sla["cron"], sla["schedule"], sla["scheduleText"]) == (False, "", "0 8 * * *",
                                                                                   "daily 08:00 UTC")
    assert sla["nextRunAt"] is None and sla["lastRun"] is None and sla["channels"] == []
    assert sla["effectiveChannels"] == ["email", "slack", "webhook"] and sla["period"] == "day"
    assert sla["previewUrl"] == "/api/governance/compliance/sla-reminders?format=html"
    assert by["mapping-digest"]["previewUrl"] == "/compliance/reports/mapping-digest"  # no HTML format
    assert by["attestation-renewal"]["availableChannels"] == ["email"]
    assert by["digest"]["scheduleText"] == "every Monday 08:00 UTC"


def test_admin_saves_a_schedule_which_is_audited(app, make_member, sign_in):
    admin = make_member("alpha", "admin")
    client = sign_in(admin)
    before = dt.datetime.now(UTC)
    resp = client.put(URL, json={"enabled": True, "cron": "0 8 * * 1", "channels": ["slack", "email"],
                                 "slackChannel": "#grc", "options": {"dueSoonDays": 10}})
    after = dt.datetime.now(UTC)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert (body["enabled"], body["cron"], body["scheduleText"]) == (True, "0 8 * * 1", "every Monday 08:00 UTC")
    assert body["channels"] == ["email", "slack"] and body["slackChannel"] == "#grc"
    assert body["options"] == {"dueSoonDays": 10}
    nxt = dt.datetime.fromisoformat(body["nextRunAt"].replace("Z", "+00:00"))
    assert nxt in {schedules.next_fire("0 8 * * 1", before), schedules.next_fire("0 8 * * 1", after)}
    assert nxt.weekday() == 0 and (nxt.hour, nxt.minute) == (8, 0)
    assert client.get(URL).get_json() == body
    listed = {d["slug"]: d for d in client.get("/api/v1/digests").get_json()["data"]}
    assert listed["sla-reminders"] == body

    # fields left out keep their value
    again = client.put(URL, json={"slackChannel": "C0123ABCD"}).get_json()
    assert again["cron"] == "0 8 * * 1" and again["channels"] == ["email", "slack"] and again["nextRunAt"] == body["nextRunAt"]
    with app.app_context():
        events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "digest.schedule_updated")
                                    .order_by(AuditEvent.seq)).all()
        assert [e.target_id for e in events] == ["sla-reminders", "sla-reminders"]
        assert events[0].actor_id == str(admin.user_id)
        assert set(json.loads(events[0].data)["changed"]) == {"enabled", "cron", "channels", "slackChannel", "options", "nextRunAt"}
        assert json.loads(events[1].data)["changed"] == {"slackChannel": "C0123ABCD"}
        db.session.remove()


BAD_BODIES = [
    ({"cron": "61 * * * *"}, "cron"),
    ({"cron": "every monday"}, "five fields"),
    ({"cron": "0 8 * * 8"}, "day-of-week"),
    ({"cron": "x" * 101}, "cron"),
    ({"channels": ["sms"]}, "channels"),
    ({"channels": "email"}, "channels"),
    ({"channels": ["email", "slack", "webhook", "email"]}, "channels"),
    ({"enabled": "yes"}, "enabled"),
    ({"enabled": 1}, "enabled"),
    ({"slackChannel": "not a channel!"}, "slackChannel"),
    ({"options": {"nope": 1}}, "nope"),
    ({"options": {"lookbackDays": "soon"}}, "lookbackDays"),
    ({"options": "dueSoonDays=3"}, "options"),
    ({"bogus": True}, "bogus"),
]


@pytest.mark.parametrize("body,mentions", BAD_BODIES)
def test_bad_input_is_400_and_changes_nothing(app, make_member, sign_in, body, mentions):
    owner = make_member("alpha", "owner")
    client = sign_in(owner)
    assert client.put(URL, json={"enabled": True, "cron": "0 8 * * 1"}).status_code == 200
    before = _state(app, owner.org_id)
    resp = client.put(URL, json=body)
    assert resp.status_code == 400, resp.get_json()
    err = resp.get_json()
    assert err["error_code"] == "VALIDATION_ERROR"
    assert mentions.lower() in json.dumps(err).lower(), err
    assert _state(app, owner.org_id) == before


def test_malformed_bodies_and_a_channel_the_digest_lacks(app, make_member, sign_in):
    owner = make_member("alpha", "owner")
    client = sign_in(owner)
    before = _state(app, owner.org_id)
    assert client.put(URL, data="{not json", content_type="application/json").status_code == 400
    assert client.put(URL, json=["enabled"]).status_code == 400
    assert client.put(URL, data="enabled=on", content_type="application/x-www-form-urlencoded").status_code == 415
    resp = client.put("/api/v1/digests/attestation-renewal/schedule", json={"channels": ["email", "slack"]})
    assert resp.status_code == 400 and "not delivered over slack" in resp.get_json()["detail"]
    assert _state(app, owner.org_id) == before


def test_unknown_digest_is_404(app, make_member, sign_in):
    owner = make_member("alpha", "owner")
    client = sign_in(owner)
    before = _state(app, owner.org_id)
    for method in ("get", "put"):
        resp = getattr(client, method)("/api/v1/digests/no-such-digest/schedule", json={"enabled": True})
        assert resp.status_code == 404 and resp.get_json()["error_code"] == "NOT_FOUND"
    assert _state(app, owner.org_id) == before


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_only_owners_and_admins_change_schedules(app, make_member, sign_in, role):
    make_member("alpha", "owner")
    m = make_member("alpha", role)
    client = sign_in(m)
    before = _state(app, m.org_id)
    resp = client.put(URL, json={"enabled": True})
    assert resp.status_code == 403 and resp.get_json()["error_code"] == "FORBIDDEN"
    assert client.get(URL).status_code == 200  # reading is for everyone
    assert _state(app, m.org_id) == before


def test_api_keys_need_the_compliance_write_scope(app, make_member, make_api_key):
    owner = make_member("alpha", "owner")
    c = app.test_client()
    read_only = {"Authorization": f"Bearer {make_api_key(owner, ['compliance:read'])}"}
    before = _state(app, owner.org_id)
    assert c.get(URL, headers=read_only).status_code == 200
    resp = c.put(URL, json={"enabled": True}, headers=read_only)
    assert resp.status_code == 403 and "compliance:write" in resp.get_json()["detail"]
    assert _state(app, owner.org_id) == before
    writer = {"Authorization": f"Bearer {make_api_key(owner, ['compliance:write'])}"}
    assert c.put(URL, json={"enabled": True}, headers=writer).status_code == 200
    assert c.put(URL, json={"enabled": True}).status_code == 401


def test_each_org_has_its_own_schedules(app, make_member, sign_in):
    a = sign_in(make_member("alpha", "owner"))
    b_member = make_member("bravo", "owner")
    b = sign_in(b_member)
    assert a.put(URL, json={"enabled": True, "cron": "0 6 * * *"}).status_code == 200
    b_before = _state(app, b_member.org_id)
    assert b.get(URL).get_json()["enabled"] is False
    assert {d["slug"]: d for d in b.get("/api/v1/digests").get_json()["data"]}["sla-reminders"]["cron"] == ""
    assert _state(app, b_member.org_id) == b_before
    assert b.put(URL, json={"cron": "0 7 * * *"}).status_code == 200
    assert a.get(URL).get_json()["cron"] == "0 6 * * *"


def test_last_run_is_the_latest_delivery_of_any_trigger(app, make_member, sign_in):
    from zentro.compliance.digests import deliver

    owner = make_member("alpha", "owner")
    with app.app_context():
        deliver("sla-reminders", owner.org_id, now=T0, trigger="manual", actor=SYSTEM, channels=["email"])
        db.session.remove()
    last = sign_in(owner).get(URL).get_json()["lastRun"]
    assert last["trigger"] == "manual" and last["period"] == "2026-03-05" and last["at"] == "2026-03-05T12:00:00Z"
    assert last["status"] in ("delivered", "partial", "not_sent", "nothing_to_send")


# --- the page ------------------------------------------------------------------------------------------

HX = {"HX-Request": "true"}


def test_page_lets_admins_edit_and_shows_viewers_read_only(app, make_member, sign_in):
    owner = sign_in(make_member("alpha", "owner"))
    html = owner.get("/settings/digests").get_data(as_text=True)
    assert 'id="digest-row-sla-reminders"' in html and "Compliance SLA reminders" in html
    assert 'name="cron" form="digest-form-sla-reminders"' in html and "Send now" in html
    assert 'href="/api/governance/compliance/sla-reminders?format=html"' in html
    assert 'href="/compliance/reports/mapping-digest"' in html
    assert "daily 08:00 UTC" in html and "not scheduled" in html
    viewer = sign_in(make_member("alpha", "viewer"))
    html = viewer.get("/settings/digests").get_data(as_text=True)
    assert 'id="digest-row-sla-reminders"' in html and "daily 08:00 UTC" in html
    assert 'name="cron"' not in html and "Send now" not in html and "Only owners and admins" in html


def test_page_save_swaps_the_row_and_refuses_bad_input_in_place(app, make_member, sign_in):
    m = make_member("alpha", "admin")
    page = sign_in(m)
    resp = page.post("/settings/digests/sla-reminders", headers=HX,
                     data={"enabled": "on", "cron": "0 8 * * 1", "channels": ["email", "webhook"], "slack_channel": ""})
    assert resp.status_code == 200
    row = resp.get_data(as_text=True)
    assert row.lstrip().startswith("<tbody") and "Saved." in row and "every Monday 08:00 UTC" in row
    assert "UTC" in row.split('nt-when">Next: ')[1][:40]  # the next run is shown
    api = page.get(URL).get_json()
    assert api["enabled"] is True and api["channels"] == ["email", "webhook"]

    before = _state(app, m.org_id)
    for data, message in [({"enabled": "on", "cron": "0 25 * * *", "channels": ["email"]}, "Invalid cron"),
                          ({"enabled": "on", "cron": "", "channels": []}, "Pick at least one channel"),
                          ({"enabled": "on", "cron": "", "channels": ["sms"]}, "channels is a list"),
                          ({"enabled": "on", "cron": "", "channels": ["slack"], "slack_channel": "my channel!"},
                           "A Slack channel is a name such as #compliance")]:
        bad = page.post("/settings/digests/sla-reminders", headers=HX, data=data)
        assert bad.status_code == 400
        text = bad.get_data(as_text=True)
        assert message in text and 'role="alert"' in text and 'aria-invalid="true"' in text or message in text
    assert _state(app, m.org_id) == before

    # every channel ticked = the digest's default (stored empty), and without HTMX: redirect with a flash
    full = page.post("/settings/digests/sla-reminders", data={"cron": "0 8 * * 1",
                                                               "channels": ["email", "slack", "webhook"]})
    assert full.status_code == 302 and full.headers["Location"].endswith("/settings/digests")
    api = page.get(URL).get_json()
    assert api["channels"] == [] and api["enabled"] is False and api["nextRunAt"] is None
    assert "saved" in page.get("/settings/digests").get_data(as_text=True)
    refused = page.post("/settings/digests/sla-reminders", data={"cron": "nonsense", "channels": ["email"]})
    assert refused.status_code == 400 and "five fields" in refused.get_data(as_text=True)


def test_page_send_now_delivers_once_per_period(app, make_member, sign_in):
    m = make_member("alpha", "owner")
    page = sign_in(m)
    first = page.post("/settings/digests/sla-reminders/send", headers=HX)
    assert first.status_code == 200
    row = first.get_data(as_text=True)
    assert row.lstrip().startswith("<tbody") and 'role="status"' in row and "manual" in row
    second = page.post("/settings/digests/sla-reminders/send", headers=HX).get_data(as_text=True)
    assert "Already delivered" in second
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(DigestRun)) == 1
        db.session.remove()


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_page_actions_are_for_admins_only(app, make_member, sign_in, role):
    make_member("alpha", "owner")
    m = make_member("alpha", role)
    page = sign_in(m)
    before = _state(app, m.org_id)
    assert page.post("/settings/digests/sla-reminders", headers=HX,
                     data={"enabled": "on", "channels": ["email"]}).status_code == 403
    assert page.post("/settings/digests/sla-reminders/send", headers=HX).status_code == 403
    assert _state(app, m.org_id) == before
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(DigestRun)) == 0
        db.session.remove()


def test_page_unknown_digest_is_404(app, make_member, sign_in):
    page = sign_in(make_member("alpha", "owner"))
    assert page.post("/settings/digests/no-such-digest", data={"channels": ["email"]}).status_code == 404
    assert page.post("/settings/digests/no-such-digest/send").status_code == 404
