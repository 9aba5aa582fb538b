"""Obligations derived from the registers: which rows become which duties, due when, owned by whom, how many
hours; the weekly views every obligation report shares; and nothing from another org."""
from __future__ import annotations

import datetime as dt

from zentro.compliance import obligations as obl

from tests.compliance import analytics_helpers as ah
from tests.compliance import engine_helpers as eh

NOW = dt.datetime(2026, 11, 4, 12, 0, tzinfo=dt.timezone.utc)  # a Wednesday
DAY = dt.timedelta(days=1)


def keyed(items):
    return {o.key: o for o in items}


def test_each_register_row_becomes_its_obligation(ctx, make_member):
    owner = make_member("acme", "owner", email="owner@acme.example")
    org = owner.org_id
    assigned = eh.attestation(org, "SOC2:CC6.1", due_at=NOW + 3 * DAY, owner_id=owner.user_id)
    attested = eh.attestation(org, "ISO27001:A.5.15", due_at=NOW - 40 * DAY, status="attested",
                              attested_at=NOW - 45 * DAY, valid_until=NOW + 50 * DAY)
    rejected = eh.attestation(org, "PCIDSS:8.3", due_at=NOW - 2 * DAY, status="rejected")
    v = eh.vendor(org, "Cloudy", ["SOC2:CC6.4", "ISO27001:A.7.2"], expires=NOW + 20 * DAY,
                  next_review_at=NOW + 9 * DAY)
    cp_open = ah.checkpoint(org, "Fieldwork starts", "SOC2", due_at=NOW + 14 * DAY, owner_id=owner.user_id)
    ah.checkpoint(org, "Kick-off", "SOC2", due_at=NOW - 20 * DAY, status="done", done_at=NOW - 21 * DAY)
    req = ah.evidence_request(org, "Q3 access reviews", ["SOC2:CC6.2", "HIPAA:164.308(a)(4)(i)"],
                              due_at=NOW + 5 * DAY)
    ah.evidence_request(org, "Old one", ["SOC2:CC6.2"], due_at=NOW - 5 * DAY, status="fulfilled",
                        fulfilled_at=NOW - 6 * DAY)
    ah.evidence_request(org, "Dropped", ["SOC2:CC6.2"], due_at=NOW + 5 * DAY, status="cancelled")
    ah.committee(org, bundle_cadence_days=0)

    items = keyed(obl.load(org, NOW))
    assert set(items) == {f"attestation:{assigned.id}", f"attestation-renewal:{attested.id}",
                          f"attestation:{rejected.id}", f"vendor-review:{v.id}", f"vendor-report:{v.id}",
                          f"checkpoint:{cp_open.id}", f"evidence-request:{req.id}"}
    a = items[f"attestation:{assigned.id}"]
    assert (a.kind, a.due_at, a.owner, a.frameworks, a.effort_hours, a.status) == \
        ("attestation", NOW + 3 * DAY, "owner@acme.example", ("SOC2",), 2.0, "open")
    assert a.url == f"/compliance/attestations/{assigned.id}"
    renewal = items[f"attestation-renewal:{attested.id}"]
    assert renewal.due_at == NOW + 50 * DAY and renewal.title == "Renew attestation of ISO27001:A.5.15"
    assert items[f"attestation:{rejected.id}"].overdue(NOW)
    review = items[f"vendor-review:{v.id}"]
    assert review.frameworks == ("SOC2", "ISO27001") and review.effort_hours == 4.0
    assert items[f"vendor-report:{v.id}"].due_at == NOW + 20 * DAY
    assert items[f"checkpoint:{cp_open.id}"].frameworks == ("SOC2",)
    r = items[f"evidence-request:{req.id}"]
    assert r.frameworks == ("SOC2", "HIPAA") and r.controls == ("SOC2:CC6.2", "HIPAA:164.308(a)(4)(i)")
    # sorted by due date
    dues = [o.due_at for o in obl.load(org, NOW)]
    assert dues == sorted(dues)


def test_completed_duties_come_back_with_include_done(ctx, make_member):
    org = make_member("acme", "owner").org_id
    attested = eh.attestation(org, "SOC2:CC6.1", due_at=NOW - 10 * DAY, status="attested",
                              attested_at=NOW - 12 * DAY, valid_until=NOW + 80 * DAY)
    cp = ah.checkpoint(org, "Kick-off", "SOC2", due_at=NOW - 20 * DAY, status="done", done_at=NOW - 21 * DAY)
    req = ah.evidence_request(org, "Old", ["SOC2:CC6.2"], due_at=NOW - 5 * DAY, status="fulfilled",
                              fulfilled_at=NOW - 6 * DAY)
    b = eh.bundle(org, 1, created_at=NOW - 3 * DAY)
    done = {o.key: o for o in obl.load(org, NOW, include_done=True) if o.status == "done"}
    assert set(done) == {f"attestation:{attested.id}", f"checkpoint:{cp.id}", f"evidence-request:{req.id}",
                         f"bundle-made:{b.id}"}
    assert done[f"attestation:{attested.id}"].completed_at == NOW - 12 * DAY
    assert done[f"evidence-request:{req.id}"].completed_at == NOW - 6 * DAY


def test_scheduled_bundles_follow_the_cadence_from_the_last_bundle(ctx, make_member):
    org = make_member("acme", "owner").org_id
    # never made one: the first is due now, then every 30 days up to the horizon
    first = [o for o in obl.load(org, NOW) if o.kind == "bundle"]
    assert first[0].due_at == NOW and first[1].due_at == NOW + 30 * DAY
    assert len(first) == obl.BUNDLE_HORIZON_DAYS // 30 + 1
    eh.bundle(org, 1, created_at=NOW - 10 * DAY)
    eh.bundle(org, 2, created_at=NOW - 100 * DAY)
    eh.bundle(org, 3, created_at=NOW - 1 * DAY, kind="workbook")  # workbooks are not the scheduled bundle
    nxt = [o for o in obl.load(org, NOW) if o.kind == "bundle"]
    assert nxt[0].due_at == NOW + 20 * DAY and nxt[0].key == f"bundle:{(NOW + 20 * DAY).date().isoformat()}"
    assert nxt[0].frameworks == () and nxt[0].effort_hours == 3.0
    ah.committee(org, bundle_cadence_days=7)
    assert [o.due_at for o in obl.load(org, NOW) if o.kind == "bundle"][:2] == [NOW - 3 * DAY, NOW + 4 * DAY]
    ah.committee(org, bundle_cadence_days=0)
    assert not [o for o in obl.load(org, NOW) if o.kind == "bundle"]


def test_effort_hours_come_from_the_committee_settings(ctx, make_member):
    org = make_member("acme", "owner").org_id
    other = make_member("other", "owner").org_id
    eh.attestation(org, "SOC2:CC6.1", due_at=NOW + DAY)
    ah.committee(org, effort_hours={"attestation": 5.5, "nonsense": 99}, bundle_cadence_days=0)
    config = obl.committee_config(org)
    assert config.stored and config.effort_hours["attestation"] == 5.5 and "nonsense" not in config.effort_hours
    assert config.effort_hours["checkpoint"] == obl.DEFAULT_EFFORT["checkpoint"]
    assert [o.effort_hours for o in obl.load(org, NOW)] == [5.5]
    assert not obl.committee_config(other).stored


def test_weekly_views(ctx, make_member):
    org = make_member("acme", "owner").org_id
    ah.committee(org, bundle_cadence_days=0, density_warn=2, density_critical=3)
    monday = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)
    eh.attestation(org, "SOC2:CC6.1", due_at=monday + 1 * DAY)
    eh.attestation(org, "SOC2:CC6.2", due_at=monday + 6 * DAY)  # Sunday: same week
    eh.attestation(org, "PCIDSS:8.3", due_at=monday + 7 * DAY)  # next Monday
    eh.attestation(org, "HIPAA:164.308(a)(4)(i)", due_at=monday - 1 * DAY)  # last week: outside the buckets
    items = obl.load(org, NOW)
    weeks = obl.weeks_from(NOW, 2)
    assert weeks == [dt.date(2026, 11, 2), dt.date(2026, 11, 9)]
    dens = obl.density(obl.in_weeks(items, weeks))
    assert dens == {dt.date(2026, 11, 2): (2, 4.0), dt.date(2026, 11, 9): (1, 2.0)}
    config = obl.committee_config(org)
    assert [obl.density_level(n, config) for n in (1, 2, 3)] == ["ok", "warn", "critical"]
    # what-if helpers
    later = [obl.shifted(o, 1) for o in items]
    assert obl.density(obl.in_weeks(later, weeks))[dt.date(2026, 11, 9)] == (2, 4.0)
    kept = obl.descoped(items, ["SOC2"])
    assert sorted(o.controls[0] for o in kept) == ["HIPAA:164.308(a)(4)(i)", "PCIDSS:8.3"]
    assert obl.kind_counts(items)["attestation"] == 4
    assert set(obl.by_owner(items)) == {"(unassigned)"}


def test_another_orgs_rows_never_appear(ctx, make_member):
    mine = make_member("acme", "owner").org_id
    theirs = make_member("globex", "owner").org_id
    eh.attestation(theirs, "SOC2:CC6.1", due_at=NOW + DAY)
    eh.vendor(theirs, "Cloudy", ["SOC2:CC6.4"], expires=NOW + DAY, next_review_at=NOW + DAY)
    ah.checkpoint(theirs, "Fieldwork", "SOC2", due_at=NOW + DAY)
    ah.evidence_request(theirs, "Theirs", ["SOC2:CC6.2"], due_at=NOW + DAY)
    eh.bundle(theirs, 1, created_at=NOW - DAY)
    ah.committee(mine, bundle_cadence_days=0)
    assert obl.load(mine, NOW, include_done=True) == []


def test_until_and_since_bound_what_is_read(ctx, make_member):
    org = make_member("acme", "owner").org_id
    ah.committee(org, bundle_cadence_days=30)
    soon = eh.attestation(org, "SOC2:CC6.1", due_at=NOW + 5 * DAY)
    eh.attestation(org, "SOC2:CC6.2", due_at=NOW + 50 * DAY)
    late_renewal = eh.attestation(org, "SOC2:CC6.3", due_at=NOW - 60 * DAY, status="attested",
                                  attested_at=NOW - 61 * DAY, valid_until=NOW + 90 * DAY)
    old_done = eh.attestation(org, "SOC2:CC6.6", due_at=NOW - 200 * DAY, status="attested",
                              attested_at=NOW - 200 * DAY, valid_until=NOW + 5 * DAY)
    v = eh.vendor(org, "Cloudy", ["SOC2:CC6.4"], expires=NOW + 100 * DAY, next_review_at=NOW + 3 * DAY)
    overdue = ah.evidence_request(org, "Late", ["SOC2:CC6.2"], due_at=NOW - 9 * DAY)
    until = NOW + 10 * DAY
    keys = {o.key for o in obl.load(org, NOW, until=until)}
    assert keys == {f"attestation:{soon.id}", f"attestation-renewal:{old_done.id}", f"vendor-review:{v.id}",
                    f"evidence-request:{overdue.id}", f"bundle:{NOW.date().isoformat()}"}
    done = {o.key for o in obl.load(org, NOW, until=until, include_done=True, since=NOW - 100 * DAY)
            if o.status == "done"}
    assert done == {f"attestation:{late_renewal.id}"}
    everything = {o.key for o in obl.load(org, NOW, include_done=True)}
    assert {f"attestation:{old_done.id}", f"attestation-renewal:{late_renewal.id}",
            f"vendor-report:{v.id}"} <= everything


def test_due_from_leaves_out_everything_due_before_it(ctx, make_member):
    org = make_member("acme", "owner").org_id
    ah.committee(org, bundle_cadence_days=30)
    soon = eh.attestation(org, "SOC2:CC6.1", due_at=NOW + 5 * DAY)
    early = eh.attestation(org, "SOC2:CC6.2", due_at=NOW - 20 * DAY)
    done_early = eh.attestation(org, "SOC2:CC6.3", due_at=NOW - 60 * DAY, status="attested",
                                attested_at=NOW - 61 * DAY, valid_until=NOW + 5 * DAY)
    done_late = eh.attestation(org, "SOC2:CC6.6", due_at=NOW - 2 * DAY, status="attested",
                               attested_at=NOW - 3 * DAY, valid_until=NOW + 300 * DAY)
    v = eh.vendor(org, "Cloudy", ["SOC2:CC6.4"], expires=NOW - 30 * DAY, next_review_at=NOW + 3 * DAY)
    overdue = ah.evidence_request(org, "Late", ["SOC2:CC6.2"], due_at=NOW - 9 * DAY)
    keys = {o.key for o in obl.load(org, NOW, include_done=True, until=NOW + 10 * DAY, due_from=NOW - 10 * DAY)}
    assert keys == {f"attestation:{soon.id}", f"attestation-renewal:{done_early.id}", f"attestation:{done_late.id}",
                    f"vendor-review:{v.id}", f"evidence-request:{overdue.id}", f"bundle:{NOW.date().isoformat()}"}
    assert f"attestation:{early.id}" in {o.key for o in obl.load(org, NOW)}
    later = {o.key for o in obl.load(org, NOW, include_done=True, due_from=NOW - 5 * DAY)}
    assert f"evidence-request:{overdue.id}" not in later and f"attestation:{done_late.id}" in later
