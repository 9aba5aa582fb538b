"""The audit log page: recent rows, chain verification and export links."""
from __future__ import annotations

from flask import Blueprint, render_template, request
from sqlalchemy import select

from zentro.audit import service
from zentro.audit.models import AuditEvent
from zentro.extensions import db
from zentro.platform.auth import current_principal
from zentro.platform.routes import page_route

bp = Blueprint("audit", __name__)


@page_route(bp, "/settings/audit", summary="Audit log with chain verification.")
def audit_page():
    p = current_principal()
    rows = db.session.scalars(select(AuditEvent).where(AuditEvent.org_id == p.org.id)
                              .order_by(AuditEvent.seq.desc()).limit(100)).all()
    verification = service.verify_chain(p.org.id) if request.args.get("verify") else None
    return render_template("audit/log.html", rows=rows, verification=verification, windows=list(service.WINDOWS))
