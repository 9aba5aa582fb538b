"""Fixtures for ingest tests: an org with an ingest token, a poster, and table counts."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from zentro.extensions import db

@pytest.fixture
def owner(make_member):
    return make_member("acme", "owner", plan="enterprise")


@pytest.fixture
def token(owner, make_ingest_token):
    return make_ingest_token(owner)


@pytest.fixture
def post(app, token):
    """post(path, payload, token=..., headers=..., query=...) → response; payload dicts are sent as JSON."""
    client = app.test_client()

    def send(path: str, payload, *, token: str | None = token, headers: dict | None = None, query: str = "",
             content_type: str = "application/json"):
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        h = {"Authorization": f"Bearer {token}"} if token else {}
        h.update(headers or {})
        return client.post(path + query, data=data, content_type=content_type, headers=h)

    return send


@pytest.fixture
def count(app):
    """count(table, **equals) → rows in the table matching the column values."""

    def n(table: str, **where) -> int:
        with app.app_context():
            t = db.metadata.tables[table]
            q = sa.select(sa.func.count()).select_from(t)
            for col, value in where.items():
                q = q.where(t.c[col] == value)
            return db.session.scalar(q)

    return n


@pytest.fixture
def add_service(app):
    def add(member, name: str) -> int:
        from zentro.reliability.models import Service

        with app.app_context():
            svc = Service(org_id=member.org_id, name=name)
            db.session.add(svc)
            db.session.commit()
            sid = svc.id
            db.session.remove()
        return sid

    return add
