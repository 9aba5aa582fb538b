"""The assessor-access and governance pages: forms, the secret shown once, refusals re-rendered."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from zentro.accounts.models import AssessorToken
from zentro.audit.models import OrgGovernance
from zentro.extensions import db
from zentro.platform.types import utcnow

try:
    from .governance_helpers import DAY, audit_at, bearer, incident, new_token
except ImportError:  # collected without the package __init__
    from governance_helpers import DAY, audit_at, bearer, incident, new_token

TOKENS = "/compliance/assessor-tokens"
GOV = "/compliance/governance"


@pytest.fixture
def owner(make_member):
    return make_member("acme", "owner")


def _tokens(app) -> int:
    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(AssessorToken))
        db.session.remove()
    return n


def test_create_a_token_and_see_the_secret_once(app, owner, sign_in):
    s = sign_in(owner)
    page = s.get(TOKENS).get_data(as_text=True)
    assert 'name="resources" value="workbook"' in page and 'name="resources" value="fedramp-poam"' in page
    resp = s.post(TOKENS, data={"name": "Big Four audit", "resources": ["crosswalk", "workbook"], "expires_in_days": "90"})
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    secret = re.search(r'id="new-secret"[^>]*>(zentro_ca_[^<]+)<', html).group(1)
    assert "Big Four audit" in html and "copy it now" in html
    assert app.test_client().get("/api/governance/compliance/assessor/crosswalk",
                                 headers=bearer(secret)).status_code in (200, 404)  # 404 only if crosswalk is not built
    again = s.get(TOKENS).get_data(as_text=True)
    assert secret not in again and "Big Four audit" in again and "pill-ok" in again
    with app.app_context():
        tok = db.session.scalar(select(AssessorToken))
        assert tok.resource_list == ["crosswalk", "workbook"]
        assert abs((tok.expires_at - utcnow()) - 90 * DAY).total_seconds() < 120
        db.session.remove()


@pytest.mark.parametrize("form,message", [
    ({"name": "Audit", "expires_in_days": "30"}, "at least one resource"),
    ({"name": "Audit", "resources": ["crosswalk"], "expires_in_days": "soon"}, "expiry"),
    ({"name": "Audit", "resources": ["crosswalk"], "expires_in_days": "400"}, "expires_in_days"),
    ({"name": "Audit", "resources": ["audit-log"], "expires_in_days": "30"}, "Unknown resource"),
    ({"name": "  ", "resources": ["crosswalk"], "expires_in_days": "30"}, "name"),
])
def test_bad_token_forms_rerender_with_the_reason(app, owner, sign_in, form, message):
    resp = sign_in(owner).post(TOKENS, data=form)
    assert resp.status_code == 400 and message in resp.get_data(as_text=True)
    assert "Audit" in resp.get_data(as_text=True) or not form["name"].strip()  # what was typed is kept
    assert _tokens(app) == 0


def test_viewers_see_tokens_but_cannot_manage_them(app, owner, make_member, sign_in):
    tok_id, _ = new_token(app, owner.org_id, ["crosswalk"], name="Visible to viewers")
    v = sign_in(make_member("acme", "viewer"))
    page = v.get(TOKENS).get_data(as_text=True)
    assert "Visible to viewers" in page and "Only owners and admins" in page and "Create token" not in page
    assert v.post(TOKENS, data={"name": "x", "resources": ["crosswalk"], "expires_in_days": "30"}).status_code == 403
    assert v.post(f"{TOKENS}/{tok_id}/revoke").status_code == 403
    assert _tokens(app) == 1


def test_revoke_from_the_page(app, owner, sign_in):
    tok_id, secret = new_token(app, owner.org_id, ["crosswalk"])
    s = sign_in(owner)
    resp = s.post(f"{TOKENS}/{tok_id}/revoke")
    assert resp.status_code == 302
    assert "revoked" in s.get(TOKENS).get_data(as_text=True)
    assert app.test_client().get("/api/governance/compliance/assessor/crosswalk", headers=bearer(secret)).status_code == 401


def test_another_orgs_token_cannot_be_revoked_from_the_page(app, owner, make_member, sign_in):
    tok_id, _ = new_token(app, owner.org_id, ["crosswalk"], name="acme private")
    b = sign_in(make_member("bravo", "owner"))
    assert b.post(f"{TOKENS}/{tok_id}/revoke").status_code == 404
    assert "acme private" not in b.get(TOKENS).get_data(as_text=True)
    with app.app_context():
        assert db.session.get(AssessorToken, tok_id).revoked_at is None


def test_governance_page_shows_profile_retention_holds_and_the_preview(app, owner, sign_in):
    now = utcnow()
    with app.app_context():
        held = incident(owner.org_id, now - 400 * DAY, status="closed", hold=True, title="Regulator inquiry")
        audit_at(owner.org_id, now - 400 * DAY, "old.about.held", target_type="incident", target_id=held.id)
        audit_at(owner.org_id, now - 400 * DAY, "old.one")
        audit_at(owner.org_id, now - 400 * DAY, "old.two")
        db.session.commit()
        ref = held.ref
    s = sign_in(owner)
    html = s.get(GOV).get_data(as_text=True)
    assert "Commercial" in html and "365</strong> days" in html
    assert ref in html and "Regulator inquiry" in html and "Preview purge" in html
    assert 'data-testid="purge-audit"' not in html  # counted only on request
    preview = s.get(GOV + "?preview=1").get_data(as_text=True)
    counts = dict(re.findall(r'data-testid="([a-z-]+)">(\d+)<', preview))
    assert counts == {"purge-audit": "2", "purge-incidents": "0", "kept-audit": "1", "kept-incidents": "1"}


def test_saving_the_profile_from_the_page(app, owner, sign_in):
    s = sign_in(owner)
    resp = s.post(GOV + "/profile", data={"tier": "hipaa", "data_region": "us", "boundary": "",
                                           "audit_retention_days": "", "incident_retention_days": "2500"})
    assert resp.status_code == 302
    html = s.get(GOV).get_data(as_text=True)
    assert "HIPAA" in html and "2190</strong> days" in html and "2500</strong> days" in html


@pytest.mark.parametrize("form,message", [
    ({"tier": "hipaa", "data_region": "us", "audit_retention_days": "365"}, "2190"),
    ({"tier": "fedramp-moderate", "data_region": "eu"}, "United States"),
    ({"tier": "commercial", "data_region": "us", "audit_retention_days": "ten"}, "whole number"),
    ({"tier": "commercial", "data_region": "us", "audit_retention_days": "20"}, "30–3650"),
    ({"tier": "moon", "data_region": "us"}, "Choose a tier"),
    ({"tier": "commercial", "data_region": "mars"}, "Choose a data region"),
])
def test_refused_profile_forms_rerender_with_the_reason(app, owner, sign_in, form, message):
    resp = sign_in(owner).post(GOV + "/profile", data={"boundary": "", "audit_retention_days": "",
                                                       "incident_retention_days": "", **form})
    assert resp.status_code == 400 and message in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(OrgGovernance, owner.org_id) is None
        db.session.remove()


def test_viewers_read_governance_but_cannot_save(app, owner, make_member, sign_in):
    v = sign_in(make_member("acme", "viewer"))
    html = v.get(GOV).get_data(as_text=True)
    assert "Only owners and admins can change" in html and "Save profile" not in html
    assert v.post(GOV + "/profile", data={"tier": "pci", "data_region": "us"}).status_code == 403
    with app.app_context():
        assert db.session.get(OrgGovernance, owner.org_id) is None
        db.session.remove()
