"""RCA API: start a run (202), the incident's latest run, a run's status, its progress as
Server-Sent Events, and cancellation. The engine and run lifecycle live in ``zentro.incidents.rca``.

The progress stream reads the run from the database on every poll (short-lived sessions, none held
between polls), so it works from any worker, whichever one executes the run."""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import Literal

from flask import Blueprint, Response, current_app, jsonify, stream_with_context
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from zentro.extensions import db
from zentro.incidents import rca
from zentro.incidents.models import Incident, RcaRun
from zentro.incidents.service import get_incident
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import api_route

bp = Blueprint("rca_api", __name__)
TAGS = ("RCA",)

# Progress stream timing. ``sse_wait`` and ``sse_clock`` are module attributes so tests can step the
# stream without sleeping.
SSE_POLL_SECONDS = 1.0
SSE_KEEPALIVE_SECONDS = 15.0
SSE_MAX_SECONDS = 300.0
SSE_RETRY_MS = 2000


def sse_wait(seconds: float) -> None:
    threading.Event().wait(seconds)


sse_clock = time.monotonic


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window_hours: int = Field(rca.DEFAULT_WINDOW_HOURS, ge=1, le=rca.MAX_WINDOW_HOURS,
                              description="How far before the incident's start to look for changes and signals.")


class FactorOut(BaseModel):
    name: str
    value: float = Field(ge=0, le=1)
    weight: float = Field(ge=0, le=1)
    contribution: float = Field(ge=0, le=1, description="value × weight; the confidence is their sum (capped at 1).")
    detail: str


class EvidenceOut(BaseModel):
    type: Literal["change_event", "incident", "alert", "finding", "timeline_event"]
    id: int = Field(description="Id of the row in the caller's org (incident ids link to /incidents/{id}).")
    summary: str
    at: dt.datetime | None
    incident_id: int | None = Field(None, description="Timeline events only: the incident whose timeline holds it.")


class HypothesisOut(BaseModel):
    rank: int = Field(ge=1)
    title: str
    category: Literal["change", "upstream", "vulnerability", "similar_incident", "alert_signal", "insufficient_evidence"]
    confidence: float = Field(ge=0, le=1)
    detail: str
    factors: list[FactorOut]
    evidence: list[EvidenceOut]


class RcaRunOut(BaseModel):
    id: int
    incident_id: int
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: int = Field(ge=0, le=100)
    stage: str
    hypotheses: list[HypothesisOut] = Field(description="Ranked, best first; empty until the run succeeds.")
    summary: dict = Field(description="The run's inputs and what the engine examined.")
    error: str
    created_by: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime | None


@api_route(bp, "/api/incidents/<int:incident_id>/rca/run", methods=("POST",), resource="incidents", body=RunIn,
           response=RcaRunOut, status=202, tenant_model=Incident, tags=TAGS,
           summary="Start an RCA run of the incident (202 with the queued run). 409 while another run of it is "
                   "queued or running; 429 over the plan's analyses per hour (free 2, pro 20).")
def run_rca(incident_id: int, body: RunIn):
    p = current_principal()
    org_id, actor = p.org.id, p.actor  # read before start_run commits (and expires them)
    run_id = rca.start_run(org_id, incident_id, actor, window_hours=body.window_hours)
    rca.submit(current_app._get_current_object(), run_id)
    return jsonify(rca.run_json(rca.get_run(org_id, run_id))), 202


@api_route(bp, "/api/incidents/<int:incident_id>/rca/latest", methods=("GET",), resource="incidents",
           response=RcaRunOut, tenant_model=Incident, tags=TAGS,
           summary="The incident's most recent RCA run, whatever its status (404 if it has none).")
def latest_rca(incident_id: int):
    org_id = current_principal().org.id
    get_incident(org_id, incident_id)
    run = rca.latest_run(org_id, incident_id)
    if run is None:
        raise ApiError(404, "This incident has no RCA run yet.")
    return jsonify(rca.run_json(run))


@api_route(bp, "/api/v1/rca-runs/<int:run_id>", methods=("GET",), resource="incidents", response=RcaRunOut,
           tenant_model=RcaRun, tags=TAGS, summary="An RCA run: status, progress, stage and, when done, its hypotheses.")
def get_rca_run(run_id: int):
    return jsonify(rca.run_json(rca.get_run(current_principal().org.id, run_id)))


@api_route(bp, "/api/v1/rca-runs/<int:run_id>/cancel", methods=("POST",), resource="incidents", response=RcaRunOut,
           status=202, tenant_model=RcaRun, tags=TAGS,
           summary="Cancel a queued or running RCA run (202); 409 when it is not running.")
def cancel_rca_run(run_id: int):
    p = current_principal()
    org_id, actor = p.org.id, p.actor
    rca.cancel_run(org_id, run_id, actor)
    return jsonify(rca.run_json(rca.get_run(org_id, run_id))), 202


def _sse(event: str | None, data: dict | None = None, comment: str | None = None) -> str:
    if comment is not None:
        return f": {comment}\n\n"
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _snapshot(org_id: int, run_id: int) -> dict | None:
    """Read the run in a short-lived session and return it as JSON (None if it is gone)."""
    try:
        run = db.session.scalar(select(RcaRun).where(RcaRun.org_id == org_id, RcaRun.id == run_id))
        return rca.run_json(run) if run is not None else None
    finally:
        db.session.remove()


def progress_events(org_id: int, run_id: int):
    """``progress`` {status, progress, stage} whenever it changes, then ``done`` with the run; a
    keep-alive comment when nothing was sent for a while; ``timeout`` after SSE_MAX_SECONDS."""
    started = last_sent = sse_clock()
    yield f"retry: {SSE_RETRY_MS}\n\n"
    last = None
    while True:
        snap = _snapshot(org_id, run_id)
        if snap is None:
            yield _sse("error", {"detail": "The RCA run no longer exists."})
            return
        state = {k: snap[k] for k in ("status", "progress", "stage")}
        if state != last:
            yield _sse("progress", state)
            last, last_sent = state, sse_clock()
        if snap["status"] in rca.FINISHED:
            yield _sse("done", snap)
            return
        now = sse_clock()
        if now - started >= SSE_MAX_SECONDS:
            yield _sse("timeout", {**state, "detail": f"Stream closed after {SSE_MAX_SECONDS:.0f} s; reconnect to follow."})
            return
        if now - last_sent >= SSE_KEEPALIVE_SECONDS:
            yield _sse(None, comment="keep-alive")
            last_sent = now
        sse_wait(SSE_POLL_SECONDS)


@api_route(bp, "/api/v1/rca-runs/<int:run_id>/progress", methods=("GET",), resource="incidents", response="sse",
           tenant_model=RcaRun, tags=TAGS,
           summary="Server-Sent Events (text/event-stream): `progress` {status, progress, stage} on every change, "
                   "then `done` with the run, then the stream closes; `: keep-alive` comments while idle.")
def rca_progress(run_id: int):
    org_id = current_principal().org.id
    rca.get_run(org_id, run_id)  # 404 before the stream starts
    db.session.remove()  # hold no connection while streaming
    return Response(stream_with_context(progress_events(org_id, run_id)), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
