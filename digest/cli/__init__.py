"""The `digest` command: a thin click layer over the library.

Each area's commands live in a module of their own and are attached here; this module owns
the shared context (settings, store) and turns user errors into one line and an exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar

import click

from digest.config import ConfigError, Settings, load_settings, settings_warnings
from digest.errors import DigestError
from digest.models import Frequency
from digest.store import Store
from digest.tokens import DEMO_SECRET_KEY, require_secret

__all__ = [
    "App",
    "DATE_OPTION",
    "DEMO_SECRET_KEY",
    "DigestGroup",
    "cli",
    "frequency_option",
    "main",
    "pass_app",
]


class App:
    """What every command needs, created lazily so `--help` works with broken settings."""

    def __init__(self, overrides: dict | None = None) -> None:
        self._overrides = overrides or {}

    @cached_property
    def settings(self) -> Settings:
        """The validated settings (raises ConfigError naming the variable)."""
        return load_settings(**self._overrides)

    @cached_property
    def store(self) -> Store:
        """The store, migrated to the newest schema on first use."""
        store = Store(self.settings.database_url)
        store.migrate()
        return store

    def signing_settings(self) -> Settings:
        """Settings with a usable secret key: DIGEST_SECRET_KEY, else the one `digest demo` kept.

        Raises ConfigError when neither exists, since every email link must be signed.
        """
        if self.settings.secret_key:
            require_secret(self.settings.secret_key)
            return self.settings
        kept = self.store.get_meta(DEMO_SECRET_KEY)
        if kept is None:
            raise ConfigError(
                "DIGEST_SECRET_KEY: required to sign the links in emails "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        signed = self.settings.model_copy(update={"secret_key": kept})
        self.__dict__["settings"] = signed  # later uses of app.settings sign with it too
        return signed


pass_app = click.make_pass_decorator(App, ensure=True)
F = TypeVar("F", bound=Callable[..., Any])


def frequency_option(default: str | None = None) -> Callable[[F], F]:
    """``--frequency``: the daily or the weekly edition (None: daily, or what --edition names)."""
    return click.option(
        "--frequency",
        type=click.Choice([f.value for f in Frequency]),
        default=default,
        show_default=default is not None,
        help="The daily or the weekly edition"
        + ("." if default else " (default: daily, or the one --edition names)."),
    )


# ``--date`` of the commands that act on one day's edition.
DATE_OPTION = click.option(
    "--date",
    "day",
    type=click.DateTime(["%Y-%m-%d"]),
    help="The edition of this date (default: today in DIGEST_TIMEZONE).",
)


class DigestGroup(click.Group):
    """A click group that reports user errors in one line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:  # a file or folder the command cannot use: the system says why
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=DigestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    package_name="digest-papers", message="%(prog)s (%(package)s), version %(version)s"
)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """digest: trending papers, grouped by theme, in your subscribers' inboxes.

    Settings come from DIGEST_* environment variables and an optional .env file.
    """
    ctx.ensure_object(App)
    # Validate settings before any command runs: a wrong value stops everything at start-up.
    # `digest check` reports them itself, as one of its checks (and as JSON with --json).
    asks_help = "--help" in sys.argv[1:] or "-h" in sys.argv[1:]
    if ctx.invoked_subcommand not in (None, "check") and not asks_help:
        for warning in settings_warnings(ctx.obj.settings):
            click.echo(f"warning: {warning}", err=True)


def _attach_commands() -> None:
    from digest.cli import (
        check,
        collect,
        core,
        editions,
        preview,
        send,
        serve,
        status,
        subscribers,
        themes,
        web,
    )

    for module in (
        core, collect, editions, themes, preview, send, subscribers, web, serve, status, check,
    ):  # fmt: skip
        module.register(cli)


_attach_commands()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="digest")
