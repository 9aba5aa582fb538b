"""JSON endpoints for a user's API keys and the org's alert-ingest tokens.

API keys are managed only from a signed-in session (a key cannot mint keys). Ingest tokens may also
be managed with an API key holding the ingest_tokens scope, so provisioning tools can rotate them."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, jsonify
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from zentro.accounts import service
from zentro.accounts.models import ApiKey, IngestToken
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.pagination import PageQuery, paginate
from zentro.platform.routes import api_route
from zentro.platform.types import iso

bp = Blueprint("accounts_api", __name__, url_prefix="/api/user")


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class CreateKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name = Field(description="What the key is for.")
    scopes: list[Annotated[str, StringConstraints(max_length=100)]] = Field(
        default_factory=lambda: ["*"], max_length=50,
        description="resource:read|write|*, or * for everything the user's role allows.")


class CreateTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name = Field(description="Which monitoring source uses it.")


class SecretOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class ApiKeyOut(SecretOut):
    scopes: list[str]


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="The plaintext key. Shown only in this response.")


class IngestTokenCreatedOut(SecretOut):
    token: str = Field(description="The plaintext token. Shown only in this response.")


class ApiKeyPage(BaseModel):
    data: list[ApiKeyOut]
    next_cursor: str | None


class IngestTokenPage(BaseModel):
    data: list[SecretOut]
    next_cursor: str | None


def secret_json(obj: ApiKey | IngestToken) -> dict:
    out = {"id": obj.id, "name": obj.name, "prefix": obj.prefix, "created_at": iso(obj.created_at),
           "last_used_at": iso(obj.last_used_at), "revoked_at": iso(obj.revoked_at)}
    if isinstance(obj, ApiKey):
        out["scopes"] = obj.scope_list
    return out


@api_route(bp, "/api-keys", methods=("GET",), auth=("session",), query=PageQuery, response=ApiKeyPage,
           summary="List your API keys in the active org (metadata only).", tags=("API keys",))
def list_api_keys(query: PageQuery):
    p = current_principal()
    rows, cursor = paginate(service.api_keys_query(p.org, p.user), ApiKey.id, query)
    return jsonify(data=[secret_json(k) for k in rows], next_cursor=cursor)


@api_route(bp, "/api-keys", methods=("POST",), auth=("session",), body=CreateKeyIn, response=ApiKeyCreatedOut, status=201,
           min_role="viewer", summary="Create an API key; the plaintext is returned once.", tags=("API keys",))
def create_api_key(body: CreateKeyIn):
    p = current_principal()
    try:
        key, plaintext = service.create_api_key(p.org, p.user, body.name, body.scopes, p.actor)
    except service.AccountError as exc:
        raise ApiError(400, str(exc)) from None
    return jsonify(secret_json(key) | {"key": plaintext}), 201


@api_route(bp, "/api-keys/<int:key_id>", methods=("DELETE",), auth=("session",), response=ApiKeyOut, min_role="viewer",
           tenant_model=ApiKey, summary="Revoke one of your API keys.", tags=("API keys",))
def revoke_api_key(key_id: int):
    p = current_principal()
    return jsonify(secret_json(service.revoke_api_key(p.org, p.user, key_id, p.actor)))


@api_route(bp, "/alert-ingest-tokens", methods=("GET",), resource="ingest_tokens", query=PageQuery, response=IngestTokenPage,
           summary="List the org's alert-ingest tokens (metadata only).", tags=("Alert-ingest tokens",))
def list_ingest_tokens(query: PageQuery):
    p = current_principal()
    rows, cursor = paginate(service.ingest_tokens_query(p.org), IngestToken.id, query)
    return jsonify(data=[secret_json(t) for t in rows], next_cursor=cursor)


@api_route(bp, "/alert-ingest-tokens", methods=("POST",), resource="ingest_tokens", body=CreateTokenIn,
           response=IngestTokenCreatedOut, status=201, min_role="admin",
           summary="Create an alert-ingest token (owner/admin); the secret is returned once.", tags=("Alert-ingest tokens",))
def create_ingest_token(body: CreateTokenIn):
    p = current_principal()
    tok, plaintext = service.create_ingest_token(p.org, body.name, p.actor, p.user)
    return jsonify(secret_json(tok) | {"token": plaintext}), 201


@api_route(bp, "/alert-ingest-tokens/<int:token_id>", methods=("DELETE",), resource="ingest_tokens", response=SecretOut,
           min_role="admin", tenant_model=IngestToken, summary="Revoke an alert-ingest token (owner/admin).",
           tags=("Alert-ingest tokens",))
def revoke_ingest_token(token_id: int):
    p = current_principal()
    return jsonify(secret_json(service.revoke_ingest_token(p.org, token_id, p.actor)))
