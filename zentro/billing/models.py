"""Billing tables (filled in by the billing work)."""
from __future__ import annotations
