"""The application factory: ``create_app`` wires config, extensions, blueprints (found by module name) and jobs."""
from __future__ import annotations

import logging
import os
import uuid

from flask import Flask, g, request, session
from werkzeug.routing import IntegerConverter

from zentro.config import ROOT, load_config
from zentro.extensions import csrf, db, limiter, login_manager, migrate
from zentro.platform import observability


class BoundedInt(IntegerConverter):
    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", 2_147_483_647)
        super().__init__(map, *args, **kwargs)


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"),
                instance_path=str(ROOT / "instance"))
    app.config.update(load_config(overrides))
    app.json.sort_keys = False
    app.url_map.converters["int"] = BoundedInt  # ids beyond INTEGER are a 404, not a database error
    hops = int(app.config.get("ZENTRO_PROXY_HOPS") or 0)
    if hops > 0:  # behind a load balancer: the client address and scheme come from its X-Forwarded-* headers
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    observability.init_app(app)  # JSON/text logging, then the first request hook (timer) and the last (metrics)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    _init_login(app)
    with app.app_context():
        from zentro.db_setup import configure_engine

        configure_engine(db.engine)

    from zentro.accounts import models as _accounts_models  # noqa: F401  (register tables)
    from zentro.audit import models as _audit_models  # noqa: F401
    from zentro.platform import models as _platform_models  # noqa: F401
    from zentro.reliability import models as _reliability_models  # noqa: F401
    from zentro.incidents import models as _incident_models  # noqa: F401
    from zentro.ingest import models as _ingest_models  # noqa: F401
    from zentro.compliance import models as _compliance_models  # noqa: F401
    from zentro.automations import models as _automation_models  # noqa: F401
    from zentro.copilot import models as _copilot_models  # noqa: F401
    from zentro.notify import models as _notify_models  # noqa: F401
    from zentro.billing import models as _billing_models  # noqa: F401
    from zentro.connectors import models as _connector_models  # noqa: F401

    # Order matters: the caller is identified before Flask-Limiter keys its counters on it.
    from zentro.platform.auth import check_csrf, resolve_request

    app.before_request(_request_id)
    app.before_request(resolve_request)
    app.after_request(_response_headers)  # after_request runs in reverse: this one sees the limiter's headers
    _init_limiter(app)
    app.before_request(check_csrf)  # after the limiter, so a refused request still carries the rate headers

    from zentro.platform.errors import register_error_handlers

    register_error_handlers(app)
    _register_blueprints(app)
    _template_globals(app)

    from zentro.cli import register_cli

    register_cli(app)
    _scheduler(app, overrides)
    return app


def _scheduler(app: Flask, overrides: dict | None) -> None:
    """Start the job scheduler when ``ZENTRO_SCHEDULER`` is on (never in tests unless they set it themselves).

    Under a ``flask``/``zentro`` command it is not started here: commands such as ``db upgrade`` or ``jobs run``
    must not lead the cluster for the moment they run. ``zentro run`` starts it when it serves (only in the
    reloader's child with ``--debug``, so it never runs twice); ``flask run`` starts it on the first request,
    which the reloader's watching parent never gets. gunicorn workers and ``wsgi:app`` start it right away.
    It stops, releasing leadership, at interpreter exit."""
    if not app.config.get("ZENTRO_SCHEDULER"):
        return
    if app.testing and not (overrides or {}).get("ZENTRO_SCHEDULER"):
        return
    from zentro import jobs
    from zentro.platform.scheduler import EXTENSION_KEY

    if os.environ.get("FLASK_RUN_FROM_CLI") == "true":
        def _start_on_first_request() -> None:
            if EXTENSION_KEY not in app.extensions:
                jobs.start(app)

        app.before_request(_start_on_first_request)
        return
    with app.app_context():
        from zentro.platform.schema import schema_state

        if not schema_state()["schema_current"]:
            logging.getLogger("zentro.scheduler").warning(
                "scheduler not started: the database schema is not at the migration head")
            return
    jobs.start(app)


def _init_login(app: Flask) -> None:
    from zentro.accounts import service
    from zentro.accounts.views import SESSION_TOKEN

    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.session_protection = None  # sessions are revocable rows; see accounts.models.LoginSession

    @login_manager.user_loader
    def _load(user_id: str):
        try:
            uid = int(user_id)
        except (TypeError, ValueError):
            return None
        found = service.session_user_memberships(uid, session.get(SESSION_TOKEN))
        if found is None:
            return None
        user, memberships = found
        g.session_memberships = (user.id, memberships)  # platform.auth._resolve takes them: no second query
        return user


def _init_limiter(app: Flask) -> None:
    limiter.init_app(app)


def _request_id() -> None:
    from zentro.audit.service import current_request_id

    incoming = request.headers.get("X-Request-ID", "")
    rid = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
    g.request_id = rid
    current_request_id.set(rid)


def _response_headers(response):
    response.headers["X-Request-ID"] = g.get("request_id", "")
    if response.status_code != 429:
        response.headers.pop("Retry-After", None)  # Flask-Limiter adds it to every limited response
    if response.status_code == 503 and g.get("retry_after"):
        response.headers["Retry-After"] = g.retry_after  # set by the error handler that answered 503
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if not request.path.startswith(("/docs", "/redoc")):
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                    "script-src 'self'; frame-ancestors 'none'")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def route_modules() -> list[str]:
    """Every module that defines routes: in each zentro package, ``views``, ``api`` and any module
    named ``*_views`` or ``*_api``. Discovered, so a new package's routes are registered (and fall
    under the OpenAPI document and the isolation harness) without editing a list."""
    import pkgutil

    import zentro

    names = []
    for pkg in sorted(m.name for m in pkgutil.iter_modules(zentro.__path__) if m.ispkg):
        path = [str(ROOT / "zentro" / pkg)]
        for mod in sorted(m.name for m in pkgutil.iter_modules(path)):
            if mod in ("views", "api") or mod.endswith(("_views", "_api")):
                names.append(f"zentro.{pkg}.{mod}")
    return names


def import_blueprints() -> list:
    import importlib

    return [importlib.import_module(name).bp for name in route_modules()]


def _register_blueprints(app: Flask) -> None:
    for bp in import_blueprints():
        app.register_blueprint(bp)


def _template_globals(app: Flask) -> None:
    from zentro.accounts.service import user_orgs
    from zentro.platform.auth import current_principal

    @app.context_processor
    def _inject():
        p = current_principal()
        return {
            "principal": p,
            "view_endpoints": app.view_functions,
            "user_orgs": (lambda: list(p.orgs)) if p is not None and p.orgs else (
                (lambda: user_orgs(p.user)) if p is not None and p.user is not None else (lambda: [])),
        }
