"""Cross-cutting web concerns with no domain logic: auth schemes, tenancy, error envelope,
pagination, idempotency, rate limits, OpenAPI."""
