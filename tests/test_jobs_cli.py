"""`zentro jobs list` and `zentro jobs run NAME [--org SLUG]`, as an operator runs them (Flask's CLI runner)."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from zentro.extensions import db
from zentro.platform.models import JobRun
from zentro.platform.scheduler import acquire, release

UTC = dt.timezone.utc


def _runs(app) -> list[tuple[str, str, str]]:
    with app.app_context():
        rows = db.session.execute(sa.select(JobRun.job, JobRun.trigger, JobRun.status).order_by(JobRun.id)).all()
        db.session.remove()
    return [tuple(r) for r in rows]


def _count(app, table: str) -> int:
    with app.app_context():
        n = db.session.scalar(sa.text(f"SELECT COUNT(*) FROM {table}"))
        db.session.remove()
    return n


def _line(output: str, job: str) -> str:
    return next(line for line in output.splitlines() if line.split() and line.split()[0] == job)


def test_list_shows_every_job_its_schedule_and_that_nothing_ran(app):
    result = app.test_cli_runner().invoke(args=["jobs", "list"])
    assert result.exit_code == 0, result.output
    assert "Leader: none yet" in result.output
    assert "every 5 s" in _line(result.output, "outbox") and "never" in _line(result.output, "outbox")
    assert "daily 03:15 UTC (cron 15 3 * * *)" in _line(result.output, "retention")
    assert "daily 03:45 UTC" in _line(result.output, "bundles")
    from zentro.compliance.digests import discover

    for slug in discover():
        assert f"digest:{slug}" in result.output
    assert "every 60 s" in _line(result.output, "digest:sla-reminders")


def test_list_names_the_leader_and_when_its_lease_ended(app):
    now = dt.datetime.now(UTC)
    with app.app_context():
        assert acquire("web-1:4242:abcd", now, 30)
        db.session.remove()
    shown = app.test_cli_runner().invoke(args=["jobs", "list"]).output
    assert "Leader: web-1:4242:abcd since" in shown and "lease until" in shown
    with app.app_context():
        release("web-1:4242:abcd")
        db.session.remove()
    shown = app.test_cli_runner().invoke(args=["jobs", "list"]).output
    assert "Leader: none (the lease of web-1:4242:abcd ended" in shown


def test_run_records_a_cli_run_that_list_then_shows(app, make_member):
    make_member("alpha", "owner")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["jobs", "run", "retention"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("retention: ok in ") and "1 org(s): purged 0 audit rows" in result.output
    assert _runs(app) == [("retention", "cli", "ok")]
    line = _line(runner.invoke(args=["jobs", "list"]).output, "retention")
    assert "ok (cli)" in line and "purged 0 audit rows" in line


def test_run_refuses_unknown_jobs_and_orgs_and_records_nothing(app, make_member):
    make_member("alpha", "owner")
    runner = app.test_cli_runner()
    for args, message in [
        (["jobs", "run", "nope"], "No job 'nope'. Jobs: bundles, digest:"),
        (["jobs", "run", "outbox", "--org", "alpha"], "Job 'outbox' has no per-org mode"),
        (["jobs", "run", "retention", "--org", "ghost"], "No org 'ghost'"),
        (["jobs", "run", "digest:nope", "--org", "alpha"], "No job 'digest:nope'"),
        (["jobs", "run"], "Missing argument 'NAME'"),
    ]:
        result = runner.invoke(args=args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    assert _runs(app) == []


def test_a_failing_job_exits_1_with_the_error(app, monkeypatch):
    import zentro.jobs

    def broken(now):
        raise ConnectionError("webhook receiver unreachable")

    monkeypatch.setattr(zentro.jobs, "outbox_job", broken)
    result = app.test_cli_runner().invoke(args=["jobs", "run", "outbox"])
    assert result.exit_code == 1
    assert "outbox: failed in" in result.output and "ConnectionError: webhook receiver unreachable" in result.output
    assert _runs(app) == [("outbox", "cli", "failed")]


def test_run_outbox_drains_due_messages(app):
    result = app.test_cli_runner().invoke(args=["jobs", "run", "outbox"])
    assert result.exit_code == 0, result.output
    assert "outbox: delivered 0, retrying 0, failed 0" in result.output


def test_bundles_for_one_org_follow_its_committee_cadence(app, make_member):
    alpha = make_member("alpha", "owner")
    make_member("bravo", "owner")
    runner = app.test_cli_runner()
    first = runner.invoke(args=["jobs", "run", "bundles", "--org", "alpha"])
    assert first.exit_code == 0, first.output
    assert f"1 bundle(s) created (org {alpha.org_id} #1)" in first.output  # never made one: due now
    again = runner.invoke(args=["jobs", "run", "bundles", "--org", "alpha"])
    assert again.exit_code == 0 and "0 bundle(s) created; 1 not due yet" in again.output
    assert _count(app, "evidence_bundles") == 1  # bravo untouched: --org means that org only

    from zentro.audit.service import SYSTEM
    from zentro.compliance import committee

    with app.app_context():
        committee.update_settings(alpha.org_id, {"bundleCadenceDays": 0}, user_id=alpha.user_id, actor=SYSTEM)
        db.session.remove()
    off = runner.invoke(args=["jobs", "run", "bundles", "--org", "alpha"])
    assert "0 bundle(s) created; 0 not due yet; 1 without scheduled bundles" in off.output
    everyone = runner.invoke(args=["jobs", "run", "bundles"])
    assert everyone.exit_code == 0 and "1 bundle(s) created" in everyone.output  # bravo's first
    assert _count(app, "evidence_bundles") == 2


def test_bundle_due_is_the_obligation_calendars_schedule(app, make_member):
    """The job creates a bundle exactly when the obligations calendar shows a scheduled bundle as due."""
    from zentro.audit.service import SYSTEM
    from zentro.compliance import obligations as obl
    from zentro.compliance.bundles import create_bundle
    from zentro.jobs import bundle_due, bundles_job

    alpha = make_member("alpha", "owner")
    t0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    with app.app_context():
        assert bundle_due(alpha.org_id, t0) == t0  # never made one
        create_bundle(alpha.org_id, SYSTEM, 30, now=t0)
        expected = t0 + dt.timedelta(days=30)
        assert bundle_due(alpha.org_id, t0 + dt.timedelta(days=1)) == expected
        calendar = [o.due_at for o in obl._bundles(alpha.org_id, t0, obl.committee_config(alpha.org_id), False)]
        assert calendar[0] == expected
        assert bundles_job(expected - dt.timedelta(seconds=1), alpha.org_id).startswith("0 bundle(s) created")
        assert bundles_job(expected, alpha.org_id).startswith("1 bundle(s) created")
        db.session.remove()


def test_digest_for_one_org_delivers_once_per_period(app, make_member):
    make_member("alpha", "owner")
    runner = app.test_cli_runner()
    first = runner.invoke(args=["jobs", "run", "digest:sla-reminders", "--org", "alpha"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(args=["jobs", "run", "digest:sla-reminders", "--org", "alpha"])
    assert again.exit_code == 0 and "already_delivered" in again.output, again.output
    with app.app_context():
        triggers = db.session.scalars(sa.text("SELECT trigger FROM digest_runs")).all()
        db.session.remove()
    assert triggers == ["cli"]
    assert [r[:2] for r in _runs(app)] == [("digest:sla-reminders", "cli")] * 2


def test_digest_without_org_delivers_to_due_schedules_only(app, make_member):
    make_member("alpha", "owner")
    result = app.test_cli_runner().invoke(args=["jobs", "run", "digest:sla-reminders"])
    assert result.exit_code == 0 and "digest:sla-reminders: ok" in result.output and "no org due" in result.output
    assert _count(app, "digest_runs") == 0
