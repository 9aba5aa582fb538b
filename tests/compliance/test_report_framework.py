"""The report framework over every registered report: the registry is sound and documented, each report is
served in each of its formats (parsed here with the format's own reader), parameters are validated the same way
everywhere, reports read only their own org's data, and docs/reports.md is what the registry says."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from html.parser import HTMLParser

import pytest

from zentro.compliance import report_docs
from zentro.compliance import report_registry as registry
from zentro.compliance.reporting import Report, to_dict
from zentro.extensions import db
from zentro.platform.types import utcnow

from tests.compliance.analytics_helpers import get_report

REPORTS = registry.discover()
SLUGS = sorted(REPORTS)


def seed_everything(org_id: int, now: dt.datetime) -> None:
    """The demo org's data (services, incidents, registers, automations, analytics registers) in ``org_id``."""
    from zentro.compliance.demo_analytics import seed_analytics_demo
    from zentro.reliability.demo import seed_reliability
    from zentro.incidents.demo import seed_incidents
    from zentro.compliance.demo_registers import seed_compliance
    from zentro.automations.demo import seed_automations

    seed_reliability(org_id, now)
    seed_incidents(org_id, now)
    seed_compliance(org_id, now)
    seed_automations(org_id, now)
    seed_analytics_demo(org_id, now)
    db.session.commit()


@pytest.fixture
def seeded(app, make_member, make_api_key):
    """(API-key headers of a seeded org's owner, its org id)."""
    owner = make_member("acme", "owner", plan="enterprise")
    make_member("acme", "member", plan="enterprise")
    with app.app_context():
        seed_everything(owner.org_id, utcnow())
    return {"Authorization": f"Bearer {make_api_key(owner)}"}, owner.org_id


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)

    def handle_data(self, data):
        self.parts.append(data)


def check_format(slug: str, fmt: str, resp) -> None:
    """The body parses with the format's reader and is about this report."""
    d = REPORTS[slug]
    assert resp.status_code == 200, (slug, fmt, resp.get_data(as_text=True)[:500])
    assert resp.mimetype == registry.FORMAT_MEDIA[fmt], (slug, fmt, resp.mimetype)
    body = resp.get_data()
    if fmt == "json":
        doc = json.loads(body)
        assert doc["report"] == slug and isinstance(doc["summary"], dict) and isinstance(doc["sections"], dict)
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))
        assert rows and any(len(r) > 1 for r in rows)
        assert "attachment" in resp.headers["Content-Disposition"]
    elif fmt == "html":
        parser = _Text()
        parser.feed(body.decode("utf-8"))
        assert {"html", "table"} <= parser.tags or {"html", "p"} <= parser.tags
        assert d.title in " ".join(parser.parts)
    elif fmt == "markdown":
        from markdown_it import MarkdownIt

        text = body.decode("utf-8")
        tokens = MarkdownIt().enable("table").parse(text)
        assert any(t.type == "heading_open" for t in tokens)
        assert d.title in text
    elif fmt == "pdf":
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(body))
        text = "".join(page.extract_text() for page in reader.pages)
        assert d.title.split()[0] in text
    elif fmt == "ics":
        import icalendar

        cal = icalendar.Calendar.from_ical(body)
        assert cal.get("VERSION") == "2.0" and cal.get("PRODID")
    elif fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(body)) as zf:
            assert zf.testzip() is None and zf.namelist()
    else:  # pragma: no cover - a new format needs a reader here
        pytest.fail(f"no reader for {fmt}")


# --- the registry ------------------------------------------------------------------------------------------

def test_the_catalog_report_endpoints_are_all_registered():
    """Every GET report the endpoint catalog lists under /api/governance/compliance is served by the registry
    (the digests' previews belong to issue 7; the older compliance reports to zentro.compliance.api)."""
    expected = {
        "gap-remediations", "risk-heatmap", "executive-summary", "calendar", "benchmarking", "policy-drift",
        "control-graph", "regulatory-impact", "evidence-lineage", "testing-evidence-linker", "testing-schedules",
        "scope-boundary", "kpi-trends", "posture-score", "control-ownership", "exception-register",
        "evidence-requests", "obligation-ics", "inherited-control-gaps", "control-health-scorecard",
        "obligation-heatmap", "obligation-crossover", "obligation-consolidation", "obligation-forecast",
        "obligation-whatif", "committee-capacity-budget", "obligation-load-balancing", "staffing-actions",
        "obligation-rollup", "obligation-density-trend-history", "committee-meeting-pack",
    }
    assert expected <= set(REPORTS), sorted(expected - set(REPORTS))


@pytest.mark.parametrize("slug", SLUGS)
def test_every_summary_figure_is_defined(ctx, make_member, slug):
    """docs/reports.md explains every headline figure a report returns (``x`` or ``x.<part>`` definitions)."""
    owner = make_member("acme", "owner")
    report = REPORTS[slug].build(registry.ReportContext(owner.org_id, utcnow(), REPORTS[slug].query(),
                                                         org_slug="acme"))
    assert isinstance(report, Report) and report.slug == slug
    defined = set(REPORTS[slug].definitions)
    missing = [k for k in report.summary
               if k not in defined and not any(d.startswith(f"{k}.") or d.startswith(f"{k}[") for d in defined)]
    assert not missing, f"{slug}: define {missing} in its @report(definitions=...)"


def test_docs_reports_md_is_generated_from_the_registry():
    assert report_docs.DOC_PATH.read_text(encoding="utf-8") == report_docs.markdown(), \
        "docs/reports.md is stale: run `zentro docs reports`"


def test_registering_a_report_checks_what_it_declares():
    with pytest.raises(ValueError, match="category"):
        registry.report("x-test", title="X", summary="x", category="Nope", inputs="-", window="-",
                        definitions={"a": "b"})
    with pytest.raises(ValueError, match="custom renderer"):
        registry.report("x-test", title="X", summary="x", category="Program", formats=("ics",), inputs="-",
                        window="-", definitions={"a": "b"})
    with pytest.raises(ValueError, match="figures"):
        registry.report("x-test", title="X", summary="x", category="Program", inputs="-", window="-",
                        definitions={})
    assert "x-test" not in registry.REPORTS


# --- every report, every format -----------------------------------------------------------------------------

@pytest.mark.parametrize("slug", SLUGS)
def test_each_format_parses_on_the_demo_dataset(app, seeded, slug):
    """Every format of the report (one demo seed per report, not per format: the seed is most of the time)."""
    headers, _ = seeded
    for fmt in REPORTS[slug].formats:
        check_format(slug, fmt, get_report(app.test_client(), slug, headers=headers, format=fmt))


@pytest.mark.parametrize("slug", SLUGS)
def test_an_empty_org_gets_a_valid_report(app, make_member, make_api_key, slug):
    owner = make_member("empty", "owner")
    resp = get_report(app.test_client(), slug, headers={"Authorization": f"Bearer {make_api_key(owner)}"})
    check_format(slug, REPORTS[slug].formats[0], resp)


@pytest.mark.parametrize("slug", SLUGS)
def test_bad_parameters_are_refused_in_the_envelope(app, make_member, make_api_key, slug):
    owner = make_member("acme", "viewer")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {make_api_key(owner)}"}
    for params in ({"format": "xml"}, {"bogus": "1"}, {"format": "JSON "}):
        resp = get_report(client, slug, headers=headers, **params)
        assert resp.status_code == 400, (slug, params, resp.status_code)
        body = resp.get_json()
        assert body["error_code"] and body["detail"], body
    for name, field in REPORTS[slug].query.model_fields.items():
        alias = field.alias or name
        if field.annotation is int:
            resp = get_report(client, slug, headers=headers, **{alias: "many"})
            assert resp.status_code == 400, (slug, alias)
            resp = get_report(client, slug, headers=headers, **{alias: "100000"})
            assert resp.status_code == 400, (slug, alias)


@pytest.mark.parametrize("slug", SLUGS)
def test_signed_out_callers_get_401(app, slug):
    resp = get_report(app.test_client(), slug)
    assert resp.status_code == 401
    assert resp.get_json()["detail"]


def test_a_report_reads_only_its_own_org(ctx, make_member):
    """Each report for an org is the same before and after another org fills its registers."""
    mine = make_member("acme", "owner")
    theirs = make_member("globex", "owner")
    make_member("globex", "member")
    now = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone.utc)

    def snapshot() -> dict:
        out = {}
        for slug, d in REPORTS.items():
            doc = to_dict(d.build(registry.ReportContext(mine.org_id, now, d.query(), org_slug="acme")))
            doc.pop("generated_at")
            out[slug] = doc
        return out

    before = snapshot()
    seed_everything(theirs.org_id, now)
    after = snapshot()
    changed = [slug for slug in SLUGS if before[slug] != after[slug]]
    assert not changed, f"reports changed by another org's data: {changed}"
