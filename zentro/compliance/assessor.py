"""Assessor tokens (``zentro_ca_…``): read-only, expiring bearer tokens limited to named resources.

``RESOURCES`` maps each resource an assessor may be granted to the endpoint that serves it. The
assessor route (``assessor_api``) looks the endpoint up in the route registry, validates the query with
the endpoint's own query model and calls the endpoint's undecorated view; the caller's principal is the
token, so the view answers with the token's org's data. Only GET endpoints may be mapped: that is
checked whenever the blueprint is registered (the app refuses to start otherwise) and again per call.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from zentro.accounts.models import AssessorToken
from zentro.audit.service import Actor, record
from zentro.extensions import db
from zentro.platform.auth import ASSESSOR_TOKEN_PREFIX, new_secret
from zentro.platform.errors import ApiError, not_found
from zentro.platform.types import iso, utcnow

FRAMEWORK_PACKS = ("type-ii", "iso-assessment", "pci-dss", "hipaa", "nist-csf", "cis-v8", "cmmc-l2", "gdpr-art32",
                   "fedramp-poam")
# compliance analytics reports an assessor may be granted (read-only views of the program and its evidence)
ANALYTICS_REPORTS = ("obligation-ics", "risk-heatmap", "executive-summary", "exception-register", "evidence-requests",
                     "evidence-lineage", "testing-evidence-linker", "scope-boundary", "control-ownership")
RESOURCES: dict[str, str] = {
    "evidence-export": "compliance.export",
    "crosswalk": "compliance.crosswalk",
    "baseline-comparison": "compliance.baseline_comparison",
    "evidence-freshness": "compliance.evidence_freshness",
    "workbook": "compliance_bundles.workbook",
    **{slug: f"compliance.{slug.replace('-', '_')}" for slug in FRAMEWORK_PACKS},
    **{slug: f"compliance_reports.{slug.replace('-', '_')}" for slug in ANALYTICS_REPORTS},
}
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MANAGE_TAGS = ("SOC2:CC6.2", "ISO27001:A.5.18")
USE_TAGS = ("SOC2:CC4.1",)
MAX_EXPIRY_DAYS = 365


class MutatingResourceError(AssertionError):
    """A resource was mapped to an endpoint that accepts unsafe methods."""


def check_read_only(resources: dict[str, str] | None = None) -> list[str]:
    """Raise if any mapped endpoint that exists accepts a method other than GET/HEAD/OPTIONS; return the
    resources whose endpoint is not registered (yet)."""
    from zentro.platform.routes import REGISTRY

    missing = []
    for name, endpoint in (RESOURCES if resources is None else resources).items():
        meta = REGISTRY.get(endpoint)
        if meta is None:
            missing.append(name)
        elif set(meta.methods) - READ_METHODS:
            raise MutatingResourceError(f"assessor resource {name!r} maps to {endpoint} which accepts "
                                        f"{', '.join(sorted(set(meta.methods) - READ_METHODS))}: assessor tokens are read-only")
    return missing


# --- tokens ----------------------------------------------------------------------------------------------

def state(tok: AssessorToken, now: dt.datetime | None = None) -> str:
    if tok.revoked_at is not None:
        return "revoked"
    return "expired" if tok.expires_at <= (now or utcnow()) else "active"


def token_json(tok: AssessorToken, now: dt.datetime | None = None) -> dict:
    return {"id": tok.id, "name": tok.name, "prefix": tok.prefix, "resources": tok.resource_list,
            "created_at": iso(tok.created_at), "expires_at": iso(tok.expires_at),
            "last_used_at": iso(tok.last_used_at), "revoked_at": iso(tok.revoked_at), "state": state(tok, now)}


def tokens_query(org_id: int):
    return select(AssessorToken).where(AssessorToken.org_id == org_id)


def create_token(org_id: int, name: str, resources: list[str], expires_in_days: int, actor: Actor,
                 created_by_id: int | None = None, now: dt.datetime | None = None) -> tuple[AssessorToken, str]:
    """Mint a token; returns (row, plaintext). The plaintext exists only in this return value."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ApiError(400, "Give the token a name of 1–100 characters.")
    unknown = sorted(set(resources) - set(RESOURCES))
    if unknown:
        raise ApiError(400, f"Unknown resource(s): {', '.join(unknown)}. Known: {', '.join(sorted(RESOURCES))}")
    if not resources:
        raise ApiError(400, "Grant at least one resource.")
    if len(set(resources)) != len(resources):
        raise ApiError(400, "A resource is listed twice.")
    if not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise ApiError(400, f"expires_in_days must be 1–{MAX_EXPIRY_DAYS}.")
    now = now or utcnow()
    plaintext, prefix, digest = new_secret(ASSESSOR_TOKEN_PREFIX)
    ordered = [r for r in RESOURCES if r in set(resources)]
    tok = AssessorToken(org_id=org_id, name=name, prefix=prefix, secret_hash=digest, created_at=now,
                        resources=" ".join(ordered), expires_at=now + dt.timedelta(days=expires_in_days),
                        created_by_id=created_by_id)
    db.session.add(tok)
    db.session.flush()
    record(org_id, "assessor_token.created", actor, target_type="assessor_token", target_id=tok.id,
           control_tags=MANAGE_TAGS, data={"name": name, "prefix": prefix, "resources": ordered,
                                          "expires_at": iso(tok.expires_at)})
    db.session.commit()
    return tok, plaintext


def get_token(org_id: int, token_id: int) -> AssessorToken:
    tok = db.session.scalar(tokens_query(org_id).where(AssessorToken.id == token_id))
    if tok is None:
        raise not_found("Assessor token")
    return tok


def revoke_token(org_id: int, token_id: int, actor: Actor, now: dt.datetime | None = None) -> AssessorToken:
    tok = get_token(org_id, token_id)
    if tok.revoked_at is None:
        tok.revoked_at = now or utcnow()
        record(org_id, "assessor_token.revoked", actor, target_type="assessor_token", target_id=tok.id,
               control_tags=MANAGE_TAGS, data={"name": tok.name, "prefix": tok.prefix})
        db.session.commit()
    return tok


def record_use(org_id: int, tok: AssessorToken, actor: Actor, resource: str, endpoint: str, params: dict,
               granted: bool) -> None:
    """Audit one use of a token (granted or refused) in its own committed transaction."""
    record(org_id, "assessor.accessed" if granted else "assessor.denied", actor, target_type="assessor_token",
           target_id=tok.id, control_tags=USE_TAGS,
           data={"resource": resource, "endpoint": endpoint, "token_id": tok.id, "query": params})
    db.session.commit()
