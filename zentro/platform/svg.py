"""SVG building blocks shared by every package's server-side charts: an element builder that escapes every
text node and attribute, text labels, and the accessible ``<svg role="img">`` document with its ``<title>``
and ``<desc>``; plus the house palette. No JavaScript anywhere."""
from __future__ import annotations

import html
from typing import Iterable

from markupsafe import Markup

SVG_NS = "http://www.w3.org/2000/svg"
INK, MUTED, LINE, GRID = "#1b1f24", "#5b6573", "#cfd5dd", "#eef0f4"
OK, WARN, BAD, BRAND = "#15803d", "#b45309", "#b91c1c", "#4338ca"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def num(x: float) -> str:
    """Compact coordinates: at most one decimal, no trailing zeros."""
    text = f"{x:.1f}"
    text = text[:-2] if text.endswith(".0") else text
    return "0" if text == "-0" else text


def el(tag: str, attrs: dict | None = None, *children: str, text: str | None = None) -> str:
    """One element. ``attrs`` values are escaped (None leaves the attribute out); ``text`` is escaped;
    ``children`` are already-built markup."""
    parts = [f"<{tag}"]
    for key, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        parts.append(f' {key}="{esc(num(value) if isinstance(value, float) else value)}"')
    body = (esc(text) if text is not None else "") + "".join(children)
    if not body:
        return "".join(parts) + "/>"
    return "".join(parts) + ">" + body + f"</{tag}>"


def text(x: float, y: float, content: str, **attrs) -> str:
    base = {"x": float(x), "y": float(y), "fill": INK, "font-size": 12}
    base.update({k.replace("_", "-"): v for k, v in attrs.items()})
    return el("text", base, text=content)


def document(width: int, height: int, title: str, desc: str, body: Iterable[str], *, id_prefix: str,
             css_class: str = "chart") -> Markup:
    tid, did = f"{id_prefix}-title", f"{id_prefix}-desc"
    return Markup(el("svg", {"xmlns": SVG_NS, "viewBox": f"0 0 {width} {height}", "width": width, "height": height,
                             "role": "img", "aria-labelledby": f"{tid} {did}", "class": css_class,
                             "font-family": FONT, "id": id_prefix},
                     el("title", {"id": tid}, text=title), el("desc", {"id": did}, text=desc), *body))
