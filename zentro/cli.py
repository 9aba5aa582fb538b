"""The ``zentro`` command: a Flask CLI group (run, db upgrade, users, api-keys, demo, audit, jobs, secrets)."""
from __future__ import annotations

import os
import signal
import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, routes_command, shell_command, with_appcontext

from zentro.accounts.models import Role


def _create_app():
    from zentro import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False,
             help="Zentro operations: run the server, migrate, manage users, keys and the audit log.")
def cli() -> None:
    pass


cli.add_command(shell_command)
cli.add_command(routes_command)


@cli.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--debug/--no-debug", default=False)
@with_appcontext
def run_command(host: str, port: int, debug: bool) -> None:
    """Serve Zentro (development server; use gunicorn in production). Refuses a schema behind head."""
    from zentro.platform.schema import schema_state

    state = schema_state()
    if not state["schema_current"]:
        raise click.ClickException(f"Database schema {state['revision']} is not at migration head {state['head']}: "
                                   "run `zentro db upgrade` first.")
    if current_app.config.get("ZENTRO_SCHEDULER") and (not debug or os.environ.get("WERKZEUG_RUN_MAIN") == "true"):
        # with --debug the reloader's parent only watches files: its child (WERKZEUG_RUN_MAIN) serves and schedules
        from zentro import jobs

        sched = jobs.start(current_app._get_current_object())
        # a supervisor's SIGTERM exits through atexit like Ctrl-C does, so leadership is handed over at once
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        click.echo(f"Scheduler on ({len(jobs.scheduler.JOBS)} jobs) as {sched.holder}; one process leads at a time.")
    click.echo(f"Zentro is serving on http://{host}:{port}")
    from werkzeug.serving import run_simple

    run_simple(host, port, current_app._get_current_object(), threaded=True, use_reloader=debug, use_debugger=debug)


def register_cli(app: Flask) -> None:
    """Commands that need the app are attached here so `flask --app wsgi …` has them too."""
    for command in (users, api_keys, demo, audit, retention, docs, jobs_group, secrets_group):
        app.cli.add_command(command)


@click.group("users", help="Manage users.")
def users() -> None:
    pass


@users.command("create")
@click.argument("email")
@click.option("--password", required=True, help="At least 12 characters.")
@click.option("--org", "org_slug", required=True, help="Org slug; created if missing.")
@click.option("--role", type=click.Choice([r.value for r in Role]), default="member", show_default=True)
@click.option("--plan", type=click.Choice(["free", "pro", "enterprise"]), default=None,
              help="Plan for a new org (or the new plan of an existing one).")
@click.option("--name", default="", help="Display name.")
@with_appcontext
def users_create(email: str, password: str, org_slug: str, role: str, plan: str | None, name: str) -> None:
    """Create EMAIL (or update its membership) in org SLUG."""
    from zentro.accounts import service
    from zentro.extensions import db

    try:
        org, org_created = service.ensure_org(org_slug, plan=plan)
        user, user_created = service.ensure_user(email, password, name)
        service.set_membership(user, org, role)
        db.session.commit()
    except service.AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    click.echo(f"{'created' if org_created else 'using'} org {org.slug} (plan {org.plan})")
    click.echo(f"{'created' if user_created else 'existing'} user {user.email} as {role} of {org.slug}")


@click.group("api-keys", help="Manage API keys.")
def api_keys() -> None:
    pass


@api_keys.command("create")
@click.argument("email")
@click.option("--org", "org_slug", required=True)
@click.option("--name", required=True)
@click.option("--scope", "scopes", multiple=True, help="Repeatable; default * (everything the user's role allows).")
@with_appcontext
def api_keys_create(email: str, org_slug: str, name: str, scopes: tuple[str, ...]) -> None:
    """Create an API key for EMAIL in org SLUG; the plaintext key is the last line printed."""
    from sqlalchemy import select

    from zentro.accounts import service
    from zentro.accounts.models import Membership, User
    from zentro.audit.service import SYSTEM
    from zentro.extensions import db

    org = service.get_org(org_slug)
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if org is None or user is None or db.session.scalar(
            select(Membership).where(Membership.org_id == org.id, Membership.user_id == user.id)) is None:
        raise click.ClickException(f"{email} is not a member of org {org_slug!r}.")
    try:
        key, plaintext = service.create_api_key(org, user, name, list(scopes), SYSTEM)
    except service.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"API key {key.prefix}… for {user.email} in {org.slug}, scopes: {key.scopes}", err=True)
    click.echo(plaintext)


@click.command("demo", help="Seed the demo organisation (idempotent).")
@with_appcontext
def demo() -> None:
    from zentro.accounts.demo import seed_demo

    for line in seed_demo(current_app.config["ZENTRO_DEMO_PASSWORD"]):
        click.echo(line)


@click.group("audit", help="Audit log tools.")
def audit() -> None:
    pass


@audit.command("verify")
@click.option("--org", "org_slug", required=True)
@with_appcontext
def audit_verify(org_slug: str) -> None:
    """Verify the org's hash chain; exit 1 and name the first broken link if any."""
    from zentro.accounts.service import get_org
    from zentro.audit.service import verify_chain

    org = get_org(org_slug)
    if org is None:
        raise click.ClickException(f"No org {org_slug!r}.")
    result = verify_chain(org.id)
    if result.ok:
        click.echo(f"OK: {result.checked} audit rows verified for {org.slug}; the chain is intact.")
        return
    click.echo(f"BROKEN at seq {result.broken_seq}" + (f" (row id {result.broken_id})" if result.broken_id else "")
               + f": {result.reason}. {result.checked} rows before it verified.")
    sys.exit(1)


@cli.command("verify-bundle")
@click.argument("bundle", type=click.Path(dir_okay=False))
@click.option("--public-key", "public_key", type=click.Path(dir_okay=False), default=None,
              help="The organisation's trusted public key (PEM, from /api/governance/compliance/bundles/public-key). "
                   "Without it the key inside the bundle is used, which proves integrity but not the signer.")
@click.option("--previous", type=click.Path(dir_okay=False), default=None,
              help="The organisation's previous bundle, to check the chain link.")
def verify_bundle(bundle: str, public_key: str | None, previous: str | None) -> None:
    """Verify an evidence bundle or workbook ZIP offline (no database): every file against the manifest,
    the Ed25519 signature, the key and the chain link. Names every changed, missing or added file.
    Exit 0 when all is well, 1 on any problem, 2 when an input cannot be read."""
    from zentro.compliance.bundles import verify_files

    code, lines = verify_files(bundle, public_key, previous)
    for line in lines:
        click.echo(line, err=code == 2)
    sys.exit(code)


@click.group("retention", help="Retention purges (closed incidents and audit rows past policy; legal holds kept).")
def retention() -> None:
    pass


@retention.command("run")
@click.option("--org", "org_slug", default=None, help="Org slug; every org when omitted.")
@click.option("--dry-run", is_flag=True, help="Count what would be purged; change nothing.")
@with_appcontext
def retention_run(org_slug: str | None, dry_run: bool) -> None:
    from zentro.compliance.retention import run_cli

    lines, code = run_cli(org_slug, dry_run)
    click.echo("\n".join(lines))
    sys.exit(code)


@click.group("secrets", help="Stored secrets (webhook signing secrets, integration credentials).")
def secrets_group() -> None:
    pass


@secrets_group.command("rotate")
@with_appcontext
def secrets_rotate() -> None:
    """Re-encrypt every stored secret under the current SECRET_KEY (after a rotation, before the old key
    is removed from ZENTRO_SECRET_KEY_FALLBACKS). Exit 1 when some row no configured key opens."""
    from zentro.platform.secretbox import rotate_stored

    results = rotate_stored()
    for result in results:
        click.echo(result.line())
    sys.exit(1 if any(r.unreadable for r in results) else 0)


@click.group("docs", help="Generated documentation.")
def docs() -> None:
    pass


@docs.command("reports")
@click.option("--check", is_flag=True, help="Exit 1 when docs/reports.md differs from the registry; write nothing.")
def docs_reports(check: bool) -> None:
    """Write docs/reports.md from the compliance report registry."""
    from zentro.compliance import report_docs

    text = report_docs.markdown()
    if check:
        current = report_docs.DOC_PATH.read_text(encoding="utf-8") if report_docs.DOC_PATH.exists() else ""
        if current != text:
            click.echo("docs/reports.md is out of date: run `zentro docs reports`.", err=True)
            sys.exit(1)
        click.echo("docs/reports.md is up to date.")
        return
    click.echo(f"Wrote {report_docs.write()}")


@click.group("jobs", help="Scheduled jobs (run by the leading scheduler process): list them, run one now.")
def jobs_group() -> None:
    pass


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


@jobs_group.command("list")
@with_appcontext
def jobs_list() -> None:
    """Every job with its schedule and last run, and which process leads the scheduler."""
    from zentro import jobs
    from zentro.platform import scheduler
    from zentro.platform.types import utcnow

    jobs.load(current_app)
    now = utcnow()
    lease = scheduler.lease_state(now)
    if lease is None or not lease.holder:
        click.echo("Leader: none yet (no scheduler has run against this database).")
    elif lease.active:
        click.echo(f"Leader: {lease.holder} since {_when(lease.acquired_at)} UTC "
                   f"(lease until {_when(lease.expires_at)} UTC)")
    else:
        click.echo(f"Leader: none (the lease of {lease.holder} ended {_when(lease.expires_at)} UTC); "
                   "a running scheduler takes over within a heartbeat.")
    last = scheduler.last_runs()
    rows = [("JOB", "SCHEDULE", "LAST RUN (UTC)", "STATUS", "DETAIL")]
    for name, job in scheduler.JOBS.items():
        run = last.get(name)
        rows.append((name, job.trigger_text, _when(run.started_at) if run else "never",
                     f"{run.status} ({run.trigger})" if run else "-", (run.detail[:80] if run else job.description)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        click.echo("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4])


@jobs_group.command("run")
@click.argument("name")
@click.option("--org", "org_slug", default=None, help="Run a per-org job (digests, retention, bundles) for this org only.")
@with_appcontext
def jobs_run(name: str, org_slug: str | None) -> None:
    """Run job NAME now in this process, whoever leads the scheduler; recorded as a job run with trigger "cli".
    Exit 1 when it fails."""
    from zentro import jobs
    from zentro.platform import scheduler

    jobs.load(current_app)
    run = scheduler.run_job(name, org_slug=org_slug, trigger="cli")
    took = (run.finished_at - run.started_at).total_seconds() if run.finished_at else 0.0
    click.echo(f"{run.job}: {run.status} in {took:.1f} s" + (f" - {run.detail}" if run.detail else ""))
    if run.status != "ok":
        sys.exit(1)
