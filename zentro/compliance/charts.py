"""A report's ``Chart`` (``reporting.Chart``) drawn two ways from the same numbers:

- ``chart_svg(chart, id_prefix)``: accessible server-side SVG for the HTML renderings (the in-app report page and
  the printable document): ``<svg role="img">`` with ``<title>``/``<desc>`` (the chart's title, and its
  description followed by the figures in words), axes with ticks, a legend when there are several series, stacked
  or grouped bars, lines with point markers, a dashed threshold line with its label, and heatmaps with a colour
  scale and the value printed in every cell. Every text node and attribute is escaped (``zentro.platform.svg``);
  no JavaScript.
- ``chart_drawing(chart, width, height)``: a reportlab ``Drawing`` for the PDF rendering (VerticalBarChart,
  HorizontalLineChart, or a grid of Rects for heatmaps) with the same palette, legend and threshold line.

Both accept anything a report may produce: no labels, no series, all zeros, one label, negative values, series
shorter or longer than the labels (missing values count as gaps / zero), very long label lists (axis labels are
thinned so they do not overlap; a chart whose labels are names, ``every_label``, slants them instead).
"""
from __future__ import annotations

import math
import re
from typing import Callable, Sequence

from markupsafe import Markup

from zentro.compliance.reporting import Chart
from zentro.platform.svg import BAD, GRID, INK, LINE, MUTED, document, el, num
from zentro.platform.svg import text as label

# Series colours: the house brand colour first, then hues distinguishable in print and by most colour-blind readers.
PALETTE = ("#4338ca", "#0e7490", "#d97706", "#15803d", "#be185d", "#64748b", "#84cc16", "#7c3aed", "#b91c1c",
           "#38bdf8")
# Heatmap scale: low (pale) to high (deep indigo); cells at or above the threshold get a red outline.
HEAT_STOPS = ("#f1f5f9", "#c7d2fe", "#818cf8", "#4f46e5", "#312e81")
EMPTY_TEXT = "No data to chart."
WIDTH = 720
SLANT = 40  # degrees by which axis labels that must all be shown are turned when they do not fit side by side
MAX_DESC_VALUES = 80  # past this many figures the text alternative summarises instead of listing every value


# --- numbers ------------------------------------------------------------------------------------------------

def fmt(value: float | None) -> str:
    """A figure for labels: integers without decimals, others with at most two (no trailing zeros)."""
    if value is None:
        return "–"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return text


def _num(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def values_of(chart: Chart) -> list[list[float | None]]:
    """Each series' values aligned to the labels (missing → None)."""
    n = len(chart.labels)
    return [[_num(s.values[i]) if i < len(s.values) else None for i in range(n)] for s in chart.series]


def is_empty(chart: Chart) -> bool:
    return not chart.labels or not chart.series


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (steps of 1, 2, 2.5 or 5 × 10^n); a flat range gets 0..1."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(1, count)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t < hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(t, 10))
    return ticks


def value_range(chart: Chart) -> tuple[float, float]:
    """The value axis range: includes zero and the threshold; stacked bars use the stacked totals."""
    vals = values_of(chart)
    if chart.kind == "bar" and chart.stacked:
        pos = [sum(v for v in col if v is not None and v > 0) for col in zip(*vals)] if vals else []
        neg = [sum(v for v in col if v is not None and v < 0) for col in zip(*vals)] if vals else []
        flat = pos + neg
    else:
        flat = [v for row in vals for v in row if v is not None]
    if chart.threshold is not None:
        flat.append(float(chart.threshold))
    lo, hi = min([0.0, *flat]), max([0.0, *flat])
    if hi == lo:
        hi = lo + 1
    return lo, hi


def label_step(n: int, room: float, per_label: float) -> int:
    """Show every k-th axis label so that labels of ``per_label`` units fit in ``room``."""
    if n <= 0:
        return 1
    fits = max(1, int(room // per_label))
    return max(1, math.ceil(n / fits))


def short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


def heat_colour(value: float | None, lo: float, hi: float) -> str:
    """The heatmap fill for ``value`` on the lo..hi scale (linear through HEAT_STOPS)."""
    if value is None:
        return "#ffffff"
    if hi <= lo:
        t = 0.0 if value <= lo else 1.0
    else:
        t = max(0.0, min(1.0, (value - lo) / (hi - lo)))
    pos = t * (len(HEAT_STOPS) - 1)
    i = min(int(pos), len(HEAT_STOPS) - 2)
    f = pos - i
    a, b = HEAT_STOPS[i], HEAT_STOPS[i + 1]
    rgb = [round(int(a[k:k + 2], 16) + (int(b[k:k + 2], 16) - int(a[k:k + 2], 16)) * f) for k in (1, 3, 5)]
    return "#" + "".join(f"{c:02x}" for c in rgb)


def scale_steps(chart: Chart, lo: float, hi: float) -> list[float]:
    """The values shown on a heatmap's colour scale: every whole number when the cells are small counts (at
    most 5 apart), else five evenly spaced values."""
    flat = [v for row in values_of(chart) for v in row if v is not None]
    if flat and all(float(v).is_integer() for v in flat) and hi - lo <= 5:
        return [float(v) for v in range(int(lo), int(hi) + 1)]
    return [lo + (hi - lo) * k / 4 for k in range(5)]


def _scale_value(v: float, lo: float, hi: float) -> float:
    """A colour-scale label: whole numbers for ranges of 8 or more, else two decimals."""
    return float(round(v)) if hi - lo >= 8 else round(v, 2)


def dark(colour: str) -> bool:
    r, g, b = (int(colour[k:k + 2], 16) for k in (1, 3, 5))
    return (0.299 * r + 0.587 * g + 0.114 * b) < 140


def heat_range(chart: Chart) -> tuple[float, float]:
    flat = [v for row in values_of(chart) for v in row if v is not None]
    if not flat:
        return 0.0, 1.0
    lo, hi = min(0.0, min(flat)), max(flat)
    return lo, hi if hi > lo else lo + 1


def threshold_name(chart: Chart) -> str:
    """"Capacity: 40 hours"; a label that already names its value (``passing (70)``) is kept as it is."""
    name = chart.threshold_label or "Threshold"
    value = fmt(chart.threshold)
    if re.search(rf"(?<![\d.]){re.escape(value)}(?![\d.])", name):
        return name
    return f"{name}: {value}" + (f" {chart.unit}" if chart.unit else "")


def describe(chart: Chart) -> str:
    """The text alternative: the chart's own description, then its figures in words."""
    unit = f" {chart.unit}" if chart.unit else ""
    lead = chart.description.strip()
    if is_empty(chart):
        return (lead + " " if lead else "") + EMPTY_TEXT
    vals = values_of(chart)
    parts = []
    if len(chart.labels) * len(chart.series) <= MAX_DESC_VALUES:
        for s, row in zip(chart.series, vals):
            parts.append(f"{s.name}: " + ", ".join(f"{lab} {fmt(v)}" for lab, v in zip(chart.labels, row)) + ".")
    else:
        for s, row in zip(chart.series, vals):
            present = [(v, lab) for lab, v in zip(chart.labels, row) if v is not None]
            if not present:
                parts.append(f"{s.name}: no values.")
                continue
            top = max(present, key=lambda p: p[0])
            parts.append(f"{s.name}: total {fmt(sum(v for v, _ in present))}{unit}, highest {fmt(top[0])} at {top[1]}.")
        parts.insert(0, f"{len(chart.labels)} columns from {chart.labels[0]} to {chart.labels[-1]}.")
    if chart.threshold is not None:
        parts.append(threshold_name(chart) + ".")
    if unit:
        parts.insert(0, f"Values in{unit}.")
    return " ".join(([lead] if lead else []) + parts)


# --- SVG ------------------------------------------------------------------------------------------------------

def _legend(chart: Chart, width: float, top: float, left: float) -> tuple[list[str], float]:
    """Legend swatches laid out in rows from (left, top); returns (markup, height used)."""
    if len(chart.series) < 2 or chart.kind == "heatmap":
        return [], 0.0
    out, x, y = [], left, top
    for i, s in enumerate(chart.series):
        name = short(s.name, 32)
        w = 22 + len(name) * 6.6
        if x + w > width - 8 and x > left:
            x, y = left, y + 18
        colour = PALETTE[i % len(PALETTE)]
        swatch = (el("rect", {"x": x, "y": y + 2, "width": 11, "height": 11, "rx": 2, "fill": colour})
                  if chart.kind == "bar" else
                  el("line", {"x1": x, "x2": x + 12, "y1": y + 8, "y2": y + 8, "stroke": colour, "stroke-width": 2.5}))
        out.append(el("g", {"class": "legend-item"}, swatch, label(x + 16, y + 12, name, font_size=11)))
        x += w + 10
    return [el("g", {"class": "legend"}, *out)], y - top + 22


def _axes(lo: float, hi: float, left: float, top: float, pw: float, ph: float,
          unit: str) -> tuple[list[str], Callable[[float], float]]:
    ticks = nice_ticks(lo, hi)
    vmin, vmax = ticks[0], ticks[-1]
    y = lambda v: top + ph * (vmax - v) / (vmax - vmin)  # noqa: E731
    body = [el("rect", {"x": left, "y": top, "width": pw, "height": ph, "fill": "#fff", "stroke": LINE})]
    for t in ticks:
        body.append(el("line", {"x1": left, "x2": left + pw, "y1": y(t), "y2": y(t),
                                "stroke": LINE if t == 0 else GRID}))
        body.append(label(left - 6, y(t) + 4, fmt(t), text_anchor="end", fill=MUTED, font_size=11))
    if unit:
        body.append(label(12, top + ph / 2, unit, text_anchor="middle", fill=MUTED, font_size=10,
                          transform=f"rotate(-90 12 {num(top + ph / 2)})"))
    return body, y


def _x_labels(labels: Sequence[str], x, left: float, pw: float, baseline: float, *, slanted: bool = False) -> list[str]:
    if slanted:  # every label, end-anchored at its bar and turned up by SLANT degrees (thinned only past ~16 px each)
        step = label_step(len(labels), pw, 16)
        return [label(x(i), baseline - 4, short(str(lab), 16), text_anchor="end", fill=MUTED, font_size=10,
                      transform=f"rotate(-{SLANT} {num(x(i))} {num(baseline - 4)})")
                for i, lab in enumerate(labels) if i % step == 0]
    step = label_step(len(labels), pw, _label_chars(labels) * 6.2 + 8)
    room = max(16, min(28, int(pw * step / max(1, len(labels)) / 6.2) - 1))  # characters that fit the slot
    out = []
    for i, lab in enumerate(labels):
        if i % step:
            continue
        text = short(str(lab), room)
        half = len(text) * 3.1
        cx = min(max(x(i), half + 2), WIDTH - half - 2)  # keep the first and last labels inside the picture
        out.append(label(cx, baseline, text, text_anchor="middle", fill=MUTED, font_size=10))
    return out


def _threshold(chart: Chart, y, left: float, pw: float, unit: str) -> list[str]:
    if chart.threshold is None:
        return []
    ty = y(float(chart.threshold))
    name = threshold_name(chart)
    return [el("g", {"class": "threshold"},
               el("line", {"x1": left, "x2": left + pw, "y1": ty, "y2": ty, "stroke": BAD, "stroke-width": 1.5,
                           "stroke-dasharray": "6 4"}),
               label(left + pw - 4, ty - 5, name, text_anchor="end", fill=BAD, font_size=11, font_weight=600))]


def _empty_svg(chart: Chart, id_prefix: str, message: str = EMPTY_TEXT) -> Markup:
    body = [el("rect", {"x": 0.5, "y": 0.5, "width": WIDTH - 1, "height": 79, "fill": "#fff", "stroke": LINE, "rx": 6}),
            label(WIDTH / 2, 45, message, text_anchor="middle", fill=MUTED, font_size=13)]
    return document(WIDTH, 80, chart.title, describe(chart), body, id_prefix=id_prefix, css_class="chart rpt-svg")


def _label_chars(labels: Sequence[str]) -> int:
    """The characters an upright axis label is given room for: the longest label's, between 4 and 16."""
    return min(max(4, max((len(str(lab)) for lab in labels), default=1)), 16)


def slanted_extent(chart: Chart, room: float, char_w: float, pad: float) -> float:
    """0 when the chart's axis labels stay upright (they fit side by side in ``room``, or they may be thinned);
    otherwise the height the longest label takes when slanted by SLANT degrees."""
    if not chart.every_label or not chart.labels:
        return 0.0
    chars = _label_chars(chart.labels)
    if label_step(len(chart.labels), room, chars * char_w + pad) == 1:
        return 0.0
    return chars * char_w * math.sin(math.radians(SLANT)) + 6


def _bar_or_line_svg(chart: Chart, id_prefix: str) -> Markup:
    unit = f" {chart.unit}" if chart.unit else ""
    legend, legend_h = _legend(chart, WIDTH, 6, 52)
    left, right = 56, 16
    slant = slanted_extent(chart, WIDTH - left - right, 6.2, 8)
    if slant:
        left = 72  # room for the first slanted label
    top, bottom = 14 + legend_h, 40 + slant
    height = 260 + legend_h + slant
    pw, ph = WIDTH - left - right, height - top - bottom
    lo, hi = value_range(chart)
    body, y = _axes(lo, hi, left, top, pw, ph, chart.unit)
    body += legend
    n, vals = len(chart.labels), values_of(chart)
    zero = y(0.0)
    if chart.kind == "bar":
        slot = pw / n
        x = lambda i: left + slot * (i + 0.5)  # noqa: E731
        group = slot * 0.72
        bars = []
        for i, lab in enumerate(chart.labels):
            if chart.stacked:
                up = down = 0.0
                for si, s in enumerate(chart.series):
                    v = vals[si][i]
                    if not v:
                        continue
                    base = up if v > 0 else down
                    y0, y1 = y(base), y(base + v)
                    if v > 0:
                        up += v
                    else:
                        down += v
                    bars.append(el("rect", {"x": x(i) - group / 2, "y": min(y0, y1), "width": group,
                                            "height": max(0.5, abs(y1 - y0)), "fill": PALETTE[si % len(PALETTE)]},
                                   el("title", text=f"{lab} · {s.name}: {fmt(v)}{unit}")))
            else:
                k = max(1, len(chart.series))
                w = group / k
                for si, s in enumerate(chart.series):
                    v = vals[si][i]
                    if v is None:
                        continue
                    yy = y(v)
                    bars.append(el("rect", {"x": x(i) - group / 2 + si * w, "y": min(yy, zero),
                                            "width": max(1.0, w - 1),
                                            "height": max(0.5 if v else 0, abs(zero - yy)),
                                            "fill": PALETTE[si % len(PALETTE)]},
                                   el("title", text=f"{lab} · {s.name}: {fmt(v)}{unit}")))
        body.append(el("g", {"class": "bars"}, *bars) if bars else "")
    else:
        x = lambda i: left + (pw * i / (n - 1) if n > 1 else pw / 2)  # noqa: E731
        for si, s in enumerate(chart.series):
            colour = PALETTE[si % len(PALETTE)]
            runs, run = [], []
            for i, v in enumerate(vals[si]):
                if v is None:
                    if run:
                        runs.append(run)
                    run = []
                else:
                    run.append(f"{num(x(i))},{num(y(v))}")
            if run:
                runs.append(run)
            parts = [el("polyline", {"points": " ".join(r), "fill": "none", "stroke": colour, "stroke-width": 2,
                                     "stroke-linejoin": "round"}) for r in runs if len(r) > 1]
            if n <= 60:
                parts += [el("circle", {"cx": x(i), "cy": y(v), "r": 3, "fill": colour},
                             el("title", text=f"{chart.labels[i]} · {s.name}: {fmt(v)}{unit}"))
                          for i, v in enumerate(vals[si]) if v is not None]
            body.append(el("g", {"class": "series"}, *parts) if parts else "")
    body += _threshold(chart, y, left, pw, unit)
    body += _x_labels(chart.labels, x, left, pw, top + ph + 16, slanted=bool(slant))
    if not any(v for row in vals for v in row):
        body.append(label(left + pw / 2, top + ph / 2, "All values are zero.", text_anchor="middle", fill=MUTED,
                          font_size=12))
    return document(WIDTH, int(height), chart.title, describe(chart), [b for b in body if b], id_prefix=id_prefix,
                    css_class="chart rpt-svg")


def _heatmap_svg(chart: Chart, id_prefix: str) -> Markup:
    unit = f" {chart.unit}" if chart.unit else ""
    rows, cols = len(chart.series), len(chart.labels)
    vals = values_of(chart)
    names = [short(s.name, 28) for s in chart.series]
    scale_name = f"Scale ({chart.unit}):" if chart.unit else "Scale:"
    left = max(min(200, 16 + 6.4 * max(len(n) for n in names)), min(200, len(scale_name) * 6.1 + 12))
    right, top = 12, 10
    longest = max(len(str(lab)) for lab in chart.labels)
    rotate = cols * (min(longest, 14) * 6.2 + 6) > WIDTH - left - right
    label_h = (min(longest, 14) * 5.2 + 14) if rotate else 22
    cell_w = max(16.0, (WIDTH - left - right) / cols)
    width = int(max(WIDTH, left + right + cell_w * cols))
    cell_h = 26 if rows <= 20 else 20
    grid_h = cell_h * rows
    scale_top = top + grid_h + label_h + 10
    height = int(scale_top + 40 + (16 if chart.threshold is not None else 0))
    lo, hi = heat_range(chart)
    body = []
    font = 11 if cell_w >= 34 else 9 if cell_w >= 24 else 0
    for r, name in enumerate(names):
        yy = top + r * cell_h
        body.append(label(left - 8, yy + cell_h / 2 + 4, name, text_anchor="end", font_size=11))
        cells = []
        for c in range(cols):
            v = vals[r][c]
            fill = heat_colour(v, lo, hi)
            hot = chart.threshold is not None and v is not None and v >= chart.threshold
            xx = left + c * cell_w
            cells.append(el("rect", {"x": xx + 1, "y": yy + 1, "width": cell_w - 2, "height": cell_h - 2, "rx": 2,
                                     "fill": fill, "stroke": BAD if hot else None,
                                     "stroke-width": 2 if hot else None},
                            el("title", text=f"{chart.series[r].name} · {chart.labels[c]}: {fmt(v)}{unit}")))
            if font and v is not None:
                cells.append(label(xx + cell_w / 2, yy + cell_h / 2 + font / 2.8, fmt(v), text_anchor="middle",
                                   font_size=font, fill="#fff" if dark(fill) else INK))
        body.append(el("g", {"class": "heat-row"}, *cells))
    base = top + grid_h + 14
    step = label_step(cols, cols * cell_w, 18 if rotate else min(longest, 14) * 6.2 + 6)
    for c, lab in enumerate(chart.labels):
        if c % step:
            continue
        cx = left + c * cell_w + cell_w / 2
        if rotate:
            body.append(label(cx + 3, base - 4, short(str(lab), 14), text_anchor="end", fill=MUTED, font_size=10,
                              transform=f"rotate(-45 {num(cx + 3)} {num(base - 4)})"))
        else:
            room = max(6, min(28, int(cell_w * step / 6.2) - 1))
            body.append(label(cx, base, short(str(lab), room), text_anchor="middle", fill=MUTED, font_size=10))
    # colour scale: swatches from the lowest to the highest value
    body.append(label(left, scale_top + 13, scale_name, fill=MUTED, font_size=11, text_anchor="end"))
    sx = left + 6
    for k, v in enumerate(scale_steps(chart, lo, hi)):
        body.append(el("rect", {"x": sx + k * 56, "y": scale_top + 2, "width": 54, "height": 14, "rx": 2,
                                "fill": heat_colour(v, lo, hi), "stroke": LINE}))
        body.append(label(sx + k * 56 + 27, scale_top + 30, fmt(_scale_value(v, lo, hi)), text_anchor="middle",
                          fill=MUTED, font_size=10))
    if chart.threshold is not None:
        body.append(el("rect", {"x": left, "y": scale_top + 40, "width": 12, "height": 12, "rx": 2, "fill": "#fff",
                                "stroke": BAD, "stroke-width": 2}))
        body.append(label(left + 18, scale_top + 50,
                          f"outlined: at or above {chart.threshold_label or 'the threshold'} "
                          f"({fmt(chart.threshold)}{unit})",
                          fill=BAD, font_size=11))
    return document(width, height, chart.title, describe(chart), body, id_prefix=id_prefix,
                    css_class="chart rpt-svg rpt-heatmap")


def chart_svg(chart: Chart, id_prefix: str) -> Markup:
    """The chart as an accessible ``<svg role="img">`` (see the module docstring)."""
    if is_empty(chart):
        return _empty_svg(chart, id_prefix)
    if chart.kind == "heatmap":
        return _heatmap_svg(chart, id_prefix)
    return _bar_or_line_svg(chart, id_prefix)


# --- reportlab -----------------------------------------------------------------------------------------------

def chart_drawing(chart: Chart, width: float, height: float, *, font: str = "Helvetica"):
    """The chart as a reportlab ``Drawing`` of ``width`` × ``height`` points, for a PDF flowable."""
    from reportlab.graphics.shapes import Drawing, String

    d = Drawing(width, height)
    if is_empty(chart):
        d.add(String(width / 2, height / 2, EMPTY_TEXT, fontName=font, fontSize=10, fillColor=_rl(MUTED),
                     textAnchor="middle"))
        return d
    if chart.kind == "heatmap":
        _heatmap_drawing(d, chart, width, height, font)
    else:
        _xy_drawing(d, chart, width, height, font)
    return d


def _rl(colour: str):
    from reportlab.lib.colors import HexColor

    return HexColor(colour)


def _rl_legend(d, chart: Chart, x: float, y: float, width: float, font: str) -> float:
    """Legend in rows from the top-left (x, y) downwards; returns the height used."""
    from reportlab.graphics.shapes import Line, Rect, String

    if len(chart.series) < 2:
        return 0.0
    cx, cy = x, y
    for i, s in enumerate(chart.series):
        name = short(s.name, 32)
        w = 16 + len(name) * 4.6
        if cx + w > x + width and cx > x:
            cx, cy = x, cy - 12
        colour = _rl(PALETTE[i % len(PALETTE)])
        if chart.kind == "bar":
            d.add(Rect(cx, cy - 8, 8, 8, fillColor=colour, strokeColor=None))
        else:
            d.add(Line(cx, cy - 4, cx + 9, cy - 4, strokeColor=colour, strokeWidth=2))
        d.add(String(cx + 12, cy - 7.5, name, fontName=font, fontSize=7.5, fillColor=_rl(INK)))
        cx += w + 8
    return y - cy + 12


def _xy_drawing(d, chart: Chart, width: float, height: float, font: str) -> None:
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.charts.linecharts import HorizontalLineChart
    from reportlab.graphics.shapes import Group, Line, String

    legend_h = _rl_legend(d, chart, 40, height - 2, width - 50, font)
    n, vals = len(chart.labels), values_of(chart)
    lo, hi = value_range(chart)
    ticks = nice_ticks(lo, hi)
    vmin, vmax = ticks[0], ticks[-1]
    plot_w = width - 52
    slant = slanted_extent(chart, plot_w, 4.2, 4)
    step = label_step(n, plot_w, 11 if slant else _label_chars(chart.labels) * 4.2 + 4)
    names = [short(str(lab), 16) if i % step == 0 else "" for i, lab in enumerate(chart.labels)]
    if chart.kind == "bar":
        c = VerticalBarChart()
        c.data = [tuple(v if v is not None else 0 for v in row) for row in vals]
        c.categoryAxis.style = "stacked" if chart.stacked else "parallel"
        c.barSpacing = 0.5
        c.groupSpacing = max(1, 6 if n < 30 else 2)
        for i in range(len(chart.series)):
            c.bars[i].fillColor = _rl(PALETTE[i % len(PALETTE)])
            c.bars[i].strokeColor = None
    else:
        c = HorizontalLineChart()
        c.data = [tuple(v if v is not None else 0 for v in row) for row in vals]  # HorizontalLineChart needs numbers
        c.joinedLines = 1
        for i in range(len(chart.series)):
            c.lines[i].strokeColor = _rl(PALETTE[i % len(PALETTE)])
            c.lines[i].strokeWidth = 1.6
        if n == 1:
            from reportlab.graphics.widgets.markers import makeMarker

            for i in range(len(chart.series)):
                c.lines[i].symbol = makeMarker("FilledCircle", size=4, fillColor=_rl(PALETTE[i % len(PALETTE)]))
    c.x, c.y = (56, 22 + slant) if slant else (44, 22)
    c.width = width - c.x - 8
    c.height = max(30, height - c.y - 8 - legend_h)
    c.valueAxis.valueMin, c.valueAxis.valueMax = vmin, vmax
    c.valueAxis.valueStep = ticks[1] - ticks[0] if len(ticks) > 1 else 1
    c.valueAxis.labels.fontName = c.categoryAxis.labels.fontName = font
    c.valueAxis.labels.fontSize = c.categoryAxis.labels.fontSize = 7
    c.valueAxis.labelTextFormat = lambda v: fmt(v)
    c.valueAxis.visibleGrid = 1
    c.valueAxis.gridStrokeColor = _rl("#e5e7eb")
    c.valueAxis.strokeColor = c.categoryAxis.strokeColor = _rl(LINE)
    c.categoryAxis.categoryNames = names
    c.categoryAxis.labels.fillColor = c.valueAxis.labels.fillColor = _rl(MUTED)
    c.categoryAxis.labels.boxAnchor = "ne" if slant else "n"
    if slant:
        c.categoryAxis.labels.angle = SLANT
    d.add(c)
    if chart.unit:
        unit_label = Group(String(0, 0, chart.unit, fontName=font, fontSize=7, fillColor=_rl(MUTED),
                                  textAnchor="middle"))
        unit_label.translate(9, c.y + c.height / 2)
        unit_label.rotate(90)
        d.add(unit_label)
    if chart.threshold is not None:
        ty = c.y + c.height * (float(chart.threshold) - vmin) / (vmax - vmin)
        d.add(Line(c.x, ty, c.x + c.width, ty, strokeColor=_rl(BAD), strokeWidth=1.2, strokeDashArray=[4, 3]))
        d.add(String(c.x + c.width - 2, ty + 3, threshold_name(chart),
                     fontName=font, fontSize=7.5, fillColor=_rl(BAD), textAnchor="end"))
    if not any(v for row in vals for v in row):
        d.add(String(c.x + c.width / 2, c.y + c.height / 2, "All values are zero.", fontName=font, fontSize=9,
                     fillColor=_rl(MUTED), textAnchor="middle"))


def _heatmap_drawing(d, chart: Chart, width: float, height: float, font: str) -> None:
    from reportlab.graphics.shapes import Rect, String

    rows, cols = len(chart.series), len(chart.labels)
    vals = values_of(chart)
    names = [short(s.name, 28) for s in chart.series]
    left = min(150.0, 8 + 4.3 * max(len(n) for n in names))
    scale_h, label_h = 24.0, 14.0
    cell_w = (width - left - 4) / cols
    cell_h = min(20.0, max(6.0, (height - scale_h - label_h - 4) / rows))
    top = height - 2
    lo, hi = heat_range(chart)
    fsize = 7 if cell_w >= 22 and cell_h >= 11 else 5.5 if cell_w >= 14 and cell_h >= 8 else 0
    for r, name in enumerate(names):
        y = top - (r + 1) * cell_h
        d.add(String(left - 4, y + cell_h / 2 - 2.5, name, fontName=font, fontSize=min(7.5, cell_h * 0.7),
                     fillColor=_rl(INK), textAnchor="end"))
        for c in range(cols):
            v = vals[r][c]
            fill = heat_colour(v, lo, hi)
            hot = chart.threshold is not None and v is not None and v >= chart.threshold
            d.add(Rect(left + c * cell_w + 0.5, y + 0.5, cell_w - 1, cell_h - 1, fillColor=_rl(fill),
                       strokeColor=_rl(BAD) if hot else None, strokeWidth=1.2 if hot else 0))
            if fsize and v is not None:
                d.add(String(left + c * cell_w + cell_w / 2, y + cell_h / 2 - fsize / 2.8, fmt(v), fontName=font,
                             fontSize=fsize, fillColor=_rl("#ffffff" if dark(fill) else INK), textAnchor="middle"))
    base = top - rows * cell_h - 9
    longest = max(len(str(lab)) for lab in chart.labels)
    step = label_step(cols, cols * cell_w, min(longest, 12) * 4 + 4)
    for c, lab in enumerate(chart.labels):
        if c % step == 0:
            d.add(String(left + c * cell_w + cell_w / 2, base, short(str(lab), 12), fontName=font, fontSize=6.5,
                         fillColor=_rl(MUTED), textAnchor="middle"))
    sy = base - 20
    unit = f" ({chart.unit})" if chart.unit else ""
    d.add(String(left, sy + 3, f"Scale{unit}:", fontName=font, fontSize=7, fillColor=_rl(MUTED), textAnchor="end"))
    for k, v in enumerate(scale_steps(chart, lo, hi)):
        d.add(Rect(left + 6 + k * 40, sy, 38, 9, fillColor=_rl(heat_colour(v, lo, hi)), strokeColor=_rl(LINE),
                   strokeWidth=0.5))
        d.add(String(left + 6 + k * 40 + 19, sy - 8, fmt(_scale_value(v, lo, hi)), fontName=font, fontSize=6.5,
                     fillColor=_rl(MUTED), textAnchor="middle"))
    if chart.threshold is not None:
        tx = left + 6 + len(scale_steps(chart, lo, hi)) * 40 + 14
        d.add(Rect(tx, sy, 9, 9, fillColor=_rl("#ffffff"), strokeColor=_rl(BAD), strokeWidth=1.2))
        d.add(String(tx + 14, sy + 1.5,
                     f"at or above {chart.threshold_label or 'threshold'} ({fmt(chart.threshold)})",
                     fontName=font, fontSize=7, fillColor=_rl(BAD)))


def drawing_height(chart: Chart, width: float) -> float:
    """A sensible PDF height for the chart at ``width`` points."""
    if is_empty(chart):
        return 40.0
    if chart.kind == "heatmap":
        rows = len(chart.series)
        return min(520.0, 60.0 + rows * (16.0 if rows <= 20 else 10.0))
    legend_rows = 0
    if len(chart.series) > 1:
        line = 0.0
        legend_rows = 1
        for s in chart.series:
            w = 16 + len(short(s.name, 32)) * 4.6 + 8
            if line + w > width - 50 and line:
                legend_rows += 1
                line = 0.0
            line += w
    return 190.0 + legend_rows * 12
