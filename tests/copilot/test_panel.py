"""The copilot panel on the incident page: it loads over HTMX, answers the form with and without
JavaScript, shows the references as links, refuses bad input in place, and stays within the org."""
from __future__ import annotations

import pytest

from tests.copilot.helpers import seed_org

HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def offline(app, monkeypatch):
    monkeypatch.setitem(app.config, "OPENAI_API_KEY", None)
    monkeypatch.setitem(app.config, "ZENTRO_REASONING_API_URL", None)


@pytest.fixture
def owner(make_member):
    return make_member("alpha", "owner")


@pytest.fixture
def seed(app, owner):
    return seed_org(app, owner.org_id)


def test_incident_page_hooks_the_panel_in(sign_in, owner, seed):
    html = sign_in(owner).get(f"/incidents/{seed.incident_id}").get_data(as_text=True)
    assert f'hx-get="/incidents/{seed.incident_id}/copilot"' in html and "js/copilot.js" in html


def test_ask_with_htmx_renders_the_answer_and_its_reference_links(sign_in, owner, seed):
    client = sign_in(owner)
    empty = client.get(f"/incidents/{seed.incident_id}/copilot", headers=HX).get_data(as_text=True)
    assert "Ask about this incident" in empty and 'name="thread_id"' not in empty
    resp = client.post(f"/incidents/{seed.incident_id}/copilot", data={"message": "What is the likely cause?"}, headers=HX)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "What is the likely cause?" in html
    assert "Deploy of checkout 42 — confidence 0.82" in html
    assert f'href="/incidents/{seed.incident_id}/rca"' in html and f'href="/incidents/{seed.past_id}"' in html
    assert 'name="thread_id"' in html  # the next question continues this conversation


def test_ask_without_javascript_redirects_back_to_the_incident(sign_in, owner, seed):
    client = sign_in(owner)
    resp = client.post(f"/incidents/{seed.incident_id}/copilot", data={"message": "what should we do?"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/incidents/{seed.incident_id}#copilot")
    html = client.get(f"/incidents/{seed.incident_id}/copilot").get_data(as_text=True)
    assert 'href="https://runbooks.example/checkout"' in html and 'rel="noopener noreferrer"' in html


@pytest.mark.parametrize("message", ["", "   ", "x" * 4001])
def test_bad_questions_are_refused_in_place(sign_in, owner, seed, message):
    resp = sign_in(owner).post(f"/incidents/{seed.incident_id}/copilot", data={"message": message}, headers=HX)
    assert resp.status_code == 400 and "Ask a question of 1 to 4000 characters." in resp.get_data(as_text=True)


def test_a_stale_or_foreign_thread_id_starts_a_new_thread(sign_in, owner, seed, make_member):
    client = sign_in(owner)
    resp = client.post(f"/incidents/{seed.incident_id}/copilot", data={"message": "status", "thread_id": "99999999999"},
                       headers=HX)
    assert resp.status_code == 200 and "Status open, severity high" in resp.get_data(as_text=True)


def test_other_org_and_csrf(app, sign_in, owner, seed, make_member):
    outsider = sign_in(make_member("bravo", "owner"))
    assert outsider.get(f"/incidents/{seed.incident_id}/copilot").status_code == 404
    assert outsider.post(f"/incidents/{seed.incident_id}/copilot", data={"message": "status"}).status_code == 404
    bare = app.test_client()
    bare.set_cookie("session", sign_in(owner).client.get_cookie("session").value)
    assert bare.post(f"/incidents/{seed.incident_id}/copilot", data={"message": "status"}).status_code == 403
