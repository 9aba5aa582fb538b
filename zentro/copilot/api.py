"""Copilot API: chat (JSON or Server-Sent Events) and per-user threads.

``POST /api/copilot/chat`` is open to anonymous callers only while OPENAI_API_KEY is unset (as the endpoint
catalog says): they are limited per client address (ZENTRO_COPILOT_ANON_RATE_LIMIT), get general guidance
from the guided mode with none of any org's data, and nothing is stored. Signed-in callers (session or API
key with the ``copilot`` scope, any role: a conversation is the caller's own, not org data) get answers
grounded in their org's records, stored in their thread."""
from __future__ import annotations

import json
from typing import Literal

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from zentro.copilot import guided, service
from zentro.copilot.models import CopilotThread
from zentro.extensions import limiter
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.openapi import MAX_ID, NO_NUL
from zentro.platform.pagination import PageQuery, paginate
from zentro.platform.routes import api_route, parse_body, public_route

bp = Blueprint("copilot_api", __name__)
COMMON = {"resource": "copilot", "tags": ("Copilot",)}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ReferenceOut(BaseModel):
    type: str = Field(description="incident | timeline_event | rca_run | service | runbook | playbook | approval | "
                                  "framework | control")
    id: int | str
    label: str
    url: str


class ChatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1, max_length=service.MAX_MESSAGE, pattern=NO_NUL)
    thread_id: int | None = Field(None, ge=1, le=MAX_ID, description="Continue this thread (signed-in callers only).")
    incident_id: int | None = Field(None, ge=1, le=MAX_ID, description="Ground the answer in this incident "
                                                                        "(signed-in callers only).")
    # Also selectable with Accept: text/event-stream. Left out of the document, which can describe one
    # content type per answer: the SSE answer is described in the route summary.
    stream: SkipJsonSchema[bool] = False


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1, max_length=service.MAX_MESSAGE, pattern=NO_NUL)
    incident_id: int | None = Field(None, ge=1, le=MAX_ID, description="Ground this turn in another incident "
                                                                        "than the thread's.")
    stream: SkipJsonSchema[bool] = False


class ChatOut(BaseModel):
    answer: str
    mode: Literal["openai", "reasoning", "guided"]
    references: list[ReferenceOut]
    thread_id: int | None = Field(description="None for anonymous callers (nothing is stored).")
    message_id: int | None
    detail: str = Field("", description="Why a language-model mode was skipped, if one was.")


class ThreadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field("", max_length=200, pattern=NO_NUL)
    incident_id: int | None = Field(None, ge=1, le=MAX_ID)


class ThreadOut(BaseModel):
    id: int
    title: str
    incident_id: int | None
    created_at: str
    updated_at: str


class ThreadPage(BaseModel):
    data: list[ThreadOut]
    next_cursor: str | None


class MessageOut(BaseModel):
    id: int
    thread_id: int
    role: Literal["user", "assistant"]
    content: str
    mode: Literal["openai", "reasoning", "guided"] | None
    references: list[ReferenceOut]
    detail: str
    created_at: str


class MessagePage(BaseModel):
    data: list[MessageOut]
    next_cursor: str | None


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def wants_stream(body) -> bool:
    return bool(body.stream) or request.accept_mimetypes.best == "text/event-stream"


def answer_turn(turn: service.Turn, stream: bool, status: int = 200):
    """The turn as SSE (``delta`` events, then ``done`` with the stored message) or as one JSON answer."""
    if not stream:
        turn.run()
        return jsonify(turn.result()), status

    def events():
        for delta in turn.deltas():
            yield sse("delta", {"text": delta})
        yield sse("done", turn.result())

    return Response(stream_with_context(events()), status=status, mimetype="text/event-stream", headers=SSE_HEADERS)


def anonymous_answer(message: str, stream: bool):
    text = guided.anonymous_answer(message)
    result = {"answer": text, "mode": "guided", "references": [], "thread_id": None, "message_id": None, "detail": ""}
    if not stream:
        return jsonify(result)
    body = "".join(sse("delta", {"text": chunk}) for chunk in service._chunks(text)) + sse("done", result)
    return Response(body, mimetype="text/event-stream", headers=SSE_HEADERS)


def anonymous_limit() -> str:
    return current_app.config["ZENTRO_COPILOT_ANON_RATE_LIMIT"]


def client_address() -> str:
    return f"copilot:{request.remote_addr or 'unknown'}"


@public_route(bp, "/api/copilot/chat", methods=("POST",), body=ChatIn, response=ChatOut, tags=("Copilot",),
              idempotent=False,
              summary="Ask the copilot. JSON answer, or Server-Sent Events with Accept: text/event-stream "
                      "(`event: delta` {text} chunks, then `event: done` with the stored message). Order: "
                      "OpenAI-compatible API, reasoning backend, offline guided mode. Anonymous only while "
                      "OPENAI_API_KEY is unset, rate-limited per client address, general guidance only.")
@limiter.limit(anonymous_limit, key_func=client_address, exempt_when=lambda: current_principal() is not None,
               override_defaults=False)
def chat():
    p = current_principal()
    cfg = current_app.config
    if p is None and cfg.get("OPENAI_API_KEY"):
        raise ApiError(401, "Sign in (or send an API key) to use the copilot.")
    if p is not None:
        if p.scheme not in ("session", "api_key") or p.user is None:
            raise ApiError(403, f"This endpoint does not accept {p.scheme.replace('_', ' ')} credentials.")
        if p.scheme == "api_key" and not p.has_scope("copilot:write"):
            raise ApiError(403, "This API key lacks the scope copilot:write.")
    body = parse_body(ChatIn)
    if p is None:
        if body.thread_id is not None or body.incident_id is not None:
            raise ApiError(400, "Sign in to use threads or ask about an incident.")
        return anonymous_answer(body.message, wants_stream(body))
    turn = service.start_turn(p.org.id, p.user.id, body.message, cfg, thread_id=body.thread_id,
                              incident_id=body.incident_id)
    return answer_turn(turn, wants_stream(body))


@api_route(bp, "/api/copilot/threads", query=PageQuery, response=ThreadPage, min_role="viewer",
           summary="Your copilot threads in this org, newest first.", **COMMON)
def list_threads(query: PageQuery):
    p = current_principal()
    rows, cursor = paginate(service.threads_query(p.org.id, p.user.id), CopilotThread.id, query)
    return jsonify({"data": [service.thread_json(t) for t in rows], "next_cursor": cursor})


@api_route(bp, "/api/copilot/threads", methods=("POST",), endpoint="create_thread", body=ThreadIn,
           response=ThreadOut, status=201, min_role="viewer", summary="Start a thread (optionally about an incident).",
           **COMMON)
def create_thread(body: ThreadIn):
    p = current_principal()
    thread = service.create_thread(p.org.id, p.user.id, title=body.title, incident_id=body.incident_id)
    return jsonify(service.thread_json(thread)), 201


@api_route(bp, "/api/copilot/threads/<int:thread_id>/messages", query=PageQuery, response=MessagePage,
           tenant_model=CopilotThread, min_role="viewer", summary="Messages of one of your threads, newest first.",
           **COMMON)
def list_messages(thread_id: int, query: PageQuery):
    p = current_principal()
    thread = service.get_thread(p.org.id, p.user.id, thread_id)
    rows, cursor = paginate(service.messages_query(p.org.id, thread.id), service.CopilotMessage.id, query)
    return jsonify({"data": [service.message_json(m) for m in rows], "next_cursor": cursor})


@api_route(bp, "/api/copilot/threads/<int:thread_id>/messages", methods=("POST",), endpoint="post_message",
           body=MessageIn, response=ChatOut, status=201, tenant_model=CopilotThread, min_role="viewer",
           idempotent=False, summary="Append your message and run an assistant turn (JSON, or SSE with "
                                     "Accept: text/event-stream).", **COMMON)
def post_message(thread_id: int, body: MessageIn):
    p = current_principal()
    turn = service.start_turn(p.org.id, p.user.id, body.message, current_app.config, thread_id=thread_id,
                              incident_id=body.incident_id)
    return answer_turn(turn, wants_stream(body), status=201)

