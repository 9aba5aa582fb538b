"""Demo integrations: three push sources for the demo org (Datadog, Alertmanager, Qualys), each with its own
ingest token. None has outbound credentials, so their health stays "untested" until someone tests them (a test then
says "inbound only" — nothing is faked). The tokens' plaintexts are not kept: rotate one on Settings › Integrations
to point a real sender at Zentro. Idempotent: an integration whose name already exists is left as it is."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from zentro.accounts.models import Org
from zentro.audit.service import Actor
from zentro.connectors import integrations
from zentro.connectors.models import Integration
from zentro.extensions import db
from zentro.platform.types import utcnow

DEMO_ACTOR = Actor("system", "", "demo data")
DEMO_INTEGRATIONS = (  # (provider, name, config)
    ("datadog", "Datadog production monitors", {}),
    ("alertmanager", "Prometheus Alertmanager", {}),
    ("qualys", "Qualys VMDR", {"api_url": "https://qualysapi.qualys.com", "username": "acme_api"}),
)


def seed(org: Org, now: dt.datetime | None = None) -> list[int]:
    """Create the demo integrations the org does not have yet; returns the ids created."""
    now = now or utcnow()
    have = set(db.session.scalars(select(Integration.name).where(Integration.org_id == org.id)))
    made = []
    for provider, name, config in DEMO_INTEGRATIONS:
        if name in have:
            continue
        row, _ = integrations.create_integration(org.id, provider=provider, name=name, config=config, secrets={},
                                                 actor=DEMO_ACTOR, allow_private=False, now=now)
        made.append(row.id)
    return made
