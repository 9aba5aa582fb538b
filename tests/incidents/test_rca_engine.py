"""The RCA engine over constructed data: what it ranks first, which evidence it cites, that every
evidence id is a row of the incident's org, and that the confidence is the sum of its factors."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from zentro.audit.service import SYSTEM
from zentro.extensions import db
from zentro.incidents import rca
from zentro.incidents.models import Alert, Incident, RcaRun, TimelineEvent
from zentro.incidents.service import add_note, create_incident, transition
from zentro.ingest.models import Finding
from zentro.reliability.models import ChangeEvent, Service, ServiceDependency

T0 = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.timezone.utc)
MODELS = {"change_event": ChangeEvent, "incident": Incident, "alert": Alert, "finding": Finding,
          "timeline_event": TimelineEvent}


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


class Org:
    """Builds one org's services, changes, incidents, alerts and findings."""

    def __init__(self, org_id: int):
        self.org_id = org_id
        self.services: dict[str, Service] = {}

    def service(self, name: str, *, internet_facing: bool = False) -> Service:
        svc = Service(org_id=self.org_id, name=name, internet_facing=internet_facing)
        db.session.add(svc)
        db.session.flush()
        self.services[name] = svc
        return svc

    def depends(self, name: str, on: str) -> None:
        db.session.add(ServiceDependency(org_id=self.org_id, service_id=self.services[name].id,
                                         depends_on_id=self.services[on].id))
        db.session.flush()

    def change(self, service: str, before: dt.timedelta, summary: str, *, kind: str = "deploy", ref: str = "") -> ChangeEvent:
        c = ChangeEvent(org_id=self.org_id, service_id=self.services[service].id, kind=kind, summary=summary, ref=ref,
                        occurred_at=T0 - before)
        db.session.add(c)
        db.session.flush()
        return c

    def incident(self, title: str, service: str | None, *, started_at: dt.datetime = T0, severity: str = "high") -> Incident:
        return create_incident(self.org_id, title=title, severity=severity, actor=SYSTEM,
                               service_id=self.services[service].id if service else None,
                               started_at=started_at, now=started_at)

    def resolved(self, title: str, service: str | None, *, days_before: float, note: str = "") -> Incident:
        at = T0 - dt.timedelta(days=days_before)
        inc = self.incident(title, service, started_at=at)
        transition(inc, "resolved", SYSTEM, note=note, now=at + dt.timedelta(hours=1))
        return inc

    def alert(self, incident: Incident | None, title: str, *, service_name: str = "", labels: dict | None = None,
              at: dt.datetime = T0, severity: str = "high") -> Alert:
        a = Alert(org_id=self.org_id, incident_id=incident.id if incident else None, source="zentro",
                  dedupe_key=f"k-{uuid.uuid4().hex[:8]}", delivery_key=uuid.uuid4().hex, status="firing",
                  severity=severity, title=title, service_name=service_name, labels=labels or {}, starts_at=at,
                  received_at=at)
        db.session.add(a)
        db.session.flush()
        return a

    def finding(self, title: str, service: str | None, *, severity: str = "critical", status: str = "open",
                first_seen: dt.datetime = T0 - dt.timedelta(days=30), incident: Incident | None = None) -> Finding:
        f = Finding(org_id=self.org_id, source="generic", finding_key=f"f-{uuid.uuid4().hex[:8]}", title=title,
                    severity=severity, status=status, asset="host-1", cve="CVE-2026-0001",
                    service_id=self.services[service].id if service else None,
                    incident_id=incident.id if incident else None, first_seen_at=first_seen, last_seen_at=first_seen)
        db.session.add(f)
        db.session.flush()
        return f


@pytest.fixture
def orgs(make_member, ctx):
    a = make_member("alpha", "owner")
    b = make_member("bravo", "owner")
    return Org(a.org_id), Org(b.org_id)


def by_category(hyps: list[dict], category: str) -> list[dict]:
    return [h for h in hyps if h["category"] == category]


def evidence_ids(hyps: list[dict], kind: str) -> set[int]:
    return {e["id"] for h in hyps for e in h["evidence"] if e["type"] == kind}


def assert_sound(org_id: int, hyps: list[dict]) -> None:
    """Ranks 1..n by confidence; confidence = rounded sum of contributions; every evidence id exists in the org."""
    assert [h["rank"] for h in hyps] == list(range(1, len(hyps) + 1))
    assert [h["confidence"] for h in hyps] == sorted((h["confidence"] for h in hyps), reverse=True)
    for h in hyps:
        assert 0 <= h["confidence"] <= 1
        total = sum(f["value"] * f["weight"] for f in h["factors"])
        assert h["confidence"] == pytest.approx(round(min(1.0, total), 2), abs=0.011)
        for f in h["factors"]:
            assert f["contribution"] == pytest.approx(f["value"] * f["weight"], abs=0.001)
        for e in h["evidence"]:
            row = db.session.get(MODELS[e["type"]], e["id"])
            assert row is not None and row.org_id == org_id, e


def test_recent_deploy_on_the_service_outranks_an_older_upstream_deploy(orgs):
    a, _ = orgs
    for name in ("checkout", "payments", "ledger", "search"):
        a.service(name)
    a.depends("checkout", "payments")
    a.depends("payments", "ledger")
    near = a.change("checkout", minutes(20), "checkout v2.4.1", ref="v2.4.1")
    upstream = a.change("payments", dt.timedelta(hours=5), "payments v9")
    a.change("ledger", dt.timedelta(hours=7), "ledger migration (outside the 6 h window)")
    a.change("search", minutes(10), "search deploy (not on the dependency path)")
    a.change("checkout", -minutes(5), "checkout deploy after the start")
    inc = a.incident("Checkout 5xx spike", "checkout")
    db.session.commit()

    hyps, summary = rca.analyze(a.org_id, inc.id)

    changes = by_category(hyps, "change")
    assert [h["evidence"][0]["id"] for h in changes] == [near.id, upstream.id]
    assert hyps[0]["category"] == "change" and hyps[0]["evidence"][0]["id"] == near.id
    assert "checkout v2.4.1" in hyps[0]["title"]
    assert changes[0]["confidence"] > changes[1]["confidence"] + 0.3
    factors = {f["name"]: f for f in changes[0]["factors"]}
    assert factors["proximity"]["value"] == 1.0 and factors["recency"]["value"] == pytest.approx(0.5 ** (20 / 60), abs=0.001)
    assert {f["name"]: f["value"] for f in changes[1]["factors"]}["proximity"] == rca.PROXIMITY[1]
    assert summary["changes_examined"] == 2
    assert [(s["name"], s["depth"]) for s in summary["services"]] == [("checkout", 0), ("payments", 1), ("ledger", 2)]
    assert_sound(a.org_id, hyps)


def test_change_mentioned_by_the_incident_cites_the_mention(orgs):
    a, _ = orgs
    a.service("api")
    plain = a.change("api", minutes(30), "api config", kind="config")
    cited = a.change("api", minutes(30), "api release", ref="rel-7781")
    inc = a.incident("API latency", "api")
    note = add_note(inc, "Suspect rel-7781, the release right before this", SYSTEM)
    db.session.commit()

    hyps, _ = rca.analyze(a.org_id, inc.id)

    top = hyps[0]
    assert top["evidence"][0]["id"] == cited.id
    assert {"type": "timeline_event", "id": note.id} in [{"type": e["type"], "id": e["id"]} for e in top["evidence"]]
    assert {f["name"]: f["value"] for f in top["factors"]}["corroboration"] == 1.0
    other = next(h for h in hyps if h["evidence"][0]["id"] == plain.id)
    assert {f["name"]: f["value"] for f in other["factors"]}["corroboration"] == 0.0
    assert_sound(a.org_id, hyps)


def test_open_critical_finding_on_the_service_appears_with_its_id(orgs):
    a, _ = orgs
    a.service("gateway", internet_facing=True)
    a.service("auth")
    a.service("elsewhere")
    a.depends("gateway", "auth")
    crit = a.finding("OpenSSL RCE", "gateway", severity="critical")
    upstream_high = a.finding("Weak TLS", "auth", severity="high")
    a.finding("Fixed already", "gateway", status="fixed")
    a.finding("Only medium", "gateway", severity="medium")
    a.finding("Not on the path", "elsewhere")
    inc = a.incident("Gateway errors", "gateway")
    db.session.commit()

    hyps, summary = rca.analyze(a.org_id, inc.id)

    vulns = by_category(hyps, "vulnerability")
    assert evidence_ids(vulns, "finding") == {crit.id, upstream_high.id}
    top = vulns[0]
    assert top["evidence"][0]["id"] == crit.id and "OpenSSL RCE" in top["title"]
    factors = {f["name"]: f["value"] for f in top["factors"]}
    assert factors["exposure"] == 1.0 and factors["severity"] == 1.0 and factors["linked"] == 0.0
    assert summary["findings_examined"] == 2
    assert_sound(a.org_id, hyps)


def test_finding_that_opened_the_incident_ranks_high(orgs):
    a, _ = orgs
    a.service("db")
    inc = a.incident("Critical vulnerability on db", "db", severity="critical")
    f = a.finding("PostgreSQL auth bypass", None, incident=inc, first_seen=T0)
    db.session.commit()

    hyps, _ = rca.analyze(a.org_id, inc.id)

    assert hyps[0]["category"] == "vulnerability" and hyps[0]["evidence"][0]["id"] == f.id
    assert {x["name"]: x["value"] for x in hyps[0]["factors"]}["linked"] == 1.0


def test_similar_resolved_incidents_bring_their_recorded_cause(orgs):
    a, _ = orgs
    a.service("checkout")
    a.service("billing")
    from_rca = a.resolved("Checkout 5xx spike after deploy", "checkout", days_before=20)
    db.session.add(RcaRun(org_id=a.org_id, incident_id=from_rca.id, status="succeeded", progress=100,
                          hypotheses=[{"rank": 1, "title": "Deploy on checkout: cache TTL set to 0", "category": "change",
                                       "confidence": 0.8, "factors": [], "evidence": []}]))
    from_note = a.resolved("Billing checkout 5xx", "billing", days_before=40, note="Rolled back the connection pool size")
    a.resolved("Unrelated disk full", "billing", days_before=5)
    still_open = a.incident("Checkout 5xx spike again", "checkout", started_at=T0 - dt.timedelta(days=2))
    inc = a.incident("Checkout 5xx spike", "checkout")
    db.session.commit()

    hyps, _ = rca.analyze(a.org_id, inc.id)

    similar = by_category(hyps, "similar_incident")
    titles = [h["title"] for h in similar]
    assert f"Recurrence of {from_rca.ref}: Deploy on checkout: cache TTL set to 0" in titles
    assert f"Recurrence of {from_note.ref}: Rolled back the connection pool size" in titles
    assert evidence_ids(similar, "incident") == {from_rca.id, from_note.id}
    assert still_open.id not in evidence_ids(hyps, "incident")
    note_hyp = next(h for h in similar if from_note.ref in h["title"])
    resolution = db.session.get(TimelineEvent, next(e["id"] for e in note_hyp["evidence"] if e["type"] == "timeline_event"))
    assert resolution.incident_id == from_note.id and "Rolled back" in resolution.body
    assert next(e for e in note_hyp["evidence"] if e["type"] == "timeline_event")["incident_id"] == from_note.id
    assert similar[0]["evidence"][0]["id"] == from_rca.id  # same service, closer title, fresher
    assert_sound(a.org_id, hyps)


def test_upstream_incident_and_alerts_active_at_the_start(orgs):
    a, _ = orgs
    for name in ("web", "orders", "kafka"):
        a.service(name)
    a.depends("web", "orders")
    a.depends("orders", "kafka")
    kafka_inc = a.incident("Kafka broker down", "kafka", started_at=T0 - minutes(25), severity="critical")
    over = a.resolved("Kafka lag (over before we started)", "kafka", days_before=0.5)
    kafka_alert = a.alert(None, "Consumer lag high", service_name="kafka", at=T0 - minutes(10))
    inc = a.incident("Web checkout failing", "web")
    db.session.commit()

    hyps, _ = rca.analyze(a.org_id, inc.id)

    up = by_category(hyps, "upstream")
    assert len(up) == 1 and up[0]["title"] == "Upstream dependency kafka degraded"
    assert evidence_ids(up, "incident") == {kafka_inc.id} and evidence_ids(up, "alert") == {kafka_alert.id}
    assert over.id not in evidence_ids(hyps, "incident")
    factors = {f["name"]: f["value"] for f in up[0]["factors"]}
    assert factors["proximity"] == rca.PROXIMITY[2] and factors["lead_time"] == 1.0 and factors["severity"] == 1.0
    assert_sound(a.org_id, hyps)


def test_alert_labels_name_a_component(orgs):
    a, _ = orgs
    a.service("shop")
    a.service("redis")
    a.depends("shop", "redis")
    inc = a.incident("Shop slow", "shop")
    first = a.alert(inc, "p99 latency", service_name="shop", labels={"dependency": "redis"}, at=T0)
    second = a.alert(inc, "cache misses", service_name="shop", labels={"cache": "redis"}, at=T0 + minutes(2))
    a.alert(inc, "error rate", service_name="shop", labels={"pod": "shop-7f9"}, at=T0 + minutes(3))
    db.session.commit()

    hyps, _ = rca.analyze(a.org_id, inc.id)

    comp = by_category(hyps, "alert_signal")
    assert [h["title"] for h in comp] == ["Component redis named by the incident's alerts"]
    assert evidence_ids(comp, "alert") == {first.id, second.id}
    factors = {f["name"]: f["value"] for f in comp[0]["factors"]}
    assert factors["share"] == pytest.approx(2 / 3, abs=0.001) and factors["first_to_fire"] == 1.0
    assert factors["known_service"] == rca.PROXIMITY[1]
    assert_sound(a.org_id, hyps)


def test_other_orgs_data_never_appears(orgs):
    a, b = orgs
    for org in (a, b):
        for name in ("checkout", "payments"):
            org.service(name)
        org.depends("checkout", "payments")
    b_change = b.change("checkout", minutes(5), "bravo deploy", ref="v1.0.0")
    b_up = b.change("payments", minutes(15), "bravo payments deploy")
    b_find = b.finding("bravo vuln", "checkout")
    b_past = b.resolved("Checkout 5xx spike", "checkout", days_before=3, note="bravo cause")
    b_up_inc = b.incident("payments down", "payments", started_at=T0 - minutes(5))
    b_alert = b.alert(None, "payments alert", service_name="payments", at=T0 - minutes(5))
    inc = a.incident("Checkout 5xx spike", "checkout")
    a.alert(inc, "checkout 5xx", service_name="checkout", labels={"dependency": "payments"})
    db.session.commit()

    hyps, summary = rca.analyze(a.org_id, inc.id)

    b_ids = {("change_event", b_change.id), ("change_event", b_up.id), ("finding", b_find.id),
             ("incident", b_past.id), ("incident", b_up_inc.id), ("alert", b_alert.id)}
    cited = {(e["type"], e["id"]) for h in hyps for e in h["evidence"]}
    assert not cited & b_ids
    assert "bravo" not in str(hyps)
    assert {s["id"] for s in summary["services"]} == {a.services["checkout"].id, a.services["payments"].id}
    assert_sound(a.org_id, hyps)


def test_nothing_qualifies_gives_one_insufficient_evidence_hypothesis(orgs):
    a, _ = orgs
    inc = a.incident("Something odd", None)
    db.session.commit()

    hyps, summary = rca.analyze(a.org_id, inc.id)

    assert len(hyps) == 1
    h = hyps[0]
    assert h["category"] == "insufficient_evidence" and h["confidence"] == 0.0 and h["evidence"] == []
    assert h["factors"][0]["name"] == "strongest_candidate"
    assert summary["services"] == [] and summary["service_source"] == ""


def test_service_is_taken_from_alerts_when_the_incident_has_none(orgs):
    a, _ = orgs
    a.service("search")
    c = a.change("search", minutes(15), "search index rebuild", kind="infra")
    inc = a.incident("Search timeouts", None)
    a.alert(inc, "timeouts", service_name="search")
    db.session.commit()

    hyps, summary = rca.analyze(a.org_id, inc.id)

    assert summary["service_source"] == "alerts"
    assert hyps[0]["evidence"][0] == {"type": "change_event", "id": c.id, "summary": "infra on search: search index rebuild",
                                      "at": "2026-03-10T11:45:00Z"}


def test_window_is_an_input(orgs):
    a, _ = orgs
    a.service("api")
    old = a.change("api", dt.timedelta(hours=10), "api deploy ten hours before")
    inc = a.incident("API errors", "api")
    db.session.commit()

    narrow, _ = rca.analyze(a.org_id, inc.id, window_hours=6)
    wide, _ = rca.analyze(a.org_id, inc.id, window_hours=12)

    assert old.id not in evidence_ids(narrow, "change_event")
    assert old.id in evidence_ids(wide, "change_event")


def test_analysis_is_deterministic(orgs):
    a, _ = orgs
    a.service("api")
    a.service("db")
    a.depends("api", "db")
    a.change("api", minutes(30), "one")
    a.change("db", minutes(30), "two")
    a.finding("vuln", "db")
    inc = a.incident("API errors", "api")
    db.session.commit()

    assert rca.analyze(a.org_id, inc.id) == rca.analyze(a.org_id, inc.id)


def test_upstream_walk_stops_at_depth_three_and_survives_cycles():
    edges = [(1, 2), (2, 3), (3, 4), (4, 5), (3, 1), (2, 6)]
    names = {i: f"s{i}" for i in range(1, 7)}
    graph = rca.upstream_graph(1, edges, names)
    assert {sid: s.depth for sid, s in graph.items()} == {1: 0, 2: 1, 3: 2, 6: 2, 4: 3}
    assert graph[4].path == ("s1", "s2", "s3", "s4")


def test_title_similarity_uses_normalized_tokens():
    assert rca.tokens("Checkout: 5xx spike on the API!") == {"checkout", "5xx", "spike", "api"}
    assert rca.jaccard(rca.tokens("Checkout 5xx spike"), rca.tokens("checkout 5XX SPIKE again")) == pytest.approx(0.75)
    assert rca.jaccard(set(), {"x"}) == 0.0


def test_confidence_is_the_capped_sum_of_factor_contributions():
    h = rca.Hypothesis("t", "change", [rca.Factor("a", 1.0, 0.45), rca.Factor("b", 0.5, 0.3), rca.Factor("c", 0.333, 0.1)], [])
    assert h.confidence == round(0.45 + 0.15 + 0.0333, 2)
    capped = rca.Hypothesis("t", "change", [rca.Factor("a", 1.0, 0.8), rca.Factor("b", 1.0, 0.8)], [])
    assert capped.confidence == 1.0
    for category, weights in rca.WEIGHTS.items():
        assert sum(weights.values()) <= 1.0 + 1e-9, category
