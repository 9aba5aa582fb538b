"""Notifications: e-mail, Slack and customer webhooks (through a durable outbox), the delivery log, and the
digest runs that make every digest delivery idempotent per (digest, org, period)."""
