"""Shared by the digest content tests: build a preview report directly and read its rows and summary as the
JSON rendering shows them."""
from __future__ import annotations

import datetime as dt

from zentro.compliance import report_registry as registry
from zentro.compliance.reporting import to_dict

from tests.compliance.analytics_helpers import NOW


def build(slug: str, org: int, now: dt.datetime = NOW, **params):
    return registry.build(slug, org, now, **params)


def rows(report, key: str) -> list[dict]:
    return to_dict(report)["sections"][key]["rows"]


def summary(report) -> dict:
    return to_dict(report)["summary"]
