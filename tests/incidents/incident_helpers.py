"""Helpers shared by the incident tests (plain functions, not fixtures, so they never collide with
another package's conftest)."""
from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

from sqlalchemy import func, select

from zentro.audit.models import AuditEvent
from zentro.audit.service import Actor
from zentro.extensions import db
from zentro.incidents import service
from zentro.incidents.models import Incident
from zentro.reliability.models import Service

HX = {"HX-Request": "true"}
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


def user_actor(member) -> Actor:
    return Actor("user", str(member.user_id), member.email)


def make_incident(app, org_id: int, title: str = "Checkout API 5xx", severity: str = "high", *, status: str = "open",
                  service_id: int | None = None, dedupe_key: str | None = None, description: str = "",
                  now: dt.datetime | None = None) -> int:
    """Create (and commit) an incident through the service; walk it to ``status``. Returns its id."""
    path = {"open": [], "acknowledged": ["acknowledged"], "mitigated": ["acknowledged", "mitigated"],
            "resolved": ["resolved"], "closed": ["resolved", "closed"]}[status]
    with app.app_context():
        actor = Actor("system", "", "test")
        inc = service.create_incident(org_id, title=title, severity=severity, actor=actor, service_id=service_id,
                                      dedupe_key=dedupe_key, description=description, now=now)
        for to in path:
            service.transition(inc, to, actor, now=now)
        db.session.commit()
        inc_id = inc.id
        db.session.remove()
    return inc_id


def make_service(app, org_id: int, name: str = "checkout-api") -> int:
    with app.app_context():
        svc = Service(org_id=org_id, name=name)
        db.session.add(svc)
        db.session.commit()
        svc_id = svc.id
        db.session.remove()
    return svc_id


def load(app, inc_id: int) -> dict:
    """A snapshot of the incident row (for "nothing changed" assertions)."""
    with app.app_context():
        inc = db.session.get(Incident, inc_id)
        out = service.incident_json(inc)
        db.session.remove()
    return out


def audit_actions(app, org_id: int, inc_id: int) -> list[str]:
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.org_id == org_id, AuditEvent.target_type == "incident", AuditEvent.target_id == str(inc_id))
            .order_by(AuditEvent.seq)).all()
        db.session.remove()
    return list(rows)


def audit_count(app, org_id: int) -> int:
    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.org_id == org_id))
        db.session.remove()
    return n


class Html(HTMLParser):
    """Just enough HTML structure for assertions: tags seen, headings, tables (rows of cell texts), text."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.headings: list[tuple[str, str]] = []
        self.tables: list[list[list[str]]] = []
        self.paragraphs: list[str] = []
        self._stack: list[str] = []
        self._buf: list[str] = []
        self._cell: list[str] | None = None
        self.text_parts: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._stack.append(tag)
        if tag in ("h1", "h2", "h3", "p"):
            self._buf = []
        if tag == "table":
            self.tables.append([])
        if tag == "tr":
            self.tables[-1].append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if self._stack and self._stack[-1] == tag:
            self._stack.pop()
        if tag in ("h1", "h2", "h3"):
            self.headings.append((tag, "".join(self._buf).strip()))
        if tag == "p":
            self.paragraphs.append("".join(self._buf).strip())
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        self._buf.append(data)
        self.text_parts.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
