"""Demo data for the obligation reports: an audit season of checkpoints (SOC 2, ISO 27001, PCI DSS; one done)
created through the checkpoint service (so each has its audit event), and progress on the first consolidation
plays (some steps done, one in progress), so the consolidation report and page show tracked plays. Idempotent: an
org that already has checkpoints is left alone."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from zentro.compliance import checkpoints as cp
from zentro.compliance.models import AuditCheckpoint
from zentro.extensions import db
from zentro.platform.types import utcnow

DAY = dt.timedelta(days=1)
SEASON = (  # name, framework, days from now (negative: already past), done
    ("SOC 2 Type II kick-off with the auditor", "soc2", -20, True),
    ("SOC 2 evidence freeze", "soc2", 9, False),
    ("ISO 27001 surveillance audit, stage 1", "iso27001", 11, False),
    ("SOC 2 fieldwork starts", "soc2", 16, False),
    ("ISO 27001 management review", "iso27001", 40, False),
    ("SOC 2 report issued", "soc2", 60, False),
    ("PCI DSS ROC walkthrough", "pci-dss", 75, False),
)
PLAY_PROGRESS = ((1, "done"), (2, "done"), (3, "in_progress"))


def seed_obligations(org_id: int, now: dt.datetime | None = None) -> list[str]:
    from zentro.compliance.demo_registers import _people
    from zentro.compliance import obligations as obl
    from zentro.compliance.reports import _obligation_views as views

    now = now or utcnow()
    if db.session.scalar(select(AuditCheckpoint.id).where(AuditCheckpoint.org_id == org_id).limit(1)):
        return ["Audit-season checkpoints already seeded (nothing duplicated)."]
    (admin_id, admin), (member_id, member) = _people(org_id)
    created = 0
    for i, (name, framework, days, done) in enumerate(SEASON):
        at = now - 30 * DAY  # planned a month ago
        row = cp.create(org_id, name=name, framework=framework, due_at=now + days * DAY,
                        owner_id=admin_id if i % 2 == 0 else member_id, actor=admin, now=at)
        if done:
            cp.update(org_id, row.id, {"status": "done"}, actor=admin, now=now + (days + 1) * DAY)
        created += 1
    out = [f"{created} audit-season checkpoints (SOC 2, ISO 27001, PCI DSS; one done)."]
    items = obl.open_only(obl.load(org_id, now))
    clusters = views.clusters(items, now, 14)
    for c in clusters[:2]:
        for step, status in PLAY_PROGRESS[: 3 if c is clusters[0] else 1]:
            cp.set_play_step(org_id, cluster_key=c.key, step=step, status=status, user_id=member_id, actor=member,
                             now=now - DAY)
    if clusters:
        out.append(f"Consolidation play progress on {min(2, len(clusters))} crossover cluster(s).")
    return out
