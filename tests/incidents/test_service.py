"""The incident service: lifecycle, dedupe (including concurrent deliveries), commander, legal hold,
details, and the keyset list queries the pages and the API are built on."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import event, func, select

from zentro.audit.models import AuditEvent
from zentro.audit.service import SYSTEM, Actor, verify_chain
from zentro.extensions import db
from zentro.incidents import service
from zentro.incidents.models import Incident, TimelineEvent
from zentro.platform.errors import ApiError

from .incident_helpers import T0, make_incident, make_service

MIN = dt.timedelta(minutes=1)


def events(inc_id: int) -> list[tuple[str, str]]:
    return [(e.kind, e.body) for e in db.session.scalars(
        select(TimelineEvent).where(TimelineEvent.incident_id == inc_id).order_by(TimelineEvent.id))]


def audit(org_id: int, inc_id: int) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(
        AuditEvent.org_id == org_id, AuditEvent.target_type == "incident", AuditEvent.target_id == str(inc_id))
        .order_by(AuditEvent.seq)))


@pytest.fixture
def org(make_member):
    return make_member("alpha", "owner")


# --- create and lifecycle --------------------------------------------------------------------------------

def test_numbers_are_per_org_and_creation_is_audited_with_ir_tags(app, ctx, make_member):
    a, b = make_member("alpha"), make_member("bravo")
    first = service.create_incident(a.org_id, title="Disk full", severity="high", actor=SYSTEM)
    second = service.create_incident(a.org_id, title="Queue backlog", severity="low", actor=SYSTEM)
    other = service.create_incident(b.org_id, title="Elsewhere", severity="low", actor=SYSTEM)
    db.session.commit()
    assert (first.ref, second.ref, other.ref) == ("INC-1", "INC-2", "INC-1")
    rows = audit(a.org_id, first.id)
    assert [r.action for r in rows] == ["incident.created"]
    assert {"SOC2:CC7.3", "ISO27001:A.5.24"} <= set(rows[0].control_tags.split())
    assert events(first.id)[0][0] == "created"


def test_create_rejects_unknown_severity(app, ctx, org):
    with pytest.raises(ApiError) as exc:
        service.create_incident(org.org_id, title="x", severity="urgent", actor=SYSTEM)
    assert exc.value.status == 400


def test_full_lifecycle_stamps_each_time_once_and_audits(app, ctx, org):
    inc = service.create_incident(org.org_id, title="API down", severity="critical", actor=SYSTEM, now=T0)
    for n, to in enumerate(["acknowledged", "mitigated", "resolved", "closed"], 1):
        service.transition(inc, to, SYSTEM, now=T0 + n * MIN)
    db.session.commit()
    assert (inc.acknowledged_at, inc.mitigated_at, inc.resolved_at, inc.closed_at) == (
        T0 + MIN, T0 + 2 * MIN, T0 + 3 * MIN, T0 + 4 * MIN)
    assert [a.action for a in audit(org.org_id, inc.id)] == [
        "incident.created", "incident.acknowledged", "incident.mitigated", "incident.resolved", "incident.closed"]
    resolved = audit(org.org_id, inc.id)[3]
    assert "SOC2:CC7.5" in resolved.control_tags  # recovery evidence
    assert [k for k, _ in events(inc.id)] == ["created", "status", "status", "status", "status"]


@pytest.mark.parametrize("start,to", [("open", "closed"), ("acknowledged", "open"), ("closed", "open"),
                                      ("closed", "acknowledged"), ("resolved", "mitigated")])
def test_invalid_transitions_are_409_and_change_nothing(app, ctx, org, start, to):
    inc_id = make_incident(app, org.org_id, status=start)
    inc = service.get_incident(org.org_id, inc_id)
    before = (service.incident_json(inc), len(events(inc_id)), len(audit(org.org_id, inc_id)))
    with pytest.raises(ApiError) as exc:
        service.transition(inc, to, SYSTEM)
    assert exc.value.status == 409
    db.session.rollback()
    inc = service.get_incident(org.org_id, inc_id)
    assert (service.incident_json(inc), len(events(inc_id)), len(audit(org.org_id, inc_id))) == before


def test_unknown_status_is_400_and_same_status_is_a_no_op(app, ctx, org):
    inc = service.create_incident(org.org_id, title="x", severity="low", actor=SYSTEM)
    with pytest.raises(ApiError) as exc:
        service.transition(inc, "escalated", SYSTEM)
    assert exc.value.status == 400
    n = len(events(inc.id))
    service.transition(inc, "open", SYSTEM)
    assert len(events(inc.id)) == n


def test_reopen_clears_resolution_and_takes_the_dedupe_key_back(app, ctx, org):
    inc = service.open_or_absorb(org.org_id, dedupe_key="k1", title="Latency", severity="high", actor=SYSTEM,
                                 source="alertmanager").incident
    service.transition(inc, "resolved", SYSTEM)
    db.session.commit()
    assert inc.open_dedupe_key is None
    service.transition(inc, "open", SYSTEM)
    db.session.commit()
    assert (inc.status, inc.resolved_at, inc.open_dedupe_key) == ("open", None, "k1")
    assert audit(org.org_id, inc.id)[-1].action == "incident.reopened"


def test_reopen_is_409_while_another_active_incident_holds_the_key(app, ctx, org):
    old = service.open_or_absorb(org.org_id, dedupe_key="k1", title="a", severity="high", actor=SYSTEM,
                                 source="x").incident
    service.transition(old, "resolved", SYSTEM)
    new = service.open_or_absorb(org.org_id, dedupe_key="k1", title="a", severity="high", actor=SYSTEM,
                                 source="x")
    db.session.commit()
    assert new.created and new.incident.id != old.id
    with pytest.raises(ApiError) as exc:
        service.transition(old, "open", SYSTEM)
    assert exc.value.status == 409
    db.session.rollback()


# --- dedupe ----------------------------------------------------------------------------------------------

def test_open_or_absorb_folds_alerts_and_only_raises_severity(app, ctx, org):
    first = service.open_or_absorb(org.org_id, dedupe_key="dd:1", title="CPU", severity="medium", actor=SYSTEM,
                                   source="datadog", now=T0)
    again = service.open_or_absorb(org.org_id, dedupe_key="dd:1", title="CPU", severity="low", actor=SYSTEM,
                                   source="datadog", now=T0 + MIN)
    worse = service.open_or_absorb(org.org_id, dedupe_key="dd:1", title="CPU", severity="critical", actor=SYSTEM,
                                   source="datadog", now=T0 + 2 * MIN)
    other = service.open_or_absorb(org.org_id, dedupe_key="dd:2", title="Disk", severity="low", actor=SYSTEM,
                                   source="datadog")
    db.session.commit()
    inc = first.incident
    assert first.created and not again.created and not worse.created and other.created
    assert again.incident.id == worse.incident.id == inc.id != other.incident.id
    assert (inc.alert_count, inc.severity, inc.last_seen_at) == (3, "critical", T0 + 2 * MIN)
    kinds = [k for k, _ in events(inc.id)]
    assert kinds == ["created", "alert", "alert", "severity", "alert"]


def test_a_resolved_incident_does_not_absorb_new_alerts(app, ctx, org):
    first = service.open_or_absorb(org.org_id, dedupe_key="k", title="t", severity="low", actor=SYSTEM, source="x")
    service.transition(first.incident, "resolved", SYSTEM)
    second = service.open_or_absorb(org.org_id, dedupe_key="k", title="t", severity="low", actor=SYSTEM, source="x")
    db.session.commit()
    assert second.created and second.incident.number == 2
    assert first.incident.alert_count == 1


def _race(app, n: int, work) -> list[BaseException]:
    """Run work(i) in n threads released together (a barrier, not a sleep); each commits its own
    transaction. Returns the exceptions raised."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                work(i)
                db.session.commit()
            except BaseException as exc:  # noqa: BLE001 - reported to the test
                db.session.rollback()
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    return errors


def test_concurrent_deliveries_of_one_key_open_exactly_one_incident(app, org):
    n = 8
    errors = _race(app, n, lambda i: service.open_or_absorb(
        org.org_id, dedupe_key="burst", title="Burst", severity="high", actor=Actor("ingest_token", str(i), f"t{i}"),
        source="alertmanager"))
    assert errors == []
    with app.app_context():
        incs = db.session.scalars(select(Incident).where(Incident.org_id == org.org_id)).all()
        assert len(incs) == 1
        assert incs[0].alert_count == n
        assert [k for k, _ in events(incs[0].id)].count("alert") == n
        assert verify_chain(org.org_id).ok
        db.session.remove()


def test_concurrent_creates_get_distinct_gap_free_numbers(app, org):
    n = 8
    errors = _race(app, n, lambda i: service.create_incident(org.org_id, title=f"manual {i}", severity="low",
                                                             actor=SYSTEM))
    assert errors == []
    with app.app_context():
        numbers = sorted(db.session.scalars(select(Incident.number).where(Incident.org_id == org.org_id)))
        assert numbers == list(range(1, n + 1))
        db.session.remove()


# --- notes, severity, commander, legal hold, details ------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   \n ", "x" * 10_001])
def test_bad_notes_are_400(app, ctx, org, text):
    inc = service.create_incident(org.org_id, title="x", severity="low", actor=SYSTEM)
    with pytest.raises(ApiError) as exc:
        service.add_note(inc, text, SYSTEM)
    assert exc.value.status == 400


def test_note_is_stripped_timelined_and_audited(app, ctx, org):
    inc = service.create_incident(org.org_id, title="x", severity="low", actor=SYSTEM)
    ev = service.add_note(inc, "  rolled back deploy 42 \n", Actor("user", "7", "sre@x.example"))
    db.session.commit()
    assert (ev.kind, ev.body, ev.actor_label) == ("note", "rolled back deploy 42", "sre@x.example")
    assert audit(org.org_id, inc.id)[-1].action == "incident.note_added"


def test_severity_change_is_recorded_once(app, ctx, org):
    inc = service.create_incident(org.org_id, title="x", severity="low", actor=SYSTEM)
    service.set_severity(inc, "high", SYSTEM)
    service.set_severity(inc, "high", SYSTEM)
    with pytest.raises(ApiError):
        service.set_severity(inc, "sev1", SYSTEM)
    db.session.commit()
    assert [b for k, b in events(inc.id) if k == "severity"] == ["Severity low → high"]


def test_commander_must_belong_to_the_org(app, ctx, make_member):
    a, sre = make_member("alpha", "owner"), make_member("alpha", "member")
    outsider = make_member("bravo", "owner")
    inc = service.create_incident(a.org_id, title="x", severity="low", actor=SYSTEM)
    with pytest.raises(ApiError) as exc:
        service.assign_commander(inc, outsider.user_id, SYSTEM)
    assert exc.value.status == 404 and inc.commander_id is None
    service.assign_commander(inc, sre.user_id, SYSTEM)
    service.assign_commander(inc, None, SYSTEM)
    db.session.commit()
    assert [b for k, b in events(inc.id) if k == "commander"] == [f"Commander set to {sre.email}",
                                                                   "Commander set to nobody"]


def test_legal_hold_toggles_with_its_own_audit_actions(app, ctx, org):
    inc = service.create_incident(org.org_id, title="x", severity="low", actor=SYSTEM)
    service.set_legal_hold(inc, True, SYSTEM)
    service.set_legal_hold(inc, True, SYSTEM)
    service.set_legal_hold(inc, False, SYSTEM)
    db.session.commit()
    rows = audit(org.org_id, inc.id)
    assert [r.action for r in rows][1:] == ["incident.legal_hold_set", "incident.legal_hold_released"]
    assert "ISO27001:A.5.33" in rows[1].control_tags


def test_update_details_records_what_changed(app, ctx, org):
    inc = service.create_incident(org.org_id, title="Old title", severity="low", actor=SYSTEM)
    service.update_details(inc, SYSTEM, title="  New title ", description="Longer story")
    service.update_details(inc, SYSTEM, title="New title")  # no change: nothing recorded
    db.session.commit()
    assert (inc.title, inc.description) == ("New title", "Longer story")
    details = [e for e in db.session.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == inc.id))
               if e.kind == "details"]
    assert len(details) == 1
    assert details[0].data["title"] == {"from": "Old title", "to": "New title"}
    assert audit(org.org_id, inc.id)[-1].action == "incident.details_changed"


@pytest.mark.parametrize("kw", [{"title": "   "}, {"title": "t" * 301}, {"description": "d" * 10_001}])
def test_update_details_rejects_bad_values(app, ctx, org, kw):
    inc = service.create_incident(org.org_id, title="Old", severity="low", actor=SYSTEM)
    with pytest.raises(ApiError) as exc:
        service.update_details(inc, SYSTEM, **kw)
    assert exc.value.status == 400 and inc.title == "Old"


# --- list queries ----------------------------------------------------------------------------------------

def test_list_pages_newest_first_without_gaps_or_repeats_under_inserts(app, ctx, org):
    for i in range(7):
        service.create_incident(org.org_id, title=f"inc {i}", severity="low", actor=SYSTEM)
    db.session.commit()
    seen, before = [], None
    while True:
        rows, before = service.list_incidents(org.org_id, before_id=before, limit=3)
        seen += [r.number for r in rows]
        if len(seen) == 3:  # a new incident arrives while the client is paging
            service.create_incident(org.org_id, title="late", severity="low", actor=SYSTEM)
            db.session.commit()
        if before is None:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1]


def test_list_filters(app, ctx, make_member):
    a, b = make_member("alpha"), make_member("bravo")
    svc = make_service(app, a.org_id, "payments-api")
    make_incident(app, a.org_id, "Payments 5xx", "critical", service_id=svc)
    make_incident(app, a.org_id, "Slow search", "low", status="acknowledged")
    make_incident(app, a.org_id, "Payments latency 100%", "high", status="resolved", service_id=svc)
    make_incident(app, a.org_id, "Old_thing", "low", status="closed")
    make_incident(app, b.org_id, "Payments elsewhere", "critical")

    def titles(**kw):
        return [r.title for r in service.list_incidents(a.org_id, **kw)[0]]

    assert titles(statuses=service.statuses_for("active")) == ["Slow search", "Payments 5xx"]
    assert titles(statuses=service.statuses_for("all")) == ["Old_thing", "Payments latency 100%", "Slow search",
                                                            "Payments 5xx"]
    assert titles(statuses=("resolved",)) == ["Payments latency 100%"]
    assert titles(severity="critical") == ["Payments 5xx"]
    assert titles(service_id=svc) == ["Payments latency 100%", "Payments 5xx"]
    assert titles(service_id=svc, statuses=ACTIVE) == ["Payments 5xx"]
    assert titles(q="payments") == ["Payments latency 100%", "Payments 5xx"]
    assert titles(q="100%") == ["Payments latency 100%"]  # LIKE wildcards are literal
    assert titles(q="%") == ["Payments latency 100%"]
    assert titles(q="Ol_") == [] and titles(q="d_t") == ["Old_thing"]  # "_" is literal too
    assert titles(q="INC-2") == ["Slow search"] and titles(q="2") == ["Slow search"]
    with pytest.raises(ApiError):
        service.statuses_for("escalated")
    with pytest.raises(ApiError):
        service.list_incidents(a.org_id, severity="urgent")


ACTIVE = service.ACTIVE_STATUSES


def test_status_counts_are_capped(app, ctx, org):
    for _ in range(3):
        service.create_incident(org.org_id, title="x", severity="low", actor=SYSTEM)
    db.session.commit()
    assert service.status_counts(org.org_id, cap=2) == {"open": 2, "acknowledged": 0, "mitigated": 0}
    assert service.status_counts(org.org_id)["open"] == 3


def test_list_queries_use_the_keyset_indexes_not_offset_or_full_counts(app, ctx, org):
    """With 100k incidents the list must stay an index range scan: every statement is LIMITed, none uses
    OFFSET or counts the table, and each searches ix_incidents_org_status or ix_incidents_org_service.
    SQLite's planner decides from the schema alone; PostgreSQL's from statistics, so there the table first
    gets 20k closed incidents (one INSERT … SELECT) and ANALYZE."""
    svc = make_service(app, org.org_id, "payments-api")
    engine = db.engine
    if engine.dialect.name == "postgresql":
        db.session.execute(sa.text(
            "INSERT INTO incidents (org_id, number, title, description, severity, status, service_id, source, "
            "alert_count, legal_hold, started_at, last_seen_at, created_at, updated_at) "
            "SELECT :org, n, 'bulk ' || n, '', 'low', 'closed', CASE WHEN n % 10 = 0 THEN :svc END, 'manual', 0, "
            "false, now(), now(), now(), now() FROM generate_series(1, 20000) AS n"), {"org": org.org_id, "svc": svc})
        db.session.commit()
        db.session.execute(sa.text("ANALYZE incidents"))
        db.session.commit()
    statements: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "FROM incidents" in statement and statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        service.list_incidents(org.org_id, statuses=ACTIVE, severity="high", q="pay", before_id=500, limit=25)
        service.list_incidents(org.org_id, service_id=svc, limit=25)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    id_queries = [s for s in statements if "incidents.id IN" not in s[0]]
    assert len(id_queries) == 2  # one statement per page: the per-status scans are merged by the database
    for sql, params in statements:
        assert "COUNT(" not in sql.upper()
        if "OFFSET" in sql.upper():  # SQLAlchemy's SQLite dialect always writes LIMIT ? OFFSET ?, with 0
            assert sql.rstrip().endswith("LIMIT ? OFFSET ?") and params[-1] == 0, (sql, params)
    conn = db.session.connection()  # (a second connection would wait on SQLite's BEGIN IMMEDIATE)
    for sql, params in id_queries:
        assert "LIMIT" in sql.upper()
        if engine.dialect.name == "sqlite":
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))
        else:
            plan = " ".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql, params))
            assert "Seq Scan" not in plan, plan  # (a Sort, if any, orders the few LIMITed matches only)
        assert "ix_incidents_org_status" in plan or "ix_incidents_org_service" in plan, plan
    first_plan_sql, first_params = id_queries[0]
    if engine.dialect.name == "sqlite":
        first = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + first_plan_sql, first_params))
    else:
        first = " ".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + first_plan_sql, first_params))
    assert first.count("ix_incidents_org_status") == len(ACTIVE), first  # one range scan per active status


def test_timeline_and_alert_helpers(app, ctx, org):
    inc = service.create_incident(org.org_id, title="x", severity="low", actor=SYSTEM, now=T0)
    for i in range(4):
        service.add_note(inc, f"note {i}", SYSTEM, now=T0 + (i + 1) * MIN)
    db.session.commit()
    assert [e.body for e in service.timeline(org.org_id, inc.id, last=2)] == ["note 2", "note 3"]
    assert service.timeline_count(org.org_id, inc.id) == 5
    assert service.timeline(org.org_id, inc.id)[0].kind == "created"
    assert db.session.scalar(select(func.count()).select_from(sa.text("timeline_events"))) == 5
