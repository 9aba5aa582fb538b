"""The soak harness (bench/soak.py): its memory-trend arithmetic, and a short run of the real thing.

The 10-minute soak itself is part of `make bench` (bench/RESULTS.md); here a 20-second run with two workers keeps
the harness honest: every request kind answers what it should, no 5xx, the scheduler leads and drains the webhook
outbox to the loopback receiver, rate limits are counted in Redis. A 20-second run says nothing about memory
growth (the workers are still warming up), so the short run does not judge the trend.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import soak  # noqa: E402


def test_slope_is_mib_per_ten_minutes():
    # 1 MiB (1024 KiB) more every minute: 10 MiB per 10 minutes
    points = [(60.0 * i, 150_000 + 1024.0 * i) for i in range(6)]
    assert soak.slope_mib_per_10min(points) == pytest.approx(10.0)
    assert soak.slope_mib_per_10min([(0, 1), (60, 1), (120, 1)]) == pytest.approx(0.0)
    assert soak.slope_mib_per_10min([(0, 1), (60, 2)]) is None  # too few points to call a trend


def test_a_short_run_covers_every_kind():
    """Six clients each sending 17 requests cover the whole cycle: the short run below relies on it."""
    cycle = soak.schedule()
    assert len(cycle) == sum(w for _, w in soak.MIX)
    covered = {cycle[(i * len(cycle) // 6 + n) % len(cycle)] for i in range(6) for n in range(17)}
    assert covered == {k for k, _ in soak.MIX}


def test_memory_trend_ignores_warm_up_and_short_lived_workers():
    samples = [{"t": t, "workers_rss_kib": {"11": 100_000 + (50_000 if t < 100 else 0) + t,
                                            **({"12": 90_000} if t == 300 else {})}}
               for t in range(0, 401, 50)]
    trend = soak.memory_trend(samples, warmup=100)
    assert set(trend) == {"11"}  # 12 was seen once: no trend to speak of
    assert trend["11"]["samples"] == 7  # t = 100 … 400
    assert trend["11"]["slope_mib_per_10min"] == pytest.approx(600 / 1024, abs=0.01)  # 1 KiB a second
    assert trend["11"]["first_mib"] == pytest.approx(100_100 / 1024, abs=0.1)


def test_quarter_slopes_tell_warm_up_from_a_leak():
    # "warm" grows 4, 2, 1, 0 KiB a second quarter after quarter; "leak" grows 1 KiB a second throughout
    rates = [4, 2, 1, 0]
    warm, kib = [], 100_000.0
    for t in range(0, 401, 10):
        warm.append(kib)
        kib += 10 * rates[min(t // 100, 3)]
    samples = [{"t": t, "workers_rss_kib": {"warm": w, "leak": 100_000 + t}} for t, w in zip(range(0, 401, 10), warm)]
    slopes = soak.quarter_slopes(samples, 400)
    assert slopes["leak"] == [pytest.approx(600 / 1024, abs=0.1)] * 4
    assert slopes["warm"][0] > slopes["warm"][1] > slopes["warm"][2] > slopes["warm"][3] == pytest.approx(0, abs=0.1)


def test_short_soak_on_postgresql(database_url, tmp_path):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: the soak runs several gunicorn workers on one PostgreSQL")
    out = tmp_path / "soak.json"
    env = {**os.environ, "ZENTRO_BENCH_POSTGRES_URL": database_url}
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--seconds", "20", "--workers", "2",
                        "--threads", "4", "--rate", "12", "--clients", "6", "--orgs", "2", "--incidents", "100",
                        "--sample", "4", "--max-slope", "1000000", "--json-out", str(out)],
                       env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.exists(), r.stdout[-3000:] + r.stderr[-3000:]
    result = json.loads(out.read_text())
    assert r.returncode == 0, (result["unexpected"], result["errors"], result["samples_5xx"], r.stderr[-3000:])
    assert result["5xx"] == 0 and result["transport_errors"] == 0 and result["429"] == 0
    assert result["unexpected"] == {}
    assert result["requests"] >= 150  # 12/s for 20 s, give or take the Poisson arrivals
    # every kind of the mix was exercised at least once and only answered what it should
    assert {k for k, v in result["kinds"].items() if v["requests"]} == {k for k, _ in soak.MIX}
    assert result["scheduler_leader_seen"] is True
    assert result["webhooks_received"] > 0  # the leader drained the outbox to the loopback receiver
    assert result["memory"]["workers_replaced"] is False
    assert len(result["memory"]["peak_rss_kib"]) == 2
    if os.environ.get("ZENTRO_REQUIRE_SERVICES") == "1":
        assert result["rate_limit_storage"] == "redis"
