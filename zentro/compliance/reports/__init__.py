"""One module per compliance analytics report; each registers itself with ``report_registry.report``.
Modules whose name starts with "_" are shared helpers, not reports."""
