"""One report definition for every compliance endpoint, pack and workbook entry, rendered to any format.

A ``Report`` is format-neutral: a slug, a title, the parameters it was built with, a ``summary`` dict
of headline figures and ordered ``sections``, each a table (columns + rows). Renderers turn the same
definition into JSON (a dict, or streamed text) and CSV (streamed text); the analytics issue adds
HTML/Markdown/PDF renderers over the same definition.

Reports may also carry ``charts`` (``Chart``: bar, line or heatmap over labelled series), drawn by the HTML and
PDF renderers, and ``notes`` (caveats every rendering repeats, e.g. that reference data is illustrative).

CSV layout:
- ``csv_layout="table"``: the first section only, header row then rows — what a spreadsheet import
  expects (evidence export, crosswalk, freshness, POA&M).
- ``csv_layout="blocks"``: a ``# Summary`` block (metric,value rows), then every section as a block
  ``# <title>`` / header row / rows, blocks separated by one empty line.

Rows may be a list or a zero-argument callable returning an iterator (read lazily, in constant memory,
e.g. a ``yield_per`` query); values are str/int/float/bool/None/datetime/date or lists of those
(CSV joins lists with spaces).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Callable, Iterable, Iterator, Literal

import orjson
from pydantic import Field

from zentro.platform.types import iso

FORMAT_MEDIA = {"json": "application/json", "csv": "text/csv", "oscal": "application/json"}
CHUNK_ROWS = 500


@dataclass
class Column:
    key: str
    title: str


def columns(*specs: str | tuple[str, str]) -> list[Column]:
    """``columns("control", ("last_evidence_at", "Last evidence"))``: a bare key is titled from itself."""
    out = []
    for spec in specs:
        key, title = (spec, spec.replace("_", " ").capitalize()) if isinstance(spec, str) else spec
        out.append(Column(key, title))
    return out


@dataclass
class Section:
    key: str
    title: str
    columns: list[Column]
    rows: Iterable[dict] | Callable[[], Iterable[dict]] = field(default_factory=list)
    # Optional: the same rows already rendered as CSV text (same columns, quoting and line ends), for a
    # section the database can render faster than Python (the evidence export on PostgreSQL uses COPY).
    # Returns None when it cannot (another database): the rows are then written one by one.
    csv_text: Callable[[], Iterable[str] | None] | None = None

    def iter_rows(self) -> Iterator[dict]:
        rows = self.rows() if callable(self.rows) else self.rows
        return iter(rows)


@dataclass
class Series:
    name: str
    values: list[float]


@dataclass
class Chart:
    """A picture of some of a report's figures, drawn as SVG in HTML and as a reportlab drawing in PDF.

    - ``bar``: one bar group per label, one bar per series (``stacked=True`` stacks the series);
    - ``line``: one line per series over the labels (weeks, usually);
    - ``heatmap``: rows are the series (name = row label), columns the labels, cell = value.
    ``threshold`` draws a horizontal reference line (capacity, alert threshold) on bar and line charts;
    ``every_label``: the labels are names (services, owners), not a time axis, so none may be dropped: labels
    that do not fit side by side are slanted instead of thinned;
    ``description`` is the chart's text alternative.
    """
    key: str
    title: str
    kind: Literal["bar", "line", "heatmap"]
    labels: list[str]
    series: list[Series]
    unit: str = ""
    stacked: bool = False
    threshold: float | None = None
    threshold_label: str = ""
    description: str = ""
    every_label: bool = False


@dataclass
class Report:
    slug: str
    title: str
    params: dict[str, Any]
    summary: dict[str, Any]
    sections: list[Section]
    generated_at: dt.datetime
    csv_layout: Literal["table", "blocks"] = "blocks"
    filename: str = ""  # download name without extension; default zentro-<slug>
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # caveats shown with every rendering (e.g. illustrative data)

    def section(self, key: str) -> Section:
        return next(s for s in self.sections if s.key == key)


# --- values -----------------------------------------------------------------------------------------------

def json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    return value


def csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return " ".join(str(csv_value(v)) for v in value)
    if isinstance(value, dict):
        return json.dumps(json_value(value), sort_keys=True, separators=(",", ":"))
    return value


# --- JSON -------------------------------------------------------------------------------------------------

def _head(report: Report) -> dict:
    head = {"report": report.slug, "title": report.title, "generated_at": iso(report.generated_at),
            "params": json_value(report.params), "summary": json_value(report.summary)}
    if report.notes:
        head["notes"] = list(report.notes)
    return head


def to_dict(report: Report) -> dict:
    """The whole report as one JSON-ready dict (sections keyed by their key, in order)."""
    out = _head(report)
    out["sections"] = {
        s.key: {"title": s.title, "columns": [{"key": c.key, "title": c.title} for c in s.columns],
                "rows": [{c.key: json_value(row.get(c.key)) for c in s.columns} for row in s.iter_rows()]}
        for s in report.sections}
    return out


def _json_default(value: Any) -> Any:
    """``json_value`` for the values the encoder cannot write itself (dates and datetimes)."""
    if isinstance(value, dt.datetime):
        return iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ORJSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC  # datetimes as ``iso`` writes them: RFC 3339, UTC, Z


def _encode_rows(rows: list[dict]) -> str:
    """A JSON array of rows (orjson: a tenth of the stdlib encoder's time on a 100k-row report)."""
    return orjson.dumps(rows, default=_json_default, option=_ORJSON_OPTIONS).decode()


def _row_values(keys: list[str]) -> Callable[[dict], tuple]:
    """A function returning a row's values for ``keys`` in order (missing keys read as None, like ``row.get``)."""
    if not keys:
        return lambda row: ()
    fast = itemgetter(*keys)
    single = len(keys) == 1

    def values(row: dict) -> tuple:
        try:
            got = fast(row)
        except KeyError:
            return tuple(row.get(k) for k in keys)
        return (got,) if single else got
    return values


def iter_json(report: Report) -> Iterator[str]:
    """The same document as ``to_dict``, as text chunks; rows are read and written a few hundred at a time (one
    encoder call per chunk; dates and datetimes are written as ``json_value`` writes them)."""
    encode = _encode_rows
    head = json.dumps(_head(report), separators=(",", ":"))
    yield head[:-1] + ',"sections":{'
    for i, s in enumerate(report.sections):
        meta = {"title": s.title, "columns": [{"key": c.key, "title": c.title} for c in s.columns]}
        yield ("," if i else "") + json.dumps(s.key) + ":" + json.dumps(meta, separators=(",", ":"))[:-1] + ',"rows":['
        keys = [c.key for c in s.columns]
        values = _row_values(keys)
        chunk: list[dict] = []
        first = True
        for row in s.iter_rows():
            chunk.append(dict(zip(keys, values(row))))
            if len(chunk) >= CHUNK_ROWS:
                text = encode(chunk)[1:-1]
                yield text if first else "," + text
                first = False
                chunk = []
        if chunk:
            text = encode(chunk)[1:-1]
            yield (text if first else "," + text) + "]}"
        else:
            yield "]}"
    yield "}}"


# --- CSV --------------------------------------------------------------------------------------------------

_CSV_PLAIN = frozenset((str, int, float))  # written as they are (csv_value returns them unchanged)


def iter_csv(report: Report) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")

    def flush() -> str:
        text = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return text

    def block(section: Section, titled: bool) -> Iterator[str]:
        if titled:
            writer.writerow([f"# {section.title}"])
        writer.writerow([c.title for c in section.columns])
        fast = section.csv_text() if section.csv_text is not None else None
        if fast is not None:
            yield flush()
            yield from fast
            return
        values = _row_values([c.key for c in section.columns])
        plain = _CSV_PLAIN
        chunk: list[list] = []
        for row in section.iter_rows():
            chunk.append([v if type(v) in plain else csv_value(v) for v in values(row)])
            if len(chunk) >= CHUNK_ROWS:
                writer.writerows(chunk)
                chunk = []
                yield flush()
        writer.writerows(chunk)
        yield flush()

    if report.csv_layout == "table":
        yield from block(report.sections[0], False)
        return
    for note in report.notes:  # blocks layout only: a "table" CSV stays a plain table for imports
        writer.writerow([f"# Note: {note}"])
    summary = Section("summary", "Summary", columns(("metric", "Metric"), ("value", "Value")),
                      [{"metric": k, "value": v} for k, v in report.summary.items() if not isinstance(v, (dict, list))])
    for i, section in enumerate([summary, *report.sections]):
        if i:
            writer.writerow([])
        yield from block(section, True)


# --- entry points -----------------------------------------------------------------------------------------

def iter_render(report: Report, fmt: str) -> Iterator[str]:
    if fmt == "csv":
        return iter_csv(report)
    if fmt == "json":
        return iter_json(report)
    raise ValueError(f"unknown report format {fmt!r}")


def render(report: Report, fmt: str) -> bytes:
    """The report as bytes in ``fmt`` ("json" or "csv"), e.g. for a workbook ZIP entry."""
    return "".join(iter_render(report, fmt)).encode("utf-8")


def format_field(allowed: tuple[str, ...], default: str | None = None, description: str = ""):
    """A pydantic query field for ``format``: an enum of the allowed formats, so anything else is 400."""
    return Field(default or allowed[0], description=description or f"Response format: {', '.join(allowed)}.")


def parse_format(allowed: tuple[str, ...], value: str | None = None) -> str:
    """The requested format (``value``, else the request's ``?format=``), defaulting to the first allowed one;
    an unknown format is a 400 in the error envelope."""
    from zentro.platform.errors import ApiError

    if value is None:
        from flask import has_request_context, request

        value = request.args.get("format") if has_request_context() else None
    if value is None or value == "":
        return allowed[0]
    if value not in allowed:
        raise ApiError(400, f"Unknown format {value!r}: use one of {', '.join(allowed)}.")
    return value


def respond(report: Report, fmt: str, *, org_slug: str = "", attachment: bool | None = None):
    """A Flask response: JSON inline (a download when ``attachment``), CSV streamed as an attachment."""
    from flask import Response, stream_with_context

    name = report.filename or f"zentro-{report.slug}" + (f"-{org_slug}" if org_slug else "")
    stamp = report.generated_at.strftime("%Y%m%dT%H%M%SZ")
    if attachment is None:
        attachment = fmt == "csv"
    headers = {}
    if attachment:
        headers["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.{ "csv" if fmt == "csv" else "json"}"'
    return Response(stream_with_context(iter_render(report, fmt)), mimetype=FORMAT_MEDIA[fmt], headers=headers)
