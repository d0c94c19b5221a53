"""Settings: read from DIGEST_* and .env, wrong values stop at start-up naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import ConfigError, Settings, env_example, load_settings

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
    from digest.config import settings_table

    assert settings_table() in (ROOT / "README.md").read_text(), (
        "regenerate the README table with: python -m digest.config --table"
    )
