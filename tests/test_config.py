"""Settings: read from DIGEST_* and .env, wrong values stop at start-up naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import ConfigError, Settings, load_settings
from digest.config.reference import env_example

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_are_the_embedded_demo_setup() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite:///digest.db"
    assert settings.transport == "file" and settings.outbox == Path("outbox")


def test_environment_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DIGEST_SMTP_PORT=2525\nDIGEST_FROM=Papers <p@example.org>\n")
    monkeypatch.setenv("DIGEST_SOURCES", "hf,arxiv")
    settings = load_settings()
    assert settings.smtp_port == 2525
    assert settings.sender == "Papers <p@example.org>"
    assert settings.sources == ["hf", "arxiv"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DIGEST_SMTP_PORT", "abc"),
        ("DIGEST_TRANSPORT", "pigeon"),
        ("DIGEST_SMTP_SECURITY", "maybe"),
        ("DIGEST_BASE_URL", "not a url"),
        ("DIGEST_ACCENT_COLOR", "red"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"^{variable}: "):
        load_settings()


def test_a_bad_password_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET_KEY", "x" * 10)
    monkeypatch.setenv("DIGEST_SMTP_PORT", "70000")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "xxxxxxxxxx" not in str(info.value)


@pytest.mark.parametrize("command", [["init"], ["run"], ["send"], ["subscribers", "list"]])
def test_any_command_stops_with_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("DIGEST_SMTP_PORT", "abc")
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: DIGEST_SMTP_PORT: Input should be a valid integer, unable to parse string as an integer (got 'abc')"
    ]
    assert not Path("digest.db").exists()


def test_env_example_lists_every_setting_with_its_default() -> None:
    text = (ROOT / ".env.example").read_text()
    assert text == env_example(), "regenerate with: python -m digest.config > .env.example"
    for name, field in Settings.model_fields.items():
        assert (field.alias or f"DIGEST_{name.upper()}") in text


def test_readme_settings_table_is_current() -> None:
    from digest.config.reference import settings_table

    assert settings_table() in (ROOT / "README.md").read_text(), (
        "regenerate the README table with: python -m digest.config --table"
    )


# --- no silent no-send (issue 11, item 2) ---


def _send_one(env: dict[str, str]):
    """`digest send` of a fresh edition to one subscriber, in the test's folder."""
    runner = CliRunner()
    base = {"DIGEST_SECRET_KEY": "k" * 40, **env}
    papers = ROOT / "examples" / "papers.json"
    assert runner.invoke(cli, ["subscribers", "add", "ada@example.org"], env=base).exit_code == 0
    assert runner.invoke(cli, ["collect", "--file", str(papers)], env=base).exit_code == 0
    return runner.invoke(cli, ["send"], env={**base, **env})


def test_smtp_settings_without_a_transport_stop_before_anything_is_written() -> None:
    """Reported: DIGEST_SMTP_* set as the systemd section says, `send` said `sent 1` into ./outbox."""
    smtp = {
        "DIGEST_SMTP_HOST": "smtp.example.org",
        "DIGEST_SMTP_USERNAME": "mailer",
        "DIGEST_SMTP_PASSWORD": "secret-password",
    }
    result = CliRunner().invoke(cli, ["send"], env={"DIGEST_SECRET_KEY": "k" * 40, **smtp})
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: DIGEST_TRANSPORT: ") and "DIGEST_TRANSPORT=smtp" in line
    assert "secret-password" not in result.output
    assert not Path("outbox").exists() and not Path("digest.db").exists()


def test_the_file_transport_says_written_to_the_outbox_never_sent() -> None:
    result = _send_one({})
    assert result.exit_code == 0, result.output
    assert ": written to ./outbox: 1, deferred 0, failed 0, unknown 0" in result.output
    assert "sent 1" not in result.output
    assert len(list(Path("outbox").rglob("*.eml"))) == 1


def test_an_explicit_file_transport_with_smtp_settings_warns_on_every_command() -> None:
    env = {"DIGEST_TRANSPORT": "file", "DIGEST_SMTP_HOST": "smtp.example.org"}
    result = _send_one(env)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(
        "warning: DIGEST_TRANSPORT=file: mail is written to outbox/ and not sent, although "
        "DIGEST_SMTP_HOST is set"
    )
    assert "written to ./outbox: 1" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DIGEST_FROM", "not an address"),
        ("DIGEST_FROM", "Papers <papers@example.org>, other@example.org"),
        ("DIGEST_FROM", "papers@exa mple.org"),
        ("DIGEST_FROM", "Papers <papers@example.org>\r\nBcc: all@example.org"),
        ("DIGEST_REPLY_TO", "reply to me"),
        ("DIGEST_LOGO_URL", "logo.png"),
        ("DIGEST_HF_BASE_URL", "huggingface.co"),
        ("DIGEST_ARXIV_API_URL", "export.arxiv.org"),
        ("DIGEST_SMTP_HOST", "smtp.example.org:587"),
        ("DIGEST_DKIM_DOMAIN", "example .org"),
        ("DIGEST_TEMPLATES_DIR", "/no/such/folder"),
        ("DIGEST_TAXONOMY_FILE", "/no/such/taxonomy.toml"),
        ("DIGEST_SMTP_CA_FILE", "/no/such/ca.pem"),
        ("DIGEST_DKIM_KEY_FILE", "/no/such/key.pem"),
    ],
)
def test_every_address_url_and_path_setting_is_checked_at_start_up(
    variable: str, value: str
) -> None:
    """Reported: DIGEST_FROM='not an address' passed start-up; every delivery then failed."""
    env = {"DIGEST_TRANSPORT": "smtp", "DIGEST_SMTP_HOST": "smtp.example.org",
           "DIGEST_BASE_URL": "https://papers.example.org",
           "DIGEST_FROM": "Papers <papers@example.org>", variable: value}  # fmt: skip
    result = CliRunner().invoke(cli, ["status"], env=env)
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"error: {variable}: "), line
    assert not Path("digest.db").exists()


@pytest.mark.parametrize(
    "base_url",
    ["http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]/", "https://papers.localhost",
     "http://0.0.0.0:8000"],
)  # fmt: skip
def test_links_to_this_machine_are_refused_with_smtp_unless_allowed(base_url: str) -> None:
    env = {"DIGEST_TRANSPORT": "smtp", "DIGEST_SMTP_HOST": "smtp.example.org",
           "DIGEST_FROM": "Papers <papers@example.org>", "DIGEST_BASE_URL": base_url}  # fmt: skip
    result = CliRunner().invoke(cli, ["status"], env=env)
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: DIGEST_BASE_URL: ") and "DIGEST_ALLOW_LOCAL_LINKS" in line
    allowed = CliRunner().invoke(cli, ["status"], env={**env, "DIGEST_ALLOW_LOCAL_LINKS": "true"})
    assert allowed.exit_code == 0, allowed.output
    # The file transport's links are looked at on this machine: localhost is right there.
    assert load_settings(base_url=base_url).base_url.host


def test_a_from_address_on_localhost_is_refused_with_smtp() -> None:
    with pytest.raises(ConfigError, match="^DIGEST_FROM: "):
        load_settings(transport="smtp", base_url="https://papers.example.org")
    assert load_settings(
        transport="smtp", base_url="https://papers.example.org", allow_local_links=True
    ).sender.endswith("@localhost>")


@pytest.mark.parametrize(
    "sender",
    [
        "papers@example.org",
        "Papers <papers@example.org>",
        '"Papers, weekly" <p.x+news@mail.example.org>',
    ],
)
def test_good_from_addresses_pass(sender: str) -> None:
    settings = load_settings(
        transport="smtp", smtp_host="smtp.example.org", base_url="https://papers.example.org",
        sender=sender,
    )  # fmt: skip
    assert settings.sender == sender


def test_the_demo_still_runs_on_the_defaults() -> None:
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    assert "written to ./outbox: 3, deferred 0, failed 0, unknown 0" in result.output


def test_the_systemd_path_copy_env_example_and_fill_in_smtp_stops_at_start_up(
    tmp_path: Path,
) -> None:
    """The reported path: .env.example copied as the settings file, DIGEST_SMTP_* filled in."""
    text = (ROOT / ".env.example").read_text()
    for line, value in [("#DIGEST_SMTP_HOST=localhost", "DIGEST_SMTP_HOST=smtp.example.org"),
                        ("#DIGEST_SMTP_USERNAME=", "DIGEST_SMTP_USERNAME=mailer"),
                        ("#DIGEST_SMTP_PASSWORD=", "DIGEST_SMTP_PASSWORD=hunter2-hunter2"),
                        ("#DIGEST_SECRET_KEY=", "DIGEST_SECRET_KEY=" + "k" * 40)]:  # fmt: skip
        assert line in text.splitlines(), line
        text = text.replace(line, value)
    (tmp_path / ".env").write_text(text)
    result = CliRunner().invoke(cli, ["send"])
    assert result.exit_code == 2
    assert result.output.startswith("error: DIGEST_TRANSPORT: DIGEST_SMTP_HOST, ")
    assert not (tmp_path / "outbox").exists()


def test_a_plain_copy_of_env_example_changes_nothing_and_warns_nothing(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    assert load_settings().model_fields_set == set()
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0 and "warning" not in result.output


def test_a_test_copy_through_the_file_transport_says_written_too() -> None:
    assert CliRunner().invoke(cli, ["demo"]).exit_code == 0
    result = CliRunner().invoke(cli, ["preview", "--send-to", "me@example.org"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(" written to ./outbox")
    assert "sent" not in result.output
    assert len(list(Path("outbox", "preview").glob("*.eml"))) == 1
