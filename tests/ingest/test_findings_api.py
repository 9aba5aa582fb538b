"""GET /api/v1/findings (+ summary, by-source, one finding): what a security lead reads."""
from __future__ import annotations

import pytest

import ingest_payloads as P
from ingest_payloads import VULNS

LIST = "/api/v1/findings"


@pytest.fixture
def seeded(post, owner, add_service):
    """Seven findings across three scanners; one fixed."""
    checkout = add_service(owner, "checkout")
    batch = [
        P.qualys(38170, severity=5, title="OpenSSH regreSSHion"),                # critical open
        P.qualys(38171, severity=4, title="TLS 1.0 enabled"),                     # high open
        P.qualys(38172, severity=2, title="ICMP timestamp", status="Fixed"),      # low fixed
        P.tenable(156032, severity="critical"),                                   # critical open
        P.tenable(156033, severity=2, hostname="payments-api"),                   # medium open
        P.generic("lodash", severity="high", asset="checkout"),                   # high open, service checkout
        P.generic("banner", severity="info", asset="checkout", title="Server banner disclosed"),  # info open
    ]
    resp = post(VULNS, {"findings": batch})
    assert resp.status_code == 202, resp.get_data(as_text=True)
    return {"ids": [r["finding_id"] for r in resp.get_json()["results"]], "checkout": checkout}


@pytest.fixture
def key(owner, make_api_key):
    return make_api_key(owner, ["findings:read"])


@pytest.fixture
def get(app, key):
    client = app.test_client()

    def fetch(url, token=key):
        return client.get(url, headers={"Authorization": f"Bearer {token}"} if token else {})

    return fetch


def test_list_newest_first_and_paginates_without_repeats(seeded, get):
    first = get(f"{LIST}?limit=3").get_json()
    assert [f["id"] for f in first["data"]] == sorted(seeded["ids"], reverse=True)[:3]
    seen = [f["id"] for f in first["data"]]
    cursor = first["next_cursor"]
    while cursor:
        page = get(f"{LIST}?limit=3&cursor={cursor}").get_json()
        seen += [f["id"] for f in page["data"]]
        cursor = page["next_cursor"]
    assert seen == sorted(seeded["ids"], reverse=True)


@pytest.mark.parametrize("query,expected", [
    ("severity=critical", 2), ("status=fixed", 1), ("status=open", 6), ("source=qualys", 3),
    ("source=tenable&severity=medium", 1), ("q=tls", 1), ("q=CVE-2021-44228", 2), ("q=100%25", 0),
])
def test_filters(seeded, get, query, expected):
    resp = get(f"{LIST}?{query}")
    assert resp.status_code == 200
    assert len(resp.get_json()["data"]) == expected


def test_filter_by_service(seeded, get):
    data = get(f"{LIST}?service_id={seeded['checkout']}").get_json()["data"]
    assert {f["finding_key"] for f in data} == {"lodash", "banner"}


@pytest.mark.parametrize("query", ["severity=sev1", "status=closed", "source=nessus", "limit=0", "service_id=-1",
                                   "cursor=nope"])
def test_bad_filters_are_400(seeded, get, query):
    resp = get(f"{LIST}?{query}")
    assert resp.status_code == 400 and resp.get_json()["error_code"] == "VALIDATION_ERROR"


def test_summary_counts_open_and_total_by_severity(seeded, get):
    body = get(f"{LIST}/summary").get_json()
    assert body["by_severity"] == {"critical": {"open": 2, "total": 2}, "high": {"open": 2, "total": 2},
                                   "medium": {"open": 1, "total": 1}, "low": {"open": 0, "total": 1},
                                   "info": {"open": 1, "total": 1}}
    assert (body["open"], body["total"]) == (6, 7)


def test_by_source(seeded, get):
    data = {row["source"]: row for row in get(f"{LIST}/by-source").get_json()["data"]}
    assert set(data) == {"generic", "qualys", "tenable"}
    assert (data["qualys"]["open"], data["qualys"]["total"]) == (2, 3)
    assert data["qualys"]["open_by_severity"] == {"critical": 1, "high": 1, "medium": 0, "low": 0, "info": 0}
    assert data["tenable"]["open_by_severity"]["medium"] == 1


def test_one_finding(seeded, get):
    fid = seeded["ids"][3]
    body = get(f"{LIST}/{fid}").get_json()
    assert body["id"] == fid and body["source"] == "tenable" and body["cve"] == "CVE-2021-44228"
    assert body["incident_id"] is not None and body["cvss"] == 10.0
    assert get(f"{LIST}/999999").status_code == 404


def test_empty_org_summary_is_zeroes(owner, get):
    body = get(f"{LIST}/summary").get_json()
    assert body["open"] == 0 and body["total"] == 0 and body["by_severity"]["critical"] == {"open": 0, "total": 0}


def test_scopes_and_tokens(seeded, owner, get, make_api_key, token, sign_in):
    assert get(LIST, token=make_api_key(owner, ["incidents:read"])).status_code == 403
    assert get(LIST, token=token).status_code == 403  # ingest tokens only feed data in
    assert get(LIST, token=None).status_code == 401
    assert sign_in(owner).get(f"{LIST}/summary").get_json()["total"] == 7


def test_other_orgs_see_none_of_these(seeded, get, make_member, make_api_key):
    other = make_api_key(make_member("globex", "owner", plan="enterprise"))
    assert get(LIST, token=other).get_json()["data"] == []
    assert get(f"{LIST}/summary", token=other).get_json()["total"] == 0
    assert get(f"{LIST}/{seeded['ids'][0]}", token=other).status_code == 404
