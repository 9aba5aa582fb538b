"""Server-side SVG pictures: a small element builder that escapes every text node and attribute, and
the reliability charts built with it (error-budget burndown, burn-rate bars, daily burn columns) and
the dependency-graph drawing (layered left to right by depth). No JavaScript.

Every picture is ``<svg role="img" aria-labelledby="…">`` with a ``<title>`` and a ``<desc>`` that says
what it shows in words, and pieces carry their own ``<title>`` (browsers show it as a tooltip)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from markupsafe import Markup

from zentro.platform.svg import (BAD, BRAND, FONT, GRID, INK, LINE, MUTED, OK, SVG_NS, WARN, document, el,  # noqa: F401
                                 esc, num, text)

TIER_FILL = {0: "#312e81", 1: "#4338ca", 2: "#0f766e", 3: "#64748b"}
TIER_NAME = {0: "tier 0", 1: "tier 1", 2: "tier 2", 3: "tier 3"}


def empty_chart(width: int, height: int, title: str, message: str, *, id_prefix: str) -> Markup:
    return document(width, height, title, message, [
        el("rect", {"x": 0.5, "y": 0.5, "width": width - 1, "height": height - 1, "fill": "#fafbfc", "stroke": LINE,
                    "rx": 6}),
        text(width / 2, height / 2, message, text_anchor="middle", fill=MUTED, font_size=13),
    ], id_prefix=id_prefix)


# --- charts ---------------------------------------------------------------------------------------

@dataclass
class Point:
    label: str  # x-axis label (a day)
    value: float | None  # None: no data (the line breaks)
    note: str = ""  # tooltip


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / max(ticks, 1)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


def burndown_chart(points: Sequence[Point], *, title: str, desc: str, id_prefix: str, width: int = 640,
                   height: int = 260) -> Markup:
    """Error budget remaining (%) by day, with the 0 % line (budget exhausted) marked."""
    values = [p.value for p in points if p.value is not None]
    if not values:
        return empty_chart(width, height, title, "No SLI samples or incidents in the last 30 days.", id_prefix=id_prefix)
    left, right, top, bottom = 58, 16, 14, 46
    pw, ph = width - left - right, height - top - bottom
    hi = max(100.0, max(values))
    lo = min(0.0, min(values))
    step = _nice_step(hi - lo)
    hi, lo = math.ceil(hi / step) * step, math.floor(lo / step) * step
    y = lambda v: top + ph * (hi - v) / (hi - lo)  # noqa: E731
    n = len(points)
    x = lambda i: left + (pw * i / (n - 1) if n > 1 else pw / 2)  # noqa: E731
    body = [el("rect", {"x": left, "y": top, "width": pw, "height": ph, "fill": "#fff", "stroke": LINE})]
    tick = lo
    while tick <= hi + 1e-9:
        body.append(el("line", {"x1": left, "x2": left + pw, "y1": y(tick), "y2": y(tick),
                                "stroke": BAD if tick == 0 else GRID,
                                "stroke-dasharray": "5 3" if tick == 0 else None}))
        body.append(text(left - 6, y(tick) + 4, f"{tick:g} %", text_anchor="end", fill=MUTED, font_size=11))
        tick += step
    every = max(1, math.ceil(n / 8))
    for i, p in enumerate(points):
        if i % every == 0 or i == n - 1:
            body.append(el("line", {"x1": x(i), "x2": x(i), "y1": top + ph, "y2": top + ph + 4, "stroke": MUTED}))
            body.append(text(x(i), top + ph + 17, p.label, text_anchor="middle", fill=MUTED, font_size=11))
    segments, current = [], []
    for i, p in enumerate(points):
        if p.value is None:
            if current:
                segments.append(current)
            current = []
        else:
            current.append((x(i), y(p.value)))
    if current:
        segments.append(current)
    for seg in segments:
        if len(seg) > 1:
            area = [f"M{num(seg[0][0])},{num(y(max(lo, 0)))}"] + [f"L{num(a)},{num(b)}" for a, b in seg] + \
                   [f"L{num(seg[-1][0])},{num(y(max(lo, 0)))}Z"]
            body.append(el("path", {"d": "".join(area), "fill": BRAND, "fill-opacity": 0.08, "stroke": "none"}))
        body.append(el("polyline", {"points": " ".join(f"{num(a)},{num(b)}" for a, b in seg), "fill": "none",
                                    "stroke": BRAND, "stroke-width": 2, "stroke-linejoin": "round"}))
    for i, p in enumerate(points):
        if p.value is not None:
            colour = BAD if p.value <= 0 else WARN if p.value < 25 else BRAND
            body.append(el("circle", {"cx": x(i), "cy": y(p.value), "r": 3, "fill": colour},
                           el("title", text=p.note or f"{p.label}: {p.value:.1f} % remaining")))
    body.append(text(14, top + ph / 2, "Budget remaining (%)", text_anchor="middle", fill=MUTED, font_size=11,
                     transform=f"rotate(-90 14 {num(top + ph / 2)})"))
    body.append(text(left + pw / 2, height - 6, "Day (UTC)", text_anchor="middle", fill=MUTED, font_size=11))
    return document(width, height, title, desc, body, id_prefix=id_prefix)


@dataclass
class Bar:
    label: str
    value: float | None  # None: no data
    note: str = ""


BURN_THRESHOLDS = ((1.0, "1×: on budget pace", WARN), (6.0, "6×", WARN), (14.4, "14.4×", BAD))


def burn_colour(value: float) -> str:
    return BAD if value >= 14.4 else WARN if value >= 1 else OK


def burn_bars(bars: Sequence[Bar], *, title: str, desc: str, id_prefix: str, width: int = 640) -> Markup:
    """Horizontal burn-rate bars per window on a log scale (0.1× … ≥100×), with the 1×, 6× and 14.4×
    alerting thresholds drawn as dashed lines."""
    left, right, top, row, bottom = 64, 56, 26, 26, 40
    height = top + row * len(bars) + bottom
    pw = width - left - right
    top_value = max([100.0] + [b.value for b in bars if b.value])
    lo_exp, hi_exp = -1, math.ceil(math.log10(top_value))
    x = lambda v: left + pw * (math.log10(max(v, 0.1)) - lo_exp) / (hi_exp - lo_exp)  # noqa: E731
    body = [el("rect", {"x": left, "y": top, "width": pw, "height": row * len(bars), "fill": "#fff", "stroke": LINE})]
    for e in range(lo_exp, hi_exp + 1):
        v = 10.0 ** e
        body.append(el("line", {"x1": x(v), "x2": x(v), "y1": top, "y2": top + row * len(bars), "stroke": GRID}))
        body.append(text(x(v), top + row * len(bars) + 15, f"{v:g}×", text_anchor="middle", fill=MUTED, font_size=11))
    for value, name, colour in BURN_THRESHOLDS:
        body.append(el("line", {"x1": x(value), "x2": x(value), "y1": top - 4, "y2": top + row * len(bars),
                                "stroke": colour, "stroke-dasharray": "4 3"},
                       el("title", text=f"threshold {name}")))
        body.append(text(x(value), top - 8, f"{value:g}×", text_anchor="middle", fill=colour, font_size=10))
    for i, b in enumerate(bars):
        cy = top + row * i + row / 2
        body.append(text(left - 8, cy + 4, b.label, text_anchor="end", font_size=12))
        if b.value is None:
            body.append(text(left + 6, cy + 4, "no data", fill=MUTED, font_size=11))
            continue
        w = max(x(b.value) - left, 0.0) if b.value > 0 else 0.0
        body.append(el("rect", {"x": left, "y": cy - 8, "width": max(w, 1.5), "height": 16, "rx": 2,
                                "fill": burn_colour(b.value)},
                       el("title", text=b.note or f"{b.label}: burn rate {b.value:g}×")))
        body.append(text(left + w + 6, cy + 4, f"{b.value:.2f}×", font_size=11))
    body.append(text(left + pw / 2, height - 6, "Burn rate (log scale; 1× spends the budget exactly over the SLO window)",
                     text_anchor="middle", fill=MUTED, font_size=11))
    return document(width, height, title, desc, body, id_prefix=id_prefix)


def column_chart(bars: Sequence[Bar], *, title: str, desc: str, id_prefix: str, y_label: str, width: int = 640,
                 height: int = 200) -> Markup:
    """Vertical columns (a day's burn rate), linear scale, with the 1× line."""
    values = [b.value for b in bars if b.value is not None]
    if not values:
        return empty_chart(width, height, title, "No data in the last 30 days.", id_prefix=id_prefix)
    left, right, top, bottom = 58, 16, 14, 46
    pw, ph = width - left - right, height - top - bottom
    hi = max(2.0, max(values))
    step = _nice_step(hi, 4)
    hi = math.ceil(hi / step) * step
    y = lambda v: top + ph * (hi - v) / hi  # noqa: E731
    n = len(bars)
    slot = pw / max(n, 1)
    body = [el("rect", {"x": left, "y": top, "width": pw, "height": ph, "fill": "#fff", "stroke": LINE})]
    tick = 0.0
    while tick <= hi + 1e-9:
        body.append(el("line", {"x1": left, "x2": left + pw, "y1": y(tick), "y2": y(tick), "stroke": GRID}))
        body.append(text(left - 6, y(tick) + 4, f"{tick:g}×", text_anchor="end", fill=MUTED, font_size=11))
        tick += step
    body.append(el("line", {"x1": left, "x2": left + pw, "y1": y(1), "y2": y(1), "stroke": WARN,
                            "stroke-dasharray": "4 3"}, el("title", text="1×: spending the budget exactly")))
    every = max(1, math.ceil(n / 8))
    for i, b in enumerate(bars):
        cx = left + slot * i + slot / 2
        if b.value is not None:
            h = ph * min(b.value, hi) / hi
            body.append(el("rect", {"x": cx - slot * 0.35, "y": top + ph - h, "width": slot * 0.7, "height": max(h, 0.5),
                                    "fill": burn_colour(b.value)},
                           el("title", text=b.note or f"{b.label}: {b.value:g}×")))
        if i % every == 0 or i == n - 1:
            body.append(text(cx, top + ph + 17, b.label, text_anchor="middle", fill=MUTED, font_size=11))
    body.append(text(14, top + ph / 2, y_label, text_anchor="middle", fill=MUTED, font_size=11,
                     transform=f"rotate(-90 14 {num(top + ph / 2)})"))
    body.append(text(left + pw / 2, height - 6, "Day (UTC)", text_anchor="middle", fill=MUTED, font_size=11))
    return document(width, height, title, desc, body, id_prefix=id_prefix)


# --- dependency graph -----------------------------------------------------------------------------

NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN, LANE_H = 172, 58, 64, 24, 24, 22


@dataclass
class Layout:
    nodes: dict[int, tuple[float, float]]  # top-left corner of each service box
    routes: dict[tuple[int, int], list[tuple[float, float]]]  # edge → points it passes through
    width: float
    height: float
    columns: list[tuple[int, float]]  # (depth, x)


def layout(nodes: Sequence[dict], edges: Sequence[dict], sweeps: int = 6) -> Layout:
    """Layered (Sugiyama-style) layout: a column per ``depth``; an edge spanning several columns gets a
    virtual waypoint in each column it crosses, so it runs through a lane of its own instead of under
    boxes; rows are ordered by the barycentre of their neighbours (alternating sweeps) to keep
    crossings down; each column is centred vertically."""
    depth = {n["id"]: n["depth"] for n in nodes}
    columns: dict[int, list] = {d: [] for d in sorted(set(depth.values()))}
    for n in sorted(nodes, key=lambda n: (n["tier"], n["name"])):
        columns[n["depth"]].append(n["id"])
    preds: dict[object, list] = {}
    succs: dict[object, list] = {}
    chains: dict[tuple[int, int], list] = {}
    for e in edges:
        a, b = e["source"], e["target"]
        if a not in depth or b not in depth:
            continue
        chain = [a] + [("lane", a, b, d) for d in range(depth[a] + 1, depth[b])] + [b]
        for v in chain[1:-1]:
            columns.setdefault(v[3], []).append(v)
        for u, v in zip(chain, chain[1:]):
            succs.setdefault(u, []).append(v)
            preds.setdefault(v, []).append(u)
        chains[(a, b)] = chain
    order = {v: i for col in columns.values() for i, v in enumerate(col)}
    depths = sorted(columns)
    for sweep in range(sweeps):
        forward = sweep % 2 == 0
        links = preds if forward else succs
        for d in (depths[1:] if forward else list(reversed(depths[:-1]))):
            def centre(v) -> float:
                near = [order[m] for m in links.get(v, []) if m in order]
                return sum(near) / len(near) if near else order[v]

            columns[d].sort(key=lambda v: (centre(v), order[v]))
            for i, v in enumerate(columns[d]):
                order[v] = i

    def slot(v) -> float:
        return (LANE_H if isinstance(v, tuple) else NODE_H) + GAP_Y

    tallest = max((sum(slot(v) for v in col) for col in columns.values()), default=0.0)
    top = MARGIN + 22
    xy: dict[object, tuple[float, float]] = {}
    col_x = []
    for ci, d in enumerate(depths):
        x = MARGIN + ci * (NODE_W + GAP_X)
        col_x.append((d, x))
        y = top + (tallest - sum(slot(v) for v in columns[d])) / 2
        for v in columns[d]:
            xy[v] = (x, y)
            y += slot(v)
    routes = {}
    for (a, b), chain in chains.items():
        ax, ay = xy[a]
        bx, by = xy[b]
        points = [(ax + NODE_W, ay + NODE_H / 2)]
        for v in chain[1:-1]:
            vx, vy = xy[v]
            points += [(vx, vy + LANE_H / 2), (vx + NODE_W, vy + LANE_H / 2)]
        points.append((bx - 2, by + NODE_H / 2))
        routes[(a, b)] = points
    width = MARGIN * 2 + len(depths) * NODE_W + max(len(depths) - 1, 0) * GAP_X
    return Layout({k: v for k, v in xy.items() if not isinstance(k, tuple)}, routes, width, top + tallest, col_x)


def _route_path(points: list[tuple[float, float]]) -> str:
    """Curves between columns, straight runs through a lane."""
    d = [f"M{num(points[0][0])},{num(points[0][1])}"]
    for i, ((x1, y1), (x2, y2)) in enumerate(zip(points, points[1:])):
        if i % 2 == 1:  # inside a lane
            d.append(f"L{num(x2)},{num(y2)}")
        else:
            bend = max(24.0, (x2 - x1) / 2)
            d.append(f"C{num(x1 + bend)},{num(y1)} {num(x2 - bend)},{num(y2)} {num(x2)},{num(y2)}")
    return "".join(d)


def _truncate(name: str, limit: int = 21) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _globe(cx: float, cy: float, colour: str) -> list[str]:
    return [el("circle", {"cx": cx, "cy": cy, "r": 7}), el("ellipse", {"cx": cx, "cy": cy, "rx": 3, "ry": 7}),
            el("line", {"x1": cx - 7, "x2": cx + 7, "y1": cy, "y2": cy})]


def dependency_graph(nodes: Sequence[dict], edges: Sequence[dict], *, href: Callable[[int], str] | None = None,
                     highlight: set[tuple[int, int]] = frozenset(), id_prefix: str = "depgraph") -> Markup:
    """Nodes are services (fill by tier; a red outline and badge count open incidents; a globe marks
    internet-facing ones; an amber badge counts open findings); arrows point from a service to what
    it depends on. ``highlight`` edges (e.g. the top attack path) are drawn thicker in red."""
    title = "Service dependency graph"
    if not nodes:
        return empty_chart(640, 160, title, "No services yet.", id_prefix=id_prefix)
    lay = layout(nodes, edges)
    names = {n["id"]: n["name"] for n in nodes}
    legend_y = lay.height + 16
    height = int(legend_y + 26)
    arrow, arrow_hot = f"{id_prefix}-arrow", f"{id_prefix}-arrow-hot"
    markers = [el("marker", {"id": mid, "viewBox": "0 0 10 10", "refX": 9, "refY": 5, "markerWidth": 7,
                             "markerHeight": 7, "orient": "auto-start-reverse"},
                  el("path", {"d": "M0,0 L10,5 L0,10 z", "fill": colour}))
               for mid, colour in ((arrow, "#64748b"), (arrow_hot, BAD))]
    body = [el("defs", None, *markers)]
    for d, x0 in lay.columns:
        body.append(text(x0 + NODE_W / 2, MARGIN + 6, f"depth {d}", text_anchor="middle", fill=MUTED, font_size=11))
    hot_marks = []
    for e in edges:
        key = (e["source"], e["target"])
        if key not in lay.routes:
            continue
        hot = key in highlight
        mark = el("path", {"d": _route_path(lay.routes[key]), "fill": "none", "stroke": BAD if hot else "#94a3b8",
                           "stroke-width": 3 if hot else 1.6, "marker-end": f"url(#{arrow_hot if hot else arrow})",
                           "class": "edge hot" if hot else "edge"},
                  el("title", text=f"{names[key[0]]} depends on {names[key[1]]}"))
        (hot_marks if hot else body).append(mark)
    body += hot_marks  # drawn last so they stay visible
    for n in nodes:
        x0, y0 = lay.nodes[n["id"]]
        incidents = n.get("open_incidents", 0)
        findings = n.get("open_findings", 0)
        fill = TIER_FILL.get(n["tier"], TIER_FILL[3])
        details = [f"{n['name']}", f"{TIER_NAME.get(n['tier'], 'tier ?')}, {n['environment']}",
                   "internet-facing" if n["internet_facing"] else "internal",
                   f"{incidents} open incident{'s' if incidents != 1 else ''}",
                   f"{findings} open finding{'s' if findings != 1 else ''}"]
        parts = [el("title", text="; ".join(details)),
                 el("rect", {"x": x0, "y": y0, "width": NODE_W, "height": NODE_H, "rx": 8, "fill": fill,
                             "stroke": BAD if incidents else "#ffffff", "stroke-width": 3 if incidents else 1}),
                 text(x0 + 12, y0 + 23, _truncate(n["name"]), fill="#fff", font_size=13, font_weight=600),
                 text(x0 + 12, y0 + 42, f"{TIER_NAME.get(n['tier'], '?')} · {n['environment']}", fill="#e0e7ff",
                      font_size=11)]
        if n["internet_facing"]:
            parts.append(el("g", {"class": "globe", "stroke": "#fff", "fill": "none", "stroke-width": 1.2},
                            el("title", text="internet-facing"), *_globe(x0 + NODE_W - 16, y0 + NODE_H - 15, "#fff")))
        if incidents:
            parts.append(el("g", {"class": "badge-incidents"},
                            el("title", text=f"{incidents} open incident{'s' if incidents != 1 else ''}"),
                            el("circle", {"cx": x0 + NODE_W - 4, "cy": y0 + 4, "r": 10, "fill": BAD, "stroke": "#fff",
                                          "stroke-width": 2}),
                            text(x0 + NODE_W - 4, y0 + 8, str(incidents), fill="#fff", font_size=11, font_weight=700,
                                 text_anchor="middle")))
        if findings:
            parts.append(el("g", {"class": "badge-findings"},
                            el("title", text=f"{findings} open finding{'s' if findings != 1 else ''}"),
                            el("rect", {"x": x0 - 6, "y": y0 - 8, "width": 22, "height": 16, "rx": 4, "fill": "#f59e0b",
                                        "stroke": "#fff", "stroke-width": 1.5}),
                            text(x0 + 5, y0 + 4, str(findings), fill="#111827", font_size=10, font_weight=700,
                                 text_anchor="middle")))
        group = el("g", {"class": "node", "data-service-id": n["id"]}, *parts)
        if href is not None:
            group = el("a", {"href": href(n["id"]), "aria-label": ", ".join(details)}, group)
        body.append(group)
    # legend
    lx, ly = MARGIN, legend_y
    legend = []
    for tier, colour in TIER_FILL.items():
        legend += [el("rect", {"x": lx, "y": ly - 10, "width": 14, "height": 14, "rx": 3, "fill": colour}),
                   text(lx + 19, ly + 1, TIER_NAME[tier], fill=MUTED, font_size=11)]
        lx += 66
    legend += [el("rect", {"x": lx, "y": ly - 10, "width": 14, "height": 14, "rx": 3, "fill": "#fff", "stroke": BAD,
                           "stroke-width": 3}),
               text(lx + 19, ly + 1, "open incidents", fill=MUTED, font_size=11)]
    lx += 104
    legend += [el("rect", {"x": lx, "y": ly - 10, "width": 14, "height": 14, "rx": 3, "fill": "#f59e0b"}),
               text(lx + 19, ly + 1, "open findings", fill=MUTED, font_size=11)]
    lx += 100
    legend += [el("g", {"stroke": MUTED, "fill": "none", "stroke-width": 1.2}, *_globe(lx + 7, ly - 3, MUTED)),
               text(lx + 19, ly + 1, "internet-facing", fill=MUTED, font_size=11)]
    lx += 106
    legend += [el("line", {"x1": lx, "x2": lx + 26, "y1": ly - 3, "y2": ly - 3, "stroke": "#64748b",
                           "marker-end": f"url(#{arrow})"}),
               text(lx + 32, ly + 1, "depends on", fill=MUTED, font_size=11)]
    lx += 100
    if highlight:
        legend += [el("line", {"x1": lx, "x2": lx + 26, "y1": ly - 3, "y2": ly - 3, "stroke": BAD, "stroke-width": 3}),
                   text(lx + 32, ly + 1, "top attack path", fill=MUTED, font_size=11)]
        lx += 120
    body.append(el("g", {"class": "legend"}, *legend))
    width = int(max(lay.width, lx + MARGIN))
    edges_text = "; ".join(f"{names[e['source']]} → {names[e['target']]}" for e in edges
                           if e["source"] in names and e["target"] in names)
    desc = (f"{len(nodes)} services in {len(lay.columns)} layers by dependency depth, {len(edges)} dependency edges "
            f"(an arrow points from a service to one it depends on): {edges_text or 'none'}.")
    return document(width, height, title, desc, body, id_prefix=id_prefix, css_class="chart graph")
