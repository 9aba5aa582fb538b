"""The hash-chained audit log: recording, verification, tamper detection, export."""
from __future__ import annotations

import csv
import datetime as dt
import io
import threading

import pytest
import sqlalchemy as sa

from zentro.audit import service
from zentro.audit.service import Actor
from zentro.extensions import db

ALICE = Actor("user", "1", "alice@example.com")


@pytest.fixture
def org_id(make_member):
    return make_member("alpha", "owner").org_id


def _record_n(app, org_id: int, n: int, start: dt.datetime | None = None, step=dt.timedelta(minutes=1)):
    with app.app_context():
        for i in range(n):
            service.record(org_id, "test.event", ALICE, target_type="thing", target_id=i, control_tags=["SOC2:CC7.2"],
                           data={"i": i}, now=(start + i * step) if start else None)
        db.session.commit()


def _verify(app, org_id):
    with app.app_context():
        return service.verify_chain(org_id)


def test_rows_link_to_the_previous_hash(app, org_id):
    _record_n(app, org_id, 5)
    with app.app_context():
        rows = db.session.execute(sa.text("SELECT seq, prev_hash, hash FROM audit_events WHERE org_id=:o ORDER BY seq"),
                                  {"o": org_id}).all()
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0].prev_hash == "0" * 64
    assert all(rows[i].prev_hash == rows[i - 1].hash for i in range(1, len(rows)))
    result = _verify(app, org_id)
    assert result.ok and result.checked == len(rows)


def test_chains_are_per_org(app, org_id, make_member):
    other = make_member("bravo", "owner").org_id
    _record_n(app, org_id, 3)
    _record_n(app, other, 2)
    assert _verify(app, org_id).ok and _verify(app, other).ok


def test_altered_row_is_reported_with_its_seq(app, org_id):
    _record_n(app, org_id, 6)
    with app.app_context():
        seq = db.session.scalar(sa.text("SELECT seq FROM audit_events WHERE org_id=:o AND data = :d"), {"o": org_id, "d": '{"i":3}'})
        db.session.execute(sa.text("UPDATE audit_events SET action='test.innocent' WHERE org_id=:o AND seq=:s"),
                           {"o": org_id, "s": seq})
        db.session.commit()
    result = _verify(app, org_id)
    assert not result.ok and result.broken_seq == seq and "altered" in result.reason


def test_removed_row_is_reported(app, org_id):
    _record_n(app, org_id, 6)
    with app.app_context():
        last = db.session.scalar(sa.text("SELECT MAX(seq) FROM audit_events WHERE org_id=:o"), {"o": org_id})
        db.session.execute(sa.text("DELETE FROM audit_events WHERE org_id=:o AND seq=:s"), {"o": org_id, "s": last - 2})
        db.session.commit()
    result = _verify(app, org_id)
    assert not result.ok and result.broken_seq == last - 2 and "missing" in result.reason


def test_rehashed_forgery_breaks_the_next_link(app, org_id):
    """Recomputing a tampered row's own hash still breaks the following row's prev_hash."""
    _record_n(app, org_id, 4)
    with app.app_context():
        from zentro.audit.models import AuditEvent

        row = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.org_id == org_id, AuditEvent.seq == 2))
        row.action = "forged"
        row.hash = service.compute_hash(row)
        db.session.commit()
    result = _verify(app, org_id)
    assert not result.ok and result.broken_seq == 3 and "prev_hash" in result.reason


def test_concurrent_writers_keep_one_chain(app, org_id):
    errors = []

    def writer(k):
        try:
            with app.app_context():
                for i in range(5):
                    service.record(org_id, "race", Actor("user", str(k), f"w{k}"), data={"i": i})
                    db.session.commit()
                db.session.remove()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = _verify(app, org_id)
    with app.app_context():
        races = db.session.scalar(sa.text("SELECT COUNT(*) FROM audit_events WHERE action='race'"))
    assert races == 20 and result.ok


def test_cli_verify_names_first_broken_link(app, org_id):
    _record_n(app, org_id, 3)
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["audit", "verify", "--org", "alpha"])
    assert ok.exit_code == 0 and "chain is intact" in ok.output
    with app.app_context():
        db.session.execute(sa.text("UPDATE audit_events SET data='{}' WHERE org_id=:o AND seq=2"), {"o": org_id})
        db.session.commit()
    bad = runner.invoke(args=["audit", "verify", "--org", "alpha"])
    assert bad.exit_code == 1 and "BROKEN at seq 2" in bad.output
    missing = runner.invoke(args=["audit", "verify", "--org", "nope"])
    assert missing.exit_code != 0 and "No org" in missing.output


def _csv_rows(resp) -> list[dict]:
    return list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))


def test_export_windows_and_streaming(app, make_member, make_api_key):
    m = make_member("alpha", "owner")
    key = make_api_key(m)
    now = dt.datetime.now(dt.timezone.utc)
    _record_n(app, m.org_id, 3, start=now - dt.timedelta(days=40), step=dt.timedelta(days=1))  # old
    _record_n(app, m.org_id, 2, start=now - dt.timedelta(days=3), step=dt.timedelta(hours=1))  # last week
    _record_n(app, m.org_id, 2, start=now - dt.timedelta(hours=2), step=dt.timedelta(minutes=5))  # today
    c = app.test_client()
    h = {"Authorization": f"Bearer {key}"}
    counts = {}
    for window in ("24h", "7d", "30d", "all"):
        resp = c.get(f"/api/audit/export?window={window}", headers=h)
        assert resp.status_code == 200 and resp.mimetype == "text/csv" and resp.is_streamed
        assert "attachment" in resp.headers["Content-Disposition"]
        counts[window] = len([r for r in _csv_rows(resp) if r["action"] == "test.event"])
    assert counts == {"24h": 2, "7d": 4, "30d": 4, "all": 7}
    assert c.get("/api/audit/export", headers=h).status_code == 200  # default window=all
    bad = c.get("/api/audit/export?window=1y", headers=h)
    assert bad.status_code == 400 and bad.get_json()["error_code"] == "VALIDATION_ERROR"


def test_export_is_generated_in_chunks(app, org_id):
    _record_n(app, org_id, 1200)
    with app.app_context():
        chunks = list(service.export_csv(org_id, "all"))
    assert len(chunks) >= 3  # rows are flushed as they are read, not built up in one string
    body = "".join(chunks)
    assert body.count("test.event") == 1200


def test_export_only_contains_callers_org(app, make_member, make_api_key):
    a = make_member("alpha", "owner")
    b = make_member("bravo", "owner")
    with app.app_context():
        service.record(b.org_id, "bravo.secret", ALICE)
        db.session.commit()
    body = app.test_client().get("/api/audit/export", headers={"X-API-Key": make_api_key(a)}).get_data(as_text=True)
    assert "bravo.secret" not in body
