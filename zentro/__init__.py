"""Zentro: incident and compliance operations.

``create_app`` and the route discovery live in ``zentro.app`` and are loaded on first use, so importing a
light subpackage (the ``zentro.client`` SDK) does not pull in Flask and the server."""
from __future__ import annotations

_APP_ATTRS = ("create_app", "import_blueprints", "route_modules")


def __getattr__(name: str):
    if name in _APP_ATTRS:
        from zentro import app

        return getattr(app, name)
    raise AttributeError(f"module 'zentro' has no attribute {name!r}")
