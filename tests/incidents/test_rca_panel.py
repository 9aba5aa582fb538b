"""The RCA panel: it loads itself where the incident page includes it, offers "Run RCA" to members,
shows live progress (and polls) while a run is going, then the ranked hypotheses with confidence,
factors and evidence links."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from flask import render_template

from zentro.audit.service import SYSTEM
from zentro.extensions import db
from zentro.incidents import rca
from zentro.incidents.models import Incident, RcaRun
from zentro.incidents.service import create_incident, transition
from zentro.platform.types import utcnow
from zentro.reliability.models import ChangeEvent, Service

from .rca_helpers import Stepper

HX = {"HX-Request": "true"}


@pytest.fixture
def executor(use_executor):
    return use_executor


@pytest.fixture
def world(app, make_member, sign_in):
    member = make_member("alpha", "member")
    viewer = make_member("alpha", "viewer")
    with app.app_context():
        svc = Service(org_id=member.org_id, name="checkout")
        db.session.add(svc)
        db.session.flush()
        start = utcnow()
        db.session.add(ChangeEvent(org_id=member.org_id, service_id=svc.id, kind="deploy", summary="checkout v2.4.1",
                                   ref="v2.4.1", occurred_at=start - dt.timedelta(minutes=20)))
        past = create_incident(member.org_id, title="Checkout 5xx spike", severity="high", actor=SYSTEM, service_id=svc.id,
                               started_at=start - dt.timedelta(days=9))
        transition(past, "resolved", SYSTEM, note="Rolled back the cache TTL change")
        inc = create_incident(member.org_id, title="Checkout 5xx spike", severity="high", actor=SYSTEM,
                              service_id=svc.id, started_at=start)
        db.session.commit()
        ids = {"incident_id": inc.id, "past_id": past.id, "past_ref": past.ref}
        db.session.remove()
    return {**ids, "member": member, "client": sign_in(member), "viewer": sign_in(viewer)}


def test_included_panel_loads_itself_over_htmx(app, world):
    with app.test_request_context("/incidents/x"):
        with app.app_context():
            inc = db.session.get(Incident, world["incident_id"])
            html = render_template("incidents/_rca_panel.html", incident=inc)
            db.session.remove()
    url = f"/incidents/{world['incident_id']}/rca"
    assert f'hx-get="{url}"' in html and 'hx-trigger="load"' in html
    assert f'href="{url}"' in html  # without JavaScript: a link to the panel page


def test_placeholder_run_button_waits_for_the_panel_to_load(world):
    """The incident page's placeholder is replaced by the panel's own load: a run started from it would answer
    into the replaced element, so its button stays disabled until the loaded panel arrives."""
    page = world["client"].get(f"/incidents/{world['incident_id']}").get_data(as_text=True)
    placeholder = page[page.index('class="card rca-panel"'):]
    placeholder = placeholder[:placeholder.index("</section>")]
    assert 'hx-trigger="load"' in placeholder
    assert re.search(r"<button[^>]*disabled[^>]*>Run RCA</button>", placeholder)
    loaded = world["client"].get(f"/incidents/{world['incident_id']}/rca", headers=HX).get_data(as_text=True)
    assert re.search(r"<button[^>]*>Run RCA</button>", loaded)
    assert not re.search(r"<button[^>]*disabled[^>]*>Run RCA</button>", loaded)


def test_panel_partial_for_a_member_offers_run_rca(world):
    resp = world["client"].get(f"/incidents/{world['incident_id']}/rca", headers=HX)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "<html" not in html
    assert "Root-cause analysis" in html and "No analysis yet" in html
    assert re.search(r'hx-post="/incidents/\d+/rca/run"', html) and ">Run RCA</button>" in html
    assert 'name="csrf_token"' in html and 'hx-trigger="every' not in html


def test_viewer_sees_the_panel_without_the_button_and_cannot_post(app, world, executor):
    executor(rca.InlineExecutor())
    html = world["viewer"].get(f"/incidents/{world['incident_id']}/rca", headers=HX).get_data(as_text=True)
    assert "Root-cause analysis" in html and "Run RCA" not in html
    resp = world["viewer"].post(f"/incidents/{world['incident_id']}/rca/run", headers=HX)
    assert resp.status_code == 403
    with app.app_context():
        assert db.session.query(RcaRun).count() == 0
        db.session.remove()


def test_running_panel_shows_progress_and_polls_then_shows_hypotheses(app, world, executor):
    stepper = executor(Stepper())
    url = f"/incidents/{world['incident_id']}/rca"
    resp = world["client"].post(f"{url}/run", headers=HX, data={"window_hours": "6"})
    assert resp.status_code == 200
    assert stepper.arrived.get(timeout=30) == "load context"
    stepper.go.release()
    assert stepper.arrived.get(timeout=30) == "incident alerts"
    html = world["client"].get(url, headers=HX).get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in html and f'hx-get="{url}"' in html
    assert "<progress" in html and "Stage: incident alerts" in html and 'aria-live="polite"' in html
    assert 'aria-current="step"' in html and "Cancel run" in html
    assert re.search(r"<button[^>]*disabled[^>]*>Run RCA</button>", html)
    stepper.finish()
    html = world["client"].get(url, headers=HX).get_data(as_text=True)
    assert 'hx-trigger="every' not in html and "succeeded" in html
    assert "checkout v2.4.1" in html and "<meter" in html and "Contribution</th>" in html
    assert f'<a href="/incidents/{world["past_id"]}">' in html
    assert f"Recurrence of {world['past_ref']}: Rolled back the cache TTL change" in html
    assert re.search(rf'<a href="/incidents/{world["past_id"]}#event-\d+">status: Status open → resolved: Rolled back', html)


def test_run_from_the_panel_renders_hypotheses_with_evidence(app, world, executor):
    executor(rca.InlineExecutor())
    resp = world["client"].post(f"/incidents/{world['incident_id']}/rca/run", headers=HX)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "RCA run #" in html and "started" in html
    hypotheses = re.findall(r'<li class="rca-hypothesis"', html)
    assert len(hypotheses) >= 2
    first = html.index('class="rca-hypothesis"')
    assert html.index("Deploy on checkout: checkout v2.4.1", first) < html.index("Recurrence of", first)
    assert re.search(r'<meter min="0" max="1"[^>]*value="0\.\d+"', html)
    assert '<th scope="col">Factor</th>' in html and "recency" in html
    assert "deploy on checkout: checkout v2.4.1 (v2.4.1)" in html and " UTC</time>" in html


def test_panel_shows_quota_and_conflict_errors(app, world, executor):
    executor(rca.InlineExecutor())
    url = f"/incidents/{world['incident_id']}/rca/run"
    for _ in range(2):
        assert world["client"].post(url, headers=HX).status_code == 200
    html = world["client"].post(url, headers=HX).get_data(as_text=True)
    assert 'role="alert"' in html and "allows 2 RCA analyses per hour" in html
    with app.app_context():
        assert db.session.query(RcaRun).count() == 2
        db.session.remove()


def test_bad_window_from_the_panel_is_refused(app, world, executor):
    executor(rca.InlineExecutor())
    html = world["client"].post(f"/incidents/{world['incident_id']}/rca/run", headers=HX,
                                data={"window_hours": "999"}).get_data(as_text=True)
    assert "whole number of hours from 1 to 72" in html
    with app.app_context():
        assert db.session.query(RcaRun).count() == 0
        db.session.remove()


def test_cancel_from_the_panel(app, world, executor):
    stepper = executor(Stepper())
    url = f"/incidents/{world['incident_id']}/rca"
    world["client"].post(f"{url}/run", headers=HX)
    assert stepper.arrived.get(timeout=30) == "load context"
    html = world["client"].post(f"{url}/cancel", headers=HX).get_data(as_text=True)
    assert "RCA run cancelled." in html and "was cancelled" in html and 'hx-trigger="every' not in html
    html = world["client"].post(f"{url}/cancel", headers=HX).get_data(as_text=True)
    assert "No RCA run of this incident is running." in html


def test_without_htmx_the_panel_is_a_page_and_posts_redirect(world, executor):
    executor(rca.InlineExecutor())
    url = f"/incidents/{world['incident_id']}/rca"
    page = world["client"].get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html and "<h1>INC-2 · Checkout 5xx spike</h1>" in html
    assert 'href="/static/css/rca.css"' in html
    resp = world["client"].post(f"{url}/run")
    assert resp.status_code == 303 and resp.headers["Location"].endswith(url)
    assert "started" in world["client"].get(url).get_data(as_text=True)


def test_other_orgs_incident_panel_is_404(world, make_member, sign_in):
    stranger = sign_in(make_member("bravo", "owner"))
    assert stranger.get(f"/incidents/{world['incident_id']}/rca", headers=HX).status_code == 404
    assert stranger.post(f"/incidents/{world['incident_id']}/rca/run", headers=HX).status_code == 404
