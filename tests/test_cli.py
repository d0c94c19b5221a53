"""The `digest` command as a user meets it: help everywhere, the demo, one-line errors."""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from digest.cli import COMMANDS, cli, load_commands
from digest.store import Store

ROOT = Path(__file__).resolve().parent.parent


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    load_commands()
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
    return found


@pytest.mark.parametrize("path", _commands(cli), ids=" ".join)
def test_every_command_has_help_text_and_an_example(path: tuple[str, ...]) -> None:
    command: click.Command = cli
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    assert command.help and len(command.help.strip()) > 20, f"`digest {' '.join(path)}` lacks help"
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    readme = (ROOT / "README.md").read_text()
    assert f"digest {' '.join(path)}" in readme, (
        f"README shows no example of `digest {' '.join(path)}`"
    )


def test_demo_writes_one_parseable_email_per_subscriber(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    emails = sorted((tmp_path / "outbox").rglob("*.eml"))
    assert len(emails) == 3
    recipients = set()
    for path in emails:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        recipients.add(message["To"])
        assert message.get_content_type() == "multipart/alternative"
        text, html = message.get_payload()
        assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
        assert message["List-Unsubscribe"].startswith("<http") and message["List-Unsubscribe-Post"]
        assert path.with_suffix(".html").exists()
    assert recipients == {"ada@example.org", "grace@example.org", "alan@example.org"}
    assert "3 emails" in result.output

    again = CliRunner().invoke(cli, ["demo"])
    assert again.exit_code == 0, again.output
    assert len(sorted((tmp_path / "outbox").rglob("*.eml"))) == 3, "a second demo must not resend"


def test_malformed_papers_file_is_one_line_and_leaves_the_database_unchanged(
    tmp_path: Path,
) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(
        json.dumps({"id": "2401.00001", "title": "A paper", "abstract": "Text."}) + "\n"
    )
    assert CliRunner().invoke(cli, ["collect", "--file", str(good)]).exit_code == 0
    bad = tmp_path / "bad.json"
    bad.write_text('[{"title": "truncated')
    result = CliRunner().invoke(cli, ["collect", "--file", str(bad)])
    assert result.exit_code != 0
    assert len(result.output.strip().splitlines()) == 1 and "bad.json" in result.output
    store = Store(f"sqlite:///{tmp_path / 'digest.db'}")
    assert store.count_papers() == 1
    store.close()


def test_demo_subscribers_follow_topics_the_taxonomy_has() -> None:
    from digest.cli.core import DEMO_SUBSCRIBERS
    from digest.themes.taxonomy import load_taxonomy

    topics = set(load_taxonomy(None).topics)
    for subscriber in DEMO_SUBSCRIBERS:
        assert set(subscriber.topics) <= topics


def test_help_lists_every_command_without_importing_them() -> None:
    """`digest --help` reads the table of commands (start-up under 0.3 s): it must agree."""
    load_commands()
    assert set(cli.commands) == set(COMMANDS)
    for name, (module, short) in COMMANDS.items():
        command = cli.commands[name]
        assert command.get_short_help_str(200) == short, name
        assert (command.callback.__module__ if command.callback else module).endswith(module)
    code = "import sys; from digest.cli import main; main()"
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code, "--help"],
                         capture_output=True, text=True)  # fmt: skip
    assert "send" in out.stdout and "Manage the subscriber list" in out.stdout
    for heavy in ("sqlalchemy", "pydantic", "numpy", "jinja2", "digest.cli.send"):
        assert f" {heavy}\n" not in out.stderr, f"`digest --help` imports {heavy}"
