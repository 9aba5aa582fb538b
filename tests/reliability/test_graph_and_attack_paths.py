"""The dependency graph and attack-path ranking on a constructed topology.

    web (internet, tier 1) ─┐
                            ├→ gateway (tier 0) → payments (tier 0) → postgres (tier 0)
    partner (internet, t2) ─┘        └→ search (tier 2) → index (tier 2)
    batch (internal, tier 3, staging) → postgres
"""
from __future__ import annotations

import pytest

from zentro.extensions import db
from zentro.incidents import service as incidents
from zentro.ingest.models import Finding
from zentro.reliability import attack_paths
from zentro.reliability.attack_paths import Node, Vuln, rank_paths

from .helpers import TEST_ACTOR, add_edge, add_service

GRAPH = "/api/services/dependency-graph"
SIM = "/api/attack-paths/simulate"


@pytest.fixture
def topo(app, owner):
    org = owner.org_id
    ids = {
        "web": add_service(app, org, "web", tier=1, internet_facing=True),
        "partner": add_service(app, org, "partner", tier=2, internet_facing=True),
        "gateway": add_service(app, org, "gateway", tier=0),
        "payments": add_service(app, org, "payments", tier=0),
        "postgres": add_service(app, org, "postgres", tier=0),
        "search": add_service(app, org, "search", tier=2),
        "index": add_service(app, org, "index", tier=2),
        "batch": add_service(app, org, "batch", tier=3, environment="staging"),
    }
    for a, b in [("web", "gateway"), ("partner", "gateway"), ("gateway", "payments"), ("payments", "postgres"),
                 ("gateway", "search"), ("search", "index"), ("batch", "postgres")]:
        add_edge(app, org, ids[a], ids[b])
    return ids


def add_finding(app, org_id, service_id, severity, key, status="open"):
    with app.app_context():
        db.session.add(Finding(org_id=org_id, source="generic", finding_key=key, title=f"{severity} {key}",
                               severity=severity, status=status, service_id=service_id, cve=f"CVE-{key}"))
        db.session.commit()


def test_dependency_graph(app, api, owner, topo):
    with app.app_context():
        incidents.create_incident(owner.org_id, title="payments down", severity="high", actor=TEST_ACTOR,
                                  service_id=topo["payments"])
        closed = incidents.create_incident(owner.org_id, title="old", severity="high", actor=TEST_ACTOR,
                                           service_id=topo["payments"])
        incidents.transition(closed, "resolved", TEST_ACTOR)
        db.session.commit()
    body = api.get(GRAPH).get_json()
    nodes = {n["name"]: n for n in body["nodes"]}
    assert len(nodes) == 8 and len(body["edges"]) == 7
    assert {"source": topo["web"], "target": topo["gateway"]} in body["edges"]
    assert nodes["payments"]["open_incidents"] == 1 and nodes["gateway"]["open_incidents"] == 0
    assert nodes["web"]["internet_facing"] and nodes["batch"]["environment"] == "staging"
    assert {n: nodes[n]["depth"] for n in ("web", "batch", "gateway", "payments", "search", "postgres", "index")} == \
        {"web": 0, "batch": 0, "gateway": 1, "payments": 2, "search": 2, "postgres": 3, "index": 3}


def test_attack_paths_rank_by_the_documented_score(app, api, owner, topo):
    add_finding(app, owner.org_id, topo["partner"], "critical", "1")
    add_finding(app, owner.org_id, topo["web"], "medium", "2")
    add_finding(app, owner.org_id, topo["web"], "low", "3")
    add_finding(app, owner.org_id, topo["batch"], "high", "4")
    add_finding(app, owner.org_id, topo["search"], "critical", "5", status="fixed")  # fixed: not an entry point
    body = api.get(SIM).get_json()
    assert body["max_depth"] == 4 and "0.7^hops" in body["formula"]
    assert {e["name"] for e in body["entry_points"]} == {"partner", "web", "batch"}
    assert {t["name"] for t in body["targets"]} == {"web", "gateway", "payments", "postgres"}  # tier 0/1 production
    top = body["paths"][0]
    assert [n["name"] for n in top["nodes"]] == ["partner", "gateway"]
    # critical 10 × internet 2 × tier-0 4 × production 1 × 0.7^1
    assert top["score"] == pytest.approx(56.0) and top["hops"] == 1
    assert top["factors"] == {"severity_weight": 10.0, "exposure_multiplier": 2.0, "target_criticality": 4.0,
                              "environment_factor": 1.0, "hop_decay": 0.7, "decay": 0.7, "hops": 1}
    assert "CVE-1" in top["explanation"] and "= 56" in top["explanation"]
    ranked = [([n["name"] for n in p["nodes"]], p["score"]) for p in body["paths"]]
    assert (["partner", "gateway", "payments", "postgres"], pytest.approx(27.44)) in ranked
    # web's worst open finding is medium (4): web itself is a tier-1 target at 0 hops: 4 × 2 × 3 × 1 = 24
    assert (["web"], pytest.approx(24.0)) in ranked
    # an internal high finding on batch (staging, no exposure bonus) reaches postgres: 7 × 1 × 4 × 1 × 0.7 = 19.6
    assert (["batch", "postgres"], pytest.approx(19.6)) in ranked
    scores = [p["score"] for p in body["paths"]]
    assert scores == sorted(scores, reverse=True) and [p["rank"] for p in body["paths"]] == list(range(1, len(scores) + 1))
    assert not any("search" in names for names, _ in ranked)  # search is not a target and its finding is fixed


def test_max_depth_and_target(app, api, owner, topo):
    add_finding(app, owner.org_id, topo["partner"], "critical", "1")
    one_hop = api.get(f"{SIM}?maxDepth=1").get_json()
    assert {p["hops"] for p in one_hop["paths"]} == {1}
    only_db = api.get(f"{SIM}?targetServiceId={topo['postgres']}&maxDepth=8").get_json()
    assert only_db["target_service_id"] == topo["postgres"]
    assert [[n["name"] for n in p["nodes"]] for p in only_db["paths"]] == [["partner", "gateway", "payments", "postgres"]]
    too_short = api.get(f"{SIM}?targetServiceId={topo['postgres']}&maxDepth=2").get_json()
    assert too_short["paths"] == [] and too_short["entry_points"]
    # a staging target may be named explicitly; its environment factor halves the score
    staging = api.get(f"{SIM}?targetServiceId={topo['batch']}").get_json()
    assert staging["targets"][0]["environment_factor"] == 0.5 and staging["paths"] == []


@pytest.mark.parametrize("query", ["maxDepth=0", "maxDepth=9", "maxDepth=two", "targetServiceId=abc",
                                   "targetServiceId=0"])
def test_bad_simulation_queries_are_400(api, topo, query):
    resp = api.get(f"{SIM}?{query}")
    assert resp.status_code == 400 and resp.get_json()["error_code"] == "VALIDATION_ERROR"


def test_other_orgs_target_is_404_and_graphs_do_not_mix(app, api, other_api, owner, topo):
    assert other_api.get(f"{SIM}?targetServiceId={topo['gateway']}").status_code == 404
    assert other_api.get(GRAPH).get_json() == {"nodes": [], "edges": [],
                                               "direction": "source depends on target: traffic flows source → target"}
    assert other_api.get(SIM).get_json()["paths"] == []


def test_rank_paths_is_pure_and_bounded():
    nodes = {i: Node(i, f"s{i}", 0, "production", i == 1) for i in range(1, 6)}
    edges = [(1, 2), (2, 3), (3, 4), (4, 5), (1, 3), (2, 4)]
    out = rank_paths(nodes, edges, {1: [Vuln(1, "rce", "high")]}, [5], max_depth=8)
    paths = [[n["id"] for n in p["nodes"]] for p in out["paths"]]
    # fewer hops score higher; equal scores rank by the names along the path
    assert paths == [[1, 2, 4, 5], [1, 3, 4, 5], [1, 2, 3, 4, 5]]
    assert [p["score"] for p in out["paths"]] == [pytest.approx(7 * 2 * 4 * 0.343), pytest.approx(7 * 2 * 4 * 0.343),
                                                  pytest.approx(7 * 2 * 4 * 0.2401)]
    assert rank_paths(nodes, edges, {1: [Vuln(1, "rce", "high")]}, [5], max_depth=2)["paths"] == []
    # a cycle in stored data cannot trap the search: paths are simple
    looped = rank_paths(nodes, [(1, 2), (2, 1), (2, 3)], {1: [Vuln(1, "x", "low")]}, [3], max_depth=8)
    assert [[n["id"] for n in p["nodes"]] for p in looped["paths"]] == [[1, 2, 3]]


def test_simulate_counts_only_open_findings_with_a_service(app, ctx, owner, topo):
    add_finding(app, owner.org_id, None, "critical", "orphan")
    result = attack_paths.simulate(owner.org_id)
    assert result["entry_points"] == [] and result["paths"] == []
