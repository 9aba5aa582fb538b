"""Incidents over the platform API (``/api/v1/incidents``) and the incident exports
(``/api/incidents/<id>/export|evidence|review``).

Every mutation goes through zentro.incidents.service (timeline event + audit row with IR control tags)
and commits once; any refusal rolls the whole request back, so bad input changes nothing."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from flask import Blueprint, Response, jsonify, url_for
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from zentro.extensions import db
from zentro.incidents import exports, service
from zentro.incidents.models import SEVERITIES, STATUSES, Incident, TimelineEvent
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.pagination import PageQuery, decode_cursor, encode_cursor, paginate
from zentro.platform.routes import api_route, no_null_defaults
from zentro.platform.types import utcnow

bp = Blueprint("incidents_api", __name__, url_prefix="/api")

MAX_ID = 2_147_483_647
# At least one character that neither pydantic's strip_whitespace nor Python's str.strip removes.
NOT_BLANK = r"[^\t\n\v\f\r \x1c-\x1f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"

Severity = Literal[SEVERITIES]
Status = Literal[STATUSES]
StatusFilter = Literal[service.LIST_STATUS_FILTERS]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def _integral(value: Any) -> Any:
    """JSON Schema counts 5.0 as an integer; strict pydantic would not."""
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53 else value


BodyId = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_integral)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300, pattern=NOT_BLANK)]
Description = Annotated[str, StringConstraints(max_length=10_000)]
NoteText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000, pattern=NOT_BLANK)]
TAGS = ("Incidents",)
EXPORT_TAGS = ("Incident exports",)


# --- request models (bodies are strict: JSON types exactly as documented, no "yes" for true) ---------

class IncidentListQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")
    status: StatusFilter | None = Field(None, description="active (open, acknowledged, mitigated), all, or one status. "
                                                          "Default: all.")
    severity: Severity | None = Field(None, description="Only this severity.")
    service_id: Id | None = Field(None, description="Only incidents on this service.")
    q: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        None, description="Text in the title, or a reference (INC-42 or 42).")


class CreateIncidentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=no_null_defaults)
    title: Title = Field(description="What is wrong, in a line.")
    severity: Severity = Field("medium", description="critical, high, medium or low.")
    service_id: BodyId | None = Field(None, description="The affected service (one of this org's services).")
    description: Description = Field("", description="Context for responders (plain text).")


class UpdateIncidentIn(BaseModel):
    """Only the fields sent are changed (an empty object changes nothing), all of them in one transaction:
    any refusal changes nothing."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=no_null_defaults)
    status: Status = Field(None, description="Move along the lifecycle: open → acknowledged → mitigated → resolved → "
                                             "closed (mitigated may go back to acknowledged, resolved may reopen). "
                                             "Other moves are 409.")
    severity: Severity = Field(None, description="New severity.")
    commander_id: BodyId | None = Field(None, description="User id of an org member to command the incident; null unassigns.")
    title: Title = Field(None, description="New title.")
    description: Description = Field(None, description="New description.")
    legal_hold: bool = Field(None, description="Place (true) or release (false) a legal hold. Owner/admin only (403).")


class IncidentNoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    body: NoteText = Field(description="The note (plain text).")


# --- response models -------------------------------------------------------------------------------------

class IncidentOut(BaseModel):
    id: int
    ref: str
    number: int
    title: str
    description: str
    severity: Severity
    status: Status
    service_id: int | None
    service_name: str | None
    commander_id: int | None
    commander_email: str | None
    source: str
    dedupe_key: str | None
    alert_count: int
    legal_hold: bool
    started_at: dt.datetime
    last_seen_at: dt.datetime
    acknowledged_at: dt.datetime | None
    mitigated_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class IncidentPage(BaseModel):
    data: list[IncidentOut]
    next_cursor: str | None


class TimelineEventOut(BaseModel):
    id: int
    kind: str = Field(description="created, alert, status, note, severity, commander, legal_hold, details, rca, …")
    body: str
    data: dict[str, Any]
    actor_type: str
    actor: str
    created_at: dt.datetime


class TimelineEventPage(BaseModel):
    data: list[TimelineEventOut]
    next_cursor: str | None


class IncidentAlertOut(BaseModel):
    id: int
    source: str
    dedupe_key: str
    status: str
    severity: str
    title: str
    service_name: str
    labels: Any
    raw: Any
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    received_at: dt.datetime


class EvidenceRcaRunOut(BaseModel):
    id: int
    status: str
    progress: int
    stage: str
    hypotheses: list[Any]
    error: str
    created_by: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class EvidenceAuditRowOut(BaseModel):
    id: int
    seq: int
    created_at: dt.datetime
    actor_type: str
    actor_id: str
    actor_label: str
    action: str
    target_type: str
    target_id: str
    control_tags: str = Field(description="Space-separated control ids.")
    request_id: str
    data: str = Field(description="The row's canonical JSON data, exactly as hashed.")
    prev_hash: str
    hash: str
    hash_matches_content: bool = Field(description="Recomputing the hash from this row gives `hash`.")


class EvidenceOrgRef(BaseModel):
    id: int
    slug: str
    name: str


class EvidenceAutomationsOut(BaseModel):
    dry_runs: list[TimelineEventOut]
    executions: list[TimelineEventOut]
    note: str


class EvidenceAuditOut(BaseModel):
    rows: list[EvidenceAuditRowOut]
    hash_algorithm: Literal["sha256"]
    how_to_verify: str


class IncidentEvidenceOut(BaseModel):
    format: Literal["zentro.incident-evidence/1"]
    generated_at: dt.datetime
    org: EvidenceOrgRef
    incident: IncidentOut
    timeline: list[TimelineEventOut] = Field(description="Oldest first (the newest 5000 events).")
    timeline_total: int
    alerts: list[IncidentAlertOut] = Field(description="Oldest first (the newest 5000 alerts).")
    alerts_total: int
    rca_runs: list[EvidenceRcaRunOut]
    automations: EvidenceAutomationsOut
    audit: EvidenceAuditOut


# --- routes ----------------------------------------------------------------------------------------------

def _commit_or_rollback(change):
    try:
        result = change()
        db.session.commit()
        return result
    except BaseException:
        db.session.rollback()
        raise


@api_route(bp, "/v1/incidents", methods=("GET",), query=IncidentListQuery, response=IncidentPage, resource="incidents",
           summary="List incidents, newest first, with filters; cursor-paginated.", tags=TAGS)
def list_incidents(query: IncidentListQuery):
    p = current_principal()
    before = decode_cursor(query.cursor) if query.cursor else None
    rows, next_before = service.list_incidents(
        p.org.id, statuses=service.statuses_for(query.status), severity=query.severity, service_id=query.service_id,
        q=query.q, before_id=before if before is None or before <= MAX_ID else None, limit=query.limit)
    return jsonify(data=[exports.incident_out(i) for i in rows],
                   next_cursor=encode_cursor(next_before) if next_before is not None else None)


@api_route(bp, "/v1/incidents", methods=("POST",), body=CreateIncidentIn, response=IncidentOut, status=201,
           resource="incidents", summary="Open an incident by hand (member and above).", tags=TAGS)
def create_incident(body: CreateIncidentIn):
    p = current_principal()

    def change() -> Incident:
        if body.service_id is not None:
            service.get_service(p.org.id, body.service_id)
        return service.create_incident(p.org.id, title=body.title, severity=body.severity, actor=p.actor,
                                       service_id=body.service_id, description=body.description)

    inc = _commit_or_rollback(change)
    resp = jsonify(exports.incident_out(inc))
    resp.status_code = 201
    resp.headers["Location"] = url_for("incidents_api.get_incident", incident_id=inc.id)
    return resp


@api_route(bp, "/v1/incidents/<int:incident_id>", methods=("GET",), response=IncidentOut, resource="incidents",
           tenant_model=Incident, summary="One incident.", tags=TAGS)
def get_incident(incident_id: int):
    return jsonify(exports.incident_out(service.get_incident(current_principal().org.id, incident_id)))


@api_route(bp, "/v1/incidents/<int:incident_id>", methods=("PATCH",), body=UpdateIncidentIn, response=IncidentOut,
           resource="incidents", tenant_model=Incident,
           summary="Change status, severity, commander, title, description or legal hold (legal hold: owner/admin).",
           tags=TAGS)
def update_incident(incident_id: int, body: UpdateIncidentIn):
    p = current_principal()
    sent = body.model_fields_set

    def change() -> Incident:
        inc = service.get_incident(p.org.id, incident_id, for_update=True)
        if "legal_hold" in sent and not p.role.at_least("admin"):
            raise ApiError(403, "Only an owner or admin can place or release a legal hold.")
        if {"title", "description"} & sent:
            service.update_details(inc, p.actor, title=body.title if "title" in sent else None,
                                   description=body.description if "description" in sent else None)
        if "severity" in sent:
            service.set_severity(inc, body.severity, p.actor)
        if "commander_id" in sent:
            service.assign_commander(inc, body.commander_id, p.actor)
        if "legal_hold" in sent:
            service.set_legal_hold(inc, body.legal_hold, p.actor)
        if "status" in sent:
            service.transition(inc, body.status, p.actor)
        return inc

    return jsonify(exports.incident_out(_commit_or_rollback(change)))


@api_route(bp, "/v1/incidents/<int:incident_id>/timeline", methods=("GET",), query=PageQuery, response=TimelineEventPage,
           resource="incidents", tenant_model=Incident,
           summary="The incident's timeline, newest first like every list; cursor-paginated.", tags=TAGS)
def incident_timeline(incident_id: int, query: PageQuery):
    p = current_principal()
    inc = service.get_incident(p.org.id, incident_id)
    rows, cursor = paginate(service.timeline_query(p.org.id, inc.id), TimelineEvent.id, query)
    return jsonify(data=[service.event_json(e) for e in rows], next_cursor=cursor)


@api_route(bp, "/v1/incidents/<int:incident_id>/notes", methods=("POST",), body=IncidentNoteIn, response=TimelineEventOut, status=201,
           resource="incidents", tenant_model=Incident, summary="Add a note to the incident's timeline.", tags=TAGS)
def add_note(incident_id: int, body: IncidentNoteIn):
    p = current_principal()

    def change():
        inc = service.get_incident(p.org.id, incident_id, for_update=True)
        return service.add_note(inc, body.body, p.actor)

    ev = _commit_or_rollback(change)
    return jsonify(service.event_json(ev)), 201


def _download(text: str, mimetype: str, filename: str) -> Response:
    return Response(text, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@api_route(bp, "/incidents/<int:incident_id>/export", methods=("GET",), response="markdown", resource="incidents",
           tenant_model=Incident, summary="The incident as Markdown: header table, description, timeline.",
           tags=EXPORT_TAGS)
def export_markdown(incident_id: int):
    rec = exports.gather(current_principal().org.id, incident_id)
    return _download(exports.render_incident_markdown(rec, utcnow()), "text/markdown",
                     f"{rec.incident.ref}.md")


@api_route(bp, "/incidents/<int:incident_id>/evidence", methods=("GET",), response=IncidentEvidenceOut, resource="incidents",
           tenant_model=Incident,
           summary="Evidence pack (JSON): incident, timeline, alerts, RCA runs, automations, and the audit rows "
                   "targeting the incident with their chain hashes.", tags=EXPORT_TAGS)
def export_evidence(incident_id: int):
    rec = exports.gather(current_principal().org.id, incident_id)
    return _download(exports.evidence_json(rec, utcnow()), "application/json",
                     f"{rec.incident.ref}-evidence.json")


@api_route(bp, "/incidents/<int:incident_id>/review", methods=("GET",), response="markdown", resource="incidents",
           tenant_model=Incident,
           summary="Post-incident review (Markdown): summary and measures computed from the record, timeline, "
                   "RCA hypotheses, execution evidence and an audit snapshot.", tags=EXPORT_TAGS)
def export_review(incident_id: int):
    rec = exports.gather(current_principal().org.id, incident_id)
    return _download(exports.render_review_markdown(rec, utcnow()), "text/markdown",
                     f"{rec.incident.ref}-review.md")
