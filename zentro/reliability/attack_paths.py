"""Attack-path simulation: from entry points (services with open vulnerability findings) along
dependency edges (traffic flows service → depends_on, so an attacker holding a service can reach what
it calls) to production targets, ranked by a score that is returned with its factors.

    score = severity weight × exposure × target criticality × environment factor × decay^hops

* severity weight: of the worst open finding on the entry service
  (critical 10, high 7, medium 4, low 1, info 0.5);
* exposure: 2.0 when the entry service is internet-facing, else 1.0 (an internal foothold still
  counts: lateral movement and insiders);
* target criticality by tier: tier 0 → 4, 1 → 3, 2 → 2, 3 → 1;
* environment factor of the target: production 1, staging 0.5, development 0.25;
* decay 0.7 per hop: every extra service to pivot through makes the path less likely.

A vulnerable target is a path of 0 hops (it is its own entry point). Paths are simple (no service
twice) and at most ``max_depth`` hops; ties rank the shorter path first, then by names.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select

from zentro.extensions import db
from zentro.ingest.models import Finding
from zentro.reliability import service as services

SEVERITY_WEIGHT = {"critical": 10.0, "high": 7.0, "medium": 4.0, "low": 1.0, "info": 0.5}
SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
EXPOSURE = {True: 2.0, False: 1.0}
TIER_CRITICALITY = {0: 4.0, 1: 3.0, 2: 2.0, 3: 1.0}
ENVIRONMENT_FACTOR = {"production": 1.0, "staging": 0.5, "development": 0.25}
HOP_DECAY = 0.7
MAX_PATHS = 50  # returned
MAX_EXPLORED = 20_000  # paths enumerated before the search stops (truncated: true)
FORMULA = ("score = severity_weight(worst open finding on the entry) × exposure(entry) × criticality(target tier) "
           f"× environment_factor(target) × {HOP_DECAY}^hops")


@dataclass(frozen=True)
class Node:
    id: int
    name: str
    tier: int
    environment: str
    internet_facing: bool

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "tier": self.tier, "environment": self.environment,
                "internet_facing": self.internet_facing}


@dataclass(frozen=True)
class Vuln:
    id: int
    title: str
    severity: str
    cve: str = ""


def weights() -> dict:
    return {"severity": SEVERITY_WEIGHT, "exposure": {"internet_facing": EXPOSURE[True], "internal": EXPOSURE[False]},
            "tier_criticality": {str(k): v for k, v in TIER_CRITICALITY.items()},
            "environment": ENVIRONMENT_FACTOR, "hop_decay": HOP_DECAY}


def _worst(findings: list[Vuln]) -> Vuln:
    return min(findings, key=lambda f: (SEVERITY_ORDER.index(f.severity) if f.severity in SEVERITY_ORDER else 99, f.id))


def rank_paths(nodes: dict[int, Node], edge_list: list[tuple[int, int]], findings: dict[int, list[Vuln]],
               target_ids: list[int], max_depth: int) -> dict:
    """Pure: enumerate and score every simple path from an entry point to a target (module docstring)."""
    adjacency: dict[int, list[int]] = defaultdict(list)
    for a, b in edge_list:
        if a in nodes and b in nodes:
            adjacency[a].append(b)
    for a in adjacency:
        adjacency[a].sort(key=lambda n: nodes[n].name)
    targets = set(target_ids)
    entries = sorted((sid for sid, fs in findings.items() if fs and sid in nodes), key=lambda s: nodes[s].name)
    paths, explored, truncated = [], 0, False

    def visit(path: list[int]) -> None:
        nonlocal explored, truncated
        if explored >= MAX_EXPLORED:
            truncated = True
            return
        here = path[-1]
        if here in targets:
            explored += 1
            paths.append(_score(nodes, findings, list(path)))
        if len(path) - 1 >= max_depth:
            return
        for nxt in adjacency.get(here, ()):
            if nxt not in path:
                path.append(nxt)
                visit(path)
                path.pop()

    for entry in entries:
        visit([entry])
    paths.sort(key=lambda p: (-p["score"], p["hops"], [n["name"] for n in p["nodes"]]))
    truncated = truncated or len(paths) > MAX_PATHS
    ranked = [{"rank": i, **p} for i, p in enumerate(paths[:MAX_PATHS], 1)]
    entry_points = []
    for sid in entries:
        worst = _worst(findings[sid])
        entry_points.append({**nodes[sid].as_dict(), "open_findings": len(findings[sid]),
                             "worst_severity": worst.severity, "severity_weight": SEVERITY_WEIGHT.get(worst.severity, 0.0),
                             "exposure_multiplier": EXPOSURE[nodes[sid].internet_facing]})
    target_list = [{**nodes[t].as_dict(), "criticality": TIER_CRITICALITY.get(nodes[t].tier, 1.0),
                    "environment_factor": ENVIRONMENT_FACTOR.get(nodes[t].environment, 0.25)}
                   for t in sorted(targets, key=lambda t: (nodes[t].tier, nodes[t].name)) if t in nodes]
    return {"entry_points": entry_points, "targets": target_list, "paths": ranked, "truncated": truncated,
            "paths_found": len(paths)}


def _score(nodes: dict[int, Node], findings: dict[int, list[Vuln]], path: list[int]) -> dict:
    entry, target = nodes[path[0]], nodes[path[-1]]
    worst = _worst(findings[entry.id])
    hops = len(path) - 1
    severity = SEVERITY_WEIGHT.get(worst.severity, 0.0)
    exposure = EXPOSURE[entry.internet_facing]
    criticality = TIER_CRITICALITY.get(target.tier, 1.0)
    env = ENVIRONMENT_FACTOR.get(target.environment, 0.25)
    decay = round(HOP_DECAY ** hops, 6)
    score = round(severity * exposure * criticality * env * decay, 4)
    finding_label = f"{worst.severity} finding " + (f"{worst.cve} “{worst.title}”" if worst.cve else f"“{worst.title}”")
    how = "is itself the target" if hops == 0 else f"reaches {target.name} in {hops} hop{'s' if hops != 1 else ''}"
    explanation = (f"{finding_label} on {'internet-facing' if entry.internet_facing else 'internal'} {entry.name} "
                   f"{how}; tier-{target.tier} {target.environment} target. "
                   f"{severity:g} × {exposure:g} × {criticality:g} × {env:g} × {HOP_DECAY}^{hops} = {score:g}")
    return {
        "score": score, "hops": hops,
        "nodes": [nodes[i].as_dict() for i in path],
        "entry": {**entry.as_dict(), "open_findings": len(findings[entry.id]),
                  "worst_finding": {"id": worst.id, "title": worst.title, "severity": worst.severity, "cve": worst.cve}},
        "target": target.as_dict(),
        "factors": {"severity_weight": severity, "exposure_multiplier": exposure, "target_criticality": criticality,
                    "environment_factor": env, "hop_decay": HOP_DECAY, "decay": decay, "hops": hops},
        "explanation": explanation,
    }


def simulate(org_id: int, target_service_id: int | None = None, max_depth: int = 4) -> dict:
    """Load the org's services, edges and open findings and rank the paths. A target of another org
    is 404; without a target, every tier-0/1 production service is one."""
    if target_service_id is not None:
        services.get_service(org_id, target_service_id)
    svc_rows = services.all_services(org_id)
    nodes = {s.id: Node(s.id, s.name, s.tier, s.environment, s.internet_facing) for s in svc_rows}
    if target_service_id is not None:
        target_ids = [target_service_id]
    else:
        target_ids = [s.id for s in svc_rows if s.environment == "production" and s.tier <= 1]
    findings: dict[int, list[Vuln]] = defaultdict(list)
    for f in db.session.execute(
            select(Finding.id, Finding.title, Finding.severity, Finding.cve, Finding.service_id)
            .where(Finding.org_id == org_id, Finding.status == "open", Finding.service_id.is_not(None))
            .order_by(Finding.id)):
        findings[f.service_id].append(Vuln(f.id, f.title, f.severity, f.cve or ""))
    ranked = rank_paths(nodes, services.edges(org_id), dict(findings), target_ids, max_depth)
    return {"target_service_id": target_service_id, "max_depth": max_depth, "formula": FORMULA,
            "weights": weights(), **ranked}
