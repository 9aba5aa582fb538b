"""Shared by the digest content tests: build a preview report directly and read its rows and summary as the
JSON rendering shows them."""
from __future__ import annotations

import datetime as dt

import pytest

from zentro.compliance import report_registry as registry
from zentro.compliance.reporting import to_dict

from tests.compliance.analytics_helpers import NOW


def build(slug: str, org: int, now: dt.datetime = NOW, **params):
    return registry.build(slug, org, now, **params)


def rows(report, key: str) -> list[dict]:
    return to_dict(report)["sections"][key]["rows"]


def summary(report) -> dict:
    return to_dict(report)["summary"]


@pytest.fixture
def people(app, make_member):
    """acme: owner a, admin d, members b and c, viewer v; globex: owner g."""
    a = make_member("acme", "owner", email="a@acme.example")
    b = make_member("acme", "member", email="b@acme.example")
    c = make_member("acme", "member", email="c@acme.example")
    d = make_member("acme", "admin", email="d@acme.example")
    v = make_member("acme", "viewer", email="v@acme.example")
    g = make_member("globex", "owner", email="g@globex.example")
    return {"a": a, "b": b, "c": c, "d": d, "v": v, "g": g}


def headers_for(make_api_key, member) -> dict:
    return {"Authorization": f"Bearer {make_api_key(member)}"}
