"""The client against httpx.MockTransport: the envelope becomes the typed error for each status, retries on 429
(Retry-After honoured, in seconds or as an HTTP date) and 502/503/504 stop after max_retries, unsafe calls are
retried only with their one Idempotency-Key, connection errors, rate-limit headers, cursor pagination, and the
package importing nothing from the server."""
from __future__ import annotations

import ast
import email.utils
import json
import time
from pathlib import Path

import httpx
import pytest

from zentro import client as sdk
from zentro.client import Zentro, errors
from zentro.client._transport import backoff

BASE = "http://zentro.test"


def envelope(status: int, code: str, detail: str = "nope", headers: dict | None = None, **extra) -> httpx.Response:
    return httpx.Response(status, json={"error": code.lower(), "detail": detail, "error_code": code, **extra},
                          headers={"X-Request-ID": "req-1", **(headers or {})})


class Script:
    """A MockTransport handler answering the given responses in turn (the last repeats), recording requests."""

    def __init__(self, *responses):
        self.responses, self.requests = list(responses), []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.responses[min(len(self.requests) - 1, len(self.responses) - 1)]
        if isinstance(item, Exception):
            raise item
        return item(request) if callable(item) else item


def make(script: Script, **kw) -> tuple[Zentro, list[float]]:
    waits: list[float] = []
    kw.setdefault("api_key", "zentro_pk_test")
    return Zentro(BASE, transport=httpx.MockTransport(script), sleep=waits.append, **kw), waits


@pytest.mark.parametrize("status,code,cls", [
    (400, "VALIDATION_ERROR", errors.ValidationError),
    (401, "UNAUTHORIZED", errors.AuthenticationError),
    (402, "PAYMENT_REQUIRED", errors.PaymentRequiredError),
    (403, "FORBIDDEN", errors.PermissionDeniedError),
    (404, "NOT_FOUND", errors.NotFoundError),
    (409, "CONFLICT", errors.ConflictError),
    (410, "GONE", errors.GoneError),
    (413, "PAYLOAD_TOO_LARGE", errors.PayloadTooLargeError),
    (415, "UNSUPPORTED_MEDIA_TYPE", errors.UnsupportedMediaTypeError),
    (422, "IDEMPOTENCY_MISMATCH", errors.IdempotencyMismatchError),
    (429, "RATE_LIMIT_EXCEEDED", errors.RateLimitError),
    (500, "INTERNAL_ERROR", errors.ServerError),
    (503, "DATABASE_NOT_READY", errors.ServerError),  # unknown code: by status
])
def test_envelope_becomes_a_typed_error(status, code, cls):
    errs = [{"loc": ["title"], "msg": "Field required", "type": "missing"}]
    z, _ = make(Script(envelope(status, code, "Incident not found", errors=errs)), max_retries=0)
    with pytest.raises(cls) as info:
        z.incidents.get(7)
    e = info.value
    assert isinstance(e, errors.ZentroError)
    assert (e.status, e.error_code, e.detail, e.request_id, e.error) == (status, code, "Incident not found", "req-1",
                                                                         code.lower())
    assert e.errors == errs and e.response.status_code == status
    assert "Incident not found" in str(e) and "req-1" in str(e)


def test_code_wins_over_status_and_non_envelope_bodies_fall_back_on_status():
    z, _ = make(Script(envelope(400, "NOT_FOUND")), max_retries=0)
    with pytest.raises(errors.NotFoundError):
        z.incidents.get(1)
    z, _ = make(Script(httpx.Response(502, text="<html>Bad gateway</html>")), max_retries=0)
    with pytest.raises(errors.ServerError) as info:
        z.incidents.get(1)
    assert info.value.status == 502 and info.value.error_code is None and info.value.detail == "Bad Gateway"
    z, _ = make(Script(httpx.Response(418, json=["not", "an", "envelope"])), max_retries=0)
    with pytest.raises(errors.ZentroError) as info:
        z.incidents.get(1)
    assert type(info.value) is errors.ZentroError and info.value.status == 418


def test_429_waits_for_retry_after_and_stops_after_max_retries():
    limited = envelope(429, "RATE_LIMIT_EXCEEDED", headers={"Retry-After": "7", "X-RateLimit-Limit": "60",
                                                            "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000000"})
    script = Script(limited)
    z, waits = make(script, max_retries=3)
    with pytest.raises(errors.RateLimitError) as info:
        z.incidents.get(1)
    assert len(script.requests) == 4 and waits == [7.0, 7.0, 7.0]
    assert info.value.retry_after == 7.0
    assert z.last_rate_limit == sdk.RateLimit(60, 0, 1700000000)


def test_429_then_success_returns_the_answer_and_retry_after_may_be_an_http_date():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    script = Script(envelope(429, "RATE_LIMIT_EXCEEDED", headers={"Retry-After": when}),
                    httpx.Response(200, json={"id": 1, "title": "x"}, headers={"X-RateLimit-Remaining": "59"}))
    z, waits = make(script)
    assert z.incidents.get(1)["id"] == 1
    assert len(waits) == 1 and 27 <= waits[0] <= 30
    assert z.last_rate_limit.remaining == 59
    assert errors.parse_retry_after("garbage") is None and errors.parse_retry_after("-3") == 0.0


def test_503_is_retried_with_capped_exponential_backoff():
    script = Script(envelope(503, "SERVICE_UNAVAILABLE"), envelope(502, "ERROR"), envelope(504, "ERROR"),
                    httpx.Response(200, json={"id": 2}))
    z, waits = make(script)
    assert z.incidents.get(2) == {"id": 2}
    assert len(script.requests) == 4
    assert [0.25 <= waits[0] <= 0.5, 0.5 <= waits[1] <= 1.0, 1.0 <= waits[2] <= 2.0] == [True] * 3
    assert backoff(10, rand=lambda: 1.0) == 8.0 and backoff(10, rand=lambda: 0.0) == 4.0


def test_500_is_not_retried():
    script = Script(envelope(500, "INTERNAL_ERROR"))
    z, waits = make(script)
    with pytest.raises(errors.ServerError):
        z.incidents.get(1)
    assert len(script.requests) == 1 and waits == []


def test_post_reuses_one_idempotency_key_across_retries():
    script = Script(envelope(503, "SERVICE_UNAVAILABLE"), envelope(503, "SERVICE_UNAVAILABLE"),
                    httpx.Response(201, json={"id": 9, "title": "Down"}))
    z, _ = make(script)
    assert z.incidents.create("Down", severity="high")["id"] == 9
    keys = {r.headers["Idempotency-Key"] for r in script.requests}
    assert len(script.requests) == 3 and len(keys) == 1 and len(keys.pop()) == 36
    assert json.loads(script.requests[0].content) == {"title": "Down", "severity": "high"}
    # a caller's own key is sent as given; each call without one gets a fresh key
    script = Script(httpx.Response(201, json={"id": 1}))
    z, _ = make(script)
    z.incidents.create("A", idempotency_key="my-key")
    z.incidents.create("B")
    z.incidents.create("C")
    sent = [r.headers["Idempotency-Key"] for r in script.requests]
    assert sent[0] == "my-key" and len(set(sent)) == 3


def test_a_call_without_idempotency_key_is_not_retried_on_5xx_but_is_on_429():
    script = Script(envelope(503, "SERVICE_UNAVAILABLE"))
    z, waits = make(script, ingest_token="zentro_it_x")
    with pytest.raises(errors.ServerError):
        z.alerts.send({"title": "x"})
    assert len(script.requests) == 1 and waits == [] and "Idempotency-Key" not in script.requests[0].headers
    assert script.requests[0].headers["Authorization"] == "Bearer zentro_it_x"

    script = Script(envelope(429, "RATE_LIMIT_EXCEEDED", headers={"Retry-After": "1"}),
                    httpx.Response(202, json={"accepted": 1, "results": []}))
    z, waits = make(script, ingest_token="zentro_it_x")
    assert z.alerts.send({"title": "x"}, source="zentro")["accepted"] == 1
    assert waits == [1.0] and script.requests[1].url.params["source"] == "zentro"


def test_connection_errors_retry_idempotent_requests_then_raise():
    refused = httpx.ConnectError("connection refused")
    script = Script(refused, httpx.Response(200, json={"id": 3}))
    z, waits = make(script)
    assert z.incidents.get(3) == {"id": 3} and len(waits) == 1

    script = Script(refused)
    z, waits = make(script, max_retries=2)
    with pytest.raises(errors.ConnectionError) as info:
        z.webhooks.create("https://hooks.example.com/x", ["*"])  # keyed: retried
    assert len(script.requests) == 3 and info.value.status is None

    script = Script(httpx.ReadTimeout("slow"))
    z, waits = make(script, ingest_token="zentro_it_x")
    with pytest.raises(errors.TimeoutError):
        z.alerts.send({"title": "x"})  # no key: not retried
    assert len(script.requests) == 1 and waits == []


def test_auth_header_and_missing_credentials():
    script = Script(httpx.Response(200, json={"data": [], "next_cursor": None}))
    z, _ = make(script, user_agent="ci-bot/1")
    list(z.incidents.list())
    assert script.requests[0].headers["Authorization"] == "Bearer zentro_pk_test"
    assert script.requests[0].headers["User-Agent"] == "ci-bot/1"
    with pytest.raises(errors.AuthenticationError) as info:
        z.alerts.send({"title": "x"})  # no ingest token configured
    assert info.value.status is None and len(script.requests) == 1


def test_pagination_follows_cursors_to_the_end():
    pages = {None: ([1, 2], "c1"), "c1": ([3, 4], "c2"), "c2": ([5], None)}

    def handler(request):
        items, nxt = pages[request.url.params.get("cursor")]
        return httpx.Response(200, json={"data": [{"id": i} for i in items], "next_cursor": nxt})

    script = Script(handler)
    z, _ = make(script)
    page = z.incidents.list(status="active", limit=2)
    assert [i["id"] for i in page.data] == [1, 2] and page.next_cursor == "c1" and page.has_more
    assert len(script.requests) == 1  # the first page only, until iterated
    assert [i["id"] for i in page] == [1, 2, 3, 4, 5]
    assert [r.url.params.get("cursor") for r in script.requests[1:]] == ["c1", "c2"]
    assert all(r.url.params["status"] == "active" and r.url.params["limit"] == "2" for r in script.requests)
    assert [len(p.data) for p in page.pages()] == [2, 2, 1]
    assert "severity" not in script.requests[0].url.params  # unset filters are not sent


def test_downloads_by_media_type():
    script = Script(httpx.Response(200, text="# INC-1", headers={"Content-Type": "text/markdown; charset=utf-8"}),
                    httpx.Response(200, content=b"PK\x03\x04", headers={"Content-Type": "application/zip"}))
    z, _ = make(script)
    assert z.incidents.export_markdown(1) == "# INC-1"
    assert z.compliance.workbook(period_days=30) == b"PK\x03\x04"
    assert script.requests[1].url.params["periodDays"] == "30"


def test_wait_polls_until_finished_and_times_out_on_the_clients_clock():
    states = iter(["queued", "running", "succeeded"])
    script = Script(lambda request: httpx.Response(200, json={"id": 1, "status": next(states)}))
    now = [0.0]
    waits: list[float] = []

    def sleep(s):
        waits.append(s)
        now[0] += s

    z = Zentro(BASE, "zentro_pk_x", transport=httpx.MockTransport(script), sleep=sleep, clock=lambda: now[0])
    assert z.rca.wait(1, poll_interval=2)["status"] == "succeeded" and waits == [2, 2]
    script = Script(httpx.Response(200, json={"id": 1, "status": "running"}))
    z = Zentro(BASE, "zentro_pk_x", transport=httpx.MockTransport(script), sleep=sleep, clock=lambda: now[0])
    with pytest.raises(errors.TimeoutError):
        z.rca.wait(1, timeout=5, poll_interval=1)
    assert len(script.requests) == 6


def test_context_manager_closes_the_http_client():
    with make(Script(httpx.Response(200, json={})))[0] as z:
        pass
    assert z._transport.http.is_closed


def test_the_client_imports_only_httpx_and_the_standard_library():
    import sys

    allowed_third_party = {"httpx"}
    for path in Path(sdk.__file__).parent.glob("*.py"):
        assert path.stem not in ("api", "views") and not path.stem.endswith(("_api", "_views")), path
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                top = name.split(".")[0]
                if top == "zentro":
                    assert name.startswith("zentro.client"), f"{path.name} imports {name}"
                else:
                    assert top in sys.stdlib_module_names or top in allowed_third_party or top == "__future__", (
                        f"{path.name} imports {name}")


def test_importing_the_client_loads_neither_flask_nor_the_server():
    import subprocess
    import sys

    code = ("import sys, zentro.client\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'sqlalchemy', 'werkzeug')"
            " or (m.startswith('zentro.') and not m.startswith('zentro.client')))\n"
            "print(loaded)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
