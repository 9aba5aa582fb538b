"""Regulatory mapping change digest (slug ``mapping-digest``): the shipped catalog's mapping (which controls each
framework has, and the crosswalk edges between them) against the org's last snapshot of it.

The mapping is ``mapping_of(catalog)``: per framework key the sorted control ids, and the crosswalk edges, each
undirected pair written once (the two tags in sorted order) with its strength. ``mapping_hash`` is the SHA-256 of
its canonical JSON; titles, weights and freshness SLAs are not part of it (they change scores, not the mapping).

State: a delivery that finds no baseline, or a changed hash, saves the mapping as the org's new snapshot (the
declaration in ``zentro.compliance.digests.mapping_digest``): control ids per framework as one space-joined string
and the edges grouped by strength and first tag, enough to list what was added and removed next time. An unchanged
hash with a baseline is an empty digest: nothing is sent and nothing is saved.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from zentro.compliance import catalog as catalog_module
from zentro.compliance import digests
from zentro.compliance.report_registry import ReportContext, ReportQuery, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns

SLUG = "mapping-digest"
STRENGTHS = ("full", "partial")
BASELINE = "baseline"
UNCHANGED = "unchanged"
CHANGED = "changed"
MESSAGES = {
    BASELINE: "baseline recorded: no earlier snapshot to compare with; this delivery records the current catalog "
              "and crosswalk as the org's baseline",
    UNCHANGED: "no change since the last snapshot",
    CHANGED: "the catalog or crosswalk changed since the last snapshot",
}


def mapping_of(catalog: catalog_module.Catalog) -> tuple[dict[str, list[str]], dict[tuple[str, str], str]]:
    """(framework key -> sorted control ids, (tag, tag) sorted pair -> strength)."""
    controls = {key: sorted(c.id for c in fw.controls) for key, fw in catalog.frameworks.items()}
    edges = {}
    for e in catalog.crosswalk.edges:
        a, b = sorted((e.from_, e.to))
        edges[(a, b)] = e.strength
    return controls, edges


def mapping_hash(controls: dict[str, list[str]], edges: dict[tuple[str, str], str]) -> str:
    doc = {"controls": {k: sorted(v) for k, v in sorted(controls.items())},
           "edges": sorted([a, b, s] for (a, b), s in edges.items())}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def pack(controls: dict[str, list[str]], edges: dict[tuple[str, str], str], digest_hash: str,
         catalog_version: int) -> dict:
    """The compact snapshot form."""
    grouped: dict[str, dict[str, list[str]]] = {s: {} for s in STRENGTHS}
    for (a, b), s in sorted(edges.items()):
        grouped.setdefault(s, {}).setdefault(a, []).append(b)
    return {"hash": digest_hash, "catalog_version": catalog_version,
            "controls": {k: " ".join(v) for k, v in controls.items()}, "edges": grouped}


def unpack(data: dict) -> tuple[dict[str, list[str]], dict[tuple[str, str], str]]:
    controls = {k: str(v).split() for k, v in (data.get("controls") or {}).items()}
    edges = {}
    for strength, by_tag in (data.get("edges") or {}).items():
        for a, targets in (by_tag or {}).items():
            for b in targets or ():
                edges[tuple(sorted((a, b)))] = strength
    return controls, edges  # type: ignore[return-value]


def current_snapshot() -> dict:
    """The snapshot a delivery saves: the mapping of the catalog loaded now, packed."""
    catalog = catalog_module.load_catalog()
    controls, edges = mapping_of(catalog)
    return pack(controls, edges, mapping_hash(controls, edges), catalog.catalog_version)


@report(SLUG, title="Regulatory mapping change digest", category="Digests", query=ReportQuery,
        summary="Regulatory mapping change digest: the catalog's controls per framework and the crosswalk edges "
                "compared with the org's last snapshot — controls and edges added or removed, edge strengths "
                "changed; the first delivery records the baseline (JSON or CSV).",
        inputs="the shipped framework catalogs and crosswalk (catalog files), the org's last mapping-digest snapshot",
        window="the catalog loaded now against the snapshot saved by the org's last delivery that found a change "
               "(or recorded the baseline)",
        definitions={
            "status": "baseline (no snapshot yet: a delivery records one), unchanged (same mapping_hash as the "
                      "snapshot: the digest is empty and nothing is sent), changed.",
            "message": "status in words; the first delivery's message starts with 'baseline recorded'.",
            "mapping_hash": "SHA-256 over the canonical JSON of every framework's sorted control ids and the sorted "
                            "crosswalk edges (each undirected pair once, with its strength). Titles, weights and "
                            "freshness SLAs are not part of the mapping.",
            "baseline_hash": "The mapping_hash of the org's last snapshot; empty without one.",
            "baseline_at": "When that snapshot was saved; empty without one.",
            "catalog_version": "The catalog_version of the loaded catalog (crosswalk.json).",
            "baseline_catalog_version": "The catalog_version recorded with the snapshot.",
            "catalog_content_hash": "SHA-256 of every catalog file's canonical JSON (changes with any edit, titles "
                                    "included).",
            "frameworks": "Frameworks in the catalog now.",
            "controls": "Controls in the catalog now, over every framework.",
            "edges": "Crosswalk edges now.",
            "frameworks_added": "Framework keys in the catalog now but not in the snapshot.",
            "frameworks_removed": "Framework keys in the snapshot but not in the catalog now.",
            "controls_added": "Control tags in the catalog now but not in the snapshot (a framework added counts all "
                              "its controls).",
            "controls_removed": "Control tags in the snapshot but not in the catalog now (a framework removed counts "
                                "all its controls).",
            "edges_added": "Crosswalk pairs in the catalog now but not in the snapshot.",
            "edges_removed": "Crosswalk pairs in the snapshot but not in the catalog now.",
            "edges_strength_changed": "Pairs in both whose strength (full / partial) differs.",
            "frameworks section": "Per framework (now or in the snapshot): controls now and in the snapshot, added, "
                                  "removed, and crosswalk edges touching it added or removed.",
            "controls section": "Each control added or removed (title: the catalog's now; empty for removed ones).",
            "edges section": "Each crosswalk pair added, removed or with a changed strength.",
            "chart": "Per framework with a change: controls added and removed.",
        })
def build(ctx: ReportContext) -> Report:
    catalog = catalog_module.load_catalog()
    controls, edges = mapping_of(catalog)
    now_hash = mapping_hash(controls, edges)
    snap = digests.last_snapshot(ctx.org_id, SLUG)
    data: dict[str, Any] | None = snap.data if snap is not None and isinstance(snap.data, dict) else None
    if data is None:
        status = BASELINE
        old_controls, old_edges = controls, edges
    else:
        old_controls, old_edges = unpack(data)
        status = UNCHANGED if data.get("hash") == now_hash else CHANGED

    fw_keys = list(controls) + [k for k in old_controls if k not in controls]
    fw_rows, control_rows = [], []
    for key in fw_keys:
        now_ids, old_ids = set(controls.get(key, ())), set(old_controls.get(key, ()))
        added, removed = sorted(now_ids - old_ids), sorted(old_ids - now_ids)
        for cid in added:
            tag = f"{key}:{cid}"
            control_rows.append({"change": "added", "framework": key, "control": tag,
                                 "title": catalog.control(tag).title if catalog.has(tag) else ""})
        for cid in removed:
            control_rows.append({"change": "removed", "framework": key, "control": f"{key}:{cid}", "title": ""})
        fw_rows.append({"framework": key, "status": "added" if key not in old_controls else
                        "removed" if key not in controls else "present",
                        "controls": len(now_ids), "prior_controls": len(old_ids),
                        "controls_added": len(added), "controls_removed": len(removed),
                        "edges_added": 0, "edges_removed": 0})
    edge_rows = []
    for pair in sorted(set(edges) | set(old_edges)):
        now_s, old_s = edges.get(pair), old_edges.get(pair)
        if now_s == old_s:
            continue
        change = "added" if old_s is None else "removed" if now_s is None else "strength_changed"
        edge_rows.append({"change": change, "from": pair[0], "to": pair[1], "strength": now_s,
                          "prior_strength": old_s})
    by_fw = {r["framework"]: r for r in fw_rows}
    for r in edge_rows:
        if r["change"] in ("added", "removed"):
            for tag in (r["from"], r["to"]):
                row = by_fw.get(tag.split(":", 1)[0])
                if row is not None:
                    row[f"edges_{r['change']}"] += 1

    def count(rows: list[dict], change: str) -> int:
        return sum(1 for r in rows if r["change"] == change)

    snap_at = snap.created_at if snap is not None else None
    summary = {
        "status": status, "message": MESSAGES[status], "mapping_hash": now_hash,
        "baseline_hash": data.get("hash") if data else None, "baseline_at": snap_at,
        "catalog_version": catalog.catalog_version,
        "baseline_catalog_version": data.get("catalog_version") if data else None,
        "catalog_content_hash": catalog.content_hash(),
        "frameworks": len(controls), "controls": sum(len(v) for v in controls.values()), "edges": len(edges),
        "frameworks_added": sum(1 for r in fw_rows if r["status"] == "added"),
        "frameworks_removed": sum(1 for r in fw_rows if r["status"] == "removed"),
        "controls_added": count(control_rows, "added"), "controls_removed": count(control_rows, "removed"),
        "edges_added": count(edge_rows, "added"), "edges_removed": count(edge_rows, "removed"),
        "edges_strength_changed": count(edge_rows, "strength_changed"),
    }
    changed_fw = [r for r in fw_rows if r["controls_added"] or r["controls_removed"]]
    chart = Chart("controls", "Controls added and removed per framework", "bar",
                  [r["framework"] for r in changed_fw],
                  [Series("added", [float(r["controls_added"]) for r in changed_fw]),
                   Series("removed", [float(r["controls_removed"]) for r in changed_fw])], unit="controls",
                  description="Per framework with a change since the last snapshot: controls added and removed.")
    return Report(
        SLUG, "Regulatory mapping change digest", {"as_of": ctx.now, "baseline_at": snap_at}, summary,
        [Section("frameworks", "Frameworks", columns("framework", "status", "controls",
                                                     ("prior_controls", "Controls (snapshot)"),
                                                     ("controls_added", "Controls added"),
                                                     ("controls_removed", "Controls removed"),
                                                     ("edges_added", "Edges added"),
                                                     ("edges_removed", "Edges removed")), fw_rows),
         Section("controls", "Controls added or removed", columns("change", "framework", "control", "title"),
                 control_rows),
         Section("edges", "Crosswalk edges added, removed or changed",
                 columns("change", "from", "to", "strength", ("prior_strength", "Prior strength")), edge_rows)],
        ctx.now, charts=[chart] if changed_fw else [])
