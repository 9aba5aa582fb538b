"""Server-side SVG for the compliance pages: readiness sparklines, the weekly readiness trend and readiness
bars by family. Same house style as the reliability charts: ``<svg role="img">`` with a ``<title>`` and a
``<desc>`` saying in words what the picture shows, every text node and attribute escaped, no JavaScript."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from markupsafe import Markup

from zentro.platform.svg import (BAD, BRAND, FONT, GRID, INK, LINE, MUTED, OK, SVG_NS, WARN, document, el,  # noqa: F401
                                 esc, num)
from zentro.platform.svg import text as label

PASS_LINE, RISK_LINE = 70.0, 40.0


def state_colour(score: float) -> str:
    return OK if score >= PASS_LINE else WARN if score >= RISK_LINE else BAD


@dataclass
class Point:
    label: str  # x-axis label (the week's first day)
    value: float  # readiness 0-100
    note: str = ""  # tooltip


def sparkline(values: Sequence[float], *, title: str, id_prefix: str, width: int = 150, height: int = 36) -> Markup:
    """A small readiness line (0-100) with the 70 % passing line dashed; the last point coloured by state."""
    if not values:
        return document(width, height, title, "No trend yet.", [], id_prefix=id_prefix, css_class="spark")
    pad = 3
    n = len(values)
    x = lambda i: pad + (width - 2 * pad) * (i / (n - 1) if n > 1 else 0.5)  # noqa: E731
    y = lambda v: pad + (height - 2 * pad) * (100 - max(0.0, min(100.0, v))) / 100  # noqa: E731
    desc = (f"Weekly readiness over {n} weeks: from {values[0]:g} % to {values[-1]:g} %"
            f" (lowest {min(values):g} %, highest {max(values):g} %).")
    body = [el("line", {"x1": pad, "x2": width - pad, "y1": y(PASS_LINE), "y2": y(PASS_LINE), "stroke": LINE,
                        "stroke-dasharray": "3 2"}),
            el("polyline", {"points": " ".join(f"{num(x(i))},{num(y(v))}" for i, v in enumerate(values)), "fill": "none",
                            "stroke": BRAND, "stroke-width": 1.5, "stroke-linejoin": "round"}),
            el("circle", {"cx": x(n - 1), "cy": y(values[-1]), "r": 2.5, "fill": state_colour(values[-1])})]
    return document(width, height, title, desc, body, id_prefix=id_prefix, css_class="spark")


def trend_chart(points: Sequence[Point], *, title: str, id_prefix: str, width: int = 720, height: int = 240) -> Markup:
    """Weekly readiness (%) with the passing (70) and at-risk (40) lines."""
    left, right, top, bottom = 46, 14, 12, 40
    pw, ph = width - left - right, height - top - bottom
    n = len(points)
    if not n:
        return document(width, height, title, "No weeks to show.", [label(width / 2, height / 2, "No trend yet.",
                                                                          text_anchor="middle", fill=MUTED)],
                        id_prefix=id_prefix)
    x = lambda i: left + (pw * i / (n - 1) if n > 1 else pw / 2)  # noqa: E731
    y = lambda v: top + ph * (100 - v) / 100  # noqa: E731
    body = [el("rect", {"x": left, "y": top, "width": pw, "height": ph, "fill": "#fff", "stroke": LINE})]
    for tick in (0, 20, 40, 60, 70, 80, 100):
        special = tick in (PASS_LINE, RISK_LINE)
        body.append(el("line", {"x1": left, "x2": left + pw, "y1": y(tick), "y2": y(tick),
                                "stroke": (OK if tick == PASS_LINE else WARN) if special else GRID,
                                "stroke-dasharray": "5 3" if special else None}))
        body.append(label(left - 6, y(tick) + 4, f"{tick}", text_anchor="end", fill=MUTED, font_size=11))
    for i, p in enumerate(points):
        body.append(label(x(i), top + ph + 16, p.label, text_anchor="middle", fill=MUTED, font_size=10))
    area = ([f"M{num(x(0))},{num(y(0))}"] + [f"L{num(x(i))},{num(y(p.value))}" for i, p in enumerate(points)]
            + [f"L{num(x(n - 1))},{num(y(0))}Z"])
    body.append(el("path", {"d": "".join(area), "fill": BRAND, "fill-opacity": 0.07, "stroke": "none"}))
    body.append(el("polyline", {"points": " ".join(f"{num(x(i))},{num(y(p.value))}" for i, p in enumerate(points)),
                                "fill": "none", "stroke": BRAND, "stroke-width": 2, "stroke-linejoin": "round"}))
    for i, p in enumerate(points):
        body.append(el("circle", {"cx": x(i), "cy": y(p.value), "r": 3.5, "fill": state_colour(p.value)},
                       el("title", text=p.note or f"{p.label}: {p.value:g} %")))
    body.append(label(left + pw, top + ph + 32, "week starting (UTC)", text_anchor="end", fill=MUTED, font_size=10))
    desc = (f"Readiness at the end of each of the last {n} weeks: "
            + ", ".join(f"{p.label} {p.value:g} %" for p in points)
            + ". Dashed lines: 70 % passing, 40 % at risk.")
    return document(width, height, title, desc, body, id_prefix=id_prefix)


@dataclass
class Bar:
    label: str
    value: float
    note: str = ""
    href: str | None = None


def readiness_bars(bars: Sequence[Bar], *, title: str, id_prefix: str, width: int = 560) -> Markup:
    """Horizontal readiness bars (0-100), one per family, coloured by state, with the 70 % line."""
    row, left, right, top = 24, 196, 50, 8
    height = top * 2 + row * max(1, len(bars)) + 18
    pw = width - left - right
    body = []
    gx = left + pw * PASS_LINE / 100
    for i, b in enumerate(bars):
        yy = top + i * row
        name = b.label if len(b.label) <= 28 else b.label[:27] + "…"
        bar = [el("rect", {"x": left, "y": yy + 4, "width": pw, "height": row - 10, "fill": GRID, "rx": 3}),
               el("rect", {"x": left, "y": yy + 4, "width": max(1.0, pw * max(0.0, min(100.0, b.value)) / 100),
                           "height": row - 10, "fill": state_colour(b.value), "rx": 3},
                  el("title", text=b.note or f"{b.label}: {b.value:g} %")),
               label(left - 8, yy + row / 2 + 4, name, text_anchor="end", font_size=11),
               label(left + pw + 6, yy + row / 2 + 4, f"{b.value:g} %", font_size=11, fill=MUTED)]
        body.append(el("a", {"href": b.href}, *bar) if b.href else el("g", {}, *bar))
    last = top + row * max(1, len(bars))
    body.append(el("line", {"x1": gx, "x2": gx, "y1": top, "y2": last, "stroke": OK, "stroke-dasharray": "4 3"}))
    body.append(label(gx, last + 14, "70 % passing", text_anchor="middle", fill=MUTED, font_size=10))
    desc = "Readiness by family: " + ", ".join(f"{b.label} {b.value:g} %" for b in bars) + "."
    return document(width, height, title, desc, body, id_prefix=id_prefix)
