"""Reliability API: services (CRUD, dependency edges, change events, SLI samples) under /api/v1, and
the catalog's read endpoints: a service's SLO, the error-budget overview, the dependency graph and
attack-path simulation. Session or API key (scope ``services:read|write``)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from zentro.platform.auth import current_principal
from zentro.platform.pagination import PageQuery, paginate
from zentro.platform.routes import api_route
from zentro.reliability import attack_paths, service
from zentro.reliability.models import ChangeEvent, Service
from zentro.reliability.schemas import (AttackPathQuery, AttackPathsOut, BudgetSummaryOut, ChangeIn, ChangeOut,
                                        ChangePage, DependencyIn, DependencyOut, GraphOut, ServiceIn, ServiceOut,
                                        ServicePage, ServicePatch, SliIn, SliRecordedOut, SloOut)

bp = Blueprint("reliability_api", __name__, url_prefix="/api")
TAGS = ("Services & SLOs",)
COMMON = {"resource": "services", "tags": TAGS}
SVC = {"tenant_model": Service}


@api_route(bp, "/v1/services", methods=("GET",), query=PageQuery, response=ServicePage,
           summary="List the org's services, newest first.", **COMMON)
def list_services(query: PageQuery):
    p = current_principal()
    rows, cursor = paginate(service.services_query(p.org.id), Service.id, query)
    deps = service.depends_on_ids(p.org.id, [s.id for s in rows])
    return jsonify(data=[service.service_json(s, deps.get(s.id, [])) for s in rows], next_cursor=cursor)


@api_route(bp, "/v1/services", methods=("POST",), body=ServiceIn, response=ServiceOut, status=201,
           summary="Create a service (a name already used in the org is 409).", **COMMON)
def create_service(body: ServiceIn):
    p = current_principal()
    svc = service.create_service(p.org.id, body, p.actor)
    return jsonify(service.service_json(svc, [])), 201


@api_route(bp, "/v1/services/<int:service_id>", methods=("GET",), response=ServiceOut,
           summary="One service.", **COMMON, **SVC)
def get_service(service_id: int):
    p = current_principal()
    return jsonify(service.service_json(service.get_service(p.org.id, service_id)))


@api_route(bp, "/v1/services/<int:service_id>", methods=("PATCH",), body=ServicePatch, response=ServiceOut,
           summary="Change the fields given; the others stay.", **COMMON, **SVC)
def patch_service(service_id: int, body: ServicePatch):
    p = current_principal()
    svc = service.update_service(p.org.id, service_id, body.model_dump(include=body.model_fields_set), p.actor)
    return jsonify(service.service_json(svc))


@api_route(bp, "/v1/services/<int:service_id>", methods=("DELETE",), response=ServiceOut, min_role="admin",
           summary="Delete a service with its edges, SLI samples and change events (owner/admin); incidents and "
                   "findings keep their rows. Answers the service as it was.", **COMMON, **SVC)
def delete_service(service_id: int):
    p = current_principal()
    return jsonify(service.delete_service(p.org.id, service_id, p.actor))


@api_route(bp, "/v1/services/<int:service_id>/dependencies", methods=("POST",), body=DependencyIn,
           response=DependencyOut, status=201,
           summary="Add an edge service → depends_on (traffic flows that way). Self-edges, duplicates and edges "
                   "that would close a cycle are 409.", **COMMON, **SVC)
def add_dependency(service_id: int, body: DependencyIn):
    p = current_principal()
    edge = service.add_dependency(p.org.id, service_id, body.depends_on_id, p.actor)
    return jsonify(service.dependency_json(edge)), 201


@api_route(bp, "/v1/services/<int:service_id>/dependencies/<int:depends_on_id>", methods=("DELETE",),
           response=DependencyOut, tenant_model={"service_id": Service, "depends_on_id": Service},
           summary="Remove the edge service → depends_on.", **COMMON)
def remove_dependency(service_id: int, depends_on_id: int):
    p = current_principal()
    return jsonify(service.remove_dependency(p.org.id, service_id, depends_on_id, p.actor))


@api_route(bp, "/v1/services/<int:service_id>/changes", methods=("POST",), body=ChangeIn, response=ChangeOut,
           status=201, summary="Record a deploy, config change, flag flip or infra change on the service.",
           **COMMON, **SVC)
def record_change(service_id: int, body: ChangeIn):
    p = current_principal()
    ev = service.record_change(p.org.id, service_id, kind=body.kind, summary=body.summary, ref=body.ref,
                               occurred_at=body.occurred_at, actor=p.actor)
    return jsonify(service.change_json(ev)), 201


@api_route(bp, "/v1/services/<int:service_id>/changes", methods=("GET",), query=PageQuery, response=ChangePage,
           summary="The service's change events, newest recorded first.", **COMMON, **SVC)
def list_changes(service_id: int, query: PageQuery):
    p = current_principal()
    svc = service.get_service(p.org.id, service_id)
    rows, cursor = paginate(service.changes_query(p.org.id, svc.id), ChangeEvent.id, query)
    return jsonify(data=[service.change_json(ev) for ev in rows], next_cursor=cursor)


@api_route(bp, "/v1/services/<int:service_id>/sli", methods=("POST",), body=SliIn, response=SliRecordedOut,
           status=201, summary="Post SLI event counts (one sample or {samples: [...]}); the burn-rate rules are "
                               "evaluated right after storing and open or fold an incident when one fires.",
           **COMMON, **SVC)
def record_sli(service_id: int, body: SliIn):
    p = current_principal()
    result = service.record_sli(p.org.id, service_id, body.sample_list(), p.actor)
    return jsonify(result.as_dict()), 201


@api_route(bp, "/services/<int:service_id>/slo", methods=("GET",), response=SloOut,
           summary="Service SLO profile with its 7d and 30d error-budget windows and burn-rate rules.", **COMMON, **SVC)
def service_slo(service_id: int):
    p = current_principal()
    return jsonify(service.slo_report(p.org.id, service_id))


@api_route(bp, "/overview/error-budget-summary", methods=("GET",), response=BudgetSummaryOut,
           summary="Error-budget overview across services: status per service (critical/warning/ok), counts and "
                   "the average 30-day budget used.", **COMMON)
def error_budget_summary():
    p = current_principal()
    return jsonify(service.budget_summary(p.org.id))


@api_route(bp, "/services/dependency-graph", methods=("GET",), response=GraphOut,
           summary="The service dependency graph: nodes (tier, environment, exposure, open incidents) and directed "
                   "edges.", **COMMON)
def dependency_graph():
    p = current_principal()
    return jsonify(service.dependency_graph(p.org.id))


@api_route(bp, "/attack-paths/simulate", methods=("GET",), query=AttackPathQuery, response=AttackPathsOut,
           summary="Ranked attack paths from services with open findings along dependency edges to production "
                   "targets, each with its score factors.", **COMMON)
def simulate_attack_paths(query: AttackPathQuery):
    p = current_principal()
    return jsonify(attack_paths.simulate(p.org.id, query.targetServiceId, query.maxDepth))
