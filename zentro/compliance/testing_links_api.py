"""``POST /api/governance/compliance/testing-evidence-linker``: record test-to-bundle links in the audit log for the
assessor export trail (the GET of the same path is the ``testing-evidence-linker`` report)."""
from __future__ import annotations

from typing import Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel, ConfigDict, Field

from zentro.compliance.attestations import Id
from zentro.compliance.report_registry import WINDOWS
from zentro.compliance.reports import testing_evidence_linker as linker
from zentro.platform.auth import current_principal
from zentro.platform.routes import api_route

bp = Blueprint("compliance_testing_links", __name__)


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    window: Literal["7d", "30d", "90d", "180d", "365d"] | None = Field(
        None, description="Only dry-runs created in this window ending now (default 90d when dryRunIds is absent).")
    dry_run_ids: list[Id] | None = Field(None, alias="dryRunIds", min_length=1, max_length=500,
                                         description="These dry-runs of this org (else 404) instead of every dry-run "
                                                     "in the window; with bundleId each must lie inside the "
                                                     "bundle's window (else 409).")
    bundle_id: Id | None = Field(None, alias="bundleId", description="Link to this bundle of the org (else 404) "
                                                                     "instead of every bundle covering each dry-run.")


class LinkOut(BaseModel):
    dry_run_id: int
    bundle_id: int
    bundle_seq: int
    controls: list[str]
    audit_event_id: int


class LinkResultOut(BaseModel):
    created: int = Field(description="Links recorded now (one audit event each).")
    unchanged: int = Field(description="Pairs that were already recorded (nothing new written).")
    links: list[LinkOut]
    already_linked: list[LinkOut]
    detail: str


@api_route(bp, "/api/governance/compliance/testing-evidence-linker", methods=("POST",), body=LinkIn,
           response=LinkResultOut, min_role="admin", resource="compliance", tags=("Compliance analytics",),
           summary="Record test-to-bundle links in the audit log for the assessor export trail (owner/admin). The "
                   "dry-runs: dryRunIds, else those in window (default 90d); the bundles: bundleId, else every bundle "
                   "whose window covers each dry-run. One compliance.test_evidence.linked event per new pair, tagged "
                   "with the dry-run's controls, target the bundle; pairs already recorded are reported as unchanged "
                   "(nothing written). Another org's ids: 404; dryRunIds with a bundleId whose window misses one: "
                   "409.")
def link_tests(body: LinkIn):
    p = current_principal()
    result = linker.record_links(p.org.id, actor=p.actor,
                                 window_days=WINDOWS[body.window] if body.window else None,
                                 dry_run_ids=body.dry_run_ids, bundle_id=body.bundle_id)
    return jsonify(result)
