def test_health_get_and_head(app):
    client = app.test_client()
    resp = client.get("/api/health")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["ok"] is True and body["service"] == "zentro" and body["uptime_seconds"] >= 0
    head = client.head("/api/health")
    assert head.status_code == 200 and head.get_data() == b""


def test_health_db_ready_at_head(app):
    body = app.test_client().get("/api/health/db").get_json()
    assert body["ok"] is True and body["schema_current"] is True and body["revision"] == body["head"]


def test_health_db_503_when_schema_behind(app, monkeypatch):
    from zentro.platform import views

    monkeypatch.setattr(views, "schema_state", lambda: {"database": True, "schema_current": False,
                                                         "revision": [], "head": ["0001_foundation"]})
    resp = app.test_client().get("/api/health/db")
    assert resp.status_code == 503
    assert resp.get_json()["error_code"] == "DATABASE_NOT_READY"
    assert "zentro db upgrade" in resp.get_json()["detail"]


def test_health_db_503_when_database_unreachable(app, monkeypatch):
    from zentro.extensions import db
    import sqlalchemy as sa

    broken = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    with app.app_context():
        monkeypatch.setattr(type(db), "engine", property(lambda self: broken))
        resp = app.test_client().get("/api/health/db")
    assert resp.status_code == 503
    assert resp.get_json()["detail"] == "Database unreachable"
