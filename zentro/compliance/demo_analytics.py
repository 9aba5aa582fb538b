"""The demo org's compliance analytics registers: one seed per area (each idempotent on its own)."""
from __future__ import annotations

import datetime as dt

from zentro.platform.types import utcnow


def seed_analytics_demo(org_id: int, now: dt.datetime | None = None) -> list[str]:
    from zentro.compliance.demo_committee import seed_committee
    from zentro.compliance.demo_evidence import seed_evidence
    from zentro.compliance.demo_obligations import seed_obligations
    from zentro.compliance.demo_program import seed_program
    from zentro.compliance.demo_scope import seed_scope

    now = now or utcnow()
    done: list[str] = []
    for seed in (seed_scope, seed_program, seed_evidence, seed_committee, seed_obligations):
        done.extend(seed(org_id, now) or [])
    return done
