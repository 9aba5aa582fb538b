"""Settings › Integrations: health at a glance for every role, admin-only actions, the add form (token shown once),
the HTMX Test button re-rendering the row, refused input, delete."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from tests.http_stub import stub_server  # noqa: F401
from tests.platform.test_isolation import org_state
from zentro.connectors.models import Integration
from zentro.extensions import db

PAGE = "/settings/integrations"
API = "/api/v1/integrations"
DD_KEY = "dd-page-key-77aa88bb99cc00dd"


@pytest.fixture
def owner(make_member):
    return make_member("alpha", "owner")


@pytest.fixture
def client(owner, sign_in):
    return sign_in(owner)


def _count(app):
    with app.app_context():
        n = db.session.scalar(sa.select(sa.func.count()).select_from(Integration))
        db.session.remove()
    return n


def test_viewer_sees_health_and_last_error_without_buttons(app, owner, client, make_member, sign_in, stub_server,
                                                           monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_INTEGRATIONS_ALLOW_PRIVATE", True)
    stub_server.route("GET", "/api/v1/validate", lambda req: (403, {"errors": ["Forbidden"]}))
    made = client.post(API, json={"provider": "datadog", "name": "DD prod", "config": {"api_url": stub_server.url},
                                  "secrets": {"api_key": DD_KEY}}).get_json()
    client.post(f"{API}/{made['id']}/test")
    viewer = sign_in(make_member("alpha", "viewer"))
    page = viewer.get(PAGE)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "DD prod" in html and "Datadog" in html and "ig-health-failing" in html and "✕ failing" in html
    assert "HTTP 403" in html and DD_KEY not in html
    assert 'id="add-integration"' not in html and "/test\"" not in html and "/delete\"" not in html
    assert 'name="provider"' not in html
    assert 'href="/settings/integrations"' in html  # the settings nav links the page


def test_admin_adds_a_source_and_sees_the_token_and_example_once(app, owner, client):
    form = client.get(f"{PAGE}?provider=pagerduty").get_data(as_text=True)
    assert 'name="config.api_url"' in form and 'name="secrets.api_key"' in form and 'type="password"' in form
    resp = client.post(PAGE, data={"provider": "pagerduty", "name": "Paging", "config.api_url": "",
                                   "secrets.api_key": "pd-page-secret-0123456789"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, html
    token = re.search(r'id="new-token" class="secret">(zentro_it_[^<]+)<', html).group(1)
    assert "/api/integrations/alerts?source=pagerduty" in html and "incident.triggered" in html
    assert "pd-page-secret-0123456789" not in html
    again = client.get(PAGE).get_data(as_text=True)
    assert token not in again and token[:18] in again and "Paging" in again and "○ untested" in again
    pushed = app.test_client().post("/api/integrations/alerts?source=pagerduty", headers={
        "Authorization": f"Bearer {token}"}, json={"event": {"event_type": "incident.triggered", "id": "E1",
                                                             "data": {"id": "PD1", "title": "Down"}}})
    assert pushed.status_code == 202


def test_refused_form_input_rerenders_with_the_reason_and_creates_nothing(app, owner, client):
    before = _count(app)
    resp = client.post(PAGE, data={"provider": "datadog", "name": "DD", "config.api_url": "ftp://x.example.com"})
    assert resp.status_code == 400 and "only http:// and https://" in resp.get_data(as_text=True)
    unknown = client.post(PAGE, data={"provider": "splunk", "name": "S"})
    assert unknown.status_code == 400 and "Choose a provider" in unknown.get_data(as_text=True)
    typed = client.post(PAGE, data={"provider": "smtp", "name": "Mail", "config.host": "smtp.example.com",
                                    "config.port": "many"})
    assert typed.status_code == 400 and "config.port" in typed.get_data(as_text=True)
    assert _count(app) == before


def test_htmx_test_button_rerenders_the_row(app, client, stub_server, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_INTEGRATIONS_ALLOW_PRIVATE", True)
    stub_server.route("GET", "/-/healthy", lambda req: (200, "OK"))
    made = client.post(API, json={"provider": "alertmanager", "name": "AM", "config": {"url": stub_server.url}}
                       ).get_json()
    resp = client.post(f"{PAGE}/{made['id']}/test", headers={"HX-Request": "true"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and html.lstrip().startswith("{#") is False
    assert f'id="integration-{made["id"]}"' in html and "● healthy" in html and "Test: healthy" in html
    assert "<html" not in html


def test_member_cannot_use_the_actions(app, owner, client, make_member, sign_in):
    made = client.post(API, json={"provider": "datadog", "name": "DD"}).get_json()
    member = sign_in(make_member("alpha", "member"))
    with app.app_context():
        before = org_state(owner.org_id)
        db.session.remove()
    for url in (PAGE, f"{PAGE}/{made['id']}/test", f"{PAGE}/{made['id']}/delete", f"{PAGE}/{made['id']}/rotate"):
        assert member.post(url, data={"provider": "datadog", "name": "x"}).status_code == 403, url
    with app.app_context():
        assert org_state(owner.org_id) == before
        db.session.remove()


def test_delete_and_rotate_from_the_page(app, client):
    made = client.post(API, json={"provider": "tenable", "name": "Scanner"}).get_json()
    old = made["ingest"]["token"]
    rotated = client.post(f"{PAGE}/{made['id']}/rotate").get_data(as_text=True)
    new = re.search(r'id="new-token" class="secret">(zentro_it_[^<]+)<', rotated).group(1)
    assert new != old
    headers = {"Authorization": f"Bearer {new}"}
    finding = {"finding_id": "F-1", "title": "Weak TLS", "severity": "low", "asset": "web-1"}
    assert app.test_client().post("/api/integrations/vulnerabilities", json=finding, headers=headers).status_code == 202
    resp = client.post(f"{PAGE}/{made['id']}/delete")
    assert resp.status_code == 302
    assert "Scanner" not in client.get(PAGE).get_data(as_text=True).split('id="integrations"')[1].split("</table>")[0]
    assert app.test_client().post("/api/integrations/vulnerabilities", json=finding, headers=headers).status_code == 401


def test_demo_seed_is_idempotent_and_honest(app, owner):
    from zentro.accounts.models import Org
    from zentro.connectors.integrations_demo import DEMO_INTEGRATIONS, seed

    with app.app_context():
        org = db.session.get(Org, owner.org_id)
        assert len(seed(org)) == len(DEMO_INTEGRATIONS)
        assert seed(db.session.get(Org, owner.org_id)) == []
        rows = db.session.scalars(sa.select(Integration).where(Integration.org_id == owner.org_id)).all()
        assert {r.status for r in rows} == {"untested"} and all(r.ingest_token_id for r in rows)
        db.session.remove()
