"""Browser journeys: where screenshots go and how long a step may wait (the ``browser`` fixture, Debian's
Chromium driven by Playwright, is in tests/conftest.py: other packages' page tests use it too)."""
from __future__ import annotations

from pathlib import Path

SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "e2e"
TIMEOUT_MS = 15_000


