"""Schemathesis over the generated ``/openapi.json``: every operation, with valid credentials for one of
its declared security schemes, must answer without a 5xx and exactly as the document says (documented
status, content type, body schema, headers), accept what the document calls valid and reject what it
calls invalid, and refuse the call once the credentials are removed or wrong.

One test per operation (schemathesis parametrizes at collection), so the conftest empties the database
and resets the rate limiter before each; the ``api_world`` fixture then builds the org and credentials.
"""
from __future__ import annotations

import itertools

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from zentro import create_app
from zentro.extensions import limiter
from zentro.platform.openapi import MAX_ID

# Schemathesis parametrizes at collection, before the session's ``app`` fixture exists, so the document
# is read (in-process WSGI) from an app of its own; the requests go to the fixture's app, and
# test_fixture_app_serves_the_same_document checks that both serve the same document.
# (``schemathesis.pytest.from_fixture`` would avoid that, but with pytest 9 it fails on Node._nodeid.)
_spec_app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "TESTING": True, "SECRET_KEY": "spec-only"})
CONFIG = schemathesis.Config.from_dict({
    "checks": {
        # The defaults minus 3xx/5xx, plus 422: a valid request may reuse an Idempotency-Key an earlier
        # example sent with another body (check_422_is_idempotency_mismatch keeps that honest).
        "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]},
    },
})
schema = schemathesis.openapi.from_wsgi("/openapi.json", _spec_app, config=CONFIG)

# Coverage-phase cases are generated (and given auth) at collection time, before any credentials
# exist, so the auth provider writes placeholders that the test replaces with the fixture's values.
KEY, COOKIE, CSRF, INGEST = "@@api-key@@", "@@session-cookie@@", "@@csrf-token@@", "@@ingest-token@@"
_rotation = itertools.count()


@schema.auth(refresh_interval=None)
class ZentroAuth:
    """Credentials for one of the operation's declared security schemes, taking turns between them, so an
    operation that accepts a session or an API key is called with the cookie, Bearer and X-API-Key."""

    def get(self, case, ctx):
        options = [name for requirement in case.operation.definition.raw.get("security", []) for name in requirement]
        return options[next(_rotation) % len(options)] if options else None

    def set(self, case, scheme, ctx):
        if scheme == "cookieAuth":
            case.cookies = {**(case.cookies or {}), "session": COOKIE}
            case.headers["X-CSRFToken"] = CSRF  # unsafe methods need it with a session
        elif scheme == "bearerApiKey":
            case.headers["Authorization"] = f"Bearer {KEY}"
        elif scheme == "headerApiKey":
            case.headers["X-API-Key"] = KEY
        elif scheme == "ingestToken":
            case.headers["Authorization"] = f"Bearer {INGEST}"
        else:
            raise AssertionError(f"no credentials for security scheme {scheme}")


SEEDED_IDS = (1, 2, 3)  # the api_world fixture's API keys and ingest tokens of the signed-in owner


@schema.hook
def flatmap_path_parameters(ctx, path_parameters):
    """Ids are drawn from 0–2^31-1, so a revocation would almost never find anything: two times in three,
    swap a valid id for a seeded one (invalid ids, from negative generation, stay as they are)."""
    if path_parameters and all(isinstance(v, int) and 0 <= v <= MAX_ID for v in path_parameters.values()):
        seeded = st.fixed_dictionaries({name: st.sampled_from(SEEDED_IDS) for name in path_parameters})
        return st.one_of(st.just(path_parameters), seeded, seeded)
    return st.just(path_parameters)


def check_422_is_idempotency_mismatch(ctx, response, case):
    """422 is allowed for valid requests above only as the Idempotency-Key mismatch it documents."""
    if response.status_code == 422:
        assert case.headers and "Idempotency-Key" in case.headers, "422 without an Idempotency-Key"
        assert response.json()["error_code"] == "IDEMPOTENCY_MISMATCH", response.text


class World:
    """This test's credentials, and what each security scheme's calls were answered."""

    def __init__(self, credentials: dict[str, str]):
        self.credentials = credentials
        self.declared: set[str] = set()
        self.answers: dict[str | None, set[int]] = {}  # statuses of schema-valid calls, by scheme

    def prepare(self, case) -> str | None:
        """Swap the auth provider's placeholders for real credentials; return the scheme they were for."""
        headers, cookies = case.headers or {}, case.cookies if hasattr(case.cookies, "items") else {}
        scheme = ("bearerApiKey" if KEY in str(headers.get("Authorization", "")) else
                  "ingestToken" if INGEST in str(headers.get("Authorization", "")) else
                  "headerApiKey" if KEY in str(headers.get("X-API-Key", "")) else
                  "cookieAuth" if cookies.get("session") == COOKIE else None)
        for container in (headers, cookies):
            for name, value in list(container.items()):
                if isinstance(value, str):
                    for placeholder, real in self.credentials.items():
                        value = value.replace(placeholder, real)
                    container[name] = value
        self.declared = {name for requirement in case.operation.definition.raw.get("security", []) for name in requirement}
        return scheme

    def record(self, case, scheme: str | None, status: int) -> None:
        if case.meta is None or not case.meta.generation.mode.is_negative:
            self.answers.setdefault(scheme, set()).add(status)

    def problems(self) -> list[str]:
        """Each declared scheme's credentials must have been accepted (anything but 401/403/405 to a
        schema-valid call), and some call must have got a 2xx: ignored_auth replays only those, without
        and with wrong credentials, expecting 401/403."""
        out = [f"{scheme} credentials were never accepted: {sorted(self.answers.get(scheme, []))}"
               for scheme in sorted(self.declared) if not self.answers.get(scheme, set()) - {401, 403, 405}]
        if not any(200 <= s < 300 for statuses in self.answers.values() for s in statuses):
            out.append(f"no schema-valid call was answered 2xx: {self.answers}")
        return out


@pytest.fixture
def api_world(request, make_member, make_api_key, make_ingest_token, sign_in):
    """An enterprise org (plan limits out of the way) with a signed-in owner, some API keys of that owner
    and ingest tokens for the revoke operations to find (ids 1–3), and the API key used for the API-key
    calls, which belongs to a second owner so that the session's revocations cannot revoke it."""
    owner = make_member("schema-org", role="owner", plan="enterprise")
    key_owner = make_member("schema-org", role="owner", plan="enterprise")
    for i in SEEDED_IDS:
        make_api_key(owner, name=f"owner key {i}")
        make_ingest_token(owner, name=f"source {i}")
    signed = sign_in(owner)
    world = World({KEY: make_api_key(key_owner), INGEST: make_ingest_token(key_owner, name="schema source"), COOKIE: signed.client.get_cookie("session").value,
                   CSRF: signed.csrf})
    failed_before = request.session.testsfailed
    yield world
    if request.session.testsfailed == failed_before and world.problems():
        pytest.fail("; ".join(world.problems()))


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api(case, api_world, app):
    with app.app_context():
        limiter.reset()  # thousands of calls per run; the limits have tests of their own
    scheme = api_world.prepare(case)
    response = case.call_and_validate(app=app, additional_checks=[check_422_is_idempotency_mismatch])
    api_world.record(case, scheme, response.status_code)


def test_fixture_app_serves_the_same_document(app):
    assert app.test_client().get("/openapi.json").get_json() == schema.raw_schema


@pytest.mark.parametrize("path", ["/api/user/api-keys", "/api/user/alert-ingest-tokens"])
def test_nul_in_a_json_string_is_not_a_server_error(path, make_member, sign_in):
    """Schemathesis seldom puts U+0000 into a name; PostgreSQL text cannot store it."""
    signed = sign_in(make_member("schema-org", role="owner", plan="enterprise"))
    assert signed.post(path, json={"name": "a\u0000b"}).status_code < 500
