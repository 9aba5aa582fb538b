"""The services pages: list, create/edit forms with their errors, the SLO page's pictures, in-place
dependency editing with HTMX, change events, delete rights and the graph page."""
from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

import pytest

from zentro.platform.types import utcnow

from .helpers import add_edge, add_samples, add_service

HX = {"HX-Request": "true"}


def svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(m) for m in re.findall(r"<svg\b.*?</svg>", html, flags=re.S)]


@pytest.fixture
def owner_web(sign_in, owner):
    return sign_in(owner)


def form(**overrides):
    data = {"name": "payments-api", "tier": "0", "environment": "production", "owner": "team-payments",
            "slo_target": "99.9", "runbook_url": "https://runbooks.example.com/payments", "description": "Card payments"}
    data.update(overrides)
    return data


def test_list_and_create(app, owner_web, rows):
    page = owner_web.get("/services").get_data(as_text=True)
    assert "No services yet" in page and 'name="runbook_url"' in page
    resp = owner_web.post("/services", data=form(internet_facing="on"))
    assert resp.status_code == 302 and re.search(r"/services/\d+$", resp.headers["Location"])
    page = owner_web.get("/services").get_data(as_text=True)
    assert "payments-api" in page and "team-payments" in page and "99.9 %" in page and "internet" in page
    assert "no data" in page  # no samples or incidents yet
    assert rows("services", internet_facing=True) == 1


@pytest.mark.parametrize("overrides,message,status", [
    ({"tier": "7"}, "Tier: a whole number from 0", 400),
    ({"tier": "zero"}, "Tier: a whole number from 0", 400),
    ({"runbook_url": "javascript:alert(1)"}, "Runbook URL: an http:// or https:// address", 400),
    ({"slo_target": "100"}, "SLO target: a percentage from 90 to 99.999", 400),
    ({"name": ""}, "Name: 1–100 characters", 400),
])
def test_create_form_errors_keep_input_and_store_nothing(owner_web, rows, overrides, message, status):
    resp = owner_web.post("/services", data=form(**overrides))
    page = resp.get_data(as_text=True)
    assert resp.status_code == status and message in page and 'aria-invalid="true"' in page
    assert 'value="team-payments"' in page  # what was typed stays
    assert rows("services") == 0


def test_duplicate_name_in_the_form_is_409(owner_web, rows):
    owner_web.post("/services", data=form())
    resp = owner_web.post("/services", data=form(name="PAYMENTS-API"))
    assert resp.status_code == 409 and "already exists" in resp.get_data(as_text=True)
    assert rows("services") == 1


def test_viewer_sees_no_forms_and_cannot_post(app, owner, sign_in, make_member, rows):
    add_service(app, owner.org_id, "api")
    viewer = sign_in(make_member("acme", "viewer"))
    page = viewer.get("/services").get_data(as_text=True)
    assert "api" in page and "Add a service" not in page
    assert viewer.post("/services", data=form()).status_code == 403
    assert rows("services") == 1


def test_slo_page_draws_its_charts(app, owner, owner_web):
    sid = add_service(app, owner.org_id, "payments-api", slo_target=99.9)
    now = utcnow()
    add_samples(app, owner.org_id, sid, [(now - dt.timedelta(days=d, hours=1), now - dt.timedelta(days=d), 99_950, 100_000)
                                         for d in range(0, 20)])
    html = owner_web.get(f"/services/{sid}").get_data(as_text=True)
    pictures = svgs(html)
    assert [p.get("id") for p in pictures] == ["burndown", "burnbars", "dailyburn"]
    titles = [p.find("{http://www.w3.org/2000/svg}title").text for p in pictures]
    assert titles[0] == "payments-api: error budget remaining over the last 30 days"
    assert "SLI samples" in html and "page-1h" in html and "ticket-3d" in html
    desc = pictures[0].find("{http://www.w3.org/2000/svg}desc").text
    assert "99.9 % SLO" in desc and "% left now" in desc


def test_slo_page_of_another_org_is_404(app, owner, sign_in, make_member):
    sid = add_service(app, owner.org_id, "secret-service")
    other = sign_in(make_member("globex", "owner"))
    resp = other.get(f"/services/{sid}")
    assert resp.status_code == 404 and "secret-service" not in resp.get_data(as_text=True)


def test_edit_form(app, owner, owner_web):
    sid = add_service(app, owner.org_id, "api", tier=2)
    page = owner_web.get(f"/services/{sid}/edit").get_data(as_text=True)
    assert 'value="api"' in page
    bad = owner_web.post(f"/services/{sid}/edit", data=form(name="api", runbook_url="ftp://x"))
    assert bad.status_code == 400 and "Runbook URL" in bad.get_data(as_text=True)
    ok = owner_web.post(f"/services/{sid}/edit", data=form(name="api-v2", tier="1"))
    assert ok.status_code == 302
    page = owner_web.get(f"/services/{sid}").get_data(as_text=True)
    assert "api-v2" in page and "team-payments" in page


def test_dependencies_in_place_with_htmx(app, owner, owner_web, rows):
    a = add_service(app, owner.org_id, "gateway")
    b = add_service(app, owner.org_id, "payments")
    added = owner_web.post(f"/services/{a}/dependencies", data={"depends_on_id": str(b)}, headers=HX)
    html = added.get_data(as_text=True)
    assert added.status_code == 200 and html.lstrip().startswith('<section class="card" id="dependencies"')
    assert "gateway now depends on payments." in html and 'aria-live="polite"' in html
    cycle = owner_web.post(f"/services/{b}/dependencies", data={"depends_on_id": str(a)}, headers=HX)
    assert "would create a dependency cycle" in cycle.get_data(as_text=True)
    self_edge = owner_web.post(f"/services/{a}/dependencies", data={"depends_on_id": str(a)}, headers=HX)
    assert "cannot depend on itself" in self_edge.get_data(as_text=True)
    assert rows("service_dependencies") == 1
    removed = owner_web.post(f"/services/{a}/dependencies/{b}/remove", headers=HX)
    assert "no longer depends on payments" in removed.get_data(as_text=True)
    assert rows("service_dependencies") == 0
    # without HTMX: a redirect back with a flash
    plain = owner_web.post(f"/services/{a}/dependencies", data={"depends_on_id": str(b)})
    assert plain.status_code == 302 and plain.headers["Location"].endswith(f"/services/{a}#dependencies")


def test_dependency_on_another_orgs_service_is_404(app, owner, sign_in, make_member, rows):
    mine = add_service(app, owner.org_id, "mine")
    other_member = make_member("globex", "owner")
    theirs = add_service(app, other_member.org_id, "theirs")
    web = sign_in(owner)
    resp = web.post(f"/services/{mine}/dependencies", data={"depends_on_id": str(theirs)}, headers=HX)
    assert "Service not found" in resp.get_data(as_text=True) and "theirs" not in resp.get_data(as_text=True)
    assert rows("service_dependencies") == 0


def test_change_events_from_the_page(app, owner, owner_web, rows):
    sid = add_service(app, owner.org_id, "api")
    resp = owner_web.post(f"/services/{sid}/changes", data={"kind": "deploy", "summary": "Deploy v1.2.3", "ref": "v1.2.3"})
    assert resp.status_code == 302
    page = owner_web.get(f"/services/{sid}").get_data(as_text=True)
    assert "Deploy v1.2.3" in page and "Deploy recorded on api." in page
    future = (utcnow() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    owner_web.post(f"/services/{sid}/changes", data={"kind": "deploy", "summary": "later", "occurred_at": future})
    assert "in the future" in owner_web.get(f"/services/{sid}").get_data(as_text=True)
    owner_web.post(f"/services/{sid}/changes", data={"kind": "deploy", "summary": "", "occurred_at": ""})
    owner_web.post(f"/services/{sid}/changes", data={"kind": "deploy", "summary": "x", "occurred_at": "yesterday"})
    assert rows("change_events") == 1


def test_delete_needs_admin(app, owner, sign_in, make_member, rows):
    sid = add_service(app, owner.org_id, "api")
    member = sign_in(make_member("acme", "member"))
    assert f"/services/{sid}/delete" not in member.get(f"/services/{sid}").get_data(as_text=True)
    assert member.post(f"/services/{sid}/delete").status_code == 403
    assert rows("services") == 1
    admin = sign_in(make_member("acme", "admin"))
    assert f"/services/{sid}/delete" in admin.get(f"/services/{sid}").get_data(as_text=True)
    resp = admin.post(f"/services/{sid}/delete")
    assert resp.status_code == 302 and rows("services") == 0


def test_graph_page(app, owner, owner_web):
    from zentro.extensions import db
    from zentro.ingest.models import Finding

    web = add_service(app, owner.org_id, "web", tier=1, internet_facing=True)
    gw = add_service(app, owner.org_id, "gateway", tier=0)
    add_edge(app, owner.org_id, web, gw)
    with app.app_context():
        db.session.add(Finding(org_id=owner.org_id, source="generic", finding_key="k", title="RCE", severity="critical",
                               service_id=web, cve="CVE-2024-0001"))
        db.session.commit()
    html = owner_web.get("/services/graph").get_data(as_text=True)
    (picture,) = svgs(html)
    assert picture.get("id") == "depgraph"
    assert len(picture.findall(".//{http://www.w3.org/2000/svg}path[@class='edge hot']")) == 1
    assert "Top attack paths" in html and "CVE-2024-0001" in html and "= 56" in html


def test_open_incidents_show_on_the_list_and_the_slo_page(app, owner, owner_web):
    from zentro.extensions import db
    from zentro.incidents import service as incidents

    from .helpers import TEST_ACTOR

    sid = add_service(app, owner.org_id, "checkout")
    with app.app_context():
        inc = incidents.create_incident(owner.org_id, title="Checkout 5xx", severity="high", actor=TEST_ACTOR,
                                        service_id=sid)
        done = incidents.create_incident(owner.org_id, title="Old one", severity="high", actor=TEST_ACTOR,
                                         service_id=sid)
        incidents.transition(done, "resolved", TEST_ACTOR)
        db.session.commit()
        ref = inc.ref
    listing = owner_web.get("/services").get_data(as_text=True)
    assert "1 open" in listing and f"/incidents?service={sid}" in listing
    page = owner_web.get(f"/services/{sid}").get_data(as_text=True)
    assert ref in page and "Checkout 5xx" in page and "Old one" not in page
    assert "from incidents" in listing  # a high incident on record: the budget is derived from it
