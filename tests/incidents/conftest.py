"""Fixtures shared by the incident tests."""
from __future__ import annotations

import pytest

from zentro.incidents import rca

from .rca_helpers import Stepper


@pytest.fixture
def use_executor(app):
    holders = []

    def use(executor):
        holders.append(executor)
        rca.set_executor(app, executor)
        return executor

    yield use
    for ex in holders:
        if isinstance(ex, Stepper):
            ex.finish()
    rca.set_executor(app, None)
