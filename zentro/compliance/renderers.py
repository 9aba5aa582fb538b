"""HTML, Markdown and PDF renderings of any ``reporting.Report`` (JSON and CSV are in ``reporting``).

- ``html_body(report, row_limit=...)``: the report's body (parameters, notes, headline tiles, breakdowns, charts as
  inline SVG, every section as a table, the "What the figures mean" definitions) from one template,
  ``templates/reports/_body.html``. It is shared by the two HTML wrappers: the in-app page
  (``templates/reports/page.html``, served by ``reports_views``) and the standalone printable document.
- ``to_html_document(report)``: a self-contained HTML document a board would receive (inline CSS from
  ``static/css/reports.css`` plus print rules: A4 pages, table headers repeated on every printed page, rows never
  split, the appendix on a new page). Sections longer than ``DOCUMENT_ROW_LIMIT`` rows are cut there, with a line
  saying how many rows were left out (the CSV has them all).
- ``to_markdown(report)``: headings, the summary as a table, charts as data tables, sections as pipe tables, notes,
  definitions. Cell text is escaped (``md_escape``: Markdown punctuation backslash-escaped, ``|`` included;
  newlines become spaces), so any value stays inside its cell and is shown literally.
- ``to_pdf(report)``: reportlab platypus, A4 (landscape when a section has more than ``LANDSCAPE_COLUMNS``
  columns): title block, headline figures, breakdown tables, chart drawings (``charts.chart_drawing``), section
  tables with repeated header rows and wrapped cells, split across pages as needed, page numbers and the
  generation time in every footer, notes, definitions appendix. Sections are cut at ``PDF_ROW_LIMIT`` rows with a
  line saying how many were left out and that the CSV download has them all.

Values are written as ``display`` says: dates and times ISO 8601 (UTC, to the second), lists joined with ", ",
None empty, booleans yes/no, floats with at most two decimals. Summary values that are dicts or lists become
small tables or lists, never Python reprs. Everything is escaped for its format (HTML autoescape; Markdown
escaping; XML escaping for reportlab Paragraphs).

The "What the figures mean" appendix comes from ``report_registry.REPORTS[report.slug].definitions`` when the
report is registered (a hand-made Report without a registration simply has no appendix).
"""
from __future__ import annotations

import datetime as dt
import io
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from markupsafe import Markup

from zentro.compliance import charts
from zentro.compliance.reporting import Report, Section
from zentro.platform.types import iso

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
CSS_PATH = ROOT / "static" / "css" / "reports.css"

DOCUMENT_ROW_LIMIT = 2000  # rows per section in the standalone HTML document
PDF_ROW_LIMIT = 500  # rows per section in the PDF (a few dozen pages at most)
LANDSCAPE_COLUMNS = 7  # a section with more columns than this turns the PDF to A4 landscape
MARKDOWN_ROW_LIMIT = None  # Markdown carries every row
MORE_ROWS = "The CSV download has every row."


# --- values -----------------------------------------------------------------------------------------------

def display(value: Any) -> str:
    """A value as text for people (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        value = value.replace(microsecond=0)  # to the second: people do not read microseconds
        return iso(value) if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value.is_integer():
            return str(int(value))
        if abs(value) < 0.01:
            return f"{value:.3g}"
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, (list, tuple, set)):
        return ", ".join(display(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {display(v)}" for k, v in value.items())
    return str(value)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list, tuple, set))


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


# Words a title keeps in capitals however the key spells them ("mtta_seconds" → "MTTA seconds").
ACRONYMS = {w.lower(): w for w in ("MTTA", "MTTR", "SLO", "SLOs", "SLA", "SLAs", "RCA", "API", "ID", "IDs", "URL")}


def humanize(key: str) -> str:
    """``due_in_horizon`` / ``periodDays`` / ``mtta_seconds`` → "Due in horizon" / "Period days" / "MTTA seconds"."""
    text = _CAMEL.sub(" ", str(key)).replace("_", " ").replace("-", " ").strip()
    if not text:
        return str(key)
    words = [ACRONYMS.get(w.lower(), w) for w in text.split()]
    words = [words[0][:1].upper() + words[0][1:]] + [w if w.isupper() or w in ACRONYMS.values() else w.lower()
                                                     for w in words[1:]]
    return " ".join(words)


def href_of(value: Any, *, in_app: bool) -> str | None:
    """A link for URL-like cell values: absolute http(s) URLs anywhere, app-relative paths only in the app."""
    if not isinstance(value, str):
        return None
    if value.startswith(("https://", "http://")):
        return value
    if in_app and value.startswith("/") and not value.startswith("//") and " " not in value:
        return value
    return None


def definitions_for(report: Report) -> dict[str, str]:
    from zentro.compliance import report_registry

    d = report_registry.REPORTS.get(report.slug)
    return dict(d.definitions) if d is not None else {}


def _org_name(org: str | None) -> str:
    if org is not None:
        return org
    try:
        from flask import has_request_context

        if has_request_context():
            from zentro.platform.auth import current_principal

            p = current_principal()
            if p is not None and getattr(p, "org", None) is not None:
                return p.org.name
    except Exception:  # pragma: no cover - rendering must not fail over a missing org name
        pass
    return ""


# --- a format-neutral view of a report (what every rendering shows) ---------------------------------------

@dataclass
class Tile:
    key: str
    label: str
    text: str
    numeric: bool
    definition: str = ""


@dataclass
class Breakdown:
    """A summary value that is not a single figure: ``pairs`` (dict of values), ``matrix`` (dict of dicts),
    ``records`` (list of dicts) or ``items`` (list of values)."""
    key: str
    label: str
    kind: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    definition: str = ""
    numeric: list[bool] = field(default_factory=list)  # per column: right-align (every value a number)


@dataclass
class Cell:
    text: str
    href: str | None = None
    nowrap: bool = False  # dates and times stay on one line


@dataclass
class SectionView:
    key: str
    title: str
    columns: list[tuple[str, str, bool]]  # key, title, numeric
    rows: list[list[Cell]]
    total: int
    limit: int | None

    @property
    def left_out(self) -> int:
        return self.total - len(self.rows)


def _definition(defs: dict[str, str], key: str) -> str:
    if key in defs:
        return defs[key]
    prefixed = [k for k in defs if k.startswith(f"{key}.") or k.startswith(f"{key}[")]
    return defs[prefixed[0]] if len(prefixed) == 1 else ""


def _numeric(values: list) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(is_number(v) for v in present)


def _breakdown(key: str, value: Any, definition: str) -> Breakdown:
    label = humanize(key)
    if isinstance(value, dict):
        values = list(value.values())
        if values and all(isinstance(v, dict) for v in values):
            cols: list[str] = []
            for v in values:
                cols += [c for c in v if c not in cols]
            return Breakdown(key, label, "matrix", ["", *cols],
                             [[str(k), *[display(v.get(c)) for c in cols]] for k, v in value.items()],
                             definition=definition,
                             numeric=[False, *[_numeric([v.get(c) for v in values]) for c in cols]])
        return Breakdown(key, label, "pairs", ["", ""], [[str(k), display(v)] for k, v in value.items()],
                         definition=definition, numeric=[False, _numeric(values)])
    items = list(value)
    if items and all(isinstance(v, dict) for v in items):
        cols = []
        for v in items:
            cols += [c for c in v if c not in cols]
        return Breakdown(key, label, "records", cols, [[display(v.get(c)) for c in cols] for v in items],
                         definition=definition, numeric=[_numeric([v.get(c) for v in items]) for c in cols])
    return Breakdown(key, label, "items", items=[display(v) for v in items], definition=definition)


def summary_view(report: Report, defs: dict[str, str] | None = None) -> tuple[list[Tile], list[Breakdown]]:
    defs = definitions_for(report) if defs is None else defs
    tiles, breakdowns = [], []
    for key, value in report.summary.items():
        if is_scalar(value):
            tiles.append(Tile(key, humanize(key), display(value) if value is not None else "–", is_number(value),
                              _definition(defs, key)))
        else:
            breakdowns.append(_breakdown(key, value, _definition(defs, key)))
    return tiles, breakdowns


def _cell(value: Any, in_app: bool) -> Cell:
    return Cell(display(value), href_of(value, in_app=in_app), isinstance(value, (dt.date, dt.datetime)))


def section_view(section: Section, limit: int | None, *, in_app: bool = False) -> SectionView:
    """The first ``limit`` rows of a section as display cells (the rest are counted, not kept)."""
    kept: list[dict] = []
    total = 0
    for row in section.iter_rows():
        total += 1
        if limit is None or total <= limit:
            kept.append(row)
    numeric = {c.key: bool(kept) and any(is_number(r.get(c.key)) for r in kept)
               and all(r.get(c.key) is None or is_number(r.get(c.key)) for r in kept) for c in section.columns}
    rows = [[_cell(r.get(c.key), in_app) for c in section.columns] for r in kept]
    return SectionView(section.key, section.title, [(c.key, c.title, numeric[c.key]) for c in section.columns],
                       rows, total, limit)


def params_view(report: Report) -> list[tuple[str, str]]:
    return [(humanize(k), display(v)) for k, v in report.params.items()]


# --- HTML -------------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, auto_reload=True)
    env.filters["humanize"] = humanize
    return env


def _slug_id(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", str(text).lower()).strip("-") or "x"


def html_body(report: Report, *, row_limit: int | None = None, csv_href: str | None = None,
              in_app: bool = False) -> Markup:
    """The report body shared by the in-app page and the printable document (one template, two wrappers).

    ``row_limit`` caps each section's rows (the count left out is shown, with ``csv_href`` as the link to the
    whole CSV when given); ``in_app`` links app-relative paths in cells."""
    defs = definitions_for(report)
    tiles, breakdowns = summary_view(report, defs)
    prefix = "rpt-" + _slug_id(report.slug)
    figures = [(c, charts.chart_svg(c, f"{prefix}-chart-{_slug_id(c.key)}-{i}")) for i, c in enumerate(report.charts)]
    sections = [section_view(s, row_limit, in_app=in_app) for s in report.sections]
    html = _env().get_template("reports/_body.html").render(
        report=report, params=params_view(report), generated=display(report.generated_at), tiles=tiles,
        breakdowns=breakdowns, figures=figures, sections=sections, notes=list(report.notes), definitions=defs,
        csv_href=csv_href, prefix=prefix, more_rows=MORE_ROWS)
    return Markup(html)


def stylesheet() -> str:
    return CSS_PATH.read_text(encoding="utf-8")


def to_html_document(report: Report, *, org: str | None = None, row_limit: int | None = DOCUMENT_ROW_LIMIT) -> str:
    """A standalone, printable HTML document (inline CSS, no scripts, no external requests)."""
    body = html_body(report, row_limit=row_limit)
    landscape = any(len(s.columns) > LANDSCAPE_COLUMNS for s in report.sections)
    return _env().get_template("reports/document.html").render(
        report=report, body=body, css=Markup(stylesheet()), org=_org_name(org), generated=display(report.generated_at),
        landscape=landscape)


# --- Markdown ---------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&#~])")


def md_escape(value: Any) -> str:
    """Text safe inside a Markdown table cell or heading: the characters Markdown reads as inline syntax
    (``\\ ` * _ [ ] < > & ~ #``) and ``|`` (so a cell never splits) are backslash-escaped; line breaks become
    spaces."""
    text = value if isinstance(value, str) else display(value)
    text = re.sub(r"[\r\n\t\v\f]+", " ", text)
    text = "".join(ch for ch in text if ch >= " " or ch == " ")
    return _MD_SPECIAL.sub(r"\\\1", text).strip()


def _md_table(header: list[str], rows: list[list[str]], numeric: list[bool] | None = None) -> list[str]:
    numeric = numeric or [False] * len(header)
    head = "| " + " | ".join(md_escape(h) if h else " " for h in header) + " |"
    rule = "|" + "|".join("---:" if n else "---" for n in numeric) + "|"
    body = ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return [head, rule, *body]


def to_markdown(report: Report, *, org: str | None = None) -> str:
    defs = definitions_for(report)
    tiles, breakdowns = summary_view(report, defs)
    org_name = _org_name(org)
    out = [f"# {md_escape(report.title)}", ""]
    meta = [f"Generated {md_escape(display(report.generated_at))}"]
    if org_name:
        meta.insert(0, f"Organisation: {md_escape(org_name)}")
    out += [" · ".join(meta), ""]
    if report.params:
        out += ["Parameters: " + "; ".join(f"{md_escape(k)} = {md_escape(v)}" for k, v in params_view(report)), ""]
    if report.notes:
        out += ["## Notes", ""] + [f"- {md_escape(n)}" for n in report.notes] + [""]
    out += ["## Summary", ""]
    if tiles:
        out += _md_table(["Figure", "Value"], [[t.label, t.text] for t in tiles], [False, True]) + [""]
    elif not breakdowns:
        out += ["No headline figures.", ""]
    for b in breakdowns:
        out += [f"### {md_escape(b.label)}", ""]
        if b.kind == "items":
            out += ([f"- {md_escape(i)}" for i in b.items] or ["None."]) + [""]
        elif b.kind == "pairs":
            out += (_md_table(["Item", "Value"], b.rows, b.numeric) if b.rows else ["None."]) + [""]
        else:
            out += (_md_table([c if c else "Item" for c in b.columns], b.rows, b.numeric) if b.rows
                    else ["None."]) + [""]
    for c in report.charts:
        out += [f"## {md_escape(c.title)}", ""]
        if c.description:
            out += [md_escape(c.description), ""]
        if charts.is_empty(c):
            out += [charts.EMPTY_TEXT, ""]
            continue
        vals = charts.values_of(c)
        if c.kind == "heatmap":
            rows = [[s.name, *[display(v) for v in vals[i]]] for i, s in enumerate(c.series)]
            out += _md_table(["", *c.labels], rows, [False] + [True] * len(c.labels))
        else:
            rows = [[lab, *[display(vals[si][i]) for si in range(len(c.series))]] for i, lab in enumerate(c.labels)]
            out += _md_table(["", *[s.name for s in c.series]], rows, [False] + [True] * len(c.series))
        if c.threshold is not None:
            out += ["", f"{md_escape(c.threshold_label or 'Threshold')}: {md_escape(display(c.threshold))}"
                        + (f" {md_escape(c.unit)}" if c.unit else "")]
        out.append("")
    for s in report.sections:
        v = section_view(s, MARKDOWN_ROW_LIMIT)
        out += [f"## {md_escape(v.title)}", ""]
        if not v.rows:
            out += ["No rows.", ""]
            continue
        out += _md_table([t for _, t, _ in v.columns], [[c.text for c in r] for r in v.rows],
                         [n for _, _, n in v.columns]) + [""]
    if defs:
        out += ["## What the figures mean", ""]
        out += _md_table(["Figure", "Meaning"], [[k, m] for k, m in defs.items()]) + [""]
    return "\n".join(out).rstrip() + "\n"


# --- PDF --------------------------------------------------------------------------------------------------

FONT, FONT_BOLD, FONT_ITALIC = "ZentroSans", "ZentroSans-Bold", "ZentroSans-Italic"
_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


@lru_cache(maxsize=1)
def _fonts() -> tuple[str, str, str]:
    """Register a Unicode TrueType family (DejaVu Sans when installed, else the Bitstream Vera that ships with
    reportlab) so dashes, arrows and accented names print; falls back to Helvetica if neither loads."""
    import reportlab
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    candidates = [
        (_DEJAVU / "DejaVuSans.ttf", _DEJAVU / "DejaVuSans-Bold.ttf", _DEJAVU / "DejaVuSans-Oblique.ttf"),
        tuple(Path(reportlab.__file__).parent / "fonts" / f for f in ("Vera.ttf", "VeraBd.ttf", "VeraIt.ttf")),
    ]
    for regular, bold, italic in candidates:
        if regular.is_file() and bold.is_file() and italic.is_file():
            try:
                pdfmetrics.registerFont(TTFont(FONT, str(regular)))
                pdfmetrics.registerFont(TTFont(FONT_BOLD, str(bold)))
                pdfmetrics.registerFont(TTFont(FONT_ITALIC, str(italic)))
            except Exception:  # pragma: no cover - a broken font file: try the next family
                continue
            addMapping(FONT, 0, 0, FONT)
            addMapping(FONT, 1, 0, FONT_BOLD)
            addMapping(FONT, 0, 1, FONT_ITALIC)
            addMapping(FONT, 1, 1, FONT_BOLD)
            return FONT, FONT_BOLD, FONT_ITALIC
    return "Helvetica", "Helvetica-Bold", "Helvetica-Oblique"  # pragma: no cover


def px(text: Any) -> str:
    """Text for a reportlab Paragraph: XML-escaped, control characters dropped, line breaks kept."""
    s = text if isinstance(text, str) else display(text)
    s = "".join(ch for ch in s if ch >= " " or ch in "\n\t")
    return xml_escape(s).replace("\n", "<br/>").replace("\t", " ")


def _styles():
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle

    regular, bold, italic = _fonts()
    ink, muted = colors.HexColor("#1b1f24"), colors.HexColor("#5b6573")
    base = ParagraphStyle("base", fontName=regular, fontSize=9, leading=12, textColor=ink)
    return {
        "base": base,
        "title": ParagraphStyle("title", base, fontName=bold, fontSize=20, leading=24, spaceAfter=4),
        "meta": ParagraphStyle("meta", base, fontSize=8.5, leading=11, textColor=muted),
        "h2": ParagraphStyle("h2", base, fontName=bold, fontSize=12.5, leading=16, spaceBefore=12, spaceAfter=5,
                             textColor=colors.HexColor("#312e81")),
        "h3": ParagraphStyle("h3", base, fontName=bold, fontSize=10, leading=13, spaceBefore=6, spaceAfter=3),
        "cell": ParagraphStyle("cell", base, fontSize=7.5, leading=9.2),
        "cell_num": ParagraphStyle("cell_num", base, fontSize=7.5, leading=9.2, alignment=2),
        "head": ParagraphStyle("head", base, fontName=bold, fontSize=7.5, leading=9.2,
                               textColor=colors.HexColor("#312e81")),
        "head_num": ParagraphStyle("head_num", base, fontName=bold, fontSize=7.5, leading=9.2, alignment=2,
                                   textColor=colors.HexColor("#312e81")),
        "tile_label": ParagraphStyle("tile_label", base, fontSize=7, leading=9, textColor=muted),
        "tile_value": ParagraphStyle("tile_value", base, fontName=bold, fontSize=15, leading=18),
        "note": ParagraphStyle("note", base, fontSize=8.5, leading=11, fontName=italic),
        "small": ParagraphStyle("small", base, fontSize=7.5, leading=9.5, textColor=muted),
    }


def _compact(st: dict) -> dict:
    """Smaller table text for very wide sections."""
    from reportlab.lib.styles import ParagraphStyle

    out = dict(st)
    for k in ("cell", "cell_num", "head", "head_num"):
        out[k] = ParagraphStyle(f"{k}_compact", st[k], fontSize=6.5, leading=8)
    return out


CHAR_W = 4.3  # average width of a 7.5 pt table character, in points


def _col_widths(headers: list[str], rows: list[list[str]], total: float) -> list[float]:
    """Column widths that fit the page: every column gets at least room for its longest word (header or value,
    up to 26 characters, so emails, keys and dates do not break mid-word), the rest of the width goes to the
    columns with the longest text."""
    mins, wants = [], []
    for i, h in enumerate(headers):
        values = [r[i] for r in rows[:80]]
        token = max([len(w) for w in h.split()] + [min(26, max((len(w) for w in v.split()), default=0)) for v in values]
                    + [3])
        longest = max([len(h)] + [len(v) for v in values])
        lo = max(28.0, token * CHAR_W * 1.2 + 10)  # wide glyphs (m, w, @, bold headers) need the margin
        mins.append(lo)
        wants.append(max(lo, min(420.0, longest * CHAR_W + 9)))
    if sum(mins) >= total:
        return [w * total / sum(mins) for w in mins]
    if sum(wants) <= total:
        spare = total - sum(wants)
        return [w + spare * w / sum(wants) for w in wants]
    room = total - sum(mins)
    extra = [w - m for w, m in zip(wants, mins)]
    return [m + room * e / sum(extra) for m, e in zip(mins, extra)]


def _table_style(header_rows: int = 1, zebra: bool = True):
    from reportlab.lib import colors
    from reportlab.platypus import TableStyle

    cmds = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, colors.HexColor("#e2e6eb")),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 4), ("RIGHTPADDING", (0, 0), (-1, -1), 4),
    ]
    if header_rows:
        cmds += [("BACKGROUND", (0, 0), (-1, header_rows - 1), colors.HexColor("#eef2ff")),
                 ("LINEBELOW", (0, header_rows - 1), (-1, header_rows - 1), 0.8, colors.HexColor("#a5b4fc"))]
    if zebra:
        cmds.append(("ROWBACKGROUNDS", (0, header_rows), (-1, -1), [colors.white, colors.HexColor("#f8fafc")]))
    return TableStyle(cmds)


def _grid(headers: list[str], rows: list[list[str]], width: float, st: dict, numeric: list[bool] | None = None,
          widths: list[float] | None = None):
    from reportlab.platypus import Paragraph, Table

    numeric = numeric or [False] * len(headers)
    widths = widths or _col_widths(headers, rows, width)
    data = [[Paragraph(px(h), st["head_num" if n else "head"]) for h, n in zip(headers, numeric)]]
    cell, cell_num = st["cell"], st["cell_num"]
    for r in rows:
        data.append([Paragraph(px(v), cell_num if n else cell) for v, n in zip(r, numeric)])
    return Table(data, colWidths=widths, repeatRows=1, style=_table_style(), hAlign="LEFT")


def _tiles(tiles: list[Tile], width: float, st: dict):
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph, Table, TableStyle

    per_row = 4
    cells = [[Paragraph(px(t.label), st["tile_label"]), Paragraph(px(t.text), st["tile_value"])] for t in tiles]
    while len(cells) % per_row:
        cells.append("")
    data = [cells[i:i + per_row] for i in range(0, len(cells), per_row)]
    w = width / per_row
    table = Table(data, colWidths=[w] * per_row, hAlign="LEFT")
    cmds = [("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 7),
            ("TOPPADDING", (0, 0), (-1, -1), 5), ("BOTTOMPADDING", (0, 0), (-1, -1), 6)]
    for i, _ in enumerate(tiles):
        r, c = divmod(i, per_row)
        cmds += [("BOX", (c, r), (c, r), 0.6, colors.HexColor("#e2e6eb")),
                 ("BACKGROUND", (c, r), (c, r), colors.HexColor("#fbfcfe"))]
    table.setStyle(TableStyle(cmds))
    return table


def to_pdf(report: Report, *, org: str | None = None, row_limit: int = PDF_ROW_LIMIT) -> bytes:
    """The report as a PDF (see the module docstring)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas as rl_canvas
    from reportlab.platypus import (CondPageBreak, KeepTogether, ListFlowable, ListItem, Paragraph,
                                    SimpleDocTemplate, Spacer, Table, TableStyle)

    st = _styles()
    regular = st["base"].fontName
    defs = definitions_for(report)
    tiles, breakdowns = summary_view(report, defs)
    views = [section_view(s, row_limit) for s in report.sections]
    wide = any(len(v.columns) > LANDSCAPE_COLUMNS for v in views)
    pagesize = landscape(A4) if wide else A4
    margin = 14 * mm
    frame_w = pagesize[0] - 2 * margin
    org_name = _org_name(org)
    generated = display(report.generated_at)
    footer_left = f"{report.title}{' · ' + org_name if org_name else ''} · generated {generated}"

    class NumberedCanvas(rl_canvas.Canvas):
        """Draws "Page n of N" and the generation time on every page once the page count is known."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self):
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self.setFont(regular, 7)
                self.setFillColor(colors.HexColor("#5b6573"))
                self.setStrokeColor(colors.HexColor("#e2e6eb"))
                self.line(margin, 10 * mm, pagesize[0] - margin, 10 * mm)
                self.drawString(margin, 6.5 * mm, footer_left[:150])
                self.drawRightString(pagesize[0] - margin, 6.5 * mm, f"Page {self._pageNumber} of {total}")
                super().showPage()
            super().save()

    story: list = [Paragraph(px(report.title), st["title"])]
    meta = ([f"<b>{px(org_name)}</b>"] if org_name else []) + [f"Generated {px(generated)} (UTC)"]
    story.append(Paragraph(" · ".join(meta), st["meta"]))
    if report.params:
        story.append(Paragraph("Parameters: " + " · ".join(f"{px(k)}: <b>{px(v) or '–'}</b>"
                                                           for k, v in params_view(report)), st["meta"]))
    story.append(Spacer(1, 8))
    if report.notes:
        notes = Table([[Paragraph(px(n), st["note"])] for n in report.notes], colWidths=[frame_w], hAlign="LEFT")
        notes.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#fffbeb")),
                                   ("BOX", (0, 0), (-1, -1), 0.6, colors.HexColor("#fde68a")),
                                   ("LEFTPADDING", (0, 0), (-1, -1), 7)]))
        story += [notes, Spacer(1, 8)]
    story.append(Paragraph("Summary", st["h2"]))
    if tiles:
        story.append(_tiles(tiles, frame_w, st))
    elif not breakdowns:
        story.append(Paragraph("No headline figures.", st["small"]))
    for b in breakdowns:
        block: list = [Paragraph(px(b.label), st["h3"])]
        if b.kind == "items":
            block.append(ListFlowable([ListItem(Paragraph(px(i), st["cell"]), leftIndent=10) for i in b.items],
                                      bulletType="bullet", start="•", leftIndent=10) if b.items
                         else Paragraph("None.", st["small"]))
        elif b.rows:
            headers = ["Item", "Value"] if b.kind == "pairs" else [c or "Item" for c in b.columns]
            width = min(frame_w, max(200.0, 110.0 * len(headers)))
            block.append(_grid(headers, b.rows, width, st, b.numeric))
        else:
            block.append(Paragraph("None.", st["small"]))
        story.append(KeepTogether(block) if len(b.rows) + len(b.items) < 30 else block[0])
        if len(b.rows) + len(b.items) >= 30:
            story += block[1:]
    for c in report.charts:
        h = charts.drawing_height(c, frame_w)
        story.append(KeepTogether([Paragraph(px(c.title), st["h2"]),
                                   *([Paragraph(px(c.description), st["small"])] if c.description else []),
                                   Spacer(1, 3), charts.chart_drawing(c, frame_w, h, font=regular)]))
    for v in views:
        story += [CondPageBreak(90), Paragraph(px(v.title), st["h2"])]
        if not v.rows:
            story.append(Paragraph("No rows.", st["small"]))
            continue
        headers = [t for _, t, _ in v.columns]
        rows = [[c.text for c in r] for r in v.rows]
        numeric = [n for _, _, n in v.columns]
        story.append(_grid(headers, rows, frame_w, _compact(st) if len(headers) > 12 else st, numeric))
        if v.left_out:
            story.append(Paragraph(f"Showing the first {len(v.rows):,} of {v.total:,} rows; {v.left_out:,} more are "
                                   f"left out of this PDF. {MORE_ROWS}", st["small"]))
        else:
            story.append(Paragraph(f"{v.total:,} row{'s' if v.total != 1 else ''}.", st["small"]))
    if defs:
        story += [CondPageBreak(160), Paragraph("What the figures mean", st["h2"])]
        story.append(_grid(["Figure", "Meaning"], [[k, m] for k, m in defs.items()], frame_w, st,
                           widths=[frame_w * 0.26, frame_w * 0.74]))

    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=pagesize, leftMargin=margin, rightMargin=margin, topMargin=margin,
                            bottomMargin=16 * mm, title=report.title, author="Zentro", subject=report.slug,
                            creator="Zentro compliance reports")
    doc.build(story, canvasmaker=NumberedCanvas)
    return buf.getvalue()
