"""SLO arithmetic on known numbers, proration of samples across window edges (SQL and the in-memory
reference agree), windows derived from incidents, and the error-budget overview."""
from __future__ import annotations

import datetime as dt
import random

import pytest

from zentro.extensions import db
from zentro.incidents import service as incidents
from zentro.reliability import service, slo
from zentro.reliability.slo import Window

from .helpers import T0, TEST_ACTOR, add_samples, add_service

H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


def test_known_numbers_through_the_api(app, api, owner):
    """Target 99.9 %, 1,000,000 events, 500 bad → budget 1000, consumed 500, remaining 500 (50 %), burn 0.5."""
    from zentro.platform.types import utcnow

    sid = add_service(app, owner.org_id, "payments-api", slo_target=99.9)
    now = utcnow()
    add_samples(app, owner.org_id, sid, [(now - 3 * H, now - 2 * H, 999_500, 1_000_000)])
    body = api.get(f"/api/services/{sid}/slo").get_json()
    assert body["service"]["name"] == "payments-api" and body["target"] == 99.9
    assert body["error_budget_fraction"] == pytest.approx(0.001)
    windows = {w["window"]: w for w in body["windows"]}
    assert set(windows) == {"7d", "30d"}
    for w in windows.values():
        assert w["source"] == "sli" and w["unit"] == "events"
        assert (w["total"], w["good"], w["bad"]) == (1_000_000, 999_500, 500)
        assert (w["budget"], w["consumed"], w["remaining"]) == (1000, 500, 500)
        assert w["remaining_ratio"] == 0.5 and w["burn_rate"] == 0.5
    assert body["status"] == "ok"


def test_make_window_edge_cases():
    over = slo.make_window("7d", T0 - 7 * D, T0, "sli", 1000, 5, 99.9)
    assert over.budget == 1 and over.remaining == -4 and over.remaining_ratio == -4 and over.burn_rate == 5
    idle = slo.make_window("7d", T0 - 7 * D, T0, "sli", 0, 0, 99.9)
    assert idle.budget == 0 and idle.remaining_ratio == 1.0 and idle.burn_rate == 0
    assert slo.burn_rate(144, 10_000, 99.9) == 14.4  # exact despite binary floating point
    assert slo.make_window("7d", T0 - 7 * D, T0, "no_data", 0, 0, 99.9).total is None


def test_samples_are_prorated_across_window_edges(app, ctx, owner):
    sid = add_service(app, owner.org_id, "api")
    # 2 hours straddling the start of the 7-day window: half of it counts
    add_samples(app, owner.org_id, sid, [(T0 - 7 * D - H, T0 - 7 * D + H, 900, 1000),
                                          (T0 - 2 * H, T0 - H, 100, 100)])
    (seven, month), = [slo.sli_sums(owner.org_id, [sid], [(T0 - 7 * D, T0), (T0 - 30 * D, T0)])[sid]]
    assert seven == pytest.approx((600.0, 50.0, 2)) and month == pytest.approx((1100.0, 100.0, 2))
    assert slo.sli_sums(owner.org_id, [sid], [(T0 - 10 * D, T0 - 8 * D)]) == {}


def test_sql_sums_match_the_in_memory_reference(app, ctx, owner):
    rng = random.Random(7)
    sid = add_service(app, owner.org_id, "api")
    samples = []
    for _ in range(120):
        start = T0 - dt.timedelta(minutes=rng.randint(1, 60 * 24 * 35))
        end = start + dt.timedelta(minutes=rng.choice([1, 5, 60, 600, 2880]))
        total = rng.randint(0, 5000)
        samples.append((start, end, rng.randint(0, total), total))
    samples += [(T0 - dt.timedelta(minutes=7), T0 - dt.timedelta(minutes=2), 40, 50),  # crosses the 5m edge
                (T0 - dt.timedelta(minutes=2), T0, 7, 9)]
    add_samples(app, owner.org_id, sid, samples)
    ranges = [(T0 - span, T0) for span in slo.CHART_WINDOWS.values()] + [(T0 - 20 * D, T0 - 19 * D)]
    sql = [x for t, b, _ in slo.sli_sums(owner.org_id, [sid], ranges)[sid] for x in (t, b)]
    memory = [x for pair in slo.counts_from_samples(samples)(ranges) for x in pair]
    assert all(x > 0 for x in memory)
    assert sql == pytest.approx(memory, rel=1e-9, abs=1e-6)


def _incident(org_id, sid, severity, start, mitigated=None, resolved=None):
    inc = incidents.create_incident(org_id, title=f"{severity} incident", severity=severity, actor=TEST_ACTOR,
                                    service_id=sid, started_at=start, now=start)
    if mitigated:
        incidents.transition(inc, "mitigated", TEST_ACTOR, now=mitigated)
    if resolved:
        incidents.transition(inc, "resolved", TEST_ACTOR, now=resolved)
    db.session.commit()


def test_windows_without_sli_are_derived_from_incidents(app, ctx, owner):
    sid = add_service(app, owner.org_id, "auth", slo_target=99.9)
    org = owner.org_id
    _incident(org, sid, "critical", T0 - 3 * H, mitigated=T0 - 2 * H)  # 60 min
    _incident(org, sid, "high", T0 - 150 * dt.timedelta(minutes=1), resolved=T0 - 90 * dt.timedelta(minutes=1))  # +30 overlapping
    _incident(org, sid, "high", T0 - 30 * dt.timedelta(minutes=1))  # still open: 30 min until now
    _incident(org, sid, "low", T0 - 5 * H, resolved=T0 - 4 * H)  # low severity does not count
    _incident(org, sid, "critical", T0 - 10 * D, resolved=T0 - 9 * D)  # outside 7d, inside 30d: 1440 min
    report = service.slo_report(org, sid, now=T0)
    seven, month = report["windows"]
    assert seven["source"] == month["source"] == "derived_from_incidents" and seven["unit"] == "minutes"
    assert seven["total"] == 7 * 24 * 60 and seven["bad"] == 120
    assert seven["budget"] == pytest.approx(10.08) and seven["remaining"] == pytest.approx(10.08 - 120)
    assert month["bad"] == 120 + 1440 and month["total"] == 30 * 24 * 60
    assert "critical or high" in report["derivation"]
    assert report["status"] == "critical"  # the 30-day budget (43.2 min) is exhausted


def test_sli_wins_over_incidents_and_no_data(app, ctx, owner):
    org = owner.org_id
    measured = add_service(app, org, "measured")
    quiet = add_service(app, org, "quiet")
    _incident(org, measured, "critical", T0 - 2 * H, mitigated=T0 - H)
    add_samples(app, org, measured, [(T0 - 2 * H, T0 - H, 100, 100)])
    assert service.slo_report(org, measured, now=T0)["windows"][0]["source"] == "sli"
    report = service.slo_report(org, quiet, now=T0)
    assert report["status"] == "no_data"
    assert all(w["source"] == "no_data" and w["budget"] is None for w in report["windows"])


def _w(name, **kw):
    return Window(name, T0, T0, "sli", **kw)


@pytest.mark.parametrize("windows,expected", [
    ({"1h": _w("1h", burn_rate=14.4), "6h": _w("6h", burn_rate=1), "30d": _w("30d", bad=1, remaining=5, remaining_ratio=0.9)}, "critical"),
    ({"1h": _w("1h", burn_rate=14.39), "6h": _w("6h", burn_rate=1), "30d": _w("30d", bad=1, remaining=5, remaining_ratio=0.9)}, "warning"),
    ({"1h": _w("1h", burn_rate=0), "6h": _w("6h", burn_rate=0), "30d": _w("30d", bad=10, remaining=0, remaining_ratio=0)}, "critical"),
    ({"1h": _w("1h", burn_rate=0), "6h": _w("6h", burn_rate=6), "30d": _w("30d", bad=1, remaining=5, remaining_ratio=0.9)}, "warning"),
    ({"1h": _w("1h", burn_rate=0), "6h": _w("6h", burn_rate=5.99), "30d": _w("30d", bad=1, remaining=5, remaining_ratio=0.25)}, "ok"),
    ({"1h": _w("1h", burn_rate=0), "6h": _w("6h", burn_rate=0), "30d": _w("30d", bad=1, remaining=5, remaining_ratio=0.2499)}, "warning"),
])
def test_status_thresholds(windows, expected):
    assert slo.status_of(windows)[0] == expected


def test_error_budget_summary(app, api, owner):
    from zentro.platform.types import utcnow

    org = owner.org_id
    now = utcnow()
    hot = add_service(app, org, "hot")  # 20× over the last hour → critical
    low = add_service(app, org, "low")  # 80 % of the 30-day budget used → warning
    fine = add_service(app, org, "fine")  # 10 % used → ok
    add_service(app, org, "unknown")  # nothing → no_data
    add_samples(app, org, hot, [(now - H, now, 98_000, 100_000), (now - 10 * D, now - 9 * D, 1_900_000, 1_900_000)])
    add_samples(app, org, low, [(now - 5 * D, now - 4 * D, 999_200, 1_000_000)])
    add_samples(app, org, fine, [(now - 5 * D, now - 4 * D, 999_900, 1_000_000)])
    body = api.get("/api/overview/error-budget-summary").get_json()
    by = {r["name"]: r for r in body["services"]}
    assert [by[n]["status"] for n in ("hot", "low", "fine", "unknown")] == ["critical", "warning", "ok", "no_data"]
    assert by["hot"]["burn_rate_1h"] == 20 and "over 1h" in by["hot"]["reasons"][0]
    assert by["low"]["budget_used_30d"] == pytest.approx(0.8) and by["fine"]["budget_used_30d"] == pytest.approx(0.1)
    assert body["critical"] == 1 and body["warning"] == 1 and body["counts"]["no_data"] == 1
    assert body["services_with_data"] == 3
    # hot: 2000 bad of 2,000,000 → exactly its budget (used 1.0)
    assert body["average_budget_used"] == pytest.approx((1.0 + 0.8 + 0.1) / 3)
    assert [r["name"] for r in body["services"]][0] == "hot"  # worst first
