"""Integrations over JSON (``/api/v1/integrations``; session or API key, scope ``integrations:read|write``).

Who may do what: any role reads (no secret is ever returned: ``secrets_set`` names them, ``secret_hints`` shows
the last 4 characters of long ones); owners and admins create, change, delete and test. A source's ingest token is
in the create answer (and a rotate answer) only. Every change and test is audited. Another organisation's id is 404.
Rules: zentro/connectors/integrations.py; docs/integrations.md.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from zentro.connectors import integrations as svc
from zentro.connectors.models import HEALTH_STATUSES, KINDS, Integration
from zentro.platform.auth import current_principal
from zentro.platform.pagination import PageQuery, paginate
from zentro.platform.routes import api_route, no_null_defaults

bp = Blueprint("integrations_api", __name__, url_prefix="/api/v1")

COMMON = {"resource": "integrations", "tags": ("Integrations",)}
ProviderKey = Literal[svc.PROVIDER_KEYS]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=svc.MAX_NAME)]
SecretValue = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
PROVIDER_DOC = "; ".join(f"{p.key} ({p.kind}: config {', '.join(p.config_model.model_fields) or '-'}; secrets "
                         f"{', '.join(p.secrets_model.model_fields) or '-'})" for p in svc.PROVIDERS.values())


class IntegrationCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    provider: ProviderKey = Field(description="The provider. " + PROVIDER_DOC)
    name: Name = Field(description="Unique in the organisation (1–100 characters).")
    config: dict[str, Any] = Field(default_factory=dict, max_length=20,
                                   description="Non-secret settings of the provider (see GET /api/v1/integrations/"
                                               "providers); unknown fields are refused.")
    secrets: dict[str, SecretValue] = Field(default_factory=dict, max_length=10,
                                            description="Write-only secrets (API keys, tokens, passwords): stored "
                                                        "encrypted, never returned.")


class IntegrationPatchIn(BaseModel):
    """Only the fields sent change; any refusal changes nothing."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=no_null_defaults)
    name: Name = Field(None, description="A new name.")
    config: dict[str, Any] = Field(None, max_length=20, description="Settings to change (merged into the current "
                                                                    "ones); null for a field resets it.")
    secrets: dict[str, SecretValue | None] = Field(None, max_length=10,
                                                   description="Secrets to set or replace (null removes one).")
    rotate_ingest_token: bool = Field(None, description="Sources: issue a new ingest token (in this answer, once) "
                                                        "and revoke the old one at once.")


class IntegrationQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")
    provider: ProviderKey | None = Field(None, description="Only this provider.")
    status: Literal[HEALTH_STATUSES] | None = Field(None, description="Only this health status.")


class IntegrationHealthOut(BaseModel):
    status: Literal[HEALTH_STATUSES] = Field(description="untested, healthy, failing, or not_testable (nothing "
                                                         "outbound to call).")
    last_checked_at: dt.datetime | None
    last_ok_at: dt.datetime | None
    last_error: str
    http_status: int | None
    latency_ms: float | None


class IntegrationIngestOut(BaseModel):
    url: str = Field(description="Where the vendor pushes (ZENTRO_PUBLIC_URL, else this server's address).")
    token: str | None = Field(description="The ingest token: only in the create or rotate answer.")
    token_prefix: str | None
    token_revoked: bool
    headers: dict[str, str]
    setup: list[str]
    payload_template: dict | None = Field(description="What to paste into the vendor's webhook payload (Datadog, "
                                                      "New Relic).")
    example_payload: dict = Field(description="A payload the ingest endpoint accepts, as the vendor sends it.")
    curl: str


class IntegrationOut(BaseModel):
    id: int
    provider: ProviderKey
    provider_label: str
    kind: Literal[KINDS]
    name: str
    config: dict
    secrets_set: list[str]
    secret_hints: dict[str, str]
    scopes: list[str] = Field(description="What Zentro does with this connection.")
    health: IntegrationHealthOut
    last_sync_at: dt.datetime | None = Field(description="Sources: when the ingest token last pushed; others: the "
                                                         "last successful test.")
    last_received_at: dt.datetime | None
    ingest: IntegrationIngestOut | None
    created_at: dt.datetime
    updated_at: dt.datetime


class IntegrationPage(BaseModel):
    data: list[IntegrationOut]
    next_cursor: str | None


class IntegrationTestOut(BaseModel):
    outcome: Literal["healthy", "failing", "not_testable"]
    status: Literal[HEALTH_STATUSES]
    detail: str
    http_status: int | None
    latency_ms: float | None
    target: str = Field(description="What was called (method, origin and path; never credentials).")
    checked_at: dt.datetime


class IntegrationFieldOut(BaseModel):
    name: str
    required: bool
    description: str
    default: Any
    type: str


class IntegrationProviderOut(BaseModel):
    key: ProviderKey
    label: str
    kind: Literal[KINDS]
    description: str
    scopes: list[str]
    config_fields: list[IntegrationFieldOut]
    secret_fields: list[IntegrationFieldOut]
    ingest_path: str | None


class IntegrationProvidersOut(BaseModel):
    data: list[IntegrationProviderOut]


def public_base() -> str:
    return current_app.config.get("ZENTRO_PUBLIC_URL") or request.host_url


def _allow_private() -> bool:
    return bool(current_app.config.get("ZENTRO_INTEGRATIONS_ALLOW_PRIVATE"))


def _one(row: Integration, plaintext: str | None = None) -> dict:
    tok = svc.tokens_of(row.org_id, [row]).get(row.ingest_token_id)
    return svc.integration_json(row, tok, public_base(), plaintext)


@api_route(bp, "/integrations/providers", methods=("GET",), response=IntegrationProvidersOut,
           summary="The provider catalogue: kinds, configuration and secret fields, scopes.", **COMMON)
def list_providers():
    return jsonify(data=svc.catalogue())


@api_route(bp, "/integrations", methods=("GET",), query=IntegrationQuery, response=IntegrationPage,
           summary="List connected providers and connection health, newest first (any role; never a secret).",
           **COMMON)
def list_integrations(query: IntegrationQuery):
    p = current_principal()
    rows, cursor = paginate(svc.integrations_query(p.org.id, provider=query.provider, status=query.status),
                            Integration.id, query)
    toks = svc.tokens_of(p.org.id, rows)
    base = public_base()
    return jsonify(data=[svc.integration_json(r, toks.get(r.ingest_token_id), base) for r in rows], next_cursor=cursor)


@api_route(bp, "/integrations", methods=("POST",), body=IntegrationCreateIn, response=IntegrationOut, status=201,
           min_role="admin",
           summary="Initiate a token-based provider connection (owner/admin). Sources get an ingest token, shown in "
                   "this answer only, with the URL and an example payload to paste into the vendor.", **COMMON)
def create_integration(body: IntegrationCreateIn):
    p = current_principal()
    row, plaintext = svc.create_integration(p.org.id, provider=body.provider, name=body.name, config=body.config,
                                            secrets=body.secrets, actor=p.actor, allow_private=_allow_private(),
                                            user_id=p.user.id if p.user else None)
    return jsonify(_one(row, plaintext)), 201


@api_route(bp, "/integrations/<int:integration_id>", methods=("GET",), response=IntegrationOut,
           tenant_model=Integration, summary="Fetch integration scopes and last sync status (any role).", **COMMON)
def get_integration(integration_id: int):
    p = current_principal()
    return jsonify(_one(svc.get_integration(p.org.id, integration_id)))


@api_route(bp, "/integrations/<int:integration_id>", methods=("PATCH",), body=IntegrationPatchIn,
           response=IntegrationOut, min_role="admin", tenant_model=Integration,
           summary="Refresh tokens or update the configuration (owner/admin): name, config, secrets, "
                   "rotate_ingest_token (new token in this answer, once; the old one stops at once).", **COMMON)
def patch_integration(integration_id: int, body: IntegrationPatchIn):
    p = current_principal()
    row, plaintext = svc.update_integration(p.org.id, integration_id, body.model_dump(exclude_unset=True),
                                            actor=p.actor, allow_private=_allow_private(),
                                            user_id=p.user.id if p.user else None)
    return jsonify(_one(row, plaintext))


@api_route(bp, "/integrations/<int:integration_id>", methods=("DELETE",), status=204, min_role="admin",
           tenant_model=Integration,
           summary="Revoke provider access and remove the configuration (owner/admin); a source's ingest token is "
                   "revoked at once.", **COMMON)
def delete_integration(integration_id: int):
    p = current_principal()
    svc.delete_integration(p.org.id, integration_id, actor=p.actor)
    return "", 204


@api_route(bp, "/integrations/<int:integration_id>/test", methods=("POST",), response=IntegrationTestOut, min_role="admin",
           tenant_model=Integration,
           summary="Verify connectivity with one bounded probe request to the provider and record the health "
                   "(owner/admin). 200 with outcome failing or not_testable when it did not succeed.", **COMMON)
def test_integration(integration_id: int):
    p = current_principal()
    cfg = current_app.config
    return jsonify(svc.test_integration(
        p.org.id, integration_id, actor=p.actor, allow_private=_allow_private(),
        timeout=float(cfg["ZENTRO_INTEGRATION_PROBE_TIMEOUT_SECONDS"]),
        slack_api_url=cfg.get("ZENTRO_SLACK_API_URL") or "https://slack.com/api/"))
