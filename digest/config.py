"""Settings: every ``DIGEST_*`` environment variable, also read from an optional ``.env``.

Each field's description is what `.env.example` and the README say about it; a test keeps the
three in step.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import AnyHttpUrl, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from digest.errors import DigestError

__all__ = [
    "ConfigError",
    "EmptyEdition",
    "LogFormat",
    "Settings",
    "SmtpSecurity",
    "TransportKind",
    "env_example",
    "load_settings",
    "settings_table",
]


class ConfigError(DigestError):
    """A setting is missing or wrong; the message names the variable in one line (exit 2)."""

    exit_code = 2


class TransportKind(StrEnum):
    """Values of DIGEST_TRANSPORT (memory is for tests)."""

    FILE = "file"
    SMTP = "smtp"
    MEMORY = "memory"


class SmtpSecurity(StrEnum):
    STARTTLS = "starttls"
    TLS = "tls"
    NONE = "none"


class EmptyEdition(StrEnum):
    SKIP = "skip"
    SEND = "send"


class LogFormat(StrEnum):
    KV = "kv"
    JSON = "json"


def _csv(value: object) -> object:
    """Accept ``a,b,c`` in the environment as well as a JSON list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """All of digest's configuration, validated once at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="DIGEST_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        # A blank line copied from .env.example (DIGEST_TEMPLATES_DIR=) means "the default".
        env_ignore_empty=True,
    )

    # --- core ---
    database_url: str = Field(
        "sqlite:///digest.db",
        description="SQLAlchemy URL: sqlite:///file.db or postgresql+psycopg://...",
    )
    base_url: AnyHttpUrl = Field(
        "http://localhost:8000",
        description="Public URL of `digest web`; links in emails start here",
    )
    secret_key: str = Field(
        "", description="Signs the links in emails; required outside `digest demo` (32+ characters)"
    )
    log_format: LogFormat = Field(LogFormat.KV, description="Log lines as kv (key=value) or json")
    log_level: str = Field("INFO", description="Logging level: DEBUG, INFO, WARNING, ERROR")

    # --- branding and content ---
    name: str = Field("digest", description="Name shown in emails and pages")
    accent_color: str = Field("#ff6f00", description="Accent colour (#rrggbb) of emails and pages")
    logo_url: str = Field("", description="Logo image URL for the email header (blank: none)")
    contact: str = Field("", description="Contact line in the email footer, e.g. an address")
    templates_dir: Path | None = Field(
        None, description="Folder whose templates override the shipped ones (blank: none)"
    )
    taxonomy_file: Path | None = Field(
        None, description="TOML file of topics subscribers can follow (blank: the shipped one)"
    )
    max_papers: int = Field(
        30, ge=1, le=500, description="Papers per email unless a subscriber sets fewer"
    )
    themes_embeddings: bool = Field(
        False,
        description="Group themes with MiniLM sentence embeddings (needs the `embeddings` extra)",
    )

    # --- sources ---
    sources: Annotated[
        CsvList, Field(description="Sources `digest run` collects: hf, arxiv, file")
    ] = ["hf"]
    papers_file: Path | None = Field(None, description="Papers file for the `file` source")
    hf_base_url: AnyHttpUrl = Field(
        "https://huggingface.co", description="Hugging Face base URL (daily papers API)"
    )
    hf_lookback_days: int = Field(
        3,
        ge=0,
        le=14,
        description="Also re-read the HF lists of this many earlier days (papers added late)",
    )
    arxiv_feed_url: AnyHttpUrl = Field(
        "https://rss.arxiv.org", description="arXiv listing feed base URL ({base}/atom/cs.AI+cs.CL)"
    )
    arxiv_api_url: AnyHttpUrl = Field(
        "https://export.arxiv.org", description="arXiv API base URL ({base}/api/query)"
    )
    arxiv_categories: Annotated[CsvList, Field(description="arXiv categories to collect")] = [
        "cs.AI",
        "cs.CL",
        "cs.CV",
        "cs.LG",
    ]
    arxiv_cross_lists: bool = Field(False, description="Also keep cross-listed papers from arXiv")
    http_timeout: float = Field(20.0, gt=0, description="Seconds before an HTTP request gives up")
    http_retries: int = Field(
        4, ge=0, le=10, description="Retries on 429, 5xx and connection errors"
    )
    http_max_requests: int = Field(
        50, ge=1, description="Most HTTP requests one source makes per run"
    )
    empty_edition: EmptyEdition = Field(
        EmptyEdition.SKIP, description="When nothing new was listed: skip the edition, or send it"
    )

    # --- delivery ---
    transport: TransportKind = Field(
        TransportKind.FILE, description="How mail leaves: file (outbox) or smtp"
    )
    outbox: Path = Field(
        Path("outbox"), description="Folder the file transport writes .eml files to"
    )
    sender: str = Field(
        "digest <digest@localhost>", alias="DIGEST_FROM", description="From address of every email"
    )
    reply_to: str = Field("", description="Reply-To address (blank: none)")
    smtp_host: str = Field("localhost", description="SMTP server host")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP server port")
    smtp_username: str = Field("", description="SMTP user name (blank: no authentication)")
    smtp_password: str = Field("", description="SMTP password")
    smtp_security: SmtpSecurity = Field(
        SmtpSecurity.STARTTLS,
        description="starttls (required, never a plaintext fallback), tls or none",
    )
    smtp_ca_file: Path | None = Field(
        None, description="Extra CA bundle to trust for the SMTP server (blank: system CAs)"
    )
    smtp_timeout: float = Field(30.0, gt=0, description="Seconds an SMTP operation may take")
    smtp_connections: int = Field(
        4, ge=1, le=64, description="Persistent SMTP connections in the pool"
    )
    smtp_rate: float = Field(0.0, ge=0, description="Most messages per second (0: no limit)")
    smtp_hourly_limit: int = Field(
        0, ge=0, description="Most messages in any 60 minutes (0: no limit)"
    )
    smtp_max_attempts: int = Field(
        5, ge=1, le=50, description="Attempts per message before it fails"
    )
    smtp_retry_delay: float = Field(
        30.0, ge=0, description="Seconds before the first retry of a deferred (4xx) message"
    )
    smtp_retry_max_delay: float = Field(
        900.0, ge=0, description="Longest wait between retries (the backoff doubles up to it)"
    )
    dkim_key_file: Path | None = Field(
        None, description="PEM private key for DKIM signing (blank: off)"
    )
    dkim_selector: str = Field("digest", description="DKIM selector")
    dkim_domain: str = Field("", description="DKIM signing domain (blank: the From domain)")

    # --- schedule ---
    schedule: str = Field("0 7 * * mon-fri", description="Cron expression of the daily edition")
    timezone: str = Field("UTC", description="IANA time zone of the schedule, e.g. Europe/Berlin")
    weekly_day: str = Field("mon", description="Weekday of the weekly edition (mon..sun)")
    misfire_grace: int = Field(3600, ge=1, description="Seconds a missed run may start late")

    # --- web ---
    web_host: str = Field("127.0.0.1", description="Address `digest web` listens on")
    web_port: int = Field(8000, ge=1, le=65535, description="Port `digest web` listens on")
    subscribe_rate: int = Field(5, ge=1, description="Subscribe requests per client per 10 minutes")
    trusted_proxies: CsvList = Field(
        default_factory=list,
        description="IPs or networks (CIDR) of reverse proxies whose X-Forwarded-For "
        "names the client (blank: none, the connection's address is the client)",
    )

    @field_validator("sources", "arxiv_categories", "trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return _csv(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    @field_validator("accent_color")
    @classmethod
    def _colour(cls, value: str) -> str:
        import re

        if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise ValueError("expected a colour like #ff6f00")
        return value


_SECRETS = {"smtp_password", "secret_key"}


def _variable(loc: tuple) -> str:
    field_name = str(loc[0]) if loc else "?"
    info = Settings.model_fields.get(field_name)
    if info is not None and info.alias:
        return info.alias
    return "DIGEST_" + field_name.upper()


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and ``.env``; raise ConfigError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        value = err.get("input")
        secret = err["loc"] and err["loc"][0] in _SECRETS
        shown = "" if isinstance(value, dict) or secret else f" (got {str(value)[:40]!r})"
        raise ConfigError(f"{_variable(err['loc'])}: {err['msg']}{shown}") from None


def _default_text(name: str) -> str:
    info = Settings.model_fields[name]
    value = info.get_default(call_default_factory=True)
    if name in _SECRETS or value is None:
        return ""
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def _variables() -> list[tuple[str, str, str]]:
    """(variable, default as text, description) for every setting, in declaration order."""
    return [
        (info.alias or f"DIGEST_{name.upper()}", _default_text(name), info.description or "")
        for name, info in Settings.model_fields.items()
    ]


def env_example() -> str:
    """The text of `.env.example`: every setting with a comment and a safe default."""
    lines = ["# digest settings. Copy to .env and edit; the environment wins over this file.", ""]
    for variable, default, description in _variables():
        lines += [f"# {description}", f"{variable}={default}", ""]
    return "\n".join(lines)


def settings_table() -> str:
    """The README's table of settings, in Markdown."""
    rows = ["| Variable | Default | What it does |", "| --- | --- | --- |"]
    for variable, default, description in _variables():
        shown = f"`{default}`" if default else "(blank)"
        escaped = description.replace("|", "\\|")
        rows.append(f"| `{variable}` | {shown} | {escaped} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    import sys

    print(settings_table() if "--table" in sys.argv else env_example(), end="")
