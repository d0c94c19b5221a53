"""CLI: `digest check`, what an admin runs before going live and from monitoring."""

from __future__ import annotations

import json
from pathlib import Path

import click

from digest.cli import App, pass_app
from digest.config import ConfigError

__all__ = ["check", "register"]

_SHOWN = {"ok": "ok", "fail": "FAIL", "skip": "skip"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, for monitoring.")
@click.option("--send-to", metavar="ADDR", help="Also send one test email to this address.")
@pass_app
def check(app: App, as_json: bool, send_to: str | None) -> None:
    """Check settings, database, secret key, templates, DKIM key, SMTP server and base URL.

    One line per check: ok, FAIL or skip. Nothing changes: the database is read, never
    migrated; the SMTP server sees EHLO, STARTTLS or TLS (certificate verified), AUTH and a
    MAIL FROM that is reset, and no email unless --send-to. Exit codes: 0 every check passed,
    1 a check failed, 2 the settings are invalid.

    Example: digest check --send-to you@example.org
    """
    from digest.preflight import FAIL, OK, CheckResult, run_checks

    try:
        settings = app.settings
    except ConfigError as exc:
        results, code = [CheckResult("settings", FAIL, str(exc))], 2
    else:
        source = " (and .env)" if Path(".env").is_file() else ""
        valid = CheckResult("settings", OK, f"every DIGEST_* value is valid{source}")
        results = [valid, *run_checks(settings, send_to=send_to)]
        code = 1 if any(r.status == FAIL for r in results) else 0
    if as_json:
        checks = [
            {"name": r.name, "status": r.status, "detail": r.detail, **r.data} for r in results
        ]
        click.echo(json.dumps({"ok": code == 0, "exit_code": code, "checks": checks}, indent=2))
    else:
        width = max(len(r.name) for r in results)
        for r in results:
            click.echo(f"{_SHOWN[r.status]:<4} {r.name:<{width}}  {r.detail}")
    if code:
        raise click.exceptions.Exit(code)


def register(group: click.Group) -> None:
    """Attach this module's commands to the `digest` group."""
    group.add_command(check)
