"""Audit log export."""
from __future__ import annotations

from typing import Literal

from flask import Blueprint, Response, stream_with_context
from pydantic import BaseModel, Field

from zentro.audit import service
from zentro.platform.auth import current_principal
from zentro.platform.routes import api_route
from zentro.platform.types import utcnow

bp = Blueprint("audit_api", __name__, url_prefix="/api/audit")


class ExportQuery(BaseModel):
    window: Literal["24h", "7d", "30d", "all"] = Field("all", description="How far back to export.")


@api_route(bp, "/export", methods=("GET",), query=ExportQuery, response="csv", resource="audit",
           summary="Stream the active org's audit rows as CSV, oldest first.", tags=("Audit",))
def export(query: ExportQuery):
    p = current_principal()
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    return Response(
        stream_with_context(service.export_csv(p.org.id, query.window)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="zentro-audit-{p.org.slug}-{query.window}-{stamp}.csv"'},
    )
