"""Copilot API: guided answers grounded in seeded records (the references name those rows), the model
fallback chain against real local servers (OpenAI-compatible SSE, the reasoning backend), SSE framing,
anonymous use and its per-address limit, and threads that belong to one user."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from tests.compliance.register_helpers import Api, error_of
from tests.copilot.helpers import NOW, refs, seed_org, sse_events
from tests.http_stub import stub_server  # noqa: F401
from zentro.copilot import guided
from zentro.copilot.models import CopilotMessage, CopilotThread
from zentro.extensions import db

CHAT = "/api/copilot/chat"
THREADS = "/api/copilot/threads"


@pytest.fixture
def owner(make_member):
    return make_member("alpha", "owner")


@pytest.fixture
def seed(app, owner):
    return seed_org(app, owner.org_id)


@pytest.fixture
def api(app, owner, make_api_key):
    return Api(app.test_client(), make_api_key(owner))


@pytest.fixture(autouse=True)
def offline(app, monkeypatch):
    """Every test starts in the offline guided mode; tests switch models on explicitly."""
    monkeypatch.setitem(app.config, "OPENAI_API_KEY", None)
    monkeypatch.setitem(app.config, "ZENTRO_REASONING_API_URL", None)


def ask(api, message, **extra):
    resp = api.post(CHAT, json={"message": message, **extra})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def stored_count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


# --- the guided mode, grounded -----------------------------------------------------------------------

def test_status_answer_cites_the_incident_its_service_and_latest_events(api, seed):
    body = ask(api, "What's the status?", incident_id=seed.incident_id)
    assert body["mode"] == "guided" and body["detail"] == ""
    assert f"INC-{seed.incident_number} · Checkout latency spike" in body["answer"]
    assert "Status open, severity high" in body["answer"] and "checkout (tier 0)" in body["answer"]
    assert "p99 at 4 s since 11:30" in body["answer"]
    assert {("incident", seed.incident_id), ("service", seed.service_id),
            ("timeline_event", seed.note_id)} <= refs(body)
    incident_ref = next(r for r in body["references"] if r["type"] == "incident")
    assert incident_ref["url"] == f"/incidents/{seed.incident_id}" and incident_ref["label"].startswith("INC-")


def test_cause_answer_gives_the_rca_hypotheses_with_confidence_and_evidence(api, seed):
    body = ask(api, "What is the likely root cause?", incident_id=seed.incident_id)
    assert f"From RCA run #{seed.run_id}" in body["answer"]
    assert "#1 Deploy of checkout 42 — confidence 0.82; evidence: timeline event #%d, incident #%d" % (
        seed.note_id, seed.past_id) in body["answer"]
    got = refs(body)
    assert {("rca_run", seed.run_id), ("timeline_event", seed.note_id), ("incident", seed.past_id)} <= got
    assert ("incident", 999_999) not in got  # evidence of a row that no longer exists is not linked


def test_what_to_do_names_runbook_targeting_playbook_and_pending_approval(api, seed):
    body = ask(api, f"What should we do next on INC-{seed.incident_number}?")
    got = refs(body)
    assert {("runbook", seed.service_id), ("playbook", seed.playbook_id), ("approval", seed.approval_id)} <= got
    assert "https://runbooks.example/checkout" in body["answer"] and "Restart checkout" in body["answer"]
    assert "Scale search" not in body["answer"]  # that playbook targets another service
    assert f"Approval #{seed.approval_id} is pending" in body["answer"]
    urls = {(r["type"], r["id"]): r["url"] for r in body["references"]}
    assert urls[("playbook", seed.playbook_id)] == f"/automations/playbooks/{seed.playbook_id}"
    assert urls[("approval", seed.approval_id)] == "/automations/approvals"
    assert urls[("runbook", seed.service_id)] == "https://runbooks.example/checkout"


def test_similar_incidents_by_title(api, seed):
    body = ask(api, "Have we seen this before?", incident_id=seed.incident_id)
    assert ("incident", seed.past_id) in refs(body)
    assert "Checkout latency spike after deploy" in body["answer"] and "Rolled back release 41" in body["answer"]


def test_incident_mentions_resolve_in_the_callers_org_only(app, api, seed, make_member, make_api_key):
    assert ("incident", seed.incident_id) in refs(ask(api, f"status of inc-{seed.incident_number}"))
    other = make_member("bravo", "owner")
    seed_org(app, other.org_id)
    bravo = Api(app.test_client(), make_api_key(other))
    error_of(bravo.post(CHAT, json={"message": "status", "incident_id": seed.incident_id}), 404, "NOT_FOUND")
    body = ask(bravo, "What is the status?")
    assert ("incident", seed.incident_id) not in refs(body)


def test_budget_and_compliance_sections_are_grounded(app, owner, seed):
    with app.test_request_context():
        g = guided.ground(owner.org_id, "Which services burn error budget, and what are our compliance gaps?",
                          now=NOW)
        text = guided.answer(g)
        by_type = {}
        for r in g.references:
            by_type.setdefault(r["type"], []).append(r["id"])
        assert by_type["service"] == [seed.service_id]  # the high incident burns checkout's budget; search is idle
        assert "checkout (tier 0, target 99.9%): critical" in text
        from zentro.compliance.catalog import load_catalog

        catalog = load_catalog()
        assert by_type["control"] and all(catalog.has(tag) for tag in by_type["control"])
        assert all(key in catalog.frameworks for key in by_type["framework"])
        assert all(f"/compliance/controls/{tag}" in [r["url"] for r in g.references] for tag in by_type["control"])


def test_json_chat_stores_the_turn_in_a_thread(app, api, seed):
    body = ask(api, "status", incident_id=seed.incident_id)
    with app.app_context():
        thread = db.session.get(CopilotThread, body["thread_id"])
        assert thread.incident_id == seed.incident_id and thread.title == "status"
        msgs = db.session.scalars(select(CopilotMessage).where(CopilotMessage.thread_id == thread.id)
                                  .order_by(CopilotMessage.id)).all()
        assert [(m.role, m.mode) for m in msgs] == [("user", ""), ("assistant", "guided")]
        assert msgs[1].id == body["message_id"] and msgs[1].content == body["answer"]
        assert msgs[1].references == body["references"]
    again = ask(api, "and the cause?", thread_id=body["thread_id"])
    assert again["thread_id"] == body["thread_id"]
    assert ("rca_run", seed.run_id) in refs(again)  # the thread's incident stays the context


# --- SSE ------------------------------------------------------------------------------------------------

def test_sse_streams_deltas_then_done_with_the_stored_message(app, api, seed):
    resp = api.post(CHAT, json={"message": "status", "incident_id": seed.incident_id},
                    headers={"Accept": "text/event-stream"})
    assert resp.status_code == 200 and resp.mimetype == "text/event-stream"
    assert resp.headers["Cache-Control"] == "no-cache"
    events = sse_events(resp.get_data(as_text=True))
    names = [name for name, _ in events]
    assert names[-1] == "done" and set(names[:-1]) == {"delta"} and len(names) > 3
    done = events[-1][1]
    streamed = "".join(data["text"] for name, data in events if name == "delta")
    with app.app_context():
        stored = db.session.get(CopilotMessage, done["message_id"])
        assert stored.content == streamed == done["answer"] and done["mode"] == "guided"
    assert ("incident", seed.incident_id) in refs(done)
    same = api.post(CHAT, json={"message": "status", "incident_id": seed.incident_id, "stream": True})
    assert same.mimetype == "text/event-stream"


# --- language models and the fallback chain -------------------------------------------------------------

def openai_sse(*pieces: str):
    def handler(req):
        def chunks():
            for i, piece in enumerate(pieces):
                chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                         "choices": [{"index": 0, "delta": {"content": piece} if i else {"role": "assistant", "content": piece},
                                      "finish_reason": None}]}
                yield f"data: {json.dumps(chunk)}\n\n".encode()
            yield b"data: [DONE]\n\n"
        return 200, chunks(), {"Content-Type": "text/event-stream"}
    return handler


@pytest.fixture
def models(app, monkeypatch, stub_server):  # noqa: F811
    monkeypatch.setitem(app.config, "ZENTRO_CONNECTORS_ALLOW_PRIVATE", True)
    monkeypatch.setitem(app.config, "OPENAI_API_KEY", "sk-test-key")
    monkeypatch.setitem(app.config, "ZENTRO_OPENAI_BASE_URL", stub_server.url + "/v1")
    monkeypatch.setitem(app.config, "ZENTRO_OPENAI_MODEL", "test-model")
    monkeypatch.setitem(app.config, "ZENTRO_REASONING_API_URL", stub_server.url + "/reasoning")
    return stub_server


def test_openai_streams_and_keeps_the_grounded_references(app, api, seed, models):
    models.route("POST", "/v1/chat/completions", openai_sse("Checkout ", "is degraded ", f"(INC-{seed.incident_number})."))
    resp = api.post(CHAT, json={"message": "status?", "incident_id": seed.incident_id}, headers={"Accept": "text/event-stream"})
    events = sse_events(resp.get_data(as_text=True))
    assert [d["text"] for n, d in events if n == "delta"] == ["Checkout ", "is degraded ", f"(INC-{seed.incident_number})."]
    done = events[-1][1]
    assert done["mode"] == "openai" and done["answer"] == f"Checkout is degraded (INC-{seed.incident_number})."
    assert ("incident", seed.incident_id) in refs(done) and done["detail"] == ""
    call = models.requests_to("/v1/chat/completions")[0]
    headers = {k.lower(): v for k, v in call.headers.items()}
    assert headers["authorization"] == "Bearer sk-test-key" and call.json["model"] == "test-model"
    assert call.json["stream"] is True
    system, user = call.json["messages"][0], call.json["messages"][-1]
    assert system["role"] == "system" and f"INC-{seed.incident_number} · Checkout latency spike" in system["content"]
    assert user == {"role": "user", "content": "status?"}
    assert models.requests_to("/reasoning") == []


def test_openai_failing_falls_to_reasoning_then_to_guided(app, api, seed, models):
    reasoning = {"answer": "Reasoned: roll back checkout 42."}
    models.route("POST", "/v1/chat/completions", lambda req: (500, {"error": {"message": "overloaded"}}))
    models.route("POST", "/reasoning/chat", lambda req: (200, reasoning))
    body = ask(api, "what now?", incident_id=seed.incident_id)
    assert body["mode"] == "reasoning" and body["answer"] == "Reasoned: roll back checkout 42."
    assert body["detail"].startswith("openai: HTTP 500")
    sent = models.requests_to("/reasoning/chat")[0].json
    assert sent["messages"][-1]["content"] == "what now?"
    assert ["incident", seed.incident_id] in [[r["type"], r["id"]] for r in sent["context"]["references"]]
    assert sent["context"]["incident_id"] == seed.incident_id and "Restart checkout" in sent["context"]["facts"]

    reasoning.pop("answer")
    body = ask(api, "what now?", incident_id=seed.incident_id)
    assert body["mode"] == "guided" and ("playbook", seed.playbook_id) in refs(body)
    assert "openai: HTTP 500" in body["detail"] and "reasoning: the JSON answer has no non-empty string 'answer'" in body["detail"]
    with app.app_context():
        assert db.session.get(CopilotMessage, body["message_id"]).detail == body["detail"]


def test_reasoning_backend_may_stream_sse(app, api, seed, models, monkeypatch):
    monkeypatch.setitem(app.config, "OPENAI_API_KEY", None)
    models.route("POST", "/reasoning/chat", lambda req: (200, iter([
        b'event: delta\ndata: {"delta": "Roll back "}\n\n', b'data: {"delta": "release 42."}\n\n',
        b"event: done\ndata: {}\n\n"]), {"Content-Type": "text/event-stream"}))
    body = ask(api, "fix?", incident_id=seed.incident_id)
    assert (body["mode"], body["answer"]) == ("reasoning", "Roll back release 42.")


def test_model_addresses_follow_the_outgoing_policy(app, api, seed, models, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_CONNECTORS_ALLOW_PRIVATE", False)
    body = ask(api, "status", incident_id=seed.incident_id)
    assert body["mode"] == "guided"
    assert "openai: refused: 127.0.0.1 resolves to 127.0.0.1 is a loopback address" in body["detail"]
    assert "reasoning: refused" in body["detail"]
    assert models.calls == []


def test_unreachable_models_fall_through(app, api, seed, monkeypatch):
    monkeypatch.setitem(app.config, "ZENTRO_CONNECTORS_ALLOW_PRIVATE", True)
    monkeypatch.setitem(app.config, "OPENAI_API_KEY", "sk-x")
    monkeypatch.setitem(app.config, "ZENTRO_OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    monkeypatch.setitem(app.config, "ZENTRO_REASONING_API_URL", "http://127.0.0.1:1")
    body = ask(api, "status", incident_id=seed.incident_id)
    assert body["mode"] == "guided" and "openai: APIConnectionError" in body["detail"]
    assert "reasoning: ConnectError" in body["detail"]


# --- anonymous ------------------------------------------------------------------------------------------

def test_anonymous_gets_general_guidance_without_org_data_and_nothing_is_stored(app, seed):
    client = app.test_client()
    resp = client.post(CHAT, json={"message": "What is the status of INC-%d?" % seed.incident_number})
    body = resp.get_json()
    assert resp.status_code == 200 and body["mode"] == "guided" and body["references"] == []
    assert body["thread_id"] is None and body["message_id"] is None
    assert "Sign in to get answers from your organisation's records" in body["answer"]
    assert "Checkout latency" not in body["answer"] and "checkout" not in body["answer"].lower()
    assert stored_count(app, CopilotMessage) == 0 and stored_count(app, CopilotThread) == 0
    events = sse_events(client.post(CHAT, json={"message": "why?"}, headers={"Accept": "text/event-stream"})
                        .get_data(as_text=True))
    assert events[-1][0] == "done" and "".join(d["text"] for n, d in events[:-1]) == events[-1][1]["answer"]


def test_anonymous_cannot_use_threads_or_incidents(app, seed):
    client = app.test_client()
    error_of(client.post(CHAT, json={"message": "hi", "thread_id": 1}), 400, "VALIDATION_ERROR")
    error_of(client.post(CHAT, json={"message": "hi", "incident_id": seed.incident_id}), 400, "VALIDATION_ERROR")


def test_anonymous_is_refused_when_openai_is_configured(app, monkeypatch):
    monkeypatch.setitem(app.config, "OPENAI_API_KEY", "sk-x")
    error_of(app.test_client().post(CHAT, json={"message": "hi"}), 401, "UNAUTHORIZED")


def test_anonymous_rate_limit_is_per_client_address(app, monkeypatch, api, seed):
    monkeypatch.setitem(app.config, "ZENTRO_COPILOT_ANON_RATE_LIMIT", "2/minute")
    first = app.test_client()
    first.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    assert [first.post(CHAT, json={"message": "help"}).status_code for _ in range(2)] == [200, 200]
    refused = first.post(CHAT, json={"message": "help"})
    error_of(refused, 429, "RATE_LIMIT_EXCEEDED")
    assert int(refused.headers["Retry-After"]) > 0
    second = app.test_client()
    second.environ_base["REMOTE_ADDR"] = "198.51.100.9"
    assert second.post(CHAT, json={"message": "help"}).status_code == 200
    assert [ask(api, "status", incident_id=seed.incident_id)["mode"] for _ in range(3)] == ["guided"] * 3


# --- input and access -----------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [{}, {"message": ""}, {"message": "x" * 4001}, {"message": 42},
                                     {"message": "a\u0000b"}, {"message": "hi", "thread_id": "one"},
                                     {"message": "hi", "thread_id": 2_147_483_648}, {"message": "hi", "extra": 1},
                                     {"message": "hi", "stream": "maybe"}])
def test_bad_chat_input_is_400_and_stores_nothing(app, api, payload):
    error_of(api.post(CHAT, json=payload), 400, "VALIDATION_ERROR")
    assert stored_count(app, CopilotMessage) == 0


def test_malformed_json_and_wrong_media_type(app, api):
    error_of(api.post(CHAT, data=b"{nope", headers={"Content-Type": "application/json"}), 400, "VALIDATION_ERROR")
    error_of(api.post(CHAT, data=b"message=hi", headers={"Content-Type": "text/plain"}), 415, "UNSUPPORTED_MEDIA_TYPE")


def test_scopes_roles_and_sessions(app, owner, make_member, make_api_key, sign_in, seed):
    read_only = Api(app.test_client(), make_api_key(owner, ["incidents:read"]))
    error_of(read_only.post(CHAT, json={"message": "hi"}), 403, "FORBIDDEN")
    viewer = sign_in(make_member("alpha", "viewer"))
    resp = viewer.post(CHAT, json={"message": "status", "incident_id": seed.incident_id})
    assert resp.status_code == 200 and resp.get_json()["thread_id"]  # a viewer's own conversation
    csrf_less = app.test_client()
    csrf_less.set_cookie("session", viewer.client.get_cookie("session").value)
    error_of(csrf_less.post(CHAT, json={"message": "hi"}), 403, "FORBIDDEN")


# --- threads --------------------------------------------------------------------------------------------

def test_threads_create_list_and_messages(app, api, seed):
    created = api.post(THREADS, json={"title": "Checkout review", "incident_id": seed.incident_id})
    assert created.status_code == 201
    thread = created.get_json()
    assert thread["title"] == "Checkout review" and thread["incident_id"] == seed.incident_id
    turn = api.post(f"{THREADS}/{thread['id']}/messages", json={"message": "what is the cause?"})
    assert turn.status_code == 201 and ("rca_run", seed.run_id) in refs(turn.get_json())
    page = api.get(f"{THREADS}/{thread['id']}/messages?limit=1").get_json()
    assert page["data"][0]["role"] == "assistant" and page["next_cursor"]
    rest = api.get(f"{THREADS}/{thread['id']}/messages?cursor={page['next_cursor']}").get_json()
    assert [m["role"] for m in rest["data"]] == ["user"] and rest["data"][0]["content"] == "what is the cause?"
    ids = [t["id"] for t in api.get(THREADS).get_json()["data"]]
    assert ids == [thread["id"]]
    streamed = api.post(f"{THREADS}/{thread['id']}/messages", json={"message": "status"},
                        headers={"Accept": "text/event-stream"})
    assert streamed.status_code == 201 and sse_events(streamed.get_data(as_text=True))[-1][0] == "done"


def test_threads_are_per_user_and_per_org(app, api, owner, make_member, make_api_key, seed):
    thread_id = api.post(THREADS, json={}).get_json()["id"]
    colleague = Api(app.test_client(), make_api_key(make_member("alpha", "admin")))
    outsider = Api(app.test_client(), make_api_key(make_member("bravo", "owner")))
    for other in (colleague, outsider):
        error_of(other.get(f"{THREADS}/{thread_id}/messages"), 404, "NOT_FOUND")
        error_of(other.post(f"{THREADS}/{thread_id}/messages", json={"message": "hi"}), 404, "NOT_FOUND")
        error_of(other.post(CHAT, json={"message": "hi", "thread_id": thread_id}), 404, "NOT_FOUND")
        assert other.get(THREADS).get_json()["data"] == []
    error_of(outsider.post(THREADS, json={"incident_id": seed.incident_id}), 404, "NOT_FOUND")
    assert stored_count(app, CopilotMessage) == 0


@pytest.mark.parametrize("payload", [{"title": "x" * 201}, {"incident_id": 0}, {"incident_id": "a"}, {"other": 1}])
def test_bad_thread_input_is_400(api, payload):
    error_of(api.post(THREADS, json=payload), 400, "VALIDATION_ERROR")
