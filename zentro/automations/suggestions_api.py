"""Policy intelligence API: suggestions from approval history, promoting one into policy review, and the
policy-block summary. Session or API key (scope ``automations:read|write``)."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from flask import Blueprint, jsonify, url_for
from pydantic import BaseModel, ConfigDict, Field

from zentro.automations import suggestions as svc
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import api_route

bp = Blueprint("policy_suggestions_api", __name__)
COMMON = {"resource": "automations", "tags": ("Policy intelligence",)}


class SuggestionApproverOut(BaseModel):
    id: int
    email: str


class SuggestionOut(BaseModel):
    action_key: str = Field(description="Sorted step keys '{action}:{service}' joined by ','.")
    steps: list[str]
    approvals: int
    rejections: int
    first_decided_at: dt.datetime
    last_decided_at: dt.datetime
    approvers: list[SuggestionApproverOut]
    evidence: str


class SuggestionListOut(BaseModel):
    min_approvals: int = Field(description="ZENTRO_POLICY_SUGGESTION_MIN_APPROVALS: approvals needed.")
    data: list[SuggestionOut]


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    action_key: str = Field(min_length=1, max_length=200, description="A current suggestion's action_key.")


class PromotedPolicyOut(BaseModel):
    id: int
    name: str
    description: str
    status: Literal["review"]
    source: Literal["suggestion"]
    control_tags: list[str]
    actions: list[str]
    url: str = Field(description="The policy page, where it is accepted or retired.")


class PromoteOut(BaseModel):
    policy: PromotedPolicyOut
    suggestion: SuggestionOut


class SummaryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window: Literal["7d", "30d"] = Field("7d", description="The current window; the prior window has the same length.")


class BlockWindowOut(BaseModel):
    start: dt.datetime
    end: dt.datetime


class BlockReasonOut(BaseModel):
    reason_code: str
    label: str
    count: int
    share_pct: float


class BlockOperationOut(BaseModel):
    operation: str
    count: int


class BlockPlaybookCountOut(BaseModel):
    playbook_id: int
    name: str
    count: int


class BlockCountsOut(BaseModel):
    count: int
    prior_count: int
    delta: int
    delta_pct: float | None = Field(description="Change against the prior window in %; null when it had no blocks.")
    by_reason: list[BlockReasonOut]


class BlockSummaryOut(BaseModel):
    window: Literal["7d", "30d"]
    generated_at: dt.datetime
    current: BlockWindowOut
    prior: BlockWindowOut
    count: int
    prior_count: int
    delta: int
    delta_pct: float | None
    by_reason: list[BlockReasonOut]
    by_operation: list[BlockOperationOut]
    top_playbooks: list[BlockPlaybookCountOut]
    mine: BlockCountsOut = Field(description="The same counts for the calling user's own attempts.")


@api_route(bp, "/api/approvals/policy-suggestions", methods=("GET",), response=SuggestionListOut, **COMMON,
           summary="Action keys approved at least N times and never rejected that no non-retired policy covers.")
def suggestion_list():
    p = current_principal()
    return jsonify({"min_approvals": svc.min_approvals(), "data": [s.json() for s in svc.suggestions(p.org.id)]})


@api_route(bp, "/api/approvals/policy-suggestions/promote", methods=("POST",), body=PromoteIn, response=PromoteOut,
           status=201, min_role="admin", **COMMON,
           summary="Owner/admin: create a policy in review from a suggestion (audited). A policy already covering "
                   "it → 409 with its policy_id; not a suggestion → 404.")
def suggestion_promote(body: PromoteIn):
    p = current_principal()
    try:
        policy, suggestion = svc.promote(p.org.id, body.action_key, actor=p.actor)
    except svc.AlreadyPromoted as exc:
        return jsonify({"error": "conflict", "detail": exc.detail, "error_code": exc.error_code,
                        "policy_id": exc.policy_id}), 409
    return jsonify({"policy": {"id": policy.id, "name": policy.name, "description": policy.description,
                               "status": policy.status, "source": policy.source,
                               "control_tags": policy.control_tags.split(), "actions": list(policy.actions),
                               "url": url_for("compliance_register_pages.policy_detail", policy_id=policy.id)},
                    "suggestion": suggestion.json()}), 201


@api_route(bp, "/api/governance/policy-blocks/summary", methods=("GET",), query=SummaryQuery,
           response=BlockSummaryOut, **COMMON,
           summary="Refused execute/remediate/apply attempts in the window against the prior window: delta, "
                   "reasons, operations, top playbooks, and the caller's own.")
def policy_block_summary(query: SummaryQuery):
    p = current_principal()
    if p.user is None:
        raise ApiError(403, "This summary needs a user (session or user API key).")
    return jsonify(svc.policy_block_summary(p.org.id, window=query.window, user_id=p.user.id))
