"""Assessor access over the API: managing assessor tokens (``/assessor-tokens``) and the read-only
resource route an assessor calls with one (``/assessor/<resource>``).

The resource route accepts only assessor tokens. It answers 404 for a resource name it does not know,
403 (audited as ``assessor.denied``) for one the token was not granted, and otherwise validates the
query with the target endpoint's own model, audits the use (``assessor.accessed``, committed before
the export runs) and calls the target's undecorated view as the token's org."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any, Literal

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator

from zentro.accounts.models import AssessorToken
from zentro.compliance import assessor
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.pagination import PageQuery, paginate
from zentro.platform.routes import REGISTRY, api_route, parse_query

bp = Blueprint("compliance_assessor", __name__, url_prefix="/api/governance/compliance")
log = logging.getLogger("zentro.assessor")
TAGS = ("Assessor access",)
MANAGE = {"resource": "assessor_tokens", "tags": TAGS}
# At least one character that neither pydantic's strip_whitespace nor str.strip removes.
NOT_BLANK = r"[^\t\n\v\f\r \x1c-\x1f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
ResourceName = Literal[tuple(assessor.RESOURCES)]


def _integral(value: Any) -> Any:
    """JSON Schema counts 5.0 as an integer; strict pydantic would not."""
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53 else value


class CreateAssessorTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=NOT_BLANK)] = Field(
        description="Who the token is for, e.g. the audit firm and engagement.")
    resources: list[ResourceName] = Field(
        min_length=1, max_length=len(assessor.RESOURCES), json_schema_extra={"uniqueItems": True},
        description="The resources the token may read (each once).")
    expires_in_days: Annotated[int, Field(ge=1, le=assessor.MAX_EXPIRY_DAYS), BeforeValidator(_integral)] = Field(
        description="Days until the token stops working (1–365).")

    @field_validator("resources")
    @classmethod
    def _no_duplicates(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each resource may be listed once")
        return value


class AssessorTokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    resources: list[str]
    created_at: dt.datetime
    expires_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    state: Literal["active", "expired", "revoked"]


class AssessorTokenCreatedOut(AssessorTokenOut):
    token: str = Field(description="The plaintext zentro_ca_… token. Shown only in this response.")


class AssessorTokenPage(BaseModel):
    data: list[AssessorTokenOut]
    next_cursor: str | None


@bp.record_once
def _refuse_mutating_resources(state) -> None:
    """Registration-time guard: the app does not start if a resource maps to a mutating route."""
    missing = assessor.check_read_only()
    if missing:
        log.info("assessor resources without a registered endpoint yet: %s", ", ".join(missing))


@api_route(bp, "/assessor-tokens", methods=("GET",), query=PageQuery, response=AssessorTokenPage,
           summary="The org's assessor tokens, newest first (name, prefix, resources, expiry, last use; never the secret).",
           **MANAGE)
def list_assessor_tokens(query: PageQuery):
    p = current_principal()
    rows, cursor = paginate(assessor.tokens_query(p.org.id), AssessorToken.id, query)
    return jsonify(data=[assessor.token_json(t) for t in rows], next_cursor=cursor)


@api_route(bp, "/assessor-tokens", methods=("POST",), body=CreateAssessorTokenIn, response=AssessorTokenCreatedOut,
           status=201, min_role="admin",
           summary="Create an assessor token (owner/admin): read-only, expiring, limited to the listed resources. "
                   "The plaintext zentro_ca_… token is returned once.", **MANAGE)
def create_assessor_token(body: CreateAssessorTokenIn):
    p = current_principal()
    tok, plaintext = assessor.create_token(p.org.id, body.name, list(body.resources), body.expires_in_days, p.actor,
                                           p.user.id if p.user else None)
    return jsonify(assessor.token_json(tok) | {"token": plaintext}), 201


@api_route(bp, "/assessor-tokens/<int:token_id>", methods=("DELETE",), response=AssessorTokenOut, min_role="admin",
           tenant_model=AssessorToken, summary="Revoke an assessor token (owner/admin); answers the revoked token.",
           **MANAGE)
def revoke_assessor_token(token_id: int):
    p = current_principal()
    return jsonify(assessor.token_json(assessor.revoke_token(p.org.id, token_id, p.actor)))


@api_route(bp, "/assessor/<resource>", methods=("GET",), auth=("assessor_token",), tags=TAGS,
           response=("json", "csv", "zip", "ics", "html", "markdown", "pdf"),
           extra={"path_enum": {"resource": list(assessor.RESOURCES)}},
           summary="Read one granted resource with an assessor token (Bearer zentro_ca_…): "
                   + ", ".join(assessor.RESOURCES) + ". Takes the resource's own query parameters and answers "
                   "in its format (JSON, CSV, ZIP, iCalendar, printable HTML, Markdown or PDF). Not granted: 403; "
                   "unknown: 404; every use is audited.")
def assessor_resource(resource: str):
    p = current_principal()
    endpoint = assessor.RESOURCES.get(resource)
    if endpoint is None:
        raise ApiError(404, f"Unknown assessor resource. Known: {', '.join(assessor.RESOURCES)}.")
    tok = p.credential
    params = request.args.to_dict()
    if resource not in tok.resource_list:
        assessor.record_use(p.org.id, tok, p.actor, resource, endpoint, params, granted=False)
        raise ApiError(403, f"This assessor token was not granted {resource}; it may read: "
                            f"{', '.join(tok.resource_list)}.")
    meta = REGISTRY.get(endpoint)
    view = current_app.view_functions.get(endpoint)
    if meta is None or view is None:
        raise ApiError(404, f"The {resource} resource is not available on this server.")
    if set(meta.methods) - assessor.READ_METHODS:  # also refused at registration; never reached
        raise ApiError(403, f"The {resource} resource is not read-only; assessor tokens cannot use it.")
    kwargs = {"query": parse_query(meta.query)} if meta.query is not None else {}
    assessor.record_use(p.org.id, tok, p.actor, resource, endpoint, params, granted=True)
    return view.__wrapped__(**kwargs)
