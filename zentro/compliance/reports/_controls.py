"""Shared reads for the "Scope & controls" reports (scope-boundary, control-graph, control-ownership, policy-drift,
regulatory-impact, inherited-control-gaps): the framework filter parameter, the frameworks in audit scope, one
engine assessment per report, the org's accountable owner and the guardrail → control rule."""
from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from zentro.accounts.models import Membership, Role, User
from zentro.compliance import engine
from zentro.compliance.catalog import FRAMEWORKS, FRAMEWORK_SLUGS, load_catalog
from zentro.compliance.models import ScopeMapping
from zentro.compliance.report_registry import FRAMEWORK_LIST_PATTERN, WindowQuery, _framework_list
from zentro.extensions import db

# Every guardrail kind gates automated changes (dry-run checks before execute), so each supports the change-
# management controls the automation audit events carry (zentro.automations.service.CHANGE_TAGS).
GUARDRAIL_CONTROLS = ("SOC2:CC8.1", "ISO27001:A.8.32", "PCIDSS:6.5")


class Window30Query(WindowQuery):
    """A look-back window defaulting to 30 days (the evidence engine's default period): reports that group
    audit rows per event or per target stay well under a second on large audit logs."""
    window: Literal["7d", "30d", "90d", "180d", "365d"] = Field(
        "30d", description="Look-back window ending now: 7d, 30d, 90d, 180d or 365d.")




class FrameworkFilter(BaseModel):
    framework: str = Field("", max_length=300, pattern=FRAMEWORK_LIST_PATTERN, description=(
        "Comma-separated framework slugs (soc2, iso27001, pci-dss, hipaa, nist-csf, cis-v8, nist-800-171, "
        "gdpr-art32, nist-800-53); empty = the report's default set."))

    @field_validator("framework")
    @classmethod
    def _known(cls, value: str) -> str:
        _framework_list(value)
        return value

    @property
    def frameworks(self) -> list[str]:
        return _framework_list(self.framework)


def slug(key: str) -> str:
    return FRAMEWORK_SLUGS.get(key, key.lower())


def scope_frameworks(org_id: int) -> "OrderedDict[str, int]":
    """Framework key → number of in-scope services mapped to it, in catalog order (only frameworks with one)."""
    counts: dict[str, int] = {}
    for (frameworks,) in db.session.execute(select(ScopeMapping.frameworks).where(
            ScopeMapping.org_id == org_id, ScopeMapping.in_scope.is_(True))):
        for key in set(frameworks or []):
            counts[key] = counts.get(key, 0) + 1
    return OrderedDict((k, counts[k]) for k in FRAMEWORKS if k in counts)


def default_frameworks(org_id: int, requested: list[str]) -> tuple[list[str], str]:
    """(framework keys, how they were chosen): the requested ones, else those in audit scope, else all."""
    if requested:
        return [k for k in FRAMEWORKS if k in requested], "requested"
    in_scope = list(scope_frameworks(org_id))
    if in_scope:
        return in_scope, "audit scope"
    return list(FRAMEWORKS), "all frameworks (no scope mapping yet)"


def assess(org_id: int, now: dt.datetime, period_days: int, keys) -> dict[str, engine.FrameworkResult]:
    """The engine's assessment of ``keys`` (no trend) from one snapshot: two grouped audit_tags queries."""
    snap = engine.snapshot(org_id, period_days, now, catalog=load_catalog())
    return {k: snap.assess(k, with_trend=False) for k in keys}


def accountable_owner(org_id: int) -> str:
    """The org's accountable executive: its first owner by membership date, else its first admin ("" if none)."""
    rows = db.session.execute(select(Membership.role, User.email).join(User, User.id == Membership.user_id)
                              .where(Membership.org_id == org_id).order_by(Membership.created_at, Membership.id)).all()
    for wanted in (Role.owner, Role.admin):
        for role, email in rows:
            if Role(role) == wanted:
                return email
    return ""
