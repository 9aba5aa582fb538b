"""Hand-built rows for the compliance analytics registers (evidence requests, gap remediations, staffing
actions, committee settings, audit checkpoints, scope mappings, services and their edges), written straight to
their tables, plus ``get_report`` for the analytics endpoints. The older registers' builders are in
engine_helpers (attestation, vendor, exception, policy, bundle, evidence)."""
from __future__ import annotations

import csv
import datetime as dt
import io

from zentro.compliance.models import (AuditCheckpoint, CommitteeSettings, EvidenceRequest, GapRemediation,
                                      ScopeMapping, StaffingAction)
from zentro.extensions import db
from zentro.reliability.models import Service, ServiceDependency

from tests.compliance.engine_helpers import NOW, days_ago  # noqa: F401  (re-exported for report tests)


def _add(row):
    db.session.add(row)
    db.session.flush()
    return row


def evidence_request(org_id: int, title: str, controls: list[str], *, due_at: dt.datetime,
                     requested_at: dt.datetime | None = None, status: str = "open", owner_id: int | None = None,
                     fulfilled_at: dt.datetime | None = None, bundle_id: int | None = None,
                     requested_by: str = "auditor@assessor.example") -> EvidenceRequest:
    return _add(EvidenceRequest(org_id=org_id, title=title, controls=controls, due_at=due_at, status=status,
                                requested_at=requested_at or days_ago(14), owner_id=owner_id,
                                fulfilled_at=fulfilled_at, bundle_id=bundle_id, requested_by=requested_by))


def gap_remediation(org_id: int, control: str, *, status: str = "open", owner_id: int | None = None,
                    playbook_id: int | None = None, runbook_url: str = "", due_at: dt.datetime | None = None,
                    created_at: dt.datetime | None = None, closed_at: dt.datetime | None = None) -> GapRemediation:
    return _add(GapRemediation(org_id=org_id, control=control, status=status, owner_id=owner_id,
                               playbook_id=playbook_id, runbook_url=runbook_url, due_at=due_at,
                               created_at=created_at or days_ago(30), updated_at=created_at or days_ago(30),
                               closed_at=closed_at))


def staffing_action(org_id: int, week_start: dt.date, *, kind: str = "rebalance", status: str = "proposed",
                    owner_id: int | None = None, title: str = "Move vendor reviews", hours: float = 4.0,
                    created_at: dt.datetime | None = None, completed_at: dt.datetime | None = None) -> StaffingAction:
    return _add(StaffingAction(org_id=org_id, week_start=week_start, kind=kind, status=status, owner_id=owner_id,
                               title=title, hours=hours, created_at=created_at or days_ago(7),
                               updated_at=created_at or days_ago(7), completed_at=completed_at))


def committee(org_id: int, **fields) -> CommitteeSettings:
    row = db.session.get(CommitteeSettings, org_id) or CommitteeSettings(org_id=org_id)
    for key, value in fields.items():
        setattr(row, key, value)
    return _add(row)


def checkpoint(org_id: int, name: str, framework: str, *, due_at: dt.datetime, status: str = "planned",
               owner_id: int | None = None, done_at: dt.datetime | None = None) -> AuditCheckpoint:
    return _add(AuditCheckpoint(org_id=org_id, name=name, framework=framework, due_at=due_at, status=status,
                                owner_id=owner_id, done_at=done_at))


def service(org_id: int, name: str, *, tier: int = 1, internet_facing: bool = False) -> Service:
    return _add(Service(org_id=org_id, name=name, tier=tier, internet_facing=internet_facing))


def depends(org_id: int, service_id: int, depends_on_id: int) -> ServiceDependency:
    return _add(ServiceDependency(org_id=org_id, service_id=service_id, depends_on_id=depends_on_id))


def scope(org_id: int, service_id: int, frameworks: list[str], *, in_scope: bool = True,
          data_classes: list[str] | None = None) -> ScopeMapping:
    return _add(ScopeMapping(org_id=org_id, service_id=service_id, frameworks=frameworks, in_scope=in_scope,
                             data_classes=data_classes or []))


def get_report(client, slug: str, *, headers: dict | None = None, **params):
    """GET /api/governance/compliance/<slug> with query params (None values left out)."""
    query = {k: v for k, v in params.items() if v is not None}
    return client.get(f"/api/governance/compliance/{slug}", query_string=query, headers=headers or {})


def csv_blocks(text: str) -> dict[str, list[list[str]]]:
    """A "blocks" CSV (``# Title`` line, header, rows, blank line) → {title: [header, *rows]}."""
    blocks: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for row in csv.reader(io.StringIO(text)):
        if not row:
            current = None
        elif len(row) == 1 and row[0].startswith("# ") and not row[0].startswith("# Note:"):
            current = blocks.setdefault(row[0][2:], [])
        elif current is not None:
            current.append(row)
    return blocks
