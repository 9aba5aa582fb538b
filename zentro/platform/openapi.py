"""The OpenAPI 3.1 document, generated from the route registry and the pydantic models that
validate requests — never written by hand."""
from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from zentro.platform.routes import REGISTRY, RouteMeta

ERROR_STATUSES = {
    "400": "Invalid input (VALIDATION_ERROR)",
    "401": "Missing or invalid credentials (UNAUTHORIZED)",
    "403": "Authenticated but not allowed: role, scope, scheme or CSRF (FORBIDDEN)",
    "404": "Not found, or owned by another organisation (NOT_FOUND)",
    "405": "Method not allowed",
    "413": "Body larger than the configured cap (PAYLOAD_TOO_LARGE)",
    "415": "Body is not application/json (UNSUPPORTED_MEDIA_TYPE)",
    "429": "Rate limit exceeded (RATE_LIMIT_EXCEEDED); see Retry-After",
    "500": "Unexpected server error (INTERNAL_ERROR)",
}
MUTATION_STATUSES = {
    "409": "An earlier request with this Idempotency-Key is still running (CONFLICT)",
    "422": "Idempotency-Key reused with a different body (IDEMPOTENCY_MISMATCH)",
}
SECURITY = {
    "session": {"cookieAuth": []},
    "api_key": [{"bearerApiKey": []}, {"headerApiKey": []}],
    "ingest_token": {"ingestToken": []},
}
RATE_HEADERS = {
    name: {"description": desc, "schema": {"type": "integer"}}
    for name, desc in [
        ("X-RateLimit-Limit", "Calls allowed in the current window for your plan"),
        ("X-RateLimit-Remaining", "Calls left in the current window"),
        ("X-RateLimit-Reset", "Unix time when the window resets"),
    ]
}


class ErrorBody(BaseModel):
    error: str
    detail: str
    error_code: str
    errors: list[dict] | None = None


def _path(rule: str) -> tuple[str, list[dict]]:
    params = []

    def repl(m: re.Match) -> str:
        conv, name = m.group(1), m.group(2)
        schema = {"type": "integer", "minimum": 0} if conv == "int" else {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return re.sub(r"<(?:(\w+):)?(\w+)>", repl, rule), params


def _schema_ref(model: type[BaseModel], components: dict) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _query_params(model: type[BaseModel]) -> list[dict]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        prop.pop("title", None)
        desc = prop.pop("description", "")
        if "anyOf" in prop:  # Optional[X] → X (an absent parameter is the None)
            prop = next(p for p in prop["anyOf"] if p.get("type") != "null") | {k: v for k, v in prop.items() if k != "anyOf"}
        prop.pop("default", None) if prop.get("default") is None else None
        out.append({"name": name, "in": "query", "required": name in required, "schema": prop, "description": desc})
    return out


def _responses(meta: RouteMeta, method: str, components: dict) -> dict:
    ok: dict[str, Any] = {"description": "Success", "headers": RATE_HEADERS}
    resp = meta.response
    if isinstance(resp, type) and issubclass(resp, BaseModel):
        ok["content"] = {"application/json": {"schema": _schema_ref(resp, components)}}
    elif resp == "csv":
        ok["content"] = {"text/csv": {"schema": {"type": "string"}}}
    elif resp is None:
        ok["content"] = {"application/json": {"schema": {"type": "object"}}}
    status = "204" if meta.status == 204 and method != "GET" else str(meta.status if method != "GET" else 200)
    if status == "204":
        ok.pop("content", None)
    responses = {status: ok}
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    statuses = dict(ERROR_STATUSES)
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        statuses |= MUTATION_STATUSES
    for code, desc in statuses.items():
        responses[code] = {"description": desc, "content": error_ref}
    return responses


def build_spec() -> dict:
    components: dict[str, Any] = {}
    _schema_ref(ErrorBody, components)
    paths: dict[str, dict] = {}
    for meta in sorted(REGISTRY.values(), key=lambda m: m.rule):
        if meta.kind != "api":
            continue
        path, params = _path(meta.rule)
        for method in meta.methods:
            op: dict[str, Any] = {
                "operationId": f"{meta.endpoint.replace('.', '_')}_{method.lower()}",
                "summary": meta.summary,
                "tags": list(meta.tags) or [meta.endpoint.split(".")[0]],
                "parameters": list(params),
                "responses": _responses(meta, method, components),
                "security": [s for scheme in meta.auth for s in (SECURITY[scheme] if isinstance(SECURITY[scheme], list) else [SECURITY[scheme]])],
            }
            if meta.query is not None:
                op["parameters"] += _query_params(meta.query)
            if method in ("POST", "PUT", "PATCH", "DELETE"):
                op["parameters"].append({"name": "Idempotency-Key", "in": "header", "required": False,
                                         "schema": {"type": "string", "maxLength": 255},
                                         "description": "Replays the stored response for the same key and body (24 h)."})
            if meta.body is not None and method != "GET":
                op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _schema_ref(meta.body, components)}}}
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Zentro API",
            "version": "1.0.0",
            "description": "Incident and compliance operations. Errors use the envelope "
                           "`{error, detail, error_code}`; lists use cursor pagination; mutations accept Idempotency-Key.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "session",
                               "description": "Browser session; unsafe methods need the X-CSRFToken header."},
                "bearerApiKey": {"type": "http", "scheme": "bearer", "description": "User API key zentro_pk_…"},
                "headerApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "ingestToken": {"type": "http", "scheme": "bearer", "description": "Alert-ingest token zentro_it_…"},
            },
        },
    }
