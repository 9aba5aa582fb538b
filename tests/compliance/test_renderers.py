"""The shared report renderers (zentro.compliance.renderers, charts) on hand-made Reports: the printable HTML
document parses and carries tables, inline SVG charts, notes and definitions; Markdown parses into tables with
every value escaped; the PDF's text has the title, the figures and the rows, long sections run over several
pages and are capped with a line saying so; charts of every kind (and empty ones) draw as SVG and reportlab."""
from __future__ import annotations

import datetime as dt
import io
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt
from pypdf import PdfReader

from zentro.compliance import charts, renderers
from zentro.compliance.reporting import Chart, Report, Section, Series, columns

NOW = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.timezone.utc)
SVG = "{http://www.w3.org/2000/svg}"
NASTY = "<script>alert('x')</script> | pipe & co"
WEEKS = [f"2026-W{w}" for w in range(48, 53)]


def bar(**kw) -> Chart:
    base = dict(key="weekly", title="Obligations due per week", kind="bar", labels=WEEKS,
                series=[Series("Attestation", [3, 4, 0, 2, 5]), Series("Vendor review", [1, 0, 2, 0, 1])],
                unit="obligations", stacked=True, threshold=6, threshold_label="Capacity",
                description="Stacked bars by kind.")
    base.update(kw)
    return Chart(**base)


def line(**kw) -> Chart:
    base = dict(key="hours", title="Owner hours", kind="line", labels=WEEKS,
                series=[Series("Ana", [10, 12, 14, 9, 8]), Series("Bo", [5, 6, None, 3, 9])], unit="hours",
                threshold=12, threshold_label="Weekly capacity")
    base.update(kw)
    return Chart(**base)


def heatmap(**kw) -> Chart:
    base = dict(key="heat", title="Density by framework", kind="heatmap", labels=WEEKS,
                series=[Series("SOC 2", [1, 2, 3, 4, 17]), Series("ISO 27001", [0, 0, 1, 0, 2])],
                threshold=10, threshold_label="critical", unit="obligations")
    base.update(kw)
    return Chart(**base)


EMPTY_CHARTS = [
    Chart("none", "No labels", "bar", [], []),
    Chart("noseries", "No series", "line", WEEKS, []),
    Chart("zeros", "All zero", "bar", WEEKS, [Series("x", [0, 0, 0, 0, 0])]),
    Chart("one", "One label", "line", ["2026-W48"], [Series("x", [3]), Series("y", [1])]),
    Chart("oneheat", "One cell", "heatmap", ["only"], [Series("row", [0])]),
    Chart("short", "Series shorter than labels", "bar", WEEKS, [Series("x", [1, 2])]),
    Chart("neg", "Negative deltas", "bar", ["soc2", "iso27001"], [Series("delta", [-4.5, 2.25])], threshold=-1),
]


def make_report(n_rows: int = 3, *, slug: str = "calendar", extra_columns: int = 0, rows_callable: bool = False,
                charts_: list[Chart] | None = None) -> Report:
    rows = [{"due": dt.date(2026, 12, 1) + dt.timedelta(days=i), "kind": "attestation",
             "title": f"Row {i:04d} " + (NASTY if i == 0 else "review the access list"),
             "frameworks": ["soc2", "iso27001"], "owner": "ana@example.com", "effort_hours": 2.5,
             "overdue": i == 1, "when": NOW, "missing": None,
             **{f"x{k}": k for k in range(extra_columns)}} for i in range(n_rows)]
    cols = columns("due", "kind", "title", "frameworks", "owner", ("effort_hours", "Effort (h)"), "overdue", "missing",
                   *[f"x{k}" for k in range(extra_columns)])
    return Report(
        slug, "Compliance calendar", {"weeks": 13, "includeOverdue": True, "from": NOW},
        {"obligations": n_rows, "overdue": 1, "effort_hours": 2345.5, "share": 1 / 3,
         "by_kind": {"attestation": 466, "vendor_review": 234},
         "by_framework": {"soc2": {"open": 3, "done": 4}, "iso27001": {"open": 1, "done": 9}},
         "owners": [{"owner": "ana", "hours": 12.5}], "top": ["alpha", NASTY]},
        [Section("obligations", "Obligations", cols, (lambda: iter(rows)) if rows_callable else rows),
         Section("nothing", "Nothing here", columns("a", "b"), [])],
        NOW, charts=charts_ if charts_ is not None else [bar(), line(), heatmap(), *EMPTY_CHARTS],
        notes=["Reference figures are illustrative & not a real cohort."])


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def count(self, tag: str, **attrs) -> int:
        return sum(1 for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items()))


def parse_html(text: str) -> Tags:
    p = Tags()
    p.feed(text)
    p.close()
    return p


def pdf_pages(data: bytes) -> list[str]:
    reader = PdfReader(io.BytesIO(data))
    return [page.extract_text() for page in reader.pages]


# --- values -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,text", [
    (None, ""), (True, "yes"), (False, "no"), (3, "3"), (2.0, "2"), (2.345, "2.35"), (1 / 3, "0.33"),
    (0.004, "0.004"), (dt.date(2026, 1, 2), "2026-01-02"), (NOW, "2026-11-26T09:30:00Z"),
    (["soc2", "iso27001"], "soc2, iso27001"), ({"a": 1, "b": [1, 2]}, "a: 1; b: 1, 2"), ("x", "x"),
])
def test_display_formats_values_for_people(value, text):
    assert renderers.display(value) == text


def test_humanize_keys():
    assert renderers.humanize("due_in_horizon") == "Due in horizon"
    assert renderers.humanize("periodDays") == "Period days"
    assert renderers.humanize("SLA_days") == "SLA days"


# --- charts -----------------------------------------------------------------------------------------------

def svg_tree(markup) -> ET.Element:
    root = ET.fromstring(str(markup))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}desc") is not None
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_stacked_bar_svg_has_axes_legend_threshold_and_accessible_text():
    root = svg_tree(charts.chart_svg(bar(), "t-bar"))
    assert root.find(f"{SVG}title").text == "Obligations due per week"
    desc = root.find(f"{SVG}desc").text
    assert desc.startswith("Stacked bars by kind.") and "Attestation: 2026-W48 3" in desc and "Capacity: 6" in desc
    labels = texts(root)
    assert {"Attestation", "Vendor review"} <= set(labels)  # legend
    assert "Capacity: 6 obligations" in labels  # threshold label
    assert "0" in labels and "6" in labels  # value-axis ticks
    assert "2026-W48" in labels  # category axis
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == 7  # zeros draw nothing in a stack: 4 + 3 non-zero values
    # stacked: the vendor-review bar of week 48 sits on top of the attestation bar
    w48 = [r for r in bars if r.find(f"{SVG}title").text.startswith("2026-W48")]
    att, ven = sorted(w48, key=lambda r: -float(r.get("y")))
    assert abs(float(ven.get("y")) + float(ven.get("height")) - float(att.get("y"))) < 0.2


def test_grouped_bars_sit_side_by_side():
    root = svg_tree(charts.chart_svg(bar(stacked=False), "t-grouped"))
    w48 = [r for r in root.iter(f"{SVG}rect") if (r.findtext(f"{SVG}title") or "").startswith("2026-W48")]
    assert len(w48) == 2 and w48[0].get("x") != w48[1].get("x")


def test_line_svg_draws_one_polyline_per_series_with_gaps_for_missing_values():
    root = svg_tree(charts.chart_svg(line(), "t-line"))
    polylines = list(root.iter(f"{SVG}polyline"))
    assert len(polylines) == 3  # Ana whole; Bo split around its missing third week
    assert "Weekly capacity: 12 hours" in texts(root)
    assert len([c for c in root.iter(f"{SVG}circle")]) == 9


def test_heatmap_svg_prints_every_value_with_a_colour_scale_and_outlines_hot_cells():
    root = svg_tree(charts.chart_svg(heatmap(), "t-heat"))
    cells = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(cells) == 10
    labels = texts(root)
    for v in ("1", "2", "3", "4", "17", "0"):
        assert v in labels
    assert {"SOC 2", "ISO 27001"} <= set(labels) and "Scale (obligations):" in labels
    hot = [r for r in cells if r.get("stroke") == charts.BAD]
    assert [r.findtext(f"{SVG}title") for r in hot] == ["SOC 2 · 2026-W52: 17 obligations"]
    fills = {r.findtext(f"{SVG}title"): r.get("fill") for r in cells}
    assert fills["ISO 27001 · 2026-W48: 0 obligations"] == charts.HEAT_STOPS[0]
    assert fills["SOC 2 · 2026-W52: 17 obligations"] == charts.HEAT_STOPS[-1]


@pytest.mark.parametrize("chart", EMPTY_CHARTS, ids=lambda c: c.key)
def test_degenerate_charts_draw_without_errors(chart):
    root = svg_tree(charts.chart_svg(chart, f"t-{chart.key}"))
    if not chart.labels or not chart.series:
        assert charts.EMPTY_TEXT in texts(root)
    if chart.key == "zeros":
        assert "All values are zero." in texts(root)
    drawing = charts.chart_drawing(chart, 480, charts.drawing_height(chart, 480))
    from reportlab.graphics import renderPDF

    assert renderPDF.drawToString(drawing).startswith(b"%PDF")


@pytest.mark.parametrize("make", [bar, line, heatmap, lambda: bar(stacked=False)])
def test_reportlab_drawings_render(make):
    from reportlab.graphics import renderPDF

    chart = make()
    drawing = charts.chart_drawing(chart, 500, charts.drawing_height(chart, 500))
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(renderPDF.drawToString(drawing))).pages)
    if chart.kind == "heatmap":
        assert "SOC 2" in text and "17" in text
    else:
        assert "2026-W48" in text and ("Attestation" in text or "Ana" in text)


def test_long_label_lists_are_thinned():
    many = Chart("long", "A year of weeks", "bar", [f"2026-{w:02d}-01" for w in range(1, 53)],
                 [Series("n", list(range(52)))])
    shown = [t for t in texts(svg_tree(charts.chart_svg(many, "t-long"))) if t.startswith("2026-")]
    assert 4 <= len(shown) < 52


def test_named_categories_keep_every_label_slanted_when_crowded():
    from dataclasses import replace

    from reportlab.graphics.charts.barcharts import VerticalBarChart

    names = [f"service-{i:02d}-api" for i in range(28)]
    chart = Chart("slo", "Error budget used", "bar", names, [Series("used", [float(i) for i in range(28)])],
                  unit="%", every_label=True)
    root = svg_tree(charts.chart_svg(chart, "t-named"))
    labels = [t for t in root.iter(f"{SVG}text") if (t.text or "").startswith("service-")]
    assert [t.text for t in labels] == names
    assert all(t.get("transform", "").startswith(f"rotate(-{charts.SLANT} ") for t in labels)
    # the same labels on a time axis (every_label off) are thinned instead
    thinned = [t for t in texts(svg_tree(charts.chart_svg(replace(chart, every_label=False), "t-thin")))
               if t.startswith("service-")]
    assert 2 <= len(thinned) < 28
    pdf_bars = next(c for c in charts.chart_drawing(chart, 480, 220).contents if isinstance(c, VerticalBarChart))
    assert pdf_bars.categoryAxis.categoryNames == names and pdf_bars.categoryAxis.labels.angle == charts.SLANT
    # a few names fit side by side: upright, as before
    few = replace(chart, labels=names[:5], series=[Series("used", [1, 2, 3, 4, 5])])
    upright = [t for t in svg_tree(charts.chart_svg(few, "t-few")).iter(f"{SVG}text")
               if (t.text or "").startswith("service-")]
    assert len(upright) == 5 and not any(t.get("transform") for t in upright)
    few_bars = next(c for c in charts.chart_drawing(few, 480, 220).contents if isinstance(c, VerticalBarChart))
    assert few_bars.categoryAxis.labels.angle == 0


def test_svg_text_is_escaped():
    chart = bar(title=NASTY, series=[Series(NASTY, [1, 2, 3, 4, 5]), Series("b", [1, 1, 1, 1, 1])])
    markup = str(charts.chart_svg(chart, "t-esc"))
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    svg_tree(markup)  # still well-formed XML


# --- HTML -------------------------------------------------------------------------------------------------

def test_html_document_is_a_complete_printable_report():
    html = renderers.to_html_document(make_report(), org="Acme Cloud")
    p = parse_html(html)
    text = " ".join(p.text)
    assert html.startswith("<!doctype html>") and p.count("html") == 1 and p.count("style") == 1
    assert p.count("script") == 0 and p.count("link") == 0  # self-contained
    assert "Compliance calendar" in text and "Acme Cloud" in text and "2026-11-26T09:30:00Z" in text
    assert "@page" in html and "table-header-group" in html and "break-inside" in html  # print styles
    # headline tiles, nested breakdowns (not Python reprs), charts, tables, notes, definitions appendix
    assert p.count("div", **{"class": "rpt-tile"}) == 4  # the four scalar figures
    assert "2345.5" in text and "0.33" in text
    assert "vendor_review" in text and "466" in text and "{'" not in html and "[{" not in html
    assert p.count("svg", role="img") == 3 + len(EMPTY_CHARTS)
    assert p.count("table", **{"class": "rpt-table"}) == 1  # the empty section says "No rows."
    assert "No rows." in text
    assert "Row 0002 review the access list" in text and "soc2, iso27001" in text
    assert "Reference figures are illustrative & not a real cohort." in text
    assert "What the figures mean" in text  # "calendar" is registered: its definitions are the appendix
    from zentro.compliance import report_registry

    for figure, meaning in report_registry.get("calendar").definitions.items():
        assert figure in text and meaning in text


def test_html_escapes_values():
    html = renderers.to_html_document(make_report())
    p = parse_html(html)
    assert p.count("script") == 0
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; | pipe &amp; co" in html
    assert NASTY in " ".join(p.text)


def test_unregistered_report_has_no_appendix_and_rows_may_be_lazy():
    html = renderers.to_html_document(make_report(slug="hand-made", rows_callable=True, charts_=[]))
    assert "What the figures mean" not in html and "Row 0002" in html and "<svg" not in html


def test_html_body_caps_long_sections_with_a_link_to_the_csv():
    body = str(renderers.html_body(make_report(12), row_limit=5, csv_href="/api/x?format=csv", in_app=True))
    p = parse_html(body)
    # section: header + 5 rows; breakdowns: pairs 2 rows, matrix header + 2, records header + 1
    assert p.count("tr") == (1 + 5) + 2 + (1 + 2) + (1 + 1)
    assert "Showing the first 5 of 12 rows (7 left out here)." in " ".join(" ".join(p.text).split())
    assert p.count("a", href="/api/x?format=csv") == 1


def test_document_caps_sections_at_the_documented_limit(monkeypatch):
    monkeypatch.setattr(renderers, "DOCUMENT_ROW_LIMIT", 4)
    html = renderers.to_html_document(make_report(10), row_limit=renderers.DOCUMENT_ROW_LIMIT)
    assert "Showing the first 4 of 10 rows" in html and renderers.MORE_ROWS in html


def test_report_without_anything_renders_in_every_format():
    empty = Report("hand-made", "Empty report", {}, {}, [], NOW)
    assert "No headline figures." in renderers.to_html_document(empty)
    assert "No headline figures." in renderers.to_markdown(empty)
    assert "Empty report" in "".join(pdf_pages(renderers.to_pdf(empty)))


# --- Markdown ---------------------------------------------------------------------------------------------

def md_tables(text: str) -> list[list[list[str]]]:
    """Every table of the rendered Markdown as rows of cell texts."""
    html = MarkdownIt().enable("table").render(text)
    tables = []
    for t in re.findall(r"<table>(.*?)</table>", html, re.S):
        rows = [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, re.S)]
                for r in re.findall(r"<tr>(.*?)</tr>", t, re.S)]
        tables.append(rows)
    return tables


def test_markdown_parses_into_headings_and_tables():
    text = renderers.to_markdown(make_report(), org="Acme Cloud")
    tokens = MarkdownIt().enable("table").parse(text)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings[0] == "Compliance calendar"
    assert {"Notes", "Summary", "By kind", "Obligations", "Nothing here", "What the figures mean"} <= set(headings)
    tables = md_tables(text)
    summary = next(t for t in tables if t[0] == ["Figure", "Value"])
    assert ["Effort hours", "2345.5"] in summary and ["Share", "0.33"] in summary
    obligations = next(t for t in tables if t[0][:3] == ["Due", "Kind", "Title"])
    assert len(obligations) == 1 + 3 and all(len(r) == len(obligations[0]) for r in obligations)
    assert obligations[2][:3] == ["2026-12-02", "attestation", "Row 0001 review the access list"]
    chart_table = next(t for t in tables if t[0] == ["", "Attestation", "Vendor review"])
    assert chart_table[1] == ["2026-W48", "3", "1"]
    assert "Acme Cloud" in text and "No rows." in text


def test_markdown_escapes_pipes_html_and_newlines():
    report = make_report()
    report.sections[0].rows[1]["title"] = "two\nlines | and *stars* _under_ [link](x) & <b>bold</b>"
    text = renderers.to_markdown(report)
    obligations = next(t for t in md_tables(text) if t[0][:3] == ["Due", "Kind", "Title"])
    assert all(len(r) == len(obligations[0]) for r in obligations)  # no cell was split by a |
    # markdown-it renders the cell text back literally (HTML-escaped), no markup from the values
    assert obligations[1][2] == "Row 0000 &lt;script&gt;alert('x')&lt;/script&gt; | pipe &amp; co"
    assert obligations[2][2] == ("two lines | and *stars* _under_ [link](x) &amp; &lt;b&gt;bold&lt;/b&gt;")
    html = MarkdownIt().enable("table").render(text)
    assert "<script>" not in html and "<b>" not in html and "<em>" not in html and "<a " not in html


# --- PDF --------------------------------------------------------------------------------------------------

def test_pdf_has_title_figures_rows_charts_and_definitions():
    data = renderers.to_pdf(make_report(), org="Acme Cloud")
    assert data.startswith(b"%PDF")
    pages = pdf_pages(data)
    text = "\n".join(pages)
    assert "Compliance calendar" in pages[0] and "Acme Cloud" in pages[0]
    assert "2345.5" in text and "466" in text  # a tile and a breakdown figure
    assert "Row 0002 review the access list" in text and "ana@example.com" in text
    assert NASTY in text.replace("\n", " ")  # XML-escaped for the Paragraph, printed literally
    assert "Obligations due per week" in text and "Density by framework" in text
    assert "What the figures mean" in text and "Reference figures are illustrative" in text
    assert f"Page 1 of {len(pages)}" in pages[0] and f"Page {len(pages)} of {len(pages)}" in pages[-1]
    assert "generated 2026-11-26T09:30:00Z" in pages[-1]


def test_pdf_long_section_spans_pages_with_repeated_headers():
    pages = pdf_pages(renderers.to_pdf(make_report(240, charts_=[])))
    first = next(i for i, p in enumerate(pages) if "Row 0000" in p)
    last = next(i for i, p in enumerate(pages) if "Row 0239" in p)
    assert last - first >= 2
    assert all("Effort" in pages[i] and "Frameworks" in pages[i] for i in range(first, last + 1))  # header rows
    assert "240 rows." in pages[last]


def test_pdf_caps_very_long_sections(monkeypatch):
    pages = pdf_pages(renderers.to_pdf(make_report(30, charts_=[]), row_limit=10))
    text = " ".join(" ".join(pages).split())
    assert "Row 0009" in text and "Row 0010" not in text
    assert "Showing the first 10 of 30 rows; 20 more are left out of this PDF. The CSV download has every row." in text


def test_pdf_turns_landscape_for_wide_sections():
    wide = PdfReader(io.BytesIO(renderers.to_pdf(make_report(2, extra_columns=4, charts_=[]))))
    narrow = PdfReader(io.BytesIO(renderers.to_pdf(Report("x", "Narrow", {}, {"a": 1},
                                                          [Section("s", "S", columns("a", "b"), [{"a": 1}])], NOW))))
    w, h = wide.pages[0].mediabox.width, wide.pages[0].mediabox.height
    assert w > h
    w, h = narrow.pages[0].mediabox.width, narrow.pages[0].mediabox.height
    assert h > w
