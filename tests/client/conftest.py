"""Clients for the SDK tests: ``sdk(key)`` talks to the app in-process (httpx.WSGITransport); waits are recorded,
never slept."""
from __future__ import annotations

import httpx
import pytest

from zentro.client import Zentro


@pytest.fixture
def waits():
    return []


@pytest.fixture
def sdk(app, waits):
    made = []

    def make(api_key: str | None = None, **kw) -> Zentro:
        kw.setdefault("sleep", waits.append)
        client = Zentro("http://zentro.local", api_key, transport=httpx.WSGITransport(app=app), **kw)
        made.append(client)
        return client

    yield make
    for c in made:
        c.close()
