"""Is the database reachable and at the migration head? Used by /api/health/db and at start-up."""
from __future__ import annotations

from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.config import Config
from sqlalchemy import text

from zentro.extensions import db

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "migrations"


def head_revisions() -> set[str]:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return set(ScriptDirectory.from_config(cfg).get_heads())


def schema_state() -> dict:
    """{"database": bool, "schema_current": bool, "revision": [...], "head": [...]}; never raises."""
    heads = head_revisions()
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = set(MigrationContext.configure(conn).get_current_heads())
    except Exception as exc:  # the point is to report, not to fail
        return {"database": False, "schema_current": False, "revision": [], "head": sorted(heads),
                "reason": exc.__class__.__name__}
    return {"database": True, "schema_current": current == heads, "revision": sorted(current), "head": sorted(heads)}
