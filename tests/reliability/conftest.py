"""Fixtures for the reliability tests: an org with an owner, API clients per role, and a way to read
rows back."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from zentro.extensions import db


class Api:
    """A test client speaking JSON with an API key."""

    def __init__(self, client, key: str):
        self.client, self.headers = client, {"Authorization": f"Bearer {key}"}

    def __getattr__(self, method):
        def call(url, json=None, **kw):
            return self.client.open(url, method=method.upper(), json=json, headers={**self.headers, **kw.pop("headers", {})},
                                    **kw)
        return call


@pytest.fixture
def owner(make_member):
    return make_member("acme", "owner", plan="enterprise")


@pytest.fixture
def api(app, owner, make_api_key):
    return Api(app.test_client(), make_api_key(owner))


@pytest.fixture
def member_api(app, owner, make_member, make_api_key):
    return Api(app.test_client(), make_api_key(make_member("acme", "member", plan="enterprise")))


@pytest.fixture
def viewer_api(app, owner, make_member, make_api_key):
    return Api(app.test_client(), make_api_key(make_member("acme", "viewer", plan="enterprise")))


@pytest.fixture
def other_api(app, make_member, make_api_key):
    return Api(app.test_client(), make_api_key(make_member("globex", "owner", plan="enterprise")))


@pytest.fixture
def rows(app):
    """rows(table, **equals) → count of matching rows."""

    def n(table: str, **where) -> int:
        with app.app_context():
            q = f'SELECT COUNT(*) FROM "{table}"'
            if where:
                q += " WHERE " + " AND ".join(f"{k} = :{k}" for k in where)
            return db.session.scalar(sa.text(q), where)

    return n
