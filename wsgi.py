"""WSGI entry point: ``gunicorn wsgi:app``. Refuses to start on a database schema behind head."""
from zentro import create_app
from zentro.platform.schema import schema_state

app = create_app()

with app.app_context():
    _state = schema_state()
    if not _state["schema_current"]:
        raise SystemExit(f"Database schema {_state['revision']} is not at migration head {_state['head']}: "
                         "run `zentro db upgrade` before starting Zentro.")
