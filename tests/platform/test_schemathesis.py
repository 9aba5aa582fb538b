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
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from zentro import create_app
from zentro.extensions import limiter
from zentro.platform.openapi import MAX_ID
from zentro.platform.routes import REGISTRY

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
ASSESSOR, CRON = "@@assessor-token@@", "@@cron-secret@@"
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
        elif scheme == "assessorToken":
            case.headers["Authorization"] = f"Bearer {ASSESSOR}"
        elif scheme == "cronSecret":
            case.headers["Authorization"] = f"Bearer {CRON}"
        else:
            raise AssertionError(f"no credentials for security scheme {scheme}")


SEEDED_IDS = (1, 2, 3)  # the api_world fixture's API keys and ingest tokens of the signed-in owner

# Operations whose valid input depends on more than the JSON Schema can say; for them a 400 to a
# schema-valid request is expected, so the positive-data check is off (their tests cover the rules).
CROSS_FIELD_RULES = {
    "POST /api/integrations/alerts": "?source= picks a vendor format the documented (Zentro) body need not match",
    "POST /api/integrations/vulnerabilities": "?source= picks a scanner format the documented (generic) body need not match",
    "POST /api/v1/services/{service_id}/sli": "window_end must be after window_start, and not in the future",
    "POST /api/v1/services/{service_id}/changes": "occurred_at may not be more than 5 minutes in the future",
    "PATCH /api/deployment/profile": "the tier sets retention minimums and (FedRAMP) the data region",
    "POST /api/governance/compliance/attestations": "due_at in the future, at most two years ahead; owner_id a member",
    "POST /api/governance/compliance/exceptions": "expires_at in the future, at most one year ahead; approver an owner/admin",
    "POST /api/governance/compliance/evidence-requests": "dueAt after requestedAt (default now), at most two years "
                                                          "ahead; requestedAt not in the future; ownerId a member",
    "PATCH /api/governance/compliance/evidence-requests/{request_id}": "dueAt after the request date, at most two years "
                                                                        "ahead; ownerId a member",
    "POST /api/governance/compliance/evidence-requests/{request_id}/fulfil": "needs bundleId or fileRef (either one)",
    "POST /api/governance/compliance/gap-remediations": "due_at in the future, at most two years ahead",
    "POST /api/governance/compliance/checkpoints": "due_at at most a year back and two years ahead; owner_id a member "
                                                    "(member role or above)",
    "PATCH /api/governance/compliance/checkpoints/{checkpoint_id}": "due_at at most a year back and two years ahead; "
                                                                    "owner_id a member (member role or above)",
    "PUT /api/governance/compliance/committee-settings": "densityWarn must stay below densityCritical (merged with the "
                                                         "stored values)",
    "PATCH /api/governance/compliance/gap-remediations/{remediation_id}": "due_at in the future, at most two years ahead",
    "POST /api/governance/third-party/vendors": "report_expires_at required with a report, absent without, within five years",
    "PATCH /api/governance/third-party/vendors/{vendor_id}": "report_expires_at required with a report, absent without, "
                                                              "within five years",
    "POST /api/automations/dry-run": "exactly one of playbook_id or steps; a block_address cidr must parse as an IP network",
    "POST /api/v1/playbooks": "a block_address step's cidr must parse as an IP address or network",
    "PATCH /api/v1/playbooks/{playbook_id}": "a block_address step's cidr must parse as an IP address or network",
    "POST /api/v1/guardrails": "a change freeze must end after it starts",
    "PATCH /api/v1/guardrails/{guardrail_id}": "params are validated against the guardrail's kind, which the body does not "
                                               "carry",
    "PUT /api/v1/digests/{slug}/schedule": "cron must parse as five-field crontab; channels must be ones the digest "
                                           "offers; options are the digest's preview report query fields "
                                           "(tests/notify/test_schedules.py)",
    "POST /api/copilot/chat": "thread_id and incident_id need a signed-in caller (anonymous: 400) and must name the "
                              "caller's own thread and an incident of the org",
    "POST /api/v1/webhooks": "the url must be http(s) with a host that resolves to a public address (private ones only "
                             "with ZENTRO_WEBHOOK_ALLOW_PRIVATE), checked against DNS (tests/notify/test_webhooks_api.py)",
    "PATCH /api/v1/webhooks/{webhook_id}": "a new url is checked like on create: http(s), resolving to a public address",
    "GET /api/governance/compliance/incident-summary": "start before end, at most 366 days, not in the future; "
                                                        "services must be this org's (tests/compliance/test_report_jobs.py)",
    "GET /api/governance/compliance/compliance-posture": "start before end, at most 366 days, not in the future "
                                                         "(tests/compliance/test_report_jobs.py)",
    "POST /api/v1/reports/generate": "start before end within 366 days; service_ids only for incident-summary and "
                                     "this org's, frameworks only for compliance-posture (tests/compliance/"
                                     "test_report_jobs_api.py)",
    "POST /api/v1/integrations": "config and secrets are validated against the strict model of the provider the body "
                                 "names; URLs must be http(s) without credentials, query or fragment, and literal "
                                 "private IPs are refused (tests/connectors/test_integrations_api.py)",
    "PATCH /api/v1/integrations/{integration_id}": "config and secrets are validated against the stored integration's "
                                                   "provider; rotate_ingest_token only for sources",
    **{f"{method} /api/{backend}/{{rest}}": "the proxied path may not hold '.'/'..' segments, a scheme, backslashes or "
                                            "control characters (400: it must stay under the backend's base URL)"
       for backend in ("reasoning", "robot") for method in ("GET", "POST", "PUT", "PATCH", "DELETE")},
}
# Operations where a 2xx needs data a generator will not guess; every other check still applies.
NO_2XX_EXPECTED = {
    "POST /api/governance/compliance/obligation-consolidation/steps": "needs the key of a current crossover cluster of "
                                                                      "the org (tests/compliance/test_obligation_reports.py)",
    "POST /api/v1/services/{service_id}/dependencies": "the body names a second service by id, drawn at random",
    "POST /api/v1/services/{service_id}/sli": "a valid window (end after start, not in the future) is a cross-field rule",
    "DELETE /api/v1/services/{service_id}/dependencies/{depends_on_id}": "needs one of the 3 seeded edges among 9 id "
                                                                        "pairs, and each edge can be removed once",
    "POST /api/governance/compliance/attestations": "needs a future due date, an org member as owner and a control not yet "
                                                     "assigned (one attestation per control)",
    "POST /api/governance/compliance/exceptions": "needs a future expiry within a year and an owner/admin approver by id",
    "POST /api/governance/compliance/checkpoints": "needs a due date at most a year back and two years ahead and, when an "
                                                   "owner is given, a member by id (tests/compliance/test_checkpoints.py)",
    "POST /api/governance/compliance/evidence-requests": "needs a due date within two years after the request date and "
                                                          "catalog control tags (tests/compliance/test_evidence_requests.py)",
    "POST /api/automations/dry-run": "needs exactly one of playbook_id or steps, naming this org's playbook or services by "
                                     "id (tests/automations/test_api.py)",
    "POST /api/v1/webhooks": "needs a URL resolving to a public address; the test run has no DNS and generated hosts "
                             "do not exist (tests/notify/test_webhooks_api.py creates endpoints on 127.0.0.1 with "
                             "ZENTRO_WEBHOOK_ALLOW_PRIVATE)",
    "POST /api/automations/execute": "needs a fresh, unused dry-run's id with its exact 64-hex plan_hash and non-empty notes",
    "POST /api/automations/remediate": "as execute, and an accepted policy covering the plan",
    "POST /api/v1/remediations/{remediation_id}/apply": "needs non-empty notes, a fresh unused preview and an accepted "
                                                        "policy covering its plan",
    "POST /api/integrations/slack/approvals": "a 2xx needs a Slack-signed block_actions form body "
                                              "(tests/automations/test_slack_api.py)",
    "POST /api/webhooks/lemonsqueezy": "a 2xx needs a body signed with the Lemon Squeezy secret in X-Signature "
                                       "(tests/billing/test_webhook.py)",
    "POST /api/governance/compliance/evidence-requests/{request_id}/fulfil": "needs an open request among the seeded ids "
                                                                              "and either bundleId (of the org) or "
                                                                              "fileRef; a generated body seldom has both "
                                                                              "(tests/compliance/test_evidence_requests.py)",
    "POST /api/v1/billing/portal": "needs a Lemon Squeezy subscription, which only a signed webhook creates "
                                   "(tests/billing/test_billing_api.py)",
    "PATCH /api/v1/integrations/{integration_id}": "config and secrets must match the stored integration's provider, "
                                                   "which the path id alone does not say",
    "GET /api/v1/gates/{service}": "names a service by id or name as free text; generated strings do not name a seeded "
                                   "service (tests/reliability/test_gates_api.py covers id, name and unknown)",
    "POST /api/approvals/policy-suggestions/promote": "needs the action_key of an action approved N times and never "
                                                      "rejected; a generator will not guess one (tests/automations/"
                                                      "test_suggestions.py)",
}
# Operations that accept several body formats (detected from the body) while the spec documents one:
# a body that breaks the documented schema may still be another vendor's valid payload.
MULTI_FORMAT = {op for op in CROSS_FIELD_RULES if op.startswith("POST /api/integrations/")}


@schema.hook
def flatmap_path_parameters(ctx, path_parameters):
    """Ids are drawn from 0–2^31-1, so a revocation would almost never find anything: two times in three,
    swap a valid id for a seeded one (invalid ids, from negative generation, stay as they are)."""
    if path_parameters and all(isinstance(v, int) and 0 <= v <= MAX_ID for v in path_parameters.values()):
        seeded = st.fixed_dictionaries({name: st.sampled_from(SEEDED_IDS) for name in path_parameters})
        return st.one_of(st.just(path_parameters), seeded, seeded)
    return st.just(path_parameters)


@schema.hook
def flatmap_body(ctx, body):
    """Bodies that name a tenant object by id (``incident_id``, e.g. a copilot message grounded in an incident):
    sometimes swap a valid id for a seeded one, as for path parameters, so a schema-valid call can succeed."""
    if isinstance(body, dict) and isinstance(body.get("incident_id"), int) and 0 <= body["incident_id"] <= MAX_ID:
        seeded = st.sampled_from(SEEDED_IDS).map(lambda i: {**body, "incident_id": i})
        return st.one_of(st.just(body), seeded, seeded)
    return st.just(body)


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
        self.operation = ""
        self.answers: dict[str | None, set[int]] = {}  # statuses of schema-valid calls, by scheme

    def prepare(self, case) -> str | None:
        """Swap the auth provider's placeholders for real credentials; return the scheme they were for."""
        headers, cookies = case.headers or {}, case.cookies if hasattr(case.cookies, "items") else {}
        scheme = ("bearerApiKey" if KEY in str(headers.get("Authorization", "")) else
                  "ingestToken" if INGEST in str(headers.get("Authorization", "")) else
                  "assessorToken" if ASSESSOR in str(headers.get("Authorization", "")) else
                  "cronSecret" if CRON in str(headers.get("Authorization", "")) else
                  "headerApiKey" if KEY in str(headers.get("X-API-Key", "")) else
                  "cookieAuth" if cookies.get("session") == COOKIE else None)
        for container in (headers, cookies):
            for name, value in list(container.items()):
                if isinstance(value, str):
                    for placeholder, real in self.credentials.items():
                        value = value.replace(placeholder, real)
                    container[name] = value
        self.operation = case.operation.label
        self.declared = {name for requirement in case.operation.definition.raw.get("security", []) for name in requirement}
        return scheme

    def record(self, case, scheme: str | None, status: int) -> None:
        if case.meta is None or not case.meta.generation.mode.is_negative:
            self.answers.setdefault(scheme, set()).add(status)

    def problems(self) -> list[str]:
        """Each declared scheme's credentials must have been accepted (anything but 401/403/405 to a
        schema-valid call), and some call must have got a 2xx: ignored_auth replays only those, without
        and with wrong credentials, expecting 401/403."""
        out = [f"[{self.operation}] {scheme} credentials were never accepted: {sorted(self.answers.get(scheme, []))}"
               for scheme in sorted(self.declared) if not self.answers.get(scheme, set()) - {401, 403, 405}]
        if self.operation not in NO_2XX_EXPECTED and not any(
                200 <= s < 300 for statuses in self.answers.values() for s in statuses):
            out.append(f"[{self.operation}] no schema-valid call was answered 2xx: {self.answers}")
        return out


def _seed_every_model(app, member) -> None:
    """Three of every tenant-owned object the isolation harness knows (so <id> routes find some), and a
    running RCA run so that cancel has something to cancel."""
    from tests.platform.test_isolation import FACTORIES
    from zentro.accounts.models import Org, User
    from zentro.audit.service import SYSTEM
    from zentro.extensions import db
    from zentro.incidents.models import RcaRun
    from zentro.incidents.service import create_incident

    from zentro.reliability.models import ServiceDependency

    with app.app_context():
        org, user = db.session.get(Org, member.org_id), db.session.get(User, member.user_id)
        # incident 1 with run 1 still running (cancel has something to cancel), then runs on 2 and 3
        first = create_incident(org.id, title="schema run", severity="low", actor=SYSTEM)
        db.session.add(RcaRun(org_id=org.id, incident_id=first.id, running_incident_id=first.id, status="running"))
        db.session.flush()
        for make in FACTORIES.values():
            for _ in SEEDED_IDS:
                make(org, user)
        for incident_id in SEEDED_IDS[1:]:
            db.session.add(RcaRun(org_id=org.id, incident_id=incident_id, status="succeeded", progress=100))
        for a, b in itertools.combinations(SEEDED_IDS, 2):  # 1 → 2, 1 → 3, 2 → 3 (acyclic), to be removed
            db.session.add(ServiceDependency(org_id=org.id, service_id=a, depends_on_id=b))
        db.session.commit()
        db.session.remove()


@pytest.fixture
def api_world(request, app, monkeypatch, make_member, make_api_key, make_ingest_token, sign_in):
    """An enterprise org (plan limits out of the way) with a signed-in owner, some API keys of that owner
    and ingest tokens for the revoke operations to find (ids 1–3), and the API key used for the API-key
    calls, which belongs to a second owner so that the session's revocations cannot revoke it."""
    owner = make_member("schema-org", role="owner", plan="enterprise")
    key_owner = make_member("schema-org", role="owner", plan="enterprise")
    from zentro.incidents import rca, rca_api

    rca.set_executor(app, rca.InlineExecutor())  # runs finish inside the request
    monkeypatch.setattr(rca_api, "SSE_MAX_SECONDS", 0.3)  # a seeded running run never finishes
    monkeypatch.setattr(rca_api, "SSE_POLL_SECONDS", 0.05)
    _seed_every_model(app, owner)
    from zentro.compliance import report_jobs

    from zentro.compliance.models import ReportJob
    from zentro.extensions import db as database

    with app.app_context():  # the seeded (failed) report jobs are built, so their downloads have something to answer
        seeded = database.session.scalars(database.select(ReportJob.id).where(ReportJob.org_id == owner.org_id)).all()
        database.session.execute(database.update(ReportJob).where(ReportJob.id.in_(seeded)).values(status="queued"))
        database.session.commit()
        database.session.remove()
    for job_id in seeded:
        assert report_jobs.execute(app, job_id)
    # the connector proxies forward to a real local backend (unconfigured they answer 503 by contract)
    from tests.http_stub import StubServer
    backend = StubServer().route("*", "/", lambda req: (200, {"ok": True}))
    request.addfinalizer(backend.stop)
    monkeypatch.setitem(app.config, "ZENTRO_CONNECTORS_ALLOW_PRIVATE", True)
    for key in ("ZENTRO_ROBOT_API_URL", "ZENTRO_REASONING_API_URL"):
        monkeypatch.setitem(app.config, key, backend.url)
    # unsigned Slack calls must answer 401 (unset secret: 503 by contract)
    monkeypatch.setitem(app.config, "ZENTRO_SLACK_SIGNING_SECRET", "schema-slack-signing-secret")
    # unsigned Lemon Squeezy calls must answer 401 (unset secret: 503 by contract); report jobs build in the request
    monkeypatch.setitem(app.config, "ZENTRO_LEMONSQUEEZY_SIGNING_SECRET", "schema-lemonsqueezy-signing-secret")
    monkeypatch.setitem(app.config, "ZENTRO_REPORT_JOB_EXECUTION", "inline")
    for plan in ("PRO", "ENTERPRISE"):  # checkout answers a URL when the store is configured
        monkeypatch.setitem(app.config, f"ZENTRO_LEMONSQUEEZY_CHECKOUT_URL_{plan}", f"https://schema.lemonsqueezy.com/buy/{plan}")
    signed = sign_in(owner)
    cron_secret = "schema-cron-secret-" + "x" * 24
    for meta in REGISTRY.values():  # every cron entrypoint is switched on, with one secret
        if meta.cron_secret:
            monkeypatch.setitem(app.config, meta.cron_secret, cron_secret)
    from zentro.audit.service import SYSTEM
    from zentro.compliance.assessor import RESOURCES, create_token
    from zentro.extensions import db

    with app.app_context():  # an assessor token granted every resource, in the owner's org
        _, assessor = create_token(owner.org_id, "schema assessor", list(RESOURCES), 30, SYSTEM)
        db.session.commit()
    world = World({KEY: make_api_key(key_owner), INGEST: make_ingest_token(key_owner, name="schema source"),
                   COOKIE: signed.client.get_cookie("session").value, CSRF: signed.csrf,
                   ASSESSOR: assessor, CRON: cron_secret})
    failed_before = request.session.testsfailed
    yield world
    rca.set_executor(app, None)
    if request.session.testsfailed == failed_before and world.problems():
        pytest.fail("; ".join(world.problems()))


@schema.parametrize()
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api(case, api_world, app):
    with app.app_context():
        limiter.reset()  # thousands of calls per run; the limits have tests of their own
    scheme = api_world.prepare(case)
    excluded = []
    if case.operation.label in CROSS_FIELD_RULES:
        excluded.append(positive_data_acceptance)
    if case.operation.label in MULTI_FORMAT:
        excluded.append(negative_data_rejection)
    response = case.call_and_validate(app=app, additional_checks=[check_422_is_idempotency_mismatch],
                                      excluded_checks=excluded)
    api_world.record(case, scheme, response.status_code)


def test_fixture_app_serves_the_same_document(app):
    assert app.test_client().get("/openapi.json").get_json() == schema.raw_schema


@pytest.mark.parametrize("path", ["/api/user/api-keys", "/api/user/alert-ingest-tokens"])
def test_nul_in_a_json_string_is_not_a_server_error(path, make_member, sign_in):
    """Schemathesis seldom puts U+0000 into a name; PostgreSQL text cannot store it."""
    signed = sign_in(make_member("schema-org", role="owner", plan="enterprise"))
    assert signed.post(path, json={"name": "a\u0000b"}).status_code < 500
