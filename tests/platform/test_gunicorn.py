"""The repository's gunicorn configuration serves the app: two gthread workers on a migrated database answer the
health checks and API calls, each request gets its own X-Request-ID, and SIGTERM stops every worker. (A real
gunicorn master on 127.0.0.1, bounded in time.)"""
from __future__ import annotations

import signal
import subprocess

import pytest
import requests

from tests.platform.served import BIN, ROOT, Gunicorn, free_port, server_env


@pytest.fixture
def served(tmp_path):
    env = server_env(f"sqlite:///{tmp_path / 'gunicorn.db'}", tmp_path, free_port(), workers=2, threads=2)
    subprocess.run([str(BIN / "zentro"), "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True,
                   timeout=120)
    server = Gunicorn(env, tmp_path / "gunicorn.log")
    try:
        server.wait_ready()
        yield server.base, server.proc
    finally:
        server.stop()


def test_gunicorn_config_serves_zentro_with_several_workers(served):
    base, proc = served
    health = requests.get(base + "/api/health/db", timeout=10)
    assert health.status_code == 200 and health.json()["schema_current"] is True
    ids = {requests.get(base + "/api/health", timeout=10).headers["X-Request-ID"] for _ in range(6)}
    assert len(ids) == 6  # generated per request
    echoed = requests.get(base + "/api/health", headers={"X-Request-ID": "lb-trace-42"}, timeout=10)
    assert echoed.headers["X-Request-ID"] == "lb-trace-42"
    anonymous = requests.get(base + "/api/v1/incidents", timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error_code"] == "UNAUTHORIZED"

    workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(workers) == 2
    proc.send_signal(signal.SIGTERM)  # graceful stop: the master takes its workers down with it
    assert proc.wait(timeout=40) == 0
    assert subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split() == []
