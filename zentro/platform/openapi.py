"""The OpenAPI 3.1 document, generated from the route registry and the pydantic models that
validate requests — never written by hand."""
from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from zentro.platform.routes import REGISTRY, RouteMeta

ERROR_STATUSES = {
    "400": "Invalid input (VALIDATION_ERROR)",
    "401": "Missing or invalid credentials (UNAUTHORIZED)",
    "402": "The organisation's plan does not include this (PAYMENT_REQUIRED)",
    "403": "Authenticated but not allowed: role, scope, scheme or CSRF (FORBIDDEN)",
    "404": "Not found, or owned by another organisation (NOT_FOUND)",
    "405": "Method not allowed",
    "413": "Body larger than the configured cap (PAYLOAD_TOO_LARGE)",
    "415": "Body is not application/json (UNSUPPORTED_MEDIA_TYPE)",
    "429": "Rate limit exceeded (RATE_LIMIT_EXCEEDED); see Retry-After",
    "500": "Unexpected server error (INTERNAL_ERROR)",
    "503": "Not ready: the database is unreachable or behind the migration head",
}
MUTATION_STATUSES = {
    "409": "An earlier request with this Idempotency-Key is still running (CONFLICT)",
    "422": "Idempotency-Key reused with a different body (IDEMPOTENCY_MISMATCH)",
}
SECURITY = {
    "session": {"cookieAuth": []},
    "api_key": [{"bearerApiKey": []}, {"headerApiKey": []}],
    "ingest_token": {"ingestToken": []},
    "assessor_token": {"assessorToken": []},
    "cron": {"cronSecret": []},
}
# Response headers, defined once under components/headers and referenced by name.
_INT = {"type": "integer", "minimum": 0}
HEADERS = {
    "X-Request-ID": {"description": "The caller's printable X-Request-ID of up to 64 characters, else a fresh id; "
                                    "also stored on the audit rows the call wrote.",
                     "required": True, "schema": {"type": "string", "minLength": 1}},
    "X-RateLimit-Limit": {"description": "Calls allowed in the current window for your plan",
                          "required": True, "schema": _INT},
    "X-RateLimit-Remaining": {"description": "Calls left in the current window", "required": True, "schema": _INT},
    "X-RateLimit-Reset": {"description": "Unix time when the window resets", "required": True, "schema": _INT},
    "Retry-After": {"description": "Seconds until the window resets", "required": True, "schema": _INT},
    "Idempotent-Replayed": {"description": "Present when this is the stored response to an earlier request with "
                                           "the same Idempotency-Key and body", "schema": {"type": "string", "enum": ["true"]}},
    "Content-Disposition": {"description": 'attachment; filename="…"', "schema": {"type": "string"}},
}
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")

NO_NUL = "^[^\\x00]*$"
# Ids are PostgreSQL INTEGER primary keys.
MAX_ID = 2_147_483_647
# What pydantic's strip_whitespace trims (Unicode White_Space); a stripped string that must be non-empty
# therefore needs one character outside this set.
NOT_WHITESPACE = r"[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# idempotency.run_idempotent: after trimming, 1–255 printable characters (headers are Latin-1).
_PRINTABLE = r" -~\u00a1-\u00ac\u00ae-\u00ff"
_VISIBLE = r"!-~\u00a1-\u00ac\u00ae-\u00ff"
IDEMPOTENCY_KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 255,
                          "pattern": f"^[{_VISIBLE}](?:[{_PRINTABLE}]{{0,253}}[{_VISIBLE}])?$"}


def _cursor_pattern() -> str:
    """pagination.encode_cursor: unpadded URL-safe base64 of ``id:<digits>``, or empty for the first
    page. Spelled out so that clients and generators know which strings are cursors at all (anything
    else is 400)."""
    lead = "(?:[MN][DTjz]|O[DT])"  # the first two characters of three encoded ASCII digits
    three, two, one = f"{lead}[AEIMQUYcgk][w-z0-5]", f"{lead}[AEIMQUYcgk]", "(?:[MN][AQgw]|O[AQ])"
    return f"^(?:aWQ6(?:{three})*(?:{three}|{two}|{one}))?$"


class _JsonSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema plus what its validation does that the default output leaves out."""

    def str_schema(self, schema):
        out = super().str_schema(schema)
        # routes.parse_body refuses U+0000 anywhere (PostgreSQL text cannot store it)
        if "pattern" in out:
            out.setdefault("allOf", []).append({"pattern": NO_NUL})
        else:
            out["pattern"] = NO_NUL
        if schema.get("strip_whitespace") and schema.get("min_length", 0) >= 1:
            # "   " strips to "" and fails min_length
            if "pattern" in out:
                out.setdefault("allOf", []).append({"pattern": NOT_WHITESPACE})
            else:
                out["pattern"] = NOT_WHITESPACE
        return out


def _model_schema(model: type[BaseModel], **kw) -> dict:
    return model.model_json_schema(schema_generator=_JsonSchema, **kw)


def _scope_vocabulary() -> list[str]:
    from zentro.accounts.service import known_scopes

    return sorted(known_scopes())


# Constraints a service enforces on a request model's field (so the model's own schema cannot show
# them), keyed by (model name, field). Better moved into the models as validators + json_schema_extra.
SERVICE_CONSTRAINTS = {
    ("CreateKeyIn", "scopes"): lambda prop: prop["items"].update(enum=_scope_vocabulary()),
}


class ErrorBody(BaseModel):
    error: str
    detail: str
    error_code: str
    errors: list[dict] | None = None


def _path(rule: str, enums: dict | None = None) -> tuple[str, list[dict]]:
    """The OpenAPI path and its parameters; ``enums`` (a route's extra["path_enum"]) lists the values a
    string parameter may take (e.g. the assessor resources)."""
    params = []

    def repl(m: re.Match) -> str:
        conv, name = m.group(1), m.group(2)
        schema = {"type": "integer", "minimum": 0, "maximum": MAX_ID} if conv == "int" else {"type": "string"}
        if enums and name in enums:
            schema = {"type": "string", "enum": list(enums[name])}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return re.sub(r"<(?:(\w+):)?(\w+)>", repl, rule), params


def _schema_ref(model: type[BaseModel], components: dict) -> dict:
    schema = _model_schema(model, ref_template="#/components/schemas/{model}", mode="serialization")
    for name, sub in schema.pop("$defs", {}).items():
        _add_component(components, name, sub)
    for (model_name, field_name), constrain in SERVICE_CONSTRAINTS.items():
        if model_name == model.__name__ and field_name in schema.get("properties", {}):
            constrain(schema["properties"][field_name])
    _add_component(components, model.__name__, schema)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _add_component(components: dict, name: str, schema: dict) -> None:
    """Components are named by class; two different models with one name would overwrite each other."""
    if name in components and components[name] != schema:
        raise ValueError(f"two different request/response models are both named {name!r}; rename one")
    components[name] = schema


def _query_params(model: type[BaseModel]) -> list[dict]:
    from zentro.platform.pagination import PageQuery

    schema = _model_schema(model)
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        prop.pop("title", None)
        desc = prop.pop("description", "")
        if "anyOf" in prop:  # Optional[X] → X (an absent parameter is the None)
            prop = next(p for p in prop["anyOf"] if p.get("type") != "null") | {k: v for k, v in prop.items() if k != "anyOf"}
        prop.pop("default", None) if prop.get("default") is None else None
        if issubclass(model, PageQuery) and name == "cursor":
            prop["pattern"] = _cursor_pattern()
        out.append({"name": name, "in": "query", "required": name in required, "schema": prop, "description": desc})
    return out


def _headers(meta: RouteMeta, method: str, *extra: str) -> dict:
    """Every response carries X-Request-ID; rate-limited /api/ routes the X-RateLimit-* trio."""
    from zentro.platform.ratelimit import UNLIMITED_PATHS

    names = ["X-Request-ID"]
    if meta.rule not in UNLIMITED_PATHS:
        names += RATE_HEADERS
    if meta.kind == "api" and method in ("POST", "PUT", "PATCH", "DELETE") and meta.idempotent:
        names.append("Idempotent-Replayed")
    return {name: {"$ref": f"#/components/headers/{name}"} for name in [*names, *extra]}


_BINARY = {"type": "string", "format": "binary"}
FILE_FORMATS = {  # response= names of non-JSON-model answers → (content type, schema)
    "json": ("application/json", {"type": "object"}), "oscal": ("application/json", {"type": "object"}),
    "csv": ("text/csv", {"type": "string"}), "zip": ("application/zip", _BINARY), "pdf": ("application/pdf", _BINARY),
    "pem": ("application/x-pem-file", {"type": "string"}), "ics": ("text/calendar", {"type": "string"}),
    "html": ("text/html", {"type": "string"}), "markdown": ("text/markdown", {"type": "string"}),
}


def _responses(meta: RouteMeta, method: str, components: dict) -> dict:
    ok: dict[str, Any] = {"description": "Success", "headers": _headers(meta, method)}
    resp = meta.response
    if isinstance(resp, type) and issubclass(resp, BaseModel):
        ok["content"] = {"application/json": {"schema": _schema_ref(resp, components)}}
    elif resp == "markdown":
        ok["content"] = {"text/markdown": {"schema": {"type": "string"}}}
        ok["headers"] = _headers(meta, method, "Content-Disposition")
    elif resp == "sse":
        # one schema per event, as an SSE parser yields them
        ok["content"] = {"text/event-stream": {"schema": {"type": "object", "properties": {
            "event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"},
            "retry": {"type": "integer"}}}}}
    elif resp in FILE_FORMATS or isinstance(resp, tuple):
        # a download, or a report in several formats (?format=): every content type it may answer with
        content: dict[str, Any] = {}
        for fmt in (resp if isinstance(resp, tuple) else (resp,)):
            mime, schema = FILE_FORMATS[fmt]
            content.setdefault(mime, {"schema": schema})
        ok["content"] = content
        if set(content) != {"application/json"}:
            ok["headers"] = _headers(meta, method, "Content-Disposition")
    elif resp is None:
        ok["content"] = {"application/json": {"schema": {"type": "object"}}}
    status = "204" if meta.status == 204 and method != "GET" else str(meta.status if method != "GET" else 200)
    if status == "204":
        ok.pop("content", None)
    responses = {status: ok}
    for extra_status, desc in meta.extra.get("also_statuses", {}).items():
        responses[str(extra_status)] = {**ok, "description": desc}
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    statuses = dict(ERROR_STATUSES)
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        statuses |= MUTATION_STATUSES
    statuses |= {str(code): desc for code, desc in meta.extra.get("error_statuses", {}).items()}  # route-specific
    for code, desc in statuses.items():
        responses[code] = {"description": desc, "headers": _headers(meta, method, *(["Retry-After"] if code == "429" else [])),
                           "content": error_ref}
    return responses


def in_spec(meta: RouteMeta) -> bool:
    """API routes, plus public /api/ routes that declare a response (the health probes)."""
    return meta.kind == "api" or (meta.kind == "public" and meta.rule.startswith("/api/") and meta.response is not None)


def build_spec() -> dict:
    components: dict[str, Any] = {}
    _schema_ref(ErrorBody, components)
    paths: dict[str, dict] = {}
    for meta in sorted(REGISTRY.values(), key=lambda m: m.rule):
        if not in_spec(meta):
            continue
        path, params = _path(meta.rule, meta.extra.get("path_enum"))
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
            if method in ("POST", "PUT", "PATCH", "DELETE") and meta.idempotent:
                op["parameters"].append({"name": "Idempotency-Key", "in": "header", "required": False,
                                         "schema": IDEMPOTENCY_KEY_SCHEMA,
                                         "description": "Replays the stored response for the same key and body (24 h); "
                                                        "the same key with another body is 422."})
            body = meta.body or meta.doc_body
            if body is not None and method != "GET":
                op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _schema_ref(body, components)}}}
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
            "headers": HEADERS,
            "securitySchemes": {
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "session",
                               "description": "Browser session; unsafe methods need the X-CSRFToken header."},
                "bearerApiKey": {"type": "http", "scheme": "bearer", "description": "User API key zentro_pk_…"},
                "headerApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "ingestToken": {"type": "http", "scheme": "bearer", "description": "Alert-ingest token zentro_it_…"},
                "assessorToken": {"type": "http", "scheme": "bearer",
                                  "description": "Assessor token zentro_ca_…: read-only, expiring, limited to its resources"},
                "cronSecret": {"type": "http", "scheme": "bearer",
                               "description": "The entrypoint's ZENTRO_*_CRON_SECRET (unset: the entrypoint answers 404)"},
            },
        },
    }
