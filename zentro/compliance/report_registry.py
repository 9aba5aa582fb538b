"""The compliance analytics report registry: every report is one small module in ``zentro.compliance.reports``
that registers itself here with ``@report(...)``; shared code does the rest.

A registration declares the slug (the path under /api/governance/compliance/), a title, a one-line summary, a
category for the reports index, the formats it is served in (the first is the default), the query model (one of
the bases below or a subclass), what it reads (``inputs``), its time window and a definition of every figure it
shows (``definitions``: the docs in docs/reports.md are generated from these, so they cannot drift). The build
function takes a ``ReportContext`` and returns a format-neutral ``reporting.Report``.

From one registration:
- ``reports_api`` serves ``GET /api/governance/compliance/<slug>?format=...`` (session or API key, viewers may
  read), with the query validated (a ``format`` field limited to the declared formats is added automatically);
- ``render_response`` turns the report into JSON or CSV (``reporting``), HTML (a printable standalone document),
  Markdown or PDF (``renderers``), or a report-specific format (``custom`` renderers, e.g. ICS or a ZIP);
- ``reports_views`` shows it in the app at /compliance/reports/<slug> with its charts and a download menu;
- ``zentro docs reports`` writes docs/reports.md.
"""
from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from zentro.compliance.reporting import Report

CATEGORIES = ("Program", "Obligations", "Committee & staffing", "Evidence & testing", "Scope & controls", "Digests")
FORMAT_MEDIA = {
    "json": "application/json", "csv": "text/csv", "html": "text/html", "markdown": "text/markdown",
    "pdf": "application/pdf", "ics": "text/calendar", "zip": "application/zip",
}
FORMAT_LABELS = {"json": "JSON", "csv": "CSV", "html": "Printable HTML", "markdown": "Markdown", "pdf": "PDF",
                 "ics": "iCalendar (.ics)", "zip": "ZIP pack"}
WINDOWS = {"7d": 7, "30d": 30, "90d": 90, "180d": 180, "365d": 365}


# --- query bases ------------------------------------------------------------------------------------------

class ReportQuery(BaseModel):
    """No parameters besides ``format`` (added per report)."""
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PeriodQuery(ReportQuery):
    period_days: int = Field(30, ge=1, le=730, alias="periodDays",
                             description="Evidence window in days, ending now (1-730).")


class WindowQuery(ReportQuery):
    window: Literal["7d", "30d", "90d", "180d", "365d"] = Field(
        "90d", description="Look-back window ending now: 7d, 30d, 90d, 180d or 365d.")

    @property
    def days(self) -> int:
        return WINDOWS[self.window]


class ForecastQuery(ReportQuery):
    weeks: int = Field(13, ge=1, le=52, description="Forecast horizon in weeks, starting with the current ISO week "
                                                    "(1-52; 13 = one quarter).")


def _framework_list_pattern() -> str:
    """A regex for a comma-separated list of known framework slugs/keys (so generated inputs are valid ones)."""
    import re

    from zentro.compliance.catalog import FRAMEWORK_ALIASES, FRAMEWORKS

    slug = "(?:" + "|".join(re.escape(a) for a in sorted(set(FRAMEWORK_ALIASES) | set(FRAMEWORKS),
                                                        key=lambda a: (-len(a), a))) + ")"
    return f"^(?:{slug}(?:,{slug})*)?$"


FRAMEWORK_LIST_PATTERN = _framework_list_pattern()


def _framework_list(value: Any) -> list[str]:
    """``"pci-dss,hipaa"`` (or a list) → catalog framework keys; unknown slugs are a validation error."""
    from zentro.compliance.catalog import load_catalog

    if value is None or value == "":
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    catalog = load_catalog()
    keys: list[str] = []
    for item in items:
        slug = str(item).strip()
        if not slug:
            continue
        try:
            key = catalog.resolve_framework(slug).key
        except KeyError:
            raise ValueError(f"unknown framework {slug!r}; use slugs such as soc2, iso27001, pci-dss") from None
        if key not in keys:
            keys.append(key)
    return keys


class WhatIfQuery(ForecastQuery):
    shift_weeks: int = Field(0, ge=-12, le=12, alias="shiftWeeks",
                             description="Move every open obligation (or only those of shiftKind) by this many weeks "
                                         "(-12 to 12).")
    shift_kind: Literal["attestation", "vendor_review", "vendor_report", "bundle", "checkpoint",
                        "evidence_request"] | None = Field(
        None, alias="shiftKind", description="Only shift obligations of this kind (default: all kinds).")
    descope: str = Field("", max_length=300, pattern=FRAMEWORK_LIST_PATTERN,
                         description="Comma-separated framework slugs to take out of scope: "
                                                         "obligations only those frameworks need are dropped.")

    @field_validator("descope")
    @classmethod
    def _known(cls, value: str) -> str:
        _framework_list(value)
        return value

    @property
    def descoped(self) -> list[str]:
        return _framework_list(self.descope)


# --- registrations -----------------------------------------------------------------------------------------

@dataclass
class ReportContext:
    org_id: int
    now: dt.datetime
    query: BaseModel
    org_slug: str = ""
    user_id: int | None = None


@dataclass
class ReportDef:
    slug: str
    title: str
    summary: str
    category: str
    formats: tuple[str, ...]
    query: type[BaseModel]  # the declared model; ``api_query`` adds ``format``
    build: Callable[[ReportContext], Report]
    inputs: str
    window: str
    definitions: dict[str, str]
    custom: dict[str, Callable[[Report, ReportContext], Any]] = field(default_factory=dict)
    api_query: type[BaseModel] | None = None

    @property
    def endpoint(self) -> str:
        return self.slug.replace("-", "_")


REPORTS: dict[str, ReportDef] = {}


def report(slug: str, *, title: str, summary: str, category: str, formats: tuple[str, ...] = ("json", "csv"),
           query: type[BaseModel] = ReportQuery, inputs: str, window: str, definitions: dict[str, str],
           custom: dict[str, Callable[[Report, ReportContext], Any]] | None = None):
    """Register the decorated ``build(ctx) -> Report`` under ``slug``."""
    if category not in CATEGORIES:
        raise ValueError(f"report {slug}: unknown category {category!r}")
    unknown = [f for f in formats if f not in FORMAT_MEDIA]
    missing_custom = [f for f in formats if f in ("ics", "zip") and f not in (custom or {})]
    if unknown or missing_custom:
        raise ValueError(f"report {slug}: formats {unknown or missing_custom} need a known media type / a custom renderer")
    if not definitions:
        raise ValueError(f"report {slug}: define what its figures mean")

    def decorator(build: Callable[[ReportContext], Report]):
        if slug in REPORTS and REPORTS[slug].build.__module__ != build.__module__:
            raise ValueError(f"report {slug} registered twice")
        fmt_type = Literal[formats]  # type: ignore[valid-type]
        api_query = create_model(
            f"{query.__name__}_{slug.replace('-', '_')}", __base__=query,
            format=(fmt_type, Field(formats[0], description="Response format: " + ", ".join(formats) + ".")))
        REPORTS[slug] = ReportDef(slug, title, summary, category, tuple(formats), query, build, inputs, window,
                                  dict(definitions), dict(custom or {}), api_query)
        return build

    return decorator


def import_modules(package) -> None:
    """Import every public module of ``package`` (registries whose entries register themselves on import)."""
    for mod in sorted(m.name for m in pkgutil.iter_modules(package.__path__)):
        if not mod.startswith("_"):
            importlib.import_module(f"{package.__name__}.{mod}")


def discover() -> dict[str, ReportDef]:
    """Import every module of ``zentro.compliance.reports`` (each registers its reports) and return the registry."""
    import zentro.compliance.reports as pkg

    import_modules(pkg)
    return REPORTS


def get(slug: str) -> ReportDef:
    discover()
    return REPORTS[slug]


def build(slug: str, org_id: int, now: dt.datetime | None = None, **params: Any) -> Report:
    """Build a report directly (services, digests, tests): params are the query fields by name or alias."""
    from zentro.platform.types import utcnow

    d = get(slug)
    q = d.query.model_validate(params)
    return d.build(ReportContext(org_id=org_id, now=now or utcnow(), query=q))


# --- responses ---------------------------------------------------------------------------------------------

def download_name(report: Report, org_slug: str, ext: str) -> str:
    name = report.filename or f"zentro-{report.slug}" + (f"-{org_slug}" if org_slug else "")
    return f"{name}-{report.generated_at.strftime('%Y%m%dT%H%M%SZ')}.{ext}"


def render_response(d: ReportDef, report: Report, fmt: str, ctx: ReportContext):
    """The report as a Flask response in ``fmt``."""
    from flask import Response

    from zentro.compliance import reporting

    if fmt in d.custom:
        return d.custom[fmt](report, ctx)
    if fmt in ("json", "csv"):
        return reporting.respond(report, fmt, org_slug=ctx.org_slug)
    from zentro.compliance import renderers

    if fmt == "html":
        return Response(renderers.to_html_document(report), mimetype="text/html")
    if fmt == "markdown":
        return Response(renderers.to_markdown(report), mimetype="text/markdown", headers={
            "Content-Disposition": f'attachment; filename="{download_name(report, ctx.org_slug, "md")}"'})
    if fmt == "pdf":
        return Response(renderers.to_pdf(report), mimetype="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="{download_name(report, ctx.org_slug, "pdf")}"'})
    raise ValueError(f"report {d.slug}: no renderer for {fmt!r}")
