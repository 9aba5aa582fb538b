"""Shared fixtures: a migrated database per test session (SQLite file, or a fresh PostgreSQL
database when ZENTRO_TEST_DATABASE_URL points at a server), emptied between tests; factories for
orgs, users, sessions and keys; and a live server for browser, schema and load tests."""
from __future__ import annotations

import os
import re
import threading
import uuid
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from zentro import create_app
from zentro.extensions import db, limiter

PASSWORD = "correct horse battery staple"


def _postgres_database(server_url: str) -> tuple[str, callable]:
    """Create a throwaway database on the server in ZENTRO_TEST_DATABASE_URL; return (url, drop)."""
    url = sa.engine.make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"zentro_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    server = os.environ.get("ZENTRO_TEST_DATABASE_URL")
    if server:
        url, drop = _postgres_database(server)
        yield url
        drop()
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'zentro-test.db'}"


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory):
    from flask_migrate import upgrade

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    signing_key = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    application = create_app({
        "SQLALCHEMY_DATABASE_URI": database_url,
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "SERVER_NAME": None,
        # artifacts and the bundle-signing key stay out of instance/
        "ZENTRO_STORAGE_DIR": str(tmp_path_factory.mktemp("storage")),
        "ZENTRO_BUNDLE_SIGNING_KEY": signing_key,
    })
    with application.app_context():
        upgrade()
    yield application
    with application.app_context():
        db.engine.dispose()


def truncate_all(application) -> None:
    with application.app_context():
        db.session.remove()
        tables = [t.name for t in db.metadata.sorted_tables]
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
            else:
                for t in reversed(tables):
                    conn.execute(sa.text(f'DELETE FROM "{t}"'))


BACKGROUND_WORK = ("report-job-", "rca-run-")


def join_background_work(timeout: float = 60.0) -> None:
    """Wait for the report and RCA threads a test started (thread execution mode): one still writing while the
    next test truncates deadlocks on PostgreSQL (TRUNCATE's exclusive lock against the thread's row locks)."""
    for t in threading.enumerate():
        if t is not threading.current_thread() and t.name.startswith(BACKGROUND_WORK):
            t.join(timeout=timeout)


@pytest.fixture(autouse=True)
def _clean(request, app):
    join_background_work()
    truncate_all(app)
    with app.app_context():
        limiter.reset()
    yield


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield
        db.session.remove()


@dataclass
class Member:
    user_id: int
    org_id: int
    email: str
    org_slug: str
    role: str
    password: str = PASSWORD


@pytest.fixture
def make_member(app):
    """make_member(org_slug, role='owner', email=None, plan='free') -> Member (creates org/user as needed)."""
    from zentro.accounts import service

    def make(org_slug: str = "alpha", role: str = "owner", email: str | None = None, plan: str = "free") -> Member:
        email = email or f"{role}-{uuid.uuid4().hex[:6]}@{org_slug}.example"
        with app.app_context():
            org, _ = service.ensure_org(org_slug, plan=plan)
            user, _ = service.ensure_user(email, PASSWORD)
            service.set_membership(user, org, role)
            db.session.commit()
            member = Member(user.id, org.id, user.email, org.slug, role)
            db.session.remove()
        return member

    return make


def csrf_from(html: str) -> str:
    m = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in page"
    return m.group(1)


class SignedIn:
    """A test client signed in through the login form, carrying its CSRF token for unsafe calls."""

    def __init__(self, client, member: Member):
        self.client, self.member = client, member
        page = client.get("/login")
        resp = client.post("/login", data={"email": member.email, "password": member.password,
                                           "csrf_token": csrf_from(page.get_data(as_text=True))})
        assert resp.status_code == 302, resp.get_data(as_text=True)
        self.csrf = csrf_from(client.get("/settings/password").get_data(as_text=True))

    def _headers(self, headers):
        return {"X-CSRFToken": self.csrf, **(headers or {})}

    def get(self, url, **kw):
        return self.client.get(url, **kw)

    def post(self, url, headers=None, **kw):
        return self.client.post(url, headers=self._headers(headers), **kw)

    def delete(self, url, headers=None, **kw):
        return self.client.delete(url, headers=self._headers(headers), **kw)

    def patch(self, url, headers=None, **kw):
        return self.client.patch(url, headers=self._headers(headers), **kw)

    def put(self, url, headers=None, **kw):
        return self.client.put(url, headers=self._headers(headers), **kw)

    def open(self, url, method="GET", headers=None, **kw):
        return self.client.open(url, method=method, headers=self._headers(headers), **kw)


@pytest.fixture
def sign_in(app):
    def make(member: Member) -> SignedIn:
        return SignedIn(app.test_client(), member)

    return make


@pytest.fixture
def make_api_key(app):
    """make_api_key(member, scopes=None) -> plaintext key."""
    from zentro.accounts import service
    from zentro.accounts.models import Org, User
    from zentro.audit.service import SYSTEM

    def make(member: Member, scopes: list[str] | None = None, name: str = "test key") -> str:
        with app.app_context():
            _, plaintext = service.create_api_key(db.session.get(Org, member.org_id), db.session.get(User, member.user_id),
                                                  name, scopes, SYSTEM)
            db.session.remove()
        return plaintext

    return make


@pytest.fixture
def make_ingest_token(app):
    from zentro.accounts import service
    from zentro.accounts.models import Org
    from zentro.audit.service import SYSTEM

    def make(member: Member, name: str = "test source") -> str:
        with app.app_context():
            _, plaintext = service.create_ingest_token(db.session.get(Org, member.org_id), name, SYSTEM, None)
            db.session.remove()
        return plaintext

    return make


class LiveServer:
    def __init__(self, application):
        self._server = make_server("127.0.0.1", 0, application, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture
def live_server(app):
    server = LiveServer(app)
    yield server
    server.stop()


# --- browser (Debian's Chromium driven by Playwright; no browser download) -------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _unavailable(reason: str) -> None:
    if os.environ.get("ZENTRO_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (ZENTRO_REQUIRE_SERVICES=1, so this is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture
def browser():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` "
                     "(browsers are not downloaded by `playwright install`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed (pip install -e '.[test]')")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
