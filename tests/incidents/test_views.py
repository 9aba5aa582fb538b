"""Incident pages: the live list (filters, keyset pages, HTMX partial and its 204 when nothing changed),
manual create, and the detail page whose actions answer HTMX with the re-rendered body and plain
posts with a redirect back — errors inline or flashed, never a crash, never a change."""
from __future__ import annotations

import re

import pytest

from .incident_helpers import HX, audit_actions, audit_count, load, make_incident, make_service

LIST = "/incidents"


def rows(html: str) -> list[str]:
    """The incident refs listed in a list page or fragment, in order."""
    return re.findall(r'<span class="inc-ref">(INC-\d+)</span>', html)


@pytest.fixture
def owner(make_member):
    return make_member("alpha", "owner")


@pytest.fixture
def me(owner, sign_in):
    return sign_in(owner)


# --- list ------------------------------------------------------------------------------------------------

def test_list_shows_active_incidents_by_default_with_pills_and_times(app, owner, me):
    make_incident(app, owner.org_id, "Payments down", "critical")
    make_incident(app, owner.org_id, "Old outage", "low", status="closed")
    make_incident(app, owner.org_id, "Search <slow>", "medium", status="acknowledged")
    resp = me.get(LIST)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "<html" in html
    assert rows(html) == ["INC-3", "INC-1"]
    assert 'class="pill sev sev-critical"' in html and 'class="pill st st-acknowledged"' in html
    assert "Search &lt;slow&gt;" in html  # escaped
    assert re.search(r'<time datetime="[^"]+Z" title="[^"]+UTC">just now</time>', html)
    assert 'hx-trigger="every 10s"' in html and 'id="incident-filters"' in html
    assert 'href="/incidents/new"' in html
    assert rows(me.get(LIST + "?status=all").get_data(as_text=True)) == ["INC-3", "INC-2", "INC-1"]


def test_list_filters_by_severity_service_and_text(app, owner, me):
    svc = make_service(app, owner.org_id, "payments-api")
    make_incident(app, owner.org_id, "Payments down", "critical", service_id=svc)
    make_incident(app, owner.org_id, "Search slow", "low")
    assert rows(me.get(LIST + "?severity=low").get_data(as_text=True)) == ["INC-2"]
    assert rows(me.get(f"{LIST}?service={svc}").get_data(as_text=True)) == ["INC-1"]
    assert rows(me.get(LIST + "?q=search").get_data(as_text=True)) == ["INC-2"]
    assert rows(me.get(LIST + "?q=INC-1").get_data(as_text=True)) == ["INC-1"]
    html = me.get(LIST + "?q=nothing-like-this").get_data(as_text=True)
    assert rows(html) == [] and "No incidents match these filters" in html


def test_unusable_filters_are_dropped_with_a_notice(app, owner, me):
    make_incident(app, owner.org_id, "Payments down")
    resp = me.get(LIST + "?status=escalated&severity=sev0&service=abc&cursor=%%%")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and rows(html) == ["INC-1"]
    for notice in ("Unknown status filter", "Unknown severity filter", "Unknown service filter", "not valid"):
        assert notice in html


def test_empty_state(app, owner, me):
    html = me.get(LIST).get_data(as_text=True)
    assert "No active incidents" in html and "Show all incidents" in html


def test_keyset_pages_with_an_older_link(app, owner, me):
    for i in range(30):
        make_incident(app, owner.org_id, f"incident {i}", status="resolved" if i % 2 else "open")
    html = me.get(LIST + "?status=all").get_data(as_text=True)
    assert rows(html)[:2] == ["INC-30", "INC-29"] and len(rows(html)) == 25
    older = re.search(r'<a class="btn" rel="next" href="([^"]+)">Older →</a>', html).group(1).replace("&amp;", "&")
    assert "status=all" in older and "cursor=" in older and "offset" not in older
    page2 = me.get(older).get_data(as_text=True)
    assert rows(page2) == ["INC-5", "INC-4", "INC-3", "INC-2", "INC-1"]
    assert "Older →" not in page2 and "← Newest" in page2
    assert 'hx-trigger="every 10s"' not in page2  # an older page does not live-update
    # the filter is kept across pages
    active = me.get(LIST).get_data(as_text=True)
    assert rows(active) == [f"INC-{n}" for n in range(29, 0, -2)]


def test_htmx_request_gets_the_rows_fragment_and_204_when_unchanged(app, owner, me):
    make_incident(app, owner.org_id, "Payments down")
    resp = me.get(LIST + "?status=active", headers=HX)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "<html" not in html and 'id="incident-filters"' not in html and rows(html) == ["INC-1"]
    version = re.search(r'id="rows-version" name="v" value="([0-9a-f]+)"', html).group(1)
    assert 'hx-include="#incident-filters, #rows-version"' in html
    unchanged = me.get(LIST, query_string={"status": "active", "v": version}, headers=HX)
    assert unchanged.status_code == 204 and unchanged.get_data() == b""
    make_incident(app, owner.org_id, "Search slow")
    changed = me.get(LIST, query_string={"status": "active", "v": version}, headers=HX)
    assert changed.status_code == 200 and rows(changed.get_data(as_text=True)) == ["INC-2", "INC-1"]
    # a history restore asks for the whole page
    restore = me.get(LIST, headers=HX | {"HX-History-Restore-Request": "true"})
    assert "<html" in restore.get_data(as_text=True)


def test_list_shows_only_the_active_orgs_incidents(app, make_member, owner, me):
    make_incident(app, make_member("bravo", "owner").org_id, "bravo secret")
    html = me.get(LIST + "?status=all").get_data(as_text=True)
    assert "bravo secret" not in html and rows(html) == []


def test_viewer_sees_the_list_without_a_create_button(app, make_member, owner, sign_in):
    make_incident(app, owner.org_id, "Payments down")
    viewer = sign_in(make_member("alpha", "viewer"))
    html = viewer.get(LIST).get_data(as_text=True)
    assert rows(html) == ["INC-1"] and 'href="/incidents/new"' not in html
    assert viewer.get("/incidents/new").status_code == 403


# --- create ----------------------------------------------------------------------------------------------

def test_create_page_opens_an_incident(app, owner, me):
    svc = make_service(app, owner.org_id, "payments-api")
    form = me.get("/incidents/new").get_data(as_text=True)
    assert 'name="title"' in form and "payments-api" in form
    resp = me.post("/incidents/new", data={"title": "  Card payments failing  ", "severity": "critical",
                                           "service": str(svc), "description": "Stripe 502s"})
    assert resp.status_code == 303
    inc_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    assert load(app, inc_id)["title"] == "Card payments failing"
    assert load(app, inc_id)["service_id"] == svc
    page = me.get(resp.headers["Location"]).get_data(as_text=True)
    assert "INC-1 opened." in page
    assert audit_actions(app, owner.org_id, inc_id) == ["incident.created"]


@pytest.mark.parametrize("data,field_error", [
    ({"title": "", "severity": "high"}, "title of 1–300"),
    ({"title": "t" * 301, "severity": "high"}, "title of 1–300"),
    ({"title": "ok", "severity": "sev1"}, "Choose a severity"),
    ({"title": "ok", "severity": "high", "service": "99999"}, "Choose one of this organisation"),
    ({"title": "ok", "severity": "high", "description": "d" * 10_001}, "at most 10000"),
    ({"title": "bad\x00byte", "severity": "high"}, "title of 1–300"),
])
def test_create_page_rejects_bad_input(app, owner, me, data, field_error):
    before = audit_count(app, owner.org_id)
    resp = me.post("/incidents/new", data=data)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and field_error in html and 'aria-invalid="true"' in html
    assert audit_count(app, owner.org_id) == before
    if data["title"] == "ok":
        assert 'value="ok"' in html  # the form keeps what was typed


def test_create_page_refuses_another_orgs_service(app, make_member, owner, me):
    foreign = make_service(app, make_member("bravo", "owner").org_id, "their-service")
    resp = me.post("/incidents/new", data={"title": "x", "severity": "low", "service": str(foreign)})
    assert resp.status_code == 400 and "their-service" not in resp.get_data(as_text=True)


# --- detail ----------------------------------------------------------------------------------------------

def test_detail_page(app, make_member, owner, me):
    sre = make_member("alpha", "member")
    inc = make_incident(app, owner.org_id, "Payments down", "critical", description="Line one\nLine <two>")
    html = me.get(f"/incidents/{inc}").get_data(as_text=True)
    assert "<html" in html and '<span class="inc-ref">INC-1</span> Payments down' in html
    assert "Line one\nLine &lt;two&gt;" in html
    for to in ("acknowledged", "mitigated", "resolved"):
        assert f'name="to" value="{to}"' in html
    assert 'name="to" value="closed"' not in html
    assert sre.email in html  # commander choices
    assert "Place legal hold" in html  # owner
    for export in ("export", "evidence", "review"):
        assert f'href="/api/incidents/{inc}/{export}"' in html
    assert 'id="incident-body"' in html and "Timeline" in html and "Alerts" in html


def test_detail_fragment_for_htmx(app, owner, me):
    inc = make_incident(app, owner.org_id)
    html = me.get(f"/incidents/{inc}", headers=HX).get_data(as_text=True)
    assert "<html" not in html and html.strip().startswith('<div id="incident-body"')


def test_viewer_and_member_see_only_what_they_may_do(app, make_member, owner, sign_in):
    inc = make_incident(app, owner.org_id)
    viewer_html = sign_in(make_member("alpha", "viewer")).get(f"/incidents/{inc}").get_data(as_text=True)
    assert "view-only access" in viewer_html and 'name="to"' not in viewer_html and "Add a note" not in viewer_html
    member_html = sign_in(make_member("alpha", "member")).get(f"/incidents/{inc}").get_data(as_text=True)
    assert 'name="to"' in member_html and "Add a note" in member_html and "Place legal hold" not in member_html


def test_detail_of_another_org_is_404(app, make_member, me):
    theirs = make_incident(app, make_member("bravo", "owner").org_id, "bravo secret")
    for resp in (me.get(f"/incidents/{theirs}"), me.post(f"/incidents/{theirs}/status", data={"to": "acknowledged"}),
                 me.post(f"/incidents/{theirs}/notes", data={"body": "x"}, headers=HX)):
        assert resp.status_code == 404 and "bravo secret" not in resp.get_data(as_text=True)
    assert load(app, theirs)["status"] == "open"


# --- actions ---------------------------------------------------------------------------------------------

def test_htmx_action_returns_the_updated_body(app, owner, me):
    inc = make_incident(app, owner.org_id)
    resp = me.post(f"/incidents/{inc}/status", data={"to": "acknowledged"}, headers=HX)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "<html" not in html
    assert html.strip().startswith('<div id="incident-body"')
    assert "INC-1 is acknowledged." in html and 'class="pill st st-acknowledged"' in html
    assert "Status open → acknowledged" in html  # appended to the timeline
    assert 'name="to" value="acknowledged"' not in html and 'name="to" value="mitigated"' in html
    assert 'hx-post="/incidents/1/status" hx-target="#incident-body" hx-swap="outerHTML"' in html
    assert audit_actions(app, owner.org_id, inc)[-1] == "incident.acknowledged"


def test_plain_post_redirects_back_with_a_flash(app, owner, me):
    inc = make_incident(app, owner.org_id)
    resp = me.post(f"/incidents/{inc}/status", data={"to": "resolved"})
    assert resp.status_code == 303 and resp.headers["Location"] == f"/incidents/{inc}"
    assert "INC-1 is resolved." in me.get(resp.headers["Location"]).get_data(as_text=True)
    assert load(app, inc)["status"] == "resolved"


def test_invalid_transition_is_409_inline_for_htmx_and_flashed_otherwise(app, owner, me):
    inc = make_incident(app, owner.org_id, status="closed")
    before, n = load(app, inc), audit_count(app, owner.org_id)
    resp = me.post(f"/incidents/{inc}/status", data={"to": "acknowledged"}, headers=HX)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409
    assert 'class="flash flash-error" role="alert"' in html and "INC-1 is closed; it cannot become acknowledged." in html
    assert html.strip().startswith('<div id="incident-body"')
    plain = me.post(f"/incidents/{inc}/status", data={"to": "acknowledged"})
    assert plain.status_code == 303
    assert "cannot become acknowledged" in me.get(plain.headers["Location"]).get_data(as_text=True)
    assert load(app, inc) == before and audit_count(app, owner.org_id) == n


def test_htmx_swaps_the_409_fragment(app, owner, me):
    """htmx swaps only 2xx by default; the detail page configures it to swap the 400/409 fragments too."""
    inc = make_incident(app, owner.org_id)
    html = me.get(f"/incidents/{inc}").get_data(as_text=True)
    config = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", html).group(1)
    assert '"code":"^(400|409)$","swap":true' in config


@pytest.mark.parametrize("url,data,message", [
    ("status", {"to": "escalated"}, "Unknown status"),
    ("status", {}, "Unknown status"),
    ("severity", {"severity": "sev0"}, "Unknown severity"),
    ("notes", {"body": "   "}, "1–10000 characters"),
    ("notes", {"body": "n" * 10_001}, "at most 10000"),
    ("notes", {"body": "nul\x00"}, "NUL"),
    ("commander", {"commander_id": "abc"}, "Choose a member"),
])
def test_bad_action_input_is_400_and_changes_nothing(app, owner, me, url, data, message):
    inc = make_incident(app, owner.org_id)
    before, n = load(app, inc), audit_count(app, owner.org_id)
    resp = me.post(f"/incidents/{inc}/{url}", data=data, headers=HX)
    assert resp.status_code == 400 and message in resp.get_data(as_text=True)
    assert load(app, inc) == before and audit_count(app, owner.org_id) == n


def test_note_is_added_escaped_and_audited(app, owner, me):
    inc = make_incident(app, owner.org_id)
    resp = me.post(f"/incidents/{inc}/notes", data={"body": "Rolled back <script>alert(1)</script>"}, headers=HX)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Note added." in html
    assert "Rolled back &lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert audit_actions(app, owner.org_id, inc)[-1] == "incident.note_added"


def test_commander_and_severity(app, make_member, owner, me):
    sre = make_member("alpha", "member")
    outsider = make_member("bravo", "owner")
    inc = make_incident(app, owner.org_id, severity="low")
    html = me.post(f"/incidents/{inc}/commander", data={"commander_id": str(sre.user_id)}, headers=HX).get_data(as_text=True)
    assert f"Commander: {sre.email}." in html and f"Commander set to {sre.email}" in html
    bad = me.post(f"/incidents/{inc}/commander", data={"commander_id": str(outsider.user_id)}, headers=HX)
    assert bad.status_code == 400 and "not a member of this organisation" in bad.get_data(as_text=True)
    assert outsider.email not in bad.get_data(as_text=True)
    assert load(app, inc)["commander_id"] == sre.user_id
    html = me.post(f"/incidents/{inc}/severity", data={"severity": "critical"}, headers=HX).get_data(as_text=True)
    assert "Severity is critical." in html and "Severity low → critical" in html
    cleared = me.post(f"/incidents/{inc}/commander", data={"commander_id": ""}, headers=HX).get_data(as_text=True)
    assert "Commander cleared." in cleared and load(app, inc)["commander_id"] is None


def test_legal_hold_is_owner_admin_only(app, make_member, owner, me, sign_in):
    inc = make_incident(app, owner.org_id)
    member = sign_in(make_member("alpha", "member"))
    assert member.post(f"/incidents/{inc}/legal-hold", data={"on": "1"}, headers=HX).status_code == 403
    assert load(app, inc)["legal_hold"] is False
    html = me.post(f"/incidents/{inc}/legal-hold", data={"on": "1"}, headers=HX).get_data(as_text=True)
    assert "Legal hold placed." in html and "⚖ Legal hold" in html and "Release legal hold" in html
    assert me.post(f"/incidents/{inc}/legal-hold", data={"on": "maybe"}, headers=HX).status_code == 400
    assert audit_actions(app, owner.org_id, inc)[-1] == "incident.legal_hold_set"


def test_viewer_cannot_act(app, make_member, owner, sign_in):
    inc = make_incident(app, owner.org_id)
    viewer = sign_in(make_member("alpha", "viewer"))
    before, n = load(app, inc), audit_count(app, owner.org_id)
    for url, data in (("status", {"to": "acknowledged"}), ("notes", {"body": "x"}), ("severity", {"severity": "low"}),
                      ("commander", {"commander_id": ""}), ("legal-hold", {"on": "1"})):
        assert viewer.post(f"/incidents/{inc}/{url}", data=data, headers=HX).status_code == 403
    assert viewer.post("/incidents/new", data={"title": "x", "severity": "low"}).status_code == 403
    assert load(app, inc) == before and audit_count(app, owner.org_id) == n


def test_actions_need_the_csrf_token(app, owner, me):
    inc = make_incident(app, owner.org_id)
    resp = me.client.post(f"/incidents/{inc}/status", data={"to": "acknowledged"})
    assert resp.status_code == 403 and load(app, inc)["status"] == "open"


def test_timeline_items_are_linkable_anchors(app, make_member, sign_in):
    """RCA evidence links point at /incidents/<id>#event-<id>; each timeline item carries that id."""
    import re as _re

    from zentro.audit.service import SYSTEM
    from zentro.extensions import db
    from zentro.incidents.service import add_note, create_incident

    m = make_member("alpha", "owner")
    with app.app_context():
        inc = create_incident(m.org_id, title="anchor check", severity="low", actor=SYSTEM)
        ev = add_note(inc, "look here", SYSTEM)
        db.session.commit()
        inc_id, ev_id = inc.id, ev.id
        db.session.remove()
    page = sign_in(m).get(f"/incidents/{inc_id}").get_data(as_text=True)
    assert _re.search(rf'<li class="tl-item tl-note" id="event-{ev_id}">', page)
