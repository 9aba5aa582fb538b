"""``GET /api/governance/compliance/<slug>`` for every report in the registry (``report_registry``).

Session or API key (scope ``compliance:read``); viewers may read. The view for a report is named after its slug
("-" → "_"), so assessor tokens can be granted it as ``compliance_reports.<name>``.
"""
from __future__ import annotations

from flask import Blueprint

from zentro.compliance import report_registry as registry
from zentro.platform.auth import current_principal
from zentro.platform.routes import api_route
from zentro.platform.types import utcnow

bp = Blueprint("compliance_reports", __name__, url_prefix="/api/governance/compliance")
TAGS = ("Compliance analytics",)


def context(query) -> registry.ReportContext:
    p = current_principal()
    return registry.ReportContext(org_id=p.org.id, now=utcnow(), query=query, org_slug=p.org.slug,
                                  user_id=p.user.id if p.user is not None else None)


def _make_view(d: registry.ReportDef):
    def view(query):
        ctx = context(query)
        return registry.render_response(d, d.build(ctx), query.format, ctx)

    view.__name__ = view.__qualname__ = d.endpoint
    view.__doc__ = d.summary
    return view


for _d in registry.discover().values():
    api_route(bp, f"/{_d.slug}", methods=("GET",), query=_d.api_query, resource="compliance", response=_d.formats,
              tags=TAGS, summary=f"{_d.title}: {_d.summary}")(_make_view(_d))
