"""Outgoing webhooks: one JSON POST, with an address policy against server-side request forgery.

The host is resolved once and EVERY address it resolves to is checked: private, loopback,
link-local, multicast, reserved and unspecified addresses (IPv4-mapped IPv6 included) are refused
unless ZENTRO_WEBHOOK_ALLOW_PRIVATE is on. The connection then goes to the checked address itself
(TLS still verifies the certificate for the host name), so a second DNS answer cannot redirect it,
and redirects are not followed.
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
from urllib.parse import urlsplit

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


def post_json(url: str, payload: dict, timeout: float = 5, *, allow_private: bool | None = None) -> tuple[bool, int | None, str]:
    """POST ``payload`` as JSON to ``url``. Returns (ok, HTTP status or None, detail): ok only for a
    2xx answer. Never raises for network or policy failures; the detail says what happened."""
    if allow_private is None:
        allow_private = _allow_private_default()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return False, None, f"invalid URL: {exc}"[:MAX_DETAIL]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False, None, "refused: only http:// and https:// URLs with a host are allowed"
    if parts.username or parts.password:
        return False, None, "refused: credentials in the URL are not allowed"
    host = parts.hostname
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return False, None, f"cannot resolve {host}: {exc}"[:MAX_DETAIL]
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        return False, None, f"cannot resolve {host}"
    if not allow_private:
        for ip in addresses:
            reason = address_refusal(ip)
            if reason:
                return False, None, (f"refused: {host} resolves to {reason} "
                                     "(set ZENTRO_WEBHOOK_ALLOW_PRIVATE=1 to allow)")[:MAX_DETAIL]
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn_cls = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    conn = conn_cls(host, port, addresses[0], timeout)
    try:
        conn.request("POST", path, body=body, headers={
            "Content-Type": "application/json", "User-Agent": USER_AGENT, "Accept": "*/*"})
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
