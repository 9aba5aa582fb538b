"""Delivery routes for every digest in the registry (``zentro.compliance.digests``), generated from one
declaration each:

- ``POST /api/governance/compliance/<slug>``: deliver now (owner/admin; session or API key with
  ``compliance:write``). The body takes the preview report's parameters, ``force`` and ``channels``.
- ``POST /api/governance/compliance/<slug>/scheduled``: the cron entrypoint (``Authorization: Bearer
  <ZENTRO_…_CRON_SECRET>``; an unset secret disables it: 404), body ``{"orgId": …}`` plus the same fields.

Both answer 200 with what was done: ``delivered``, ``partial``, ``not_sent`` (no channel could send, each
delivery says why), ``nothing_to_send``, ``failed`` or ``already_delivered`` (this period was delivered before;
nothing was sent again). The preview (``GET``) is the report registry's route of the same slug.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Blueprint
from pydantic import BaseModel, BeforeValidator, Field, StrictBool, create_model

from zentro.accounts.models import Org
from zentro.compliance import digests
from zentro.extensions import db
from zentro.platform.auth import current_principal
from zentro.platform.errors import not_found
from zentro.platform.routes import api_route

bp = Blueprint("compliance_digests", __name__, url_prefix="/api/governance/compliance")
TAGS = ("Compliance digests",)
MAX_ID = 2_147_483_647
CONTROL_FIELDS = ("force", "channels", "orgId")


def _integral(value: Any) -> Any:
    """JSON Schema counts 5.0 as an integer; strict pydantic would not."""
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53 else value


class DeliveryOut(BaseModel):
    id: int
    channel: str
    target: str
    recipients: list[str]
    status: str = Field(description="sent, queued (webhook outbox), not_sent (error says why) or failed.")
    attempts: int
    error: str


class RunOut(BaseModel):
    digest: str
    orgId: int
    period: str = Field(description="The idempotency period (UTC): 2026-11-26, 2026-W48, 2026-11 or 2026-Q4.")
    outcome: Literal["delivered", "partial", "not_sent", "nothing_to_send", "failed", "already_delivered"]
    detail: str
    forced: bool
    runId: int | None
    trigger: str | None
    runAt: str | None
    deliveries: list[DeliveryOut]
    parts: list[dict] = Field(default_factory=list, description="A chain digest's parts, in the order they ran.")


def _body_model(d: digests.Digest, scheduled: bool) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "force": (StrictBool, Field(False, description="Deliver again even if this period was already delivered.")),
        "channels": (list[Literal[d.channels]] | None, Field(  # type: ignore[valid-type]
            None, min_length=1, max_length=len(d.channels),
            description="Only these channels (default: the org's schedule choice, else " + ", ".join(d.channels)
                        + ").")),
    }
    if scheduled:
        fields["orgId"] = (Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_integral)],
                           Field(description="The organisation's id (unknown: 404)."))
    base = d.report.query
    name = f"Digest{'Scheduled' if scheduled else 'Deliver'}In_{d.endpoint}"
    return create_model(name, __base__=base, **fields)


def _params(body: BaseModel) -> dict | None:
    """The report parameters the caller set (None: use the org's schedule options)."""
    given = {k: v for k, v in body.model_dump().items() if k not in CONTROL_FIELDS and k in body.model_fields_set}
    return given or None


def _make_views(d: digests.Digest):
    def deliver_now(body):
        p = current_principal()
        result = digests.deliver(d.slug, p.org.id, trigger="manual", actor=p.actor, force=body.force,
                                 params=_params(body), channels=body.channels)
        return result.to_json()

    def deliver_scheduled(body):
        if db.session.get(Org, body.orgId) is None:
            raise not_found("Organisation")
        result = digests.deliver(d.slug, body.orgId, trigger="cron", actor=digests.CRON_ACTOR, force=body.force,
                                 params=_params(body), channels=body.channels)
        return result.to_json()

    deliver_now.__name__ = deliver_now.__qualname__ = f"deliver_{d.endpoint}"
    deliver_scheduled.__name__ = deliver_scheduled.__qualname__ = f"scheduled_{d.endpoint}"
    return deliver_now, deliver_scheduled


def _register() -> None:
    for d in digests.discover().values():
        now_view, cron_view = _make_views(d)
        chain = (" Runs " + " → ".join(d.chain) + " in order, each idempotent on its own.") if d.chain else ""
        api_route(bp, f"/{d.slug}", methods=("POST",), body=_body_model(d, False), response=RunOut,
                  min_role="admin", resource="compliance", tags=TAGS,
                  summary=f"Deliver the {d.title} now (owner/admin) over {', '.join(d.channels)}; once per "
                          f"{d.period} unless forced.{chain}")(now_view)
        api_route(bp, f"/{d.slug}/scheduled", methods=("POST",), body=_body_model(d, True), response=RunOut,
                  auth=("cron",), cron_secret=d.cron_secret, idempotent=False, tags=TAGS,
                  summary=f"Cron: deliver the {d.title} for one organisation (Authorization: Bearer "
                          f"{d.cron_secret}; unset secret: 404; unknown orgId: 404); once per {d.period} unless "
                          f"forced.{chain}")(cron_view)


_register()
