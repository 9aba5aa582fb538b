"""Outgoing HTTP with an address policy against server-side request forgery.

The host is resolved once and EVERY address it resolves to is checked: private, loopback,
link-local, multicast, reserved and unspecified addresses (IPv4-mapped IPv6 included) are refused
unless allowed (ZENTRO_WEBHOOK_ALLOW_PRIVATE for webhooks, ZENTRO_CONNECTORS_ALLOW_PRIVATE for the
robot, reasoning and OpenAI-compatible backends). The connection then goes to the checked address
itself (TLS still verifies the certificate for the host name), so a second DNS answer cannot
redirect it, and redirects are not followed.

* ``post_json``: one JSON POST for webhooks; never raises, reports what happened.
* ``guarded_client``: an httpx client (streaming, timeouts) whose every connection passes the same
  check at connect time; a refusal raises ``AddressRefused`` before any byte is sent.
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
from urllib.parse import urlsplit

import httpcore
import httpx

USER_AGENT = "Zentro-Webhook/1"
MAX_DETAIL = 500


def _allow_private_default() -> bool:
    try:
        from flask import current_app

        return bool(current_app.config.get("ZENTRO_WEBHOOK_ALLOW_PRIVATE"))
    except RuntimeError:  # no app context
        return False


def address_refusal(ip: str) -> str:
    """Why ``ip`` may not be called (empty when it may)."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for attr, label in (("is_unspecified", "unspecified"), ("is_loopback", "loopback"), ("is_link_local", "link-local"),
                        ("is_private", "private"), ("is_multicast", "multicast"), ("is_reserved", "reserved")):
        if getattr(addr, attr):
            return f"{addr} is a {label} address"
    if not addr.is_global:
        return f"{addr} is not a public address"
    return ""


class AddressRefused(Exception):
    """The host resolves to an address the outgoing-address policy refuses."""


def resolve_checked(host: str, port: int, *, allow_private: bool, setting: str) -> list[str]:
    """Every address ``host`` resolves to, after the policy check. Raises ``socket.gaierror`` /
    ``UnicodeError`` when it does not resolve, ``AddressRefused`` (naming ``setting``) when refused."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise socket.gaierror(f"cannot resolve {host}")
    if not allow_private:
        for ip in addresses:
            reason = address_refusal(ip)
            if reason:
                raise AddressRefused(f"refused: {host} resolves to {reason} (set {setting}=1 to allow)"[:MAX_DETAIL])
    return addresses


class _GuardedBackend(httpcore.SyncBackend):
    """httpcore's network backend, but a TCP connection goes only to an address that passed the check
    (the TLS layer above still uses the host name for SNI and certificate verification)."""

    def __init__(self, allow_private: bool, setting: str):
        self.allow_private, self.setting = allow_private, setting

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            addresses = resolve_checked(host, port, allow_private=self.allow_private, setting=self.setting)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        return super().connect_tcp(addresses[0], port, timeout, local_address, socket_options)


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport whose connection pool connects through ``_GuardedBackend``; no proxies from
    the environment (they would bypass the check)."""

    def __init__(self, *, allow_private: bool, setting: str = "ZENTRO_CONNECTORS_ALLOW_PRIVATE"):
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(trust_env=False),
                                             network_backend=_GuardedBackend(allow_private, setting))


def guarded_client(*, allow_private: bool, timeout: float, setting: str = "ZENTRO_CONNECTORS_ALLOW_PRIVATE") -> httpx.Client:
    """An httpx client for calls to configured backends: address policy, one timeout for connect, read,
    write and pool, no redirects, no environment proxies. Use it as a context manager."""
    return httpx.Client(transport=GuardedTransport(allow_private=allow_private, setting=setting),
                        timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False)


def check_base_url(url: str) -> str:
    """Why ``url`` cannot be called at all (empty when it can): http(s), a host, no credentials."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError as exc:
        return f"invalid URL: {exc}"[:MAX_DETAIL]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "refused: only http:// and https:// URLs with a host are allowed"
    if parts.username or parts.password:
        return "refused: credentials in the URL are not allowed"
    return ""


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, ip, timeout):
        super().__init__(host, port, timeout=timeout)
        self._ip = ip

    def connect(self):
        self.sock = socket.create_connection((self._ip, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, ip, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._ip = ip

    def connect(self):
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post_json(url: str, payload: dict | None, timeout: float = 5, *, allow_private: bool | None = None,
              body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[bool, int | None, str]:
    """POST ``payload`` as JSON to ``url``. Returns (ok, HTTP status or None, detail): ok only for a
    2xx answer. Never raises for network or policy failures; the detail says what happened.

    ``body`` sends those exact bytes instead of encoding ``payload`` (a signed webhook must send the bytes
    its signature covers); ``headers`` are added to the request (e.g. webhook-id/-timestamp/-signature)."""
    if allow_private is None:
        allow_private = _allow_private_default()
    refusal = check_base_url(url)
    if refusal:
        return False, None, refusal
    parts = urlsplit(url)
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve_checked(host, port, allow_private=allow_private, setting="ZENTRO_WEBHOOK_ALLOW_PRIVATE")
    except (socket.gaierror, UnicodeError) as exc:
        return False, None, f"cannot resolve {host}: {exc}"[:MAX_DETAIL]
    except AddressRefused as exc:
        return False, None, str(exc)
    if body is None:
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn_cls = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    conn = conn_cls(host, port, addresses[0], timeout)
    try:
        conn.request("POST", path, body=body, headers={
            "Content-Type": "application/json", "User-Agent": USER_AGENT, "Accept": "*/*", **(headers or {})})
        resp = conn.getresponse()
        resp.read(65536)
        status = resp.status
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        return False, None, f"{type(exc).__name__}: {exc}"[:MAX_DETAIL]
    finally:
        conn.close()
    if 200 <= status < 300:
        return True, status, f"HTTP {status}"
    if 300 <= status < 400:
        return False, status, f"HTTP {status}: redirects are not followed"
    return False, status, f"HTTP {status}"
