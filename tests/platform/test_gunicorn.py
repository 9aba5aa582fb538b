"""The repository's gunicorn configuration serves the app: two gthread workers on a migrated database answer the
health checks and API calls, each request gets its own X-Request-ID, and SIGTERM stops every worker. (A real
gunicorn master on 127.0.0.1, bounded in time.)"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    port = _free_port()
    env = {**os.environ, "ZENTRO_DATABASE_URL": f"sqlite:///{tmp_path / 'gunicorn.db'}",
           "ZENTRO_SECRET_KEY": "gunicorn-test-secret", "ZENTRO_STORAGE_DIR": str(tmp_path / "storage"),
           "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "2",
           "ZENTRO_SCHEDULER": "0"}
    subprocess.run([str(BIN / "zentro"), "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True,
                   timeout=120)
    proc = subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(base + "/api/health", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("gunicorn did not start:\n" + proc.stdout.read().decode(errors="replace")[-3000:])
        time.sleep(0.2)
    yield base, proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


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
