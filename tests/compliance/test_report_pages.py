"""The compliance report pages (zentro.compliance.reports_views): the index lists every registered report by
category; a report page shows its parameter form, figures, charts, tables and a download menu whose links serve
the same parameters from the API; invalid parameters re-render the form with the reasons (400, no report);
unknown slugs are 404; signed-out visitors go to the login page; viewers may read."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.compliance.engine_helpers import attestation
from zentro.compliance import report_registry as registry
from zentro.compliance import reports_views
from zentro.extensions import db
from zentro.platform.types import utcnow

REPORTS = registry.discover()


class Page(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.text).split())

    def ticked(self, name: str) -> bool:
        box = self.find("input", type="checkbox", name=name)
        assert len(box) == 1
        return "checked" in box[0]

    def find(self, tag: str, **attrs) -> list[dict]:
        return [a for t, a in self.tags if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())]


@pytest.fixture
def world(app, make_member, sign_in):
    owner = make_member("acme", "owner")
    viewer = make_member("acme", "viewer")
    other = make_member("globex", "owner")
    now = utcnow()
    with app.app_context():
        for i, control in enumerate(("SOC2:CC6.1", "SOC2:CC7.2", "ISO27001:A.8.16")):
            attestation(owner.org_id, control, due_at=now + dt.timedelta(days=3 + i), owner_id=owner.user_id)
        attestation(other.org_id, "SOC2:CC8.1", due_at=now + dt.timedelta(days=2))
        db.session.commit()
        db.session.remove()
    return {"owner": sign_in(owner), "viewer": sign_in(viewer), "other": sign_in(other), "anon": app.test_client()}


def test_index_lists_every_registered_report_by_category(world):
    r = world["viewer"].get("/compliance/reports")
    assert r.status_code == 200
    page = Page(r.get_data(as_text=True))
    links = {a["href"] for a in page.find("a", class_="rpt-index-title")}
    assert links == {f"/compliance/reports/{slug}" for slug in REPORTS}
    assert "/compliance/reports/calendar" in links
    for category in {d.category for d in REPORTS.values()}:
        assert category in page.words
    assert "Compliance calendar" in page.words and REPORTS["calendar"].summary in page.words
    for fmt in REPORTS["calendar"].formats:
        assert registry.FORMAT_LABELS[fmt] in page.words
    assert page.find("a", href="/compliance/reports", **{"aria-current": "page"})  # the sub-navigation's Reports link


def test_calendar_page_shows_the_report_and_its_downloads(world):
    r = world["viewer"].get("/compliance/reports/calendar")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    page = Page(html)
    assert "Compliance calendar" in page.words
    assert page.find("svg", role="img") and page.find("table", class_="rpt-table")
    assert "Attest SOC2:CC6.1" in html or "SOC2:CC6.1" in html  # the org's own obligations ...
    assert "SOC2:CC8.1" not in html  # ... and not another org's
    assert "What the figures mean" in page.words
    # the parameter form is generated from the query model
    weeks = page.find("input", name="weeks")[0]
    assert (weeks["type"], weeks["min"], weeks["max"], weeks["value"]) == ("number", "1", "52", "13")
    assert page.ticked("includeOverdue")
    # one download link per format, to the API with the current parameters
    links = {a["data-format"]: a["href"] for a in page.find("a") if "data-format" in a}
    assert set(links) == set(REPORTS["calendar"].formats)
    for fmt, href in links.items():
        assert href == f"/api/governance/compliance/calendar?format={fmt}"
        assert registry.FORMAT_LABELS[fmt] in page.words


def test_parameters_flow_into_the_report_and_the_download_links(world):
    r = world["owner"].get("/compliance/reports/calendar?weeks=4&includeOverdue=false")
    assert r.status_code == 200
    page = Page(r.get_data(as_text=True))
    assert page.find("input", name="weeks")[0]["value"] == "4"
    assert not page.ticked("includeOverdue")
    links = [a["href"] for a in page.find("a") if "data-format" in a]
    for href in links:
        assert parse_qs(urlsplit(href).query) | {"format": ["x"]} == {"weeks": ["4"], "includeOverdue": ["false"],
                                                                       "format": ["x"]}
    csv_link = next(h for h in links if h.endswith("format=csv"))
    resp = world["owner"].get(csv_link)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert any("SOC2:CC6.1" in " ".join(row) for row in rows)
    # a ticked checkbox sends the hidden "false" and "true": true wins
    r = world["owner"].get("/compliance/reports/calendar?weeks=4&includeOverdue=false&includeOverdue=true")
    assert r.status_code == 200
    assert Page(r.get_data(as_text=True)).ticked("includeOverdue")


@pytest.mark.parametrize("query,message", [
    ("weeks=99", "Weeks: Input should be less than or equal to 52"),
    ("weeks=soon", "Weeks: Input should be a valid integer"),
    ("bogus=1", "Unknown parameter 'bogus'"),
])
def test_bad_parameters_show_the_reasons_and_build_no_report(world, query, message):
    r = world["viewer"].get(f"/compliance/reports/calendar?{query}")
    assert r.status_code == 400
    page = Page(r.get_data(as_text=True))
    assert message in page.words
    assert page.find("div", role="alert")
    assert not page.find("table", class_="rpt-table") and not page.find("svg", role="img")
    assert not [a for a in page.find("a") if "data-format" in a]  # no downloads for a report that was not built
    if query.startswith("weeks"):
        weeks = page.find("input", name="weeks")[0]
        assert weeks["aria-invalid"] == "true" and weeks["value"] == query.split("=")[1]


def test_format_in_the_address_is_ignored_by_the_page(world):
    r = world["viewer"].get("/compliance/reports/calendar?format=csv&weeks=2")
    assert r.status_code == 200 and r.mimetype == "text/html"


def test_long_sections_are_capped_with_a_link_to_the_full_csv(world, monkeypatch):
    monkeypatch.setattr(reports_views, "PAGE_ROW_LIMIT", 1)
    r = world["viewer"].get("/compliance/reports/calendar?weeks=2")
    page = Page(r.get_data(as_text=True))
    assert re.search(r"Showing the first 1 of \d+ rows", page.words)
    assert page.find("a", href="/api/governance/compliance/calendar?weeks=2&format=csv")


def test_unknown_report_is_404(world):
    r = world["viewer"].get("/compliance/reports/no-such-report")
    assert r.status_code == 404


def test_signed_out_visitors_are_sent_to_login(world):
    for url in ("/compliance/reports", "/compliance/reports/calendar"):
        r = world["anon"].get(url)
        assert r.status_code == 302 and "/login" in r.headers["Location"]


@pytest.mark.parametrize("slug", sorted(REPORTS))
def test_every_registered_report_page_renders_with_its_defaults(world, slug):
    """Whatever a report contains (charts of any kind, nested summaries, custom formats), its page renders."""
    r = world["viewer"].get(f"/compliance/reports/{slug}")
    assert r.status_code == 200, r.get_data(as_text=True)[:800]
    page = Page(r.get_data(as_text=True))
    assert REPORTS[slug].title in page.words
    assert {a["data-format"] for a in page.find("a") if "data-format" in a} == set(REPORTS[slug].formats)


def test_blank_inputs_mean_the_defaults(world):
    """A blank number, or the "any" option of an optional select, leaves the parameter at its default."""
    r = world["viewer"].get("/compliance/reports/calendar?weeks=&includeOverdue=false&includeOverdue=true")
    assert r.status_code == 200
    assert Page(r.get_data(as_text=True)).find("input", name="weeks")[0]["value"] == "13"
    whatif = [slug for slug, d in REPORTS.items() if issubclass(d.query, registry.WhatIfQuery)]
    assert whatif  # obligation-whatif: shiftKind is an optional select
    r = world["viewer"].get(f"/compliance/reports/{whatif[0]}?shiftKind=&shiftWeeks=2")
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    options = Page(r.get_data(as_text=True)).find("option")
    assert any(o["value"] == "" and "selected" in o for o in options)  # "any" stays chosen
