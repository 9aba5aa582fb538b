"""Concurrent writers against a real server: a name is taken once, and two edges that would together
close a cycle cannot both be added (the org lock serialises the check and the insert)."""
from __future__ import annotations

import threading

import requests

from .helpers import add_service


def _race(live_server, key, requests_to_send):
    barrier = threading.Barrier(len(requests_to_send))
    out: list = [None] * len(requests_to_send)

    def send(i, path, body):
        with requests.Session() as s:
            barrier.wait(timeout=30)
            out[i] = s.post(live_server.url + path, json=body, timeout=60, headers={"Authorization": f"Bearer {key}"})

    threads = [threading.Thread(target=send, args=(i, p, b)) for i, (p, b) in enumerate(requests_to_send)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    return out


def test_concurrent_creates_of_one_name(live_server, owner, make_api_key, rows):
    key = make_api_key(owner)
    out = _race(live_server, key, [("/api/v1/services", {"name": f"Payments-{'API' if i % 2 else 'api'}"})
                                   for i in range(8)])
    assert sorted(r.status_code for r in out) == [201] + [409] * 7
    assert rows("services") == 1


def test_concurrent_edges_cannot_close_a_cycle(app, live_server, owner, make_api_key, rows):
    key = make_api_key(owner)
    pairs = []
    for i in range(4):
        a = add_service(app, owner.org_id, f"a{i}")
        b = add_service(app, owner.org_id, f"b{i}")
        pairs += [(f"/api/v1/services/{a}/dependencies", {"depends_on_id": b}),
                  (f"/api/v1/services/{b}/dependencies", {"depends_on_id": a})]
    out = _race(live_server, key, pairs)
    for i in range(0, len(out), 2):
        assert sorted((out[i].status_code, out[i + 1].status_code)) == [201, 409], (out[i].text, out[i + 1].text)
    assert rows("service_dependencies") == 4
