"""Connector tables (filled in by the integrations work)."""
from __future__ import annotations
