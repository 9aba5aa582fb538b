"""A real HTTP server on 127.0.0.1 for tests that talk to Slack, the robot and reasoning backends, an
OpenAI-compatible API or customer webhooks: no mocks of the client, the client's base URL points here.

    stub = StubServer()
    stub.route("POST", "/api/chat.postMessage", lambda req: (200, {"ok": True, "ts": "1.2"}))
    ... client calls stub.url + "/api/chat.postMessage" ...
    stub.calls  # every request: method, path, query, headers, body (bytes), json (or None)
    stub.stop()

A handler gets a ``StubRequest`` and returns (status, body) or (status, body, headers). ``body`` may be
a dict/list (sent as JSON), str, bytes, or an iterator of bytes (sent chunked, flushed per chunk, so
streaming clients can be tested). Unrouted requests answer 404. Routes match on method and path prefix
(longest prefix wins); ``"*"`` matches any method.
"""
from __future__ import annotations

import http.server
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class StubRequest:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    json: Any = None
    extra: dict = field(default_factory=dict)


class StubServer:
    def __init__(self):
        self.calls: list[StubRequest] = []
        self._routes: list[tuple[str, str, Callable]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = self._read_chunked()
                else:
                    body = self.rfile.read(length) if length else b""
                try:
                    parsed = json.loads(body) if body else None
                except ValueError:
                    parsed = None
                req = StubRequest(self.command, parts.path, parse_qs(parts.query), dict(self.headers), body, parsed)
                outer.calls.append(req)
                handler = outer._match(self.command, parts.path)
                result = handler(req) if handler else (404, {"error": "no stub route"})
                status, payload, headers = (result + ({},))[:3] if len(result) == 2 else result
                self._respond(status, payload, headers)

            def _read_chunked(self) -> bytes:
                out = b""
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()

            def _respond(self, status, payload, headers):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if isinstance(payload, (dict, list)):
                    payload = json.dumps(payload).encode()
                    if "Content-Type" not in headers:
                        self.send_header("Content-Type", "application/json")
                elif isinstance(payload, str):
                    payload = payload.encode()
                if isinstance(payload, (bytes, bytearray)):
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in payload:
                    if chunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def route(self, method: str, path_prefix: str, handler: Callable) -> "StubServer":
        self._routes.append((method.upper(), path_prefix, handler))
        return self

    def _match(self, method: str, path: str) -> Callable | None:
        best = None
        for m, prefix, handler in self._routes:
            if (m == "*" or m == method) and path.startswith(prefix):
                if best is None or len(prefix) > len(best[0]):
                    best = (prefix, handler)
        return best[1] if best else None

    def requests_to(self, path_prefix: str) -> list[StubRequest]:
        return [c for c in self.calls if c.path.startswith(path_prefix)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def stub_server():
    server = StubServer()
    yield server
    server.stop()
