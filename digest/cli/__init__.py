"""The `digest` command: a thin click layer over the library.

Each area's commands live in a module of their own and are attached here; this module owns
the shared context (settings, store) and turns user errors into one line and an exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import click

from digest.errors import DigestError

if TYPE_CHECKING:  # pydantic and SQLAlchemy load in ~1 s: only commands that use them pay
    from digest.config import Settings
    from digest.store import Store

__all__ = [
    "App",
    "COMMANDS",
    "DATE_OPTION",
    "DigestGroup",
    "cli",
    "frequency_option",
    "load_commands",
    "main",
    "pass_app",
]

# Each command: the module under digest.cli that registers it, and its short help, so that
# `digest --help` lists them without importing any (tests/test_cli.py checks they agree).
COMMANDS = {
    "approve": ("editions", "Release a built edition so it may be sent (for DIGEST_APPROVAL=required)."),
    "build": ("editions", "Collect papers and build the edition without sending it, to preview and approve it."),
    "check": ("check", "Check settings, database, secret key, templates, DKIM key, SMTP server and base URL."),
    "collect": ("collect", "Fetch newly listed papers into the database; print per source what changed."),
    "demo": ("core", "Run the whole job on the bundled example papers, into ./outbox."),
    "init": ("core", "Create or upgrade the database schema."),
    "preview": ("preview", "Render an edition's email as a subscriber gets it, to check it before sending."),
    "run": ("core", "Collect, build the edition once its time has come, send whoever is due: for timers."),
    "send": ("send", "Send today's edition to every active subscriber of its frequency who has not had it."),
    "serve": ("serve", "Run the scheduler: send each edition on DIGEST_SCHEDULE until SIGTERM."),
    "status": ("status", "Show the last runs, editions, deliveries by state, the next run and what needs you."),
    "subscribers": ("subscribers", "Manage the subscriber list: add, import, export, list, remove, delete."),
    "themes": ("themes", "Group the papers of PATH by theme and show labels, sizes and rank signals."),
    "web": ("web", "Serve the subscribe, preferences, feedback, unsubscribe and archive pages."),
}  # fmt: skip


class App:
    """What every command needs, created lazily so `--help` works with broken settings."""

    def __init__(self, overrides: dict | None = None) -> None:
        self._overrides = overrides or {}

    @cached_property
    def settings(self) -> Settings:
        """The validated settings (raises ConfigError naming the variable)."""
        from digest.config import load_settings

        return load_settings(**self._overrides)

    @cached_property
    def store(self) -> Store:
        """The store, migrated to the newest schema on first use."""
        from digest.store import Store

        store = Store(self.settings.database_url)
        store.migrate()
        return store

    def signing_settings(self) -> Settings:
        """Settings with a usable secret key: DIGEST_SECRET_KEY, else the one `digest demo` kept.

        Raises ConfigError when neither exists, since every email link must be signed.
        """
        from digest.config import ConfigError
        from digest.tokens import DEMO_SECRET_KEY, require_secret

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
    from digest.models import Frequency

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


class _LazyGroup(DigestGroup):
    """The top-level group: a command's module is imported when that command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            _load(COMMANDS[cmd_name][0])
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            if loaded is not None:
                rows.append((name, loaded.get_short_help_str(limit)))
            else:
                rows.append(
                    (name, click.Command(name, help=COMMANDS[name][1]).get_short_help_str(limit))
                )
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
        from digest.config import settings_warnings

        for warning in settings_warnings(ctx.obj.settings):
            click.echo(f"warning: {warning}", err=True)


def _load(module: str) -> None:
    """Import ``digest.cli.<module>`` and let it attach its commands."""
    import importlib

    importlib.import_module(f"digest.cli.{module}").register(cli)


def load_commands() -> None:
    """Attach every command (what `digest --help` does not need)."""
    for module in dict.fromkeys(module for module, _ in COMMANDS.values()):
        if not any(name in cli.commands for name, (m, _) in COMMANDS.items() if m == module):
            _load(module)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="digest")
