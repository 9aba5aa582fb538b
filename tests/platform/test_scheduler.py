"""The scheduler's leadership lease, its job wrapper and its cron handling, on the test database (SQLite, or
PostgreSQL with ZENTRO_TEST_DATABASE_URL). Time is injected everywhere except the one test that starts a real
APScheduler thread and waits (with a deadline) for it to fire."""
from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa

from zentro import create_app
from zentro.extensions import db
from zentro.platform import scheduler
from zentro.platform.models import JobRun, SchedulerLease
from zentro.platform.scheduler import JobError, acquire, lease_state, register_job, release

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 5, 12, 0, tzinfo=UTC)  # a Thursday


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


@pytest.fixture
def registry():
    """The job registry, emptied for the test and restored after it."""
    saved = dict(scheduler.JOBS)
    scheduler.JOBS.clear()
    yield scheduler.JOBS
    scheduler.JOBS.clear()
    scheduler.JOBS.update(saved)


def runs() -> list[JobRun]:
    return list(db.session.scalars(sa.select(JobRun).order_by(JobRun.id)))


# --- the lease -----------------------------------------------------------------------------------------

def test_first_holder_leads_and_renews_keeping_its_start(ctx):
    assert acquire("host:1:a", T0, 30) is True
    assert acquire("host:2:b", at(1), 30) is False
    assert acquire("host:1:a", at(10), 30) is True  # renewal
    state = lease_state(at(10))
    assert (state.holder, state.active) == ("host:1:a", True)
    assert state.acquired_at == T0 and state.expires_at == at(40)
    assert acquire("host:2:b", at(39), 30) is False  # still one second of lease left
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SchedulerLease)) == 1


def test_another_holder_takes_over_once_the_lease_expires(ctx):
    assert acquire("a", T0, 30)
    assert acquire("b", at(30), 30) is False  # expires_at == now is not yet expired
    assert acquire("b", at(30.001), 30) is True
    state = lease_state(at(31))
    assert (state.holder, state.acquired_at, state.expires_at) == ("b", at(30.001), at(60.001))
    assert acquire("a", at(32), 30) is False  # the old leader, back from a pause, does not take it back


def test_release_hands_over_at_once_and_only_by_the_holder(ctx):
    assert acquire("a", T0, 30)
    assert release("b") is False
    assert lease_state(at(1)).active and lease_state(at(1)).holder == "a"
    assert release("a") is True
    state = lease_state(at(1))
    assert state.holder == "a" and not state.active  # the name stays for `zentro jobs list`
    assert acquire("b", at(1), 30) is True


def test_no_lease_row_until_someone_asks(ctx):
    assert lease_state(T0) is None
    assert acquire("a", T0, 5)
    assert lease_state(at(6)).active is False


@pytest.mark.parametrize("expired_holder", [None, "crashed:9:dead"])
def test_racing_holders_elect_exactly_one_leader(app, expired_holder):
    """Eight threads, each with its own session and holder id, ask at the same instant; on a fresh table and on a
    lease a crashed process left behind. One wins; the others see it as the leader."""
    if expired_holder:
        with app.app_context():
            assert acquire(expired_holder, T0 - dt.timedelta(minutes=5), 30)
            db.session.remove()
    holders = [f"racer:{i}" for i in range(8)]
    barrier = threading.Barrier(len(holders))
    results: dict[str, bool | Exception] = {}

    def contend(holder: str) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                results[holder] = acquire(holder, T0, 30)
            except Exception as exc:  # noqa: BLE001 — reported below
                results[holder] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=contend, args=(h,)) for h in holders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not [r for r in results.values() if isinstance(r, Exception)], results
    winners = [h for h, won in results.items() if won is True]
    assert len(winners) == 1, results
    with app.app_context():
        assert lease_state(at(1)).holder == winners[0]
        db.session.remove()


# --- the job wrapper -----------------------------------------------------------------------------------

def test_leader_runs_and_records_the_job(ctx, registry):
    seen = []
    register_job("count", lambda now: seen.append(now) or "counted 3 things", seconds=5, description="test")
    run = scheduler.run_if_leader("count", "me", now=T0, ttl=30)
    assert seen == [T0]
    assert (run.job, run.status, run.detail, run.trigger, run.holder) == ("count", "ok", "counted 3 things",
                                                                          "schedule", "me")
    assert run.started_at == T0 and run.finished_at >= T0
    assert [r.status for r in runs()] == ["ok"]


def test_a_failing_job_is_recorded_and_rolled_back_and_the_next_still_runs(ctx, registry):
    from zentro.accounts.models import Org

    def boom(now):
        db.session.add(Org(slug="half-done", name="half done"))
        db.session.flush()
        raise RuntimeError("the backend said no")

    register_job("boom", boom, seconds=5, description="fails")
    register_job("fine", lambda now: "ok then", seconds=5, description="works")
    failed = scheduler.run_if_leader("boom", "me", now=T0, ttl=30)
    assert failed.status == "failed" and failed.detail == "RuntimeError: the backend said no"
    assert failed.finished_at is not None
    assert db.session.scalar(sa.select(Org).where(Org.slug == "half-done")) is None
    assert scheduler.run_if_leader("fine", "me", now=at(1), ttl=30).status == "ok"
    assert [(r.job, r.status) for r in runs()] == [("boom", "failed"), ("fine", "ok")]


def test_a_process_that_does_not_lead_skips_silently(ctx, registry):
    calls = []
    register_job("count", lambda now: calls.append(now) or "", seconds=5, description="test")
    assert acquire("leader", T0, 30)
    assert scheduler.run_if_leader("count", "follower", now=at(1), ttl=30) is None
    assert calls == [] and runs() == []
    assert lease_state(at(1)).holder == "leader"


def test_run_job_refuses_unknown_jobs_orgs_and_org_on_a_global_job(ctx, registry, make_member):
    make_member("alpha", "owner")
    register_job("global", lambda now: "all", seconds=5, description="no per-org mode")
    register_job("per-org", lambda now, org_id=None: f"org {org_id}", seconds=5, description="per org",
                 per_org=True)
    with pytest.raises(JobError, match="No job 'nope'. Jobs: global, per-org"):
        scheduler.run_job("nope", now=T0)
    with pytest.raises(JobError, match="has no per-org mode"):
        scheduler.run_job("global", now=T0, org_slug="alpha")
    with pytest.raises(JobError, match="No org 'ghost'"):
        scheduler.run_job("per-org", now=T0, org_slug="ghost")
    assert runs() == []
    from zentro.accounts.service import get_org

    run = scheduler.run_job("per-org", now=T0, org_slug="alpha")
    assert (run.trigger, run.status, run.detail) == ("cli", "ok", f"org {get_org('alpha').id}")


def test_register_job_checks_its_trigger(registry):
    with pytest.raises(ValueError, match="exactly one"):
        register_job("x", lambda now: "", description="neither")
    with pytest.raises(ValueError, match="exactly one"):
        register_job("x", lambda now: "", cron="* * * * *", seconds=5, description="both")
    with pytest.raises(ValueError, match="Invalid cron"):
        register_job("x", lambda now: "", cron="61 * * * *", description="bad")
    assert registry == {}


def test_a_new_leader_marks_runs_the_crashed_one_left_running_as_failed(ctx):
    db.session.add_all([JobRun(job="outbox", holder="crashed", trigger="schedule", status="running", started_at=T0),
                        JobRun(job="retention", holder="operator", trigger="cli", status="running", started_at=T0),
                        JobRun(job="outbox", holder="me", trigger="schedule", status="running", started_at=T0)])
    db.session.commit()
    assert scheduler.abandon_runs("me", at(40)) == 1
    by = {(r.holder, r.trigger): r for r in runs()}
    assert by[("crashed", "schedule")].status == "failed" and "interrupted" in by[("crashed", "schedule")].detail
    assert by[("operator", "cli")].status == "running"  # a CLI run in another process is its own
    assert by[("me", "schedule")].status == "running"


def test_prune_keeps_each_jobs_newest_runs(ctx):
    for i in range(7):
        db.session.add(JobRun(job="outbox", status="ok", detail=str(i), started_at=at(i)))
    db.session.add(JobRun(job="retention", status="ok", started_at=T0))
    db.session.commit()
    assert scheduler.prune_job_runs(keep=3) == 4
    assert [(r.job, r.detail) for r in runs()] == [("outbox", "4"), ("outbox", "5"), ("outbox", "6"), ("retention", "")]


# --- cron ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cron,after,expected", [
    ("0 8 * * 1", T0, dt.datetime(2026, 3, 9, 8, 0, tzinfo=UTC)),   # 1 = Monday (standard cron, not APScheduler's)
    ("0 8 * * 0", T0, dt.datetime(2026, 3, 8, 8, 0, tzinfo=UTC)),   # 0 = Sunday
    ("0 8 * * 7", T0, dt.datetime(2026, 3, 8, 8, 0, tzinfo=UTC)),   # 7 = Sunday too
    ("0 8 * * 1-5", T0, dt.datetime(2026, 3, 6, 8, 0, tzinfo=UTC)),
    ("0 8 * * 5-7", T0, dt.datetime(2026, 3, 6, 8, 0, tzinfo=UTC)),
    ("0 8 * * mon", T0, dt.datetime(2026, 3, 9, 8, 0, tzinfo=UTC)),
    ("0 12 * * 4", T0, dt.datetime(2026, 3, 12, 12, 0, tzinfo=UTC)),  # strictly after: not T0 itself
    ("30 16 * * 5", T0, dt.datetime(2026, 3, 6, 16, 30, tzinfo=UTC)),
    ("0 8 1 1,4,7,10 *", T0, dt.datetime(2026, 4, 1, 8, 0, tzinfo=UTC)),
    ("*/15 * * * *", at(1), at(15 * 60)),
])
def test_next_cron_fire_uses_standard_cron_weekdays(cron, after, expected):
    assert scheduler.next_cron_fire(cron, after) == expected


@pytest.mark.parametrize("cron", ["", "   ", "* * * *", "* * * * * *", "61 * * * *", "0 25 * * *", "0 8 * * 8",
                                  "0 8 * * 5-2", "0 8 32 * *", "0 8 * 13 *", "every monday", "0 8 * * */0"])
def test_bad_cron_expressions_are_refused(cron):
    with pytest.raises(ValueError):
        scheduler.cron_trigger(cron)


@pytest.mark.parametrize("cron,text", [
    ("0 8 * * 1", "every Monday 08:00 UTC"),
    ("0 8 * * *", "daily 08:00 UTC"),
    ("30 7 * * 1-5", "weekdays 07:30 UTC"),
    ("0 9 * * 0,3", "every Sunday, Wednesday 09:00 UTC"),
    ("0 6 1 * *", "monthly on the 1st 06:00 UTC"),
    ("0 8 1 1,4,7,10 *", "quarterly on the 1st 08:00 UTC"),
    ("*/10 * * * *", "every 10 minutes"),
    ("5 * * * *", "hourly at :05"),
    ("0 8 1-7 * 1", "cron 0 8 1-7 * 1 UTC"),
])
def test_describe_cron(cron, text):
    assert scheduler.describe_cron(cron) == text


# --- starting and stopping -----------------------------------------------------------------------------

def _wait_for(predicate, timeout: float = 20.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached before the deadline")


def test_a_started_scheduler_leads_runs_its_jobs_and_releases_on_shutdown(app, registry):
    app.config["ZENTRO_SCHEDULER_LEASE_SECONDS"] = 3
    try:
        register_job("tick", lambda now: "ticked", seconds=1, description="every second")
        sched = scheduler.Scheduler(app, holder="test:1:tick").start()
        try:
            def ran():
                with app.app_context():
                    try:
                        return db.session.scalar(sa.select(JobRun).where(JobRun.job == "tick", JobRun.status == "ok"))
                    finally:
                        db.session.remove()

            run = _wait_for(ran)
            assert run.holder == "test:1:tick" and run.trigger == "schedule" and run.detail == "ticked"
            assert sched.is_leader
        finally:
            sched.shutdown()
        assert not sched.running
        with app.app_context():
            state = lease_state()
            assert state.holder == "test:1:tick" and not state.active
            db.session.remove()
    finally:
        app.config["ZENTRO_SCHEDULER_LEASE_SECONDS"] = 30


def test_create_app_starts_the_scheduler_only_when_asked(app, database_url, monkeypatch):
    from zentro.platform.scheduler import EXTENSION_KEY

    base = {"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True, "SECRET_KEY": "test-secret-key-not-for-production"}
    monkeypatch.setenv("ZENTRO_SCHEDULER", "1")  # the environment alone does not start it in tests
    monkeypatch.delenv("FLASK_RUN_FROM_CLI", raising=False)
    quiet = create_app(base)
    assert quiet.config["ZENTRO_SCHEDULER"] is True and EXTENSION_KEY not in quiet.extensions

    asked = create_app({**base, "ZENTRO_SCHEDULER": True})
    try:
        sched = asked.extensions[EXTENSION_KEY]
        assert sched.running and "digest:sla-reminders" in scheduler.JOBS and "outbox" in scheduler.JOBS
    finally:
        scheduler.stop(asked)
    assert not sched.running

    # under a `flask`/`zentro` command: not at start-up (db upgrade, jobs run), but when serving requests
    monkeypatch.setenv("FLASK_RUN_FROM_CLI", "true")
    served = create_app({**base, "ZENTRO_SCHEDULER": True})
    try:
        assert EXTENSION_KEY not in served.extensions
        served.test_client().get("/api/health")
        assert served.extensions[EXTENSION_KEY].running
    finally:
        scheduler.stop(served)
    for application in (quiet, asked, served):
        with application.app_context():
            db.engine.dispose()
