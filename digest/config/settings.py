"""Settings: every ``DIGEST_*`` environment variable, also read from an optional ``.env``.

Each field's description is what `.env.example` and the README say about it
(digest.config.reference writes both); a test keeps the three in step.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import AnyHttpUrl, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from digest.addresses import is_host_name, is_local_host, mailbox_address
from digest.errors import DigestError

__all__ = [
    "SECRETS",
    "Approval",
    "ConfigError",
    "EmptyEdition",
    "LogFormat",
    "Settings",
    "SmtpSecurity",
    "TransportKind",
    "load_settings",
    "settings_warnings",
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


class Approval(StrEnum):
    """Values of DIGEST_APPROVAL: whether an admin must release each edition before it goes out."""

    NONE = "none"
    REQUIRED = "required"


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
    thumbnails: bool = Field(
        True,
        description="Show the Hugging Face thumbnail of each theme's lead paper in emails",
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
    arxiv_api_interval: float = Field(
        3.0,
        ge=0,
        le=60,
        description="Seconds between arXiv API requests (arXiv asks for 3; hf and arxiv use the API)",
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
    allow_local_links: bool = Field(
        False,
        description="Allow a DIGEST_BASE_URL or DIGEST_FROM on localhost with the smtp "
        "transport (tests, a local mail catcher)",
    )
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
    approval: Approval = Field(
        Approval.NONE,
        description="none, or required: runs build the edition and stop until `digest approve KEY`",
    )

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

    @field_validator("sender", "reply_to")
    @classmethod
    def _mailbox(cls, value: str) -> str:
        if value:  # DIGEST_FROM cannot be blank: a blank environment value means the default
            mailbox_address(value)
        return value

    @field_validator("logo_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", value):
            raise ValueError("expected an http:// or https:// URL")
        return value

    @field_validator("smtp_host", "dkim_domain")
    @classmethod
    def _host_name(cls, value: str) -> str:
        if value and not is_host_name(value):
            hint = " (the port goes in DIGEST_SMTP_PORT)" if ":" in value else ""
            raise ValueError(f"expected a host name like smtp.example.org{hint}")
        return value

    @field_validator("templates_dir")
    @classmethod
    def _existing_folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError("no such folder")
        return value

    @field_validator("taxonomy_file", "smtp_ca_file", "dkim_key_file")
    @classmethod
    def _existing_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("no such file")
        return value

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
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise ValueError("expected a colour like #ff6f00")
        return value


SECRETS = {"smtp_password", "secret_key"}
# Settings that only matter to the smtp transport: set with the file transport, they mean the
# admin meant to send real mail.
_SMTP_SETTINGS = ("smtp_host", "smtp_username", "smtp_password")


def _smtp_settings_given(settings: Settings) -> list[str]:
    """The SMTP variables given a value of their own (not their default), by name."""
    return [
        f"DIGEST_{name.upper()}"
        for name in _SMTP_SETTINGS
        if name in settings.model_fields_set
        and getattr(settings, name) != Settings.model_fields[name].default
    ]


def _check_together(settings: Settings) -> None:
    """Rules across settings, so that a real newsletter never silently sends nothing."""
    smtp_set = _smtp_settings_given(settings)
    if smtp_set and "transport" not in settings.model_fields_set:
        raise ConfigError(
            f"DIGEST_TRANSPORT: {', '.join(smtp_set)} is set but DIGEST_TRANSPORT is not, so "
            "mail would only be written to the outbox folder; set DIGEST_TRANSPORT=smtp to "
            "send it (or DIGEST_TRANSPORT=file to keep writing files)"
        )
    if settings.transport != TransportKind.SMTP or settings.allow_local_links:
        return
    if is_local_host(settings.base_url.host or ""):
        raise ConfigError(
            f"DIGEST_BASE_URL: {settings.base_url} points at this machine, so the links in "
            "emails sent through SMTP would not work for subscribers; set the public https URL "
            "of `digest web` (or DIGEST_ALLOW_LOCAL_LINKS=true for a local test)"
        )
    domain = mailbox_address(settings.sender).rpartition("@")[2]
    if is_local_host(domain) or "." not in domain:
        raise ConfigError(
            f"DIGEST_FROM: {settings.sender!r} is not an address the world can reply to or "
            "verify (SPF, DKIM); set your newsletter's address (or DIGEST_ALLOW_LOCAL_LINKS=true)"
        )


def settings_warnings(settings: Settings) -> list[str]:
    """Lines to show at start-up for settings that are allowed but probably not meant."""
    smtp_set = _smtp_settings_given(settings)
    if smtp_set and settings.transport == TransportKind.FILE:
        return [
            f"DIGEST_TRANSPORT=file: mail is written to {settings.outbox}/ and not sent, "
            f"although {', '.join(smtp_set)} is set"
        ]
    return []


def _variable(loc: tuple) -> str:
    field_name = str(loc[0]) if loc else "?"
    if field_name.startswith("DIGEST_"):  # an alias (DIGEST_FROM) names itself
        return field_name
    info = Settings.model_fields.get(field_name)
    if info is not None and info.alias:
        return info.alias
    return "DIGEST_" + field_name.upper()


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and ``.env``; raise ConfigError naming the variable."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        value = err.get("input")
        secret = err["loc"] and err["loc"][0] in SECRETS
        shown = "" if isinstance(value, dict) or secret else f" (got {str(value)[:40]!r})"
        message = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{_variable(err['loc'])}: {message}{shown}") from None
    _check_together(settings)
    return settings
