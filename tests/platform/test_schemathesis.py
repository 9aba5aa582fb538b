"""Property-based run of the whole API against its own generated ``/openapi.json``."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from zentro.extensions import limiter


@pytest.fixture
def api_schema(app):
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def creds(app, make_member, make_api_key, sign_in):
    owner = make_member("schema-org", role="owner", plan="enterprise")
    key_owner = make_member("schema-org", role="owner", plan="enterprise")
    key = make_api_key(key_owner)
    signed = sign_in(owner)
    cookie = signed.client.get_cookie("session")
    return {"key": key, "cookie": f"session={cookie.value}", "csrf": signed.csrf}


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_api(case, creds, app):
    with app.app_context():
        limiter.reset()
    security = case.operation.definition.raw.get("security", [])
    names = {n for req in security for n in req}
    if "bearerApiKey" in names:
        headers = {"Authorization": f"Bearer {creds['key']}"}
    else:
        headers = {"Cookie": creds["cookie"], "X-CSRFToken": creds["csrf"]}
    case.call_and_validate(headers=headers)
