"""The SVG module: well-formed XML, escaped text, accessible titles, and the expected elements."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from zentro.reliability import svg

NS = {"s": "http://www.w3.org/2000/svg"}
EVIL = "<script>alert('x')</script> & \"quotes\""


def parse(markup) -> ET.Element:
    root = ET.fromstring(str(markup))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("role") == "img"
    title_id, desc_id = root.get("aria-labelledby").split()
    assert root.find(f"s:title[@id='{title_id}']", NS).text
    assert root.find(f"s:desc[@id='{desc_id}']", NS).text
    return root


def texts(root) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_element_builder_escapes_text_and_attributes():
    markup = svg.el("g", {"data-x": EVIL, "skip": None, "off": False}, svg.el("title", text=EVIL), text=EVIL)
    node = ET.fromstring(markup)
    assert node.get("data-x") == EVIL and "skip" not in node.attrib and "off" not in node.attrib
    assert node.text == EVIL and node.find("title").text == EVIL
    assert "<script>" not in markup
    assert (svg.num(3.0), svg.num(2.5), svg.num(-0.04)) == ("3", "2.5", "0")


def test_burndown_chart():
    points = [svg.Point(f"03-{d:02d}", v) for d, v in zip(range(1, 8), [100, 96, 90, None, 60, 10, -20])]
    root = parse(svg.burndown_chart(points, title=EVIL, desc="Budget burns down", id_prefix="bd"))
    assert root.find("s:title", NS).text == EVIL
    assert len(root.findall(".//s:polyline", NS)) == 2  # the gap (None) breaks the line
    assert len(root.findall(".//s:circle", NS)) == 6
    labels = texts(root)
    assert "Budget remaining (%)" in labels and "Day (UTC)" in labels and "0 %" in labels
    assert any(t.startswith("-") for t in labels)  # the axis extends below zero when the budget is overspent
    dashed = [line for line in root.iter("{http://www.w3.org/2000/svg}line") if line.get("stroke-dasharray")]
    assert dashed, "the exhausted-budget (0 %) line is drawn dashed"


def test_burn_bars_on_a_log_scale_with_thresholds():
    bars = [svg.Bar("5m", 20.0), svg.Bar("1h", 3.5), svg.Bar("30d", 0.0), svg.Bar("7d", None)]
    root = parse(svg.burn_bars(bars, title="Burn", desc="Burn by window", id_prefix="bb"))
    labels = texts(root)
    for expected in ("5m", "1h", "30d", "7d", "20.00×", "3.50×", "0.00×", "no data", "0.1×", "1×", "10×", "100×",
                     "14.4×", "6×"):
        assert expected in labels, expected
    bar_titles = [t.text for t in root.findall(".//s:rect/s:title", NS)]
    assert len(bar_titles) == 3 and "5m: burn rate 20×" in bar_titles
    widths = {t.text.split(":")[0]: float(r.get("width")) for r in root.iter("{http://www.w3.org/2000/svg}rect")
              for t in r.findall("s:title", NS)}
    assert widths["5m"] > widths["1h"] > widths["30d"]


def test_column_chart_and_empty_states():
    root = parse(svg.column_chart([svg.Bar("03-01", 0.5), svg.Bar("03-02", 12.0), svg.Bar("03-03", None)],
                                  title="Daily", desc="d", id_prefix="cc", y_label="Burn rate (×)"))
    assert len(root.findall(".//s:rect/s:title", NS)) == 2 and "Burn rate (×)" in texts(root)
    empty = parse(svg.burndown_chart([svg.Point("03-01", None)], title="t", desc="d", id_prefix="e"))
    assert "No SLI samples" in "".join(texts(empty))
    assert "No services" in "".join(texts(parse(svg.dependency_graph([], []))))


def _graph():
    names = ["web", "gateway", "payments", "postgres", "search", EVIL]
    nodes = [{"id": i, "name": n, "tier": i % 4, "environment": "production", "internet_facing": i == 0,
              "open_incidents": 2 if n == "payments" else 0, "open_findings": 1 if n == "web" else 0, "depth": d}
             for i, (n, d) in enumerate(zip(names, [0, 1, 2, 3, 2, 3]))]
    edges = [{"source": a, "target": b} for a, b in [(0, 1), (1, 2), (2, 3), (1, 4), (4, 5), (1, 3)]]
    return nodes, edges


def test_dependency_graph_drawing():
    nodes, edges = _graph()
    root = parse(svg.dependency_graph(nodes, edges, href=lambda i: f"/services/{i}", highlight={(0, 1)}))
    groups = root.findall(".//s:a/s:g[@class='node']", NS)
    assert len(groups) == 6 and {a.get("href") for a in root.findall(".//s:a", NS)} == {f"/services/{i}" for i in range(6)}
    assert len(root.findall(".//s:path[@class='edge']", NS)) == 5
    hot = root.findall(".//s:path[@class='edge hot']", NS)
    assert len(hot) == 1 and hot[0].find("s:title", NS).text == "web depends on gateway"
    assert len(root.findall(".//s:marker", NS)) == 2
    assert len(root.findall(".//s:g[@class='globe']", NS)) == 1
    assert root.find(".//s:g[@class='badge-incidents']/s:title", NS).text == "2 open incidents"
    assert root.find(".//s:g[@class='badge-findings']/s:title", NS).text == "1 open finding"
    assert any(EVIL[:20] in t for t in texts(root))  # the name shows, escaped, truncated
    desc = root.find("s:desc", NS).text
    assert "6 services in 4 layers" in desc and "gateway → payments" in desc
    legend = "".join(texts(root.find(".//s:g[@class='legend']", NS)))
    assert "tier 0" in legend and "open incidents" in legend and "internet-facing" in legend


def test_layout_flows_left_to_right_without_overlaps():
    nodes, edges = _graph()
    lay = svg.layout(nodes, edges)
    for (a, b), points in lay.routes.items():
        xs = [x for x, _ in points]
        assert xs == sorted(xs), "every edge runs left to right"
        depth_gap = nodes[b]["depth"] - nodes[a]["depth"]
        assert len(points) == 2 + 2 * (depth_gap - 1), "a long edge gets a lane in each column it crosses"
    boxes = list(lay.nodes.values())
    for i, (x1, y1) in enumerate(boxes):
        for x2, y2 in boxes[i + 1:]:
            assert abs(x1 - x2) >= svg.NODE_W or abs(y1 - y2) >= svg.NODE_H
    # the lane of gateway → postgres (depth 1 → 3) does not run through the box in column 2
    lane_y = lay.routes[(1, 3)][1][1]
    for n in nodes:
        if n["depth"] == 2:
            top = lay.nodes[n["id"]][1]
            assert not top <= lane_y <= top + svg.NODE_H


@pytest.mark.parametrize("value,colour", [(0, svg.OK), (0.99, svg.OK), (1, svg.WARN), (14.39, svg.WARN), (14.4, svg.BAD)])
def test_burn_colours(value, colour):
    assert svg.burn_colour(value) == colour
