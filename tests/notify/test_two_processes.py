"""Two real app processes with the scheduler on, sharing one PostgreSQL database: every scheduled digest is
delivered exactly once (one DigestRun per digest, one webhook message per digest at a receiver on loopback), only
the leader runs jobs, and when the leader is killed (SIGKILL: no clean release) the other process takes the lease
over once it expires and carries on without sending anything twice.

PostgreSQL only: several processes writing one SQLite file is not how Zentro is deployed with more than one worker.
The processes run a tiny script (create_app + a WSGI server on 127.0.0.1) so they start in about a second.
"""
from __future__ import annotations

import collections
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.http_stub import StubServer
from zentro.extensions import db

ROOT = Path(__file__).resolve().parent.parent.parent
LEASE_SECONDS = 3
SCRIPT = '''
import os, signal, sys
from werkzeug.serving import make_server
from zentro import create_app

app = create_app()
sched = app.extensions["zentro_scheduler"]  # started by create_app: ZENTRO_SCHEDULER=1, not under the flask CLI
server = make_server("127.0.0.1", 0, app, threaded=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a clean stop runs atexit: the lease is released
with open(sys.argv[1] + ".tmp", "w") as fh:
    fh.write(f"{server.server_port} {sched.holder}")
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
server.serve_forever()
'''


def wait_for(what: str, predicate, timeout: float, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class AppProcess:
    def __init__(self, name: str, tmp: Path, env: dict):
        self.name = name
        self.ready_file = tmp / f"{name}.ready"
        self.log = tmp / f"{name}.log"
        script = tmp / "serve.py"
        script.write_text(SCRIPT)
        self.proc = subprocess.Popen([sys.executable, str(script), str(self.ready_file)], cwd=str(ROOT), env=env,
                                     stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        self.port = 0
        self.holder = ""

    def wait_ready(self, timeout: float = 60) -> "AppProcess":
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            return self.ready_file.exists()

        wait_for(f"{self.name} to start", ready, timeout)
        port, self.holder = self.ready_file.read_text().split(" ", 1)
        self.port = int(port)
        return self

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


def _lease(app):
    from zentro.platform.scheduler import lease_state

    with app.app_context():
        try:
            return lease_state()
        finally:
            db.session.remove()


def _scalars(app, query):
    with app.app_context():
        try:
            return db.session.execute(query).all()
        finally:
            db.session.remove()


@pytest.fixture
def receiver():
    stub = StubServer()
    stub.route("POST", "/hooks/zentro", lambda req: (200, {"ok": True}))
    yield stub
    stub.stop()


def test_two_processes_deliver_each_scheduled_digest_once_and_survive_the_leader_dying(
        app, database_url, receiver, tmp_path):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only (set ZENTRO_TEST_DATABASE_URL): several app processes share one PostgreSQL "
                    "database in production; one SQLite file is for a single process")
    from zentro.accounts.demo import seed_demo
    from zentro.accounts.service import get_org
    from zentro.audit.service import SYSTEM
    from zentro.compliance.digests import discover
    from zentro.notify import schedules, webhooks
    from zentro.notify.models import Delivery, DigestRun, DigestSchedule, OutboxMessage
    from zentro.platform.models import JobRun

    # --- the organisation: the demo data set, every digest enabled, a webhook endpoint for digest.* ----------
    app.config["ZENTRO_WEBHOOK_ALLOW_PRIVATE"] = True
    try:
        with app.app_context():
            list(seed_demo("long enough demo password"))
            org_id = get_org("acme").id
            webhooks.create_endpoint(org_id, url=f"{receiver.url}/hooks/zentro", events=["digest.*"], actor=SYSTEM)
            slugs = sorted(discover())
            for slug in slugs:
                offered = discover()[slug].channels
                schedules.update_schedule(org_id, slug, {"enabled": True, "channels": [c for c in offered if c != "slack"]
                                                         or list(offered)}, user_id=None, actor=SYSTEM)
            db.session.remove()
    finally:
        app.config["ZENTRO_WEBHOOK_ALLOW_PRIVATE"] = False

    env = {k: v for k, v in os.environ.items() if k not in ("FLASK_RUN_FROM_CLI", "WERKZEUG_RUN_MAIN")
           and not k.startswith("ZENTRO_")}
    env.update({
        "ZENTRO_DATABASE_URL": database_url, "ZENTRO_SECRET_KEY": app.config["SECRET_KEY"],
        "ZENTRO_SCHEDULER": "1", "ZENTRO_SCHEDULER_LEASE_SECONDS": str(LEASE_SECONDS),
        "ZENTRO_SCHEDULER_TICK_SECONDS": "1", "ZENTRO_WEBHOOK_ALLOW_PRIVATE": "1",
        "ZENTRO_STORAGE_DIR": str(tmp_path / "storage"), "ZENTRO_BUNDLE_SIGNING_KEY": app.config["ZENTRO_BUNDLE_SIGNING_KEY"],
        "ZENTRO_LOG_LEVEL": "INFO", "PYTHONPATH": str(ROOT),
    })
    procs = [AppProcess("one", tmp_path, env), AppProcess("two", tmp_path, env)]
    try:
        for p in procs:
            p.wait_ready()
        by_holder = {p.holder: p for p in procs}
        leader_holder = wait_for("a leader", lambda: (s := _lease(app)) and s.active and s.holder in by_holder
                                 and s.holder, 30)
        leader = by_holder[leader_holder]
        follower = next(p for p in procs if p is not leader)

        # --- both processes are up: make every schedule due at once -----------------------------------------
        with app.app_context():
            db.session.execute(sa.update(DigestSchedule).where(DigestSchedule.org_id == org_id)
                               .values(next_run_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)))
            db.session.commit()
            db.session.remove()

        def all_ran():
            rows = _scalars(app, sa.select(DigestSchedule.digest, DigestSchedule.last_run_at)
                            .where(DigestSchedule.org_id == org_id))
            return len(rows) == len(slugs) and all(r.last_run_at is not None for r in rows)

        wait_for("every digest's scheduled run", all_ran, 180)

        def webhooks_settled():
            pending = _scalars(app, sa.select(OutboxMessage.id).where(OutboxMessage.status == "pending"))
            return not pending

        wait_for("the outbox to deliver every webhook message", webhooks_settled, 60)

        runs = collections.Counter(r.digest for r in _scalars(app, sa.select(DigestRun.digest)
                                                                .where(DigestRun.org_id == org_id)))
        assert set(runs) == set(slugs), f"digests without a run: {set(slugs) - set(runs)}"
        assert all(n == 1 for n in runs.values()), runs

        hooked = sorted(r.source for r in _scalars(app, sa.select(Delivery.source).where(
            Delivery.org_id == org_id, Delivery.channel == "webhook", Delivery.run_id.is_not(None))))
        assert len(hooked) >= 3, f"too few digests reached the webhook channel to show anything: {hooked}"
        received = [c for c in receiver.requests_to("/hooks/zentro") if c.json]
        types = collections.Counter(c.json["type"] for c in received)
        assert types == collections.Counter(f"digest.{s}" for s in hooked), (types, hooked)
        assert all(n == 1 for n in types.values()), types
        assert len({c.headers.get("webhook-id") for c in received}) == len(received)
        assert all(c.headers.get("webhook-signature", "").startswith("v1,") for c in received)
        statuses = {r.status for r in _scalars(app, sa.select(Delivery.status).where(
            Delivery.org_id == org_id, Delivery.channel == "webhook"))}
        assert statuses == {"sent"}, statuses

        # one process at a time ran jobs: the leader (and should a stalled machine have moved the lease, never
        # two runs of one job at once in different processes)
        job_runs = _scalars(app, sa.select(JobRun.job, JobRun.holder, JobRun.started_at, JobRun.finished_at))
        assert {r.holder for r in job_runs} <= set(by_holder)
        assert any(r.holder == leader.holder for r in job_runs)
        for a in job_runs:
            for b in job_runs:
                if a.job == b.job and a.holder < b.holder:
                    a_end, b_end = a.finished_at or a.started_at, b.finished_at or b.started_at
                    assert a_end < b.started_at or b_end < a.started_at, f"{a} overlaps {b}"

        # --- the leader dies without releasing: the follower takes over after the lease expires -------------
        leader = by_holder[wait_for("the current leader", lambda: (s := _lease(app)) and s.active and s.holder, 30)]
        follower = next(p for p in procs if p is not leader)
        killed_at = time.monotonic()
        os.kill(leader.proc.pid, signal.SIGKILL)
        leader.proc.wait(timeout=15)
        wait_for("the follower to take the lease over",
                 lambda: (s := _lease(app)) and s.active and s.holder == follower.holder, 30)
        took = time.monotonic() - killed_at
        assert took <= LEASE_SECONDS + 10, took
        wait_for("the new leader to run a job", lambda: _scalars(app, sa.select(JobRun.id).where(
            JobRun.holder == follower.holder, JobRun.status == "ok")), 30)
        assert not _scalars(app, sa.select(JobRun.id).where(JobRun.holder == leader.holder,
                                                             JobRun.status == "running")), \
            "the dead leader's interrupted runs are marked failed by the new leader"
        again = collections.Counter(r.digest for r in _scalars(app, sa.select(DigestRun.digest)
                                                               .where(DigestRun.org_id == org_id)))
        assert again == runs, "nothing was delivered twice after the takeover"
        assert collections.Counter(c.json["type"] for c in receiver.requests_to("/hooks/zentro") if c.json) == types

        # --- a clean stop hands the lease back at once ---------------------------------------------------------
        follower.stop()
        assert follower.proc.returncode == 0, follower.tail()
        released = _lease(app)
        assert released.holder == follower.holder and not released.active
    except AssertionError:
        for p in procs:
            print(f"--- {p.name} (pid {p.proc.pid}) log tail ---\n{p.tail()}")
        raise
    finally:
        for p in procs:
            p.stop()
