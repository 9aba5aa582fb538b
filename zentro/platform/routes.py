"""One decorator per kind of route. It records what the route needs (auth schemes, role, scope,
request models, the tenant-owned model behind its ``<id>``), enforces it, and feeds the OpenAPI
document and the tenant-isolation test harness from the same record."""
from __future__ import annotations

import functools
import hmac
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from flask import Blueprint, current_app, request
from pydantic import BaseModel, ValidationError

from zentro.accounts.models import Role
from zentro.platform.auth import UNSAFE_METHODS, current_principal
from zentro.platform.errors import ApiError

ALL_SCHEMES = ("session", "api_key")


@dataclass
class RouteMeta:
    kind: str  # api | page | public
    endpoint: str
    rule: str
    methods: tuple[str, ...]
    summary: str = ""
    auth: tuple[str, ...] = ALL_SCHEMES
    min_role: str | None = None  # None: viewer for safe methods, member for unsafe ones
    resource: str = ""
    body: type[BaseModel] | None = None
    # Documented request body for routes that parse several formats themselves (the spec shows this
    # model; the view does its own validation). Such bodies still may not carry NUL.
    doc_body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None  # pydantic model, or a dict {status: model}, or "csv"/"text"
    status: int = 200
    tenant_model: Any = None  # model class whose (org_id, id) the <id> in the rule names
    idempotent: bool = True
    tags: tuple[str, ...] = ()
    cron_secret: str = ""  # auth=("cron",): the config key holding this entrypoint's bearer secret
    extra: dict = field(default_factory=dict)

    def required_role(self, method: str) -> Role:
        if self.min_role:
            return Role(self.min_role)
        return Role.member if method in UNSAFE_METHODS else Role.viewer


REGISTRY: dict[str, RouteMeta] = {}


def _format_errors(exc: ValidationError) -> list[dict]:
    return [{"loc": [str(x) for x in e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)]


def no_null_defaults(schema: dict) -> None:
    """``json_schema_extra`` of PATCH-style bodies: an omitted field means "leave it alone", not null, so the
    document does not advertise null defaults."""
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None:
            del prop["default"]


def parse_query(model: type[BaseModel]) -> BaseModel:
    if any("\x00" in v for vs in request.args.listvalues() for v in vs):
        raise ApiError(400, "Query parameters must not contain the NUL character.")
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise ApiError(400, "Invalid query parameters", errors=_format_errors(exc)) from None


# JSON can carry U+0000 only as the escape \u0000 (an odd run of backslashes before "u0000").
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def refuse_nul(raw: bytes) -> None:
    """PostgreSQL text cannot hold U+0000, so no JSON body may carry it (keys included)."""
    if b"\x00" in raw or _NUL_ESCAPE.search(raw):
        raise ApiError(400, "Strings must not contain the NUL character (U+0000).")


def parse_body(model: type[BaseModel]) -> BaseModel:
    # Decide on the media type before reading: a form body may already have been parsed (the CSRF
    # check reads the form), which would make it look empty.
    if request.mimetype and request.mimetype != "application/json" and (request.content_length or 0) > 0:
        raise ApiError(415, "Send the request body as application/json.")
    raw = request.get_data(cache=True)
    refuse_nul(raw)
    if not raw.strip():
        data: Any = {}
    else:
        if request.mimetype != "application/json":
            raise ApiError(415, "Send the request body as application/json.")
        try:
            import json
            data = json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, f"Malformed JSON body: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The JSON body must be an object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "Invalid request body", errors=_format_errors(exc)) from None


def authorize(meta: RouteMeta) -> None:
    """Enforce the route's auth record; raises the envelope error (pages turn 401 into a redirect)."""
    if meta.auth == ("cron",):
        check_cron_secret(meta.cron_secret)
        return
    p = current_principal()
    if p is None or p.scheme not in meta.auth:
        if p is not None and p.scheme == "ingest_token":
            raise ApiError(403, "Alert-ingest tokens are accepted only by ingest endpoints.")
        if p is not None:
            raise ApiError(403, f"This endpoint does not accept {p.scheme.replace('_', ' ')} credentials.")
        raise ApiError(401, "Invalid or missing credentials. Sign in, or send Authorization: Bearer <API key>.")
    if p.role is not None and not p.role.at_least(meta.required_role(request.method)):
        raise ApiError(403, f"Your role ({p.role.value}) cannot do this; it needs {meta.required_role(request.method).value} or above.")
    if meta.resource and p.scheme == "api_key":
        needed = f"{meta.resource}:{'write' if request.method in UNSAFE_METHODS else 'read'}"
        if not p.has_scope(needed):
            raise ApiError(403, f"This API key lacks the scope {needed}.")


def check_cron_secret(config_key: str) -> None:
    """Cron entrypoints take ``Authorization: Bearer <secret>`` compared in constant time with the
    configured secret. An unset secret means the entrypoint is off: 404, never open."""
    configured = current_app.config.get(config_key) or ""
    if not configured:
        raise ApiError(404, f"This scheduled entrypoint is disabled: {config_key} is not set.")
    header = request.headers.get("Authorization", "")
    sent = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not sent or not hmac.compare_digest(sent.encode(), configured.encode()):
        raise ApiError(401, f"Send Authorization: Bearer <{config_key}>.")


def _register(bp: Blueprint, rule: str, meta_kwargs: dict, view: Callable, wrapper: Callable) -> Callable:
    methods = tuple(meta_kwargs.pop("methods", ("GET",)))
    endpoint = meta_kwargs.pop("endpoint", None) or view.__name__
    bp.add_url_rule(rule, endpoint, wrapper, methods=list(methods))
    prefix = bp.url_prefix or ""
    meta = RouteMeta(endpoint=f"{bp.name}.{endpoint}", rule=prefix + rule, methods=methods, **meta_kwargs)
    REGISTRY[meta.endpoint] = meta
    wrapper.meta = meta
    return meta


def api_route(bp: Blueprint, rule: str, **kw):
    """JSON API route. The view receives ``body=`` / ``query=`` models when declared and returns
    a Flask response value. Mutations go through Idempotency-Key handling."""

    def decorator(view: Callable) -> Callable:
        meta_holder: list[RouteMeta] = []

        @functools.wraps(view)
        def wrapper(**path_args):
            meta = meta_holder[0]
            authorize(meta)
            kwargs = dict(path_args)
            if meta.query is not None:
                kwargs["query"] = parse_query(meta.query)
            if meta.body is not None and request.method in UNSAFE_METHODS:
                kwargs["body"] = parse_body(meta.body)
            elif meta.doc_body is not None:
                refuse_nul(request.get_data(cache=True))
            if request.method in UNSAFE_METHODS and meta.idempotent:
                from zentro.platform.idempotency import run_idempotent

                return run_idempotent(lambda: view(**kwargs))
            return view(**kwargs)

        if kw.get("auth") == ("cron",):  # no caller to scope an Idempotency-Key to: the job itself is idempotent
            kw["idempotent"] = False
        meta_holder.append(_register(bp, rule, {"kind": "api", **kw}, view, wrapper))
        return wrapper

    return decorator


def is_htmx() -> bool:
    """An HTMX request that wants a fragment (a history restore wants the whole page)."""
    return request.headers.get("HX-Request") == "true" and not request.headers.get("HX-History-Restore-Request")


def page_route(bp: Blueprint, rule: str, **kw):
    """Server-rendered page or HTMX partial behind a signed-in session."""

    def decorator(view: Callable) -> Callable:
        meta_holder: list[RouteMeta] = []

        @functools.wraps(view)
        def wrapper(**path_args):
            authorize(meta_holder[0])
            return view(**path_args)

        meta_holder.append(_register(bp, rule, {"kind": "page", "auth": ("session",), **kw}, view, wrapper))
        return wrapper

    return decorator


def public_route(bp: Blueprint, rule: str, **kw):
    """No authentication: health checks, sign-in, API documents."""

    def decorator(view: Callable) -> Callable:
        _register(bp, rule, {"kind": "public", "auth": (), **kw}, view, view)
        return view

    return decorator
