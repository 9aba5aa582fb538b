"""Guarded automations: playbooks, dry-runs, executions and remediations under guardrails, approvals
(in the app, the API and Slack), policy blocks and the policy suggestions mined from decisions."""
