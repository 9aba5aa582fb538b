"""Compliance read endpoints under /api/governance/compliance: program views and framework packs, every one a
``reporting.Report`` from ``zentro.compliance.packs`` rendered as JSON or CSV (FedRAMP POA&M also as OSCAL).

Session or API key (scope ``compliance:read``); viewers may read. View function names are the path slug with
"-" -> "_": the assessor-token endpoint dispatches to ``compliance.<name>`` and calls the undecorated view
with ``query=`` (so these views read the org from ``current_principal()`` and never assume a user or role).
"""
from __future__ import annotations

from typing import Literal

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel, ConfigDict, Field

from zentro.compliance import packs
from zentro.compliance.catalog import FRAMEWORK_SLUGS, load_catalog
from zentro.compliance.reporting import format_field, respond
from zentro.platform.auth import current_principal
from zentro.platform.routes import api_route
from zentro.platform.types import utcnow

bp = Blueprint("compliance", __name__, url_prefix="/api/governance/compliance")
TAGS = ("Compliance",)
PACK_TAGS = ("Compliance framework packs",)
JSON_CSV = ("json", "csv")
COMMON = {"resource": "compliance", "methods": ("GET",), "response": JSON_CSV}

# Canonical framework slugs plus the two the packs are known by.
FrameworkSlug = Literal[tuple(FRAMEWORK_SLUGS.values()) + ("cmmc-l2", "fedramp")]  # type: ignore[valid-type]


class PeriodQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period_days: int = Field(30, ge=1, le=730, alias="periodDays",
                             description="Evidence window in days, ending now (1-730).")
    format: Literal["json", "csv"] = format_field(JSON_CSV)


class ExportQuery(PeriodQuery):
    format: Literal["csv", "json"] = format_field(("csv", "json"), description="csv (default) or json; streamed "
                                                                           "either way.")
    framework: FrameworkSlug | None = Field(None, description="Keep only rows whose control tags speak to this "
                                                              "framework (its controls or their crosswalk equivalents).")


class FrameworkFilterQuery(PeriodQuery):
    framework: FrameworkSlug | None = Field(None, description="Framework slug to restrict (or, for the crosswalk, to "
                                                              "show against SOC 2 / ISO 27001).")


class PoamQuery(PeriodQuery):
    format: Literal["json", "csv", "oscal"] = format_field(
        ("json", "csv", "oscal"),
        description="json, csv (the FedRAMP POA&M template columns) or oscal (OSCAL 1.1 POA&M JSON).")


def _framework_key(slug: str | None) -> str | None:
    return load_catalog().resolve_framework(slug).key if slug else None


def _send(report, fmt: str, attachment: bool | None = None) -> Response:
    return respond(report, fmt, org_slug=current_principal().org.slug, attachment=attachment)


@api_route(bp, "/summary", query=PeriodQuery, tags=TAGS, **COMMON,
           summary="SOC 2 / ISO 27001 control coverage from tagged audit rows and accepted policies over the window "
                   "(default 30 days): controls with evidence / total, readiness and top gaps.")
def summary(query: PeriodQuery):
    return _send(packs.build_summary(current_principal().org.id, query.period_days, utcnow()), query.format)


@api_route(bp, "/program", query=PeriodQuery, tags=TAGS, **COMMON,
           summary="Compliance program: weighted readiness for every framework, top gaps, attestation rollup "
                   "(assigned/attested/overdue/expired) and vendor rollup (tiers, expiring reports, overdue reviews, "
                   "missing BAA/DPA).")
def program(query: PeriodQuery):
    return _send(packs.build_program(current_principal().org.id, query.period_days, utcnow()), query.format)


@api_route(bp, "/export", query=ExportQuery, tags=TAGS, **COMMON,
           summary="Evidence pack: tagged audit events in the window (oldest first) and accepted policies with their "
                   "control tags, streamed as CSV (default) or JSON.")
def export(query: ExportQuery):
    report = packs.build_export(current_principal().org.id, query.period_days, utcnow(), _framework_key(query.framework))
    return _send(report, query.format, attachment=True)


@api_route(bp, "/crosswalk", query=FrameworkFilterQuery, tags=TAGS, **COMMON,
           summary="SOC 2 / ISO 27001 crosswalk matrix (one row per mapping, full or partial) with each side's evidence "
                   "in the period; framework= shows another framework against SOC 2 and ISO 27001.")
def crosswalk(query: FrameworkFilterQuery):
    report = packs.build_crosswalk(current_principal().org.id, query.period_days, utcnow(),
                                   _framework_key(query.framework))
    return _send(report, query.format)


@api_route(bp, "/evidence-freshness", query=FrameworkFilterQuery, tags=TAGS, **COMMON,
           summary="Evidence freshness: per control the last evidence, its age and the freshness SLA, and the stale "
                   "queue (most overdue first, then never evidenced).")
def evidence_freshness(query: FrameworkFilterQuery):
    report = packs.build_freshness(current_principal().org.id, query.period_days, utcnow(),
                                   _framework_key(query.framework))
    return _send(report, query.format)


@api_route(bp, "/baseline-comparison", query=PeriodQuery, tags=TAGS, **COMMON,
           summary="Every framework's live readiness against the prior period of the same length, with the delta.")
def baseline_comparison(query: PeriodQuery):
    return _send(packs.build_baseline(current_principal().org.id, query.period_days, utcnow()), query.format)


def _pack(slug: str, query: PeriodQuery) -> Response:
    return _send(packs.PACKS[slug].build(current_principal().org.id, query.period_days, utcnow()), query.format)


@api_route(bp, "/type-ii", query=PeriodQuery, tags=PACK_TAGS, **COMMON,
           summary="SOC 2 Type II continuous monitoring: weekly control trends, exceptions in the period, evidence "
                   "bundles created in the period and incidents under legal hold.")
def type_ii(query: PeriodQuery):
    return _pack("type-ii", query)


@api_route(bp, "/iso-assessment", query=PeriodQuery, tags=PACK_TAGS, **COMMON,
           summary="ISO 27001:2022 Annex A: readiness by theme, weekly trend and gaps.")
def iso_assessment(query: PeriodQuery):
    return _pack("iso-assessment", query)


@api_route(bp, "/pci-dss", query=PeriodQuery, tags=PACK_TAGS, **COMMON,
           summary="PCI DSS v4: readiness per requirement 1-12, weekly trend and gaps.")
def pci_dss(query: PeriodQuery):
    return _pack("pci-dss", query)


@api_route(bp, "/hipaa", query=PeriodQuery, tags=PACK_TAGS, **COMMON,
           summary="HIPAA Security Rule: safeguard and standard readiness, required vs addressable, and vendors "
                   "handling PHI with their BAA status and inherited controls.")
def hipaa(query: PeriodQuery):
    return _pack("hipaa", query)


@api_route(bp, "/nist-csf", query=PeriodQuery, tags=PACK_TAGS, **COMMON,
           summary="NIST CSF 2.0: per function a maturity tier from readiness (<40 Partial, <60 Risk Informed, "
                   "<80 Repeatable, else Adaptive), categories, trend and gaps.")
def nist_csf(query: PeriodQuery):
    return _pack("nist-csf", query)


@api_route(bp, "/cis-v8", query=PeriodQuery, tags=PACK_TAGS, **COMMON,
           summary="CIS Controls v8: readiness per implementation group (IG1, IG2, IG3), trend and gaps.")
def cis_v8(query: PeriodQuery):
    return _pack("cis-v8", query)


@api_route(bp, "/cmmc-l2", query=PeriodQuery, tags=PACK_TAGS, **COMMON,
           summary="CMMC 2.0 Level 2: NIST SP 800-171 practice readiness and an SPRS-style score (110 minus the "
                   "points of every requirement not passing, floor -203).")
def cmmc_l2(query: PeriodQuery):
    return _pack("cmmc-l2", query)


@api_route(bp, "/gdpr-art32", query=PeriodQuery, tags=PACK_TAGS, **COMMON,
           summary="GDPR Article 32: domain readiness, gaps, and processors by DPA present/missing.")
def gdpr_art32(query: PeriodQuery):
    return _pack("gdpr-art32", query)


@api_route(bp, "/fedramp-poam", query=PoamQuery, tags=PACK_TAGS, resource="compliance", methods=("GET",),
           response=("json", "csv", "oscal"),
           summary="FedRAMP POA&M: one row per NIST SP 800-53 moderate control not passing, in the columns of the "
                   "FedRAMP POA&M template (json or csv), or an OSCAL 1.1 plan-of-action-and-milestones document "
                   "with stable uuid5 ids (format=oscal).")
def fedramp_poam(query: PoamQuery):
    org = current_principal().org
    if query.format == "oscal":
        resp = jsonify(packs.oscal_poam(org.id, query.period_days, utcnow()))
        resp.headers["Content-Disposition"] = f'attachment; filename="zentro-poam-{org.slug}.oscal.json"'
        return resp
    return _send(packs.build_poam(org.id, query.period_days, utcnow()), query.format)
