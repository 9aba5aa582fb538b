"""Flask extensions, created unbound and initialised in ``create_app``."""
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


def _lazy(name: str):
    """Flask-Limiter wants callables at import time; the policy lives in platform.ratelimit."""

    def call(*args):
        from zentro.platform import ratelimit

        return getattr(ratelimit, name)(*args)

    call.__name__ = name
    return call


# One quota per org (per client address when anonymous) shared by every /api/ route, sized by plan.
limiter = Limiter(
    key_func=_lazy("rate_limit_key"),
    application_limits=[_lazy("plan_limit")],
    application_limits_exempt_when=_lazy("exempt"),
    request_identifier=_lazy("request_identifier"),
)
