"""Multiwindow burn-rate rules: the pure evaluator at and around its thresholds (injected ``now``), and
the alerting path that runs when SLI samples are posted: one incident per rule through the dedupe
path, folded into while it is active."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from zentro.extensions import db
from zentro.incidents import service as incidents
from zentro.incidents.models import Incident, TimelineEvent
from zentro.platform.types import utcnow
from zentro.reliability import slo

from .helpers import T0, TEST_ACTOR, add_service, iso

M = dt.timedelta(minutes=1)
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


def burns(**by_window: float):
    """A counts function giving each window (by its length, e.g. w1h=14.4) that burn rate at target 99.9 %
    (1,000,000 events, burn × 1000 bad); unnamed windows burn 0."""
    rates = {k[1:]: v for k, v in by_window.items()}

    def counts(ranges):
        return [(1_000_000.0, rates.get(slo.label(end - start), 0) * 1000.0) for start, end in ranges]

    return counts


def fired(results):
    return {r.rule for r in results if r.fired}


@pytest.mark.parametrize("windows,expected", [
    ({"w1h": 14.4, "w5m": 14.4}, {"page-1h"}),
    ({"w1h": 14.39, "w5m": 50}, set()),
    ({"w1h": 50, "w5m": 14.39}, set()),  # the short window says it has stopped: no page
    ({"w6h": 6, "w30m": 6}, {"page-6h"}),
    ({"w6h": 5.999, "w30m": 6}, set()),
    ({"w3d": 1, "w6h": 1}, {"ticket-3d"}),
    ({"w3d": 0.99, "w6h": 3}, set()),
    ({"w1h": 20, "w5m": 20, "w6h": 7, "w30m": 9, "w3d": 1.2}, {"page-1h", "page-6h", "ticket-3d"}),
])
def test_evaluate_burn_thresholds(windows, expected):
    results = slo.evaluate_burn(99.9, burns(**windows), T0)
    assert fired(results) == expected
    by = {r.rule: r for r in results}
    assert (by["page-1h"].severity, by["page-6h"].severity, by["ticket-3d"].severity) == ("critical", "critical", "medium")
    assert (by["page-1h"].long_window, by["page-1h"].short_window) == ("1h", "5m")


def test_evaluate_burn_asks_for_windows_ending_at_now():
    asked = []

    def counts(ranges):
        asked.extend(ranges)
        return [(0.0, 0.0)] * len(ranges)

    results = slo.evaluate_burn(99.9, counts, T0)
    assert not fired(results) and all(r.long_burn == 0 for r in results)  # no events: nothing burns
    assert {end for _, end in asked} == {T0}
    assert sorted({end - start for start, end in asked}) == [5 * M, 30 * M, H, 6 * H, 3 * D]


def test_evaluate_burn_on_samples_with_injected_now():
    """A 2 % error rate (20× at 99.9 %) for the last hour after three good days pages on the 1h rule only;
    ten minutes after it stopped, the 5-minute window is clean and nothing fires."""
    good_days = [(T0 - 3 * D + i * H, T0 - 3 * D + (i + 1) * H, 100_000, 100_000) for i in range(71)]
    bad_hour = [(T0 - H, T0, 98_000, 100_000)]
    counts = slo.counts_from_samples(good_days + bad_hour)
    assert fired(slo.evaluate_burn(99.9, counts, T0)) == {"page-1h"}
    assert fired(slo.evaluate_burn(99.9, counts, T0 + 10 * M)) == set()


def _history(now):
    """71 good hours before the last hour, as API samples."""
    return [{"window_start": iso(now - 72 * H + i * H), "window_end": iso(now - 71 * H + i * H), "good": 100_000,
             "total": 100_000} for i in range(71)]


def test_posting_a_burn_opens_one_incident_and_folds_repeats(app, api, owner, rows):
    sid = add_service(app, owner.org_id, "checkout", slo_target=99.9)
    now = utcnow().replace(microsecond=0)
    quiet = api.post(f"/api/v1/services/{sid}/sli", json={"samples": _history(now - H)})
    assert quiet.status_code == 201 and quiet.get_json()["incidents"] == []

    burn = {"window_start": iso(now - H), "window_end": iso(now), "good": 98_000, "total": 100_000}  # 20×
    first = api.post(f"/api/v1/services/{sid}/sli", json=burn).get_json()
    assert [(i["rule"], i["created"], i["severity"]) for i in first["incidents"]] == [("page-1h", True, "critical")]
    page = {r["rule"]: r for r in first["rules"]}["page-1h"]
    assert page["fired"] and page["long_burn"] == pytest.approx(20) and page["short_burn"] == pytest.approx(20)

    later = {"window_start": iso(now - 2 * M), "window_end": iso(now), "good": 9_700, "total": 10_000}  # 30× now
    second = api.post(f"/api/v1/services/{sid}/sli", json=later).get_json()
    assert [(i["rule"], i["created"]) for i in second["incidents"]] == [("page-1h", False)]
    assert second["incidents"][0]["incident_id"] == first["incidents"][0]["incident_id"]
    assert rows("incidents") == 1
    with app.app_context():
        inc = db.session.scalar(select(Incident))
        assert inc.dedupe_key == f"slo-burn:{sid}:page-1h" and inc.source == "slo" and inc.service_id == sid
        assert inc.severity == "critical" and inc.alert_count == 2
        assert inc.title.startswith("checkout: SLO burn page-1h: 20.0× over 1h and 20.0× over 5m (threshold 14.4×)")
        alerts = db.session.scalars(select(TimelineEvent.body).where(TimelineEvent.kind == "alert")).all()
        assert len(alerts) == 2 and "checkout (SLO 99.9 %)" in alerts[-1]
        # resolved: the next burn opens a new incident rather than reopening the old one
        incidents.transition(inc, "resolved", TEST_ACTOR)
        db.session.commit()
    third = api.post(f"/api/v1/services/{sid}/sli", json={
        "window_start": iso(now - M), "window_end": iso(now), "good": 900, "total": 1000}).get_json()
    assert [(i["rule"], i["created"]) for i in third["incidents"]] == [("page-1h", True)]
    assert rows("incidents") == 2


def test_burn_just_below_the_threshold_opens_nothing(app, api, owner, rows):
    sid = add_service(app, owner.org_id, "checkout", slo_target=99.9)
    now = utcnow().replace(microsecond=0)
    api.post(f"/api/v1/services/{sid}/sli", json={"samples": _history(now - H)})
    # 1.43 % errors = 14.3×: below the 14.4× page; the 6h window averages far below 6×
    body = api.post(f"/api/v1/services/{sid}/sli", json={"window_start": iso(now - H), "window_end": iso(now),
                                                          "good": 98_570, "total": 100_000}).get_json()
    assert body["incidents"] == [] and not any(r["fired"] for r in body["rules"])
    assert rows("incidents") == 0


def test_ticket_rule_opens_a_medium_incident(app, api, owner, rows):
    sid = add_service(app, owner.org_id, "reports", slo_target=99.0)
    now = utcnow().replace(microsecond=0)
    # 1.5 % errors for 3 days at a 99 % SLO: 1.5× everywhere, below the page rules, above the ticket rule
    samples = [{"window_start": iso(now - 72 * H + i * H), "window_end": iso(now - 71 * H + i * H), "good": 98_500,
                "total": 100_000} for i in range(72)]
    body = api.post(f"/api/v1/services/{sid}/sli", json={"samples": samples}).get_json()
    assert [(i["rule"], i["severity"]) for i in body["incidents"]] == [("ticket-3d", "medium")]


def test_samples_are_stored_even_when_alerting_reads_them(app, ctx, owner):
    """The rules read the samples of the same request (they are flushed before evaluation)."""
    from zentro.reliability import service
    from zentro.reliability.schemas import SliSampleIn

    sid = add_service(app, owner.org_id, "api", slo_target=99.9)
    now = T0
    result = service.record_sli(owner.org_id, sid, [SliSampleIn(window_start=now - H, window_end=now, good=0,
                                                                total=1000)], TEST_ACTOR, now=now)
    assert result.stored == 1 and {i["rule"] for i in result.incidents} == {"page-1h", "page-6h", "ticket-3d"}
