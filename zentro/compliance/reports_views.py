"""Compliance report pages: ``/compliance/reports`` lists every registered report by category, and
``/compliance/reports/<slug>`` shows one in the app: a parameter form generated from the report's query model,
its headline figures, charts, tables (long sections capped, with a link to the full CSV), notes and definitions
(the same body as the printable document, ``renderers.html_body``), and a download menu with one link per format
to ``GET /api/governance/compliance/<slug>`` with the current parameters.

Session only; viewers may read. Parameters come from the query string and are validated by the report's own
query model, exactly as the API validates them: invalid ones re-render the form with the reasons inline (400)
and build no report. Unknown slugs are 404."""
from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

from flask import Blueprint, render_template, request, url_for
from pydantic import BaseModel, ValidationError

from zentro.compliance import renderers
from zentro.compliance import report_registry as registry
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import page_route
from zentro.platform.types import utcnow

bp = Blueprint("compliance_report_pages", __name__)
PAGE_ROW_LIMIT = 200  # rows per section on the page; the CSV (or JSON) download has every row
API_PREFIX = "/api/governance/compliance"
IGNORED_ARGS = ("format",)  # the page is always HTML; a format in the address is for the API links only


# --- the parameter form, from the query model ---------------------------------------------------------------

@dataclass
class FormField:
    name: str  # the query parameter (the alias when the field has one)
    label: str
    kind: str  # number | select | checkbox | text
    help: str = ""
    value: Any = None  # what the input shows (the submitted text, else the default)
    options: list[tuple[str, str]] = field(default_factory=list)  # (value, label) for selects
    attrs: dict[str, Any] = field(default_factory=dict)  # min, max, step, maxlength
    error: str = ""


def _unwrap(annotation) -> tuple[Any, bool]:
    """(the annotation without None, whether None is allowed)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        if len(args) == 1:
            return args[0], optional
        return annotation, optional
    return annotation, False


def _constraint(info, name: str):
    for m in info.metadata:
        value = getattr(m, name, None)
        if value is not None:
            return value
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def form_fields(model: type[BaseModel], raw: dict[str, str]) -> list[FormField]:
    out = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        ann, optional = _unwrap(info.annotation)
        default = None if info.is_required() else info.default
        shown = raw[key] if key in raw else (raw[name] if name in raw else _text(default))
        f = FormField(key, renderers.humanize(key), "text", info.description or "", shown)
        if ann is bool:
            f.kind = "checkbox"
            f.value = shown.lower() in ("true", "1", "yes", "on")
        elif typing.get_origin(ann) is Literal:
            f.kind = "select"
            f.options = ([("", "any")] if optional else []) + [(str(v), str(v)) for v in typing.get_args(ann)]
        elif ann in (int, float):
            f.kind = "number"
            lo = _constraint(info, "ge")
            hi = _constraint(info, "le")
            gt, lt = _constraint(info, "gt"), _constraint(info, "lt")
            f.attrs = {"min": lo if lo is not None else (gt + 1 if gt is not None and ann is int else None),
                       "max": hi if hi is not None else (lt - 1 if lt is not None and ann is int else None),
                       "step": 1 if ann is int else "any"}
        else:
            f.attrs = {"maxlength": _constraint(info, "max_length")}
        out.append(f)
    return out


def raw_params(model: type[BaseModel]) -> dict[str, str]:
    """The query string as the report's parameters: ``format`` dropped; an empty value (a blank input, the "any"
    option of a select) means the parameter's default; a checkbox sends a hidden "false" and, when ticked, "true"
    too, so a bool parameter is true when any of its values is."""
    bools = {info.alias or name for name, info in model.model_fields.items() if _unwrap(info.annotation)[0] is bool}
    bools |= {name for name, info in model.model_fields.items() if _unwrap(info.annotation)[0] is bool}
    out: dict[str, str] = {}
    for key in request.args:
        if key in IGNORED_ARGS:
            continue
        values = request.args.getlist(key)
        if all(v == "" for v in values):
            continue
        if key in bools and len(values) > 1:
            out[key] = "true" if any(v.lower() in ("true", "on", "1") for v in values) else values[-1]
        else:
            out[key] = values[0]
    return out


def validation_errors(model: type[BaseModel], exc: ValidationError) -> tuple[dict[str, str], list[str]]:
    """({parameter: message} for the inline errors, [every message] for the summary)."""
    names = {}
    for name, info in model.model_fields.items():
        names[name] = names[info.alias or name] = info.alias or name
    by_field: dict[str, str] = {}
    messages: list[str] = []
    for e in exc.errors(include_url=False):
        loc = str(e["loc"][0]) if e.get("loc") else ""
        msg = str(e.get("msg", "invalid value")).removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            messages.append(f"Unknown parameter {loc!r}: this report takes "
                            + (", ".join(sorted(set(names.values()))) or "no parameters") + ".")
            continue
        key = names.get(loc, loc)
        by_field.setdefault(key, msg)
        messages.append(f"{renderers.humanize(key)}: {msg}")
    return by_field, messages


def api_params(q: BaseModel) -> list[tuple[str, str]]:
    """The validated parameters that differ from their defaults, as query-string pairs (by alias)."""
    out = []
    for name, info in type(q).model_fields.items():
        value = getattr(q, name)
        if value is None or (not info.is_required() and value == info.default):
            continue
        out.append((info.alias or name, _text(value)))
    return out


def api_href(slug: str, params: list[tuple[str, str]], fmt: str) -> str:
    return f"{API_PREFIX}/{slug}?" + urlencode([*params, ("format", fmt)])


# --- pages ---------------------------------------------------------------------------------------------------

@page_route(bp, "/compliance/reports", summary="Compliance reports: every analytics report, grouped by category.")
def reports_index():
    reports = registry.discover()
    groups = []
    for category in registry.CATEGORIES:
        defs = sorted((d for d in reports.values() if d.category == category), key=lambda d: d.title.lower())
        if defs:
            groups.append((category, defs))
    return render_template("reports/index.html", groups=groups, labels=registry.FORMAT_LABELS, total=len(reports))


@page_route(bp, "/compliance/reports/<slug>", extra={"path_samples": {"slug": "calendar"}},
            summary="One compliance report: parameters, headline figures, charts, tables and downloads.")
def report_page(slug: str):
    registry.discover()
    d = registry.REPORTS.get(slug)
    if d is None:
        raise ApiError(404, f"Unknown report {slug!r}.")
    raw = raw_params(d.query)
    errors: dict[str, str] = {}
    messages: list[str] = []
    body = downloads = None
    status = 200
    if any("\x00" in v for v in raw.values()):
        messages, status = ["Parameters must not contain the NUL character."], 400
    else:
        try:
            q = d.query.model_validate(raw)
        except ValidationError as exc:
            errors, messages = validation_errors(d.query, exc)
            status = 400
        else:
            p = current_principal()
            ctx = registry.ReportContext(org_id=p.org.id, now=utcnow(), query=q, org_slug=p.org.slug,
                                         user_id=p.user.id if p.user is not None else None)
            try:
                report = d.build(ctx)
            except ApiError as exc:
                if exc.status != 400:
                    raise
                messages, status = [exc.detail], 400
            else:
                params = api_params(q)
                downloads = [(fmt, registry.FORMAT_LABELS.get(fmt, fmt.upper()), api_href(slug, params, fmt))
                             for fmt in d.formats]
                full = next((fmt for fmt in ("csv", "json") if fmt in d.formats), None)
                body = renderers.html_body(report, row_limit=PAGE_ROW_LIMIT, in_app=True,
                                           csv_href=api_href(slug, params, full) if full else None)
    fields = form_fields(d.query, raw)
    for f in fields:
        f.error = errors.get(f.name, "")
    return render_template("reports/page.html", d=d, fields=fields, messages=messages, body=body,
                           downloads=downloads, action=url_for("compliance_report_pages.report_page", slug=slug),
                           index=url_for("compliance_report_pages.reports_index")), status
